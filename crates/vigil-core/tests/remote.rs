//! Remote patients through a real Mosquitto, on the engine's clock (issue 15): a home cuff's
//! readings meet its care plan's slots, a missed slot is raised and escalated by the running
//! engine, and the cuff's buffered upload, taken in the window and received hours later,
//! resolves it as received late — one alert, never a second breach.

use crate::support;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{mosquitto_with, remote_engine, until};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Role};
use vigil_core::codes::Vital;
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
    let mut svc = AuthService::open(&db, AuthConfig::default()).expect("auth");
    svc.create_user(
        &Actor::Local("test".into()),
        "carl",
        Role::ChargeNurse,
        PW,
        T0,
    )
    .expect("user");
    let session = svc.login("carl", PW, T0).expect("login");
    let manage = svc
        .authorize(Some(&session), remote::MANAGE, T0)
        .expect("manage");
    let plan = svc
        .authorize(Some(&session), remote::PLAN, T0)
        .expect("plan");
    let bed = BedId::new("home", "p-01");
    let patient = NewRemotePatient {
        mrn: "MRN-77",
        name: "Ada Home",
        dob: "1948-03-02",
        tz: "Europe/London",
    };
    remote::enrol(svc.connection(), &manage, &bed, &patient, T0).expect("enrol");
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    clock.set(T0 + 15 * H + 10_000);
    wait_alerts(&db, "the evening slot missed", |a| !a.is_empty()).await;
    assert_eq!(
        alerts(&db),
        [("bp 2026-06-01".into(), "warning".into(), None)],
        "only the evening slot is missed: the morning was met"
    );
    // An hour on: urgent.
    clock.set(T0 + 16 * H + 10_000);
    wait_alerts(&db, "escalated", |a| {
        a.first().is_some_and(|r| r.1 == "urgent")
    })
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
    engine.shutdown().await;
}
