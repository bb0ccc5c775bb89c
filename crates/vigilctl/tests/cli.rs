//! vigilctl's tests: the real binary against real Mosquitto, one test binary (one link) for all
//! of them; each module is one subject. Run one with `cargo test -p vigilctl --test cli
//! <module>::`.

mod support;

mod admin;
mod alarms;
mod broker_restart;
mod faults;
mod interop_ingest;
mod pipeline;
mod readings;
mod remote;
mod replay;
mod report;
mod tls;
