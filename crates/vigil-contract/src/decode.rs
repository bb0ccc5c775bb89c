//! One MQTT message in, one [`Message`] out: the native contract ([`crate::telemetry`]) and the
//! interop payloads on their own topics ([`crate::interop`]: FHIR R4, HL7 v2). Above both, so
//! that the model (`telemetry`) never imports the decoders built on it.

use crate::telemetry::{
    decode_status, decode_vitals, decode_wave, DecodeError, Message, Stream, Topic,
    MAX_PAYLOAD_BYTES,
};

/// Decode one MQTT message. Never panics.
pub fn decode(topic: &str, payload: &[u8]) -> Result<Message, DecodeError> {
    let parsed = Topic::parse(topic)?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge(payload.len()));
    }
    match parsed.stream {
        Stream::Vitals => decode_vitals(parsed.bed, parsed.device, payload).map(Message::Vitals),
        Stream::Wave(ref ch) => {
            decode_wave(parsed.bed.clone(), &parsed.device, ch, payload).map(Message::Wave)
        }
        Stream::Status => decode_status(parsed.bed, parsed.device, payload).map(Message::Status),
        Stream::Dose => {
            crate::dose::decode_dose(parsed.bed, parsed.device, payload).map(Message::Dose)
        }
        Stream::Fhir => crate::interop::fhir::decode(payload).map(|batch| Message::Batch {
            bed: parsed.bed,
            device: parsed.device,
            batch,
        }),
        Stream::Hl7v2 => {
            let text = String::from_utf8_lossy(payload);
            crate::interop::hl7v2::decode(&text).map(|batch| Message::Batch {
                bed: parsed.bed,
                device: parsed.device,
                batch,
            })
        }
    }
}
