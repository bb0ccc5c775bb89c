//! From wall-clock windows to concrete UTC windows (slots), across midnight and DST changes.
//!
//! [`instant_of`] is the one mapping from a local date and time in a zone to an instant, used for
//! every start and every end: a local time that happens twice (the fall-back hour) maps to its
//! earlier occurrence; one that never happens (the spring-forward gap) maps to the first instant
//! after the gap, i.e. the transition itself. The mapping never goes backwards (a later local
//! time never gives an earlier instant), so windows that do not overlap on the clock never
//! overlap in UTC.

use std::fmt;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::item::{Item, Times};

/// The stable, deterministic key of a slot within its item: the local date (in the patient's
/// zone) its window opens on, and the window's index in the item's sorted windows. Written
/// `2026-03-29/1`. Stable as long as the item's windows are unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotKey {
    pub date: NaiveDate,
    pub index: u8,
}

impl fmt::Display for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.date, self.index)
    }
}

/// One concrete window of an item: a reading taken in `[start, end)` meets it; one taken in
/// `[end, late_until)` resolves it as taken late. `late_until` is the end plus the item's late
/// grace, but never past the start of the item's next slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub key: SlotKey,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub late_until: DateTime<Utc>,
}

impl Slot {
    /// Whether an instant lies in the window (start inclusive, end exclusive).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// The one mapping of a local date and time in `tz` to an instant: unambiguous times map
/// directly; a time that happens twice maps to its earlier occurrence; a time in a gap maps to
/// the first instant at which the clock shows it or later (the transition).
pub fn instant_of(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => first_instant_showing(tz, local),
    }
}

/// The smallest whole-second instant whose wall-clock time in `tz` is at or after `local`.
/// Offsets lie within ±15 h, so the answer lies within 15 h of `local` read as UTC; wall-clock
/// time only rises across that span around a gap (no fall-back within hours of a gap).
fn first_instant_showing(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    const SPAN: i64 = 15 * 3600;
    let wall = |t: i64| DateTime::from_timestamp(t, 0).map(|t| t.with_timezone(&tz).naive_local());
    let guess = local.and_utc().timestamp();
    // wall(lo) < local <= wall(hi).
    let (mut lo, mut hi) = (guess - SPAN, guess + SPAN);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match wall(mid) {
            Some(w) if w >= local => hi = mid,
            Some(_) => lo = mid,
            None => break,
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(local.and_utc())
}

/// How far before `from` a slot may open and still reach into it: a window lasts at most a day
/// on the clock, plus a DST shift; two dates cover it.
const DATES_BEFORE: u64 = 2;
/// How far past the range to look for the slot after the last one (its start bounds that slot's
/// late grace): a week covers any set of weekdays; one more week for gaps.
const DATES_AFTER: i64 = 14;

/// The item's slots whose windows overlap `[from, to)`, sorted by start (then by key). A window
/// that lies wholly in a DST gap is empty that day and has no slot.
pub fn slots(
    times: &Times,
    late_grace: TimeDelta,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Slot> {
    if from >= to {
        return Vec::new();
    }
    let Some(first) = from
        .with_timezone(&tz)
        .date_naive()
        .checked_sub_days(chrono::Days::new(DATES_BEFORE))
    else {
        return Vec::new();
    };
    let last = to.with_timezone(&tz).date_naive();
    let stop = last + TimeDelta::days(DATES_AFTER);

    // Every non-empty window from `first` on, in order, until one opens at or after `to` (the
    // successor of the last slot in range).
    let mut raw: Vec<(SlotKey, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut date = first;
    while date <= stop && raw.last().is_none_or(|r| r.1 < to) {
        if times.applies_on(date) {
            let midnight = date.and_time(chrono::NaiveTime::MIN);
            for (index, w) in times.windows().iter().enumerate() {
                let open = midnight + TimeDelta::minutes(i64::from(w.start_minute()));
                let close = midnight + TimeDelta::minutes(i64::from(w.end_minute()));
                let (start, end) = (instant_of(tz, open), instant_of(tz, close));
                if start < end {
                    // At most MAX_WINDOWS (24) windows: the index fits.
                    let key = SlotKey {
                        date,
                        index: index as u8,
                    };
                    raw.push((key, start, end));
                }
            }
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }

    let mut out = Vec::new();
    for (i, &(key, start, end)) in raw.iter().enumerate() {
        if start >= to || end <= from {
            continue;
        }
        let grace_end = end + late_grace;
        let late_until = match raw.get(i + 1) {
            Some(next) => grace_end.min(next.1),
            None => grace_end,
        };
        out.push(Slot {
            key,
            start,
            end,
            late_until,
        });
    }
    debug_assert!(out.windows(2).all(|p| p[0].end <= p[1].start));
    out
}

impl Item {
    /// This item's slots in `tz` whose windows overlap `[from, to)`; see [`slots`].
    pub fn slots(&self, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        slots(self.times(), self.late_grace(), tz, from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Kind;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    /// The slots of `times` over the given UTC range, as `key start..end` lines.
    fn show(zone: &str, times: &str, from: &str, to: &str) -> Vec<String> {
        let item = Item::parse("x", Kind::Reading, "SPO2", times).unwrap();
        item.slots(tz(zone), utc(from), utc(to))
            .iter()
            .map(|s| {
                format!(
                    "{} {}..{}",
                    s.key,
                    s.start.format("%m-%dT%H:%MZ"),
                    s.end.format("%m-%dT%H:%MZ")
                )
            })
            .collect()
    }

    #[test]
    fn mapping_in_gaps_and_repeated_hours() {
        let ny = tz("America/New_York");
        // Spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
        assert_eq!(
            instant_of(ny, local("2026-03-08 01:59")),
            utc("2026-03-08T06:59:00Z")
        );
        assert_eq!(
            instant_of(ny, local("2026-03-08 02:00")),
            utc("2026-03-08T07:00:00Z")
        );
        assert_eq!(
            instant_of(ny, local("2026-03-08 02:30")),
            utc("2026-03-08T07:00:00Z")
        );
        assert_eq!(
            instant_of(ny, local("2026-03-08 03:00")),
            utc("2026-03-08T07:00:00Z")
        );
        // Fall back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens at 05:30Z and 06:30Z.
        assert_eq!(
            instant_of(ny, local("2026-11-01 01:30")),
            utc("2026-11-01T05:30:00Z")
        );
        assert_eq!(
            instant_of(ny, local("2026-11-01 02:00")),
            utc("2026-11-01T07:00:00Z")
        );
        // Lord Howe: a 30-minute shift, 2026-10-04 02:00 +10:30 -> 02:30 +11.
        let lh = tz("Australia/Lord_Howe");
        assert_eq!(
            instant_of(lh, local("2026-10-04 02:15")),
            utc("2026-10-03T15:30:00Z")
        );
        // Chatham: 2026-09-27 02:45 +12:45 -> 03:45 +13:45.
        let ch = tz("Pacific/Chatham");
        assert_eq!(
            instant_of(ch, local("2026-09-27 03:00")),
            utc("2026-09-26T14:00:00Z")
        );
    }

    #[test]
    fn a_plain_day_in_london() {
        assert_eq!(
            show(
                "Europe/London",
                "07:00-10:00, 18:00-21:00",
                "2026-07-01T00:00:00Z",
                "2026-07-02T00:00:00Z"
            ),
            [
                "2026-07-01/0 07-01T06:00Z..07-01T09:00Z",
                "2026-07-01/1 07-01T17:00Z..07-01T20:00Z"
            ]
        );
    }

    #[test]
    fn range_edges_select_overlapping_windows_only() {
        // A window ending exactly at `from` is out; one starting exactly at `to` is out.
        let zone = "UTC";
        assert_eq!(
            show(
                zone,
                "07:00-10:00",
                "2026-07-01T10:00:00Z",
                "2026-07-02T07:00:00Z"
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            show(
                zone,
                "07:00-10:00",
                "2026-07-01T09:59:00Z",
                "2026-07-02T07:01:00Z"
            ),
            [
                "2026-07-01/0 07-01T07:00Z..07-01T10:00Z",
                "2026-07-02/0 07-02T07:00Z..07-02T10:00Z"
            ]
        );
        assert!(show(
            zone,
            "07:00-10:00",
            "2026-07-02T00:00:00Z",
            "2026-07-01T00:00:00Z"
        )
        .is_empty());
    }

    #[test]
    fn a_window_spanning_spring_forward_is_shorter_by_the_shift() {
        // New York, 2026-03-08: 01:00-04:00 local lasts 2 h in UTC (06:00Z to 08:00Z).
        assert_eq!(
            show(
                "America/New_York",
                "01:00-04:00",
                "2026-03-08T00:00:00Z",
                "2026-03-08T12:00:00Z"
            ),
            ["2026-03-08/0 03-08T06:00Z..03-08T08:00Z"]
        );
        // Starting in the gap: it opens at the transition (03:00 EDT = 07:00Z).
        assert_eq!(
            show(
                "America/New_York",
                "02:30-04:00",
                "2026-03-08T00:00:00Z",
                "2026-03-08T12:00:00Z"
            ),
            ["2026-03-08/0 03-08T07:00Z..03-08T08:00Z"]
        );
        // Wholly inside the gap: no slot that day, the day before and after as usual.
        assert_eq!(
            show(
                "America/New_York",
                "02:10-02:50",
                "2026-03-07T00:00:00Z",
                "2026-03-10T00:00:00Z"
            ),
            [
                "2026-03-07/0 03-07T07:10Z..03-07T07:50Z",
                "2026-03-09/0 03-09T06:10Z..03-09T06:50Z"
            ]
        );
    }

    #[test]
    fn a_window_spanning_fall_back_is_longer_by_the_shift() {
        // New York, 2026-11-01: 01:00-04:00 local lasts 4 h (05:00Z, the first 01:00, to 09:00Z).
        assert_eq!(
            show(
                "America/New_York",
                "01:00-04:00",
                "2026-11-01T00:00:00Z",
                "2026-11-01T12:00:00Z"
            ),
            ["2026-11-01/0 11-01T05:00Z..11-01T09:00Z"]
        );
        // Adjacent windows meeting in the repeated hour: the first closes at the first 01:30,
        // the second takes the rest, including the second 01:00-01:30.
        assert_eq!(
            show(
                "America/New_York",
                "00:00-01:30, 01:30-03:00",
                "2026-11-01T00:00:00Z",
                "2026-11-01T12:00:00Z"
            ),
            [
                "2026-11-01/0 11-01T04:00Z..11-01T05:30Z",
                "2026-11-01/1 11-01T05:30Z..11-01T08:00Z"
            ]
        );
    }

    #[test]
    fn windows_crossing_midnight_belong_to_the_date_they_open() {
        assert_eq!(
            show(
                "Asia/Kolkata",
                "22:00-02:00",
                "2026-07-01T00:00:00Z",
                "2026-07-02T00:00:00Z"
            ),
            // 22:00 IST on 06-30 is 16:30Z; that window ends 20:30Z on 06-30: outside.
            ["2026-07-01/0 07-01T16:30Z..07-01T20:30Z"]
        );
        // Reaching back: a range starting after midnight still gets the evening's window.
        assert_eq!(
            show(
                "Asia/Kolkata",
                "22:00-02:00",
                "2026-07-01T19:00:00Z",
                "2026-07-01T19:30:00Z"
            ),
            ["2026-07-01/0 07-01T16:30Z..07-01T20:30Z"]
        );
    }

    #[test]
    fn weekdays_and_late_grace() {
        let item = Item::parse("w", Kind::Reading, "WEIGHT", "06:00-10:00 on mon,thu").unwrap();
        // 2026-07-06 is a Monday.
        let slots = item.slots(
            tz("UTC"),
            utc("2026-07-06T00:00:00Z"),
            utc("2026-07-13T00:00:00Z"),
        );
        let keys: Vec<String> = slots.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(keys, ["2026-07-06/0", "2026-07-09/0"]);
        assert!(slots
            .iter()
            .all(|s| s.late_until == s.end + TimeDelta::minutes(120)));

        // Grace is cut at the next window's start.
        let item =
            Item::parse("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00, 11:00-12:00").unwrap();
        let slots = item.slots(
            tz("UTC"),
            utc("2026-07-06T00:00:00Z"),
            utc("2026-07-07T00:00:00Z"),
        );
        assert_eq!(slots[0].late_until, utc("2026-07-06T11:00:00Z"));
        assert_eq!(slots[1].late_until, utc("2026-07-06T14:00:00Z"));
    }

    #[test]
    fn a_day_that_never_happened_has_no_slots() {
        // Samoa skipped 2011-12-30 (from UTC-10 to UTC+14 at 10:00Z): its morning window lies
        // wholly in the gap and has no slot; its evening window (22:00 on the 30th to 02:00 on
        // the 31st) opens in the gap, so at the change, and keeps the part that happened.
        assert_eq!(
            show(
                "Pacific/Apia",
                "07:00-10:00, 22:00-02:00",
                "2011-12-29T00:00:00Z",
                "2011-12-31T00:00:00Z"
            ),
            [
                "2011-12-28/1 12-29T08:00Z..12-29T12:00Z",
                "2011-12-29/0 12-29T17:00Z..12-29T20:00Z",
                // 22:00 on the 29th to 02:00 on the missing 30th: it closes at the change.
                "2011-12-29/1 12-30T08:00Z..12-30T10:00Z",
                "2011-12-30/1 12-30T10:00Z..12-30T12:00Z",
                "2011-12-31/0 12-30T17:00Z..12-30T20:00Z",
            ]
        );
    }

    #[test]
    fn whole_day_windows_tile_the_days() {
        assert_eq!(
            show(
                "Europe/London",
                "00:00-24:00",
                "2026-03-29T00:00:00Z",
                "2026-03-30T00:00:00Z"
            ),
            // London springs forward at 01:00 GMT: the day lasts 23 h; 00:00Z on the 30th is
            // already 01:00 BST, in the next day's window.
            [
                "2026-03-29/0 03-29T00:00Z..03-29T23:00Z",
                "2026-03-30/0 03-29T23:00Z..03-30T23:00Z"
            ]
        );
    }
}
