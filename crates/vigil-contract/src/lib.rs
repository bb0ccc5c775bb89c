//! Vigil's telemetry contract, as data and pure functions.
//!
//! - [`telemetry`]: the model every face shares — [`telemetry::BedId`], [`telemetry::DeviceId`]
//!   (each with its one parser), readings, waveform samples, device status, batches — and the
//!   native MQTT topic and JSON contract with its decoders.
//! - [`dose`]: a medication dispenser's dose events (taken, late, missed) and the one parser
//!   of a medication id.
//! - [`codes`]: the vitals and waveform channels, their codes (MDC, LOINC), units and ranges.
//! - [`interop`]: the FHIR R4 and HL7 v2 decoders and MLLP framing, onto the same model; and
//!   the research exports, the other way.
//! - [`decode`]: one MQTT message in, one decoded message out, whichever payload its topic
//!   carries. It sits above `telemetry` and `interop`, which both depend only on the model.
//!
//! Research exports ([`interop::fhir_export`], [`interop::csv_export`], their common model in
//! [`interop::export`]): one bed's or patient's readings and waveforms over a period, as a FHIR
//! R4 `collection` Bundle that Vigil's own FHIR decoder reads back exactly (but the status
//! `unverified`, which R4 lacks: `preliminary`), or as two CSV files
//! (readings; one row per waveform sample). Both stream into a caller's `std::io::Write` as they
//! are fed (a day of full disclosure is ~10^8 samples), identified or de-identified (pseudonym,
//! times shifted by a secret offset, devices renamed, no bed).
//!
//! Invariant (see Cargo.toml): no I/O. Nothing here opens a socket or a file, reads the clock
//! or spawns a task; the engine (`vigil-core`) does that and calls in. The exports write to a
//! `std::io::Write` the caller opened; they never open anything themselves.

pub mod codes;
pub mod decode;
pub mod dose;
pub mod interop;
pub mod telemetry;
