//! The alarm state machine with simulated time: delays, hysteresis, acknowledge / re-trigger,
//! audio pause and break-through, communication lost, latching, escalation; property tests.

use crate::support;

use proptest::prelude::*;
use support::{assert_says, event_kinds};
use vigil_core::alarms::state::{CARE_PLAN, CARE_PLAN_DELAY_MS, COMM_LOST};
use vigil_core::alarms::{
    default_limits, ActiveAlarm, AlarmConfig, AlarmEvent, AlarmEventKind as K, AlarmMachine,
    AlarmState, Direction, Limit, PauseScope, Priority,
};
use vigil_core::codes::Vital;
use vigil_core::telemetry::{BedId, DeviceStatus, Reading};

const T0: i64 = 1_700_000_000_000;

fn bed() -> BedId {
    BedId::new("4W", "01")
}

fn cfg() -> AlarmConfig {
    let mut c = AlarmConfig::default();
    c.news2.enabled = false;
    c
}

fn machine() -> AlarmMachine {
    AlarmMachine::new(cfg())
}

fn obs(m: &mut AlarmMachine, v: Vital, x: f64, now: i64) -> Vec<AlarmEvent> {
    m.observe(&bed(), &Reading::new(v, Some(x), now), now)
}

fn kinds(ev: &[AlarmEvent]) -> Vec<(K, String)> {
    ev.iter().map(|e| (e.kind, e.code.clone())).collect()
}

fn find<'a>(a: &'a [ActiveAlarm], code: &str) -> &'a ActiveAlarm {
    a.iter()
        .find(|x| x.code == code)
        .unwrap_or_else(|| panic!("{code} not shown: {a:?}"))
}

#[test]
fn hr_limit_raises_at_once_and_resolves_with_hysteresis() {
    let mut m = machine();
    assert!(
        obs(&mut m, Vital::Hr, 120.0, T0).is_empty(),
        "threshold is inside"
    );
    let ev = obs(&mut m, Vital::Hr, 130.5, T0 + 1000);
    assert_eq!(kinds(&ev), [(K::Raise, "HR_HIGH".into())]);
    assert_eq!(ev[0].message, "HR HIGH 130.5 /min (limit 120)");
    assert_eq!(ev[0].alarm_id, "4W/01/HR_HIGH");
    assert!(ev[0].audible);
    // Back inside, but not by the 5 /min hysteresis: still present.
    assert!(obs(&mut m, Vital::Hr, 118.0, T0 + 2000).is_empty());
    assert_eq!(m.active(T0 + 2000).len(), 1);
    let ev = obs(&mut m, Vital::Hr, 115.0, T0 + 3000);
    assert_eq!(kinds(&ev), [(K::Resolve, "HR_HIGH".into())]);
    assert_eq!(ev[0].state, AlarmState::Resolved);
    assert!(m.active(T0 + 3000).is_empty());
}

/// Home devices (issue 15): a glucose meter's hypoglycaemia alarms at once at high priority, a
/// hyperglycaemia at medium; a scale alarms on nothing until a weight limit is set.
#[test]
fn glucose_alarms_by_default_and_weight_only_with_a_limit() {
    let mut m = machine();
    assert!(obs(&mut m, Vital::Glucose, 112.0, T0).is_empty());
    let ev = obs(&mut m, Vital::Glucose, 52.0, T0 + 1000);
    assert_eq!(kinds(&ev), [(K::Raise, "GLUCOSE_LOW".into())]);
    assert_eq!(ev[0].priority, Priority::High);
    assert_eq!(ev[0].message, "Glucose LOW 52 mg/dL (limit 70)");
    // High priority latches: back in range, the hypoglycaemia stays until acknowledged.
    let ev = obs(&mut m, Vital::Glucose, 80.0, T0 + 2000);
    assert_eq!(kinds(&ev), [(K::Latch, "GLUCOSE_LOW".into())]);
    let ev = obs(&mut m, Vital::Glucose, 350.0, T0 + 3000);
    assert_eq!(kinds(&ev), [(K::Raise, "GLUCOSE_HIGH".into())]);
    assert_eq!(ev[0].priority, Priority::Medium);

    for (i, w) in [80.0, 150.0, 0.5].into_iter().enumerate() {
        let t = T0 + 10_000 + i as i64 * 1000;
        assert!(obs(&mut m, Vital::Weight, w, t).is_empty(), "{w} kg");
    }
    let mut limits = default_limits();
    limits.push(Limit::new(
        Vital::Weight,
        Direction::High,
        95.0,
        Priority::Low,
    ));
    m.set_limits(&bed(), limits, "erin", T0 + 19_000)
        .expect("a weight limit is valid");
    let ev = obs(&mut m, Vital::Weight, 96.5, T0 + 20_000);
    assert_eq!(kinds(&ev), [(K::Raise, "WEIGHT_HIGH".into())]);
    assert_eq!(ev[0].message, "Weight HIGH 96.5 kg (limit 95)");
}

#[test]
fn spo2_low_needs_ten_seconds_of_persistence() {
    let mut m = machine();
    // 9.9 s of desaturation, then recovery: no alarm (a motion artefact).
    for k in 0..=99 {
        assert!(obs(&mut m, Vital::SpO2, 85.0, T0 + k * 100).is_empty());
        assert!(m.tick(T0 + k * 100).is_empty());
    }
    assert!(obs(&mut m, Vital::SpO2, 95.0, T0 + 9_950).is_empty());
    assert!(m.tick(T0 + 20_000).is_empty());
    // Persisting 10 s: raised by the tick (no new reading needed), not before.
    obs(&mut m, Vital::SpO2, 85.0, T0 + 30_000);
    assert!(m.tick(T0 + 39_999).is_empty());
    let ev = m.tick(T0 + 40_000);
    assert_eq!(kinds(&ev), [(K::Raise, "SPO2_LOW".into())]);
    assert_eq!(ev[0].priority, Priority::High);
    // A "no reading" neither clears nor resets it.
    assert!(m
        .observe(
            &bed(),
            &Reading::new(Vital::SpO2, None, T0 + 41_000),
            T0 + 41_000
        )
        .is_empty());
    assert_eq!(m.active(T0 + 41_000).len(), 1);
}

/// Issue 11: a normal reading now and then (every 4 s, e.g. forged by another sender) between
/// real SpO2 85 readings (every second) restarted the 10 s condition delay, holding the alarm
/// off for as long as it went on. The onset is now kept until the condition has been absent
/// for its whole delay.
#[test]
fn interleaved_normal_readings_do_not_hold_off_spo2_low() {
    let mut m = machine();
    let mut raised = None;
    for k in 0..30 {
        let t = T0 + k * 1000;
        let mut ev = obs(&mut m, Vital::SpO2, 85.0, t);
        if k % 4 == 3 {
            ev.extend(obs(&mut m, Vital::SpO2, 98.0, t + 500));
        }
        ev.extend(m.tick(t + 500));
        if raised.is_none() && kinds(&ev).contains(&(K::Raise, "SPO2_LOW".into())) {
            raised = Some(t);
        }
    }
    assert_eq!(raised, Some(T0 + 10_000), "raised after its 10 s delay");
    // Between two abnormal readings, a normal one raises nothing: the tick raises only a
    // condition present now.
    let mut m = machine();
    obs(&mut m, Vital::SpO2, 85.0, T0);
    obs(&mut m, Vital::SpO2, 98.0, T0 + 9_000);
    assert!(m.tick(T0 + 10_500).is_empty(), "absent now: not raised");
    let ev = obs(&mut m, Vital::SpO2, 85.0, T0 + 11_000);
    assert_eq!(
        kinds(&ev),
        [(K::Raise, "SPO2_LOW".into())],
        "present again: due"
    );
    // Absent for the whole delay: forgotten, a new onset needs the full delay again.
    let mut m = machine();
    obs(&mut m, Vital::SpO2, 85.0, T0);
    obs(&mut m, Vital::SpO2, 98.0, T0 + 5_000);
    assert!(m.tick(T0 + 15_000).is_empty());
    assert!(obs(&mut m, Vital::SpO2, 85.0, T0 + 16_000).is_empty());
    assert!(m.tick(T0 + 25_999).is_empty());
    assert_eq!(kinds(&m.tick(T0 + 26_000)), [(K::Raise, "SPO2_LOW".into())]);
}

/// A retraction or a correction from the source re-evaluates the alarm its reading raised, and
/// the events say why (issue 11).
#[test]
fn retraction_and_correction_re_evaluate_the_alarm() {
    use vigil_core::telemetry::ObsStatus;
    let mut m = machine();
    let ev = obs(&mut m, Vital::Temp, 39.0, T0);
    assert_eq!(kinds(&ev), [(K::Raise, "TEMP_HIGH".into())]);
    let mut r = Reading::new(Vital::Temp, Some(39.0), T0);
    r.status = ObsStatus::EnteredInError;
    let ev = m.revise(&bed(), "thermo-1", &r, T0 + 1000);
    assert_eq!(kinds(&ev), [(K::Resolve, "TEMP_HIGH".into())]);
    assert!(
        ev[0]
            .message
            .starts_with("TEMP reading from thermo-1 entered in error: "),
        "{}",
        ev[0].message
    );
    assert!(m.active(T0 + 1000).is_empty());
    let ev = obs(&mut m, Vital::Temp, 39.5, T0 + 2000);
    assert_eq!(kinds(&ev), [(K::Raise, "TEMP_HIGH".into())]);
    let mut c = Reading::new(Vital::Temp, Some(37.0), T0 + 2000);
    c.status = ObsStatus::Corrected;
    let ev = m.revise(&bed(), "thermo-1", &c, T0 + 3000);
    assert_eq!(kinds(&ev), [(K::Resolve, "TEMP_HIGH".into())]);
    assert!(ev[0].message.contains("corrected"), "{}", ev[0].message);
    // A pending condition withdrawn is forgotten: SpO2 85 then retracted raises nothing.
    obs(&mut m, Vital::SpO2, 85.0, T0 + 4000);
    let mut w = Reading::new(Vital::SpO2, Some(85.0), T0 + 4000);
    w.status = ObsStatus::EnteredInError;
    assert!(m.revise(&bed(), "ox-1", &w, T0 + 5000).is_empty());
    assert!(m.tick(T0 + 20_000).is_empty());
}

#[test]
fn acknowledge_silences_until_retrigger() {
    let mut m = machine();
    obs(&mut m, Vital::Hr, 140.0, T0);
    let ev = m
        .acknowledge("4W/01/HR_HIGH", "alice", T0 + 500)
        .expect("ack");
    assert_eq!(ev[0].kind, K::Acknowledge);
    assert_eq!(ev[0].user.as_deref(), Some("alice"));
    let a = m.active(T0 + 600);
    assert_eq!(a[0].state, AlarmState::Acknowledged);
    assert!(!a[0].audible);
    assert_eq!(a[0].ack_by.as_deref(), Some("alice"));
    // Still present: stays shown (silent) and never escalates.
    assert!(m.tick(T0 + 3_600_000).is_empty());
    // Clears, then re-triggers: a new, unacknowledged, audible alarm.
    assert_eq!(
        kinds(&obs(&mut m, Vital::Hr, 80.0, T0 + 3_600_500))[0].0,
        K::Resolve
    );
    let ev = obs(&mut m, Vital::Hr, 150.0, T0 + 3_601_000);
    assert_eq!(kinds(&ev), [(K::Raise, "HR_HIGH".into())]);
    let a = m.active(T0 + 3_601_000);
    assert_eq!((a[0].state, a[0].audible), (AlarmState::Active, true));
    assert_eq!(
        m.acknowledge("4W/01/NOPE", "alice", T0),
        Err(vigil_core::alarms::AlarmError::UnknownAlarm(
            "4W/01/NOPE".into()
        ))
    );
    assert!(
        m.acknowledge("4W/01/HR_HIGH", " ", T0).is_err(),
        "user needed"
    );
}

#[test]
fn audio_pause_silences_for_two_minutes_and_only_higher_priority_breaks_through() {
    let mut m = machine();
    obs(&mut m, Vital::Hr, 140.0, T0); // medium
    let ev = m
        .audio_pause(PauseScope::Bed(bed()), "bob", T0 + 1000)
        .expect("pause");
    assert_eq!(ev[0].kind, K::Pause);
    assert_eq!(ev[0].user.as_deref(), Some("bob"));
    let a = m.active(T0 + 2000);
    assert_eq!((a[0].state, a[0].audible), (AlarmState::AudioPaused, false));
    assert_eq!(a[0].pause_remaining_ms, Some(119_000));
    assert_eq!(
        m.pause_remaining_ms(Some(&bed()), T0 + 61_000),
        Some(60_000)
    );
    // A new medium alarm (same priority) stays silent; a new high one sounds.
    obs(&mut m, Vital::NibpSys, 80.0, T0 + 5000);
    assert!(!find(&m.active(T0 + 5000), "NIBP_SYS_LOW").audible);
    obs(&mut m, Vital::Rr, 4.0, T0 + 6000);
    m.tick(T0 + 16_000);
    let rr = find(&m.active(T0 + 16_000), "RR_LOW").clone();
    assert_eq!(rr.priority, Priority::High);
    assert!(rr.audible, "higher priority breaks through the pause");
    assert_eq!(rr.state, AlarmState::Active);
    // The pause ends after 2 min: every condition still present sounds again.
    let ev = m.tick(T0 + 121_000);
    assert!(ev.iter().any(|e| e.kind == K::PauseEnd), "{ev:?}");
    assert!(m.active(T0 + 121_000).iter().all(|a| a.audible));
    assert_eq!(m.pause_remaining_ms(Some(&bed()), T0 + 121_000), None);
}

#[test]
fn ending_a_pause_early_brings_signals_back() {
    let mut m = machine();
    obs(&mut m, Vital::Hr, 140.0, T0);
    m.audio_pause(PauseScope::All, "bob", T0).expect("pause");
    assert!(!m.any_audible(T0 + 1));
    let ev = m.end_audio_pause(&PauseScope::All, "bob", T0 + 10_000);
    assert_eq!(ev[0].kind, K::PauseEnd);
    assert!(m.any_audible(T0 + 10_000));
}

#[test]
fn comm_lost_is_raised_after_timeout_and_always_audible() {
    let mut m = machine();
    m.device_seen(&bed(), "mon-1", T0);
    assert!(m.tick(T0 + 4_999).is_empty());
    let ev = m.tick(T0 + 5_000);
    assert_eq!(kinds(&ev), [(K::Raise, COMM_LOST.into())]);
    assert_eq!(ev[0].alarm_id, "4W/01/COMM_LOST@mon-1");
    m.audio_pause(PauseScope::All, "bob", T0 + 6_000)
        .expect("pause");
    m.audio_pause(PauseScope::Bed(bed()), "bob", T0 + 6_000)
        .expect("pause");
    let a = m.active(T0 + 7_000);
    assert!(
        a[0].technical && a[0].audible,
        "never silenced by a pause: {a:?}"
    );
    // Data again: resolved.
    let ev = m.device_seen(&bed(), "mon-1", T0 + 8_000);
    assert_eq!(kinds(&ev), [(K::Resolve, COMM_LOST.into())]);
    // A device that says it is offline: at once.
    let st = DeviceStatus {
        bed: bed(),
        device: "mon-1".into(),
        online: false,
        t_ms: None,
        conditions: vec![],
    };
    assert_eq!(kinds(&m.device_status(&st, T0 + 9_000))[0].0, K::Raise);
}

/// A remote patient's bed: its home devices are forgotten by the communication check (their
/// silence is the care plan's), and an urgent care-plan alert is its own medium-priority
/// technical alarm, apart from the bed's physiological alarms.
#[test]
fn a_remote_bed_has_no_comm_lost_and_its_own_care_plan_alarm() {
    let mut m = machine();
    let home = BedId::new("home", "p-01");
    m.device_seen(&home, "cuff-1", T0);
    let ev = m.tick(T0 + 5_000);
    assert_eq!(kinds(&ev), [(K::Raise, COMM_LOST.into())]);
    // Enrolled as a remote patient: the alarm resolves, and hours of silence raise nothing,
    // nor does an offline status (home devices keep no connection).
    let ev = m.set_remote(&home, true, T0 + 6_000);
    assert_eq!(kinds(&ev), [(K::Resolve, COMM_LOST.into())]);
    assert!(m.set_remote(&home, true, T0 + 7_000).is_empty());
    m.device_seen(&home, "cuff-1", T0 + 3_600_000);
    assert!(m.tick(T0 + 4 * 3_600_000).is_empty());
    let offline = DeviceStatus {
        bed: home.clone(),
        device: "cuff-1".into(),
        online: false,
        t_ms: None,
        conditions: vec![],
    };
    assert!(m.device_status(&offline, T0 + 4 * 3_600_000).is_empty());
    assert!(m.tick(T0 + 4 * 3_600_000 + 10_000).is_empty());

    // An urgent alert that stands less than the delay (data caught up) never sounds.
    let t = T0 + 5 * 3_600_000 - 100_000;
    assert!(m.care_plan(&home, true, "reading bp missed", t).is_empty());
    assert!(m.care_plan(&home, false, "", t + 30_000).is_empty());
    assert!(m
        .care_plan(&home, false, "", t + 30_000 + CARE_PLAN_DELAY_MS)
        .is_empty());
    let t = T0 + 5 * 3_600_000;
    let what = "remote patient home/p-01: reading bp missed";
    assert!(m.care_plan(&home, true, what, t).is_empty());
    assert!(m
        .care_plan(&home, true, what, t + CARE_PLAN_DELAY_MS - 1)
        .is_empty());
    let t = t + CARE_PLAN_DELAY_MS;
    let ev = m.care_plan(&home, true, what, t);
    assert_eq!(kinds(&ev), [(K::Raise, CARE_PLAN.into())]);
    assert_eq!(ev[0].priority, Priority::Medium);
    assert!(ev[0].audible);
    assert!(m.care_plan(&home, true, "the same", t + 1_000).is_empty());
    // A physiological alarm on the bed beside it; acknowledging the care-plan one leaves it.
    for dt in (2_000..=40_000).step_by(2_000) {
        m.observe(
            &home,
            &Reading::new(Vital::SpO2, Some(80.0), t + dt),
            t + dt,
        );
        m.tick(t + dt);
    }
    let a = m.active(t + 40_000);
    assert!(a.iter().any(|x| !x.technical && x.audible), "{a:?}");
    m.acknowledge("home/p-01/CARE_PLAN", "carl", t + 41_000)
        .expect("acknowledged");
    let a = m.active(t + 41_000);
    assert_eq!(find(&a, CARE_PLAN).state, AlarmState::Acknowledged);
    assert!(a.iter().any(|x| !x.technical && x.audible), "{a:?}");
    // Nothing urgent stands: resolved.
    let ev = m.care_plan(&home, false, "", t + 42_000);
    assert_eq!(kinds(&ev), [(K::Resolve, CARE_PLAN.into())]);
    // Discharged (a ward bed again): the home cuff, silent for hours, raises nothing; a device
    // that sends from now on is expected continuously again.
    assert!(m.set_remote(&home, false, t + 43_000).is_empty());
    assert!(m.tick(t + 43_000).is_empty());
    m.device_seen(&home, "cuff-1", t + 43_000);
    let ev = m.tick(t + 48_000);
    assert!(kinds(&ev).contains(&(K::Raise, COMM_LOST.into())), "{ev:?}");
}

#[test]
fn device_conditions_are_technical_alarms() {
    let mut m = machine();
    let mut st = DeviceStatus {
        bed: bed(),
        device: "mon-1".into(),
        online: true,
        t_ms: None,
        conditions: vec!["leads-off".into(), "low-battery".into()],
    };
    let ev = m.device_status(&st, T0);
    let mut codes: Vec<_> = ev.iter().map(|e| e.code.as_str()).collect();
    codes.sort();
    assert_eq!(codes, ["LEADS_OFF", "LOW_BATTERY"]);
    st.conditions = vec!["low-battery".into(), "sensor-off".into()];
    let ev = m.device_status(&st, T0 + 1000);
    assert_eq!(
        kinds(&ev),
        [
            (K::Resolve, "LEADS_OFF".into()),
            (K::Raise, "SENSOR_OFF".into())
        ]
    );
    let ev = m.data_gap(&bed(), "mon-1", "ECG_II", T0 + 2000);
    assert_eq!(kinds(&ev), [(K::Raise, "DATA_GAP".into())]);
    let ev = m.tick(T0 + 62_000);
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Resolve && e.code == "DATA_GAP"));
}

#[test]
fn a_device_over_budget_is_a_technical_alarm_naming_it() {
    let mut m = machine();
    let ev = m.device_over_budget(&bed(), "pump-7", true, "pump-7 over budget", T0);
    assert_eq!(kinds(&ev), [(K::Raise, "DEVICE_OVER_BUDGET".into())]);
    let shown = m.active(T0);
    let a = find(&shown, "DEVICE_OVER_BUDGET");
    assert!(a.label.contains("pump-7"), "{a:?}");
    assert_eq!(a.priority, Priority::Medium);
    assert!(
        m.device_over_budget(&bed(), "pump-7", true, "still", T0 + 1000)
            .is_empty(),
        "raised once"
    );
    // Another device of the bed has its own.
    let ev = m.device_over_budget(&bed(), "mon-1", true, "mon-1 over budget", T0 + 1000);
    assert_eq!(kinds(&ev), [(K::Raise, "DEVICE_OVER_BUDGET".into())]);
    let ev = m.device_over_budget(&bed(), "pump-7", false, "back in budget", T0 + 9000);
    assert_eq!(kinds(&ev), [(K::Resolve, "DEVICE_OVER_BUDGET".into())]);
    assert_eq!(
        m.active(T0 + 9000)
            .iter()
            .filter(|a| a.code == "DEVICE_OVER_BUDGET")
            .count(),
        1
    );
}

#[test]
fn latched_alarm_stays_until_acknowledged() {
    let mut m = machine();
    m.set_latching("HR_HIGH", true);
    obs(&mut m, Vital::Hr, 140.0, T0);
    let ev = obs(&mut m, Vital::Hr, 80.0, T0 + 1000);
    assert_eq!(kinds(&ev), [(K::Latch, "HR_HIGH".into())]);
    let a = m.active(T0 + 1000);
    assert_eq!(a[0].state, AlarmState::LatchedAwaitingAck);
    assert!(a[0].latched && a[0].audible);
    // Escalates too while nobody handles it.
    assert!(m.tick(T0 + 120_000).iter().any(|e| e.kind == K::Escalate));
    let ev = m
        .acknowledge("4W/01/HR_HIGH", "carol", T0 + 130_000)
        .expect("ack");
    assert_eq!(event_kinds(&ev), [K::Acknowledge, K::Resolve]);
    assert!(m.active(T0 + 130_000).is_empty());
    // Acknowledged while present: resolves on clearing (no second acknowledgement needed).
    obs(&mut m, Vital::Hr, 140.0, T0 + 200_000);
    m.acknowledge("4W/01/HR_HIGH", "carol", T0 + 201_000)
        .expect("ack");
    assert_eq!(
        kinds(&obs(&mut m, Vital::Hr, 80.0, T0 + 202_000))[0].0,
        K::Resolve
    );
}

#[test]
fn escalation_repeats_until_acknowledged() {
    let mut m = machine();
    obs(&mut m, Vital::Hr, 140.0, T0); // medium: first after 120 s, then every 60 s
    assert!(m.tick(T0 + 119_999).is_empty());
    let ev = m.tick(T0 + 120_000);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].level), (K::Escalate, 1));
    assert!(ev[0].message.contains("charge nurse"), "{}", ev[0].message);
    assert!(m.tick(T0 + 179_999).is_empty());
    assert_eq!(m.tick(T0 + 180_000)[0].level, 2);
    // Audio pause is not handling: escalation continues.
    m.audio_pause(PauseScope::All, "bob", T0 + 200_000)
        .expect("pause");
    assert_eq!(m.tick(T0 + 240_000)[0].level, 3);
    assert_eq!(m.active(T0 + 240_000)[0].escalation, 3);
    m.acknowledge("4W/01/HR_HIGH", "dan", T0 + 250_000)
        .expect("ack");
    assert_eq!(
        kinds(&m.tick(T0 + 330_000)),
        [(K::PauseEnd, "AUDIO_PAUSE".into())]
    );
    assert!(
        m.tick(T0 + 1_000_000).is_empty(),
        "handled: no more escalation"
    );
}

/// A clock that jumps (a workstation resumed from sleep, a compressed demonstration) gives one
/// escalation event with the level reached, never one per step missed.
#[test]
fn escalation_after_a_clock_jump_is_one_event_at_the_level_reached() {
    let mut m = machine();
    obs(&mut m, Vital::Hr, 140.0, T0); // medium: first after 120 s, then every 60 s
    let ev = m.tick(T0 + 120_000 + 10 * 60_000);
    assert_eq!(kinds(&ev), [(K::Escalate, "HR_HIGH".into())]);
    assert_eq!(ev[0].level, 11);
    assert_eq!(m.active(T0 + 720_000)[0].escalation, 11);
    assert!(m.tick(T0 + 779_999).is_empty());
    assert_eq!(m.tick(T0 + 780_000)[0].level, 12);
}

#[test]
fn per_patient_limits_replace_the_profile() {
    let mut m = machine();
    obs(&mut m, Vital::Hr, 125.0, T0);
    assert_eq!(m.active(T0).len(), 1);
    let mut limits = default_limits();
    for l in limits.iter_mut().filter(|l| l.code() == "HR_HIGH") {
        l.threshold = 140.0;
    }
    let ev = m
        .set_limits(&bed(), limits, "erin", T0 + 1000)
        .expect("limits");
    assert_eq!(ev[0].kind, K::Settings);
    assert!(
        ev.iter().any(|e| e.kind == K::Resolve),
        "re-evaluated: {ev:?}"
    );
    assert!(m.active(T0 + 1000).is_empty());
    let bad = vec![Limit::new(
        Vital::Hr,
        Direction::High,
        f64::NAN,
        Priority::High,
    )];
    assert!(m.set_limits(&bed(), bad, "erin", T0).is_err());
}

#[test]
fn non_final_results_never_alarm_nor_clear() {
    use vigil_core::telemetry::ObsStatus;
    let mut m = machine();
    for status in [
        ObsStatus::Cancelled,
        ObsStatus::EnteredInError,
        ObsStatus::Preliminary,
    ] {
        let r = Reading {
            status,
            ..Reading::new(Vital::Hr, Some(200.0), T0)
        };
        assert!(m.observe(&bed(), &r, T0).is_empty());
    }
    obs(&mut m, Vital::Hr, 200.0, T0);
    let r = Reading {
        status: ObsStatus::EnteredInError,
        ..Reading::new(Vital::Hr, Some(70.0), T0 + 1)
    };
    assert!(m.observe(&bed(), &r, T0 + 1).is_empty());
    assert_eq!(m.active(T0 + 1).len(), 1);
}

#[test]
fn news2_band_raises_alarm_of_matching_priority() {
    let mut c = AlarmConfig::default();
    c.news2.delay_ms = 0;
    let mut m = AlarmMachine::new(c);
    // RR 26 (3), SpO2 97 (0), SBP 120 (0), HR 95 (1), temp 37 (0): total 4, single 3.
    for (v, x) in [
        (Vital::Rr, 26.0),
        (Vital::SpO2, 97.0),
        (Vital::NibpSys, 120.0),
        (Vital::Hr, 95.0),
        (Vital::Temp, 37.0),
    ] {
        obs(&mut m, v, x, T0);
    }
    let s = m.news2(&bed()).expect("score");
    assert_eq!(s.total, 4);
    let a = find(&m.active(T0), "NEWS2_LOW_MEDIUM").clone();
    assert_eq!(a.priority, Priority::Medium);
    // Consciousness V (+3): total 7, high.
    let manual = vigil_core::alarms::news2::News2Manual {
        consciousness: vigil_core::alarms::news2::Consciousness::Voice,
        ..Default::default()
    };
    let ev = m
        .set_news2_manual(&bed(), manual, "fay", T0 + 1000)
        .expect("manual");
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Resolve && e.code == "NEWS2_LOW_MEDIUM"));
    assert!(ev
        .iter()
        .any(|e| e.kind == K::Raise && e.code == "NEWS2_HIGH" && e.priority == Priority::High));
}

// ---- property tests --------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Spo2(Option<f64>),
    Hr(f64),
    Ack(usize),
    Pause(bool),
    EndPause,
    Tick,
    Seen,
}

fn step() -> impl Strategy<Value = (u16, Step)> {
    let s = prop_oneof![
        4 => prop_oneof![Just(None), (70.0..100.0f64).prop_map(Some)].prop_map(Step::Spo2),
        3 => (30.0..160.0f64).prop_map(Step::Hr),
        1 => (0usize..4).prop_map(Step::Ack),
        1 => any::<bool>().prop_map(Step::Pause),
        1 => Just(Step::EndPause),
        3 => Just(Step::Tick),
        2 => Just(Step::Seen),
    ];
    (0u16..4000, s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No alarm lost: a condition present for at least its delay (judged by the inputs alone)
    /// is shown, and an alarm stays shown until its condition resolves and, when latching,
    /// it was acknowledged. Unacknowledged, un-paused alarms sound; comm lost always does.
    #[test]
    fn no_alarm_is_lost(steps in proptest::collection::vec(step(), 1..120), latch in any::<bool>()) {
        let mut m = machine();
        m.set_latching("SPO2_LOW", latch);
        // Latching by code only; a high-priority alarm that does not latch leaves an
        // unreviewed mark instead (tests/alarms_ux.rs covers the default).
        m.set_latch_high(false);
        let b = bed();
        let spo2 = default_limits().into_iter().find(|l| l.code() == "SPO2_LOW").expect("limit");
        let mut now = T0;
        // Model: since when the SpO2 condition is continuously present (with hysteresis).
        let mut present_since: Option<i64> = None;
        let mut shown_unacked_latch = false;
        m.device_seen(&b, "mon-1", now);
        let mut last_seen = now;
        for (dt, s) in steps {
            now += i64::from(dt);
            let before: Vec<ActiveAlarm> = m.active(now);
            match s {
                Step::Spo2(v) => {
                    m.observe(&b, &Reading::new(Vital::SpO2, v, now), now);
                    if let Some(x) = v {
                        let breach = spo2.breached(x, present_since.is_some());
                        match (breach, present_since) {
                            (true, None) => present_since = Some(now),
                            (false, _) => {
                                present_since = None;
                                let was = before.iter().find(|a| a.code == "SPO2_LOW");
                                if let Some(a) = was {
                                    if a.state != AlarmState::Acknowledged {
                                        shown_unacked_latch = true;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Step::Hr(x) => { m.observe(&b, &Reading::new(Vital::Hr, Some(x), now), now); }
                Step::Ack(i) => {
                    if let Some(a) = before.get(i) {
                        let id = a.id.clone();
                        prop_assert!(m.acknowledge(&id, "nurse", now).is_ok());
                        if a.code == "SPO2_LOW" { shown_unacked_latch = false; }
                    }
                }
                Step::Pause(all) => {
                    let scope = if all { PauseScope::All } else { PauseScope::Bed(b.clone()) };
                    m.audio_pause(scope, "nurse", now).expect("pause");
                }
                Step::EndPause => { m.end_audio_pause(&PauseScope::All, "nurse", now); }
                Step::Tick => { m.tick(now); }
                Step::Seen => { m.device_seen(&b, "mon-1", now); last_seen = now; }
            }
            m.tick(now);
            let after = m.active(now);
            let shown = after.iter().find(|a| a.code == "SPO2_LOW");
            if let Some(since) = present_since {
                if now - since >= spo2.delay_ms {
                    prop_assert!(shown.is_some(), "SpO2 low present since {} not shown at {}", since, now);
                }
            }
            if shown_unacked_latch {
                prop_assert!(shown.is_some(), "latched alarm vanished before acknowledgement");
                if present_since.is_none() {
                    let want = if latch { AlarmState::LatchedAwaitingAck } else { AlarmState::Unreviewed };
                    prop_assert!(shown.is_some_and(|a| a.state == want),
                        "{:?}", shown);
                }
            }
            if present_since.is_none() && !shown_unacked_latch {
                prop_assert!(shown.is_none(), "resolved alarm still shown: {:?}", shown);
            }
            for a in &after {
                if a.code == COMM_LOST {
                    prop_assert!(now - last_seen >= 5_000);
                    prop_assert!(a.audible || a.state == AlarmState::Acknowledged);
                }
                if a.state == AlarmState::Active {
                    prop_assert!(a.audible);
                }
                if a.state == AlarmState::Acknowledged || a.state == AlarmState::AudioPaused {
                    prop_assert!(!a.audible);
                }
            }
            if now - last_seen >= 5_000 {
                prop_assert!(after.iter().any(|a| a.code == COMM_LOST), "comm lost missing");
            }
        }
    }

    /// Escalation timing: an unacknowledged alarm reaches level n exactly at
    /// after + (n - 1) * repeat, whatever the tick pattern.
    #[test]
    fn escalation_levels_follow_the_clock(ticks in proptest::collection::vec(1i64..20_000, 1..60)) {
        let mut m = machine();
        obs(&mut m, Vital::Hr, 140.0, T0);
        let mut now = T0;
        for dt in ticks {
            now += dt;
            m.tick(now);
            let elapsed = now - T0;
            let want = if elapsed < 120_000 { 0 } else { 1 + (elapsed - 120_000) / 60_000 };
            prop_assert_eq!(i64::from(m.active(now)[0].escalation), want);
        }
    }
}

// ---- another station's alarm state (issue 11): bounded by this station's rules ----------------

mod remote {
    use super::*;
    use vigil_core::alarms::sync::{AckEntry, BedAlarmState, PauseEntry, VERSION};

    fn state(seq: u64, t_ms: i64, acks: Vec<AckEntry>, pause: Option<PauseEntry>) -> BedAlarmState {
        BedAlarmState {
            v: VERSION,
            station: "ST-2".into(),
            seq,
            t_ms,
            acks,
            pause,
        }
    }

    fn ack(instance: &str, onset_ms: i64, t_ms: i64) -> AckEntry {
        AckEntry {
            alarm_id: "4W/01/HR_HIGH".into(),
            instance: instance.into(),
            onset_ms,
            t_ms,
            user: "alice".into(),
            station: "ST-2".into(),
        }
    }

    #[test]
    fn an_acknowledgement_is_published_only_while_its_alarm_is_shown() {
        let mut m = machine();
        obs(&mut m, Vital::Hr, 150.0, T0);
        m.acknowledge("4W/01/HR_HIGH", "alice", T0 + 1000)
            .expect("acknowledge");
        let acks = |m: &AlarmMachine, now| m.sync_state(&bed(), "ST-1", 1, now).acks.len();
        assert_eq!(acks(&m, T0 + 2000), 1, "shown: published");
        // The episode ends (HR HIGH is not latching). Its acknowledgement must not reach a
        // station that starts later, where it could acknowledge a new alarm unseen.
        obs(&mut m, Vital::Hr, 70.0, T0 + 3000);
        assert!(!m.active(T0 + 3000).iter().any(|a| a.code == "HR_HIGH"));
        assert_eq!(acks(&m, T0 + 4000), 0, "ended: not published");
    }

    #[test]
    fn a_huge_remote_pause_lasts_the_local_pause_and_new_high_alarms_break_through() {
        let mut m = machine();
        obs(&mut m, Vital::Hr, 150.0, T0);
        // The pause: 8.9e12 s, starting in the future.
        let now = T0 + 1000;
        let p = PauseEntry {
            start_ms: now + 3_600_000,
            until_ms: now + 8_900_000_000_000_000,
            by: "alice".into(),
            station: "ST-2".into(),
        };
        let ev = m.apply_remote(&bed(), &state(1, now, vec![], Some(p)), "ST-1", now);
        let pause_ev = ev.iter().find(|e| e.kind == K::Pause).expect("pause event");
        assert_eq!(pause_ev.station.as_deref(), Some("ST-2"));
        assert_says(&pause_ev.message, "by alice at station ST-2");
        let p = m.pauses(now);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].start_ms, p[0].until_ms),
            (now, now + cfg().audio_pause_ms)
        );
        // This station's break-through rule: the highest priority shown here (HR HIGH, medium).
        assert_eq!(p[0].ceiling, Priority::Medium);
        assert_eq!(p[0].station.as_deref(), Some("ST-2"));
        assert!(!find(&m.active(now), "HR_HIGH").audible);
        // A new SpO2 LOW (high priority) sounds through the pause.
        obs(&mut m, Vital::SpO2, 85.0, now + 1000);
        let ev = m.tick(now + 11_000);
        let raised = ev
            .iter()
            .find(|e| e.kind == K::Raise && e.code == "SPO2_LOW")
            .expect("SPO2_LOW raised");
        assert!(raised.audible, "a new high-priority alarm breaks through");
        // And the pause ends with the local pause length.
        let after = now + cfg().audio_pause_ms + 1;
        m.tick(after);
        assert!(m.pauses(after).is_empty());
        assert!(find(&m.active(after), "HR_HIGH").audible);
    }

    /// The station-wide pause is published per bed; coming back from the broker it is this
    /// station's own and pauses nothing more. An early "resume" here ends it for good, and is
    /// published (the pause with its end) so that the other stations end theirs too.
    #[test]
    fn a_pause_ended_early_ends_everywhere_and_the_own_pause_never_comes_back_per_bed() {
        let mut m = machine();
        obs(&mut m, Vital::Hr, 150.0, T0);
        m.audio_pause(PauseScope::All, "bob", T0 + 1000)
            .expect("pause");
        let mine = m.sync_state(&bed(), "ST-1", 1, T0 + 1000);
        let p = mine.pause.clone().expect("published per bed");
        assert_eq!(
            (p.station.as_str(), p.until_ms),
            ("ST-1", T0 + 1000 + cfg().audio_pause_ms)
        );
        // Back from the broker: nothing new.
        assert!(m.apply_remote(&bed(), &mine, "ST-1", T0 + 1100).is_empty());
        assert_eq!(m.pauses(T0 + 1100).len(), 1, "{:?}", m.pauses(T0 + 1100));
        // At another station the pause arrives; its state, which carries ST-1's pause, back at
        // ST-1 pauses nothing more there.
        let mut other = machine();
        obs(&mut other, Vital::Hr, 150.0, T0);
        other.apply_remote(&bed(), &mine, "ST-2", T0 + 1100);
        assert!(
            !find(&other.active(T0 + 1100), "HR_HIGH").audible,
            "paused at ST-2"
        );
        let relayed = other.sync_state(&bed(), "ST-2", 1, T0 + 1100);
        assert!(relayed.pause.as_ref().is_some_and(|p| p.station == "ST-1"));
        m.apply_remote(&bed(), &relayed, "ST-1", T0 + 1200);
        assert_eq!(m.pauses(T0 + 1200).len(), 1, "{:?}", m.pauses(T0 + 1200));
        // Resumed early: nothing paused, the alarm sounds again.
        m.end_audio_pause(&PauseScope::All, "bob", T0 + 2000);
        assert!(m.pauses(T0 + 2000).is_empty());
        assert!(find(&m.active(T0 + 2000), "HR_HIGH").audible);
        let ended = m.sync_state(&bed(), "ST-1", 2, T0 + 2000);
        assert_eq!(ended.pause.as_ref().map(|p| p.until_ms), Some(T0 + 2000));
        assert!(m.apply_remote(&bed(), &ended, "ST-1", T0 + 2100).is_empty());
        assert!(find(&m.active(T0 + 2100), "HR_HIGH").audible);

        // The early end reaches the other station.
        let ev = other.apply_remote(&bed(), &ended, "ST-2", T0 + 2100);
        assert!(ev.iter().any(|e| e.kind == K::PauseEnd), "{ev:?}");
        assert!(other.pauses(T0 + 2100).is_empty());
        assert!(
            find(&other.active(T0 + 2100), "HR_HIGH").audible,
            "sounds again at ST-2"
        );
        // A new pause after the early end is published as the pause in force.
        m.audio_pause(PauseScope::Bed(bed()), "bob", T0 + 3000)
            .expect("pause");
        let again = m.sync_state(&bed(), "ST-1", 4, T0 + 3000);
        assert_eq!(again.pause.map(|p| p.start_ms), Some(T0 + 3000));
        // The record of the early end is forgotten once the pause would have run out anyway.
        m.end_audio_pause(&PauseScope::Bed(bed()), "bob", T0 + 4000);
        let later = T0 + 3000 + cfg().audio_pause_ms + 1;
        m.tick(later);
        assert!(m.sync_state(&bed(), "ST-1", 5, later).pause.is_none());
    }

    /// After a restart the station reads back its own retained state: an acknowledgement made
    /// here before the restart is this station's, not "at station ST-1" from a remote one.
    #[test]
    fn the_stations_own_acknowledgement_from_before_a_restart_is_not_a_remote_one() {
        let mut m = machine();
        obs(&mut m, Vital::Hr, 150.0, T0);
        let own = AckEntry {
            station: "ST-1".into(),
            ..ack("x0", T0, T0 + 500)
        };
        let ev = m.apply_remote(
            &bed(),
            &state(1, T0 + 500, vec![own], None),
            "ST-1",
            T0 + 600,
        );
        let a = ev.iter().find(|e| e.kind == K::Acknowledge).expect("ack");
        assert_eq!(a.station, None, "not a remote station's action");
        assert!(!a.message.contains("at station"), "{}", a.message);
        let shown = find(&m.active(T0 + 600), "HR_HIGH").clone();
        assert_eq!(shown.state, AlarmState::Acknowledged);
        assert_eq!(
            (shown.ack_by.as_deref(), shown.ack_station.as_deref()),
            (Some("alice"), None)
        );
    }

    #[test]
    fn a_remote_acknowledgement_acknowledges_one_instance_never_the_next_or_one_to_come() {
        let mut m = machine();
        obs(&mut m, Vital::Hr, 150.0, T0);
        // Made after the alarm began, at station ST-2, of its instance x1.
        let ev = m.apply_remote(
            &bed(),
            &state(1, T0 + 500, vec![ack("x1", T0, T0 + 500)], None),
            "ST-1",
            T0 + 600,
        );
        let a = ev.iter().find(|e| e.kind == K::Acknowledge).expect("ack");
        assert_eq!(a.station.as_deref(), Some("ST-2"));
        assert_says(&a.message, "by alice at station ST-2");
        let shown = find(&m.active(T0 + 600), "HR_HIGH").clone();
        assert_eq!(shown.state, AlarmState::Acknowledged);
        assert_eq!(
            (shown.ack_by.as_deref(), shown.ack_station.as_deref()),
            (Some("alice"), Some("ST-2"))
        );
        // Resolved, and raised again within the 2 s the old start-time match allowed.
        obs(&mut m, Vital::Hr, 100.0, T0 + 1000);
        assert!(m.active(T0 + 1000).is_empty());
        obs(&mut m, Vital::Hr, 150.0, T0 + 1500);
        // The same acknowledgement again (a later state that still carries it) names the
        // instance that ended: the new one stays active.
        m.apply_remote(
            &bed(),
            &state(2, T0 + 1600, vec![ack("x1", T0, T0 + 1600)], None),
            "ST-1",
            T0 + 1600,
        );
        assert_eq!(
            find(&m.active(T0 + 1600), "HR_HIGH").state,
            AlarmState::Active
        );
        // An acknowledgement "in advance", of an alarm expected to start at a guessed time.
        obs(&mut m, Vital::Hr, 100.0, T0 + 2000);
        m.apply_remote(
            &bed(),
            &state(
                3,
                T0 + 8_000,
                vec![ack("x9", T0 + 10_000, T0 + 8_000)],
                None,
            ),
            "ST-1",
            T0 + 8_000,
        );
        obs(&mut m, Vital::Hr, 150.0, T0 + 10_000);
        assert_eq!(
            find(&m.active(T0 + 10_000), "HR_HIGH").state,
            AlarmState::Active,
            "not acknowledged before it began"
        );
        // An acknowledgement without an instance id (the old format) is ignored.
        m.apply_remote(
            &bed(),
            &state(
                4,
                T0 + 11_000,
                vec![ack("", T0 + 10_000, T0 + 11_000)],
                None,
            ),
            "ST-1",
            T0 + 11_000,
        );
        assert_eq!(
            find(&m.active(T0 + 11_000), "HR_HIGH").state,
            AlarmState::Active
        );
        // An acknowledgement here is published naming this instance by its random id.
        m.acknowledge("4W/01/HR_HIGH", "bob", T0 + 11_500)
            .expect("ack");
        let mine = m.sync_state(&bed(), "ST-1", 9, T0 + 11_500);
        let a = mine
            .acks
            .iter()
            .find(|a| a.user == "bob")
            .expect("bob's ack");
        assert_eq!(a.station, "ST-1");
        assert_eq!(a.instance.len(), 32);
        assert!(a.instance.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!["x1", "x9"].contains(&a.instance.as_str()));
    }
}
