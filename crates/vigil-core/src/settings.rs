//! Station settings that hospital IT changes in the window rather than in the config file: the
//! ward profile (which default alarm limits new patients get) and which alarm codes latch.
//! Stored in the station database (`station_settings`), read when the station starts and
//! applied to the running engine when changed ([`crate::engine::EngineHandle::set_ward_profile`],
//! [`crate::engine::EngineHandle::set_latching`]).

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use crate::alarms::news2::Band;
use crate::alarms::state::{COMM_LOST, DATA_GAP};
use crate::alarms::WardProfile;
use crate::store::StoreError;

const PROFILE: &str = "ward_profile";
const LATCHING: &str = "latching";
const LATCH_HIGH: &str = "latch_high";
const NURSES_ACK: &str = "nurses_acknowledge";
const VOLUME: &str = "alarm_volume";
const STANDBY: &str = "standby_beds";

/// Alarm volume (percent) when none was set.
pub const DEFAULT_VOLUME: u8 = 70;

/// The alarm volume cannot be set below this (percent of full scale): an alarm is never
/// inaudible because someone turned it down (IEC 60601-1-8 6.3.3.2).
pub const MIN_VOLUME: u8 = 30;
pub const MAX_VOLUME: u8 = 100;

/// A volume setting as asked for: clamped into MIN_VOLUME..=MAX_VOLUME.
pub fn clamp_volume(v: i64) -> u8 {
    v.clamp(i64::from(MIN_VOLUME), i64::from(MAX_VOLUME)) as u8
}

/// Alarm codes the window offers for latching: every limit of every ward profile, the NEWS2
/// bands, and the technical alarms. (The engine accepts any code; this is the list shown.)
pub fn latchable() -> Vec<String> {
    let mut codes: BTreeSet<String> = WardProfile::ALL
        .iter()
        .flat_map(|p| p.limits())
        .map(|l| l.code())
        .collect();
    for b in Band::ALARMING {
        codes.insert(b.code().to_string());
    }
    for c in [
        COMM_LOST,
        DATA_GAP,
        "LEADS_OFF",
        "SENSOR_OFF",
        "STORE_FAILED",
    ] {
        codes.insert(c.to_string());
    }
    codes.into_iter().collect()
}

/// The yes/no station settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Every high-priority alarm latches.
    LatchHigh,
    /// Nurses may acknowledge alarms.
    NursesAcknowledge,
}

impl Flag {
    /// The stored key (also the audit target).
    pub fn key(self) -> &'static str {
        match self {
            Flag::LatchHigh => LATCH_HIGH,
            Flag::NursesAcknowledge => NURSES_ACK,
        }
    }

    /// What the setting now says, in words (for the audit trail).
    pub fn describe(self, on: bool) -> &'static str {
        match (self, on) {
            (Flag::LatchHigh, true) => "high-priority alarms latch",
            (Flag::LatchHigh, false) => "high-priority alarms do not latch",
            (Flag::NursesAcknowledge, true) => "nurses may acknowledge",
            (Flag::NursesAcknowledge, false) => "only charge nurses acknowledge",
        }
    }
}

/// The station settings that are sets of names (stored comma-separated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// The alarm codes that latch.
    Latching,
    /// The beds in standby (`ward/bed` keys).
    Standby,
}

impl List {
    /// The stored key.
    fn key(self) -> &'static str {
        match self {
            List::Latching => LATCHING,
            List::Standby => STANDBY,
        }
    }
}

/// The settings as stored (defaults where nothing was set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationSettings {
    pub profile: WardProfile,
    pub latching: BTreeSet<String>,
    /// Every high-priority alarm latches (default: yes).
    pub latch_high: bool,
    /// Nurses may acknowledge alarms (default: yes; every acknowledgement is audited).
    pub nurses_acknowledge: bool,
    /// Alarm sound volume, percent (the player enforces its minimum).
    pub alarm_volume: u8,
    /// Beds in standby (no patient: physiological alarms off), as `ward/bed` keys; kept across
    /// a restart so a discharged bed does not start alarming again.
    pub standby: BTreeSet<String>,
}

impl Default for StationSettings {
    fn default() -> Self {
        StationSettings {
            profile: WardProfile::Adult,
            latching: BTreeSet::new(),
            latch_high: true,
            nurses_acknowledge: true,
            alarm_volume: DEFAULT_VOLUME,
            standby: BTreeSet::new(),
        }
    }
}

/// A stored yes/no: "1"/"0" (anything else: `default`, logged).
fn flag(key: &str, v: Option<String>, default: bool) -> bool {
    match v.as_deref() {
        None => default,
        Some("1") => true,
        Some("0") => false,
        Some(other) => {
            tracing::warn!(key, value = %other, "unreadable stored setting; default used");
            default
        }
    }
}

impl StationSettings {
    pub fn load(conn: &Connection) -> Result<StationSettings, StoreError> {
        let get = |key: &str| -> Result<Option<String>, StoreError> {
            Ok(conn
                .query_row(
                    "SELECT value FROM station_settings WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .optional()?)
        };
        let profile = match get(PROFILE)? {
            Some(p) => WardProfile::parse(&p).unwrap_or_else(|| {
                tracing::warn!(value = %p, "unknown stored ward profile; using adult");
                WardProfile::Adult
            }),
            None => WardProfile::Adult,
        };
        let list = |v: Option<String>| -> BTreeSet<String> {
            v.map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        let latching = list(get(LATCHING)?);
        let standby = list(get(STANDBY)?);
        let alarm_volume = match get(VOLUME)? {
            None => DEFAULT_VOLUME,
            Some(v) => v.parse::<u8>().unwrap_or_else(|_| {
                tracing::warn!(value = %v, "unreadable stored alarm volume; default used");
                DEFAULT_VOLUME
            }),
        };
        Ok(StationSettings {
            profile,
            latching,
            latch_high: flag(LATCH_HIGH, get(LATCH_HIGH)?, true),
            nurses_acknowledge: flag(NURSES_ACK, get(NURSES_ACK)?, true),
            alarm_volume,
            standby,
        })
    }

    /// Store a list setting: the latching codes, or the beds in standby.
    pub fn save_list(
        conn: &Connection,
        list: List,
        items: &BTreeSet<String>,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let v: Vec<&str> = items.iter().map(String::as_str).collect();
        put(conn, list.key(), &v.join(","), by, now_ms)
    }

    /// Store a yes/no setting.
    pub fn save_flag(
        conn: &Connection,
        flag: Flag,
        on: bool,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        put(conn, flag.key(), if on { "1" } else { "0" }, by, now_ms)
    }

    /// Store the alarm volume (percent, as the player clamped it).
    pub fn save_volume(
        conn: &Connection,
        percent: u8,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        put(conn, VOLUME, &percent.to_string(), by, now_ms)
    }

    /// Store the ward profile.
    pub fn save_profile(
        conn: &Connection,
        profile: WardProfile,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        put(conn, PROFILE, profile.as_str(), by, now_ms)
    }
}

fn put(conn: &Connection, key: &str, value: &str, by: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO station_settings (key, value, updated_ms, updated_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms,
           updated_by = excluded.updated_by",
        params![key, value, now_ms, by],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let conn = crate::store::open(&path).unwrap();
            assert_eq!(
                StationSettings::load(&conn).unwrap(),
                StationSettings::default()
            );
            StationSettings::save_profile(&conn, WardProfile::Neonatal, "it1", 5).unwrap();
            let codes: BTreeSet<String> = ["SPO2_LOW", "COMM_LOST"].map(String::from).into();
            StationSettings::save_list(&conn, List::Latching, &codes, "it1", 6).unwrap();
        }
        let conn = crate::store::open(&path).unwrap();
        let s = StationSettings::load(&conn).unwrap();
        assert_eq!(s.profile, WardProfile::Neonatal);
        assert_eq!(
            s.latching.iter().map(String::as_str).collect::<Vec<_>>(),
            ["COMM_LOST", "SPO2_LOW"]
        );
        StationSettings::save_list(&conn, List::Latching, &BTreeSet::new(), "it1", 7).unwrap();
        assert!(StationSettings::load(&conn).unwrap().latching.is_empty());
        // Issue 12 defaults: high alarms latch, nurses acknowledge, volume 70 %.
        assert!(s.latch_high && s.nurses_acknowledge);
        assert_eq!(s.alarm_volume, DEFAULT_VOLUME);
        StationSettings::save_flag(&conn, Flag::LatchHigh, false, "it1", 8).unwrap();
        StationSettings::save_flag(&conn, Flag::NursesAcknowledge, false, "it1", 8).unwrap();
        StationSettings::save_volume(&conn, 45, "nurse1", 9).unwrap();
        let s = StationSettings::load(&conn).unwrap();
        assert!(!s.latch_high && !s.nurses_acknowledge);
        assert_eq!(s.alarm_volume, 45);
        let beds: BTreeSet<String> = ["4W/01", "4W/07"].map(String::from).into();
        StationSettings::save_list(&conn, List::Standby, &beds, "charge1", 10).unwrap();
        assert_eq!(StationSettings::load(&conn).unwrap().standby, beds);
    }

    #[test]
    fn every_default_limit_code_can_be_made_to_latch() {
        let codes = latchable();
        for p in WardProfile::ALL {
            for l in p.limits() {
                assert!(codes.contains(&l.code()), "{}", l.code());
            }
        }
        assert!(codes.iter().any(|c| c == "SPO2_LOW"));
        assert!(codes.iter().any(|c| c == "COMM_LOST"));
    }
}
