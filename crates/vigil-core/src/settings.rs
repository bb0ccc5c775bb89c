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

/// The settings as stored (defaults where nothing was set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StationSettings {
    pub profile: WardProfile,
    pub latching: BTreeSet<String>,
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
        let latching = get(LATCHING)?
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(StationSettings { profile, latching })
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

    /// Store the set of latching codes.
    pub fn save_latching(
        conn: &Connection,
        latching: &BTreeSet<String>,
        by: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let v: Vec<&str> = latching.iter().map(String::as_str).collect();
        put(conn, LATCHING, &v.join(","), by, now_ms)
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
            StationSettings::save_latching(&conn, &codes, "it1", 6).unwrap();
        }
        let conn = crate::store::open(&path).unwrap();
        let s = StationSettings::load(&conn).unwrap();
        assert_eq!(s.profile, WardProfile::Neonatal);
        assert_eq!(
            s.latching.iter().map(String::as_str).collect::<Vec<_>>(),
            ["COMM_LOST", "SPO2_LOW"]
        );
        StationSettings::save_latching(&conn, &BTreeSet::new(), "it1", 7).unwrap();
        assert!(StationSettings::load(&conn).unwrap().latching.is_empty());
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
