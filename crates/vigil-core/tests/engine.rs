//! The engine's integration tests, one binary (one link) for all of them; each module is one
//! subject, named after the file it lives in. Run one with `cargo test -p vigil-core --test
//! engine <module>::`. Tests that point the process's session bus somewhere are in `bus` and
//! `alarms_notify` (their own processes), since they change the environment.

mod support;

mod alarms;
mod alarms_news2;
mod alarms_sync;
mod alarms_ux;
mod broker_trust;
mod clock;
mod fairness;
mod fuzz;
mod interop;
mod remote;
mod remote_cohort;
mod remote_findings;
mod reports;
mod wave_gaps;
