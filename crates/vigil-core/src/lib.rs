//! Vigil's engine, free of any UI framework: MQTT and MLLP ingest, the SQLite history, alarm
//! evaluation (the `vigil-alarms` machine, fed and persisted here), ward-wide alarm sync, users,
//! roles and the audit trail, security monitoring, and the station actions (`usecase`).
//!
//! The telemetry contract and its decoders are the `vigil-contract` crate, the alarm machine the
//! `vigil-alarms` crate; both are re-exported here under their old paths (`telemetry`, `codes`,
//! `decode`, `interop`, `alarms`). The simulated ward and the embedded broker are `vigil-sim`,
//! which this crate never depends on.
//!
//! The desktop shell (`src-tauri/`) and the command line (`vigilctl`) are faces over this
//! crate. Architecture invariant: nothing here depends on Tauri or on any window.

pub use vigil_contract::{codes, decode, dose, telemetry};

pub mod alarms;
pub mod audit;
pub mod auth;
pub mod codec;
pub mod config;
pub mod engine;
pub mod ingest;
pub mod interop;
pub mod keys;
pub mod limits_db;
pub mod logging;
pub mod notify;
pub mod patients;
pub mod query;
pub mod remote;
pub mod report;
pub mod secure_fs;
pub mod security;
pub mod settings;
pub mod stations;
pub mod store;
pub mod syslog;
pub mod usecase;
