//! Real recordings through a real broker: `vigilctl replay` publishes MIT-BIH record 100 (ECG,
//! 360 Hz) and BIDMC subject 01 (resp, pleth, ECG at 125 Hz) to Mosquitto, `vigilctl record`
//! stores them. Every sample must be stored at its native rate and read back within the
//! quantisation step; the stored size of real ECG must stay at or under 1 byte per sample.
//! Also: the device registry refuses unknown devices, and `query` / `status` report the data.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vigil_core::query;
use vigil_core::store;
use vigil_core::telemetry::BedId;

use crate::support;
use support::{data, fresh_broker, wait_for_summary, Proc, VIGILCTL};

/// (header, rows) of a CSV, skipping `#` lines.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let rows = lines
        .map(|l| {
            l.split(',')
                .map(|c| c.trim().parse().expect("number"))
                .collect()
        })
        .collect();
    (header, rows)
}

fn replay(url: &str, file: &Path, bed: &str, extra: &[&str]) -> std::process::Output {
    Command::new(VIGILCTL)
        .args(["replay", "--broker", url, "--bed", bed, "--speed", "400"])
        .arg(file)
        .args(extra)
        .output()
        .expect("run vigilctl replay")
}

/// The recorder, with device budgets far above a replay at 400× real time (a device sending
/// that fast in a ward would have its excess dropped: tests/fairness.rs in vigil-core).
fn start_record(url: &str, db: &Path, extra: &[&str]) -> Proc {
    support::record_config(
        url,
        db,
        &format!("rec-{}", std::process::id()),
        extra,
        "[ingest]\ndevice_msgs_per_s = 1000000\ndevice_bytes_per_s = 1000000000\n",
    )
}

/// Compare a stored channel with a CSV column, sample by sample.
fn assert_round_trip(db: &Path, bed: &BedId, channel: &str, expect: &[f64], rate: f64) {
    let conn = store::open_read_only(db).expect("open db");
    let s = query::samples(&conn, bed, channel, 0, i64::MAX).expect("samples");
    assert!(s.gaps.is_empty(), "no gaps in {channel}: {:?}", s.gaps);
    let got: Vec<f64> = s.segments.iter().flat_map(|g| g.values.clone()).collect();
    assert_eq!(
        got.len(),
        expect.len(),
        "{bed} {channel}: every sample stored once"
    );
    for seg in &s.segments {
        assert_eq!(seg.rate, rate, "{channel}: native rate kept");
    }
    let step = s.segments[0].factor;
    for (i, (g, e)) in got.iter().zip(expect).enumerate() {
        assert!(
            (g - e).abs() <= step / 2.0 + 1e-9,
            "{channel} sample {i}: stored {g}, recorded {e} (step {step})"
        );
    }
    // Chunks are contiguous: each starts where the previous ended (within 1 ms rounding).
    for w in s.segments.windows(2) {
        let end = w[0].t0_ms as f64 + w[0].values.len() as f64 * 1000.0 / w[0].rate;
        assert!(
            (w[1].t0_ms as f64 - end).abs() <= 1.0,
            "{channel} chunk timing"
        );
    }
}

#[test]
fn mitbih_and_bidmc_round_trip_at_native_rates() {
    let (dir, _broker, _, url) = fresh_broker();
    let db = dir.path().join("rec.db");
    let mut rec = start_record(&url, &db, &["--allow-unregistered"]);

    let mit = data("waveforms/mitdb100/mitdb100_MLII_V5_360hz_first300s.csv");
    let bidmc = data("waveforms/bidmc01/bidmc_01_Signals.csv");
    for (file, bed) in [(&mit, "rec/mitdb100"), (&bidmc, "rec/bidmc01")] {
        let out = replay(&url, file, bed, &[]);
        assert!(
            out.status.success(),
            "replay {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, mit_rows) = read_csv(&mit);
    let (bh, bidmc_rows) = read_csv(&bidmc);
    let (n_mit, n_bidmc) = (mit_rows.len() as u64, bidmc_rows.len() as u64);
    assert_eq!(n_mit, 108_000);
    let stored = wait_for_summary(&db, Duration::from_secs(30), |s| {
        s.samples.get(&("rec/mitdb100".into(), "ECG_V5".into())) == Some(&n_mit)
            && s.samples.get(&("rec/bidmc01".into(), "ECG_II".into())) == Some(&n_bidmc)
            && s.samples.get(&("rec/bidmc01".into(), "RESP".into())) == Some(&n_bidmc)
            && s.samples.get(&("rec/bidmc01".into(), "PLETH".into())) == Some(&n_bidmc)
    });
    assert_eq!(
        stored
            .samples
            .get(&("rec/mitdb100".into(), "ECG_II".into())),
        Some(&n_mit),
        "{:?}",
        stored.samples
    );

    let mit_bed = BedId::new("rec", "mitdb100");
    let col = |rows: &[Vec<f64>], i: usize| rows.iter().map(|r| r[i]).collect::<Vec<_>>();
    assert_round_trip(&db, &mit_bed, "ECG_II", &col(&mit_rows, 1), 360.0);
    assert_round_trip(&db, &mit_bed, "ECG_V5", &col(&mit_rows, 2), 360.0);
    let bidmc_bed = BedId::new("rec", "bidmc01");
    let idx = |name: &str| bh.iter().position(|h| h == name).expect("column");
    assert_round_trip(
        &db,
        &bidmc_bed,
        "RESP",
        &col(&bidmc_rows, idx("RESP")),
        125.0,
    );
    assert_round_trip(
        &db,
        &bidmc_bed,
        "PLETH",
        &col(&bidmc_rows, idx("PLETH")),
        125.0,
    );
    assert_round_trip(
        &db,
        &bidmc_bed,
        "ECG_II",
        &col(&bidmc_rows, idx("II")),
        125.0,
    );

    // Compact full disclosure: at most 1 byte per sample of real ECG.
    let conn = store::open_read_only(&db).expect("open");
    let st = query::status(&conn).expect("status");
    for ch in ["ECG_II", "ECG_V5"] {
        let s = &st.beds["rec/mitdb100"][ch];
        let bps = s.bytes as f64 / s.samples as f64;
        println!("MIT-BIH 100 {ch}: {:.3} bytes per sample stored", bps);
        assert!(bps <= 1.0, "{ch}: {bps} bytes per sample");
    }

    // The command-line views of the same data.
    let out = Command::new(VIGILCTL)
        .args([
            "query",
            "samples",
            "--bed",
            "rec/mitdb100",
            "--channel",
            "ECG_II",
            "--db",
        ])
        .arg(&db)
        .output()
        .expect("query samples");
    assert!(out.status.success());
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        csv.lines().count() as u64,
        n_mit + 1,
        "header + every sample"
    );
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.ends_with(",-0.145,mV")),
        "{:?}",
        csv.lines().nth(1)
    );
    let out = Command::new(VIGILCTL)
        .args(["status", "--json", "--db"])
        .arg(&db)
        .output()
        .expect("status");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["beds"]["rec/bidmc01"]["PLETH"]["samples"], n_bidmc);

    rec.stops_cleanly();
}

#[test]
fn registry_refuses_unknown_devices_and_numerics_replay() {
    let (dir, _broker, _, url) = fresh_broker();
    let db = dir.path().join("reg.db");
    let st = Command::new(VIGILCTL)
        .args([
            "device",
            "add",
            "bedside-7",
            "--bed",
            "4W/07",
            "--label",
            "Bed 7 monitor",
            "--db",
        ])
        .arg(&db)
        .status()
        .expect("device add");
    assert!(st.success());
    // Registering a device is an audited administrative action.
    let audit = Command::new(VIGILCTL)
        .args(["audit", "list", "--db"])
        .arg(&db)
        .output()
        .expect("audit list");
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains("device_register") && audit.contains("bedside-7"),
        "{audit}"
    );
    // Registry enforced (the default with a broker).
    let mut rec = start_record(&url, &db, &[]);

    // Minute-by-minute numerics; 0 and blank mean "no reading".
    let csv = dir.path().join("numerics.csv");
    std::fs::write(
        &csv,
        "minute,HR,SpO2,RESP,NBPSys\n0,72,97,16,120\n1,75,0,17,\n2,131,88,18,118\n",
    )
    .expect("write csv");
    let ok = replay(&url, &csv, "4W/07", &["--device", "bedside-7"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let intruder = replay(&url, &csv, "4W/07", &["--device", "rogue-1"]);
    assert!(
        intruder.status.success(),
        "the broker accepts; Vigil refuses"
    );
    let wrong_bed = replay(&url, &csv, "4W/08", &["--device", "bedside-7"]);
    assert!(wrong_bed.status.success());

    let s = wait_for_summary(&db, Duration::from_secs(20), |s| {
        s.readings.get(&("4W/07".into(), "HR".into())) == Some(&3)
            && s.rejects.get("unknown_device") >= Some(&3)
            && s.rejects.get("bed_mismatch") >= Some(&3)
    });
    assert_eq!(s.readings.get(&("4W/07".into(), "HR".into())), Some(&3));
    assert!(
        s.readings.keys().all(|(bed, _)| bed == "4W/07"),
        "{:?}",
        s.readings
    );
    assert!(
        s.rejects.get("unknown_device") >= Some(&3),
        "{:?}",
        s.rejects
    );
    assert!(s.rejects.get("bed_mismatch") >= Some(&3), "{:?}", s.rejects);
    // Blank and 0 stored as "no reading", never as a value; the tachycardia alarmed.
    let conn = store::open_read_only(&db).expect("open");
    let nulls: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM numerics WHERE value IS NULL AND code IN ('SPO2', 'NIBP_SYS')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(nulls, 2);
    assert!(s
        .alarms
        .iter()
        .any(|a| a.code == "HR_HIGH" && a.bed.key() == "4W/07"));
    let trend = Command::new(VIGILCTL)
        .args([
            "query", "trend", "--bed", "4W/07", "--code", "HR", "--bucket", "1h", "--db",
        ])
        .arg(&db)
        .output()
        .expect("trend");
    let out = String::from_utf8_lossy(&trend.stdout);
    // The three readings may fall into one or two hourly buckets (an hour can turn during the
    // test): check min, max and count over the rows. Columns: time,t_ms,min,max,mean,n,unit.
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let col = |i: usize| -> Vec<f64> {
        rows.iter()
            .map(|r| r[i].parse::<f64>().expect("number"))
            .collect()
    };
    assert!(!rows.is_empty() && rows.len() <= 2, "{out}");
    assert_eq!(col(2).into_iter().fold(f64::MAX, f64::min), 72.0, "{out}");
    assert_eq!(col(3).into_iter().fold(f64::MIN, f64::max), 131.0, "{out}");
    assert_eq!(col(5).iter().sum::<f64>(), 3.0, "{out}");
    assert!(rows.iter().all(|r| r[6] == "/min"), "{out}");
    rec.stops_cleanly();
}
