//! Remote patients' findings through a real Mosquitto, on the engine's clock (issue 15): a home
//! oximeter's reading below the limit sounds live when it arrives live, and is a finding to
//! review either way; the same breach uploaded hours late (a mobile clinic's batch) is a finding
//! marked received late and never a live alarm. A nurse's review closes the findings. The
//! station watches ward 4W: it subscribes to its remote patients' ward besides. Reminders (a
//! reading due, a reading missed) and a nurse's message reach the patient's own topic; the
//! patient app's receipts record them as delivered, a receipt for another's notice is refused.

use crate::support;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{mosquitto_with, remote_engine, until};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Role};
use vigil_core::codes::Vital;
use vigil_core::engine::{LiveEvent, ManualClock};
use vigil_core::remote::engage::{self, Notice, Receipt};
use vigil_core::remote::review::{self, ReviewAction};
use vigil_core::remote::{self, NewRemotePatient};
use vigil_core::store;
use vigil_core::telemetry::{utc_from_ms, BedId, Topic, VitalsPayload};

const H: i64 = 3_600_000;
const M: i64 = 60_000;
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
    until(&format!("{n} findings"), Duration::from_secs(15), || {
        let f = findings(db);
        (f.len() >= n, f)
    })
    .await;
    findings(db)
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
    let engine = remote_engine(port, &db, Some("4W"), Duration::from_millis(50), &clock).await;
    assert!(
        engine.handle().remote_beds().contains(&bed),
        "the engine knows the remote bed from the start"
    );
    let mut live = engine.handle().subscribe();
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
    until("the new remote bed seen", Duration::from_secs(10), || {
        (engine.handle().remote_beds().contains(&clinic), ())
    })
    .await;
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

/// Notices heard on a patient's topic, as the patient's app would.
async fn notices(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Notice>, n: usize) -> Vec<Notice> {
    let mut out = Vec::new();
    let t = Instant::now();
    while out.len() < n {
        let left = Duration::from_secs(15).saturating_sub(t.elapsed());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(x)) => out.push(x),
            _ => panic!("{n} notices on the patient's topic, got {out:?}"),
        }
    }
    out
}

/// (reason or kind, delivered) of every notice stored, oldest first.
fn stored_notices(db: &Path) -> Vec<(String, bool, bool)> {
    let conn = store::open_read_only(db).expect("db");
    let mut q = conn
        .prepare(
            "SELECT CASE kind WHEN 'reminder' THEN reason ELSE kind END,
                    sent_ms IS NOT NULL, delivered_ms IS NOT NULL
             FROM remote_messages ORDER BY id",
        )
        .expect("query");
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_and_messages_reach_the_patients_topic_and_receipts_record_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("home.db");
    let mut svc = AuthService::open(&db, AuthConfig::default()).expect("auth");
    let it = Actor::Local("test".into());
    svc.create_user(&it, "carl", Role::ChargeNurse, PW, T0)
        .expect("user");
    let carl = svc.login("carl", PW, T0).expect("login");
    let manage = svc.authorize(Some(&carl), remote::MANAGE, T0).expect("m");
    let plan = svc.authorize(Some(&carl), remote::PLAN, T0).expect("p");
    // Taken now: the session would have locked by the time the nurse writes.
    let read = svc.authorize(Some(&carl), review::REVIEW, T0).expect("r");
    let bed = BedId::new("home", "p-03");
    let patient = NewRemotePatient {
        mrn: "MRN-80",
        name: "Di Home",
        dob: "1949-09-09",
        tz: "Europe/London",
    };
    remote::enrol(svc.connection(), &manage, &bed, &patient, T0).expect("enrol");
    // Weight every morning, 07:00-10:00 London (06:00-09:00Z; T0 is 05:00Z).
    let weight = [vigil_schedule::ItemSpec::new(
        "weight",
        vigil_schedule::Kind::Reading,
        "WEIGHT",
        "07:00-10:00",
    )];
    remote::set_plan(svc.connection(), &plan, &bed, &weight, &[], T0).expect("plan");

    // The patient's app: subscribed to the notice topic, answering receipts.
    let (app, mut ev) = AsyncClient::new(MqttOptions::new("patient-app", "127.0.0.1", port), 64);
    app.subscribe(engage::notice_topic(&bed), QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (suback, subscribed_app) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut suback = Some(suback);
        while let Ok(e) = ev.poll().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) = e {
                if let Some(s) = suback.take() {
                    let _ = s.send(());
                }
            }
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = e {
                if let Ok(n) = serde_json::from_slice::<Notice>(&p.payload) {
                    let _ = tx.send(n);
                }
            }
        }
    });
    // The app's subscription is in place before the station says anything.
    tokio::time::timeout(Duration::from_secs(10), subscribed_app)
        .await
        .expect("the app subscribed in time")
        .expect("suback");

    let clock = Arc::new(ManualClock::new(T0));
    let engine = remote_engine(port, &db, Some("4W"), Duration::from_millis(50), &clock).await;

    // 07:30 London: the window is open; the patient is reminded, once.
    clock.set(T0 + H + 30 * M);
    let due = notices(&mut rx, 1).await;
    assert_eq!(
        (
            due[0].kind.as_str(),
            due[0].reason.as_str(),
            due[0].item.as_str()
        ),
        ("reminder", "due", "weight")
    );
    assert_eq!(due[0].text, "Time for your weight reading (07:00–10:00).");
    assert_eq!(due[0].from.as_deref(), Some("2026-06-01T06:00:00Z"));
    // The app's receipt records it as delivered; a receipt for another patient's notice (or
    // an unknown one) is refused and counted.
    let receipt = |id: i64| serde_json::to_vec(&Receipt { v: 1, id }).expect("json");
    app.publish(
        engine_receipt(&bed),
        QoS::AtLeastOnce,
        false,
        receipt(due[0].id),
    )
    .await
    .expect("receipt");
    app.publish(
        engine_receipt(&bed),
        QoS::AtLeastOnce,
        false,
        receipt(9_999),
    )
    .await
    .expect("receipt");
    until(
        "the due reminder delivered",
        Duration::from_secs(10),
        || {
            let n = stored_notices(&db);
            (n == [("due".to_string(), true, true)], n)
        },
    )
    .await;
    until("the bad receipt counted", Duration::from_secs(10), || {
        let r = engine.counters().rejects();
        (r.get("bad_receipt") == Some(&1), r)
    })
    .await;
    // An oversized one is refused before it is queued.
    let big = format!(
        "{{\"v\":1,\"id\":{},\"pad\":\"{}\"}}",
        due[0].id,
        "x".repeat(2048)
    );
    app.publish(
        engine_receipt(&bed),
        QoS::AtLeastOnce,
        false,
        big.into_bytes(),
    )
    .await
    .expect("receipt");
    until(
        "the oversized receipt counted",
        Duration::from_secs(10),
        || {
            let r = engine.counters().rejects();
            (r.get("bad_receipt") == Some(&2), r)
        },
    )
    .await;
    // Ticks go on: no second reminder for the same slot.
    clock.set(T0 + 2 * H);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "one reminder per slot");

    // The window ends with nothing: missed, the patient is told.
    clock.set(T0 + 4 * H + 10_000);
    let missed = notices(&mut rx, 1).await;
    assert_eq!(missed[0].reason, "missed");
    assert_eq!(
        missed[0].text,
        "Your weight reading due 07:00–10:00 has not arrived. Please take it now."
    );

    // A nurse's message: audited, sent at once (not at the next pass).
    let m = engage::message(
        svc.connection(),
        &read,
        &bed,
        "Please call the clinic today.",
        T0 + 4 * H + 20_000,
    )
    .expect("message");
    engine.handle().remote_wake();
    let msg = notices(&mut rx, 1).await;
    assert_eq!(
        (msg[0].id, msg[0].kind.as_str(), msg[0].text.as_str()),
        (m.id, "message", "Please call the clinic today.")
    );
    assert_eq!(
        stored_notices(&db),
        [
            ("due".to_string(), true, true),
            ("missed".to_string(), true, false),
            ("message".to_string(), true, false),
        ]
    );
    engine.shutdown().await;
}

fn engine_receipt(bed: &BedId) -> String {
    engage::receipt_topic(bed)
}
