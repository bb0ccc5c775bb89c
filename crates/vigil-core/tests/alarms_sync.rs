//! Several stations, one ward: two in-process engines on one real Mosquitto; an
//! acknowledgement and an audio pause at one station converge at the other within 1 s, and a
//! station started late picks up the retained state. Stations believe only the signed state of
//! stations IT enrolled: forged, unsigned, unknown, replayed states are refused and reported,
//! and what an enrolled station may do is bounded by the receiving station's rules (issue 11).

use crate::support;
use std::path::Path;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{mosquitto_with, wait_until, Mosq};
use vigil_core::alarms::{ActiveAlarm, AlarmState};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Authorized, Permission, Role};
use vigil_core::engine::{Engine, EngineHandle};
use vigil_core::ingest::IngestPolicy;
use vigil_core::security::{self, Kind, SecurityEvent, SecurityFilter};
use vigil_core::telemetry::{BedId, ObservationPayload, VitalsPayload};

/// Every station enrolled at every other for ward 4W, as IT does with `vigilctl station enrol`
/// (the database and its station key are created here first).
fn enrol_each_other(dir: &Path, names: &[&str]) {
    let now = chrono::Utc::now().timestamp_millis();
    let keys: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            let db = dir.join(format!("{n}.db"));
            drop(vigil_core::store::open(&db).expect("db"));
            let k = vigil_core::keys::get(&db).expect("key").expect("created");
            (n.to_string(), vigil_core::stations::own_public_key(&k))
        })
        .collect();
    for n in names {
        let svc = AuthService::open(&dir.join(format!("{n}.db")), AuthConfig::default())
            .expect("station db");
        let it = svc
            .authorize_admin(
                &Actor::Local("cli:it".into()),
                Permission::ManageDevices,
                now,
            )
            .expect("local admin");
        for (other, pk) in keys.iter().filter(|(o, _)| o != n) {
            vigil_core::stations::enrol(svc.connection(), &it, other, pk, "4W", "", now)
                .expect("enrol");
        }
    }
}

fn mosquitto(dir: &Path) -> (Mosq, u16) {
    mosquitto_with(dir, "allow_anonymous true\npersistence false\n")
}

fn station(port: u16, dir: &Path, name: &str) -> Engine {
    let db = dir.join(format!("{name}.db"));
    Engine::start(support::config(port, name, &db, IngestPolicy::default())).expect("engine")
}

/// Wait (10 s at most each) until every engine is subscribed.
async fn subscribed(engines: &[&Engine]) {
    for e in engines {
        support::subscribed(e).await;
    }
}

/// A publisher on the broker (an attacker, or an enrolled station's key in the test's hands).
async fn publisher(port: u16, id: &str) -> AsyncClient {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
}

/// Bed 4W/01's monitor mon-1, until aborted: HR 150 every 300 ms (HR HIGH, medium), with SpO2
/// 85 (SpO2 LOW, high) while `spo2_low` says so.
async fn monitor(
    port: u16,
    spo2_low: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let client = publisher(port, "mon-1").await;
    let reading = |mdc: u32, value: f64, unit: &str| ObservationPayload {
        mdc,
        value: Some(value),
        unit: unit.into(),
        t: None,
        status: Default::default(),
    };
    tokio::spawn(async move {
        for seq in 0.. {
            let mut obs = vec![reading(147842, 150.0, "/min")];
            if *spo2_low.borrow() {
                obs.push(reading(150456, 85.0, "%"));
            }
            let p = VitalsPayload {
                v: 1,
                device: "mon-1".into(),
                t: chrono::Utc::now(),
                seq,
                obs,
            };
            let _ = client
                .publish(
                    "vigil/v1/4W/01/mon-1/vitals",
                    QoS::AtLeastOnce,
                    false,
                    serde_json::to_vec(&p).expect("json"),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// The security events of `kind` in the database of station `name`.
fn security_events(dir: &Path, name: &str, kind: Kind) -> Vec<SecurityEvent> {
    let conn = vigil_core::store::open(&dir.join(format!("{name}.db"))).expect("db");
    security::list(
        &conn,
        &SecurityFilter {
            kind: Some(kind.as_str().into()),
            ..Default::default()
        },
    )
    .expect("security events")
}

/// Wait (5 s at most) until the audit trail of station `name` holds an entry of `action` by
/// `actor` (on `target`, when given).
async fn wait_audited(dir: &Path, name: &str, action: &str, actor: &str, target: Option<&str>) {
    let what = format!("{action} by {actor} audited at {name}");
    wait_until(&what, Duration::from_secs(5), || {
        let conn = vigil_core::store::open(&dir.join(format!("{name}.db"))).expect("db");
        vigil_core::audit::Audit::list(&conn, &Default::default())
            .expect("trail")
            .iter()
            .any(|e| e.action == action && e.actor == actor && target.is_none_or(|t| e.target == t))
    })
    .await;
}

/// Wait (5 s at most) until station B counted a refusal for each of `reasons`; then it must
/// show no pause (`no_pause` says which).
async fn refused(hb: &EngineHandle, what: &str, reasons: &[&str], no_pause: &str) {
    let count = |r: &str| hb.counters().rejects().get(r).copied().unwrap_or(0);
    wait_until(what, Duration::from_secs(5), || {
        reasons.iter().all(|r| count(r) >= 1)
    })
    .await;
    assert!(hb.snapshot().pauses.is_empty(), "{no_pause}");
}

/// The HR HIGH alarm that station `h` shows, if any.
fn hr_alarm(h: &EngineHandle) -> Option<ActiveAlarm> {
    h.snapshot()
        .alarms
        .into_iter()
        .find(|a| a.code == "HR_HIGH")
}

fn hr_state(h: &EngineHandle) -> Option<(AlarmState, Option<String>)> {
    hr_alarm(h).map(|a| (a.state, a.ack_by))
}

/// A real authorisation for `permission`, as the desktop shell gets one: a user of `role` logs
/// in and is authorised (the engine's entry points accept nothing else).
fn authorized(dir: &Path, name: &str, role: Role, permission: Permission) -> Authorized {
    const PW: &str = "Ward4-station-test-2026!";
    let now = chrono::Utc::now().timestamp_millis();
    let mut svc = AuthService::open(&dir.join(format!("auth-{name}.db")), AuthConfig::default())
        .expect("auth db");
    svc.create_user(&Actor::Local("test".into()), name, role, PW, now)
        .expect("user");
    let session = svc.login(name, PW, now).expect("login");
    svc.authorize(Some(&session), permission, now)
        .expect("authorised")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgement_and_pause_converge_across_stations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    enrol_each_other(dir.path(), &["station-a", "station-b", "station-c"]);
    let a = station(port, dir.path(), "station-a");
    let b = station(port, dir.path(), "station-b");
    subscribed(&[&a, &b]).await;
    // A monitor with a high heart rate, one reading every 300 ms.
    let publisher = monitor(port, tokio::sync::watch::channel(false).1).await;
    let (ha, hb) = (a.handle(), b.handle());
    wait_until("HR_HIGH at both stations", Duration::from_secs(10), || {
        hr_state(&ha).is_some() && hr_state(&hb).is_some()
    })
    .await;
    assert_eq!(hr_state(&hb).map(|s| s.0), Some(AlarmState::Active));

    // The engine refuses an authorisation made for another permission.
    let nurse_pause = authorized(dir.path(), "bob", Role::Nurse, Permission::AudioPause);
    assert!(a.acknowledge("4W/01/HR_HIGH", &nurse_pause).await.is_err());
    let alice = authorized(
        dir.path(),
        "alice",
        Role::ChargeNurse,
        Permission::AcknowledgeAlarm,
    );
    a.acknowledge("4W/01/HR_HIGH", &alice).await.expect("ack");
    assert_eq!(hr_state(&ha).map(|s| s.0), Some(AlarmState::Acknowledged));
    let took = wait_until("ack converged at B", Duration::from_secs(1), || {
        hr_state(&hb) == Some((AlarmState::Acknowledged, Some("alice".into())))
    })
    .await;
    // Shown at B as acknowledged at station A.
    let shown = hr_alarm(&hb).expect("HR_HIGH at B");
    assert_eq!(shown.ack_station.as_deref(), Some("station-a"));
    eprintln!("acknowledgement converged in {took:?}");

    let bed = BedId::new("4W", "01");
    b.audio_pause(Some(bed.clone()), &nurse_pause)
        .await
        .expect("pause");
    let took = wait_until("pause converged at A", Duration::from_secs(1), || {
        ha.snapshot().pauses.iter().any(|p| {
            p.by == "bob" && p.remaining_ms > 100_000 && p.station.as_deref() == Some("station-b")
        })
    })
    .await;
    eprintln!("audio pause converged in {took:?}");

    // A station that starts now picks up the retained state.
    let c = station(port, dir.path(), "station-c");
    let hc = c.handle();
    wait_until("late station acknowledged", Duration::from_secs(10), || {
        hr_state(&hc) == Some((AlarmState::Acknowledged, Some("alice".into())))
    })
    .await;
    assert!(hc.snapshot().pauses.iter().any(|p| p.by == "bob"));

    // Resumed early at B: the pause ends at every station, not two minutes later.
    b.end_audio_pause(Some(bed.clone()), &nurse_pause)
        .await
        .expect("resume");
    let took = wait_until("early end converged", Duration::from_secs(1), || {
        [&ha, &hb, &hc]
            .iter()
            .all(|h| h.snapshot().pauses.is_empty())
    })
    .await;
    eprintln!("early end of the pause converged in {took:?}");
    // A station-wide pause, resumed: its own state back from the broker pauses no bed again
    // (the station-wide pause is published per bed), here or at the others.
    a.audio_pause(None, &nurse_pause).await.expect("pause all");
    wait_until("pause all reached B", Duration::from_secs(1), || {
        !hb.snapshot().pauses.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ha.snapshot().pauses.len(), 1, "{:?}", ha.snapshot().pauses);
    a.end_audio_pause(None, &nurse_pause)
        .await
        .expect("resume all");
    wait_until("resume all converged", Duration::from_secs(1), || {
        [&ha, &hb, &hc]
            .iter()
            .all(|h| h.snapshot().pauses.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for h in [&ha, &hb, &hc] {
        assert!(h.snapshot().pauses.is_empty(), "{:?}", h.snapshot().pauses);
    }

    publisher.abort();
    c.flush().await.expect("flush");
    let conn = vigil_core::store::open_read_only(&dir.path().join("station-b.db")).expect("db");
    let rows = vigil_core::query::alarms(&conn, Some(&bed), 0, i64::MAX).expect("rows");
    assert!(
        rows.iter()
            .any(|r| r.kind == "acknowledge" && r.user.as_deref() == Some("alice")),
        "B persisted the remote acknowledgement: {rows:?}"
    );
    // And B's audit trail holds it, with the remote station and user.
    wait_audited(
        dir.path(),
        "station-b",
        "remote_alarm_acknowledge",
        "station:station-a/alice",
        Some("4W/01/HR_HIGH"),
    )
    .await;
    for e in [a, b, c] {
        e.shutdown().await;
    }
}

/// Security between stations (issue 13): break-glass taken at one station is a security event
/// at the other; a station whose audit trail lost its newest entries finds out from the head it
/// published on the broker (retained) when it starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_reaches_the_other_station_and_a_truncated_trail_is_caught_at_restart() {
    use vigil_core::audit::Audit;
    use vigil_core::engine::SecurityOptions;

    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
    let start = |name: &str| {
        let db = dir.path().join(format!("{name}.db"));
        Engine::start_secured(
            support::engine_config(&url, name, &db, IngestPolicy::default()),
            Default::default(),
            SecurityOptions {
                head_every: Duration::from_secs(1),
                ..SecurityOptions::default()
            },
        )
        .expect("engine")
    };
    let events = |name: &str, kind: Kind| security_events(dir.path(), name, kind);
    // Station A's trail has a few entries before it starts.
    {
        let conn = vigil_core::store::open(&dir.path().join("sec-a.db")).expect("db");
        for i in 0..4 {
            Audit::append(&conn, "ada", "note", "", &format!("entry {i}"), 1_000 + i)
                .expect("append");
        }
    }
    let a = start("sec-a");
    let b = start("sec-b");
    subscribed(&[&a, &b]).await;
    a.announce_break_glass("nina", "charge nurse in theatre, bed 3", 4_102_444_800_000);
    wait_until(
        "break-glass event at station B",
        Duration::from_secs(15),
        || {
            events("sec-b", Kind::BreakGlass)
                .iter()
                .any(|e| e.source.user == "nina" && e.source.peer == "sec-a")
        },
    )
    .await;
    assert!(
        events("sec-a", Kind::BreakGlass).is_empty(),
        "not told its own notice"
    );

    // A publishes its head (every second here); then it stops, and its newest entries go.
    let mut opts = MqttOptions::new("head-reader", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 16);
    client
        .subscribe(
            vigil_core::engine::audit_head_topic("sec-a"),
            QoS::AtLeastOnce,
        )
        .await
        .expect("subscribe");
    let head = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = el.poll().await {
                let h: vigil_core::audit::AuditHead =
                    serde_json::from_slice(&p.payload).expect("head json");
                if h.id >= 4 {
                    return h;
                }
            }
        }
    })
    .await
    .expect("a head published in time");
    assert!(head.mac.is_some(), "signed with the station key");
    a.shutdown().await;
    {
        let conn = vigil_core::store::open(&dir.path().join("sec-a.db")).expect("db");
        conn.execute_batch(&format!(
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id >= {};
             {};",
            head.id - 1,
            vigil_core::audit::trigger_sql("audit_log_no_delete").expect("sql")
        ))
        .expect("truncate");
        assert!(
            Audit::verify(&conn).expect("verify").is_intact(),
            "the chain alone sees nothing"
        );
    }
    // At restart A finds its retained head on the broker and its trail without it.
    let a = start("sec-a");
    wait_until(
        "audit_truncated at station A",
        Duration::from_secs(20),
        || {
            events("sec-a", Kind::AuditTruncated)
                .iter()
                .any(|e| e.detail.contains("TRUNCATED"))
        },
    )
    .await;
    wait_until(
        "SECURITY alarm at station A",
        Duration::from_secs(10),
        || {
            a.snapshot()
                .alarms
                .iter()
                .any(|x| x.code == "SECURITY" && x.bed.ward == "*")
        },
    )
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

/// The attacks on station sync (issue 11, item 2), through a real Mosquitto against a
/// running station B that enrolled station A: the issue's unsigned retained pause (8.9e12 s "by
/// alice", its own break-through level) with an acknowledgement guessed from the start time; a
/// state signed with another key under A's name; a station nobody enrolled; a huge pause with a
/// chosen ceiling signed with A's real key (a compromised or faulty station: bounded); an old
/// state of A replayed after a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_huge_chosen_guessed_and_replayed_alarm_state_is_refused_or_bounded() {
    use vigil_core::alarms::sync::{self, BedAlarmState, PauseEntry, VERSION};
    use vigil_core::alarms::Priority;
    use vigil_core::keys::StationKey;

    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    enrol_each_other(dir.path(), &["station-a", "station-b"]);
    let a_key = vigil_core::keys::get(&dir.path().join("station-a.db"))
        .expect("key")
        .expect("A's key");
    let b = station(port, dir.path(), "station-b");
    subscribed(&[&b]).await;
    let hb = b.handle();
    let bed = BedId::new("4W", "01");
    let topic = sync::topic(&bed);

    // A monitor: HR 150 every 300 ms (HR HIGH, medium); SpO2 85 once asked (SpO2 LOW, high).
    let (spo2_tx, spo2_rx) = tokio::sync::watch::channel(false);
    let feed = monitor(port, spo2_rx).await;
    wait_until("HR_HIGH at B", Duration::from_secs(10), || {
        hr_state(&hb).is_some()
    })
    .await;
    let onset = hr_alarm(&hb).map(|a| a.since_ms).expect("since");
    let attacker = publisher(port, "mallory").await;
    let send = |payload: Vec<u8>| {
        let attacker = attacker.clone();
        let topic = topic.clone();
        async move {
            attacker
                .publish(topic, QoS::AtLeastOnce, true, payload)
                .await
                .expect("publish");
        }
    };
    let refused_events = || security_events(dir.path(), "station-b", Kind::StationStateRefused);
    let now = || chrono::Utc::now().timestamp_millis();

    // 1. The message: unsigned, a pause of 8.9e12 s by "alice" with its own ceiling,
    //    and an acknowledgement matched by the start time (± 2 s) as before.
    let v1 = serde_json::json!({
        "v": 1, "station": "station-a", "t_ms": now(),
        "acks": [{"alarm_id": "4W/01/HR_HIGH", "onset_ms": onset, "t_ms": now(),
                  "user": "mallory", "station": "station-a"}],
        "pause": {"start_ms": now(), "until_ms": now() + 8_900_000_000_000_000i64,
                  "by": "alice", "ceiling": "high"}
    });
    send(serde_json::to_vec(&v1).expect("json")).await;
    refused(
        &hb,
        "unsigned state refused",
        &["station_state_unsigned"],
        "no pause from an unsigned state",
    )
    .await;
    assert_eq!(hr_state(&hb).map(|s| s.0), Some(AlarmState::Active));

    // 2. Signed, but with another key, under A's name; 3. a station nobody enrolled.
    let forged_state = |station: &str, seq: u64| BedAlarmState {
        v: VERSION,
        station: station.into(),
        seq,
        t_ms: now(),
        acks: vec![],
        pause: Some(PauseEntry {
            start_ms: now(),
            until_ms: now() + 120_000,
            by: "alice".into(),
            station: station.into(),
        }),
    };
    let stranger = StationKey::generate(0);
    send(sync::seal(&topic, &forged_state("station-a", u64::MAX / 2), &stranger).expect("seal"))
        .await;
    send(sync::seal(&topic, &forged_state("station-x", 1), &stranger).expect("seal")).await;
    refused(
        &hb,
        "forged and unknown refused",
        &[
            "station_state_bad_signature",
            "station_state_unknown_station",
        ],
        "no pause from a forged state",
    )
    .await;
    wait_until(
        "security events of the refusals",
        Duration::from_secs(5),
        || {
            let ev = refused_events();
            ev.iter()
                .any(|e| e.source.bed == "4W/01" && e.severity >= security::Severity::High)
                && ev.iter().any(|e| e.source.peer == "station-x")
        },
    )
    .await;

    // 4. A's real key (a compromised or faulty station): a pause of 8.9e12 s starting in an
    //    hour, with its own ceiling "high" in the signed text.
    let t = now();
    let signed = |seq: u64, start_ms: i64, until_ms: i64| {
        let text = serde_json::json!({
            "v": VERSION, "station": "station-a", "seq": seq, "t_ms": now(), "acks": [],
            "pause": {"start_ms": start_ms, "until_ms": until_ms, "by": "alice",
                      "station": "station-a", "ceiling": "high"}
        })
        .to_string();
        sync::seal_text(&topic, "station-a", &text, &a_key).expect("seal")
    };
    let huge = signed(10, t + 3_600_000, t + 8_900_000_000_000_000);
    send(huge.clone()).await;
    wait_until("A's pause applied at B", Duration::from_secs(5), || {
        !hb.snapshot().pauses.is_empty()
    })
    .await;
    let p = hb.snapshot().pauses.remove(0);
    assert!(
        p.until_ms - p.start_ms <= 120_000 && p.remaining_ms <= 120_000,
        "bounded by the local pause length: {p:?}"
    );
    assert!(p.start_ms <= now(), "starts no later than now: {p:?}");
    assert_eq!(p.ceiling, Priority::Medium, "B's own break-through rule");
    assert_eq!(
        (p.by.as_str(), p.station.as_deref()),
        ("alice", Some("station-a"))
    );
    assert_eq!(hr_state(&hb).map(|s| s.0), Some(AlarmState::AudioPaused));
    // A new SpO2 LOW (high priority) sounds through it.
    spo2_tx.send(true).expect("spo2");
    wait_until(
        "SPO2_LOW raised audible at B",
        Duration::from_secs(20),
        || {
            hb.snapshot()
                .alarms
                .iter()
                .any(|a| a.code == "SPO2_LOW" && a.audible)
        },
    )
    .await;
    // The remote pause is in B's audit trail with A and alice.
    wait_audited(
        dir.path(),
        "station-b",
        "remote_audio_pause",
        "station:station-a/alice",
        None,
    )
    .await;

    // 5. A ends the pause (seq 11); the captured seq-10 message is replayed.
    let end = signed(11, t + 3_600_000, now());
    send(end).await;
    wait_until("pause ended at B", Duration::from_secs(5), || {
        hb.snapshot().pauses.is_empty()
    })
    .await;
    send(huge).await;
    refused(
        &hb,
        "replay refused",
        &["station_state_replayed"],
        "the replayed pause is not applied",
    )
    .await;
    assert_eq!(hr_state(&hb).map(|s| s.0), Some(AlarmState::Active));

    feed.abort();
    b.shutdown().await;
}
