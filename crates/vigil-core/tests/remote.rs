//! Remote patients through a real Mosquitto, on the engine's clock (issue 15): a home cuff's
//! readings meet its care plan's slots, a missed slot is raised and escalated by the running
//! engine, and the cuff's buffered upload, taken in the window and received hours later,
//! resolves it as received late — one alert, never a second breach. A pill dispenser's dose
//! events meet a dose item the same way: taken on time meets it, a missed dose is an alert of
//! its own kind, the dispenser's `missed` event is history, and a dose taken late resolves it.

use crate::support;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{mosquitto_with, remote_engine, until};
use vigil_core::alarms::state::{CARE_PLAN, CARE_PLAN_DELAY_MS};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Authorized, Role};
use vigil_core::codes::Vital;
use vigil_core::dose::{DoseKind, DosePayload};
use vigil_core::engine::ManualClock;
use vigil_core::remote::{self, NewRemotePatient};
use vigil_core::store;
use vigil_core::telemetry::{utc_from_ms, BedId, Topic, VitalsPayload};
use vigil_schedule::{ItemSpec, Kind};

const H: i64 = 3_600_000;
const M: i64 = 60_000;
/// 2026-06-01T05:00:00Z: 06:00 in London (BST).
const T0: i64 = 1_780_290_000_000;
const PW: &str = "Home-care-station-2026!";

/// The alerts as stored: (item and local date, level, resolution).
fn alerts(db: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = store::open_read_only(db).expect("db");
    let mut q = conn
        .prepare("SELECT item, slot_date, level, resolution FROM remote_alerts ORDER BY id")
        .expect("query");
    q.query_map([], |r| {
        Ok((
            format!("{} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            r.get(2)?,
            r.get(3)?,
        ))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// The stored events of the `CARE_PLAN` alarm of `bed` (`raise`, `resolve`, ...).
fn care_plan_events(db: &Path, bed: &BedId) -> Vec<(String, String)> {
    let conn = store::open_read_only(db).expect("db");
    let mut q = conn
        .prepare(
            "SELECT kind, priority FROM alarm_events
             WHERE code = ?1 AND ward = ?2 AND bed = ?3 ORDER BY id",
        )
        .expect("query");
    q.query_map(rusqlite::params![CARE_PLAN, bed.ward, bed.bed], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// A charge nurse (created here) enrols a patient in London in `bed` at `T0`: the station's
/// account service and the charge nurse's proof for setting plans.
fn enrolled(db: &Path, bed: &BedId, mrn: &str, name: &str) -> (AuthService, Authorized) {
    let mut svc = AuthService::open(db, AuthConfig::default()).expect("auth");
    let carl = Actor::Local("test".into());
    svc.create_user(&carl, "carl", Role::ChargeNurse, PW, T0)
        .expect("user");
    let session = svc.login("carl", PW, T0).expect("login");
    let manage = svc
        .authorize(Some(&session), remote::MANAGE, T0)
        .expect("manage");
    let plan = svc
        .authorize(Some(&session), remote::PLAN, T0)
        .expect("plan");
    let patient = NewRemotePatient {
        mrn,
        name,
        dob: "1948-03-02",
        tz: "Europe/London",
    };
    remote::enrol(svc.connection(), &manage, bed, &patient, T0).expect("enrol");
    (svc, plan)
}

async fn wait_alerts(
    db: &Path,
    what: &str,
    ok: impl Fn(&[(String, String, Option<String>)]) -> bool,
) {
    until(what, Duration::from_secs(15), || {
        let a = alerts(db);
        (ok(&a), a)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_reading_rises_on_the_engine_clock_and_a_buffered_upload_resolves_it_late() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("home.db");

    // A charge nurse enrols the patient and sets blood pressure twice a day, 07:00-10:00 and
    // 18:00-21:00 London time (06:00-09:00Z and 17:00-20:00Z).
    let bed = BedId::new("home", "p-01");
    let (svc, plan) = enrolled(&db, &bed, "MRN-77", "Ada Home");
    let bp = [ItemSpec::new(
        "bp",
        Kind::Reading,
        "NIBP_SYS",
        "07:00-10:00, 18:00-21:00",
    )];
    remote::set_plan(svc.connection(), &plan, &bed, &bp, &[], T0).expect("plan");

    let clock = Arc::new(ManualClock::new(T0));
    // The station watches the remote ward (the test config's default is ward 4W).
    let engine = remote_engine(port, &db, Some("home"), Duration::from_millis(50), &clock).await;
    let (cuff, mut ev) = AsyncClient::new(MqttOptions::new("cuff-1", "127.0.0.1", port), 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let readings = engine.counters();
    let send = |seq: u64, taken: i64| {
        let payload =
            VitalsPayload::single("cuff-1", seq, utc_from_ms(taken), Vital::NibpSys, 131.0);
        let cuff = cuff.clone();
        let topic = Topic::vitals(&bed, "cuff-1");
        async move {
            let before = readings.readings.load(std::sync::atomic::Ordering::Relaxed);
            cuff.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&payload).expect("json"),
            )
            .await
            .expect("publish");
            let what = format!("reading {seq} admitted (rejects so far)");
            until(&what, Duration::from_secs(10), || {
                let n = readings.readings.load(std::sync::atomic::Ordering::Relaxed);
                (n > before, readings.rejects())
            })
            .await;
        }
    };

    // Morning: taken on time at 07:30 London.
    clock.set(T0 + 90 * M);
    send(1, T0 + 90 * M).await;
    engine.flush().await.expect("flush");
    // Past the morning window; then past the evening one with nothing taken in it.
    clock.set(T0 + 4 * H + 10_000);
    // A few of the alarm machine's ticks (every 250 ms) on this clock.
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Hours without data from a home cuff are its normal: no communication-lost alarm (the
    // care plan says when silence matters).
    let on_bed: Vec<String> = engine
        .snapshot()
        .alarms
        .iter()
        .filter(|a| a.bed == bed)
        .map(|a| a.code.clone())
        .collect();
    assert_eq!(on_bed, Vec::<String>::new());
    clock.set(T0 + 15 * H + 10_000);
    wait_alerts(&db, "the evening slot missed", |a| !a.is_empty()).await;
    assert_eq!(
        alerts(&db),
        [("bp 2026-06-01".into(), "warning".into(), None)],
        "only the evening slot is missed: the morning was met"
    );
    // A warning is the worklist's and a notification's, not the alarm bar's.
    engine.flush().await.expect("flush");
    assert_eq!(care_plan_events(&db, &bed), []);
    // An hour on: urgent, and the bed's CARE_PLAN alarm sounds (medium priority) apart from
    // its physiological alarms, to be acknowledged and escalated like any alarm.
    clock.set(T0 + 16 * H + 10_000);
    wait_alerts(&db, "escalated", |a| {
        a.first().is_some_and(|r| r.1 == "urgent")
    })
    .await;
    // Standing the alarm's own delay first (data catching up would have resolved it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(engine.snapshot().alarms.iter().all(|x| x.code != CARE_PLAN));
    clock.set(T0 + 16 * H + 10_000 + CARE_PLAN_DELAY_MS);
    until(
        "the CARE_PLAN alarm raised",
        Duration::from_secs(10),
        || {
            let a = engine.snapshot().alarms;
            let raised = a.iter().any(|x| {
                x.code == CARE_PLAN
                    && x.bed == bed
                    && x.priority == vigil_core::alarms::Priority::Medium
                    && x.audible
            });
            (raised, a)
        },
    )
    .await;
    // The cuff comes back in range and uploads its buffer: the evening reading, taken at
    // 19:00 London, received now. Late, not a breach: the alert resolves as received late.
    clock.set(T0 + 16 * H + 30 * M);
    send(2, T0 + 13 * H).await;
    // The watch runs a few seconds behind the clock (what is received is on its way to the
    // database): on.
    clock.set(T0 + 16 * H + 30 * M + 10_000);
    wait_alerts(&db, "resolved by the upload", |a| {
        a.first().is_some_and(|r| r.2.is_some())
    })
    .await;
    assert_eq!(
        alerts(&db),
        [(
            "bp 2026-06-01".into(),
            "urgent".into(),
            Some("received_late".into())
        )]
    );
    // Nothing urgent stands: the CARE_PLAN alarm is resolved.
    until(
        "the CARE_PLAN alarm resolved",
        Duration::from_secs(10),
        || {
            let e = care_plan_events(&db, &bed);
            (e.last().is_some_and(|k| k.0 == "resolve"), e)
        },
    )
    .await;
    assert_eq!(
        care_plan_events(&db, &bed),
        [
            ("raise".into(), "medium".into()),
            ("resolve".into(), "medium".into())
        ]
    );
    engine.shutdown().await;
}

/// The stored dose events of a bed: (medication, event, t), in time order.
fn stored_doses(db: &Path, bed: &BedId) -> Vec<(String, DoseKind, i64)> {
    let conn = store::open_read_only(db).expect("db");
    remote::review::doses(&conn, bed, 0, 100)
        .expect("doses")
        .into_iter()
        .map(|d| (d.medication, d.event, d.t_ms))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispensers_dose_events_meet_the_plan_and_a_missed_dose_is_its_own_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("home.db");

    // Metformin twice a day, 07:00-09:00 and 19:00-21:00 London (06:00-08:00Z, 18:00-20:00Z),
    // late grace 60 min; and a medication id as dispensers never spell it is refused.
    let bed = BedId::new("home", "p-02");
    let (svc, plan) = enrolled(&db, &bed, "MRN-78", "Bert Home");
    let bad = [ItemSpec::new(
        "metformin",
        Kind::Dose,
        "Metformin",
        "07:00-09:00",
    )];
    let e = remote::set_plan(svc.connection(), &plan, &bed, &bad, &[], T0).unwrap_err();
    assert!(e.to_string().contains("is not a medication id"), "{e}");
    let doses = [ItemSpec {
        late_grace_min: 60,
        ..ItemSpec::new(
            "metformin",
            Kind::Dose,
            "metformin",
            "07:00-09:00, 19:00-21:00",
        )
    }];
    remote::set_plan(svc.connection(), &plan, &bed, &doses, &[], T0).expect("plan");

    let clock = Arc::new(ManualClock::new(T0));
    let engine = remote_engine(port, &db, Some("home"), Duration::from_millis(50), &clock).await;
    let (disp, mut ev) = AsyncClient::new(MqttOptions::new("disp-2", "127.0.0.1", port), 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let counters = engine.counters();
    let send = |seq: u64, t: i64, medication: &str, event: DoseKind| {
        let payload = DosePayload::new("disp-2", seq, utc_from_ms(t), medication, event);
        let disp = disp.clone();
        let topic = Topic::dose(&bed, "disp-2");
        async move {
            let before = counters.doses.load(std::sync::atomic::Ordering::Relaxed)
                + counters.rejects().values().sum::<u64>();
            disp.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&payload).expect("json"),
            )
            .await
            .expect("publish");
            until(
                &format!("dose message {seq} handled"),
                Duration::from_secs(10),
                || {
                    let n = counters.doses.load(std::sync::atomic::Ordering::Relaxed)
                        + counters.rejects().values().sum::<u64>();
                    (n > before, counters.rejects())
                },
            )
            .await;
        }
    };

    // Morning: taken at 07:20 London, and the same event again (a QoS 1 redelivery, or the
    // dispenser re-sending it): one dose in the history.
    clock.set(T0 + 80 * M);
    send(1, T0 + 80 * M, "metformin", DoseKind::Taken).await;
    send(1, T0 + 80 * M, "metformin", DoseKind::Taken).await;
    // A compartment named as no medication id: refused, counted, nothing stored.
    send(2, T0 + 81 * M, "Metformin", DoseKind::Taken).await;
    assert_eq!(engine.counters().rejects().get("invalid_field"), Some(&1));
    engine.flush().await.expect("flush");
    assert_eq!(
        stored_doses(&db, &bed),
        [("metformin".into(), DoseKind::Taken, T0 + 80 * M)]
    );

    // Evening: the dispenser's window closes at 21:00 with the dose in it, and says so.
    clock.set(T0 + 15 * H);
    send(3, T0 + 15 * H, "metformin", DoseKind::Missed).await;
    clock.set(T0 + 15 * H + 10_000);
    wait_alerts(&db, "the evening dose missed", |a| !a.is_empty()).await;
    assert_eq!(
        alerts(&db),
        [("metformin 2026-06-01".into(), "warning".into(), None)],
        "only the evening dose is missed: the morning one was taken"
    );
    let conn = store::open_read_only(&db).expect("db");
    let kind: String = conn
        .query_row("SELECT kind FROM remote_alerts", [], |r| r.get(0))
        .expect("kind");
    assert_eq!(kind, "missed_dose");
    // The patient is told, in words that never say "take it now" for a dose.
    let text: String = conn
        .query_row(
            "SELECT text FROM remote_messages WHERE item = 'metformin' AND reason = 'missed'",
            [],
            |r| r.get(0),
        )
        .expect("a missed-dose reminder");
    assert!(
        text.starts_with("Your metformin dose due 19:00–21:00 has not been taken"),
        "{text}"
    );

    // 21:40: the patient takes it after all (the dispenser calls it late): within the plan's
    // late grace (60 min) and before the urgent level (60 min after the window), so the
    // warning resolves as taken late.
    clock.set(T0 + 15 * H + 40 * M);
    send(4, T0 + 15 * H + 40 * M, "metformin", DoseKind::Late).await;
    clock.set(T0 + 15 * H + 40 * M + 10_000);
    wait_alerts(&db, "resolved by the late dose", |a| {
        a.first().is_some_and(|r| r.2.is_some())
    })
    .await;
    assert_eq!(
        alerts(&db),
        [(
            "metformin 2026-06-01".into(),
            "warning".into(),
            Some("taken_late".into())
        )]
    );
    assert_eq!(
        stored_doses(&db, &bed),
        [
            ("metformin".into(), DoseKind::Taken, T0 + 80 * M),
            ("metformin".into(), DoseKind::Missed, T0 + 15 * H),
            ("metformin".into(), DoseKind::Late, T0 + 15 * H + 40 * M),
        ]
    );
    assert_eq!(
        engine
            .counters()
            .doses
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    // Never urgent: never on the alarm bar.
    engine.flush().await.expect("flush");
    assert_eq!(care_plan_events(&db, &bed), []);
    engine.shutdown().await;
}
