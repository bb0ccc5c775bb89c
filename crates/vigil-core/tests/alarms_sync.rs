//! Several stations, one ward: two in-process engines on one real Mosquitto; an
//! acknowledgement and an audio pause at one station converge at the other within 1 s, and a
//! station started late picks up the retained state.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use vigil_core::alarms::{default_limits, AlarmState};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Authorized, Permission, Role};
use vigil_core::engine::{Engine, EngineConfig, EngineHandle};
use vigil_core::ingest::IngestPolicy;
use vigil_core::telemetry::{BedId, ObservationPayload, VitalsPayload};

struct Mosq(Child);

impl Drop for Mosq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn find(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh"))
}

fn mosquitto(dir: &Path) -> (Mosq, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence false\nlog_dest file {}\nuser root\n",
            dir.join("mosquitto.log").display()
        ),
    )
    .expect("conf");
    let child = Command::new(find("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Mosq(child), port)
}

fn engine(url: &str, dir: &Path, name: &str) -> Engine {
    Engine::start(EngineConfig {
        broker: url
            .parse::<vigil_core::config::BrokerUrl>()
            .expect("url")
            .into(),
        client_id: name.into(),
        ward: Some("4W".into()),
        db_path: dir.join(format!("{name}.db")),
        limits: default_limits(),
        policy: IngestPolicy::default(),
        mllp: None,
    })
    .expect("engine")
}

/// Wait (10 s at most each) until every engine is subscribed.
async fn subscribed(engines: &[&Engine]) {
    for e in engines {
        let mut link = e.link();
        while !link.borrow_and_update().subscribed {
            tokio::time::timeout(Duration::from_secs(10), link.changed())
                .await
                .expect("subscribed in time")
                .expect("link");
        }
    }
}

async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

fn hr_state(h: &EngineHandle) -> Option<(AlarmState, Option<String>)> {
    h.snapshot()
        .alarms
        .into_iter()
        .find(|a| a.code == "HR_HIGH")
        .map(|a| (a.state, a.ack_by))
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
    let url = format!("mqtt://127.0.0.1:{port}");
    let a = engine(&url, dir.path(), "station-a");
    let b = engine(&url, dir.path(), "station-b");
    subscribed(&[&a, &b]).await;
    // A monitor with a high heart rate, one reading every 300 ms.
    let mut opts = MqttOptions::new("mon-1", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let publisher = tokio::spawn(async move {
        for seq in 0.. {
            let p = VitalsPayload {
                v: 1,
                device: "mon-1".into(),
                t: chrono::Utc::now(),
                seq,
                obs: vec![ObservationPayload {
                    mdc: 147842,
                    value: Some(150.0),
                    unit: "/min".into(),
                    t: None,
                    status: Default::default(),
                }],
            };
            let bytes = serde_json::to_vec(&p).expect("json");
            let _ = client
                .publish(
                    "vigil/v1/4W/01/mon-1/vitals",
                    QoS::AtLeastOnce,
                    false,
                    bytes,
                )
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
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
    eprintln!("acknowledgement converged in {took:?}");

    let bed = BedId::new("4W", "01");
    b.audio_pause(Some(bed.clone()), &nurse_pause)
        .await
        .expect("pause");
    let took = wait_until("pause converged at A", Duration::from_secs(1), || {
        ha.snapshot()
            .pauses
            .iter()
            .any(|p| p.by == "bob" && p.remaining_ms > 100_000)
    })
    .await;
    eprintln!("audio pause converged in {took:?}");

    // A station that starts now picks up the retained state.
    let c = engine(&url, dir.path(), "station-c");
    let hc = c.handle();
    wait_until("late station acknowledged", Duration::from_secs(10), || {
        hr_state(&hc) == Some((AlarmState::Acknowledged, Some("alice".into())))
    })
    .await;
    assert!(hc.snapshot().pauses.iter().any(|p| p.by == "bob"));

    publisher.abort();
    c.flush().await.expect("flush");
    let conn = vigil_core::store::open_read_only(&dir.path().join("station-b.db")).expect("db");
    let rows = vigil_core::query::alarms(&conn, Some(&bed), 0, i64::MAX).expect("rows");
    assert!(
        rows.iter()
            .any(|r| r.kind == "acknowledge" && r.user.as_deref() == Some("alice")),
        "B persisted the remote acknowledgement: {rows:?}"
    );
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
    use vigil_core::security::{self, Kind, SecurityFilter};

    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
    let start = |name: &str| {
        Engine::start_secured(
            EngineConfig {
                broker: url
                    .parse::<vigil_core::config::BrokerUrl>()
                    .expect("url")
                    .into(),
                client_id: name.into(),
                ward: Some("4W".into()),
                db_path: dir.path().join(format!("{name}.db")),
                limits: default_limits(),
                policy: IngestPolicy::default(),
                mllp: None,
            },
            Default::default(),
            SecurityOptions {
                head_every: Duration::from_secs(1),
                ..SecurityOptions::default()
            },
        )
        .expect("engine")
    };
    let events = |name: &str, kind: Kind| {
        let conn = vigil_core::store::open(&dir.path().join(format!("{name}.db"))).expect("db");
        security::list(
            &conn,
            &SecurityFilter {
                kind: Some(kind.as_str().into()),
                ..Default::default()
            },
        )
        .expect("list")
    };
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
