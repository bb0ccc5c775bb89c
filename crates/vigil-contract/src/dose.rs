//! Medication doses from a connected dispenser (issue 15): the `dose` stream of contract v1.
//!
//! A dispenser publishes one event per message on `vigil/v1/{ward}/{bed}/{device}/dose`: the
//! patient took a dose (`taken`), took it after the dispenser's own window (`late`), or the
//! dispenser's window closed with the dose still in it (`missed`). The time `t` is when it
//! happened on the dispenser, so a dispenser that was offline uploads its events later with
//! their own times. Whether a dose was on time *for the care plan* is the station's call, by
//! the plan's schedule, never the dispenser's: `late` and `taken` both say "taken at `t`", and
//! `missed` is the dispenser's report, kept in the dose history. The normative description is
//! `docs/telemetry.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::telemetry::{check_header, parse_json, truncate, BedId, DecodeError, CONTRACT_VERSION};

/// What happened to a dose, as the dispenser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoseKind {
    /// Taken at `t` (removed from the dispenser).
    Taken,
    /// Taken at `t`, after the dispenser's own window.
    Late,
    /// The dispenser's window closed at `t` with the dose still in it.
    Missed,
}

impl DoseKind {
    pub const ALL: [DoseKind; 3] = [DoseKind::Taken, DoseKind::Late, DoseKind::Missed];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DoseKind::Taken => "taken",
            DoseKind::Late => "late",
            DoseKind::Missed => "missed",
        }
    }

    /// A kind by its stored name.
    pub fn parse(s: &str) -> Option<DoseKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The patient took the dose (on time or not: the care plan decides).
    pub fn is_taken(self) -> bool {
        matches!(self, DoseKind::Taken | DoseKind::Late)
    }
}

/// `dose` payload: one event of one medication.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DosePayload {
    pub v: u32,
    pub device: String,
    /// Per-device message sequence number (for the device's own bookkeeping; a redelivery is
    /// recognised by its content).
    pub seq: u64,
    /// When the event happened on the dispenser (RFC 3339).
    pub t: DateTime<Utc>,
    /// The medication id of the compartment (`metformin`): [`parse_medication`].
    pub medication: String,
    pub event: DoseKind,
    /// When the dispenser had the dose scheduled, if it says (shown in the history only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
}

impl DosePayload {
    /// A contract-v1 dose event (dispensers, the simulator, tests).
    pub fn new(
        device: &str,
        seq: u64,
        t: DateTime<Utc>,
        medication: &str,
        event: DoseKind,
    ) -> Self {
        DosePayload {
            v: CONTRACT_VERSION,
            device: device.into(),
            seq,
            t,
            medication: medication.into(),
            event,
            due: None,
        }
    }
}

/// A decoded dose event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseEvent {
    pub bed: BedId,
    pub device: String,
    pub seq: u64,
    pub medication: String,
    pub kind: DoseKind,
    /// When it happened on the dispenser (ms since the epoch).
    pub t_ms: i64,
    pub due_ms: Option<i64>,
}

/// The one parser of a medication id (a dispenser's compartment, a care plan's dose item):
/// trimmed, 1 to 32 of `a-z 0-9 - _`, starting with a letter or digit. Lower case only, so
/// that `Metformin` and `metformin` can never be two medications.
pub fn parse_medication(text: &str) -> Result<String, DecodeError> {
    let m = text.trim();
    let ok = (1..=32).contains(&m.len())
        && m.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && m.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(m.to_string())
    } else {
        Err(DecodeError::Invalid {
            field: "medication",
            why: format!(
                "{:?} is not a medication id (1 to 32 of a-z 0-9 - _)",
                truncate(text, 40)
            ),
        })
    }
}

pub(crate) fn decode_dose(
    bed: BedId,
    device: String,
    payload: &[u8],
) -> Result<DoseEvent, DecodeError> {
    let p: DosePayload = parse_json(payload)?;
    check_header(p.v, &device, &p.device)?;
    Ok(DoseEvent {
        bed,
        device,
        seq: p.seq,
        medication: parse_medication(&p.medication)?,
        kind: p.event,
        t_ms: p.t.timestamp_millis(),
        due_ms: p.due.map(|t| t.timestamp_millis()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use crate::telemetry::{Message, Stream, Topic};

    fn bed() -> BedId {
        BedId::new("home", "h-07")
    }

    #[test]
    fn a_dispenser_event_decodes_with_its_own_time() {
        let t = Topic::dose(&bed(), "disp-7");
        assert_eq!(t, "vigil/v1/home/h-07/disp-7/dose");
        assert_eq!(Topic::parse(&t).unwrap().stream, Stream::Dose);
        let at: DateTime<Utc> = "2026-03-01T08:12:00Z".parse().unwrap();
        let mut p = DosePayload::new("disp-7", 4, at, "metformin", DoseKind::Late);
        p.due = Some("2026-03-01T07:00:00Z".parse().unwrap());
        let Ok(Message::Dose(d)) = decode(&t, &serde_json::to_vec(&p).unwrap()) else {
            panic!("not a dose");
        };
        assert_eq!(d.bed, bed());
        assert_eq!((d.device.as_str(), d.seq), ("disp-7", 4));
        assert_eq!(
            (d.medication.as_str(), d.kind),
            ("metformin", DoseKind::Late)
        );
        assert_eq!(d.t_ms, at.timestamp_millis());
        assert_eq!(d.due_ms, Some(at.timestamp_millis() - 72 * 60_000));
        assert!(d.kind.is_taken() && !DoseKind::Missed.is_taken());
    }

    #[test]
    fn bad_dose_events_are_refused_with_their_reason() {
        let t = Topic::dose(&bed(), "disp-7");
        let ok = r#"{"v":1,"device":"disp-7","seq":1,"t":"2026-03-01T08:00:00Z","medication":"metformin","event":"taken"}"#;
        assert!(decode(&t, ok.as_bytes()).is_ok());
        for (payload, reason) in [
            (ok.replace("taken", "swallowed"), "malformed"),
            (ok.replace("metformin", "Metformin"), "invalid_field"),
            (ok.replace("metformin", ""), "invalid_field"),
            (ok.replace("metformin", "a;drop"), "invalid_field"),
            (ok.replace("metformin", &"x".repeat(33)), "invalid_field"),
            (
                ok.replace("\"device\":\"disp-7\"", "\"device\":\"disp-8\""),
                "device_mismatch",
            ),
            (ok.replace("\"v\":1", "\"v\":2"), "bad_version"),
            (
                ok.replace("\"t\":\"2026-03-01T08:00:00Z\",", ""),
                "malformed",
            ),
            ("not json".to_string(), "malformed"),
        ] {
            let e = decode(&t, payload.as_bytes()).unwrap_err();
            assert_eq!(e.reason(), reason, "{payload}: {e}");
        }
    }

    #[test]
    fn medication_ids_have_one_spelling() {
        assert_eq!(parse_medication(" metformin ").unwrap(), "metformin");
        assert_eq!(parse_medication("ramipril-5mg").unwrap(), "ramipril-5mg");
        assert_eq!(parse_medication("b12").unwrap(), "b12");
        for bad in ["", "-x", "_x", "Ramipril", "two words", "é"] {
            assert!(parse_medication(bad).is_err(), "{bad:?}");
        }
        for k in DoseKind::ALL {
            assert_eq!(DoseKind::parse(k.as_str()), Some(k));
        }
    }
}
