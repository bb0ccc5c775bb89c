//! The alarm state a station shares with the other stations of its ward, per bed: the
//! acknowledgements of alarm instances and the audio pause. The machine produces it
//! ([`crate::AlarmMachine`]) and applies what another station sent; signing, checking and
//! publishing it is the engine's (`vigil_core::alarms::sync`).

use serde::{Deserialize, Serialize};

/// Version of the signed alarm state (1 was unsigned and is refused).
pub const VERSION: u32 = 2;

/// One acknowledgement of one alarm instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckEntry {
    pub alarm_id: String,
    /// The acknowledged alarm instance: a random id given when the station where the user
    /// acknowledged raised it (never derived from timing).
    pub instance: String,
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
    /// The station where the user paused.
    pub station: String,
}

/// Retained per bed (the signed text inside vigil-core's `alarms::sync::Sealed` message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BedAlarmState {
    pub v: u32,
    /// The sending station (its MQTT client id; enrolled at the receivers).
    pub station: String,
    /// Increases with every message the station sends (replays are refused).
    pub seq: u64,
    pub t_ms: i64,
    #[serde(default)]
    pub acks: Vec<AckEntry>,
    #[serde(default)]
    pub pause: Option<PauseEntry>,
}
