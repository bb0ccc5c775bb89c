//! Slot evaluation: what each slot's state is at `now`, given the events known by then.
//!
//! Pure: the same slots, the same set of events (in any order) and the same `now` give the same
//! states. An event counts from the moment it was received (`received <= now`), so evaluating
//! at a past `now` gives what the station knew then.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::item::Item;
use crate::window::Slot;

/// A reading or a dose as the schedule sees it: when the device says it was taken, and when the
/// station received it (late and out of order for buffered uploads). Which events count for
/// which item (a BP reading for the BP item, a "taken" dose for its dose item) is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Event {
    pub taken: DateTime<Utc>,
    pub received: DateTime<Utc>,
}

/// The level of a missed slot: a warning from the end of its window, urgent after the item's
/// further delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Warning,
    Urgent,
}

/// A slot's state at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlotState {
    /// The window has not opened and nothing meets it yet.
    Upcoming,
    /// The window is open and nothing meets it yet.
    Open,
    /// Taken in the window and received by its end (inclusive).
    MetOnTime {
        taken: DateTime<Utc>,
        received: DateTime<Utc>,
    },
    /// The window ended with nothing taken in it known; `urgent_at` is when it turns (or
    /// turned) urgent.
    Missed {
        level: Level,
        urgent_at: DateTime<Utc>,
    },
    /// Taken in the window but received after its end (a buffered upload): the missed alert it
    /// raised is resolved as received late, not a breach. `reached` is the level the slot had
    /// when the first resolving event arrived.
    ReceivedLate {
        taken: DateTime<Utc>,
        received: DateTime<Utc>,
        reached: Level,
    },
    /// Nothing taken in the window, but something taken after its end and before its
    /// `late_until`: resolved, not on time.
    TakenLate {
        taken: DateTime<Utc>,
        received: DateTime<Utc>,
        reached: Level,
    },
}

impl SlotState {
    /// Not yet due and not met: `Upcoming` or `Open`.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Upcoming | Self::Open)
    }

    /// Whether an alert stands for this slot now.
    pub fn is_missed(&self) -> bool {
        matches!(self, Self::Missed { .. })
    }

    /// Whether the slot's window has ended (or it was met): it counts in adherence.
    pub fn is_due(&self) -> bool {
        !self.is_pending()
    }

    /// Taken inside the window, however late it was received: what adherence counts as on time.
    pub fn taken_in_window(&self) -> bool {
        matches!(self, Self::MetOnTime { .. } | Self::ReceivedLate { .. })
    }
}

/// A slot and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotStatus {
    pub slot: Slot,
    pub state: SlotState,
}

/// The state of each slot at `now` (same order as `slots`), from the events received by `now`.
/// `urgent_after` is the item's delay from warning to urgent.
pub fn evaluate(
    slots: &[Slot],
    events: &[Event],
    now: DateTime<Utc>,
    urgent_after: TimeDelta,
) -> Vec<SlotStatus> {
    let mut known: Vec<Event> = events
        .iter()
        .copied()
        .filter(|e| e.received <= now)
        .collect();
    known.sort_unstable();
    slots
        .iter()
        .map(|slot| SlotStatus {
            slot: *slot,
            state: state_of(slot, &known, now, urgent_after),
        })
        .collect()
}

/// The first event to arrive (then the earliest taken) among some: the one that resolved.
fn first_received<'a>(events: impl Iterator<Item = &'a Event>) -> Option<&'a Event> {
    events.min_by_key(|e| (e.received, e.taken))
}

/// One slot's state; `known` holds the events received by `now`, sorted by `taken`.
fn state_of(
    slot: &Slot,
    known: &[Event],
    now: DateTime<Utc>,
    urgent_after: TimeDelta,
) -> SlotState {
    let from = known.partition_point(|e| e.taken < slot.start);
    let mid = from + known[from..].partition_point(|e| e.taken < slot.end);
    let until = mid + known[mid..].partition_point(|e| e.taken < slot.late_until);
    let (in_window, after) = (&known[from..mid], &known[mid..until]);

    if let Some(e) = first_received(in_window.iter().filter(|e| e.received <= slot.end)) {
        return SlotState::MetOnTime {
            taken: e.taken,
            received: e.received,
        };
    }
    if now < slot.start {
        return SlotState::Upcoming;
    }
    if now < slot.end {
        return SlotState::Open;
    }
    let urgent_at = slot.end + urgent_after;
    let level_at = |t: DateTime<Utc>| {
        if t >= urgent_at {
            Level::Urgent
        } else {
            Level::Warning
        }
    };
    let resolved_at = first_received(in_window.iter().chain(after)).map(|e| e.received);
    if let (Some(e), Some(at)) = (first_received(in_window.iter()), resolved_at) {
        return SlotState::ReceivedLate {
            taken: e.taken,
            received: e.received,
            reached: level_at(at),
        };
    }
    if let (Some(e), Some(at)) = (first_received(after.iter()), resolved_at) {
        return SlotState::TakenLate {
            taken: e.taken,
            received: e.received,
            reached: level_at(at),
        };
    }
    SlotState::Missed {
        level: level_at(now),
        urgent_at,
    }
}

impl Item {
    /// This item's slots overlapping `[from, to)` in `tz`, each with its state at `now`.
    pub fn evaluate(
        &self,
        tz: Tz,
        events: &[Event],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<SlotStatus> {
        evaluate(&self.slots(tz, from, to), events, now, self.urgent_after())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Kind;

    fn utc(hm: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-07-06T{hm}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ev(taken: &str, received: &str) -> Event {
        Event {
            taken: utc(taken),
            received: utc(received),
        }
    }

    /// BP 07:00-10:00 in UTC, urgent 60 min after the end, late grace 120 min.
    fn check(events: &[Event], now: &str, expect: SlotState) {
        let item = Item::parse("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00").unwrap();
        let tz: Tz = "UTC".parse().unwrap();
        let got = item.evaluate(tz, events, utc("00:00"), utc("23:59"), utc(now));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].state, expect, "events {events:?} at {now}");
    }

    fn missed(level: Level) -> SlotState {
        SlotState::Missed {
            level,
            urgent_at: utc("11:00"),
        }
    }

    #[test]
    fn pending_then_missed_with_escalation() {
        check(&[], "06:59", SlotState::Upcoming);
        check(&[], "07:00", SlotState::Open);
        check(&[], "09:59", SlotState::Open);
        check(&[], "10:00", missed(Level::Warning));
        check(&[], "10:59", missed(Level::Warning));
        check(&[], "11:00", missed(Level::Urgent));
    }

    #[test]
    fn edges_start_inclusive_end_exclusive() {
        let on_time = |t: &str| SlotState::MetOnTime {
            taken: utc(t),
            received: utc(t),
        };
        check(&[ev("07:00", "07:00")], "07:00", on_time("07:00"));
        check(&[ev("09:59", "09:59")], "12:00", on_time("09:59"));
        // Taken at the end: not in the window, taken late.
        check(
            &[ev("10:00", "10:00")],
            "10:00",
            SlotState::TakenLate {
                taken: utc("10:00"),
                received: utc("10:00"),
                reached: Level::Warning,
            },
        );
        // Taken before the start: credited to nothing here.
        check(&[ev("06:59", "06:59")], "10:00", missed(Level::Warning));
        // Received exactly at the end: on time (known when the end is evaluated).
        check(
            &[ev("09:59", "10:00")],
            "10:00",
            SlotState::MetOnTime {
                taken: utc("09:59"),
                received: utc("10:00"),
            },
        );
    }

    #[test]
    fn a_late_upload_resolves_as_received_late() {
        let batch = [ev("08:00", "13:00"), ev("08:30", "13:00")];
        // Not yet received: missed and urgent.
        check(&batch, "12:59", missed(Level::Urgent));
        check(
            &batch,
            "13:00",
            SlotState::ReceivedLate {
                taken: utc("08:00"),
                received: utc("13:00"),
                reached: Level::Urgent,
            },
        );
        // Received before the urgent level.
        check(
            &[ev("09:00", "10:30")],
            "12:00",
            SlotState::ReceivedLate {
                taken: utc("09:00"),
                received: utc("10:30"),
                reached: Level::Warning,
            },
        );
    }

    #[test]
    fn taken_late_within_grace_and_then_the_upload_that_was_on_time() {
        let late = ev("10:30", "10:31");
        let grace_over = ev("12:00", "12:00");
        check(
            &[late],
            "11:00",
            SlotState::TakenLate {
                taken: utc("10:30"),
                received: utc("10:31"),
                reached: Level::Warning,
            },
        );
        // At 12:00 the grace (120 min) has ended: not credited.
        check(&[grace_over], "12:30", missed(Level::Urgent));
        // A reading taken in the window arrives afterwards: the slot was met, received late;
        // the level it reached is the one at its first resolution.
        check(
            &[late, ev("08:00", "14:00")],
            "15:00",
            SlotState::ReceivedLate {
                taken: utc("08:00"),
                received: utc("14:00"),
                reached: Level::Warning,
            },
        );
    }

    #[test]
    fn on_time_wins_over_later_arrivals_and_the_first_received_is_reported() {
        check(
            &[
                ev("09:00", "16:00"),
                ev("08:00", "09:30"),
                ev("07:30", "09:40"),
            ],
            "17:00",
            SlotState::MetOnTime {
                taken: utc("08:00"),
                received: utc("09:30"),
            },
        );
    }

    #[test]
    fn events_from_the_future_are_not_known_yet() {
        // Evaluated at 09:00, a reading received at 09:30 is not known.
        check(&[ev("08:00", "09:30")], "09:00", SlotState::Open);
    }

    #[test]
    fn urgent_immediately_with_no_delay() {
        let mut spec = crate::item::ItemSpec::new("dose", Kind::Dose, "metformin", "08:00 ± 1h");
        spec.urgent_after_min = 0;
        let item = Item::new(spec).unwrap();
        let got = item.evaluate(
            "UTC".parse().unwrap(),
            &[],
            utc("00:00"),
            utc("23:59"),
            utc("09:00"),
        );
        assert_eq!(
            got[0].state,
            SlotState::Missed {
                level: Level::Urgent,
                urgent_at: utc("09:00")
            }
        );
    }

    #[test]
    fn serialises_with_a_state_tag() {
        let json = serde_json::to_string(&SlotState::Missed {
            level: Level::Warning,
            urgent_at: utc("11:00"),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"state":"missed","level":"warning","urgent_at":"2026-07-06T11:00:00Z"}"#
        );
    }
}
