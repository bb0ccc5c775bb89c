//! Property tests of the schedule engine over time zones and dates around their DST changes:
//! Europe/London, America/New_York, Australia/Lord_Howe (a 30-minute shift), Asia/Kolkata
//! (none), Pacific/Chatham (+12:45/+13:45) and UTC. Ranges are drawn around each zone's actual
//! transitions in 2024–2028 (found by scanning its offsets), windows are biased towards the
//! small hours where the changes happen.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::Index;
use vigil_schedule::{evaluate, slots, Event, LocalWindow, Slot, SlotState, Times, Weekdays};

const ZONES: [&str; 6] = [
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
];

fn zone(i: usize) -> Tz {
    ZONES[i].parse().expect("a known zone")
}

fn offset(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// Each zone's offset changes in 2024–2028, to the hour.
static TRANSITIONS: LazyLock<Vec<Vec<DateTime<Utc>>>> = LazyLock::new(|| {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..ZONES.len())
        .map(|z| {
            let tz = zone(z);
            let mut out = Vec::new();
            let mut prev = offset(tz, start);
            for h in 1..5 * 366 * 24 {
                let t = start + TimeDelta::hours(h);
                let off = offset(tz, t);
                if off != prev {
                    out.push(t);
                    prev = off;
                }
            }
            out
        })
        .collect()
});

#[test]
fn the_zones_change_as_expected() {
    let counts: Vec<usize> = TRANSITIONS.iter().map(Vec::len).collect();
    // Two changes a year where there is DST, none in Kolkata or UTC.
    assert_eq!(counts, [10, 10, 10, 0, 10, 0]);
}

/// A zone and an instant range of 1 hour to 3 days, around one of the zone's DST changes (or
/// any date in 2024–2028 where it has none).
fn scenario() -> impl Strategy<Value = (Tz, DateTime<Utc>, DateTime<Utc>)> {
    (
        0..ZONES.len(),
        any::<Index>(),
        -48i64 * 3600..48 * 3600,
        3600i64..=3 * 24 * 3600,
    )
        .prop_map(|(z, pick, shift, span)| {
            let ts = &TRANSITIONS[z];
            let anchor = if ts.is_empty() {
                Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
                    + TimeDelta::days(pick.index(5 * 365) as i64)
            } else {
                ts[pick.index(ts.len())]
            };
            let from = anchor + TimeDelta::seconds(shift);
            (zone(z), from, from + TimeDelta::seconds(span))
        })
}

/// A start minute: anywhere, or a quarter hour between 01:00 and 05:00 (where changes happen).
fn minute() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..1440, (4u32..20).prop_map(|q| q * 15)]
}

/// A valid schedule: 1 to 5 windows; with `tiled`, each runs to the next one's start so the
/// windows cover the whole day.
fn times() -> impl Strategy<Value = (Times, bool)> {
    (
        prop::collection::btree_set(minute(), 1..=5),
        prop::collection::vec(0u32..=1000, 5),
        prop_oneof![Just(0x7fu8), 1u8..=0x7f],
        any::<bool>(),
    )
        .prop_map(|(starts, fracs, days, tiled)| {
            let starts: Vec<u32> = starts.into_iter().collect();
            let windows = starts
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let next = starts.get(i + 1).copied().unwrap_or(starts[0] + 1440);
                    let room = next - s;
                    let len = if tiled {
                        room
                    } else {
                        1 + (room - 1) * fracs[i] / 1000
                    };
                    LocalWindow::new(s, len).expect("a window within the day")
                })
                .collect();
            let days: Vec<Weekday> = (0..7)
                .filter(|i| days & (1 << i) != 0)
                .map(|i| Weekday::try_from(i as u8).expect("0 to 6"))
                .collect();
            let days = Weekdays::of(&days).expect("at least one day");
            let times = Times::new(windows, days).expect("valid by construction");
            (times, tiled && days.is_all())
        })
}

/// Events as (position in the range widened by a day each side, 0..=1; delay of receipt in
/// seconds: 0 for most, up to 12 h for buffered uploads).
fn raw_events() -> impl Strategy<Value = Vec<(f64, i64)>> {
    prop::collection::vec(
        (
            0.0f64..=1.0,
            prop_oneof![3 => Just(0i64), 1 => 0i64..12 * 3600],
        ),
        0..12,
    )
}

fn events_in(from: DateTime<Utc>, to: DateTime<Utc>, raw: &[(f64, i64)]) -> Vec<Event> {
    let (lo, hi) = (from - TimeDelta::days(1), to + TimeDelta::days(1));
    let span = (hi - lo).num_seconds() as f64;
    raw.iter()
        .map(|&(pos, delay)| {
            let taken = lo + TimeDelta::seconds((span * pos) as i64);
            Event {
                taken,
                received: taken + TimeDelta::seconds(delay),
            }
        })
        .collect()
}

fn all_slots(times: &Times, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
    slots(times, TimeDelta::minutes(120), tz, from, to)
}

/// The local date-times a slot's window spans on the wall clock.
fn local_span(times: &Times, slot: &Slot) -> (NaiveDateTime, NaiveDateTime) {
    let w = times.windows()[usize::from(slot.key.index)];
    let midnight = slot.key.date.and_time(chrono::NaiveTime::MIN);
    (
        midnight + TimeDelta::minutes(i64::from(w.start_minute())),
        midnight + TimeDelta::minutes(i64::from(w.end_minute())),
    )
}

fn exists(tz: Tz, local: NaiveDateTime) -> bool {
    !matches!(tz.from_local_datetime(&local), chrono::LocalResult::None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Slots come sorted, non-empty, never overlapping, on the item's days, with distinct keys,
    /// and each overlaps the range asked for.
    #[test]
    fn windows_never_overlap_within_an_item((tz, from, to) in scenario(), (times, _) in times()) {
        let s = all_slots(&times, tz, from, to);
        for slot in &s {
            prop_assert!(slot.start < slot.end, "{slot:?}");
            prop_assert!(slot.end <= slot.late_until);
            prop_assert!(slot.start < to && slot.end > from);
            prop_assert!(times.applies_on(slot.key.date));
        }
        for pair in s.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "{pair:?}");
            prop_assert!(pair[0].late_until <= pair[1].start, "{pair:?}");
            prop_assert!(pair[0].key < pair[1].key, "{pair:?}");
        }
    }

    /// A window's UTC length is its wall-clock length, less the change in offset between its
    /// ends; when an end falls in a gap, shorter by at most that gap. With no change inside,
    /// exactly its wall-clock length.
    #[test]
    fn utc_length_is_the_local_length_except_across_a_change(
        (tz, from, to) in scenario(),
        (times, _) in times(),
    ) {
        for slot in all_slots(&times, tz, from, to) {
            let (open, close) = local_span(&times, &slot);
            let local_len = (close - open).num_seconds();
            let utc_len = (slot.end - slot.start).num_seconds();
            if exists(tz, open) && exists(tz, close) {
                let change = offset(tz, slot.end) - offset(tz, slot.start);
                prop_assert_eq!(utc_len, local_len - change, "{:?} {}..{}", slot, open, close);
                if offset(tz, slot.start - TimeDelta::seconds(1)) == offset(tz, slot.end) {
                    prop_assert_eq!(utc_len, local_len);
                }
            } else {
                let shift = offset(tz, slot.end) - offset(tz, slot.start - TimeDelta::seconds(1));
                prop_assert!(shift > 0, "a gap comes with clocks going forward: {:?}", slot);
                prop_assert!(local_len - shift <= utc_len && utc_len <= local_len,
                    "{:?} {}..{} shift {}", slot, open, close, shift);
            }
            // Never more than the largest shift of these zones (1 h) off.
            prop_assert!((utc_len - local_len).abs() <= 3600);
        }
    }

    /// Every instant lies in at most one slot of an item; in exactly one when the windows tile
    /// every day; and, when its wall-clock time happens once that day, in the slot whose
    /// wall-clock span contains that time.
    #[test]
    fn every_instant_maps_to_at_most_one_slot(
        (tz, from, to) in scenario(),
        (times, tiled) in times(),
        points in prop::collection::vec(0.0f64..1.0, 1..20),
    ) {
        // Slots around the whole range, so none that contains a sample is left out.
        let s = all_slots(&times, tz, from - TimeDelta::days(2), to + TimeDelta::days(2));
        let span = (to - from).num_seconds() as f64;
        for p in points {
            let t = from + TimeDelta::seconds((span * p) as i64);
            let holding: Vec<&Slot> = s.iter().filter(|s| s.contains(t)).collect();
            prop_assert!(holding.len() <= 1, "{t}: {holding:?}");
            if tiled {
                prop_assert_eq!(holding.len(), 1, "{} uncovered", t);
            }
            let wall = t.with_timezone(&tz).naive_local();
            let once = matches!(tz.from_local_datetime(&wall), chrono::LocalResult::Single(_));
            if once {
                let by_clock: Vec<&Slot> = s
                    .iter()
                    .filter(|slot| {
                        let (open, close) = local_span(&times, slot);
                        open <= wall && wall < close
                    })
                    .collect();
                prop_assert_eq!(holding, by_clock, "{} (wall {})", t, wall);
            }
        }
    }

    /// A reading is credited to exactly the slot containing its timestamp: every slot holding
    /// a known reading is met (on time or received late), by one of the readings inside it;
    /// no other slot is.
    #[test]
    fn a_reading_is_credited_to_the_slot_containing_it(
        (tz, from, to) in scenario(),
        (times, _) in times(),
        raw in raw_events(),
    ) {
        let events = events_in(from, to, &raw);
        let now = to + TimeDelta::days(2);
        let s = all_slots(&times, tz, from, to);
        let states = evaluate(&s, &events, now, TimeDelta::minutes(60));
        for st in &states {
            let inside: Vec<&Event> = events.iter().filter(|e| st.slot.contains(e.taken)).collect();
            prop_assert_eq!(!inside.is_empty(), st.state.taken_in_window(), "{:?}", st);
            match st.state {
                SlotState::MetOnTime { taken, received } => {
                    prop_assert!(inside.iter().any(|e| e.taken == taken && e.received == received));
                    prop_assert!(received <= st.slot.end);
                }
                SlotState::ReceivedLate { taken, received, .. } => {
                    prop_assert!(inside.iter().any(|e| e.taken == taken && e.received == received));
                    prop_assert!(inside.iter().all(|e| e.received > st.slot.end));
                }
                SlotState::TakenLate { taken, .. } => {
                    prop_assert!(st.slot.end <= taken && taken < st.slot.late_until);
                }
                SlotState::Missed { .. } => {}
                SlotState::Upcoming | SlotState::Open => prop_assert!(false, "all due at {}", now),
            }
        }
        for e in &events {
            prop_assert!(s.iter().filter(|slot| slot.contains(e.taken)).count() <= 1);
        }
    }

    /// The order readings arrive in never changes the result.
    #[test]
    fn evaluation_is_independent_of_arrival_order(
        (tz, from, to) in scenario(),
        (times, _) in times(),
        raw in raw_events(),
        shuffled in any::<u64>(),
        at in 0.0f64..=1.0,
    ) {
        let events = events_in(from, to, &raw);
        let mut other = events.clone();
        // A deterministic shuffle from the drawn seed.
        let mut seed = shuffled | 1;
        for i in (1..other.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            other.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let now = from + TimeDelta::seconds(((to - from).num_seconds() as f64 * 1.5 * at) as i64);
        let s = all_slots(&times, tz, from, to);
        let urgent = TimeDelta::minutes(60);
        prop_assert_eq!(evaluate(&s, &events, now, urgent), evaluate(&s, &other, now, urgent));
        other.reverse();
        prop_assert_eq!(evaluate(&s, &events, now, urgent), evaluate(&s, &other, now, urgent));
    }

    /// Time only moves a slot forward: once met or resolved it stays so; a missed slot's level
    /// never drops.
    #[test]
    fn a_resolved_slot_never_comes_back(
        (tz, from, to) in scenario(),
        (times, _) in times(),
        raw in raw_events(),
        a in 0.0f64..=1.0,
        b in 0.0f64..=1.0,
    ) {
        let events = events_in(from, to, &raw);
        let span = (to - from).num_seconds() as f64 * 1.5;
        let (a, b) = (a.min(b), a.max(b));
        let at = |f: f64| from + TimeDelta::seconds((span * f) as i64);
        let (t1, t2) = (at(a), at(b));
        let s = all_slots(&times, tz, from, to);
        let urgent = TimeDelta::minutes(60);
        let (first, then) = (evaluate(&s, &events, t1, urgent), evaluate(&s, &events, t2, urgent));
        for (x, y) in first.iter().zip(then) {
            let rank = |st: &SlotState| match st {
                SlotState::Upcoming => 0,
                SlotState::Open => 1,
                SlotState::Missed { .. } => 2,
                _ => 3,
            };
            prop_assert!(rank(&x.state) <= rank(&y.state), "{:?} then {:?}", x.state, y.state);
            if let (SlotState::Missed { level: l1, .. }, SlotState::Missed { level: l2, .. }) =
                (x.state, y.state)
            {
                prop_assert!(l1 <= l2);
            }
        }
    }

    /// The canonical text reads back to the same schedule.
    #[test]
    fn canonical_text_round_trips((times, _) in times()) {
        let text = times.to_string();
        let back = text.parse::<Times>();
        prop_assert_eq!(back.as_ref(), Ok(&times), "{}", text);
    }

    /// The slots of a long range are the slots of its pieces: asking in pieces (as a tick does)
    /// gives the same windows.
    #[test]
    fn slots_do_not_depend_on_how_the_range_is_cut(
        (tz, from, to) in scenario(),
        (times, _) in times(),
        cut in 0.0f64..1.0,
    ) {
        let mid = from + TimeDelta::seconds(((to - from).num_seconds() as f64 * cut) as i64);
        let whole = all_slots(&times, tz, from, to);
        let mut pieces = all_slots(&times, tz, from, mid);
        for slot in all_slots(&times, tz, mid, to) {
            if pieces.last() != Some(&slot) {
                pieces.push(slot);
            }
        }
        prop_assert_eq!(whole, pieces);
    }
}

#[test]
fn weekday_of_a_slot_is_its_local_date() {
    // Sanity for the weekday filter: a slot dated by its local date, not its UTC date.
    let tz: Tz = "Pacific/Chatham".parse().unwrap();
    let times: Times = "06:00-10:00 on mon".parse().unwrap();
    // Monday 2026-07-06 06:00 +12:45 is Sunday 2026-07-05 17:15Z.
    let from = Utc.with_ymd_and_hms(2026, 7, 5, 0, 0, 0).unwrap();
    let s = all_slots(&times, tz, from, from + TimeDelta::days(2));
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].key.date.weekday(), Weekday::Mon);
    assert_eq!(
        s[0].start,
        Utc.with_ymd_and_hms(2026, 7, 5, 17, 15, 0).unwrap()
    );
}
