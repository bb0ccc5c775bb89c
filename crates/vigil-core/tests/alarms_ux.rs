//! Alarm rules a nurse relies on over a shift (issue 12): high-priority alarms latch by default
//! (IT may turn that off, and then an alarm that clears unseen leaves an "unreviewed" mark until
//! someone reviews it); one alarm for the heart rate (PR does not alarm while the ECG rate is
//! valid); the alarm value follows the numerics; standby beds raise no physiological alarm.

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
    assert_eq!(
        ev.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [K::Acknowledge, K::Resolve]
    );
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
    assert!(
        last.message.contains("not yet reviewed"),
        "{}",
        last.message
    );
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
    assert!(
        ev[0].message.contains("reviewed by nina"),
        "{}",
        ev[0].message
    );
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
