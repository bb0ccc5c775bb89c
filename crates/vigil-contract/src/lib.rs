//! Vigil's telemetry contract, as data and pure functions.
//!
//! - [`telemetry`]: the model every face shares — [`telemetry::BedId`], [`telemetry::DeviceId`]
//!   (each with its one parser), readings, waveform samples, device status, batches — and the
//!   native MQTT topic and JSON contract with its decoders.
//! - [`dose`]: a medication dispenser's dose events (taken, late, missed) and the one parser
//!   of a medication id.
//! - [`codes`]: the vitals and waveform channels, their codes (MDC, LOINC), units and ranges.
//! - [`interop`]: the FHIR R4 and HL7 v2 decoders and MLLP framing, onto the same model.
//! - [`decode`]: one MQTT message in, one decoded message out, whichever payload its topic
//!   carries. It sits above `telemetry` and `interop`, which both depend only on the model.
//!
//! Invariant (see Cargo.toml): no I/O. Nothing here opens a socket or a file, reads the clock
//! or spawns a task; the engine (`vigil-core`) does that and calls in.

pub mod codes;
pub mod decode;
pub mod dose;
pub mod interop;
pub mod telemetry;
