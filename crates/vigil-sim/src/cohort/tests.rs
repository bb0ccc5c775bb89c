use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// 2026-03-02T00:00:00Z, a Monday outside any DST change.
const T0: i64 = 1_772_409_600_000;

fn cohort() -> Cohort {
    Cohort::new(7, T0)
}

fn patient(c: &Cohort, b: Behaviour) -> &Patient {
    c.with(b).expect("the behaviour is in the roster")
}

#[test]
fn twenty_patients_with_their_ids_zones_devices_and_valid_plans() {
    let c = cohort();
    assert_eq!(c.patients().len(), PATIENTS);
    let zones: BTreeSet<&str> = c.patients().iter().map(|p| p.tz_name).collect();
    assert_eq!(
        zones,
        BTreeSet::from([LONDON, NEW_YORK, BERLIN, KOLKATA]),
        "several zones"
    );
    for (i, p) in c.patients().iter().enumerate() {
        let n = i + 1;
        assert_eq!(p.bed.key(), format!("home/h-{n:02}"));
        assert_eq!(p.mrn, format!("SIM-H{n:02}"));
        assert_eq!(vigil_schedule::zone(p.tz_name), Some(p.tz));
        assert!(!p.devices.is_empty());
        for d in &p.devices {
            assert!(
                vigil_contract::telemetry::DeviceId::parse(&d.id).is_ok(),
                "{}",
                d.id
            );
            assert!(d.id.ends_with(&format!("h-{n:02}")), "{}", d.id);
        }
        let items: Vec<Item> = p
            .items
            .iter()
            .cloned()
            .map(|s| Item::new(s).expect("a valid item"))
            .collect();
        vigil_schedule::Plan::new(p.tz, items).expect("a valid plan");
        assert!(chrono::NaiveDate::parse_from_str(p.dob, "%Y-%m-%d").is_ok());
    }
    for b in [
        B::OnTime,
        B::ForgetsEvenings,
        B::WeightClimbs,
        B::CuffStops,
        B::ClinicBatches,
        B::Hypoglycaemia,
        B::LowSpo2,
    ] {
        assert!(c.with(b).is_some(), "{b:?}");
    }
    assert_eq!(
        c.patients().iter().filter(|p| !p.rules.is_empty()).count(),
        4,
        "the weight-climb patient and three hypertensive ones have change rules"
    );
}

#[test]
fn the_same_seed_gives_the_same_script_and_another_seed_other_values() {
    let (a, b) = (Cohort::new(3, T0), Cohort::new(3, T0));
    let other = Cohort::new(4, T0);
    let mut differ = false;
    for (i, p) in a.patients().iter().enumerate() {
        let ra = a.readings(p, T0, T0 + 3 * DAY);
        assert_eq!(ra, b.readings(&b.patients()[i], T0, T0 + 3 * DAY));
        differ |= ra != other.readings(&other.patients()[i], T0, T0 + 3 * DAY);
    }
    assert!(differ);
}

#[test]
fn on_time_patients_meet_every_slot_with_a_reading_in_the_window_sent_at_once() {
    let c = cohort();
    for p in c.patients().iter().filter(|p| p.behaviour == B::OnTime) {
        let slots = c.slots(p, T0, T0 + 4 * DAY);
        assert!(!slots.is_empty());
        for s in &slots {
            let (taken, published) = s.reading.expect("taken");
            assert!(s.start_ms <= taken && taken < s.end_ms, "{s:?}");
            assert_eq!(taken, published);
        }
        assert!(c.missed(p, T0, T0 + 4 * DAY).is_empty());
    }
}

#[test]
fn the_forgetful_patient_never_takes_the_evening_blood_pressure() {
    let c = cohort();
    let p = patient(&c, B::ForgetsEvenings);
    let bp = c
        .slots(p, T0, T0 + 5 * DAY)
        .into_iter()
        .filter(|s| s.item == "bp")
        .collect::<Vec<_>>();
    assert_eq!(bp.len(), 10);
    for s in &bp {
        assert_eq!(s.is_missed(), s.key.index == 1, "{s:?}");
    }
    // No cuff reading in the evening (18:00-21:00 Berlin) at all.
    for m in c.taken(p, T0, T0 + 5 * DAY) {
        if m.device.starts_with("cuff") {
            let local = utc(m.taken_ms).with_timezone(&p.tz);
            assert!(chrono::Timelike::hour(&local) < 18, "{local}");
        }
    }
    // Missed: the five evenings, nothing else.
    let missed = c.missed(p, T0, T0 + 5 * DAY);
    assert_eq!(missed.len(), 5);
    assert!(missed.iter().all(|s| s.item == "bp" && s.key.index == 1));
}

#[test]
fn the_dose_skipper_leaves_every_other_evening_dose_and_the_dispenser_says_so() {
    let c = cohort();
    let p = patient(&c, B::SkipsEveningDose);
    let doses: Vec<ScriptSlot> = c
        .slots(p, T0, T0 + 6 * DAY)
        .into_iter()
        .filter(|s| s.item == MEDICATION)
        .collect();
    assert_eq!(doses.len(), 12, "twice a day");
    let missed: Vec<&ScriptSlot> = doses.iter().filter(|s| s.is_missed()).collect();
    assert_eq!(missed.len(), 3, "every other evening: {missed:?}");
    assert!(missed.iter().all(|s| s.key.index == 1));
    // Each taken dose is a `taken` event of the dispenser, sent at once; each missed one a
    // `missed` event at the window's end; never a reading.
    let sent: Vec<Message> = c
        .taken(p, T0, T0 + 6 * DAY)
        .into_iter()
        .filter(|m| m.device.starts_with("disp-"))
        .collect();
    assert_eq!(sent.len(), doses.len());
    for m in &sent {
        assert!(m.obs.is_empty());
        let (medication, event) = m.dose.expect("a dose event");
        assert_eq!(medication, MEDICATION);
        let slot = doses
            .iter()
            .find(|s| s.start_ms <= m.taken_ms && m.taken_ms <= s.end_ms)
            .expect("in a window");
        match event {
            DoseKind::Taken => assert_eq!(slot.reading, Some((m.taken_ms, m.published_ms))),
            DoseKind::Missed => assert_eq!((slot.reading, m.taken_ms), (None, slot.end_ms)),
            DoseKind::Late => panic!("the script sends no late events"),
        }
    }
    // The on-time patient with a dispenser misses nothing.
    let on_time = c
        .patients()
        .iter()
        .find(|q| q.behaviour == B::OnTime && q.device(Disp).is_some())
        .expect("an on-time patient with a dispenser");
    assert!(c.missed(on_time, T0, T0 + 6 * DAY).is_empty());
}

#[test]
fn the_cuff_stops_and_every_slot_after_is_missed() {
    let c = cohort();
    let p = patient(&c, B::CuffStops);
    let stop = T0 + CUFF_STOPS_AFTER_MS;
    let messages = c.taken(p, T0, T0 + 4 * DAY);
    assert!(!messages.is_empty());
    assert!(messages.iter().all(|m| m.taken_ms < stop));
    for s in c.slots(p, T0, T0 + 4 * DAY) {
        if s.end_ms <= stop {
            assert!(!s.is_missed(), "{s:?}");
        }
        if s.start_ms >= stop {
            assert!(s.is_missed(), "{s:?}");
        }
    }
}

#[test]
fn the_clinic_uploads_in_groups_later_than_taken_newest_first() {
    let c = cohort();
    let p = patient(&c, B::ClinicBatches);
    let sent = c.publications(p, T0, T0 + 3 * DAY);
    assert!(sent.len() > 6);
    for m in &sent {
        assert!(m.published_ms > m.taken_ms, "{m:?}");
        assert!(m.published_ms - m.taken_ms <= BATCH_EVERY_MS);
        assert_eq!(m.published_ms % BATCH_EVERY_MS, 0, "on the upload grid");
    }
    let batches: BTreeSet<i64> = sent.iter().map(|m| m.published_ms).collect();
    assert!(batches.len() < sent.len(), "several readings per upload");
    // Out of order within a batch with more than one reading: newest first.
    let mut seen_out_of_order = false;
    for w in sent.windows(2) {
        if w[0].published_ms == w[1].published_ms {
            assert!(w[0].taken_ms >= w[1].taken_ms);
            seen_out_of_order |= w[0].taken_ms > w[1].taken_ms;
        } else {
            assert!(w[0].published_ms < w[1].published_ms);
        }
    }
    assert!(seen_out_of_order);
    // Nothing is missed: every slot is taken in its window, only uploaded later.
    assert!(c.missed(p, T0, T0 + 3 * DAY).is_empty());
    assert!(c
        .slots(p, T0, T0 + 3 * DAY)
        .iter()
        .all(|s| s.reading.is_some_and(|(t, u)| u > t)));
}

#[test]
fn the_weight_climbs_about_0_8_kg_a_day_and_others_stay_level() {
    let c = cohort();
    let weights = |p: &Patient| -> Vec<(i64, f64)> {
        c.readings(p, T0, T0 + 6 * DAY)
            .into_iter()
            .filter(|r| r.vital == Vital::Weight)
            .map(|r| (r.taken_ms, r.value))
            .collect()
    };
    let w = weights(patient(&c, B::WeightClimbs));
    assert_eq!(w.len(), 6);
    let (first, last) = (w[0], w[w.len() - 1]);
    let days = (last.0 - first.0) as f64 / DAY as f64;
    let rate = (last.1 - first.1) / days;
    assert!((0.6..1.0).contains(&rate), "{rate} kg/day");
    assert!(last.1 - first.1 >= 2.0, "2 kg within 3 days and more");
    let steady = c
        .patients()
        .iter()
        .find(|p| p.behaviour == B::OnTime && p.device(Scale).is_some())
        .expect("a steady scale patient");
    let s = weights(steady);
    let spread = s.iter().map(|x| x.1).fold(f64::MIN, f64::max)
        - s.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    assert!(spread < 1.0, "{spread}");
}

#[test]
fn one_patient_has_occasional_hypoglycaemia_and_one_low_spo2() {
    let c = cohort();
    let low = |p: &Patient, vital: Vital, below: f64| {
        c.readings(p, T0, T0 + 4 * DAY)
            .iter()
            .filter(|r| r.vital == vital && r.value < below)
            .count()
    };
    let hypo = patient(&c, B::Hypoglycaemia);
    let n = low(hypo, Vital::Glucose, 70.0);
    assert!((1..=3).contains(&n), "{n}");
    let hypox = patient(&c, B::LowSpo2);
    let n = low(hypox, Vital::SpO2, 90.0);
    assert!((1..=3).contains(&n), "{n}");
    for p in c.patients() {
        if p.behaviour != B::Hypoglycaemia {
            assert_eq!(low(p, Vital::Glucose, 70.0), 0, "{}", p.bed);
        }
        if p.behaviour != B::LowSpo2 {
            assert_eq!(low(p, Vital::SpO2, 90.0), 0, "{}", p.bed);
        }
    }
}

#[test]
fn a_cuff_sends_systolic_diastolic_mean_and_pulse_in_one_message() {
    let c = cohort();
    let p = &c.patients()[0];
    let m = &c.taken(p, T0, T0 + DAY)[0];
    let vitals: Vec<Vital> = m.obs.iter().map(|o| o.0).collect();
    assert_eq!(
        vitals,
        [Vital::NibpSys, Vital::NibpDia, Vital::NibpMean, Vital::Pr]
    );
    for (v, x) in &m.obs {
        let (lo, hi) = v.info().plausible;
        assert!((lo..=hi).contains(x), "{v:?} {x}");
    }
}

#[test]
fn nobody_but_the_silent_cuff_goes_a_day_without_sending() {
    let c = cohort();
    for p in c.patients().iter().filter(|p| p.behaviour != B::CuffStops) {
        let times: Vec<i64> = c
            .taken(p, T0, T0 + 5 * DAY)
            .iter()
            .map(|m| m.published_ms)
            .collect();
        for w in times.windows(2) {
            assert!(w[1] - w[0] < 20 * HOUR, "{}: {w:?}", p.bed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the seed, start and range: readings lie in the range and in a slot's window
    /// of their device's item, publications cover exactly the range by publish instant, and a
    /// slot is missed only by a behaviour that misses it.
    #[test]
    fn the_script_is_consistent(seed in any::<u64>(), origin_h in 0i64..24 * 400, from_h in 0i64..96, len_h in 1i64..96) {
        let origin = T0 + origin_h * HOUR;
        let c = Cohort::new(seed, origin);
        let (from, to) = (origin + from_h * HOUR - 24 * HOUR, origin + (from_h + len_h) * HOUR);
        for p in c.patients() {
            let slots = c.slots(p, origin, to + DAY);
            for m in c.taken(p, from, to) {
                prop_assert!(from <= m.taken_ms && m.taken_ms < to && m.taken_ms >= origin);
                if m.dose.is_some_and(|(_, e)| e == DoseKind::Missed) {
                    // A dispenser's missed event: at the end of a window with nothing taken.
                    prop_assert!(slots.iter().any(|s| s.item == MEDICATION
                        && s.reading.is_none()
                        && s.end_ms == m.taken_ms));
                } else {
                    prop_assert!(slots.iter().any(|s| s.reading == Some((m.taken_ms, m.published_ms))));
                }
            }
            for m in c.publications(p, from, to) {
                prop_assert!(from <= m.published_ms && m.published_ms < to);
                prop_assert!(m.published_ms >= m.taken_ms);
            }
            for s in c.missed(p, from, to) {
                let why = match p.behaviour {
                    B::ForgetsEvenings => s.item == "bp" && s.key.index == 1,
                    B::CuffStops => s.item == "bp" && s.end_ms > origin + CUFF_STOPS_AFTER_MS,
                    B::SkipsEveningDose => s.item == MEDICATION && s.key.index == 1,
                    _ => false,
                };
                prop_assert!(why, "{} missed {:?}", p.bed, s);
            }
        }
    }
}
