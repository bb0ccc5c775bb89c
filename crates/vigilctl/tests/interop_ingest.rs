//! Interoperability messages through the running engine: FHIR R4 Observations published on a
//! device's MQTT topic, and HL7 v2 (IHE PCD-01 / Continua) over the MLLP listener with ACKs.
//! Values land in the store with their status; cancelled and entered-in-error results never
//! alarm; unregistered senders are refused (AE) and counted.
//!
//! MLLP attacks, each through the built `vigilctl record` and real TCP clients: a peer sending as
//! another bed's device is refused and reported; the refusal is the same whatever the reason; a
//! slow-loris of half-sent frames neither exhausts the listener nor stops a legitimate sender;
//! one address gets a bounded number of connections; a listener reachable from the network
//! without an allow-list does not start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_core::interop::{hl7v2, mllp};
use vigil_core::security::{self, Kind, SecurityEvent, SecurityFilter};
use vigil_core::store;

use crate::support;
use support::{
    data, free_port, fresh_broker, mosquitto, mosquitto_pub, private_dir, record_with,
    wait_for_summary, Proc, VIGILCTL,
};

fn device_add(db: &Path, device: &str, bed: &str) {
    let st = Command::new(VIGILCTL)
        .args(["device", "add", device, "--bed", bed, "--db"])
        .arg(db)
        .status()
        .expect("device add");
    assert!(st.success());
}

fn publish(port: u16, topic: &str, file: &Path) {
    let st = mosquitto_pub("127.0.0.1", port)
        .args(["-t", topic, "-f"])
        .arg(file)
        .status()
        .expect("mosquitto_pub");
    assert!(st.success(), "mosquitto_pub to {topic}");
}

fn rows(db: &Path, sql: &str) -> Vec<(String, Option<f64>, String)> {
    let conn = store::open_read_only(db).expect("open");
    let mut q = conn.prepare(sql).expect("prepare");
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_over_mqtt_and_hl7_over_mllp_reach_the_store_and_alarms() {
    let (dir, _broker, port, url) = fresh_broker();
    let db = dir.path().join("interop.db");
    // The official examples are years old: accept and keep old readings for this test.
    let config = dir.path().join("vigil.toml");
    vigil_core::secure_fs::replace_private(
        &config,
        b"[ingest]\nmax_age_h = 400000\ntrend_days = 20000\n",
    )
    .expect("config");
    device_add(&db, "fhir-gw", "4W/03");
    device_add(&db, "0123456789ABCDEF", "home/hm-01");
    let mllp_port = free_port();
    let mllp_addr = format!("127.0.0.1:{mllp_port}");
    let mut rec = record_with(
        &url,
        &db,
        "interop-recorder",
        &[
            "--config",
            config.to_str().expect("utf-8 path"),
            "--mllp",
            &mllp_addr,
        ],
    );

    // FHIR R4 on the gateway's own topic.
    let ex = |n: &str| data(&format!("fhir_r4/official_examples/{n}"));
    let topic = "vigil/v1/4W/03/fhir-gw/fhir";
    // The examples are stamped 1999–2013: stored as history (late), they never alarm. A copy of
    // the heart-rate example taken now is live.
    let hr_now = dir.path().join("heart-rate-now.json");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let example = std::fs::read_to_string(ex("observation-example-heart-rate.json")).expect("read");
    assert!(example.contains("\"effectiveDateTime\": \"1999-07-02\""));
    std::fs::write(
        &hr_now,
        example.replace(
            "\"effectiveDateTime\": \"1999-07-02\"",
            &format!("\"effectiveDateTime\": \"{now}\""),
        ),
    )
    .expect("write");
    publish(port, topic, &hr_now);
    for n in [
        "observation-example-heart-rate.json",
        "observation-example-bloodpressure.json",
        "observation-example-bloodpressure-cancel.json",
        "observation-example-f202-temperature.json",
        "observation-example-satO2.json",
    ] {
        publish(port, topic, &ex(n));
    }
    // The same message on a device's topic that is not registered: refused.
    publish(
        port,
        "vigil/v1/4W/03/stranger/fhir",
        &ex("observation-example-heart-rate.json"),
    );

    // HL7 v2 over MLLP: a registered thermometer (98.6 °F), then an unregistered sender.
    let mut conn = TcpStream::connect(&mllp_addr).await.expect("connect MLLP");
    let thermo = std::fs::read_to_string(data(
        "hl7v2/normalized_cr/valid-thermometer-continua-wan.hl7",
    ))
    .expect("read");
    let ack = mllp::exchange(&mut conn, &thermo, Duration::from_secs(10))
        .await
        .expect("ACK");
    let info = hl7v2::parse_ack(&ack).expect("parse ACK");
    assert_eq!(info.code, "AA", "{ack}");
    // The same device message from an unregistered device.
    let other = thermo.replace("0123456789ABCDEF", "FEDCBA9876543210");
    assert_ne!(other, thermo);
    let ack = mllp::exchange(&mut conn, &other, Duration::from_secs(10))
        .await
        .expect("ACK");
    let info = hl7v2::parse_ack(&ack).expect("parse ACK");
    assert_eq!(info.code, "AE", "unregistered device refused: {ack}");
    assert_eq!(
        info.error.as_deref(),
        Some(hl7v2::REFUSAL_TEXT),
        "the one refusal, naming no device"
    );
    let ack = mllp::exchange(&mut conn, "this is not HL7", Duration::from_secs(10))
        .await
        .expect("ACK");
    assert!(ack.contains("|AR|") || ack.contains("MSA|AR"), "{ack}");

    let s = wait_for_summary(&db, Duration::from_secs(20), |s| {
        s.readings.get(&("home/hm-01".into(), "TEMP".into())) == Some(&1)
            && s.readings.get(&("4W/03".into(), "HR".into())) == Some(&2)
            && s.readings.get(&("4W/03".into(), "NIBP_SYS".into())) == Some(&2)
            && s.rejects.get("unknown_device") >= Some(&2)
    });
    assert!(
        s.rejects.get("unknown_device") >= Some(&2),
        "{:?}",
        s.rejects
    );

    let temp = rows(
        &db,
        "SELECT code, value, status FROM numerics WHERE bed = 'hm-01'",
    );
    assert_eq!(
        temp,
        vec![("TEMP".into(), Some(37.0), "unverified".into())],
        "98.6 °F as 37.0 °C; all: {:?}",
        rows(
            &db,
            "SELECT ward || '/' || bed || ' ' || code, value, status FROM numerics"
        )
    );
    let bed3 = rows(
        &db,
        "SELECT code, value, status FROM numerics WHERE bed = '03' ORDER BY code, status",
    );
    assert!(
        bed3.contains(&("HR".into(), Some(44.0), "final".into())),
        "{bed3:?}"
    );
    assert!(
        bed3.contains(&("NIBP_SYS".into(), Some(107.0), "final".into())),
        "{bed3:?}"
    );
    assert!(
        bed3.contains(&("NIBP_DIA".into(), Some(60.0), "final".into())),
        "{bed3:?}"
    );
    assert!(
        bed3.contains(&("NIBP_SYS".into(), None, "cancelled".into())),
        "{bed3:?}"
    );
    // The SpO2 example names another device (DeviceMetric/example) than its topic: refused.
    assert!(!bed3.iter().any(|r| r.0 == "SPO2"), "{bed3:?}");
    assert_eq!(
        s.rejects.get("device_mismatch"),
        Some(&1),
        "{:?}",
        s.rejects
    );
    assert!(
        bed3.iter()
            .any(|r| r.0 == "TEMP" && r.2 == "entered-in-error"),
        "{bed3:?}"
    );

    // HR 44 (final, taken now) raised the low heart-rate alarm; nothing alarmed on the
    // examples' old readings, or on the cancelled or entered-in-error results.
    let raised: Vec<_> = s
        .alarms
        .iter()
        .filter(|a| a.kind == "raise")
        .map(|a| (a.bed.key(), a.code.as_str()))
        .collect();
    assert_eq!(
        raised,
        vec![("4W/03".to_string(), "HR_LOW")],
        "{:?}",
        s.alarms
    );
    rec.stops_cleanly();
}

// ---------------------------------------------------------------------------------------------
// MLLP attacks

/// An ORU^R01 with one heart rate from `device` (OBX-18), stamped now. MSH-3 names a gateway,
/// never the device, so that a reply that echoes the header cannot carry the device id.
fn hr_message(device: &str, hr: u32, control: &str) -> String {
    hr_message_at(device, hr, control, 0)
}

/// [`hr_message`] stamped `secs_ago` seconds ago.
fn hr_message_at(device: &str, hr: u32, control: &str, secs_ago: i64) -> String {
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(secs_ago)).format("%Y%m%d%H%M%S+0000");
    format!(
        "MSH|^~\\&|GW|F|VIGIL|W|{ts}||ORU^R01^ORU_R01|{control}|P|2.6\r\
         OBR|1|||x|||{ts}\r\
         OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1|{hr}|/min|||||F|||{ts}||||{device}\r"
    )
}

/// A connection from `from` (any 127.0.0.0/8 address is loopback on Linux).
async fn connect_from(from: &str, to: &str) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().expect("socket");
    s.bind(format!("{from}:0").parse().expect("addr"))
        .expect("bind source");
    s.connect(to.parse().expect("addr")).await.expect("connect")
}

async fn send(conn: &mut TcpStream, msg: &str) -> (String, hl7v2::AckInfo) {
    let ack = mllp::exchange(conn, msg, Duration::from_secs(10))
        .await
        .expect("ACK");
    let info = hl7v2::parse_ack(&ack).expect("parse ACK");
    (ack, info)
}

/// `vigilctl record` on a fresh Mosquitto with an MLLP listener and `ingest` lines in its config.
fn record_mllp(
    dir: &Path,
    ingest: &str,
    devices: &[(&str, &str)],
) -> (Proc, Proc, PathBuf, String) {
    let (broker, port) = mosquitto(dir);
    let db = dir.join("mllp.db");
    private_dir(&db);
    for (device, bed) in devices {
        device_add(&db, device, bed);
    }
    let mllp_addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join("vigil.toml");
    vigil_core::secure_fs::replace_private(
        &config,
        format!("[ingest]\nmllp_listen = \"{mllp_addr}\"\n{ingest}").as_bytes(),
    )
    .expect("config");
    let rec = record_with(
        &format!("mqtt://127.0.0.1:{port}"),
        &db,
        "mllp-recorder",
        &["--config", config.to_str().expect("utf-8 path")],
    );
    (broker, rec, db, mllp_addr)
}

fn security_events(db: &Path, kind: Kind) -> Vec<SecurityEvent> {
    let Ok(conn) = store::open_read_only(db) else {
        return Vec::new();
    };
    security::list(
        &conn,
        &SecurityFilter {
            kind: Some(kind.as_str().into()),
            ..Default::default()
        },
    )
    .unwrap_or_default()
}

/// Poll until `done` holds (the station flushes security events about once a second).
fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_peer_speaking_for_another_device_is_refused_reported_and_told_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, mut rec, db, addr) = record_mllp(
        dir.path(),
        "[ingest.mllp_peers]\n\"127.0.0.1\" = [\"mon-1\"]\n\"127.0.0.2\" = [\"mon-2\", \"mon-9\"]\n",
        &[("mon-1", "4W/01"), ("mon-2", "4W/02")],
    );
    // Bed 01's monitor (through its gateway) reports a high heart rate.
    let mut bed1 = connect_from("127.0.0.1", &addr).await;
    let (ack, info) = send(&mut bed1, &hr_message("mon-1", 150, "B1-1")).await;
    assert_eq!(info.code, "AA", "{ack}");
    // The gateway of bed 02 speaks for its own device: taken.
    let mut gw2 = connect_from("127.0.0.2", &addr).await;
    let (ack, info) = send(&mut gw2, &hr_message("mon-2", 80, "G2-1")).await;
    assert_eq!(info.code, "AA", "{ack}");
    // ... and as bed 01's monitor, with a normal rate that would resolve bed 01's alarm:
    // refused. So are a device registered nowhere and one on its list but not registered.
    let mut refusals = Vec::new();
    for (device, control) in [("mon-1", "SPOOF"), ("ghost-7", "SPOOF"), ("mon-9", "SPOOF")] {
        let (ack, info) = send(&mut gw2, &hr_message(device, 72, control)).await;
        assert_eq!(info.code, "AE", "{device}: {ack}");
        assert!(!ack.contains(device), "the reply names no device: {ack}");
        let err: Vec<&str> = ack.split('\r').filter(|s| s.starts_with("ERR")).collect();
        let msa: Vec<&str> = ack.split('\r').filter(|s| s.starts_with("MSA")).collect();
        refusals.push((msa.join("\r"), err.join("\r")));
    }
    assert_eq!(
        refusals[0], refusals[1],
        "foreign and unknown devices told the same"
    );
    assert_eq!(
        refusals[0], refusals[2],
        "foreign and unregistered devices told the same"
    );
    assert!(
        refusals[0].1.contains(hl7v2::REFUSAL_TEXT),
        "{:?}",
        refusals[0]
    );
    // An address not on the list is closed without a word.
    let mut stranger = connect_from("127.0.0.3", &addr).await;
    let _ = stranger
        .write_all(&mllp::frame(hr_message("mon-1", 72, "X").as_bytes()))
        .await;
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stranger.read(&mut b))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");

    // Reported: spoofing on bed 01 (a technical alarm there), the stranger and the unknown id.
    let spoof = wait_for("identity mismatch event", Duration::from_secs(15), || {
        security_events(&db, Kind::IdentityMismatch)
            .into_iter()
            .find(|e| e.source.bed == "4W/01")
    });
    assert_eq!(spoof.source.peer, "127.0.0.2", "{spoof:?}");
    assert!(spoof.detail.contains("mon-1"), "{spoof:?}");
    wait_for("refused peers reported", Duration::from_secs(15), || {
        let ev = security_events(&db, Kind::MllpRefused);
        (ev.iter().any(|e| e.source.peer == "127.0.0.3")
            && ev
                .iter()
                .any(|e| e.source.peer == "127.0.0.2" && e.source.device == "ghost-7"))
        .then_some(())
    });
    let s = wait_for_summary(&db, Duration::from_secs(15), |s| {
        s.rejects.get("foreign_device") == Some(&2) && s.rejects.get("unknown_device") == Some(&1)
    });
    assert_eq!(s.rejects.get("foreign_device"), Some(&2), "{:?}", s.rejects);
    assert_eq!(s.rejects.get("unknown_device"), Some(&1), "{:?}", s.rejects);
    // Bed 01 holds only its own monitor's rate, and its alarm stands.
    let bed1_hr = rows(
        &db,
        "SELECT code, value, status FROM numerics WHERE bed = '01'",
    );
    assert_eq!(bed1_hr, vec![("HR".into(), Some(150.0), "final".into())]);
    let raised: Vec<_> = s
        .alarms
        .iter()
        .map(|a| (a.kind.as_str(), a.bed.key(), a.code.as_str()))
        .collect();
    assert!(
        raised.contains(&("raise", "4W/01".to_string(), "HR_HIGH")),
        "{raised:?}"
    );
    assert!(
        !raised.iter().any(|a| a.0 == "resolve" && a.1 == "4W/01"),
        "{raised:?}"
    );
    rec.stops_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_slow_loris_does_not_starve_a_legitimate_sender() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, mut rec, db, addr) = record_mllp(
        dir.path(),
        "mllp_max_per_peer = 4\nmllp_frame_seconds = 5\n",
        &[("mon-1", "4W/01")],
    );
    // The attack: 64 connections from one address (the listener's whole capacity), each with a
    // half-sent frame that goes on trickling a byte every 200 ms, so that an idle timeout never
    // fires. Each reports how long it stayed open.
    let closed = Arc::new(AtomicUsize::new(0));
    let mut attack = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let mut c = connect_from("127.0.0.2", &addr).await;
        let closed = Arc::clone(&closed);
        attack.spawn(async move {
            let t = std::time::Instant::now();
            let mut open = c.write_all(b"\x0bMSH|^~\\&|GW|").await.is_ok();
            while open && t.elapsed() < Duration::from_secs(30) {
                let mut b = [0u8; 64];
                tokio::select! {
                    r = c.read(&mut b) => open = !matches!(r, Ok(0) | Err(_)),
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        open = c.write_all(b"x").await.is_ok();
                    }
                }
            }
            closed.fetch_add(1, Ordering::SeqCst);
            t.elapsed()
        });
    }
    // The legitimate sender, while the attack holds its connections: every message taken.
    for i in 0..3 {
        let mut c = connect_from("127.0.0.1", &addr).await;
        let msg = hr_message_at("mon-1", 70 + i, &format!("OK{i}"), 3 - i as i64);
        let (ack, info) = send(&mut c, &msg).await;
        assert_eq!(
            info.code, "AA",
            "legitimate message {i} during the attack: {ack}"
        );
    }
    assert!(
        closed.load(Ordering::SeqCst) < 64,
        "the legitimate messages went through while attacking connections were open"
    );
    // Every attacking connection was closed: all but 4 at once (the address's cap), those 4 at
    // their frame deadline although they never stopped sending.
    let mut open_for = Vec::new();
    while let Some(d) = attack.join_next().await {
        open_for.push(d.expect("attacker task"));
    }
    open_for.sort();
    assert!(
        open_for[59] < Duration::from_secs(4),
        "60 closed at once: {open_for:?}"
    );
    assert!(
        open_for[60..]
            .iter()
            .all(|d| *d >= Duration::from_secs(4) && *d < Duration::from_secs(20)),
        "4 closed at their frame deadline: {open_for:?}"
    );
    let refused = wait_for("the attacker reported", Duration::from_secs(15), || {
        security_events(&db, Kind::MllpRefused)
            .into_iter()
            .find(|e| e.source.peer == "127.0.0.2" && e.count >= 64)
    });
    assert_eq!(refused.count, 64, "{refused:?}");
    let s = wait_for_summary(&db, Duration::from_secs(15), |s| {
        s.readings.get(&("4W/01".into(), "HR".into())) == Some(&3)
    });
    assert_eq!(s.readings.get(&("4W/01".into(), "HR".into())), Some(&3));
    rec.stops_cleanly();
    wait_for("the counts printed", Duration::from_secs(5), || {
        let out = rec.output();
        (out.contains("rejected 60 (mllp_peer_connection_cap)")
            && out.contains("rejected 4 (mllp_frame_timeout)"))
        .then_some(())
    });
}

#[test]
fn mllp_reachable_from_the_network_without_an_allow_list_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, port) = mosquitto(dir.path());
    let db = dir.path().join("exposed.db");
    private_dir(&db);
    let config = dir.path().join("vigil.toml");
    vigil_core::secure_fs::replace_private(&config, b"").expect("config");
    let mllp_addr = format!("0.0.0.0:{}", free_port());
    let mut rec = Proc::spawn(
        "record",
        Command::new(VIGILCTL)
            .args(["record", "--broker", &format!("mqtt://127.0.0.1:{port}")])
            .args([
                "--client-id",
                "exposed",
                "--duration",
                "8",
                "--mllp",
                &mllp_addr,
            ])
            .arg("--db")
            .arg(&db)
            .arg("--config")
            .arg(&config),
    );
    let st = rec.wait(Duration::from_secs(30));
    let out = rec.output();
    assert!(!st.success(), "refused to start: {out}");
    assert!(
        out.contains("[ingest.mllp_peers]") && out.contains("127.0.0.1"),
        "the error says how to fix it: {out}"
    );
    assert!(!out.contains("subscribed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_over_tls_speaks_only_for_the_devices_its_certificate_names() {
    use rumqttc::tokio_rustls::{rustls::pki_types::ServerName, TlsConnector};
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        vigil_core::secure_fs::replace_private(&p, pem.as_bytes()).expect("write pem");
        p
    };
    // The hospital's CA signs the station's MLLP certificate and the 4W gateway's (CN mon-1,
    // DNS name mon-3); a certificate from elsewhere names mon-1 too.
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let signed = |cn: &str, names: Vec<String>, by: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(names).expect("params");
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = match by {
            Some(i) => p.signed_by(&key, i).expect("signed"),
            None => p.self_signed(&key).expect("self-signed"),
        };
        (cert.pem(), key.serialize_pem())
    };
    let ca_file = write("ca.pem", ca.pem());
    let (srv_cert, srv_key) = signed("station", vec!["localhost".into()], Some(&issuer));
    let (gw_cert, gw_key) = signed("mon-1", vec!["mon-3".into()], Some(&issuer));
    let (rogue_cert, rogue_key) = signed("mon-1", vec![], None);
    write("srv.pem", srv_cert);
    write("srv.key", srv_key);
    let gw = (write("gw.pem", gw_cert), write("gw.key", gw_key));
    let rogue = (
        write("rogue.pem", rogue_cert),
        write("rogue.key", rogue_key),
    );

    let (_broker, mut rec, db, addr) = record_mllp(
        dir.path(),
        "mllp_tls_cert_file = \"srv.pem\"\nmllp_tls_key_file = \"srv.key\"\n\
         mllp_tls_client_ca_file = \"ca.pem\"\nmllp_frame_seconds = 2\n",
        &[("mon-1", "4W/01"), ("mon-2", "4W/02"), ("mon-3", "4W/03")],
    );
    let connect = |client: Option<&(PathBuf, PathBuf)>| {
        let cfg = vigil_core::config::tls_client_config(
            &ca_file,
            client.map(|c| c.0.as_path()),
            client.map(|c| c.1.as_path()),
        )
        .expect("client config");
        let addr = addr.clone();
        async move {
            let tcp = TcpStream::connect(&addr).await.expect("connect");
            TlsConnector::from(cfg)
                .connect(ServerName::try_from("localhost").expect("name"), tcp)
                .await
        }
    };
    // The gateway speaks for the devices its certificate names, and for no other.
    let mut tls = connect(Some(&gw)).await.expect("handshake");
    for device in ["mon-1", "mon-3"] {
        let ack = mllp::exchange(
            &mut tls,
            &hr_message(device, 150, "T1"),
            Duration::from_secs(10),
        )
        .await
        .expect("ACK");
        assert_eq!(
            hl7v2::parse_ack(&ack).expect("ack").code,
            "AA",
            "{device}: {ack}"
        );
    }
    let ack = mllp::exchange(
        &mut tls,
        &hr_message("mon-2", 72, "T2"),
        Duration::from_secs(10),
    )
    .await
    .expect("ACK");
    let info = hl7v2::parse_ack(&ack).expect("ack");
    assert_eq!(info.code, "AE", "{ack}");
    assert_eq!(info.error.as_deref(), Some(hl7v2::REFUSAL_TEXT));
    // Without a certificate, or with one the CA did not sign: no message gets through.
    for (what, client) in [("no certificate", None), ("foreign CA", Some(&rogue))] {
        let got = match connect(client).await {
            Err(e) => Err(e),
            Ok(mut s) => {
                mllp::exchange(
                    &mut s,
                    &hr_message("mon-1", 72, "T3"),
                    Duration::from_secs(10),
                )
                .await
            }
        };
        assert!(got.is_err(), "{what}: {got:?}");
    }
    let spoof = wait_for(
        "identity mismatch over TLS",
        Duration::from_secs(15),
        || {
            security_events(&db, Kind::IdentityMismatch)
                .into_iter()
                .find(|e| e.source.bed == "4W/02")
        },
    );
    assert!(spoof.detail.contains("mon-2"), "{spoof:?}");
    wait_for("handshakes refused", Duration::from_secs(15), || {
        security_events(&db, Kind::MllpRefused)
            .into_iter()
            .find(|e| e.count >= 2 && e.detail.contains("TLS"))
    });
    // A client that connects and never completes the handshake is closed after the frame
    // deadline, and reported as such (not as a slow frame).
    let mut stalled = TcpStream::connect(&addr).await.expect("connect");
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled handshake is closed");
    wait_for(
        "stalled handshake reported",
        Duration::from_secs(15),
        || {
            security_events(&db, Kind::MllpRefused)
                .into_iter()
                .find(|e| e.detail.contains("handshake not completed in time"))
        },
    );
    let s = wait_for_summary(&db, Duration::from_secs(15), |s| {
        s.readings.get(&("4W/03".into(), "HR".into())) == Some(&1)
    });
    assert_eq!(s.readings.get(&("4W/01".into(), "HR".into())), Some(&1));
    assert_eq!(s.readings.get(&("4W/03".into(), "HR".into())), Some(&1));
    assert_eq!(s.readings.get(&("4W/02".into(), "HR".into())), None);
    rec.stops_cleanly();
}
