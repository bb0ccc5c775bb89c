//! The app's integration tests: one test binary (the app links once).
//!
//! Index:
//! - `support`: helpers shared by the window tests (tauri-driver, WebDriver, waiting, screenshots).
//! - `bench_fps`: (ignored; a benchmark) frame rate, CPU and publish → pixel latency with 8, 16
//!   and 32 live tiles.
//! - `e2e`: the real window through tauri-driver under Xvfb (live ward overview; tones played
//!   with no click; a self-clearing high alarm stays latched; the ward strip beside a bed).
//! - `e2e_alarms`: the alarm bar and tiles: a nurse pauses audio but cannot acknowledge, a charge
//!   nurse acknowledges, the idle lock keeps the alarm on screen; 32 beds on one screen and paged.
//! - `e2e_auth`: first-run admin, users created in the admin panel, a nurse's controls, the
//!   locked screen keeping the ward live.
//! - `e2e_detail`: the bed detail screen (live channels, limits, trends, full disclosure,
//!   alarm history, admit) as a charge nurse.
//! - `e2e_remote`: the remote patients' worklist of the simulated home cohort (most urgent first,
//!   none among the ward's tiles), a patient's record with the care plan's slots, a nurse's
//!   review, and the trail of both.
//! - `e2e_security`: a spoofed device raises a SECURITY technical alarm on its bed and one
//!   growing security event; IT acknowledges it with a note and exports; syslog gets both.
//!
//! Engine-level tests live beside the engine: `crates/vigil-core` (unit tests per module) and
//! `crates/vigilctl/tests` (the pipeline through a real Mosquitto).

mod bench_fps;
mod e2e;
mod e2e_alarms;
mod e2e_auth;
mod e2e_detail;
mod e2e_remote;
mod e2e_security;
mod support;
