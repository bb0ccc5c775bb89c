//! Alarm rules a nurse relies on over a shift (issue 12): high-priority alarms latch by default
//! (IT may turn that off, and then an alarm that clears unseen leaves an "unreviewed" mark until
//! someone reviews it); one alarm for the heart rate (PR does not alarm while the ECG rate is
//! valid); the alarm value follows the numerics; standby beds raise no physiological alarm.

use crate::support;

use support::{assert_says, event_kinds};
use vigil_core::alarms::state::HR_VALID_MS;
use vigil_core::alarms::{
    AlarmConfig, AlarmEvent, AlarmEventKind as K, AlarmMachine, AlarmState, Priority,
};
use vigil_core::codes::Vital;
use vigil_core::telemetry::{BedId, DeviceStatus, Reading};

const T0: i64 = 1_700_000_000_000;

fn bed() -> BedId {
    BedId::new("4W", "03")
}

fn machine(latch_high: bool) -> AlarmMachine {
    let mut c = AlarmConfig::default();
    c.news2.enabled = false;
    c.latch_high = latch_high;
    AlarmMachine::new(c)
}

fn obs(m: &mut AlarmMachine, v: Vital, x: f64, now: i64) -> Vec<AlarmEvent> {
    m.observe(&bed(), &Reading::new(v, Some(x), now), now)
}

/// SpO2 84 for the 10 s delay (raised), then 95 (cleared) 13 s later.
fn desaturate_and_recover(m: &mut AlarmMachine) -> Vec<AlarmEvent> {
    let mut ev = Vec::new();
    for k in 0..=10 {
        ev.extend(obs(m, Vital::SpO2, 84.0, T0 + k * 1000));
        ev.extend(m.tick(T0 + k * 1000));
    }
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Raise && e.code == "SPO2_LOW"));
    ev.extend(obs(m, Vital::SpO2, 95.0, T0 + 23_000));
    ev
}

#[test]
fn a_self_clearing_high_alarm_latches_by_default_and_sounds_until_acknowledged() {
    let mut m = machine(true);
    let ev = desaturate_and_recover(&mut m);
    assert_eq!(ev.last().map(|e| e.kind), Some(K::Latch));
    let a = m.active(T0 + 24_000);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].state, AlarmState::LatchedAwaitingAck);
    assert!(a[0].latched && a[0].audible);
    assert_eq!(a[0].cleared_ms, Some(T0 + 23_000));
    // Hours later it is still there.
    m.tick(T0 + 3 * 3_600_000);
    assert_eq!(m.active(T0 + 3 * 3_600_000).len(), 1);
    let ev = m
        .acknowledge("4W/03/SPO2_LOW", "nina", T0 + 3 * 3_600_000)
        .expect("ack");
    assert_eq!(event_kinds(&ev), [K::Acknowledge, K::Resolve]);
    assert!(m.active(T0 + 3 * 3_600_000).is_empty());
    // Medium alarms do not latch unless IT says so.
    let mut m = machine(true);
    obs(&mut m, Vital::Hr, 140.0, T0);
    assert_eq!(obs(&mut m, Vital::Hr, 90.0, T0 + 1000)[0].kind, K::Resolve);
    assert!(m.active(T0 + 1000).is_empty());
}

#[test]
fn without_latching_a_self_clearing_high_alarm_leaves_a_silent_unreviewed_mark() {
    let mut m = machine(false);
    let ev = desaturate_and_recover(&mut m);
    let last = ev.last().expect("events");
    assert_eq!(
        (last.kind, last.state, last.audible),
        (K::Resolve, AlarmState::Unreviewed, false)
    );
    assert_says(&last.message, "not yet reviewed");
    let a = m.active(T0 + 30_000);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].state, AlarmState::Unreviewed);
    assert!(!a[0].audible && !a[0].latched);
    assert!(!m.any_audible(T0 + 30_000));
    // Never escalates (nothing sounds), stays until reviewed.
    assert!(m.tick(T0 + 3_600_000).is_empty());
    // The condition comes back: a new alarm replaces the mark once its delay has passed.
    obs(&mut m, Vital::SpO2, 83.0, T0 + 3_600_000);
    assert_eq!(m.active(T0 + 3_600_000)[0].state, AlarmState::Unreviewed);
    let ev = m.tick(T0 + 3_610_000);
    assert_eq!(ev[0].kind, K::Raise);
    assert_eq!(m.active(T0 + 3_610_000)[0].state, AlarmState::Active);
    obs(&mut m, Vital::SpO2, 96.0, T0 + 3_620_000);
    // Reviewing (an acknowledgement) removes the mark and says so.
    let ev = m
        .acknowledge("4W/03/SPO2_LOW", "nina", T0 + 3_630_000)
        .expect("review");
    assert_says(&ev[0].message, "reviewed by nina");
    assert_eq!(ev[1].kind, K::Resolve);
    assert!(m.active(T0 + 3_630_000).is_empty());
    // An alarm acknowledged before it cleared leaves no mark.
    obs(&mut m, Vital::SpO2, 84.0, T0 + 4_000_000);
    m.tick(T0 + 4_010_000);
    m.acknowledge("4W/03/SPO2_LOW", "nina", T0 + 4_011_000)
        .expect("ack");
    obs(&mut m, Vital::SpO2, 96.0, T0 + 4_012_000);
    assert!(m.active(T0 + 4_012_000).is_empty());
}

#[test]
fn pulse_rate_does_not_alarm_while_the_ecg_rate_is_valid() {
    let mut m = machine(true);
    let mut raised = Vec::new();
    for k in 0..5 {
        let t = T0 + k * 1000;
        raised.extend(obs(&mut m, Vital::Hr, 135.0, t));
        raised.extend(obs(&mut m, Vital::Pr, 134.0, t));
    }
    let codes: Vec<&str> = raised
        .iter()
        .filter(|e| e.kind == K::Raise)
        .map(|e| e.code.as_str())
        .collect();
    assert_eq!(codes, ["HR_HIGH"], "one alarm for one condition");
    // Leads off: the ECG rate is no longer valid, the oximeter's pulse rate takes over.
    let status = DeviceStatus {
        bed: bed(),
        device: "mon-03".into(),
        online: true,
        conditions: vec!["LEADS_OFF".into()],
        t_ms: Some(T0 + 5000),
    };
    m.device_status(&status, T0 + 5000);
    let ev = obs(&mut m, Vital::Pr, 134.0, T0 + 5500);
    assert!(ev.iter().any(|e| e.kind == K::Raise && e.code == "PR_HIGH"));
    // No ECG rate at all for longer than HR_VALID_MS: PR alarms too.
    let mut m = machine(true);
    obs(&mut m, Vital::Hr, 90.0, T0);
    let ev = obs(&mut m, Vital::Pr, 140.0, T0 + HR_VALID_MS + 1);
    assert!(ev.iter().any(|e| e.kind == K::Raise && e.code == "PR_HIGH"));
    // And once the ECG rate is back, the PR alarm ends (the HR alarm covers the condition).
    obs(&mut m, Vital::Hr, 139.0, T0 + HR_VALID_MS + 500);
    let ev = obs(&mut m, Vital::Pr, 140.0, T0 + HR_VALID_MS + 1000);
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Resolve && e.code == "PR_HIGH"));
    let codes: Vec<String> = m
        .active(T0 + HR_VALID_MS + 1000)
        .into_iter()
        .map(|a| a.code)
        .collect();
    assert_eq!(codes, ["HR_HIGH"]);
}

#[test]
fn the_shown_value_follows_the_numerics() {
    let mut m = machine(true);
    obs(&mut m, Vital::Hr, 45.0, T0);
    assert!(!m.take_shown_changed() || m.active(T0)[0].value == Some(45.0));
    // Still low (no event), but a new value: the list is worth sending again.
    assert!(obs(&mut m, Vital::Hr, 47.0, T0 + 1000).is_empty());
    assert!(m.take_shown_changed());
    assert!(!m.take_shown_changed(), "cleared once taken");
    assert_eq!(m.active(T0 + 1000)[0].value, Some(47.0));
    // The same value again changes nothing.
    obs(&mut m, Vital::Hr, 47.0, T0 + 2000);
    assert!(!m.take_shown_changed());
}

#[test]
fn a_bed_in_standby_raises_no_physiological_alarm_but_technical_ones() {
    let mut m = machine(true);
    obs(&mut m, Vital::Hr, 150.0, T0);
    assert_eq!(m.active(T0).len(), 1);
    let ev = m
        .set_standby(&bed(), true, "nina", T0 + 1000)
        .expect("standby");
    assert_eq!(ev[0].kind, K::Settings);
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Resolve && e.code == "HR_HIGH"));
    assert!(m.active(T0 + 1000).is_empty(), "no latch, no mark");
    assert!(m.is_standby(&bed()));
    assert!(obs(&mut m, Vital::Hr, 160.0, T0 + 2000).is_empty());
    assert!(obs(&mut m, Vital::SpO2, 70.0, T0 + 2000).is_empty());
    assert!(m.tick(T0 + 30_000).is_empty());
    // Technical alarms go on: a monitor that goes offline is still reported.
    let status = DeviceStatus {
        bed: bed(),
        device: "mon-03".into(),
        online: false,
        conditions: vec![],
        t_ms: Some(T0 + 31_000),
    };
    let ev = m.device_status(&status, T0 + 31_000);
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Raise && e.code == "COMM_LOST"));
    // Resuming evaluates the latest values at once.
    let ev = m
        .set_standby(&bed(), false, "nina", T0 + 40_000)
        .expect("resume");
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Raise && e.code == "HR_HIGH" && e.priority == Priority::Medium));
    assert!(!m.is_standby(&bed()));
    assert!(m.set_standby(&bed(), true, " ", T0).is_err(), "user needed");
}

/// A restart never wipes an alarm nobody acknowledged (issue 12): the station reads its alarm
/// history back from the real SQLite file and shows again what was latched, active or not yet
/// reviewed; what was over, acknowledged or of medium priority stays history.
mod restart {
    use super::*;
    use std::path::Path;
    use vigil_core::alarms::Unfinished;
    use vigil_core::store::{Op, StoreWriter};

    fn bed_n(n: &str) -> BedId {
        BedId::new("4W", n)
    }

    fn on(m: &mut AlarmMachine, b: &str, v: Vital, x: f64, now: i64) -> Vec<AlarmEvent> {
        let mut ev = m.observe(&bed_n(b), &Reading::new(v, Some(x), now), now);
        ev.extend(m.tick(now));
        ev
    }

    /// A shift before the restart, starting at `t0`, as the station's machine saw it: returns
    /// its events, in order.
    fn shift(t0: i64) -> Vec<AlarmEvent> {
        let mut m = machine(true);
        let mut ev = Vec::new();
        for k in 0..=10 {
            let t = t0 + k * 1000;
            // 01: desaturates, then recovers unseen (latched).
            ev.extend(on(&mut m, "01", Vital::SpO2, 84.0, t));
            // 03: desaturates until the station stops (active, unacknowledged).
            ev.extend(on(&mut m, "03", Vital::SpO2, 85.0, t));
            // 04: desaturates; acknowledged below while still present.
            ev.extend(on(&mut m, "04", Vital::SpO2, 86.0, t));
            // 05: desaturates; recovers and is acknowledged (over).
            ev.extend(on(&mut m, "05", Vital::SpO2, 84.0, t));
        }
        // 02: a medium-priority alarm, active when the station stops.
        ev.extend(on(&mut m, "02", Vital::Hr, 150.0, t0 + 10_500));
        ev.extend(on(&mut m, "01", Vital::SpO2, 96.0, t0 + 11_000));
        ev.extend(on(&mut m, "05", Vital::SpO2, 96.0, t0 + 11_000));
        for b in ["04", "05"] {
            ev.extend(
                m.acknowledge(&format!("4W/{b}/SPO2_LOW"), "nina", t0 + 12_000)
                    .expect("ack"),
            );
        }
        let shown: Vec<(String, AlarmState)> = m
            .active(t0 + 12_000)
            .into_iter()
            .map(|a| (a.id, a.state))
            .collect();
        assert_eq!(
            shown,
            [
                ("4W/01/SPO2_LOW".to_string(), AlarmState::LatchedAwaitingAck),
                ("4W/03/SPO2_LOW".to_string(), AlarmState::Active),
                ("4W/04/SPO2_LOW".to_string(), AlarmState::Acknowledged),
                ("4W/02/HR_HIGH".to_string(), AlarmState::Active),
            ]
        );
        ev
    }

    /// The events, written by the station's own writer to a real database file.
    async fn record(db: &Path, events: Vec<AlarmEvent>) {
        let w = StoreWriter::spawn(db).expect("writer");
        for e in events {
            w.sender().send(Op::Alarm(e)).await.expect("send");
        }
        w.flush().await.expect("flush");
        tokio::task::spawn_blocking(move || w.close())
            .await
            .expect("close");
    }

    fn restored(
        m: &mut AlarmMachine,
        unfinished: &[Unfinished],
        now: i64,
    ) -> Vec<(String, AlarmState)> {
        for u in unfinished {
            m.restore_unfinished(u, now);
        }
        m.active(now).into_iter().map(|a| (a.id, a.state)).collect()
    }

    #[tokio::test]
    async fn alarms_unacknowledged_at_a_restart_are_shown_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("vigil.db");
        record(&db, shift(T0)).await;
        let conn = vigil_core::store::open(&db).expect("db");
        let unfinished = vigil_core::query::unfinished_alarms(&conn, T0 - 1).expect("query");
        let ids: Vec<&str> = unfinished.iter().map(|u| u.alarm_id.as_str()).collect();
        assert_eq!(ids, ["4W/03/SPO2_LOW", "4W/02/HR_HIGH", "4W/01/SPO2_LOW"]);
        let u1 = unfinished
            .iter()
            .find(|u| u.alarm_id == "4W/01/SPO2_LOW")
            .expect("01");
        assert_eq!(
            (u1.since_ms, u1.cleared_ms, u1.state),
            (T0 + 10_000, T0 + 11_000, AlarmState::LatchedAwaitingAck)
        );
        // Nothing older than the window comes back.
        assert!(vigil_core::query::unfinished_alarms(&conn, T0 + 20_000)
            .expect("query")
            .is_empty());

        // High-priority alarms latch: both come back latched and sounding; the medium one,
        // the acknowledged one and the one that was over do not.
        let now = T0 + 600_000;
        let mut m = machine(true);
        assert_eq!(
            restored(&mut m, &unfinished, now),
            [
                ("4W/01/SPO2_LOW".to_string(), AlarmState::LatchedAwaitingAck),
                ("4W/03/SPO2_LOW".to_string(), AlarmState::LatchedAwaitingAck),
            ]
        );
        let a = m.active(now);
        assert!(a.iter().all(|a| a.audible && a.latched), "{a:?}");
        assert_eq!(a[0].label, "SpO2 LOW");
        // The value as the station showed it when it stopped (the latest, as the numerics).
        assert_eq!(a[0].value, Some(96.0));
        assert_eq!(a[0].since_ms, T0 + 10_000);
        assert_eq!(a[0].cleared_ms, Some(T0 + 11_000));
        // Restoring twice changes nothing.
        assert_eq!(restored(&mut m, &unfinished, now).len(), 2);
        // The condition comes back on 03: shown as present, and latched again when it clears.
        on(&mut m, "03", Vital::SpO2, 85.0, now + 1000);
        assert_eq!(m.active(now + 1000)[1].state, AlarmState::Active);
        let ev = on(&mut m, "03", Vital::SpO2, 97.0, now + 2000);
        assert_eq!(ev[0].kind, K::Latch);
        // Acknowledging ends a restored alarm as any other.
        let ev = m
            .acknowledge("4W/01/SPO2_LOW", "nina", now + 3000)
            .expect("ack");
        assert_eq!(event_kinds(&ev), [K::Acknowledge, K::Resolve]);

        // Without latching (IT's choice): silent "not yet reviewed" marks instead.
        let mut m = machine(false);
        assert_eq!(
            restored(&mut m, &unfinished, now),
            [
                ("4W/01/SPO2_LOW".to_string(), AlarmState::Unreviewed),
                ("4W/03/SPO2_LOW".to_string(), AlarmState::Unreviewed),
            ]
        );
        assert!(!m.any_audible(now));
        let ev = m
            .acknowledge("4W/03/SPO2_LOW", "nina", now + 1000)
            .expect("review");
        assert_says(&ev[0].message, "reviewed by nina");

        // A bed in standby, or an alarm of a limit that no longer exists, is not put back.
        let mut m = machine(true);
        m.restore_standby(bed_n("01"));
        let mut gone = unfinished.clone();
        gone.iter_mut().for_each(|u| {
            if u.alarm_id == "4W/03/SPO2_LOW" {
                u.code = "SPO2_HIGH".into();
                u.alarm_id = "4W/03/SPO2_HIGH".into();
            }
        });
        assert!(restored(&mut m, &gone, now).is_empty());
    }

    /// The engine does it at start: a station restarted on the same database shows them in its
    /// snapshot (what the window and the alarm sound read first).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_engine_shows_them_from_its_first_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("vigil.db");
        let t0 = chrono::Utc::now().timestamp_millis() - 120_000;
        record(&db, shift(t0)).await;
        // No broker is needed to read the history back: the station starts offline.
        let engine = support::offline_engine("station-restart", &db);
        let shown: Vec<(String, AlarmState, bool)> = engine
            .snapshot()
            .alarms
            .into_iter()
            .map(|a| (a.id, a.state, a.audible))
            .collect();
        engine.shutdown().await;
        assert_eq!(
            shown,
            [
                (
                    "4W/01/SPO2_LOW".to_string(),
                    AlarmState::LatchedAwaitingAck,
                    true
                ),
                (
                    "4W/03/SPO2_LOW".to_string(),
                    AlarmState::LatchedAwaitingAck,
                    true
                ),
            ]
        );
    }
}

/// A station starts as IT last set it up, whichever face starts it (the window or
/// `vigilctl record`, both through `Engine::start_station`): the saved ward profile gives the
/// default limits, the saved latching codes latch, and a bed left in standby stays so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_starts_with_its_saved_profile_latching_and_standby() {
    use std::collections::BTreeSet;
    use vigil_core::alarms::WardProfile;
    use vigil_core::engine::{AlarmOptions, Engine, SecurityOptions};
    use vigil_core::ingest::IngestPolicy;
    use vigil_core::settings::{List, StationSettings};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("vigil.db");
    let now = chrono::Utc::now().timestamp_millis();
    let latching: BTreeSet<String> = ["HR_LOW".to_string()].into();
    {
        let conn = vigil_core::store::open(&db).expect("open");
        StationSettings::save_profile(&conn, WardProfile::Neonatal, "it", now).expect("profile");
        StationSettings::save_list(&conn, List::Latching, &latching, "it", now).expect("latching");
        let standby: BTreeSet<String> = ["4W/05".to_string()].into();
        StationSettings::save_list(&conn, List::Standby, &standby, "it", now).expect("standby");
    }
    let mut cfg = support::engine_config(
        "mqtt://127.0.0.1:9",
        "station-settings",
        &db,
        IngestPolicy::default(),
    );
    // Whatever the caller passes, the saved profile decides a new bed's limits.
    cfg.limits = WardProfile::Adult.limits();
    let (engine, settings) =
        Engine::start_station(cfg, AlarmOptions::default(), SecurityOptions::default())
            .expect("engine");
    let (profile, latched) = engine.ward_settings();
    let limits = engine.default_limits();
    let standby = engine.standby_beds();
    engine.shutdown().await;
    assert_eq!(settings.profile, WardProfile::Neonatal);
    assert_eq!((profile, latched), (WardProfile::Neonatal, latching));
    assert_eq!(limits, WardProfile::Neonatal.limits());
    assert_ne!(limits, WardProfile::Adult.limits());
    assert_eq!(standby, [BedId::new("4W", "05")]);
}
