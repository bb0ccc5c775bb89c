//! Interop decoders against real data (`shared/data`): the official FHIR R4 vital-signs examples,
//! the IHE PCD-01 / Continua WAN HL7 v2 messages, an MLLP loopback, and no-panic fuzzing.
//!
//! The data folder is required: these tests fail (they do not skip) when it is missing.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use support::{files, read};
use vigil_core::codes::Vital;
use vigil_core::interop::{fhir, hl7v2, mllp, vital_from_loinc, vital_from_mdc};
use vigil_core::telemetry::{Batch, DecodeError, ObsStatus, Reading};

fn data_dir() -> PathBuf {
    support::data_dir("these tests need it")
}

/// CSV rows as maps (header → value); `#` lines are metadata. Handles quoted fields.
fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = String::from_utf8(read(path)).expect("CSV is UTF-8");
    let mut rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(split_csv);
    let header = rows.next().expect("CSV header");
    rows.map(|r| {
        assert_eq!(r.len(), header.len(), "CSV row {r:?}");
        header.iter().cloned().zip(r).collect()
    })
    .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn ms(rfc3339_or_date: &str) -> i64 {
    fhir::parse_datetime(rfc3339_or_date).unwrap_or_else(|e| panic!("{rfc3339_or_date}: {e}"))
}

fn fhir_status(s: &str) -> ObsStatus {
    match s {
        "final" => ObsStatus::Final,
        "cancelled" => ObsStatus::Cancelled,
        "entered-in-error" => ObsStatus::EnteredInError,
        other => panic!("status {other} not in the examples"),
    }
}

// ---------------------------------------------------------------------------------------------
// FHIR

fn fhir_batches() -> BTreeMap<String, Result<Batch, DecodeError>> {
    let dir = data_dir().join("fhir_r4/official_examples");
    files(&dir)
        .into_iter()
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().to_string();
            (name, fhir::decode(&read(&p)))
        })
        .collect()
}

fn only(b: &Batch, vital: Vital) -> &Reading {
    let found: Vec<&Reading> = b.readings.iter().filter(|r| r.vital == vital).collect();
    assert_eq!(found.len(), 1, "one {vital:?} in {b:?}");
    found[0]
}

#[test]
fn fhir_examples_match_expected_values() {
    let dir = data_dir();
    let batches = fhir_batches();
    let rows = csv(&dir.join("fhir_r4/fhir_r4_expected_values.csv"));
    assert!(rows.len() >= 18, "{} rows", rows.len());
    let mut checked_vitals = 0;
    let mut checked_waves = 0;
    for row in &rows {
        let file = &row["file"];
        let b = batches[file]
            .as_ref()
            .unwrap_or_else(|e| panic!("{file} did not decode: {e}"));
        let status = fhir_status(&row["status"]);
        // The vital: from the component's LOINC code, else from the observation's codings.
        let component = &row["component"];
        let codings = &row["code_codings"];
        let vital = if component.is_empty() {
            codings
                .split(';')
                .filter_map(|c| c.strip_prefix("loinc.org|"))
                .find_map(vital_from_loinc)
        } else {
            component.split('|').next().and_then(vital_from_loinc)
        };
        let t = if row["effective"].starts_with('{') {
            // effectivePeriod: the start is the time.
            let start = row["effective"]
                .split('"')
                .nth(3)
                .expect("period start")
                .to_string();
            Some(ms(&start))
        } else if row["effective"].is_empty() {
            None
        } else {
            Some(ms(&row["effective"]))
        };

        if row["value"].starts_with("SampledData") {
            // e.g. "SampledData n=116 origin=2048 period_ms=10 factor=1.612 ..."
            let kv: BTreeMap<&str, f64> = row["value"]
                .split_whitespace()
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k, v.parse::<f64>().expect("number")))
                .collect();
            let mdc: u32 = component
                .split('|')
                .next()
                .and_then(|c| c.parse().ok())
                .expect("component MDC code");
            let waves: Vec<_> = b.waves.iter().filter(|w| w.channel.mdc == mdc).collect();
            assert_eq!(waves.len(), 1, "{file} {component}");
            let w = waves[0];
            assert_eq!(w.data.len(), kv["n"] as usize, "{component}");
            assert_eq!(w.rate, 1000.0 / kv["period_ms"]);
            assert_eq!(w.origin, kv["origin"]);
            assert_eq!(w.factor, kv["factor"]);
            assert_eq!(Some(w.t0_ms), t);
            checked_waves += 1;
            continue;
        }

        match vital {
            Some(v) => {
                let r = only(b, v);
                assert_eq!(r.status, status, "{file} {v:?}");
                if !row["ucum_code"].is_empty() {
                    assert_eq!(v.unit(), row["ucum_code"], "{file}: stored unit");
                }
                let want =
                    (!row["value"].is_empty()).then(|| row["value"].parse::<f64>().expect("value"));
                assert_eq!(r.value, want, "{file} {v:?}");
                if row["absent_or_other"].starts_with("dataAbsentReason") {
                    assert_eq!(r.value, None, "{file}: absent is None, never 0");
                }
                if let Some(t) = t {
                    assert_eq!(r.t_ms, t, "{file} time");
                }
                checked_vitals += 1;
            }
            None => {
                // Not a vital Vigil models (Glasgow) or a grouping panel: rejected or skipped,
                // never decoded into a reading.
                assert!(b.readings.is_empty(), "{file}: {b:?}");
                assert!(b.waves.is_empty(), "{file}");
                if codings.contains("85353-1") {
                    assert!(b.rejected.is_empty(), "vitals panel is skipped: {b:?}");
                } else {
                    assert_eq!(b.rejected.len(), 1, "{file}: {b:?}");
                }
            }
        }
    }
    assert_eq!(checked_waves, 3);
    assert_eq!(checked_vitals, 13);
    // Device and DeviceMetric are not observations.
    for f in ["device-example.json", "devicemetric-example.json"] {
        let e = batches[f].as_ref().expect_err(f);
        assert_eq!(e.reason(), "invalid_field", "{f}: {e}");
    }
    // Every example file is covered by the CSV or is one of those two.
    for f in batches.keys() {
        assert!(
            rows.iter().any(|r| &r["file"] == f) || f.starts_with("device"),
            "{f} not checked"
        );
    }
}

/// The value of one vital in each official example: (file, vital, value).
#[rustfmt::skip]
const EXPLICIT: [(&str, Vital, Option<f64>); 10] = [
    ("observation-example-heart-rate.json",        Vital::Hr,       Some(44.0)),
    ("observation-example-respiratory-rate.json",  Vital::Rr,       Some(26.0)),
    ("observation-example-satO2.json",             Vital::SpO2,     Some(95.0)),
    ("observation-example-bloodpressure.json",     Vital::NibpSys,  Some(107.0)),
    ("observation-example-bloodpressure.json",     Vital::NibpDia,  Some(60.0)),
    ("observation-example-bloodpressure-dar.json", Vital::NibpSys,  Some(107.0)),
    // The diastolic is missing.
    ("observation-example-bloodpressure-dar.json", Vital::NibpDia,  None),
    ("observation-example-body-temperature.json",  Vital::Temp,     Some(36.5)),
    ("observation-example-mbp.json",               Vital::NibpMean, Some(80.0)),
    ("observation-example-map-sitting.json",       Vital::NibpMean, Some(60.0)),
];

#[test]
fn fhir_examples_explicit_values() {
    let b = fhir_batches();
    let get = |f: &str| b[f].as_ref().unwrap_or_else(|e| panic!("{f}: {e}")).clone();
    for (f, vital, want) in EXPLICIT {
        assert_eq!(only(&get(f), vital).value, want, "{f}: {vital:?}");
    }

    let hr = get("observation-example-heart-rate.json");
    assert_eq!(
        only(&hr, Vital::Hr).t_ms,
        930_873_600_000,
        "1999-07-02 midnight UTC"
    );
    assert!(only(&hr, Vital::Hr).alarmable());
    let spo2 = get("observation-example-satO2.json");
    assert_eq!(only(&spo2, Vital::SpO2).t_ms, ms("2014-12-05T08:30:10Z"));
    assert_eq!(spo2.device.as_deref(), Some("DeviceMetric/example"));

    let bp = get("observation-example-bloodpressure.json");
    assert!(bp.rejected.is_empty(), "{:?}", bp.rejected);

    let dar = get("observation-example-bloodpressure-dar.json");
    assert!(!only(&dar, Vital::NibpDia).alarmable());

    let cancel = get("observation-example-bloodpressure-cancel.json");
    for v in [Vital::NibpSys, Vital::NibpDia] {
        let r = only(&cancel, v);
        assert_eq!(r.status, ObsStatus::Cancelled);
        assert_eq!(r.value, None);
        assert!(!r.alarmable());
    }

    let eie = get("observation-example-f202-temperature.json");
    let r = only(&eie, Vital::Temp);
    assert_eq!(r.status, ObsStatus::EnteredInError);
    assert_eq!(r.value, Some(39.0), "stored as sent");
    assert!(!r.alarmable(), "entered-in-error never alarms");
    assert_eq!(r.t_ms, ms("2013-04-04T12:27:00Z"), "issued is the time");

    let map = get("observation-example-map-sitting.json");
    assert_eq!(only(&map, Vital::NibpMean).t_ms, ms("2018-04-02T09:30:10Z"));

    let ecg = get("observation-example-sample-data.json");
    assert!(ecg.rejected.is_empty(), "{:?}", ecg.rejected);
    let names: Vec<_> = ecg.waves.iter().map(|w| w.channel.name).collect();
    assert_eq!(names, ["ECG_I", "ECG_II", "ECG_III"]);
    for w in &ecg.waves {
        assert_eq!(w.data.len(), 116);
        assert_eq!(w.rate, 100.0);
        assert_eq!(w.t0_ms, ms("2015-02-19T08:30:35Z"));
        assert_eq!(&w.data[..3], [2041, 2043, 2037]);
    }
    assert_eq!(ecg.device, None, "device.display names no device");

    let glasgow = get("observation-example-glasgow.json");
    assert!(glasgow.readings.is_empty());
    assert_eq!(glasgow.rejected.len(), 1);
    assert!(glasgow.rejected[0].to_string().contains("9269-2"));
}

#[test]
fn fhir_bundle_of_the_examples() {
    let dir = data_dir().join("fhir_r4/official_examples");
    let mut entries = Vec::new();
    for f in [
        "observation-example-heart-rate.json",
        "observation-example-bloodpressure.json",
        "observation-example-glasgow.json",
        "device-example.json",
    ] {
        let v: serde_json::Value = serde_json::from_slice(&read(&dir.join(f))).expect("json");
        entries.push(serde_json::json!({ "resource": v }));
    }
    let bundle =
        serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    let b = fhir::decode(&serde_json::to_vec(&bundle).expect("json")).expect("bundle");
    let vitals: Vec<_> = b.readings.iter().map(|r| (r.vital, r.value)).collect();
    assert_eq!(
        vitals,
        [
            (Vital::Hr, Some(44.0)),
            (Vital::NibpSys, Some(107.0)),
            (Vital::NibpDia, Some(60.0))
        ]
    );
    assert_eq!(b.rejected.len(), 1, "Glasgow");
}

// ---------------------------------------------------------------------------------------------
// HL7 v2

fn hl7_files() -> Vec<(String, PathBuf, PathBuf)> {
    let dir = data_dir().join("hl7v2");
    let raw = files(&dir.join("ipf_raw"));
    files(&dir.join("normalized_cr"))
        .into_iter()
        .map(|n| {
            let name = n.file_name().expect("name").to_string_lossy().to_string();
            let stem = name.trim_end_matches(".hl7").to_string();
            let r = raw
                .iter()
                .find(|r| {
                    let rn = r.file_name().expect("name").to_string_lossy().to_string();
                    rn == format!("{stem}.hl7") || rn == format!("{stem}.hl7v2")
                })
                .unwrap_or_else(|| panic!("no raw file for {name}"))
                .clone();
            (name, n, r)
        })
        .collect()
}

fn text(p: &Path) -> String {
    String::from_utf8(read(p)).expect("HL7 files are ASCII")
}

/// OBX-11 as the brief maps it (independent of the implementation's table).
fn obx11(s: &str) -> ObsStatus {
    match s {
        "F" => ObsStatus::Final,
        "C" => ObsStatus::Corrected,
        "P" => ObsStatus::Preliminary,
        "R" => ObsStatus::Unverified,
        "X" => ObsStatus::Cancelled,
        "D" | "W" => ObsStatus::EnteredInError,
        _ => ObsStatus::Unknown,
    }
}

#[test]
fn hl7_messages_match_expected_values() {
    let dir = data_dir();
    let rows = csv(&dir.join("hl7v2/ipf_obx_expected_values.csv"));
    let all = hl7_files();
    assert_eq!(all.len(), 12);
    let mut batches = BTreeMap::new();
    for (name, norm, raw) in &all {
        let a = hl7v2::decode(&text(norm));
        let b = hl7v2::decode(&text(raw));
        assert_eq!(a, b, "{name}: CRLF and CR files decode the same");
        batches.insert(name.clone(), a);
    }
    let mut checked = 0;
    for (name, batch) in &batches {
        let mine: Vec<_> = rows.iter().filter(|r| &r["file"] == name).collect();
        let Ok(batch) = batch else {
            assert!(
                mine.is_empty(),
                "{name} has OBX but did not decode: {batch:?}"
            );
            continue;
        };
        // Vitals Vigil knows, in message order, are the readings in order.
        let expected: Vec<_> = mine
            .iter()
            .filter(|r| r["value_type"] == "NM")
            .filter_map(|r| {
                let code: u32 = r["obs_code"].parse().ok()?;
                vital_from_mdc(code).map(|v| (v, *r))
            })
            .collect();
        assert_eq!(batch.readings.len(), expected.len(), "{name}: {batch:?}");
        for (r, (v, row)) in batch.readings.iter().zip(&expected) {
            assert_eq!(r.vital, *v, "{name}");
            let status = obx11(&row["result_status_obx11"]);
            assert_eq!(r.status, status, "{name} {v:?}");
            let raw: f64 = row["value"].parse().expect("NM value");
            let want = if row["result_status_obx11"] == "X"
                || (raw == 0.0 && hl7v2::ZERO_IS_NO_READING.contains(v))
            {
                None
            } else if row["unit_code"] == "266560" {
                Some(((raw - 32.0) * 5.0 / 9.0 * 1e6).round() / 1e6)
            } else {
                Some(raw)
            };
            assert_eq!(r.value, want, "{name} {v:?}");
            if !row["obs_time_obx14"].is_empty() {
                assert_eq!(
                    Ok(r.t_ms),
                    hl7v2::parse_ts(&row["obs_time_obx14"], None),
                    "{name} {v:?} time"
                );
            }
            checked += 1;
        }
        // Other numeric OBX: rejected as unknown codes unless descriptive (device profiles).
        for row in mine.iter().filter(|r| r["value_type"] == "NM") {
            let code: u32 = row["obs_code"].parse().expect("code");
            if vital_from_mdc(code).is_some() || matches!(code >> 16, 1 | 3 | 8) {
                continue;
            }
            assert!(
                batch.rejected.contains(&DecodeError::UnknownCode(code)),
                "{name}: {code} should be rejected as unknown: {:?}",
                batch.rejected
            );
        }
    }
    // 12 monitor vitals, the glucose of the valid and of the invalid glucose message, and the
    // two weights of the scale message.
    assert_eq!(checked, 16, "every vital OBX in the data checked");

    let get = |n: &str| batches[n].clone().unwrap_or_else(|e| panic!("{n}: {e}"));
    let thermo = get("valid-thermometer-continua-wan.hl7");
    assert_eq!(thermo.readings[0].vital, Vital::Temp);
    assert_eq!(thermo.readings[0].value, Some(37.0), "98.6 °F is 37.0 °C");
    assert_eq!(
        thermo.readings[0].status,
        ObsStatus::Unverified,
        "R = not verified, live device data"
    );
    assert!(thermo.readings[0].alarmable(), "live device data alarms");
    assert_eq!(thermo.device.as_deref(), Some("0123456789ABCDEF"));

    let bp = get("valid-pcd01-request.hl7");
    let v: Vec<_> = bp.readings.iter().map(|r| (r.vital, r.value)).collect();
    assert_eq!(
        v,
        [
            (Vital::NibpSys, Some(120.0)),
            (Vital::NibpDia, Some(80.0)),
            (Vital::NibpMean, Some(100.0))
        ]
    );
    // Time inherited from the containing OBX 1.0.1 (20090813095715+0500).
    assert!(bp.readings.iter().all(|r| r.t_ms == 1_250_139_435_000));
    assert!(bp.rejected.is_empty(), "{:?}", bp.rejected);

    let max = get("valid-pcd01-MaximumRequest2.hl7");
    let s: Vec<_> = max
        .readings
        .iter()
        .map(|r| (r.vital, r.value, r.status))
        .collect();
    assert_eq!(
        s,
        [
            (Vital::NibpSys, Some(140.0), ObsStatus::Corrected),
            (Vital::NibpDia, Some(70.0), ObsStatus::EnteredInError),
            (Vital::NibpMean, Some(100.0), ObsStatus::Final),
        ]
    );
    assert!(max.readings[0].alarmable() && !max.readings[1].alarmable());
    assert_eq!(max.location.as_deref(), Some("B1"));
    assert_eq!(max.device.as_deref(), Some("0123456789ABCDEF"));

    let gw = get("valid-pcd01-request2.hl7");
    assert_eq!(gw.location.as_deref(), Some("3 WEST ICU/3001/1"));
    assert_eq!(
        gw.device.as_deref(),
        Some("080019FFFF4F6AC0"),
        "MSH-3 when no OBX-18"
    );
    assert_eq!(gw.readings.len(), 1);
    assert_eq!(gw.readings[0].value, Some(60.0));
    assert_eq!(
        gw.readings[0].t_ms, 1_229_006_700_000,
        "OBR-7 without offset: UTC"
    );

    let ox = get("valid-oximeter-continua-wan.hl7");
    assert_eq!(ox.readings[0].value, Some(80.5));
    assert!(ox.waves.is_empty(), "pleth has no derivable sample rate");
    assert!(ox
        .rejected
        .iter()
        .any(|e| e.reason() == "invalid_field" && e.to_string().contains("no sample rate")));

    // The invalid glucose message: its three OBX with a value but no value type are refused
    // and said so, as before; its glucose OBX is valid and, now that Vigil knows glucose, kept
    // (refusing it would drop a 37.5 mg/dL hypoglycaemia for its neighbours' faults).
    let bad = get("invalid-glucose-continua-wan.hl7");
    assert!(bad.waves.is_empty());
    let got: Vec<_> = bad.readings.iter().map(|r| (r.vital, r.value)).collect();
    assert_eq!(got, [(Vital::Glucose, Some(37.5))]);
    assert!(
        bad.rejected
            .iter()
            .filter(|e| e.to_string().contains("without a value type"))
            .count()
            == 3,
        "{:?}",
        bad.rejected
    );

    // Acknowledgements are not observation messages, but read as ACKs.
    for (n, code, err) in [
        ("valid-pcd01-response.hl7", "AA", None),
        ("pcd01-response-invalid.hl7", "AA", Some("Message Accepted")),
        (
            "valid-pcd01-response2.hl7",
            "CE",
            Some("Missing required OBR segment"),
        ),
    ] {
        let e = batches[n].as_ref().expect_err(n);
        assert!(e.to_string().contains("not an ORU^R01"), "{n}: {e}");
        let p = all.iter().find(|f| f.0 == n).expect("file");
        let ack = hl7v2::parse_ack(&text(&p.1)).expect("ack");
        assert_eq!(ack.code, code);
        assert_eq!(ack.error.as_deref(), err);
    }
}

/// The home devices of issue 15, from the original (CRLF) Continua WAN files: the glucose
/// meter's and the scale's readings with their value, unit, status and device time.
#[test]
fn continua_home_devices_give_weight_and_glucose() {
    let dir = data_dir().join("hl7v2/ipf_raw");
    let dec = |n: &str| hl7v2::decode(&text(&dir.join(n))).unwrap_or_else(|e| panic!("{n}: {e}"));

    let glu = dec("valid-glucose-continua-wan.hl7v2");
    let got: Vec<_> = glu
        .readings
        .iter()
        .map(|r| (r.vital, r.value, r.status, r.t_ms))
        .collect();
    assert_eq!(
        got,
        [(
            Vital::Glucose,
            Some(37.5),
            ObsStatus::Unverified,
            ms("2009-07-15T07:07:07Z")
        )],
        "OBX 2: 37.5 MDC_DIM_MILLI_G_PER_DL at its OBX-14"
    );
    assert_eq!(Vital::Glucose.unit(), "mg/dL", "stored as sent");
    assert!(glu.readings[0].alarmable(), "live device data (R) alarms");
    assert_eq!(glu.device.as_deref(), Some("0123456789ABCDEF"));
    // The meter's context (exercise, medication, carbohydrates) is no vital: refused as unknown
    // codes, as before.
    for code in [8_417_760, 8_417_800, 8_417_768] {
        assert!(
            glu.rejected.contains(&DecodeError::UnknownCode(code)),
            "{code}"
        );
    }

    let scale = dec("valid-scale-continua-wan.hl7v2");
    let got: Vec<_> = scale
        .readings
        .iter()
        .map(|r| (r.vital, r.value, r.status, r.t_ms))
        .collect();
    let weight = (
        Vital::Weight,
        Some(80.0),
        ObsStatus::Unverified,
        ms("2009-08-15T07:07:07Z"),
    );
    assert_eq!(got, [weight, weight], "OBX 4 and 10: 80 MDC_DIM_KILO_G");
    assert_eq!(Vital::Weight.unit(), "kg");
    assert_eq!(scale.device.as_deref(), Some("0123456789ABCDEF"));
    // Height and BMI are not vitals here.
    assert!(scale.rejected.contains(&DecodeError::UnknownCode(188_740)));
    assert!(scale.rejected.contains(&DecodeError::UnknownCode(188_752)));

    // The same scale in pounds: converted to kg.
    let lb = text(&dir.join("valid-scale-continua-wan.hl7v2")).replace(
        "|80|263875^MDC_DIM_KILO_G^MDC|",
        "|176.4|263904^MDC_DIM_LB^MDC|",
    );
    let lb = hl7v2::decode(&lb).expect("pounds");
    let got: Vec<_> = lb.readings.iter().map(|r| (r.vital, r.value)).collect();
    assert_eq!(got, [(Vital::Weight, Some(80.013694)); 2]);
    // The same meter in mmol/L: converted to mg/dL.
    let mmol = text(&dir.join("valid-glucose-continua-wan.hl7v2")).replace(
        "|37.5|264274^MDC_DIM_MILLI_G_PER_DL^MDC|",
        "|2.1|266866^MDC_DIM_MILLI_MOLE_PER_L^MDC|",
    );
    let mmol = hl7v2::decode(&mmol).expect("mmol/L");
    let got: Vec<_> = mmol.readings.iter().map(|r| (r.vital, r.value)).collect();
    assert_eq!(got, [(Vital::Glucose, Some(37.8336))]);
}

#[test]
fn hl7_truncations_and_mutations_never_panic() {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for (name, norm, raw) in hl7_files() {
        for p in [norm, raw] {
            let t = text(&p);
            // Every prefix: truncated messages give an error or fewer observations.
            for cut in 0..t.len() {
                if let Ok(b) = hl7v2::decode(&t[..cut]) {
                    assert!(b.readings.len() <= 5, "{name}");
                }
            }
            for _ in 0..64 {
                let mut bytes = t.clone().into_bytes();
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = match rng.random_range(0..4) {
                        0 => b'|',
                        1 => b'^',
                        2 => b'\\',
                        _ => rng.random(),
                    };
                }
                let s = String::from_utf8_lossy(&bytes);
                let _ = hl7v2::decode(&s);
                let _ = hl7v2::header(&s);
                let _ = hl7v2::parse_ack(&s);
            }
        }
    }
}

#[test]
fn hostile_hl7_inputs() {
    let base = text(&data_dir().join("hl7v2/normalized_cr/valid-pcd01-request2.hl7"));
    for (what, m) in [
        ("empty", String::new()),
        (
            "binary",
            String::from_utf8_lossy(&[0, 159, 146, 150, 11, 28, 13]).to_string(),
        ),
        ("huge", format!("{base}{}", "NTE|1||x\r".repeat(40_000))),
        (
            "nested separators",
            format!("MSH|^~\\&|{}", "^~&\\".repeat(10_000)),
        ),
    ] {
        let e = hl7v2::decode(&m).expect_err(what);
        assert!(!e.reason().is_empty(), "{what}");
    }
    for bad in ["NaN", "Infinity", "-inf", "1e3", "0x3C", "6O"] {
        let m = base.replacen("|60|/min", &format!("|{bad}|/min"), 1);
        let b = hl7v2::decode(&m).expect("message still decodes");
        assert!(b.readings.is_empty(), "{bad} must not become a reading");
        assert!(b
            .rejected
            .iter()
            .any(|e| e.to_string().contains("not an HL7 NM number")));
    }
    for absurd in ["00000000", "99991231235959", "20081399", "2008121114450x"] {
        let m = base.replacen("|||20081211144500||ORU", &format!("|||{absurd}||ORU"), 1);
        assert_ne!(m, base);
        let e = hl7v2::decode(&m).expect_err(absurd);
        assert!(e.to_string().contains("MSH-7"), "{absurd}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzzing: arbitrary bytes into all three decoders, bounded cases.

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = SmallRng::seed_from_u64(42);
    let alphabet =
        b"{}[]\":,0123456789.eE-+ \r\n|^~\\&MSHOBXNMAEresourceTypeObservation\x0b\x1c\x0d";
    let mut decoder = mllp::FrameDecoder::new(4096);
    for case in 0..256 {
        let len = rng.random_range(0..2048);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if case % 2 == 0 {
                    rng.random()
                } else {
                    alphabet[rng.random_range(0..alphabet.len())]
                }
            })
            .collect();
        let _ = fhir::decode(&bytes);
        let s = String::from_utf8_lossy(&bytes);
        let _ = hl7v2::decode(&s);
        let _ = hl7v2::decode(&format!("MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\r{s}"));
        for ev in decoder.push(&bytes) {
            if let mllp::FrameEvent::Frame(f) = ev {
                assert!(f.len() <= 4096);
                assert!(!f.contains(&mllp::START_BLOCK) && !f.contains(&mllp::END_BLOCK));
            }
        }
        assert!(decoder.buffered() <= 4096);
    }
    // Mutated FHIR examples.
    for p in files(&data_dir().join("fhir_r4/official_examples")) {
        let orig = read(&p);
        for _ in 0..32 {
            let mut b = orig.clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..b.len());
                b[i] = alphabet[rng.random_range(0..alphabet.len())];
            }
            if let Ok(batch) = fhir::decode(&b) {
                for r in &batch.readings {
                    if let Some(v) = r.value {
                        let (lo, hi) = r.vital.info().plausible;
                        assert!((lo..=hi).contains(&v), "{r:?}");
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MLLP loopback

#[tokio::test]
async fn mllp_loopback_aa_ar_ae() {
    let msg = text(&data_dir().join("hl7v2/normalized_cr/valid-pcd01-request.hl7"));
    let gw = text(&data_dir().join("hl7v2/ipf_raw/valid-pcd01-request2.hl7v2"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, mut rx) = mpsc::channel::<mllp::MllpMessage>(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(mllp::serve(listener, tx, stop_rx));
    // The engine: accepts batches with readings from the BP cuff, refuses the gateway's device.
    let engine = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(m) = rx.recv().await {
            let answer = match &m.batch {
                Ok(b) if b.device.as_deref() == Some("080019FFFF4F6AC0") => Err(mllp::Refused),
                Ok(_) => Ok(()),
                Err(_) => Err(mllp::Refused),
            };
            seen.push(
                m.batch
                    .as_ref()
                    .map(|b| b.readings.len())
                    .map_err(|e| e.reason()),
            );
            let _ = m.reply.send(answer);
        }
        seen
    });
    let wait = Duration::from_secs(10);
    let mut c = TcpStream::connect(addr).await.expect("connect");

    let reply = mllp::exchange(&mut c, &msg, wait).await.expect("reply");
    let ack = hl7v2::parse_ack(&reply).expect("ack");
    assert_eq!(
        (ack.code.as_str(), ack.control_id.as_str()),
        ("AA", "MSGID1234")
    );
    let h = hl7v2::parse(&reply).expect("parse").header();
    assert_eq!(
        h.receiving_application,
        ["AcmeInc", "ACDE48234567ABCD", "EUI-64"]
    );
    assert_eq!(h.message_type, "ACK");
    assert_eq!(h.version, "2.6");
    assert!(reply.split('\r').all(|s| !s.starts_with("ERR")));

    let reply = mllp::exchange(&mut c, "\u{1}\u{2}not HL7 at all", wait)
        .await
        .expect("reply");
    let ack = hl7v2::parse_ack(&reply).expect("ack");
    assert_eq!(ack.code, "AR");
    assert!(ack.error.unwrap_or_default().contains("MSH"));

    let reply = mllp::exchange(&mut c, &gw, wait).await.expect("reply");
    let ack = hl7v2::parse_ack(&reply).expect("ack");
    assert_eq!(ack.code, "AE");
    assert_eq!(ack.control_id, "12d15a9:11df9e61347:-7fee:30456965");
    assert_eq!(ack.error.as_deref(), Some(hl7v2::REFUSAL_TEXT));

    // Two messages in one write, the second split over two writes with garbage before it.
    use tokio::io::AsyncWriteExt;
    let mut wire = mllp::frame(msg.as_bytes());
    wire.extend(b"\r\nnoise");
    let second = mllp::frame(msg.replace("MSGID1234", "MSGID5678").as_bytes());
    let (a, b) = second.split_at(second.len() / 2);
    wire.extend(a);
    c.write_all(&wire).await.expect("write");
    let r1 = mllp::read_reply(&mut c, wait).await.expect("r1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(b).await.expect("write rest");
    let r2 = mllp::read_reply(&mut c, wait).await.expect("r2");
    assert_eq!(hl7v2::parse_ack(&r1).expect("ack").control_id, "MSGID1234");
    assert_eq!(hl7v2::parse_ack(&r2).expect("ack").control_id, "MSGID5678");

    // An ACK sent as a message is not acknowledged; the connection stays usable.
    let ack_in = text(&data_dir().join("hl7v2/normalized_cr/valid-pcd01-response.hl7"));
    c.write_all(&mllp::frame(ack_in.as_bytes()))
        .await
        .expect("write");
    let reply = mllp::exchange(&mut c, &msg, wait)
        .await
        .expect("reply after ACK");
    assert_eq!(hl7v2::parse_ack(&reply).expect("ack").code, "AA");

    drop(c);
    stop_tx.send(true).expect("stop");
    tokio::time::timeout(wait, server)
        .await
        .expect("server stops")
        .expect("no panic");
    let seen = engine.await.expect("engine");
    assert_eq!(
        seen,
        vec![
            Ok(3),
            Err("invalid_field"),
            Ok(1),
            Ok(3),
            Ok(3),
            Err("invalid_field"),
            Ok(3)
        ]
    );
}
