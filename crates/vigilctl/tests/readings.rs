//! Attacks on alarms through the readings themselves, each performed against a real Mosquitto
//! and the built `vigilctl record` (issue 11, item 3): a normal reading stamped an hour ago
//! must not resolve an active alarm; a replayed message (the same, or edited) must not raise
//! one again and is refused and reported; a device that restarts its counter keeps alarming.
//! See docs/telemetry.md ("Sequence numbers, late readings and replays").

use std::path::Path;
use std::time::{Duration, Instant};

use vigil_core::codes::Vital;
use vigil_core::query::AlarmRow;
use vigil_core::telemetry::{BedId, Topic};

use crate::support;
use support::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    // Whole milliseconds, as stored.
    chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now")
}

fn hr_alarms(db: &Path, bed: &str) -> Vec<AlarmRow> {
    summary(db)
        .alarms
        .into_iter()
        .filter(|a| a.bed.key() == bed && a.code == "HR_HIGH")
        .collect()
}

fn kinds(alarms: &[AlarmRow]) -> Vec<String> {
    alarms.iter().map(|a| a.kind.clone()).collect()
}

fn hr_stored(db: &Path, bed: &str) -> u64 {
    summary(db)
        .readings
        .get(&(bed.to_string(), "HR".to_string()))
        .copied()
        .unwrap_or(0)
}

/// Security events of `kind` stored by the station: (device, count).
fn security_events(db: &Path, kind: &str) -> Vec<(String, i64)> {
    let Ok(c) = vigil_core::store::open_read_only(db) else {
        return Vec::new();
    };
    let Ok(mut q) = c.prepare("SELECT device, count FROM security_events WHERE kind = ?1") else {
        return Vec::new();
    };
    q.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn stale_readings_and_replays_do_not_move_alarms() {
    let mut w = Recording::start("readings-station");
    let (db, c) = (w.db.clone(), Publisher::new(w.port, "mon-rd"));
    let bed = BedId::new("rd", "01");
    let key = bed.key();
    let topic = Topic::vitals(&bed, "mon-rd");
    let publish = |payload: Vec<u8>| c.send(&topic, payload);

    // HR 150 now: HR HIGH (medium, no delay, not latching).
    let original = hr_payload("mon-rd", 1, now(), 150.0);
    publish(original.clone());
    wait_until("HR HIGH raised", Duration::from_secs(20), || {
        kinds(&hr_alarms(&db, &key)) == ["raise"]
    });

    // Attack 1: a normal HR stamped an hour ago (new sequence number). Stored as history, it
    // must not resolve the alarm.
    publish(hr_payload(
        "mon-rd",
        2,
        now() - chrono::Duration::hours(1),
        70.0,
    ));
    wait_until("the old reading stored", Duration::from_secs(20), || {
        hr_stored(&db, &key) == 2
    });
    assert_eq!(
        kinds(&hr_alarms(&db, &key)),
        ["raise"],
        "an hour-old reading resolved the alarm"
    );

    // A normal reading taken now resolves it.
    let t3 = now();
    publish(hr_payload("mon-rd", 3, t3, 70.0));
    wait_until("HR HIGH resolved", Duration::from_secs(20), || {
        kinds(&hr_alarms(&db, &key)) == ["raise", "resolve"]
    });

    // Attack 2: the original message again, byte for byte, then edited (same number and time,
    // another value). Neither may raise the alarm again; the edited one is a replay.
    publish(original.clone());
    let edited = String::from_utf8(original)
        .expect("utf8")
        .replace("150", "151")
        .into_bytes();
    publish(edited);
    // Then a live normal reading: once it is stored, everything before it was handled. Taken
    // after reading 3 (the steps above can pass within one millisecond on a fast machine, and a
    // reading of the same time as the last one is a duplicate, never stored twice).
    let t4 = now().max(t3 + chrono::Duration::milliseconds(1));
    publish(hr_payload("mon-rd", 4, t4, 72.0));
    wait_until("the live reading stored", Duration::from_secs(20), || {
        hr_stored(&db, &key) == 4
    });
    wait_until("the replay counted", Duration::from_secs(20), || {
        summary(&db).rejects.get("replay") == Some(&1)
    });
    assert_eq!(
        kinds(&hr_alarms(&db, &key)),
        ["raise", "resolve"],
        "a replayed message raised the alarm again"
    );
    wait_until("the replay reported", Duration::from_secs(20), || {
        security_events(&db, "replay") == [("mon-rd".to_string(), 1)]
    });

    // A device that restarts counts from 0 again: its new readings are live and alarm.
    publish(hr_payload("mon-rd", 0, now(), 160.0));
    wait_until(
        "HR HIGH raised after the restart",
        Duration::from_secs(20),
        || kinds(&hr_alarms(&db, &key)) == ["raise", "resolve", "raise"],
    );
    assert_eq!(summary(&db).rejects.get("replay"), Some(&1));

    c.disconnect();
    w.rec.stops_cleanly();
    let out = w.rec.output();
    assert!(out.contains("late 1 (stored as history"), "{out}");
    assert!(out.contains("rejected 1 (replay)"), "{out}");
    assert!(out.contains("replayed message: sequence 1"), "{out}");
}

/// Issue 11: SpO2 98 from another sender on the bed every 4 s, between the real monitor's SpO2
/// 85 every second, restarted the 10 s condition delay and held the high-priority alarm off
/// (25 s and more). It must be raised after its delay.
#[test]
fn interleaved_normal_readings_do_not_hold_off_an_alarm() {
    let w = Recording::start("delay-station");
    let (db, port) = (w.db.clone(), w.port);
    let bed = BedId::new("dl", "01");
    let real = Publisher::new(port, "mon-dl");
    let fake = Publisher::new(port, "spoof-dl");
    let spo2 = |device: &str, seq: u64, value: f64| vitals(device, seq, now(), Vital::SpO2, value);
    let raised = || {
        summary(&db)
            .alarms
            .into_iter()
            .find(|a| a.bed.key() == "dl/01" && a.code == "SPO2_LOW" && a.kind == "raise")
    };
    let first = chrono::Utc::now().timestamp_millis();
    let start = Instant::now();
    let mut found = None;
    for k in 0..25u64 {
        real.send(Topic::vitals(&bed, "mon-dl"), spo2("mon-dl", k, 85.0));
        let due = start + Duration::from_millis(k * 1000 + 500);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if k % 4 == 3 {
            fake.send(Topic::vitals(&bed, "spoof-dl"), spo2("spoof-dl", k, 98.0));
        }
        found = raised();
        if found.is_some() {
            break;
        }
        let due = start + Duration::from_millis((k + 1) * 1000);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let a = found.unwrap_or_else(|| panic!("SPO2_LOW never raised: {:?}", summary(&db).alarms));
    let after = a.t_ms - first;
    eprintln!("SPO2_LOW raised {after} ms after the first low reading");
    assert!((9_500..=12_500).contains(&after), "raised after {after} ms");
}

/// Issue 11: a FHIR Observation sent `final` (Temp 39) and then the same Observation
/// `entered-in-error` left TEMP HIGH active. The retraction, from the device that sent the
/// reading, must end the alarm and say why in the alarm history; the same retraction from
/// another device on the bed changes nothing.
#[test]
fn a_retracted_reading_ends_its_alarm_only_from_its_source() {
    let mut w = Recording::start("retract-station");
    let (db, c) = (w.db.clone(), Publisher::new(w.port, "thermo-gw"));
    let bed = BedId::new("rt", "01");
    // The official example (Temp 39, entered-in-error), taken now; first sent as final.
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/data/fhir_r4/official_examples/observation-example-f202-temperature.json",
    ))
    .expect("read the FHIR example");
    let issued = "\"issued\": \"2013-04-04T13:27:00+01:00\"";
    let retracted = "\"status\": \"entered-in-error\"";
    assert!(example.contains(issued) && example.contains(retracted));
    let t = now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let eie = example.replace(issued, &format!("\"issued\": \"{t}\""));
    let fin = eie.replace(retracted, "\"status\": \"final\"");
    let send = |device: &str, body: &str| c.send(Topic::fhir(&bed, device), body);
    let temp_alarms = || {
        summary(&db)
            .alarms
            .into_iter()
            .filter(|a| a.bed.key() == "rt/01" && a.code == "TEMP_HIGH")
            .map(|a| a.kind)
            .collect::<Vec<_>>()
    };
    let temps = || {
        summary(&db)
            .readings
            .get(&("rt/01".to_string(), "TEMP".to_string()))
            .copied()
            .unwrap_or(0)
    };
    send("thermo-1", &fin);
    wait_until("TEMP HIGH raised", Duration::from_secs(20), || {
        temp_alarms() == ["raise"]
    });
    // Another device retracting thermo-1's reading: stored, no effect on the alarm.
    send("thermo-2", &eie);
    wait_until(
        "the stranger's retraction stored",
        Duration::from_secs(20),
        || temps() == 2,
    );
    assert_eq!(temp_alarms(), ["raise"], "another device ended the alarm");
    // The source retracts it: the alarm ends, and the history says why.
    send("thermo-1", &eie);
    wait_until("TEMP HIGH resolved", Duration::from_secs(20), || {
        temp_alarms() == ["raise", "resolve"]
    });
    let conn = vigil_core::store::open_read_only(&db).expect("db");
    let rows = vigil_core::query::alarms(&conn, Some(&bed), 0, i64::MAX).expect("history");
    let resolve = rows
        .iter()
        .find(|r| r.code == "TEMP_HIGH" && r.kind == "resolve")
        .expect("resolve row");
    assert!(
        resolve
            .message
            .contains("TEMP reading from thermo-1 entered in error"),
        "{}",
        resolve.message
    );
    c.disconnect();
    w.rec.stops_cleanly();
}
