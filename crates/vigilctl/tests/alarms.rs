//! `vigilctl news2`, and the communication-lost technical alarm end to end: a real Mosquitto,
//! `vigilctl sim` killed, `vigilctl record` raising COMM_LOST within the configured 5 s.

use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;
use vigil_core::query;
use vigil_core::query::AlarmRow;
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

/// Bed 4W/01's monitor, a running `vigilctl sim`, recorded by `vigilctl record` as `station`
/// through Mosquitto; returns once its data is stored (the processes stop when dropped).
struct OneBed {
    _dir: tempfile::TempDir,
    _mosq: Proc,
    _rec: Proc,
    sim: Proc,
    db: std::path::PathBuf,
}

impl OneBed {
    fn start(station: &str) -> OneBed {
        let (dir, mosq, _, url) = fresh_broker();
        let db = dir.path().join("vigil.db");
        let rec = record(&url, &db, station);
        let sim = Proc::spawn(
            "vigilctl sim",
            Command::new(VIGILCTL).args(["sim", "--broker", &url, "--ward", "4W", "--beds", "1"]),
        );
        // Data flowing.
        let s = wait_for_summary(&db, Duration::from_secs(20), |s| {
            s.readings.keys().any(|(b, _)| b == "4W/01")
        });
        assert!(!s.readings.is_empty(), "no data from the simulator");
        OneBed {
            _dir: dir,
            _mosq: mosq,
            _rec: rec,
            sim,
            db,
        }
    }

    /// Wait (10 s at most) for the COMM_LOST raise after the device stopped at `stopped`.
    fn comm_lost(&self, stopped: Instant) -> AlarmRow {
        let is_raise = |a: &AlarmRow| a.code == "COMM_LOST" && a.kind == "raise";
        let s = wait_for_summary(&self.db, Duration::from_secs(10), |s| {
            s.alarms.iter().any(is_raise)
        });
        let raised = s.alarms.iter().find(|a| is_raise(a)).cloned();
        raised.unwrap_or_else(|| {
            let t = stopped.elapsed();
            panic!(
                "no COMM_LOST {t:?} after the device stopped: {:?}",
                s.alarms
            )
        })
    }
}

#[test]
fn comm_lost_raised_within_timeout_after_device_stops() {
    let mut bed = OneBed::start("station-commlost");
    let (sim, db) = (&mut bed.sim, bed.db.clone());
    std::thread::sleep(Duration::from_secs(2));
    let _ = sim.child.kill();
    let _ = sim.child.wait();
    let stopped = vigil_core::store::now_ms();
    let t = Instant::now();
    // Raised within 5 s (+ tick 250 ms, + store batch 200 ms, + polling).
    let raised = bed.comm_lost(t);
    let after = raised.t_ms - stopped;
    eprintln!("COMM_LOST raised {after} ms after the device stopped");
    assert!(
        (-100..=5_600).contains(&after),
        "raised {after} ms after the device stopped"
    );
    assert_eq!(raised.bed.key(), "4W/01");
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
    let mut bed = OneBed::start("station-silent");
    std::thread::sleep(Duration::from_secs(1));
    let pid = bed.sim.child.id().to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let stopped = vigil_core::store::now_ms();
    let raised = bed.comm_lost(Instant::now());
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let _ = bed.sim.child.kill();
    let after = raised.t_ms - stopped;
    eprintln!("COMM_LOST raised {after} ms after the device went silent");
    // Last data arrived at most ~1 s before the stop; timeout 5 s; tick 250 ms.
    assert!((3_500..=5_600).contains(&after), "raised after {after} ms");
}
