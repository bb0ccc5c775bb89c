//! End-to-end pipeline through a real broker: Mosquitto (from Debian) on a free loopback port,
//! `vigilctl sim` publishing a ward, `vigilctl record` storing it. Asserts that what is stored is
//! exactly what was published (no loss, no duplicates), that the breaching bed raised an alarm,
//! and that hostile payloads are counted as rejects without disturbing good data.

use std::process::Command;
use std::time::Duration;

use crate::support;
use support::{
    free_port, fresh_broker, mosquitto_pub, record, record_with, wait_for_summary, Proc, Published,
    VIGILCTL,
};

#[test]
fn simulated_ward_through_mosquitto_is_stored_exactly_and_alarms() {
    let (dir, _broker, port, url) = fresh_broker();
    let db = dir.path().join("ward.db");
    let mut rec = record(&url, &db, &format!("test-recorder-{port}"));

    // Four beds for 20 s; bed 3 deteriorates from 2 s on (SpO2 below 90 after ~4 s, which
    // raises SPO2_LOW once the 10 s condition delay has passed, ~6 s before the end).
    let summary = dir.path().join("published.json");
    let st = Command::new(VIGILCTL)
        .args(["sim", "--beds", "4", "--broker", &url, "--duration", "20"])
        .arg("--summary")
        .arg(&summary)
        .status()
        .expect("run vigilctl sim");
    assert!(st.success(), "vigilctl sim failed: {st}");
    let published = Published::read(&summary);
    let samples = &published.samples;
    assert_eq!(samples.len(), 16, "4 beds x 4 channels: {samples:?}");
    let ecg = samples
        .iter()
        .find(|(b, c, _)| b == "sim/01" && c == "ECG_II")
        .map(|x| x.2)
        .expect("ECG_II of bed 1");
    // About 20 s of 500 Hz ECG (the last chunk tick may fall up to 250 ms before the stop).
    assert!(
        (9600..=10100).contains(&ecg),
        "20 s of 500 Hz ECG, got {ecg}"
    );

    // Hostile payloads beside the good traffic: refused and counted, nothing else disturbed.
    let now = chrono::Utc::now().to_rfc3339();
    let vitals_topic = "vigil/v1/sim/01/mon-sim-01/vitals";
    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, format!("{{\"pad\":\"{}\"}}", "x".repeat(300_000))).expect("write");
    let deep = format!(
        r#"{{"v":1,"device":"mon-sim-01","t":"{now}","seq":1,"obs":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let hostile: Vec<(&str, String)> = vec![
        (vitals_topic, "{not json".into()),
        (vitals_topic, deep),
        (
            vitals_topic,
            format!(r#"{{"v":1,"device":"mon-sim-01","t":"{now}","seq":1,"obs":[{{"mdc":147842,"value":NaN,"unit":"/min"}}]}}"#),
        ),
        (
            vitals_topic,
            format!(r#"{{"v":"one","device":"mon-sim-01","t":"{now}","seq":1,"obs":[]}}"#),
        ),
        // A sequence number after the simulator's (seq 1 again would be a replay, refused
        // whole before its observations are looked at).
        (
            vitals_topic,
            format!(r#"{{"v":1,"device":"mon-sim-01","t":"{now}","seq":1000000,"obs":[{{"mdc":999999,"value":1,"unit":"/min"}}]}}"#),
        ),
        (
            vitals_topic,
            r#"{"v":1,"device":"intruder","t":"2026-01-01T00:00:00Z","seq":1,"obs":[]}"#.into(),
        ),
        (
            "vigil/v1/sim/01/mon-sim-01/wave/EEG",
            r#"{"v":1,"device":"mon-sim-01","channel":"EEG","unit":"mV","t0":"2026-01-01T00:00:00Z",
               "rate":256,"seq":0,"factor":0.001,"data":[1,2,3]}"#
                .into(),
        ),
    ];
    let mosq_pub = |topic: &str| {
        let mut c = mosquitto_pub("127.0.0.1", port);
        c.args(["-t", topic]);
        c
    };
    for (topic, payload) in &hostile {
        let st = mosq_pub(topic)
            .args(["-m", payload])
            .status()
            .expect("mosquitto_pub");
        assert!(st.success());
    }
    let st = mosq_pub(vitals_topic)
        .arg("-f")
        .arg(&huge)
        .status()
        .expect("mosquitto_pub");
    assert!(st.success());

    let stored = wait_for_summary(&db, Duration::from_secs(20), |s| {
        published.all_in(s) && s.rejects.values().sum::<u64>() >= 8
    });
    published.assert_stored(&stored);
    published.assert_nothing_extra(&stored, "");
    // Truncated, deeply nested, NaN and wrongly typed payloads are malformed.
    assert_eq!(
        stored.rejects.get("malformed"),
        Some(&4),
        "{:?}",
        stored.rejects
    );
    assert_eq!(stored.rejects.get("device_mismatch"), Some(&1));
    assert_eq!(stored.rejects.get("unknown_channel"), Some(&1));
    assert_eq!(stored.rejects.get("unknown_code"), Some(&1));
    assert_eq!(stored.rejects.get("too_large"), Some(&1));

    // The deteriorating bed raised a high-priority SpO2 alarm; the steady beds raised no
    // physiological alarm. When the simulator stopped, every monitor went offline: each bed
    // raised the communication-lost technical alarm.
    for bed in ["sim/01", "sim/02", "sim/03", "sim/04"] {
        assert!(
            stored
                .alarms
                .iter()
                .any(|a| a.bed.key() == bed && a.code == "COMM_LOST" && a.kind == "raise"),
            "{bed} comm lost: {:?}",
            stored.alarms
        );
    }
    let raised: Vec<_> = stored
        .alarms
        .iter()
        .filter(|a| a.kind == "raise" && a.code != "COMM_LOST")
        .collect();
    assert!(
        raised
            .iter()
            .any(|a| a.bed.key() == "sim/03" && a.code == "SPO2_LOW" && a.priority == "high"),
        "alarms: {:?}",
        stored.alarms
    );
    assert!(
        raised.iter().all(|a| a.bed.key() == "sim/03"),
        "only bed 3 breaches: {:?}",
        stored.alarms
    );

    rec.stops_cleanly();
}

/// The README's headless pipeline, as written: `vigilctl broker`, `vigilctl device add-sim`,
/// `vigilctl sim` and `vigilctl record` (which refuses unregistered devices with a broker).
/// Every simulated bed is stored and nothing is refused; a device not registered still is.
#[test]
fn readme_pipeline_stores_the_registered_simulated_ward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let broker = Proc::spawn(
        "broker",
        Command::new(VIGILCTL)
            .args(["broker", "--port", &port.to_string()])
            .env("RUST_LOG", "warn"),
    );
    broker.wait_line("broker listening", Duration::from_secs(20));
    let db = dir.path().join("ward.db");
    support::private_dir(&db);
    let out = Command::new(VIGILCTL)
        .args(["device", "add-sim", "--beds", "2", "--db"])
        .arg(&db)
        .output()
        .expect("run vigilctl device add-sim");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("device mon-sim-02 feeds bed sim/02"),
        "{out:?}"
    );
    // No --allow-unregistered: the registry is enforced, as with any broker.
    let mut rec = record_with(&url, &db, &format!("readme-recorder-{port}"), &[]);
    let st = Command::new(VIGILCTL)
        .args(["sim", "--beds", "3", "--broker", &url, "--duration", "4"])
        .status()
        .expect("run vigilctl sim");
    assert!(st.success(), "vigilctl sim failed: {st}");
    let stored = wait_for_summary(&db, Duration::from_secs(20), |s| {
        ["sim/01", "sim/02"].iter().all(|b| {
            s.readings.keys().any(|(bed, _)| bed == b) && s.samples.keys().any(|(bed, _)| bed == b)
        }) && s.rejects.get("unknown_device").is_some_and(|n| *n > 0)
    });
    for bed in ["sim/01", "sim/02"] {
        assert!(
            stored.readings.keys().any(|(b, _)| b == bed),
            "{bed}: no readings stored: {stored:?}"
        );
        assert!(
            stored.samples.keys().any(|(b, _)| b == bed),
            "{bed}: no waveforms stored: {stored:?}"
        );
    }
    // The third monitor was not registered: refused, never stored.
    assert!(
        !stored.readings.keys().any(|(b, _)| b == "sim/03"),
        "unregistered bed stored: {stored:?}"
    );
    assert!(
        stored.rejects.get("unknown_device").is_some_and(|n| *n > 0),
        "{:?}",
        stored.rejects
    );
    rec.stops_cleanly();
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
