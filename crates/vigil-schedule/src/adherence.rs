//! Adherence over the last N days: the share of due slots taken on time, and the days with data.
//!
//! A period of N days is the N local dates (in the patient's zone) ending with the date of
//! `now`, today included. A slot counts in its period by the date it opened on, once it is due
//! (its window has ended, or it was met already); today's slots still open or upcoming do not
//! count yet.

use std::ops::{Add, AddAssign};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::eval::{Event, SlotState, SlotStatus};
use crate::item::{Item, Plan};
use crate::window::instant_of;

/// Counts of due slots by outcome. Add them up across items for a patient.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Adherence {
    /// Slots whose window has ended (or that were met already).
    pub due: u32,
    /// Taken in the window and received by its end.
    pub on_time: u32,
    /// Taken in the window, received after its end (buffered uploads).
    pub received_late: u32,
    /// Taken after the window's end, within its late grace.
    pub taken_late: u32,
    /// Nothing taken for it (as known at `now`).
    pub missed: u32,
}

impl Adherence {
    /// Due slots taken in their window, however late the reading arrived: what "taken on time"
    /// means for adherence (a late upload is the connection's fault, not the patient's).
    pub fn taken_in_window(&self) -> u32 {
        self.on_time + self.received_late
    }

    /// `taken_in_window / due`, from 0 to 1; `None` when nothing was due.
    pub fn share(&self) -> Option<f64> {
        (self.due > 0).then(|| f64::from(self.taken_in_window()) / f64::from(self.due))
    }

    /// The counts of these slots' states (those not yet due are left out).
    pub fn of(statuses: &[SlotStatus]) -> Self {
        let mut a = Self::default();
        for s in statuses {
            a.count(&s.state);
        }
        a
    }

    fn count(&mut self, state: &SlotState) {
        let bucket = match state {
            SlotState::Upcoming | SlotState::Open => return,
            SlotState::MetOnTime { .. } => &mut self.on_time,
            SlotState::ReceivedLate { .. } => &mut self.received_late,
            SlotState::TakenLate { .. } => &mut self.taken_late,
            SlotState::Missed { .. } => &mut self.missed,
        };
        *bucket += 1;
        self.due += 1;
    }
}

impl AddAssign for Adherence {
    fn add_assign(&mut self, o: Self) {
        self.due += o.due;
        self.on_time += o.on_time;
        self.received_late += o.received_late;
        self.taken_late += o.taken_late;
        self.missed += o.missed;
    }
}

impl Add for Adherence {
    type Output = Self;
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}

/// The first and last local dates of the period of `days` days ending today (the date of `now`
/// in `tz`); `None` when `days` is 0.
pub fn period(tz: Tz, now: DateTime<Utc>, days: u32) -> Option<(NaiveDate, NaiveDate)> {
    let today = now.with_timezone(&tz).date_naive();
    let first = today.checked_sub_days(chrono::Days::new(u64::from(days.checked_sub(1)?)))?;
    Some((first, today))
}

/// One item's adherence over the last `days` days at `now`, from the events for it.
pub fn adherence(
    item: &Item,
    tz: Tz,
    events: &[Event],
    now: DateTime<Utc>,
    days: u32,
) -> Adherence {
    let Some((first, today)) = period(tz, now, days) else {
        return Adherence::default();
    };
    let from = instant_of(tz, first.and_time(NaiveTime::MIN));
    // Slots already met may lie ahead of `now` (a device clock running fast); look to the end
    // of today.
    let to = instant_of(tz, today.and_time(NaiveTime::MIN) + TimeDelta::days(1)).max(now);
    let statuses = item.evaluate(tz, events, from, to, now);
    let mut a = Adherence::default();
    for s in statuses
        .iter()
        .filter(|s| (first..=today).contains(&s.slot.key.date))
    {
        a.count(&s.state);
    }
    a
}

/// A plan's adherence: the sum over its items, with `events_for` giving each item's events.
pub fn plan_adherence<'a>(
    plan: &Plan,
    mut events_for: impl FnMut(&Item) -> &'a [Event],
    now: DateTime<Utc>,
    days: u32,
) -> Adherence {
    plan.items()
        .iter()
        .map(|item| adherence(item, plan.tz(), events_for(item), now, days))
        .fold(Adherence::default(), Add::add)
}

/// The number of local dates in the last `days` days (today included) with at least one event
/// taken on them and received by `now`: pass every reading of the patient's devices
/// (programmes ask for 16 of 30).
pub fn days_with_data(tz: Tz, events: &[Event], now: DateTime<Utc>, days: u32) -> u32 {
    let Some((first, today)) = period(tz, now, days) else {
        return 0;
    };
    let mut dates: Vec<NaiveDate> = events
        .iter()
        .filter(|e| e.received <= now)
        .map(|e| e.taken.with_timezone(&tz).date_naive())
        .filter(|d| (first..=today).contains(d))
        .collect();
    dates.sort_unstable();
    dates.dedup();
    dates.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Kind;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn on(text: &str) -> Event {
        Event {
            taken: at(text),
            received: at(text),
        }
    }

    #[test]
    fn seven_days_of_twice_daily_bp() {
        let tz: Tz = "Europe/London".parse().unwrap();
        let bp = Item::parse("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00, 18:00-21:00").unwrap();
        // 2026-07-01..07 (BST, UTC+1): mornings always, evenings only on the 1st and 2nd; one
        // evening uploaded late on the 3rd; one taken late on the 4th.
        let mut events = Vec::new();
        for d in 1..=7 {
            events.push(on(&format!("2026-07-0{d}T07:30:00Z")));
        }
        events.push(on("2026-07-01T18:00:00Z"));
        events.push(on("2026-07-02T19:59:00Z"));
        events.push(Event {
            taken: at("2026-07-03T18:30:00Z"),
            received: at("2026-07-04T06:00:00Z"),
        });
        events.push(on("2026-07-04T20:30:00Z"));
        // Now: 2026-07-07 12:00 BST — today's evening slot is not due yet.
        let now = at("2026-07-07T11:00:00Z");
        let a = adherence(&bp, tz, &events, now, 7);
        assert_eq!(
            a,
            Adherence {
                due: 13,
                on_time: 9,
                received_late: 1,
                taken_late: 1,
                missed: 2,
            }
        );
        assert_eq!(a.taken_in_window(), 10);
        assert!((a.share().unwrap() - 10.0 / 13.0).abs() < 1e-12);
        // 30 days: nothing before the 1st, so the same slots plus 23 missed days (06-08 to
        // 06-30) * 2.
        let a30 = adherence(&bp, tz, &events, now, 30);
        assert_eq!(a30.due, 13 + 23 * 2);
        assert_eq!(a30.missed, 2 + 23 * 2);
        assert_eq!(adherence(&bp, tz, &events, now, 0), Adherence::default());
        assert_eq!(Adherence::default().share(), None);
    }

    #[test]
    fn days_with_data_counts_local_dates() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let now = at("2026-07-31T12:00:00Z");
        let events = [
            // 2026-07-02 03:00Z is 07-01 23:00 EDT: counts for the 1st (outside 30 days:
            // 07-02..31).
            on("2026-07-02T03:00:00Z"),
            on("2026-07-02T05:00:00Z"),
            on("2026-07-02T15:00:00Z"),
            on("2026-07-10T15:00:00Z"),
            // Received after now: not known yet.
            Event {
                taken: at("2026-07-20T15:00:00Z"),
                received: at("2026-07-31T13:00:00Z"),
            },
        ];
        assert_eq!(days_with_data(tz, &events, now, 30), 2);
        assert_eq!(days_with_data(tz, &events, now, 31), 3);
        assert_eq!(days_with_data(tz, &events, now, 0), 0);
    }

    #[test]
    fn a_plan_sums_its_items() {
        let tz: Tz = "UTC".parse().unwrap();
        let bp = Item::parse("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00").unwrap();
        let dose = Item::parse("dose", Kind::Dose, "metformin", "08:00 ± 1h").unwrap();
        let plan = Plan::new(tz, vec![bp, dose]).unwrap();
        let bp_events = [on("2026-07-06T08:00:00Z")];
        let now = at("2026-07-06T12:00:00Z");
        let a = plan_adherence(
            &plan,
            |i| {
                if i.id().as_str() == "bp" {
                    &bp_events[..]
                } else {
                    &[]
                }
            },
            now,
            1,
        );
        assert_eq!((a.due, a.on_time, a.missed), (2, 1, 1));
    }
}
