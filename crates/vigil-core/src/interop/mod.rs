//! Interop payloads. The decoders (FHIR R4, HL7 v2, MLLP framing) are the `vigil-contract`
//! crate's (pure: no sockets), re-exported here whole; this module adds the MLLP server
//! ([`mllp::serve`]), which reads connections and hands decoded messages to the engine.

pub use vigil_contract::interop::*;

pub mod mllp;
