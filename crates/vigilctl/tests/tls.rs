//! TLS to a real Mosquitto (from Debian): `vigilctl record` and `vigilctl sim` over `mqtts://`
//! with server authentication, with mutual TLS (client certificates, CN = identity), the ward's
//! ACL (a device writes only under its own device level), and clients without a valid
//! certificate refused. Certificates are made in the test with rcgen; see
//! `docs/broker-security.md` for the broker configuration these tests use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use vigil_core::store;

use crate::support;
use support::*;

/// A ward's PKI in `dir` and Mosquitto with one TLS listener on a free loopback port (its
/// broker certificate from that PKI); `listener` is the rest of the listener's settings.
/// Returns the PKI, the broker, its port, its `mqtts://` URL and the station's database path
/// (`dir/ward.db`).
fn tls_ward(dir: &Path, listener: &str) -> (Pki, Proc, u16, String, PathBuf) {
    let pki = Pki::new(dir);
    let port = free_port();
    let p = mosquitto_conf(
        dir,
        port,
        "persistence false\nmax_queued_messages 100000\nlog_type all\n",
        &format!(
            "cafile {ca}\ncertfile {cert}\nkeyfile {key}\n{listener}\n",
            ca = pki.ca.display(),
            cert = pki.dir.join("broker.pem").display(),
            key = pki.dir.join("broker.key").display(),
        ),
    );
    (
        pki,
        p,
        port,
        format!("mqtts://127.0.0.1:{port}"),
        dir.join("ward.db"),
    )
}

/// The ward's station on `url`: `vigilctl record` as vigil-station-4w with its certificate
/// (CN station-4w), recording to `db`. Returns the certificate and the running station.
fn station_recording(pki: &Pki, url: &str, db: &Path) -> ((PathBuf, PathBuf), Proc) {
    let cert = pki.client("station-4w");
    let rec = record(url, db, "vigil-station-4w", &tls_args(&pki.ca, Some(&cert)));
    (cert, rec)
}

fn mosquitto_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// A test PKI in a directory: `ca.pem` (the ward CA), `broker.pem`/`.key` (SAN localhost,
/// 127.0.0.1), and client certificates made on demand.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("self-signed CA");
    (cert.pem(), Issuer::new(p, key))
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let (pem, issuer) = new_ca("Vigil test ward CA");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, pem).expect("write ca.pem");
        let pki = Pki { dir, ca, issuer };
        pki.leaf("broker", "localhost", &["localhost", "127.0.0.1"], true);
        pki
    }

    /// Issue `name.pem` / `name.key` with common name `cn`; returns (cert, key) paths.
    fn leaf(&self, name: &str, cn: &str, sans: &[&str], server: bool) -> (PathBuf, PathBuf) {
        issue(&self.dir, &self.issuer, name, cn, sans, server)
    }

    /// A client certificate for `cn`.
    fn client(&self, cn: &str) -> (PathBuf, PathBuf) {
        self.leaf(cn, cn, &[], false)
    }
}

fn issue(
    dir: &Path,
    issuer: &Issuer<'static, KeyPair>,
    name: &str,
    cn: &str,
    sans: &[&str],
    server: bool,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = p.signed_by(&key, issuer).expect("sign");
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, key.serialize_pem()).expect("write key");
    (c, k)
}

// ---------------------------------------------------------------------------------------------
// vigilctl

fn tls_args(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> Vec<String> {
    let mut v = vec!["--ca".to_string(), ca.display().to_string()];
    if let Some((c, k)) = client {
        v.extend([
            "--cert".into(),
            c.display().to_string(),
            "--key".into(),
            k.display().to_string(),
        ]);
    }
    v
}

/// `vigilctl record` accepting unregistered devices, with these TLS flags (an empty config
/// file, so a developer's own vigil.toml cannot interfere).
fn record_cmd(url: &str, db: &Path, client_id: &str, tls: &[String]) -> Command {
    let mut extra = vec!["--allow-unregistered".to_string()];
    extra.extend_from_slice(tls);
    support::record_cmd(url, db, client_id, &extra, "")
}

/// Start `vigilctl record` and wait until it has subscribed.
fn record(url: &str, db: &Path, client_id: &str, tls: &[String]) -> Proc {
    let p = Proc::spawn("record", &mut record_cmd(url, db, client_id, tls));
    p.wait_line("subscribed", Duration::from_secs(20));
    p
}

/// Wait until the database holds exactly what the simulator says it published (samples,
/// chunks, readings), then assert it.
fn assert_stored_exactly(db: &Path, published: &Path) {
    let published = Published::read(published);
    assert!(
        !published.samples.is_empty() && !published.readings.is_empty(),
        "{published:?}"
    );
    published.assert_stored_in(db, Duration::from_secs(15));
}

/// Publish one message with mosquitto_pub over TLS as the holder of `client`.
fn mosquitto_pub(
    port: u16,
    ca: &Path,
    client: &(PathBuf, PathBuf),
    id: &str,
    topic: &str,
    payload: &str,
) {
    let out = support::mosquitto_pub("localhost", port)
        .args(["-i", id])
        .arg("--cafile")
        .arg(ca)
        .arg("--cert")
        .arg(&client.0)
        .arg("--key")
        .arg(&client.1)
        .args(["-t", topic, "-m", payload])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn vitals_json(device: &str, seq: u64, obs: &str) -> String {
    let t = vigil_core::telemetry::utc_from_ms(store::now_ms()).to_rfc3339();
    format!(r#"{{"v":1,"device":"{device}","t":"{t}","seq":{seq},"obs":[{obs}]}}"#)
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Server-authenticated TLS: the clients check the broker against the ward CA; no client
/// certificates. Everything the simulator publishes is stored, exactly.
#[test]
fn server_authenticated_tls_carries_the_ward_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, _broker, port, url, db) = tls_ward(
        dir.path(),
        "require_certificate false\nallow_anonymous true",
    );
    let tls = tls_args(&pki.ca, None);
    let mut rec = record(&url, &db, &format!("tls-recorder-{port}"), &tls);

    let published = dir.path().join("published.json");
    let mut sim = Proc::spawn("sim", &mut sim_cmd(&url, "tls", 2, 3.0, &published, &tls));
    sim.succeeds(Duration::from_secs(30), "over mqtts");
    assert_stored_exactly(&db, &published);

    rec.stops_cleanly();
}

/// Mutual TLS with the ward's ACL: the station and the device authenticate with certificates
/// (CN = identity); a device writes only under its own device level, so a forged topic is
/// dropped by the broker, and a forged payload on its own topic is rejected by Vigil.
#[test]
fn mutual_tls_identities_and_device_acl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        "# stations: read all telemetry, write the station-reserved levels\n\
         user station-4w\ntopic read vigil/v1/#\ntopic readwrite vigil/v1/+/+/_station/#\n\n\
         # devices (CN = device id): write only under their own device level\n\
         pattern write vigil/v1/+/+/%u/#\n",
    )
    .expect("write acl");
    let (pki, _broker, port, url, db) = tls_ward(
        dir.path(),
        &format!(
            "require_certificate true\nuse_identity_as_username true\n\
             use_username_as_clientid true\nallow_anonymous false\nacl_file {}",
            acl.display()
        ),
    );
    let (_, mut rec) = station_recording(&pki, &url, &db);

    // The simulator's one bed is device mon-w-01 on bed w/01: its certificate says so.
    let device = pki.client("mon-w-01");
    let published = dir.path().join("published.json");
    let mut sim = Proc::spawn(
        "sim",
        &mut sim_cmd(
            &url,
            "w",
            1,
            3.0,
            &published,
            &tls_args(&pki.ca, Some(&device)),
        ),
    );

    // Device mon-a: its own topic works; mon-b's topic and mon-w-01's waveform are refused.
    let mon_a = pki.client("mon-a");
    let hr = r#"{"mdc":147842,"value":150,"unit":"/min"}"#;
    let spo2 = r#"{"mdc":150456,"value":97,"unit":"%"}"#;
    let forged_chunk = format!(
        r#"{{"v":1,"device":"mon-w-01","channel":"ECG_II","unit":"mV","t0":"{}","rate":500,"seq":999999,"factor":0.005,"data":[1,2,3]}}"#,
        vigil_core::telemetry::utc_from_ms(store::now_ms()).to_rfc3339()
    );
    for (id, topic, payload) in [
        (
            "mon-a-1",
            "vigil/v1/w/02/mon-b/vitals",
            vitals_json("mon-b", 1, hr),
        ),
        (
            "mon-a-2",
            "vigil/v1/w/01/mon-w-01/wave/ECG_II",
            forged_chunk,
        ),
        (
            "mon-a-3",
            "vigil/v1/w/02/mon-a/vitals",
            vitals_json("mon-a", 1, spo2),
        ),
        // Its own topic, someone else's name in the payload: Vigil rejects it (device_mismatch).
        (
            "mon-a-4",
            "vigil/v1/w/02/mon-a/vitals",
            vitals_json("mon-b", 2, hr),
        ),
    ] {
        mosquitto_pub(port, &pki.ca, &mon_a, id, topic, &payload);
    }

    sim.succeeds(Duration::from_secs(30), "over mutual TLS");
    // The simulator's data, exactly: mon-a's forged chunk was not added to it.
    assert_stored_exactly(&db, &published);
    let s = wait_for_summary(&db, Duration::from_secs(10), |s| {
        s.readings.contains_key(&("w/02".into(), "SPO2".into())) && !s.rejects.is_empty()
    });
    assert_eq!(
        s.readings.get(&("w/02".into(), "SPO2".into())),
        Some(&1),
        "mon-a's own topic works: {:?}",
        s.readings
    );
    assert_eq!(
        s.readings.get(&("w/02".into(), "HR".into())),
        None,
        "nothing from the forged topic or payload"
    );
    assert_eq!(
        s.rejects.get("device_mismatch"),
        Some(&1),
        "{:?}",
        s.rejects
    );
    // The broker says why (its log names the client, whose id is its certificate's CN, and
    // the topic).
    let log = mosquitto_log(dir.path());
    let denied = |topic: &str| {
        log.lines()
            .any(|l| l.contains("Denied PUBLISH from mon-a ") && l.contains(topic))
    };
    assert!(denied("'vigil/v1/w/02/mon-b/vitals'"), "{log}");
    assert!(denied("'vigil/v1/w/01/mon-w-01/wave/ECG_II'"), "{log}");
    assert!(!denied("'vigil/v1/w/02/mon-a/vitals'"), "{log}");

    rec.stops_cleanly();
}

/// Without a valid client certificate (none, or one from another CA) neither a station nor a
/// device gets in: each reports the failure within its run time, and nothing it sent arrives.
/// A client that does not trust the broker's CA refuses the broker.
#[test]
fn clients_without_a_valid_certificate_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, _broker, _, url, db) = tls_ward(
        dir.path(),
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false",
    );
    let (station, mut rec) = station_recording(&pki, &url, &db);

    // Another CA's certificates, with the same names.
    let rogue_dir = dir.path().join("rogue");
    std::fs::create_dir_all(&rogue_dir).expect("rogue dir");
    let (rogue_pem, rogue) = new_ca("Rogue CA");
    let rogue_ca = rogue_dir.join("ca.pem");
    std::fs::write(&rogue_ca, rogue_pem).expect("write rogue ca");
    let rogue_device = issue(&rogue_dir, &rogue, "mon-x-01", "mon-x-01", &[], false);
    let rogue_station = issue(&rogue_dir, &rogue, "station-4w", "station-4w", &[], false);

    // Devices: no certificate, a rogue certificate. Each runs 2 s and must fail.
    let started = Instant::now();
    let mut sims = Vec::new();
    for (i, client) in [None, Some(&rogue_device)].into_iter().enumerate() {
        let summary = dir.path().join(format!("sim{i}.json"));
        sims.push(Proc::spawn(
            "bad sim",
            &mut sim_cmd(&url, "x", 1, 2.0, &summary, &tls_args(&pki.ca, client)),
        ));
    }
    // Stations: no certificate, a rogue certificate, and one that does not trust the broker.
    let mut recs = Vec::new();
    for (i, tls) in [
        tls_args(&pki.ca, None),
        tls_args(&pki.ca, Some(&rogue_station)),
        tls_args(&rogue_ca, Some(&station)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cmd = record_cmd(
            &url,
            &dir.path().join(format!("bad{i}.db")),
            &format!("bad-station-{i}"),
            &tls,
        );
        cmd.args(["--duration", "3"]);
        recs.push(Proc::spawn("bad record", &mut cmd));
    }
    for p in sims.iter_mut() {
        let out = p.fails(
            Duration::from_secs(25),
            "a device without a valid certificate must fail",
        );
        assert!(out.contains("not acknowledged"), "{out}");
        assert!(out.contains("broker link down"), "{out}");
    }
    let mut errors = Vec::new();
    for p in recs.iter_mut() {
        let out = p.fails(
            Duration::from_secs(25),
            "a station without a valid certificate must fail",
        );
        assert!(
            out.contains("stopped before the broker accepted the subscription (last error:"),
            "{out}"
        );
        errors.push(out);
    }
    assert!(
        errors[2].contains("UnknownIssuer") || errors[2].contains("invalid peer certificate"),
        "the broker's certificate is not trusted without the ward CA:\n{}",
        errors[2]
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded: {:?}",
        started.elapsed()
    );

    // Nothing from the refused devices reached the station.
    std::thread::sleep(Duration::from_millis(500));
    let s = summary(&db);
    assert!(s.samples.is_empty() && s.readings.is_empty(), "{s:?}");
    rec.stops_cleanly();
}

/// Unusable TLS settings stop `record` and `sim` at start, naming the file or the flag.
#[test]
fn bad_tls_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello\n").expect("write");
    let (cert_a, _) = pki.client("a");
    let (_, key_b) = pki.client("b");
    let db = dir.path().join("x.db");
    let url = "mqtts://127.0.0.1:1";
    let s = |p: &Path| p.display().to_string();
    for (args, expect) in [
        (
            vec!["--ca".to_string(), s(&garbage)],
            format!("CA bundle {}: no PEM CERTIFICATE block", s(&garbage)),
        ),
        (
            vec!["--ca".to_string(), s(&dir.path().join("nope.pem"))],
            "cannot read CA bundle".to_string(),
        ),
        (
            vec![
                "--ca".into(),
                s(&pki.ca),
                "--cert".into(),
                s(&cert_a),
                "--key".into(),
                s(&key_b),
            ],
            format!(
                "client key {}: does not fit the client certificate",
                s(&key_b)
            ),
        ),
        (vec![], "mqtts:// needs the CA bundle".to_string()),
    ] {
        for cmd in ["record", "sim"] {
            let mut c = if cmd == "record" {
                record_cmd(url, &db, "x", &args)
            } else {
                sim_cmd(url, "x", 1, 1.0, &dir.path().join("s.json"), &args)
            };
            let out = c.output().expect("run vigilctl");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {args:?} must fail");
            assert!(
                err.contains(&expect),
                "{cmd} {args:?}: expected {expect:?} in:\n{err}"
            );
        }
    }
    // TLS files with a plain URL would silently go unused: refused.
    let out = record_cmd("mqtt://127.0.0.1:1", &db, "x", &tls_args(&pki.ca, None))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use mqtts://"));
}

/// User name and password over server-authenticated TLS: the password comes from
/// `VIGIL_MQTT_PASSWORD`; a wrong one is refused by the broker and reported.
#[test]
fn password_from_the_environment_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwd = dir.path().join("passwd");
    for (i, (user, pw)) in [("station-4w", "st-secret"), ("mon-p-01", "dev-secret")]
        .into_iter()
        .enumerate()
    {
        let mut c = Command::new(find_program("mosquitto_passwd"));
        if i == 0 {
            c.arg("-c");
        }
        let st = c
            .arg("-b")
            .arg(&passwd)
            .args([user, pw])
            .status()
            .expect("mosquitto_passwd");
        assert!(st.success());
    }
    let (pki, _broker, _, url, db) = tls_ward(
        dir.path(),
        &format!(
            "require_certificate false\nallow_anonymous false\npassword_file {}",
            passwd.display()
        ),
    );
    let with_user = |user: &str| {
        let mut v = tls_args(&pki.ca, None);
        v.extend(["--username".to_string(), user.to_string()]);
        v
    };
    let mut cmd = record_cmd(&url, &db, "vigil-station-4w", &with_user("station-4w"));
    cmd.env("VIGIL_MQTT_PASSWORD", "st-secret");
    let rec = Proc::spawn("record", &mut cmd);
    rec.wait_line("subscribed", Duration::from_secs(20));

    let published = dir.path().join("published.json");
    let mut cmd = sim_cmd(&url, "p", 1, 2.0, &published, &with_user("mon-p-01"));
    cmd.env("VIGIL_MQTT_PASSWORD", "dev-secret");
    let mut sim = Proc::spawn("sim", &mut cmd);
    sim.succeeds(Duration::from_secs(30), "with a password");
    assert_stored_exactly(&db, &published);

    // A wrong password: refused, reported, never printed.
    let mut cmd = record_cmd(
        &url,
        &dir.path().join("bad.db"),
        "bad",
        &with_user("station-4w"),
    );
    cmd.env("VIGIL_MQTT_PASSWORD", "wrong-guess")
        .args(["--duration", "2"]);
    let mut bad = Proc::spawn("bad record", &mut cmd);
    let out = bad.fails(Duration::from_secs(20), "a wrong password must fail");
    assert!(
        out.contains("NotAuthorized") || out.contains("BadUserNamePassword"),
        "{out}"
    );
    assert!(!out.contains("wrong-guess") && !rec.output().contains("st-secret"));
}
