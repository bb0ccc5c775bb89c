//! Per-patient alarm limits in SQLite (schema 005): what a charge nurse set for a bed, so that the
//! engine starts with it after a restart ([`load`], called by `Engine::start`). The checks a new
//! set must pass are the alarm machine's ([`crate::alarms::limits::validate`]).
//!
//! Saving ([`save`]) joins the caller's transaction, so that the new limits and the audit entry
//! commit together.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use thiserror::Error;

use crate::alarms::{Direction, Limit, Priority};
use crate::codes::Vital;
use crate::store::StoreError;
use crate::telemetry::BedId;

#[derive(Debug, Error)]
pub enum LimitsDbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored row that cannot be read back as a limit (edited outside Vigil).
    #[error("stored limit of {bed} unreadable: {why}")]
    Corrupt { bed: String, why: String },
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Low => "low",
        Direction::High => "high",
    }
}

/// Replace the stored limits of `bed` (inside the caller's transaction, if any).
pub fn save(
    conn: &Connection,
    bed: &BedId,
    limits: &[Limit],
    user: &str,
    now_ms: i64,
) -> Result<(), LimitsDbError> {
    conn.execute(
        "INSERT INTO bed_limit_sets (ward, bed, set_by, set_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (ward, bed) DO UPDATE SET set_by = excluded.set_by, set_ms = excluded.set_ms",
        params![bed.ward, bed.bed, user, now_ms],
    )?;
    conn.execute(
        "DELETE FROM bed_limits WHERE ward = ?1 AND bed = ?2",
        params![bed.ward, bed.bed],
    )?;
    let mut ins = conn.prepare_cached(
        "INSERT INTO bed_limits
           (ward, bed, vital, direction, threshold, priority, delay_ms, hysteresis)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for l in limits {
        ins.execute(params![
            bed.ward,
            bed.bed,
            l.vital.name(),
            direction_str(l.direction),
            l.threshold,
            l.priority.as_str(),
            l.delay_ms,
            l.hysteresis
        ])?;
    }
    Ok(())
}

/// Forget the stored limits of `bed` (it starts with the defaults again).
pub fn clear(conn: &Connection, bed: &BedId) -> Result<(), LimitsDbError> {
    conn.execute(
        "DELETE FROM bed_limits WHERE ward = ?1 AND bed = ?2",
        params![bed.ward, bed.bed],
    )?;
    conn.execute(
        "DELETE FROM bed_limit_sets WHERE ward = ?1 AND bed = ?2",
        params![bed.ward, bed.bed],
    )?;
    Ok(())
}

/// Every bed's stored limits.
pub fn load(conn: &Connection) -> Result<BTreeMap<BedId, Vec<Limit>>, LimitsDbError> {
    let mut out: BTreeMap<BedId, Vec<Limit>> = BTreeMap::new();
    let mut q = conn.prepare("SELECT ward, bed FROM bed_limit_sets")?;
    let beds = q.query_map([], |r| {
        Ok(BedId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for b in beds {
        out.insert(b?, Vec::new());
    }
    let mut q = conn.prepare(
        "SELECT ward, bed, vital, direction, threshold, priority, delay_ms, hysteresis
         FROM bed_limits ORDER BY ward, bed, rowid",
    )?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let bed = BedId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        let (vital, dir, prio): (String, String, String) = (r.get(2)?, r.get(3)?, r.get(5)?);
        let corrupt = |why: String| LimitsDbError::Corrupt {
            bed: bed.key(),
            why,
        };
        let vital = Vital::from_name(&vital).ok_or_else(|| corrupt(format!("vital {vital}")))?;
        let direction = match dir.as_str() {
            "low" => Direction::Low,
            "high" => Direction::High,
            other => return Err(corrupt(format!("direction {other}"))),
        };
        let priority = Priority::parse(&prio).ok_or_else(|| corrupt(format!("priority {prio}")))?;
        let limit = Limit::new(vital, direction, r.get(4)?, priority)
            .delay(r.get(6)?)
            .hysteresis(r.get(7)?);
        out.entry(bed).or_default().push(limit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::default_limits;
    use crate::store::open;

    fn with(vital: Vital, dir: Direction, t: f64) -> Vec<Limit> {
        default_limits()
            .into_iter()
            .map(|mut l| {
                if l.vital == vital && l.direction == dir {
                    l.threshold = t;
                }
                l
            })
            .collect()
    }

    #[test]
    fn saved_limits_load_back_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("l.db");
        let bed = BedId::new("4W", "03");
        let limits = with(Vital::SpO2, Direction::Low, 86.0);
        {
            let conn = open(&path).expect("open");
            save(&conn, &bed, &limits, "charge1", 1).expect("save");
            // A bed with every limit switched off is remembered as such.
            save(&conn, &BedId::new("4W", "04"), &[], "charge1", 2).expect("save");
            // Saving again replaces.
            save(&conn, &bed, &limits, "charge1", 3).expect("save again");
        }
        let conn = open(&path).expect("reopen");
        let all = load(&conn).expect("load");
        assert_eq!(all.len(), 2);
        let mut got = all[&bed].clone();
        let mut want = limits;
        let key = |l: &Limit| l.code();
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got, want);
        assert!(all[&BedId::new("4W", "04")].is_empty());
        clear(&conn, &bed).expect("clear");
        let all = load(&conn).expect("load");
        assert!(!all.contains_key(&bed), "cleared: defaults again");
        let rows =
            crate::store::tests::count(&conn, "SELECT COUNT(*) FROM bed_limits WHERE bed = '03'");
        assert_eq!(rows, 0, "the rows go with the set");
    }

    /// The engine starts with the limits saved before a restart (and the defaults elsewhere).
    #[test]
    fn validation_catches_crossed_out_of_range_and_duplicate_limits() {
        assert_eq!(crate::alarms::limits::validate(&default_limits()), Ok(()));
        let e =
            crate::alarms::limits::validate(&with(Vital::Hr, Direction::Low, 130.0)).unwrap_err();
        assert!(
            e.contains("low limit (130) must be below the high limit (120)"),
            "{e}"
        );
        // Below, but inside both hysteresis margins: the alarm could never clear.
        let e =
            crate::alarms::limits::validate(&with(Vital::Hr, Direction::Low, 112.0)).unwrap_err();
        assert!(e.contains("by more than 10"), "{e}");
        let e =
            crate::alarms::limits::validate(&with(Vital::Hr, Direction::High, 1200.0)).unwrap_err();
        assert!(e.contains("HR HIGH: 1200 is outside 15 to 300"), "{e}");
        let e = crate::alarms::limits::validate(&with(Vital::SpO2, Direction::Low, f64::NAN))
            .unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let mut twice = default_limits();
        twice.push(twice[0]);
        assert!(crate::alarms::limits::validate(&twice)
            .unwrap_err()
            .contains("twice"));
        assert_eq!(
            crate::alarms::limits::validate(&with(Vital::SpO2, Direction::Low, 85.0)),
            Ok(())
        );
    }

    #[tokio::test]
    async fn engine_starts_with_saved_limits() {
        use crate::engine::{Engine, EngineConfig};
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("e.db");
        let bed = BedId::new("4W", "03");
        let limits = with(Vital::SpO2, Direction::Low, 85.0);
        save(&open(&db).expect("open"), &bed, &limits, "charge1", 1).expect("save");
        // No broker listens there: the engine keeps retrying, which is fine for this check.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let engine = Engine::start(EngineConfig {
            broker: format!("mqtt://127.0.0.1:{port}")
                .parse::<crate::config::BrokerUrl>()
                .expect("url")
                .into(),
            client_id: "limits-test".into(),
            ward: None,
            db_path: db,
            limits: default_limits(),
            policy: crate::ingest::IngestPolicy::default(),
            mllp: None,
        })
        .expect("engine");
        assert_eq!(engine.limits(&bed), limits);
        assert_eq!(engine.limits(&BedId::new("4W", "01")), default_limits());
        engine.shutdown().await;
    }
}
