//! Printouts and exports through a real Mosquitto and the engine (issue 16): MIT-BIH record 100
//! (leads MLII and V5 at 360 Hz) and SpO2 readings published as a bedside monitor would; a
//! high-priority alarm's strip saved automatically once its window has passed, once; the same
//! strip on demand; the bed's data exported as a FHIR Bundle that round-trips through the
//! station's own decoder, every reading and sample equal to what the history holds; a
//! de-identified export without the patient's identity.

use crate::support;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{mosquitto_with, subscribed, until};
use vigil_contract::interop::fhir;
use vigil_core::alarms::{Direction, Limit, Priority};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Permission, Role};
use vigil_core::codes::Vital;
use vigil_core::engine::{AlarmOptions, Clock, Engine, ManualClock, SecurityOptions};
use vigil_core::patients::{self, NewPatient};
use vigil_core::report::export::{self, ExportFormat, ExportRequest};
use vigil_core::report::{self, Format, Reason, ReportSettings, StripEnd, StripRequest};
use vigil_core::store;
use vigil_core::telemetry::{utc_from_ms, BedId, Topic, VitalsPayload, WavePayload};

const PW: &str = "correct horse battery";
/// Seconds of the recording published.
const SECONDS: i64 = 12;

/// MIT-BIH 100's first `SECONDS` s: (MLII, V5) in units of 0.005 mV (its ADC step, 200/mV).
fn record_100() -> (Vec<i32>, Vec<i32>) {
    let dir = support::data_dir("the strip and export tests replay MIT-BIH record 100");
    let text = std::fs::read_to_string(
        dir.join("waveforms/mitdb100/mitdb100_MLII_V5_360hz_first300s.csv"),
    )
    .expect("record 100");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cells: Vec<f64> = line
            .split(',')
            .map(|c| c.trim().parse().expect("number"))
            .collect();
        a.push((cells[1] / 0.005).round() as i32);
        b.push((cells[2] / 0.005).round() as i32);
        if a.len() as i64 == SECONDS * 360 {
            break;
        }
    }
    (a, b)
}

fn chunk(channel: &str, seq: u64, t0_ms: i64, data: &[i32]) -> Vec<u8> {
    serde_json::to_vec(&WavePayload {
        v: 1,
        device: "mon-01".into(),
        channel: channel.into(),
        unit: "mV".into(),
        t0: utc_from_ms(t0_ms),
        rate: 360.0,
        seq,
        origin: 0.0,
        factor: 0.005,
        data: data.to_vec(),
    })
    .expect("json")
}

fn count(db: &Path, sql: &str) -> i64 {
    let c = store::open_read_only(db).expect("open");
    c.query_row(sql, [], |r| r.get(0)).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strips_are_saved_once_and_exports_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("vigil.db");
    let strips = dir.path().join("strips");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    // A round second, now: the engine's clock is set by hand from here on.
    let t0 = store::now_ms() / 1000 * 1000;
    let clock = Arc::new(ManualClock::new(t0));
    let bed = BedId::new("4W", "01");

    // The ward's users and a patient in the bed (identity to print, and to keep out of the
    // de-identified export).
    let mut svc = AuthService::open(&db, AuthConfig::default()).expect("auth");
    let it = Actor::Local("cli:test".into());
    svc.create_user(&it, "carl", Role::ChargeNurse, PW, t0 - 60_000)
        .expect("carl");
    svc.create_user(&it, "nina", Role::Nurse, PW, t0 - 60_000)
        .expect("nina");
    let carl = svc.login("carl", PW, t0 - 50_000).expect("login");
    let adt = svc
        .authorize(Some(&carl), Permission::AdmitDischargeTransfer, t0 - 50_000)
        .expect("adt");
    let patient = NewPatient {
        mrn: "MRN-100",
        name: "Moira Bitt",
        dob: "1957-03-04",
        sex: "F",
        pacemaker: false,
    };
    patients::admit(svc.connection(), &adt, &bed, &patient, t0 - 50_000).expect("admit");

    let mut cfg = support::config(port, "station-reports", &db, Default::default());
    cfg.limits = vec![Limit::new(
        Vital::SpO2,
        Direction::Low,
        90.0,
        Priority::High,
    )];
    let settings = ReportSettings {
        strip_before_ms: 4_000,
        strip_end: StripEnd::After(3_000),
        strip_dir: Some(strips.clone()),
        ..ReportSettings::default()
    };
    let engine = Engine::start_clocked(
        cfg,
        AlarmOptions {
            strips: Some(settings.clone()),
            ..AlarmOptions::default()
        },
        SecurityOptions::default(),
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .expect("engine");
    subscribed(&engine).await;

    let mut opts = MqttOptions::new("mon-01", "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut ev) = AsyncClient::new(opts, 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let (mlii, v5) = record_100();
    for s in 0..SECONDS {
        let t = t0 + s * 1000;
        clock.set(t + 1000);
        let part = |d: &[i32]| d[(s * 360) as usize..((s + 1) * 360) as usize].to_vec();
        for (channel, data) in [("ECG_II", part(&mlii)), ("ECG_V5", part(&v5))] {
            client
                .publish(
                    Topic::wave(&bed, "mon-01", channel),
                    QoS::AtLeastOnce,
                    false,
                    chunk(channel, s as u64, t, &data),
                )
                .await
                .expect("publish");
        }
        // SpO2 falls below 90 % at 6 s: a high-priority alarm.
        let spo2 = if s < 6 { 97.0 } else { 84.0 };
        let v = VitalsPayload::single(
            "mon-01",
            s as u64 + 1,
            utc_from_ms(t + 500),
            Vital::SpO2,
            spo2,
        );
        client
            .publish(
                Topic::vitals(&bed, "mon-01"),
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&v).expect("json"),
            )
            .await
            .expect("publish");
        // Each second reaches the history before the clock moves on.
        let want = 2 * (s + 1);
        until("chunks stored", Duration::from_secs(10), || {
            let n = count(&db, "SELECT COUNT(*) FROM wave_chunks");
            (n >= want, n)
        })
        .await;
    }
    until("SpO2 alarm raised", Duration::from_secs(10), || {
        let n = count(
            &db,
            "SELECT COUNT(*) FROM alarm_events WHERE code = 'SPO2_LOW' AND kind = 'raise'",
        );
        (n == 1, n)
    })
    .await;
    let (alarm_id, onset): (String, i64) = store::open_read_only(&db)
        .expect("open")
        .query_row(
            "SELECT alarm_id, t_ms FROM alarm_events WHERE code = 'SPO2_LOW' AND kind = 'raise'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("raise");
    assert!(
        onset >= t0 + 6_000 && onset < t0 + 9_000,
        "onset {onset} vs t0 {t0}"
    );

    // Not before the window has passed (onset + 3 s, and the settling time after it).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM alarm_strips"),
        0,
        "saved too early"
    );
    clock.set(onset + 3_000 + report::auto::SETTLE_MS + 1);
    until("strip saved", Duration::from_secs(15), || {
        let n = count(
            &db,
            "SELECT COUNT(*) FROM alarm_strips WHERE file IS NOT NULL",
        );
        (n == 1, n)
    })
    .await;
    let file: String = store::open_read_only(&db)
        .expect("open")
        .query_row("SELECT file FROM alarm_strips", [], |r| r.get(0))
        .expect("file");
    let path = strips.join(&file);
    let pdf = std::fs::read(&path).expect("the strip file");
    assert!(pdf.starts_with(b"%PDF"), "{file}");
    assert!(
        file.starts_with("strip_4W_01_") && file.ends_with("_SPO2_LOW.pdf"),
        "{file}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "strip file mode");
    }
    // Once: later passes (and a restart's) find it recorded.
    clock.advance(10_000);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM alarm_strips"), 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'report_print'
             AND actor = 'station (automatic)' AND target = '4W/01'"
        ),
        1
    );
    engine.shutdown().await;
    let now = clock.now_ms();

    // On demand, by a nurse: the same strip as a PNG, both leads, identity on it.
    let nina = svc.login("nina", PW, now).expect("login");
    let print = svc
        .authorize(Some(&nina), Permission::PrintReport, now)
        .expect("print");
    let req = StripRequest {
        bed: bed.clone(),
        alarm_id: alarm_id.clone(),
        onset_ms: onset,
        format: Format::Png,
        reason: Reason::parse("chart copy").expect("reason"),
        preview: false,
    };
    let r = report::alarm_strip(svc.connection(), &print, &req, &settings, now).expect("strip");
    assert_eq!(r.document.pages, 1);
    assert!(r.document.bytes.starts_with(b"\x89PNG"));
    // A nurse's proof exports de-identified data only.
    let deid = svc
        .authorize(Some(&nina), Permission::ExportDeidentified, now)
        .expect("export");
    let all = |identified, waveforms, format| ExportRequest {
        bed: bed.clone(),
        from_ms: t0 - 1_000,
        to_ms: t0 + SECONDS * 1000,
        format,
        identified,
        waveforms,
        reason: Reason::parse("study 7, ethics ref. 2026/12").expect("reason"),
    };
    let mut out = Vec::new();
    let err = export::export(
        svc.connection(),
        &deid,
        &all(true, false, ExportFormat::Fhir),
        &mut out,
        None,
        now,
    )
    .expect_err("identified with a de-identified proof");
    assert!(err.to_string().contains("export_identified"), "{err}");
    let mut csv = Vec::new();
    let mut csv_waves = Vec::new();
    let s = export::export(
        svc.connection(),
        &deid,
        &all(false, true, ExportFormat::Csv),
        &mut csv,
        Some(&mut csv_waves),
        now,
    )
    .expect("csv");
    assert_eq!(s.readings, SECONDS as u64);
    assert_eq!(s.samples, 2 * SECONDS as u64 * 360);
    for text in [
        String::from_utf8_lossy(&csv),
        String::from_utf8_lossy(&csv_waves),
    ] {
        for secret in ["Moira", "Bitt", "MRN-100", "1957-03-04", "mon-01", "4W/01"] {
            assert!(!text.contains(secret), "{secret} in a de-identified export");
        }
    }

    // Identified FHIR, by the charge nurse: every Observation decodes back to the history.
    let ident = svc
        .authorize(Some(&carl), Permission::ExportIdentified, now)
        .expect("identified");
    let mut json = Vec::new();
    let s = export::export(
        svc.connection(),
        &ident,
        &all(true, true, ExportFormat::Fhir),
        &mut json,
        None,
        now,
    )
    .expect("fhir");
    let bundle: serde_json::Value = serde_json::from_slice(&json).expect("a JSON bundle");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    assert_eq!(bundle["id"], s.export_id.as_str());
    let text = String::from_utf8_lossy(&json);
    assert!(text.contains("Moira Bitt") && text.contains("MRN-100"));
    let (mut readings, mut ii, mut v5_back) = (Vec::new(), Vec::new(), Vec::new());
    for e in bundle["entry"].as_array().expect("entries") {
        if e["resource"]["resourceType"] != "Observation" {
            continue;
        }
        let b = fhir::decode(&serde_json::to_vec(&e["resource"]).expect("json")).expect("decodes");
        assert_eq!(b.device.as_deref(), Some("mon-01"));
        readings.extend(b.readings);
        for w in b.waves {
            let values = w.data.iter().map(|d| w.origin + w.factor * f64::from(*d));
            match w.channel.name {
                "ECG_II" => ii.extend(values.map(|v| (v / 0.005).round() as i32)),
                "ECG_V5" => v5_back.extend(values.map(|v| (v / 0.005).round() as i32)),
                other => panic!("unexpected channel {other}"),
            }
            assert_eq!(w.rate, 360.0);
        }
    }
    assert_eq!(readings.len(), SECONDS as usize);
    for (i, r) in readings.iter().enumerate() {
        assert_eq!(r.vital, Vital::SpO2);
        assert_eq!(r.t_ms, t0 + i as i64 * 1000 + 500);
        assert_eq!(r.value, Some(if i < 6 { 97.0 } else { 84.0 }));
    }
    assert_eq!(ii, mlii, "every ECG II sample back");
    assert_eq!(v5_back, v5, "every V5 sample back");
    // Both exports and both prints on record, with who and why.
    let c = svc.connection();
    assert_eq!(
        count_in(c, "data_export", "nina"),
        1,
        "the refused one is not on record"
    );
    assert_eq!(count_in(c, "data_export", "carl"), 1);
    assert_eq!(count_in(c, "report_print", "nina"), 1);
}

/// Audit entries of `action` by `actor` (a refused attempt writes none: the proof is checked
/// first).
fn count_in(c: &rusqlite::Connection, action: &str, actor: &str) -> i64 {
    c.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND actor = ?2",
        [action, actor],
        |r| r.get(0),
    )
    .expect("count")
}
