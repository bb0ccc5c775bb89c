//! The app's integration tests: one test binary (the app links once).
//!
//! Index:
//! - `e2e`: the real window through tauri-driver under Xvfb (live ward overview).
//!
//! Engine-level tests live beside the engine: `crates/vigil-core` (unit tests per module) and
//! `crates/vigilctl/tests` (the pipeline through a real Mosquitto).

mod e2e;
