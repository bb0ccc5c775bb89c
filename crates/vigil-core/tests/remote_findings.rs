//! Remote patients' findings through a real Mosquitto, on the engine's clock (issue 15): a home
//! oximeter's reading below the limit sounds live when it arrives live, and is a finding to
//! review either way; the same breach uploaded hours late (a mobile clinic's batch) is a finding
//! marked received late and never a live alarm. A nurse's review closes the findings. The
//! station watches ward 4W: it subscribes to its remote patients' ward besides.

mod support;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{config, mosquitto_with, subscribed};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Role};
use vigil_core::codes::Vital;
use vigil_core::engine::{AlarmOptions, Clock, Engine, LiveEvent, ManualClock, SecurityOptions};
use vigil_core::ingest::IngestPolicy;
use vigil_core::remote::review::{self, ReviewAction};
use vigil_core::remote::{self, NewRemotePatient};
use vigil_core::store;
use vigil_core::telemetry::{utc_from_ms, BedId, Topic, VitalsPayload};

const H: i64 = 3_600_000;
/// 2026-06-01T05:00:00Z.
const T0: i64 = 1_780_290_000_000;
const PW: &str = "Home-care-station-2026!";

/// The findings as stored: (rule, value, stale, reviewed).
fn findings(db: &Path) -> Vec<(String, f64, bool, bool)> {
    let conn = store::open_read_only(db).expect("db");
    let mut q = conn
        .prepare("SELECT rule, value, stale, review IS NOT NULL FROM remote_findings ORDER BY t_ms")
        .expect("query");
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

async fn wait_findings(db: &Path, n: usize) -> Vec<(String, f64, bool, bool)> {
    let t = Instant::now();
    loop {
        let f = findings(db);
        if f.len() >= n {
            return f;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "{n} findings: {f:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_hours_late_is_a_finding_to_review_never_a_live_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("home.db");
    let mut svc = AuthService::open(&db, AuthConfig::default()).expect("auth");
    let it = Actor::Local("test".into());
    svc.create_user(&it, "carl", Role::ChargeNurse, PW, T0)
        .expect("user");
    svc.create_user(&it, "nina", Role::Nurse, PW, T0)
        .expect("user");
    let carl = svc.login("carl", PW, T0).expect("login");
    let manage = svc
        .authorize(Some(&carl), remote::MANAGE, T0)
        .expect("manage");
    let bed = BedId::new("home", "p-02");
    let patient = NewRemotePatient {
        mrn: "MRN-78",
        name: "Bo Home",
        dob: "1951-07-08",
        tz: "Europe/Berlin",
    };
    remote::enrol(svc.connection(), &manage, &bed, &patient, T0).expect("enrol");

    let clock = Arc::new(ManualClock::new(T0 + 6 * H));
    // A ward station (ward 4W, the test config's) with a home patient enrolled: it subscribes
    // to the patient's ward too, or no reading of theirs would ever arrive.
    let cfg = config(port, "station-4w", &db, IngestPolicy::default());
    assert_eq!(cfg.ward.as_deref(), Some("4W"));
    let engine = Engine::start_clocked(
        cfg,
        AlarmOptions {
            remote_tick: Duration::from_millis(50),
            ..AlarmOptions::default()
        },
        SecurityOptions::default(),
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .expect("engine");
    assert!(
        engine.handle().remote_beds().contains(&bed),
        "the engine knows the remote bed from the start"
    );
    let mut live = engine.handle().subscribe();
    subscribed(&engine).await;
    let (oxi, mut ev) = AsyncClient::new(MqttOptions::new("oxi-1", "127.0.0.1", port), 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let topic = Topic::vitals(&bed, "oxi-1");
    let send = |seq: u64, taken: i64, spo2: f64| {
        let payload = VitalsPayload::single("oxi-1", seq, utc_from_ms(taken), Vital::SpO2, spo2);
        let (oxi, topic) = (oxi.clone(), topic.clone());
        async move {
            oxi.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&payload).expect("json"),
            )
            .await
            .expect("publish");
        }
    };

    // The clinic's batch: a desaturation taken five hours ago, uploaded now.
    send(1, T0 + H, 84.0).await;
    let f = wait_findings(&db, 1).await;
    assert_eq!(f, [("SPO2_LOW".to_string(), 84.0, true, false)]);
    // Never sounded: no live alarm on the bed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alarms: Vec<String> = engine
        .handle()
        .snapshot()
        .alarms
        .iter()
        .filter(|a| a.bed == bed)
        .map(|a| a.code.clone())
        .collect();
    assert_eq!(alarms, Vec::<String>::new(), "a stale breach never sounds");
    // Watchers were told.
    let t = Instant::now();
    loop {
        match live.try_recv() {
            Ok(LiveEvent::Remote(u)) if !u.findings.is_empty() => {
                assert_eq!(u.findings[0].detail, "SpO2 LOW 84 % (limit 90)");
                break;
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                assert!(t.elapsed() < Duration::from_secs(10), "no remote event");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("live events: {e}"),
        }
    }

    // Live now: taken as it is sent. A finding too (not stale), and the alarms' business.
    let now = T0 + 6 * H + 1_000;
    clock.set(now);
    send(2, now, 85.0).await;
    let f = wait_findings(&db, 2).await;
    assert_eq!(f[1], ("SPO2_LOW".to_string(), 85.0, false, false));
    // In range: nothing new.
    clock.set(now + 60_000);
    send(3, now + 60_000, 97.0).await;
    engine.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(findings(&db).len(), 2);

    // nina reviews: both findings closed, in the trail.
    let nina = svc.login("nina", PW, now).expect("login");
    let proof = svc
        .authorize(Some(&nina), review::REVIEW, now + 120_000)
        .expect("review");
    let r = review::review(
        svc.connection(),
        &proof,
        &bed,
        ReviewAction::CalledPatient,
        "clinic probe on a cold finger",
        now + 120_000,
    )
    .expect("review");
    assert_eq!(r.findings, 2);
    assert!(findings(&db).iter().all(|f| f.3));

    // A patient of a mobile clinic enrolled while the station runs: the watch sees the new
    // remote bed and subscribes to its ward; their readings arrive.
    let clinic = BedId::new("clinic", "c-01");
    let cora = NewRemotePatient {
        mrn: "MRN-79",
        name: "Cora Clinic",
        dob: "1960-01-02",
        tz: "Europe/Berlin",
    };
    remote::enrol(svc.connection(), &manage, &clinic, &cora, now).expect("enrol");
    let t = Instant::now();
    while !engine.handle().remote_beds().contains(&clinic) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the new remote bed seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The subscription is asked for before the bed is published, but the broker may take a
    // moment to grant it: the oximeter sends until a reading gets through (as a device whose
    // readings are not acknowledged keeps them), each one a reading of its own.
    let t = Instant::now();
    let mut seq = 0;
    while findings(&db).len() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the clinic's readings arrive"
        );
        seq += 1;
        let at = now + 125_000 + seq * 1_000;
        clock.set(at);
        let payload =
            VitalsPayload::single("oxi-9", seq as u64, utc_from_ms(at), Vital::SpO2, 83.0);
        oxi.publish(
            Topic::vitals(&clinic, "oxi-9"),
            QoS::AtLeastOnce,
            false,
            serde_json::to_vec(&payload).expect("json"),
        )
        .await
        .expect("publish");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let f = wait_findings(&db, 3).await;
    assert_eq!(f[2], ("SPO2_LOW".to_string(), 83.0, false, false));
    engine.shutdown().await;
}
