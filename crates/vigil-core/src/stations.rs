//! The ward's other stations that IT enrolled (schema 010): whose signed alarm state this
//! station accepts ([`crate::alarms::sync`]). Each is enrolled with its id (its MQTT client id),
//! its Ed25519 public key (derived from that station's own station key, [`StationKey::public_key`];
//! `vigilctl station key` prints it) and the wards whose alarm state it may send.
//!
//! Enrolling and removing are station actions: they need an [`Authorized`] proof for
//! [`Permission::ManageDevices`] (IT's "who may publish here" permission, as for devices) and are
//! recorded in the audit trail in the same transaction. The window and `vigilctl station` are
//! adapters over [`enrol`] / [`remove`]; a running engine takes the new list with
//! `EngineHandle::set_stations`.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

use crate::audit::{actions, Audit, AuditError};
use crate::auth::{AuthError, Authorized, Permission};
use crate::keys::{self, StationKey};
use crate::store::in_tx;
use crate::telemetry::valid_segment;

#[derive(Debug, Error)]
pub enum StationError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("station {0} is not enrolled")]
    NotEnrolled(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// An enrolled station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub station: String,
    pub public_key: [u8; 32],
    /// The wards whose alarm state it may send.
    pub wards: BTreeSet<String>,
    pub label: String,
    pub enrolled_ms: i64,
    pub enrolled_by: String,
}

impl Enrolled {
    /// The public key as enrolled: 64 hex digits.
    pub fn key_hex(&self) -> String {
        crate::audit::to_hex(&self.public_key)
    }

    /// A short fingerprint of the key (first 16 hex digits), for people and the audit trail.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key)
    }
}

/// The first 16 hex digits of a public key.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    crate::audit::to_hex(&public_key[..8])
}

/// A station id as typed: its MQTT client id, 1-64 characters of `A-Z a-z 0-9 . _ -` (the
/// one parser of station ids).
pub fn parse_station_id(s: &str) -> Result<String, StationError> {
    let s = s.trim();
    if valid_segment(s) {
        Ok(s.to_string())
    } else {
        Err(StationError::Invalid(format!(
            "station id {:?}: 1-64 characters of A-Z a-z 0-9 . _ - (its MQTT client id)",
            s.chars().take(80).collect::<String>()
        )))
    }
}

/// An Ed25519 public key as printed by `vigilctl station key`: 64 hex digits.
pub fn parse_public_key(s: &str) -> Result<[u8; 32], StationError> {
    keys::from_hex::<32>(s).ok_or_else(|| {
        StationError::Invalid(
            "public key: expected 64 hex digits (`vigilctl station key` at that station)".into(),
        )
    })
}

/// Wards as typed: comma-separated ward names, at least one.
pub fn parse_wards(s: &str) -> Result<BTreeSet<String>, StationError> {
    let wards: BTreeSet<String> = s
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if wards.is_empty() {
        return Err(StationError::Invalid(
            "wards: at least one ward whose alarm state the station may send".into(),
        ));
    }
    if let Some(bad) = wards.iter().find(|w| !valid_segment(w)) {
        return Err(StationError::Invalid(format!(
            "ward {bad:?}: 1-64 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(wards)
}

/// This station's own public key, to enrol at the others.
pub fn own_public_key(key: &StationKey) -> String {
    crate::audit::to_hex(&key.public_key())
}

/// Enrol a station (or replace its key or wards): from now on its signed alarm state for those
/// wards is accepted. Audited in the same transaction (with the key's fingerprint, and the one
/// it replaces).
pub fn enrol(
    conn: &Connection,
    auth: &Authorized,
    station: &str,
    public_key: &str,
    wards: &str,
    label: &str,
    now_ms: i64,
) -> Result<Enrolled, StationError> {
    let by = auth.require(Permission::ManageDevices)?;
    let station = parse_station_id(station)?;
    let public_key = parse_public_key(public_key)?;
    let wards = parse_wards(wards)?;
    let label: String = label
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    in_tx(conn, |conn| {
        let before = get(conn, &station)?;
        let e = Enrolled {
            station: station.clone(),
            public_key,
            wards: wards.clone(),
            label: label.clone(),
            enrolled_ms: now_ms,
            enrolled_by: by.to_string(),
        };
        conn.execute(
            "INSERT INTO stations (station, public_key, wards, label, enrolled_ms, enrolled_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (station) DO UPDATE SET public_key = ?2, wards = ?3, label = ?4,
               enrolled_ms = ?5, enrolled_by = ?6",
            params![station, e.key_hex(), join(&wards), label, now_ms, by],
        )?;
        let replaced = before
            .map(|b| format!("; replaces key {}", b.fingerprint()))
            .unwrap_or_default();
        Audit::append(
            conn,
            by,
            actions::STATION_ENROL,
            &station,
            &format!(
                "key {}; wards {}; label {label:?}{replaced}",
                e.fingerprint(),
                join(&wards)
            ),
            now_ms,
        )?;
        Ok(e)
    })
}

/// Remove an enrolled station: its alarm state is refused from now on. Audited in the same
/// transaction.
pub fn remove(
    conn: &Connection,
    auth: &Authorized,
    station: &str,
    now_ms: i64,
) -> Result<(), StationError> {
    let by = auth.require(Permission::ManageDevices)?;
    let station = parse_station_id(station)?;
    in_tx(conn, |conn| {
        let Some(before) = get(conn, &station)? else {
            return Err(StationError::NotEnrolled(station.clone()));
        };
        conn.execute("DELETE FROM stations WHERE station = ?1", [&station])?;
        Audit::append(
            conn,
            by,
            actions::STATION_REMOVE,
            &station,
            &format!("key {}", before.fingerprint()),
            now_ms,
        )?;
        Ok(())
    })
}

fn join(wards: &BTreeSet<String>) -> String {
    wards.iter().cloned().collect::<Vec<_>>().join(",")
}

fn from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, i64, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn finish(
    (station, key, wards, label, enrolled_ms, enrolled_by): (
        String,
        String,
        String,
        String,
        i64,
        String,
    ),
) -> Result<Enrolled, StationError> {
    let public_key = parse_public_key(&key).map_err(|_| {
        StationError::Invalid(format!("stored key of station {station} is unreadable"))
    })?;
    Ok(Enrolled {
        wards: parse_wards(&wards).unwrap_or_default(),
        station,
        public_key,
        label,
        enrolled_ms,
        enrolled_by,
    })
}

const COLUMNS: &str = "station, public_key, wards, label, enrolled_ms, enrolled_by";

/// One enrolled station.
pub fn get(conn: &Connection, station: &str) -> Result<Option<Enrolled>, StationError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM stations WHERE station = ?1"),
        [station],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

/// Every enrolled station, by id.
pub fn list(conn: &Connection) -> Result<Vec<Enrolled>, StationError> {
    let mut q = conn.prepare(&format!("SELECT {COLUMNS} FROM stations ORDER BY station"))?;
    let rows = q.query_map([], from_row)?;
    let mut out = Vec::new();
    for r in rows {
        match finish(r?) {
            Ok(e) => out.push(e),
            // One unreadable row must not stop the station; that station stays refused.
            Err(e) => tracing::error!(error = %e, "enrolled station skipped"),
        }
    }
    Ok(out)
}

/// The enrolled stations by id, as the engine holds them.
pub fn load(conn: &Connection) -> Result<BTreeMap<String, Enrolled>, StationError> {
    Ok(list(conn)?
        .into_iter()
        .map(|e| (e.station.clone(), e))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Actor, AuthConfig, AuthService, Role};

    fn admin(dir: &std::path::Path) -> (Authorized, Authorized) {
        const PW: &str = "Ward4-station-test-2026!";
        let mut svc = AuthService::open(&dir.join("auth.db"), AuthConfig::default()).expect("auth");
        svc.create_user(&Actor::Local("t".into()), "it", Role::Admin, PW, 1)
            .expect("user");
        svc.create_user(&Actor::Local("t".into()), "cn", Role::ChargeNurse, PW, 1)
            .expect("user");
        let now = chrono::Utc::now().timestamp_millis();
        let s = svc.login("it", PW, now).expect("login");
        let it = svc
            .authorize(Some(&s), Permission::ManageDevices, now)
            .expect("authorised");
        let s = svc.login("cn", PW, now).expect("login");
        let cn = svc
            .authorize(Some(&s), Permission::AcknowledgeAlarm, now)
            .expect("authorised");
        (it, cn)
    }

    #[test]
    fn enrol_replace_remove_are_checked_and_audited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (it, cn) = admin(dir.path());
        let conn = crate::store::open(&dir.path().join("s.db")).expect("db");
        let key = StationKey::generate(0);
        let pk = own_public_key(&key);
        // The wrong permission, bad ids, keys and wards are refused; nothing is stored.
        assert!(matches!(
            enrol(&conn, &cn, "ST-2", &pk, "4W", "", 10),
            Err(StationError::Auth(_))
        ));
        for (id, k, w) in [
            ("ST 2", pk.as_str(), "4W"),
            ("_ST", pk.as_str(), "4W"),
            ("ST-2", "abcd", "4W"),
            ("ST-2", pk.as_str(), ""),
            ("ST-2", pk.as_str(), "4W,+"),
        ] {
            assert!(
                matches!(
                    enrol(&conn, &it, id, k, w, "", 10),
                    Err(StationError::Invalid(_))
                ),
                "{id} {k} {w}"
            );
        }
        assert!(list(&conn).expect("list").is_empty());
        let e = enrol(&conn, &it, "ST-2", &pk, "4W, 5E", "north desk", 10).expect("enrol");
        assert_eq!(e.public_key, key.public_key());
        assert_eq!(load(&conn).expect("load").get("ST-2"), Some(&e));
        assert_eq!(
            e.wards.iter().map(String::as_str).collect::<Vec<_>>(),
            ["4W", "5E"]
        );
        let other = own_public_key(&StationKey::generate(0));
        enrol(&conn, &it, "ST-2", &other, "4W", "", 20).expect("re-enrol");
        assert!(matches!(
            remove(&conn, &cn, "ST-2", 30),
            Err(StationError::Auth(_))
        ));
        remove(&conn, &it, "ST-2", 30).expect("remove");
        assert!(matches!(
            remove(&conn, &it, "ST-2", 40),
            Err(StationError::NotEnrolled(_))
        ));
        let trail = Audit::list(&conn, &Default::default()).expect("trail");
        let mine: Vec<_> = trail
            .iter()
            .filter(|a| a.action.starts_with("station_"))
            .map(|a| (a.action.as_str(), a.actor.as_str(), a.detail.clone()))
            .collect();
        assert_eq!(mine.len(), 3, "{mine:?}");
        assert_eq!(mine[0].0, actions::STATION_ENROL);
        assert!(mine[1]
            .2
            .contains(&format!("replaces key {}", e.fingerprint())));
        assert_eq!(mine[2].0, actions::STATION_REMOVE);
        assert!(mine.iter().all(|m| m.1 == "it"));
    }
}
