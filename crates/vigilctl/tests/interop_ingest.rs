//! Interoperability messages through the running engine: FHIR R4 Observations published on a
//! device's MQTT topic, and HL7 v2 (IHE PCD-01 / Continua) over the MLLP listener with ACKs.
//! Values land in the store with their status; cancelled and entered-in-error results never
//! alarm; unregistered senders are refused (AE) and counted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::net::TcpStream;
use vigil_core::interop::{hl7v2, mllp};
use vigil_core::store;

mod support;
use support::{find_program, free_port, mosquitto, record_with, wait_for_summary, VIGILCTL};

fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    assert!(p.exists(), "test data {} is missing", p.display());
    p
}

fn device_add(db: &Path, device: &str, bed: &str) {
    let st = Command::new(VIGILCTL)
        .args(["device", "add", device, "--bed", bed, "--db"])
        .arg(db)
        .status()
        .expect("device add");
    assert!(st.success());
}

fn publish(port: u16, topic: &str, file: &Path) {
    let st = Command::new(find_program("mosquitto_pub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-f",
        ])
        .arg(file)
        .status()
        .expect("mosquitto_pub");
    assert!(st.success());
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
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
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
    assert!(
        info.error.is_some_and(|e| e.contains("registry")),
        "reason given"
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
        .map(|a| (a.bed_key.as_str(), a.code.as_str()))
        .collect();
    assert_eq!(raised, vec![("4W/03", "HR_LOW")], "{:?}", s.alarms);
    assert!(rec
        .terminate(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}
