//! `vigilctl news2`, and the communication-lost technical alarm end to end: a real Mosquitto,
//! `vigilctl sim` killed, `vigilctl record` raising COMM_LOST within the configured 5 s.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;
use vigil_core::query;
use vigil_core::telemetry::BedId;

fn news2(args: &[&str]) -> (bool, String) {
    let out = Command::new(VIGILCTL)
        .arg("news2")
        .args(args)
        .output()
        .expect("run vigilctl news2");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn news2_prints_subscores_total_and_band() {
    let (ok, out) = news2(&[
        "--rr",
        "25",
        "--spo2",
        "95",
        "--sbp",
        "120",
        "--pulse",
        "91",
        "--consciousness",
        "A",
        "--temp",
        "37.0",
        "--json",
    ]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["subscores"]["rr"], 3);
    assert_eq!(v["subscores"]["spo2"], 1);
    assert_eq!(v["subscores"]["pulse"], 1);
    assert_eq!(v["total"], 5);
    assert_eq!(v["band"], "medium");
    let (ok, out) = news2(&[
        "--rr",
        "16",
        "--spo2",
        "97",
        "--scale",
        "2",
        "--oxygen",
        "--sbp",
        "120",
        "--pulse",
        "70",
        "--consciousness",
        "V",
        "--temp",
        "37",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("total 8  risk high"), "{out}");
    let (ok, _) = news2(&[
        "--rr",
        "16",
        "--spo2",
        "97",
        "--sbp",
        "120",
        "--pulse",
        "70",
        "--consciousness",
        "X",
        "--temp",
        "37",
    ]);
    assert!(!ok, "bad ACVPU refused");
}

#[test]
fn comm_lost_raised_within_timeout_after_device_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
    let db = dir.path().join("vigil.db");
    let _rec = record(&url, &db, "station-commlost");
    let mut sim = Proc::spawn(
        "vigilctl sim",
        Command::new(VIGILCTL).args(["sim", "--broker", &url, "--ward", "4W", "--beds", "1"]),
    );
    // Data flowing for a while.
    let s = wait_for_summary(&db, Duration::from_secs(20), |s| {
        s.readings.keys().any(|(b, _)| b == "4W/01")
    });
    assert!(!s.readings.is_empty(), "no data from the simulator");
    std::thread::sleep(Duration::from_secs(2));
    let _ = sim.child.kill();
    let _ = sim.child.wait();
    let stopped = vigil_core::store::now_ms();
    let t = Instant::now();
    // Raised within 5 s (+ tick 250 ms, + store batch 200 ms, + polling).
    let s = wait_for_summary(&db, Duration::from_secs(10), |s| {
        s.alarms
            .iter()
            .any(|a| a.code == "COMM_LOST" && a.kind == "raise")
    });
    let raised = s
        .alarms
        .iter()
        .find(|a| a.code == "COMM_LOST" && a.kind == "raise")
        .unwrap_or_else(|| panic!("no COMM_LOST after {:?}: {:?}", t.elapsed(), s.alarms));
    let after = raised.t_ms - stopped;
    eprintln!("COMM_LOST raised {after} ms after the device stopped");
    assert!(
        (-100..=5_600).contains(&after),
        "raised {after} ms after the device stopped"
    );
    assert_eq!(raised.bed_key, "4W/01");
    let conn = vigil_core::store::open_read_only(&db).expect("db");
    let rows = query::alarms(&conn, Some(&BedId::new("4W", "01")), 0, i64::MAX).expect("query");
    let row = rows
        .iter()
        .find(|r| r.code == "COMM_LOST" && r.kind == "raise")
        .expect("history row");
    assert!(row.audible);
    assert_eq!(row.state, "active");
}

/// A device that freezes (no data, no MQTT will: the connection stays open): communication lost
/// after the configured 5 s without data.
#[test]
fn comm_lost_raised_when_a_device_goes_silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
    let db = dir.path().join("vigil.db");
    let _rec = record(&url, &db, "station-silent");
    let mut sim = Proc::spawn(
        "vigilctl sim",
        Command::new(VIGILCTL).args(["sim", "--broker", &url, "--ward", "4W", "--beds", "1"]),
    );
    wait_for_summary(&db, Duration::from_secs(20), |s| !s.readings.is_empty());
    std::thread::sleep(Duration::from_secs(1));
    let pid = sim.child.id().to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let stopped = vigil_core::store::now_ms();
    let s = wait_for_summary(&db, Duration::from_secs(10), |s| {
        s.alarms
            .iter()
            .any(|a| a.code == "COMM_LOST" && a.kind == "raise")
    });
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let _ = sim.child.kill();
    let raised = s
        .alarms
        .iter()
        .find(|a| a.code == "COMM_LOST" && a.kind == "raise")
        .unwrap_or_else(|| panic!("no COMM_LOST: {:?}", s.alarms));
    let after = raised.t_ms - stopped;
    eprintln!("COMM_LOST raised {after} ms after the device went silent");
    // Last data arrived at most ~1 s before the stop; timeout 5 s; tick 250 ms.
    assert!((3_500..=5_600).contains(&after), "raised after {after} ms");
}
