//! The app's integration tests: one test binary (the app links once).
//!
//! Index:
//! - `support`: helpers shared by the window tests (tauri-driver, WebDriver, waiting, screenshots).
//! - `e2e`: the real window through tauri-driver under Xvfb (live ward overview).
//! - `e2e_auth`: first-run admin, users created in the admin panel, a nurse's controls, the
//!   locked screen keeping the ward live.
//! - `e2e_detail`: the bed detail screen (live channels, limits, trends, full disclosure,
//!   alarm history, admit) as a charge nurse.
//!
//! Engine-level tests live beside the engine: `crates/vigil-core` (unit tests per module) and
//! `crates/vigilctl/tests` (the pipeline through a real Mosquitto).

mod e2e;
mod e2e_auth;
mod e2e_detail;
mod support;
