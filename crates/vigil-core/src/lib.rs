//! Vigil's engine, free of any UI framework: the telemetry contract and its decoders, MQTT
//! ingest, the SQLite history, alarm evaluation, the embedded broker and the ward simulator.
//!
//! The desktop shell (`src-tauri/`) and the command line (`vigilctl`) are thin faces over this
//! crate. Architecture invariant: nothing here depends on Tauri or on any window.

pub use vigil_contract::{codes, decode, telemetry};

pub mod alarms;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod codec;
pub mod config;
pub mod device;
pub mod engine;
pub mod ingest;
pub mod interop;
pub mod keys;
pub mod limits_db;
pub mod notify;
pub mod patients;
pub mod query;
pub mod secure_fs;
pub mod security;
pub mod settings;
pub mod sim;
pub mod stations;
pub mod store;
pub mod syslog;
pub mod usecase;
