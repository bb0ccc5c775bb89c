//! End-to-end pipeline through a real broker: Mosquitto (from Debian) on a free loopback port,
//! `vigilctl sim` publishing a ward, `vigilctl record` storing it. Asserts that what is stored is
//! exactly what was published (no loss, no duplicates), that the breaching bed raised an alarm,
//! and that hostile payloads are counted as rejects without disturbing good data.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_core::store::{self, Summary};

const VIGILCTL: &str = env!("CARGO_BIN_EXE_vigilctl");

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("stopping {}", self.name);
            self.terminate(Duration::from_secs(5));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh to install it"))
}

fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start Mosquitto on a free loopback port; returns the process and the port.
fn mosquitto(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence false\nmax_queued_messages 100000\nlog_dest file {}\nuser root\n",
            dir.join("mosquitto.log").display()
        ),
    )
    .expect("write mosquitto.conf");
    let child = Command::new(find_program("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let p = Proc {
        child,
        name: "mosquitto",
    };
    wait_for_port(port, Duration::from_secs(10));
    (p, port)
}

/// Start `vigilctl record` and wait until it reports its subscription.
fn record(url: &str, db: &Path, client_id: &str) -> Proc {
    // An empty config file, so that a developer's own vigil.toml cannot change the test.
    let config = db.with_extension("toml");
    std::fs::write(&config, "").expect("write config");
    let mut child = Command::new(VIGILCTL)
        .args(["record", "--broker", url, "--client-id", client_id, "--db"])
        .arg(db)
        .env("VIGIL_CONFIG", &config)
        .env("RUST_LOG", "info,rumqttd=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vigilctl record");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("record: {line}");
            let _ = tx.send(line);
        }
    });
    let proc = Proc {
        child,
        name: "vigilctl record",
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with("subscribed") => break,
            Ok(_) => {}
            Err(e) => panic!("record did not subscribe within 20 s: {e}"),
        }
    }
    proc
}

fn counts(v: &Value) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for (bed, m) in v.as_object().expect("object") {
        for (k, n) in m.as_object().expect("object") {
            out.push((bed.clone(), k.clone(), n.as_u64().expect("count")));
        }
    }
    out
}

/// Poll the database until `done` holds for its summary, or fail after `within`.
fn wait_for_summary(db: &Path, within: Duration, done: impl Fn(&Summary) -> bool) -> Summary {
    let deadline = Instant::now() + within;
    loop {
        let s = store::open_read_only(db)
            .and_then(|c| Summary::read(&c))
            .unwrap_or_default();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn simulated_ward_through_mosquitto_is_stored_exactly_and_alarms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
    let db = dir.path().join("ward.db");
    let mut rec = record(&url, &db, &format!("test-recorder-{port}"));

    // Four beds for six seconds; bed 3 deteriorates from 2 s on (SpO2 below 90 after ~3.5 s).
    let summary = dir.path().join("published.json");
    let st = Command::new(VIGILCTL)
        .args(["sim", "--beds", "4", "--broker", &url, "--duration", "6"])
        .arg("--summary")
        .arg(&summary)
        .status()
        .expect("run vigilctl sim");
    assert!(st.success(), "vigilctl sim failed: {st}");
    let published: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary written")).expect("json");
    let samples = counts(&published["samples"]);
    let chunks = counts(&published["chunks"]);
    let readings = counts(&published["readings"]);
    assert_eq!(samples.len(), 16, "4 beds x 4 channels: {samples:?}");
    let ecg = samples
        .iter()
        .find(|(b, c, _)| b == "sim/01" && c == "ECG_II")
        .map(|x| x.2)
        .expect("ECG_II of bed 1");
    assert!((2900..=3100).contains(&ecg), "6 s of 500 Hz ECG, got {ecg}");

    // Hostile payloads beside the good traffic: refused and counted, nothing else disturbed.
    let pubbin = find_program("mosquitto_pub");
    for (topic, payload) in [
        ("vigil/v1/sim/01/mon-sim-01/vitals", "{not json"),
        (
            "vigil/v1/sim/01/mon-sim-01/vitals",
            r#"{"v":1,"device":"intruder","t":"2026-01-01T00:00:00Z","seq":1,"obs":[]}"#,
        ),
        (
            "vigil/v1/sim/01/mon-sim-01/wave/EEG",
            r#"{"v":1,"device":"mon-sim-01","channel":"EEG","unit":"mV","t0":"2026-01-01T00:00:00Z",
               "rate":256,"seq":0,"factor":0.001,"data":[1,2,3]}"#,
        ),
    ] {
        let st = Command::new(&pubbin)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
            .args(["-t", topic, "-m", payload])
            .status()
            .expect("mosquitto_pub");
        assert!(st.success());
    }

    let expect_match = |s: &Summary| {
        samples
            .iter()
            .all(|(b, c, n)| s.samples.get(&(b.clone(), c.clone())) == Some(n))
            && readings
                .iter()
                .all(|(b, c, n)| s.readings.get(&(b.clone(), c.clone())) == Some(n))
            && s.rejects.values().sum::<u64>() >= 3
    };
    let stored = wait_for_summary(&db, Duration::from_secs(20), expect_match);
    for (bed, ch, n) in &samples {
        assert_eq!(
            stored.samples.get(&(bed.clone(), ch.clone())),
            Some(n),
            "samples of {bed} {ch}"
        );
    }
    for (bed, ch, n) in &chunks {
        assert_eq!(
            stored.chunks.get(&(bed.clone(), ch.clone())),
            Some(n),
            "chunks of {bed} {ch}"
        );
    }
    for (bed, code, n) in &readings {
        assert_eq!(
            stored.readings.get(&(bed.clone(), code.clone())),
            Some(n),
            "readings of {bed} {code}"
        );
    }
    assert_eq!(stored.samples.len(), samples.len(), "nothing extra stored");
    assert_eq!(
        stored.rejects.get("malformed"),
        Some(&1),
        "{:?}",
        stored.rejects
    );
    assert_eq!(stored.rejects.get("device_mismatch"), Some(&1));
    assert_eq!(stored.rejects.get("unknown_channel"), Some(&1));

    // The deteriorating bed raised a high-priority SpO2 alarm; the steady beds raised none.
    let raised: Vec<_> = stored.alarms.iter().filter(|a| a.kind == "raise").collect();
    assert!(
        raised
            .iter()
            .any(|a| a.bed_key == "sim/03" && a.code == "SPO2_LOW" && a.priority == "high"),
        "alarms: {:?}",
        stored.alarms
    );
    assert!(
        raised.iter().all(|a| a.bed_key == "sim/03"),
        "only bed 3 breaches: {:?}",
        stored.alarms
    );

    let st = rec.terminate(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "record should stop cleanly on SIGTERM: {st:?}"
    );
}

#[test]
fn record_refuses_a_bad_broker_url() {
    let out = Command::new(VIGILCTL)
        .args([
            "record",
            "--broker",
            "http://example",
            "--db",
            "/nonexistent/x.db",
        ])
        .output()
        .expect("run vigilctl");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mqtt://"), "{err}");
}

#[test]
fn every_command_prints_help() {
    for cmd in [
        &["--help"][..],
        &["broker", "--help"],
        &["sim", "--help"],
        &["record", "--help"],
    ] {
        let out = Command::new(VIGILCTL).args(cmd).output().expect("run");
        assert!(out.status.success(), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd:?}"
        );
    }
}
