//! Ward-wide alarm state shared by the stations of a ward over MQTT: acknowledgements and audio
//! pauses per bed, published retained (QoS 1) at `vigil/v1/{ward}/{bed}/_station/alarms`, so
//! that every station converges and a late station picks up the current state.
//!
//! Device topics never have a `_`-prefixed level (the telemetry parser rejects them), so these
//! topics are recognised before telemetry decoding.

use serde::{Deserialize, Serialize};

use crate::telemetry::{valid_segment, BedId, TOPIC_ROOT};

/// The last level of a station topic.
pub const STATION_LEVEL: &str = "_station";

/// One acknowledgement of one alarm instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckEntry {
    pub alarm_id: String,
    /// When the acknowledged condition began (station clock).
    pub onset_ms: i64,
    /// When it was acknowledged.
    pub t_ms: i64,
    pub user: String,
    /// The station where the user acknowledged it.
    pub station: String,
}

/// An audio pause of a bed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseEntry {
    pub start_ms: i64,
    /// Ends at this time (a pause ended early has `until_ms` at the end).
    pub until_ms: i64,
    pub by: String,
    /// Only alarms above this priority break through (`low` / `medium` / `high`).
    pub ceiling: String,
}

/// Retained per bed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BedAlarmState {
    pub v: u32,
    pub station: String,
    pub t_ms: i64,
    #[serde(default)]
    pub acks: Vec<AckEntry>,
    #[serde(default)]
    pub pause: Option<PauseEntry>,
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
