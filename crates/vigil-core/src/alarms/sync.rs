//! Ward-wide alarm state shared by the stations of a ward over MQTT: acknowledgements and audio
//! pauses per bed, published retained (QoS 1) at `vigil/v1/{ward}/{bed}/_station/alarms`, so
//! that every station converges and a late station picks up the current state.
//!
//! Only enrolled stations are believed ([`crate::stations`]): every message is signed with the
//! sending station's Ed25519 key (derived from its station key) over the topic and the exact
//! state text ([`seal`]), and [`Trust::admit`] is the one check every received message passes —
//! unsigned, badly signed, unknown-station, wrong-ward, future-dated, stale and replayed
//! (sequence not increasing) messages are refused with a [`Refusal`], which the engine reports as
//! a security event. What an admitted state may do is bounded by the receiving station's own
//! rules (`AlarmMachine::apply_remote`): a pause lasts at most the local pause length and the
//! local break-through rules apply; an acknowledgement names one alarm instance by its random id.
//!
//! Device topics never have a `_`-prefixed level (the telemetry parser rejects them), so these
//! topics are recognised before telemetry decoding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use vigil_alarms::shared::{AckEntry, BedAlarmState, PauseEntry, VERSION};

use crate::keys::{self, StationKey};
use crate::stations::Enrolled;
use crate::telemetry::{valid_segment, BedId, TOPIC_ROOT};

/// The last level of a station topic.
pub const STATION_LEVEL: &str = "_station";
/// A state stamped further ahead of this station's clock is refused.
pub const MAX_AHEAD_MS: i64 = 30_000;
/// A state older than this is stale: refused (its acknowledgements and pauses are long over).
pub const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Longest payload considered.
const MAX_PAYLOAD: usize = 256 * 1024;
/// Domain separation of the signatures.
const SIGNING_CONTEXT: &[u8] = b"vigil-station-alarms-v2";

/// What goes on the wire: the state's exact text and the station's signature of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub v: u32,
    pub station: String,
    /// The [`BedAlarmState`] as JSON text (signed as is).
    pub state: String,
    /// Ed25519 over [`signed_bytes`], 128 hex digits.
    pub sig: String,
}

/// What a signature covers: a context, the topic (a state cannot be moved to another bed) and
/// the state text.
pub fn signed_bytes(topic: &str, state: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + topic.len() + state.len() + 2);
    m.extend_from_slice(SIGNING_CONTEXT);
    m.push(0);
    m.extend_from_slice(topic.as_bytes());
    m.push(0);
    m.extend_from_slice(state.as_bytes());
    m
}

/// The signed message of `state` for `topic`.
pub fn seal(
    topic: &str,
    state: &BedAlarmState,
    key: &StationKey,
) -> Result<Vec<u8>, serde_json::Error> {
    seal_text(topic, &state.station, &serde_json::to_string(state)?, key)
}

/// The signed message of a state's JSON `text` as `station` for `topic` (the receiver reads
/// what the signature covers: unknown fields are ignored, never believed).
pub fn seal_text(
    topic: &str,
    station: &str,
    text: &str,
    key: &StationKey,
) -> Result<Vec<u8>, serde_json::Error> {
    let sig = key.sign(&signed_bytes(topic, text));
    serde_json::to_vec(&Sealed {
        v: VERSION,
        station: station.to_string(),
        state: text.to_string(),
        sig: crate::audit::to_hex(&sig),
    })
}

/// Why a received alarm state was refused (each is a security event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unreadable alarm state: {0}")]
    Malformed(String),
    #[error(
        "unsigned alarm state (version {0}): only signed states of enrolled stations are accepted"
    )]
    Unsigned(u32),
    #[error("alarm state from station {0:?}, which is not enrolled here")]
    UnknownStation(String),
    #[error("station {station} is not enrolled for ward {ward}")]
    WrongWard { station: String, ward: String },
    #[error("alarm state claiming station {0:?} has a bad signature (forged, or the key changed)")]
    BadSignature(String),
    #[error("alarm state of station {station} replayed: sequence {seq} after {last}")]
    Replayed {
        station: String,
        seq: u64,
        last: u64,
    },
    #[error(
        "alarm state of station {station} stamped {ahead_ms} ms ahead of this station's clock"
    )]
    Future { station: String, ahead_ms: i64 },
    #[error("alarm state of station {station} is stale ({age_ms} ms old)")]
    Stale { station: String, age_ms: i64 },
}

impl Refusal {
    /// The reject counter key.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "station_state_malformed",
            Refusal::Unsigned(_) => "station_state_unsigned",
            Refusal::UnknownStation(_) => "station_state_unknown_station",
            Refusal::WrongWard { .. } => "station_state_wrong_ward",
            Refusal::BadSignature(_) => "station_state_bad_signature",
            Refusal::Replayed { .. } => "station_state_replayed",
            Refusal::Future { .. } => "station_state_future",
            Refusal::Stale { .. } => "station_state_stale",
        }
    }

    /// The station the message claims to come from, if it got that far.
    pub fn station(&self) -> &str {
        match self {
            Refusal::Malformed(_) | Refusal::Unsigned(_) => "",
            Refusal::UnknownStation(s) | Refusal::BadSignature(s) => s,
            Refusal::WrongWard { station, .. }
            | Refusal::Replayed { station, .. }
            | Refusal::Future { station, .. }
            | Refusal::Stale { station, .. } => station,
        }
    }
}

/// Whom this station believes: itself and the enrolled stations, and the last sequence
/// admitted per station and topic.
#[derive(Debug, Clone)]
pub struct Trust {
    own: String,
    own_key: [u8; 32],
    stations: BTreeMap<String, Enrolled>,
    /// (station, topic) → (sequence, signature) of the last admitted state.
    last: BTreeMap<(String, String), (u64, String)>,
}

impl Trust {
    /// This station (`own`, its public key) and the stations IT enrolled.
    pub fn new(own: &str, own_key: [u8; 32], stations: BTreeMap<String, Enrolled>) -> Trust {
        Trust {
            own: own.to_string(),
            own_key,
            stations,
            last: BTreeMap::new(),
        }
    }

    /// Replace the enrolled stations (after IT changed them).
    pub fn set_stations(&mut self, stations: BTreeMap<String, Enrolled>) {
        self.last.retain(|(s, _), _| stations.contains_key(s));
        self.stations = stations;
    }

    /// The one check of a received alarm state of `bed` on `topic`: `Ok(Some)` to apply,
    /// `Ok(None)` for the very message admitted last (a retained message delivered again).
    pub fn admit(
        &mut self,
        topic: &str,
        bed: &BedId,
        payload: &[u8],
        now: i64,
    ) -> Result<Option<BedAlarmState>, Refusal> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Refusal::Malformed(format!("{} bytes", payload.len())));
        }
        let value: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let v = value
            .get("v")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if v != u64::from(VERSION) || value.get("sig").is_none() {
            return Err(Refusal::Unsigned(u32::try_from(v).unwrap_or(u32::MAX)));
        }
        let sealed: Sealed =
            serde_json::from_value(value).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let station: String = sealed.station.chars().take(64).collect();
        let key = if sealed.station == self.own {
            self.own_key
        } else {
            let e = self
                .stations
                .get(&sealed.station)
                .ok_or_else(|| Refusal::UnknownStation(station.clone()))?;
            if !e.wards.contains(&bed.ward) {
                return Err(Refusal::WrongWard {
                    station,
                    ward: bed.ward.clone(),
                });
            }
            e.public_key
        };
        let sig = keys::from_hex::<64>(&sealed.sig)
            .ok_or_else(|| Refusal::BadSignature(station.clone()))?;
        if !keys::verify_signature(&key, &signed_bytes(topic, &sealed.state), &sig) {
            return Err(Refusal::BadSignature(station));
        }
        let state: BedAlarmState = serde_json::from_str(&sealed.state)
            .map_err(|e| Refusal::Malformed(format!("signed state of {station}: {e}")))?;
        if state.station != sealed.station || state.v != VERSION {
            return Err(Refusal::Malformed(format!(
                "signed state of {station} names station {:?}",
                state.station.chars().take(64).collect::<String>()
            )));
        }
        if state.t_ms > now + MAX_AHEAD_MS {
            return Err(Refusal::Future {
                station,
                ahead_ms: state.t_ms.saturating_sub(now),
            });
        }
        if state.t_ms < now - MAX_AGE_MS {
            return Err(Refusal::Stale {
                station,
                age_ms: now.saturating_sub(state.t_ms),
            });
        }
        let slot = (sealed.station.clone(), topic.to_string());
        if let Some((last, last_sig)) = self.last.get(&slot) {
            if state.seq == *last && *last_sig == sealed.sig {
                return Ok(None);
            }
            if state.seq <= *last {
                return Err(Refusal::Replayed {
                    station,
                    seq: state.seq,
                    last: *last,
                });
            }
        }
        self.last.insert(slot, (state.seq, sealed.sig));
        Ok(Some(state))
    }
}

/// `vigil/v1/{ward}/{bed}/_station/alarms`.
pub fn topic(bed: &BedId) -> String {
    format!(
        "{TOPIC_ROOT}/{}/{}/{STATION_LEVEL}/alarms",
        bed.ward, bed.bed
    )
}

/// The bed of a station alarm-state topic; `None` for any other topic.
pub fn parse_topic(topic: &str) -> Option<BedId> {
    let rest = topic.strip_prefix(TOPIC_ROOT)?.strip_prefix('/')?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [ward, bed, STATION_LEVEL, "alarms"] if valid_segment(ward) && valid_segment(bed) => {
            Some(BedId::new(*ward, *bed))
        }
        _ => None,
    }
}

/// Whether a topic is a station topic (any `_station` level), never telemetry.
pub fn is_station_topic(topic: &str) -> bool {
    topic.split('/').any(|l| l == STATION_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(station: &str, seq: u64, t_ms: i64) -> BedAlarmState {
        BedAlarmState {
            v: VERSION,
            station: station.into(),
            seq,
            t_ms,
            acks: vec![],
            pause: Some(PauseEntry {
                start_ms: t_ms,
                until_ms: t_ms + 120_000,
                by: "alice".into(),
                station: station.into(),
            }),
        }
    }

    fn enrolled(station: &str, key: &StationKey, ward: &str) -> (String, Enrolled) {
        (
            station.to_string(),
            Enrolled {
                station: station.into(),
                public_key: key.public_key(),
                wards: [ward.to_string()].into(),
                label: String::new(),
                enrolled_ms: 0,
                enrolled_by: "it".into(),
            },
        )
    }

    #[test]
    fn only_signed_fresh_states_of_enrolled_stations_are_admitted() {
        let bed = BedId::new("4W", "07");
        let t = topic(&bed);
        let (me, st2, stranger) = (
            StationKey::generate(0),
            StationKey::generate(0),
            StationKey::generate(0),
        );
        let mut trust = Trust::new(
            "ST-1",
            me.public_key(),
            [enrolled("ST-2", &st2, "4W")].into(),
        );
        let now = 1_000_000_000;
        let ok = seal(&t, &state("ST-2", 5, now), &st2).expect("seal");
        assert_eq!(
            trust.admit(&t, &bed, &ok, now).expect("admitted"),
            Some(state("ST-2", 5, now))
        );
        // The same retained message again: nothing to do, no refusal.
        assert_eq!(trust.admit(&t, &bed, &ok, now + 5).expect("again"), None);
        // Own messages are checked against the own key.
        let mine = seal(&t, &state("ST-1", 1, now), &me).expect("seal");
        assert!(trust.admit(&t, &bed, &mine, now).expect("own").is_some());
        let refused = |trust: &mut Trust, p: &[u8], topic: &str, bed: &BedId| {
            trust.admit(topic, bed, p, now).expect_err("refused")
        };
        // Unsigned (version 1, as before) and unreadable.
        let v1 = br#"{"v":1,"station":"ST-2","t_ms":1,"acks":[],"pause":{"start_ms":1,"until_ms":9000000000000000,"by":"alice","ceiling":"high"}}"#;
        assert_eq!(refused(&mut trust, v1, &t, &bed), Refusal::Unsigned(1));
        assert!(matches!(
            refused(&mut trust, b"{", &t, &bed),
            Refusal::Malformed(_)
        ));
        // Signed by a stranger under an enrolled name; by a stranger under its own name.
        let forged = seal(&t, &state("ST-2", 9, now), &stranger).expect("seal");
        assert_eq!(
            refused(&mut trust, &forged, &t, &bed),
            Refusal::BadSignature("ST-2".into())
        );
        let unknown = seal(&t, &state("ST-9", 9, now), &stranger).expect("seal");
        assert_eq!(
            refused(&mut trust, &unknown, &t, &bed),
            Refusal::UnknownStation("ST-9".into())
        );
        // A state signed for another bed, moved to this one.
        let other = BedId::new("4W", "08");
        let moved = seal(&topic(&other), &state("ST-2", 9, now), &st2).expect("seal");
        assert!(matches!(
            refused(&mut trust, &moved, &t, &bed),
            Refusal::BadSignature(_)
        ));
        // A ward the station is not enrolled for.
        let ward5 = BedId::new("5E", "01");
        let w5 = seal(&topic(&ward5), &state("ST-2", 9, now), &st2).expect("seal");
        assert!(matches!(
            refused(&mut trust, &w5, &topic(&ward5), &ward5),
            Refusal::WrongWard { .. }
        ));
        // Replayed (older sequence), future-dated, stale.
        let old = seal(&t, &state("ST-2", 4, now), &st2).expect("seal");
        assert!(matches!(
            refused(&mut trust, &old, &t, &bed),
            Refusal::Replayed {
                seq: 4,
                last: 5,
                ..
            }
        ));
        let ahead = seal(&t, &state("ST-2", 10, now + 3_600_000), &st2).expect("seal");
        assert!(matches!(
            refused(&mut trust, &ahead, &t, &bed),
            Refusal::Future { .. }
        ));
        let stale = seal(&t, &state("ST-2", 11, now - MAX_AGE_MS - 1), &st2).expect("seal");
        assert!(matches!(
            refused(&mut trust, &stale, &t, &bed),
            Refusal::Stale { .. }
        ));
        // A removed station is refused from then on.
        trust.set_stations(BTreeMap::new());
        let later = seal(&t, &state("ST-2", 12, now), &st2).expect("seal");
        assert!(matches!(
            refused(&mut trust, &later, &t, &bed),
            Refusal::UnknownStation(_)
        ));
    }

    #[test]
    fn topics_round_trip_and_reject_others() {
        let bed = BedId::new("4W", "07");
        let t = topic(&bed);
        assert_eq!(t, "vigil/v1/4W/07/_station/alarms");
        assert_eq!(parse_topic(&t), Some(bed));
        assert!(is_station_topic(&t));
        assert_eq!(parse_topic("vigil/v1/4W/07/mon-1/vitals"), None);
        assert_eq!(parse_topic("vigil/v1/4W/07/_station/other"), None);
        assert_eq!(parse_topic("vigil/v1/4W/+/_station/alarms"), None);
        assert!(!is_station_topic("vigil/v1/4W/07/mon-1/vitals"));
    }
}
