//! Alarms. The machine itself is the `vigil-alarms` crate (pure: no clock, no I/O), re-exported
//! here whole; this module adds what needs the engine's keys and enrolled stations: the signed
//! ward-wide alarm state ([`sync`]).

pub use vigil_alarms::*;

pub mod sync;
