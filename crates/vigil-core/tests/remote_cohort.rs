//! The simulated remote cohort through a real Mosquitto, on compressed time (issue 15): the
//! engine on a manual clock, the cohort's publisher on the same clock, its history uploaded at
//! start and the cohort enrolled after it (as the zero-config station does), then two simulated
//! days in half-hour steps. At every step the standing alerts are exactly those the script
//! implies; at the end the missed-reading and missed-dose alerts are exactly the slots the
//! script misses (a pill dispenser's skipped evening dose among them), the
//! clinic's batches resolved what they raised as received late, the silent cuff is a silent
//! device, and the clinic's out-of-order uploads are stored with their own times, in order.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use support::{mosquitto_with, remote_engine, until};
use tokio::sync::watch;
use vigil_core::auth::{AuthConfig, AuthService};
use vigil_core::codes::Vital;
use vigil_core::engine::{Clock, ManualClock};
use vigil_core::remote::cohort::seed;
use vigil_core::remote::watch::WatchSettings;
use vigil_core::{query, store};
use vigil_sim::cohort::{Behaviour, Cohort};
use vigil_sim::remote::{self as home, CohortConfig, Progress};

const M: i64 = 60_000;
const H: i64 = 60 * M;
/// 2026-02-10T00:00:00Z: the cohort's start (no DST change in its zones for days around).
const T0: i64 = 1_770_681_600_000;
/// The station's first start, with 12 h of the cohort's history.
const T1: i64 = T0 + 12 * H;
/// The end: two days of the script.
const END: i64 = T0 + 48 * H;
/// The clock's steps.
const STEP: i64 = 30 * M;
const WAIT: Duration = Duration::from_secs(15);

/// An alert's key: (bed, item, local date, index); device silence as (bed, "devices", "", 0).
type Key = (String, String, String, u32);

/// When the engine receives a message the script publishes at `published_ms`: the history at
/// the first start, else at the first step at or after it.
fn received(t1: i64, published_ms: i64) -> i64 {
    if published_ms < t1 {
        t1
    } else {
        t1 + (published_ms - t1 + STEP - 1) / STEP * STEP
    }
}

/// The alerts that must stand once the clock is at `x` (the watch evaluates `settle` behind
/// it), for a station first started at `t1`: every slot ended by then with nothing taken in it
/// received by then, and every device silent for a day by then.
fn expected_standing(c: &Cohort, t1: i64, x: i64, settle: i64) -> BTreeSet<Key> {
    let at = x - settle;
    let silent_after = WatchSettings::default().silent_after_ms;
    let mut out = BTreeSet::new();
    for p in c.patients() {
        for s in c.slots(p, T0, at) {
            if s.reading
                .is_none_or(|(_, published)| received(t1, published) > at)
            {
                out.insert(s.alert_key());
            }
        }
        let last = c
            .taken(p, T0, x + 1)
            .iter()
            .map(|m| received(t1, m.published_ms))
            .filter(|&r| r <= x)
            .max()
            .unwrap_or(T0)
            .max(T0);
        if at >= last + silent_after {
            out.insert((p.bed.key(), "devices".into(), String::new(), 0));
        }
    }
    out
}

/// A stored alert: its key, kind, resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    key: Key,
    kind: String,
    resolution: Option<String>,
}

fn rows(conn: &Connection) -> Vec<Row> {
    let mut q = conn
        .prepare_cached(
            "SELECT p.ward || '/' || p.bed, a.kind, a.item, a.slot_date, a.slot_index, a.resolution
             FROM remote_alerts a JOIN remote_patients p ON p.id = a.patient ORDER BY a.id",
        )
        .expect("query");
    q.query_map([], |r| {
        let kind: String = r.get(1)?;
        let silent = kind == "device_silent";
        Ok(Row {
            key: (
                r.get(0)?,
                r.get(2)?,
                if silent { String::new() } else { r.get(3)? },
                r.get(4)?,
            ),
            kind,
            resolution: r.get(5)?,
        })
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn standing(conn: &Connection) -> BTreeSet<Key> {
    rows(conn)
        .into_iter()
        .filter(|r| r.resolution.is_none())
        .map(|r| r.key)
        .collect()
}

fn stored_readings(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM numerics WHERE ward = 'home'",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

/// Stop the cohort's publisher (10 s at most): everything it published was acknowledged, and
/// the station refused nothing; then the engine.
async fn stop(
    stop_tx: watch::Sender<bool>,
    publisher: tokio::task::JoinHandle<Result<Progress, vigil_sim::SimError>>,
    engine: vigil_core::engine::Engine,
) {
    stop_tx.send_replace(true);
    let done = tokio::time::timeout(Duration::from_secs(10), publisher)
        .await
        .expect("publisher stops")
        .expect("task")
        .expect("publisher");
    assert_eq!(done.acknowledged, done.published);
    assert!(
        engine.counters().rejects().is_empty(),
        "{:?}",
        engine.counters().rejects()
    );
    engine.shutdown().await;
}

/// Readings (one per vital) the script publishes before `x` inclusive, from the cohort's start.
fn published_readings(c: &Cohort, x: i64) -> i64 {
    vigil_sim::cohort::publications(c, c.origin_ms(), x + 1)
        .iter()
        .map(|(_, m)| m.obs.len() as i64)
        .sum()
}

fn read_only(db: &Path) -> Connection {
    store::open_read_only(db).expect("read-only connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cohort_on_compressed_time_raises_exactly_the_missed_alerts_its_script_implies() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("home.db");
    let svc = AuthService::open(&db, AuthConfig::default()).expect("auth");

    let clock = Arc::new(ManualClock::new(T1));
    let engine = remote_engine(port, &db, Some("home"), Duration::from_millis(20), &clock).await;

    // The publisher on the station's (manual) clock, with 12 h of history.
    let mut pub_cfg = CohortConfig::new(
        format!("mqtt://127.0.0.1:{port}")
            .parse::<vigil_core::config::BrokerUrl>()
            .expect("url"),
        T1,
        12,
    );
    pub_cfg.poll = Duration::from_millis(5);
    assert_eq!(pub_cfg.origin_ms, T0);
    let cohort = pub_cfg.cohort();
    let members = home::members(&cohort);
    let c = Arc::clone(&clock);
    let now: home::TimeSource = Arc::new(move || c.now_ms());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (progress_tx, progress) = watch::channel(Progress::default());
    let publisher = tokio::spawn(home::run(pub_cfg, now, stop_rx, progress_tx));

    // The history arrives, stored with its own times, before anyone is enrolled.
    let conn = read_only(&db);
    let history = published_readings(&cohort, T1);
    assert!(history > 40, "{history}");
    until("the history stored", WAIT, || {
        let n = stored_readings(&conn);
        (n == history, (n, history, engine.counters().rejects()))
    })
    .await;
    // The clock runs on past the watch's settling time, and the watch's tick that may have
    // read the clock before is over (ticks every 20 ms), before the cohort is enrolled: as
    // `run_station` waits, so that no tick sees the stays before their history.
    let settle = WatchSettings::default().settle_ms;
    clock.set(T1 + settle + 1_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seeded = seed(&svc, &members, T0, clock.now_ms()).expect("seed");
    assert_eq!(seeded.enrolled.len(), members.len());

    // Two days in half-hour steps: every step, what was published stored and the standing
    // alerts exactly those the script implies.
    let mut ever: BTreeSet<Key> = BTreeSet::new();
    let mut x = T1;
    while x < END {
        x += STEP;
        clock.set(x);
        until("the publisher at the clock", WAIT, || {
            let p = *progress.borrow();
            (p.through_ms > x, p)
        })
        .await;
        let want = published_readings(&cohort, x);
        until("what was published stored", WAIT, || {
            let n = stored_readings(&conn);
            (n == want, (x, n, want))
        })
        .await;
        let expected = expected_standing(&cohort, T1, x, settle);
        until("the standing alerts as the script implies", WAIT, || {
            let got = standing(&conn);
            let diff: Vec<_> = got.symmetric_difference(&expected).cloned().collect();
            (got == expected, (x, diff))
        })
        .await;
        ever.extend(expected);
    }

    // Missed: exactly the slots the script misses, standing.
    let at = END - settle;
    let missed: BTreeSet<Key> = cohort
        .patients()
        .iter()
        .flat_map(|p| cohort.missed(p, T0, at))
        .map(|s| s.alert_key())
        .collect();
    let all = rows(&conn);
    let missed_standing: BTreeSet<Key> = all
        .iter()
        .filter(|r| {
            (r.kind == "missed_reading" || r.kind == "missed_dose") && r.resolution.is_none()
        })
        .map(|r| r.key.clone())
        .collect();
    assert_eq!(missed_standing, missed);
    let forgetful = cohort.with(Behaviour::ForgetsEvenings).expect("forgetful");
    let silent = cohort.with(Behaviour::CuffStops).expect("silent cuff");
    let of = |bed: &str| missed.iter().filter(|k| k.0 == bed).count();
    assert_eq!(of(&forgetful.bed.key()), 2, "two evenings forgotten");
    assert_eq!(
        of(&silent.bed.key()),
        2,
        "the cuff's slots after it stopped"
    );
    // The dispenser of the patient who skips the evening dose every other day: one of the
    // two evenings, a missed dose (not a missed reading).
    let skipper = cohort
        .with(Behaviour::SkipsEveningDose)
        .expect("skips doses");
    assert_eq!(of(&skipper.bed.key()), 1, "one evening dose skipped");
    assert!(all.iter().any(|r| r.key.0 == skipper.bed.key()
        && r.key.1 == vigil_sim::cohort::MEDICATION
        && r.kind == "missed_dose"));
    assert_eq!(
        missed.len(),
        of(&forgetful.bed.key()) + of(&silent.bed.key()) + of(&skipper.bed.key()),
        "nobody else misses anything"
    );

    // The clinic: its pending batches raised alerts, each resolved as received late.
    let clinic = cohort.with(Behaviour::ClinicBatches).expect("clinic");
    let clinic_rows: Vec<&Row> = all.iter().filter(|r| r.key.0 == clinic.bed.key()).collect();
    assert!(clinic_rows.len() >= 4, "{clinic_rows:?}");
    assert!(
        clinic_rows
            .iter()
            .all(|r| r.kind == "missed_reading" && r.resolution.as_deref() == Some("received_late")),
        "{clinic_rows:?}"
    );
    // Every alert ever raised is one the script implied at a step, raised once; those that
    // no longer stand were all resolved by a late upload, and all were the clinic's.
    let keys: BTreeSet<Key> = all.iter().map(|r| r.key.clone()).collect();
    assert_eq!(
        keys,
        ever,
        "no alert the script does not imply: {:?}",
        all.iter()
            .filter(|r| !ever.contains(&r.key))
            .collect::<Vec<_>>()
    );
    assert_eq!(all.len(), keys.len(), "each slot alerted once");
    let resolved: BTreeSet<Key> = all
        .iter()
        .filter(|r| r.resolution.is_some())
        .map(|r| r.key.clone())
        .collect();
    let now_standing = standing(&conn);
    assert_eq!(
        resolved,
        ever.difference(&now_standing)
            .cloned()
            .collect::<BTreeSet<Key>>()
    );
    assert!(
        resolved.iter().all(|k| k.0 == clinic.bed.key()),
        "{resolved:?}"
    );
    eprintln!(
        "alerts: {} missed standing, {} resolved received late, {} rows; {} readings stored",
        missed_standing.len(),
        resolved.len(),
        all.len(),
        stored_readings(&conn)
    );

    // The silent cuff: a silent device, standing; nobody else's.
    let silent_rows: Vec<&Row> = all.iter().filter(|r| r.kind == "device_silent").collect();
    assert_eq!(silent_rows.len(), 1, "{silent_rows:?}");
    assert_eq!(silent_rows[0].key.0, silent.bed.key());
    assert_eq!(silent_rows[0].resolution, None);

    // The clinic's batches (uploaded newest first) are stored with their own times: the
    // trend has them in time order with the script's values.
    let script: BTreeMap<i64, f64> = cohort
        .readings(clinic, T0, END)
        .into_iter()
        .filter(|r| r.vital == Vital::NibpSys && received(T1, r.published_ms) <= END)
        .map(|r| (r.taken_ms, r.value))
        .collect();
    let trend = query::trend(&conn, &clinic.bed, Vital::NibpSys, T0, END, 1).expect("trend");
    let stored: Vec<(i64, f64)> = trend.iter().map(|b| (b.t_ms, b.mean)).collect();
    assert_eq!(stored, script.into_iter().collect::<Vec<_>>());
    let batches = cohort.publications(clinic, T1, END);
    assert!(
        batches
            .windows(2)
            .any(|w| w[0].published_ms == w[1].published_ms && w[0].taken_ms > w[1].taken_ms),
        "some batch was sent out of order"
    );

    stop(stop_tx, publisher, engine).await;
    // Compressed time: two days in about a second here; a figure, not a bound (the machine
    // may be busy).
    eprintln!("two simulated days took {:?}", started.elapsed());
}

/// The zero-config start (`vigil_sim::remote::run_station`, as the desktop station runs it):
/// 72 h of history uploaded at once, the cohort enrolled only once that history has settled,
/// so that the watch raises the history's missed readings — and nothing for the slots the
/// history meets, which it would otherwise see missed for a few seconds. Within seconds of a
/// first start the worklist has its patients and findings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_enrols_the_cohort_after_its_history_and_raises_only_what_it_missed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("home.db");
    let t1 = T0 + 72 * H;
    let clock = Arc::new(ManualClock::new(t1));
    // Zero-config: every ward.
    let engine = remote_engine(port, &db, None, Duration::from_millis(50), &clock).await;
    let url = format!("mqtt://127.0.0.1:{port}")
        .parse::<vigil_core::config::BrokerUrl>()
        .expect("url");
    let pub_cfg = CohortConfig::new(url, t1, vigil_sim::cohort::DEFAULT_BACKFILL_HOURS);
    assert_eq!(pub_cfg.origin_ms, T0);
    let cohort = pub_cfg.cohort();
    let c = Arc::clone(&clock);
    let now: home::TimeSource = Arc::new(move || c.now_ms());
    let (stop_tx, stop_rx) = watch::channel(false);
    let station = tokio::spawn(home::run_station(pub_cfg, db.clone(), now, stop_rx));

    // The history, readings up to 72 h old, stored (as late history, never alarmed on).
    let conn = read_only(&db);
    let history = published_readings(&cohort, t1);
    until("the history stored", WAIT, || {
        let n = stored_readings(&conn);
        (n == history, (n, history, engine.counters().rejects()))
    })
    .await;
    let live_alarms = engine.snapshot().alarms;
    assert!(
        live_alarms.iter().all(|a| a.bed.ward != "home"),
        "{live_alarms:?}"
    );
    // The station's clock runs on meanwhile.
    let settle = WatchSettings::default().settle_ms;
    clock.set(t1 + settle + 1_000);
    let enrolled = || -> i64 {
        conn.query_row("SELECT COUNT(*) FROM remote_patients", [], |r| r.get(0))
            .expect("count")
    };
    until("enrolled", Duration::from_secs(40), || {
        let n = enrolled();
        (n >= 20, n)
    })
    .await;
    let expected = expected_standing(&cohort, t1, clock.now_ms(), settle);
    until("the history's findings", WAIT, || {
        let got = standing(&conn);
        (
            got == expected,
            (got.symmetric_difference(&expected)
                .cloned()
                .collect::<Vec<_>>()),
        )
    })
    .await;
    // A moment more: nothing else rises, and nothing was raised to be resolved at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = rows(&conn);
    assert!(all.iter().all(|r| r.resolution.is_none()), "{all:?}");
    assert_eq!(all.len(), expected.len(), "{all:?}");
    let forgetful = cohort.with(Behaviour::ForgetsEvenings).expect("forgetful");
    assert!(
        all.iter()
            .filter(|r| r.key.0 == forgetful.bed.key())
            .count()
            >= 3,
        "three evenings forgotten: {all:?}"
    );
    let silent = cohort.with(Behaviour::CuffStops).expect("silent");
    assert!(all
        .iter()
        .any(|r| r.key.0 == silent.bed.key() && r.kind == "missed_reading"));

    stop(stop_tx, station, engine).await;
}
