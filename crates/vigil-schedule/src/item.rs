//! A care plan and its schedule items: typed, validated, with the one parser of a schedule's text.
//!
//! [`Times`] is the schedule of one item on the patient's wall clock (its windows and the days of
//! the week they apply on); [`Times::from_str`] is the only parser of its text and [`Times::new`]
//! the only validator, which every other way in (serde included) goes through. [`Item`] adds what
//! the slots expect (a reading or a dose), its id in the plan and the escalation settings;
//! [`Plan`] is a patient's items, and the change rules of [`crate::rules`], in the patient's IANA
//! time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveTime, TimeDelta, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::rules::Rule;

/// Minutes in a day on the wall clock (what window lengths are counted in).
pub const MINUTES_PER_DAY: u32 = 24 * 60;
/// At most this many windows a day in one item.
pub const MAX_WINDOWS: usize = 24;
/// The longest escalation delay or late grace an item may set: 7 days, in minutes.
pub const MAX_DELAY_MIN: u32 = 7 * MINUTES_PER_DAY;
/// Default delay from the end of a window (warning) to the urgent level, in minutes.
pub const DEFAULT_URGENT_AFTER_MIN: u32 = 60;
/// Default time after a window's end during which a reading taken late still resolves its slot
/// (as taken late), in minutes; never reaches into the item's next window.
pub const DEFAULT_LATE_GRACE_MIN: u32 = 120;

/// Why a schedule, an item or a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("empty schedule: give at least one window, e.g. `07:00-10:00`")]
    Empty,
    #[error("`{0}` is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)")]
    BadTime(String),
    #[error("`{0}` is not a duration (e.g. `1h`, `30m`, `1h30m`)")]
    BadDuration(String),
    #[error("`{0}` is not a window (`HH:MM-HH:MM` or `HH:MM ± 1h`)")]
    BadWindow(String),
    #[error("window `{0}` is empty or longer than a day")]
    BadLength(String),
    #[error("`{0}` is not a count a day (`N/day` with N from 1 to 24, then one window)")]
    BadCount(String),
    #[error("`{0}` is not a day of the week (mon, tue, wed, thu, fri, sat, sun)")]
    BadDay(String),
    #[error("windows {0} and {1} overlap")]
    Overlap(String, String),
    #[error("more than {MAX_WINDOWS} windows a day")]
    TooMany,
    #[error("`{0}` is not an item id (1 to 32 of a-z, 0-9, `-`, `_`)")]
    BadId(String),
    #[error("`{0}` is not a measure (1 to 32 of A-Z, a-z, 0-9, `-`, `_`: a vital's code such as `NIBP_SYS`, or a medication id)")]
    BadMeasure(String),
    #[error("item `{0}` appears twice in the plan")]
    DuplicateItem(String),
    #[error("{0} minutes is too long a delay (at most {MAX_DELAY_MIN})")]
    BadDelay(u32),
    #[error("rule `{0}` appears twice in the plan, or has an item's id (items and rules share one set of ids)")]
    DuplicateRule(String),
    #[error("rule `{id}`: {why}; a rule is `rise` or `fall` with `within`, or `above` or `below` with `n` and `m`")]
    RuleForm { id: String, why: String },
    #[error("rule `{id}`: the change must be a finite number above 0, not {value}")]
    BadChange { id: String, value: String },
    #[error("rule `{id}`: the threshold must be a finite number, not {value}")]
    BadThreshold { id: String, value: String },
    #[error(
        "rule `{id}`: {n} of the last {m} is not a count (1 <= n <= m <= {})",
        crate::rules::MAX_LAST
    )]
    BadLast { id: String, n: u32, m: u32 },
    #[error("`{0}` is not a look-back (whole days, hours or minutes: `3d`, `72h`, `90m`; above 0 and at most {days} days)", days = crate::rules::MAX_WITHIN_DAYS)]
    BadWithin(String),
}

/// One window on the patient's wall clock: it starts `start` minutes after local midnight and
/// lasts `len` minutes (1 to 1440), so it may cross midnight; start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalWindow {
    start: u16,
    len: u16,
}

impl LocalWindow {
    /// A window from its start (minutes after midnight, 0 to 1439) and its length in minutes
    /// (1 to 1440).
    pub fn new(start_min: u32, len_min: u32) -> Result<Self, ScheduleError> {
        if start_min >= MINUTES_PER_DAY {
            return Err(ScheduleError::BadTime(format!("{start_min} min")));
        }
        if len_min == 0 || len_min > MINUTES_PER_DAY {
            return Err(ScheduleError::BadLength(format!(
                "{} +{len_min} min",
                clock(start_min)
            )));
        }
        // Both fit: start < 1440 and len <= 1440.
        Ok(Self {
            start: start_min as u16,
            len: len_min as u16,
        })
    }

    /// Minutes after local midnight at which the window opens.
    pub fn start_minute(&self) -> u32 {
        u32::from(self.start)
    }

    /// Length on the wall clock, in minutes.
    pub fn len_minutes(&self) -> u32 {
        u32::from(self.len)
    }

    /// Minutes after the local midnight of its date at which it closes (above 1440 when it
    /// crosses midnight).
    pub fn end_minute(&self) -> u32 {
        self.start_minute() + self.len_minutes()
    }

    /// The wall-clock time it opens at.
    pub fn start(&self) -> NaiveTime {
        NaiveTime::MIN + TimeDelta::minutes(i64::from(self.start))
    }

    /// Whether it closes on the next local date.
    pub fn crosses_midnight(&self) -> bool {
        self.end_minute() > MINUTES_PER_DAY
    }
}

/// `HH:MM-HH:MM`, or `HH:MM for 24h` for a whole day not starting at midnight (its start and
/// end would read the same).
impl fmt::Display for LocalWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len_minutes() == MINUTES_PER_DAY && self.start != 0 {
            return write!(f, "{} for 24h", clock(self.start_minute()));
        }
        let end = self.end_minute() % MINUTES_PER_DAY;
        let end = if end == 0 {
            "24:00".to_string()
        } else {
            clock(end)
        };
        write!(f, "{}-{end}", clock(self.start_minute()))
    }
}

fn clock(min: u32) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// The days of the week an item's windows open on (a window belongs to the local date it opens
/// on, so a window crossing midnight counts for the day it started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weekdays(u8);

impl Weekdays {
    pub const ALL: Weekdays = Weekdays(0x7f);
    const NAMES: [&'static str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    /// The set of these days; `None` when empty.
    pub fn of(days: &[Weekday]) -> Option<Self> {
        let bits = days
            .iter()
            .fold(0u8, |b, d| b | 1 << d.num_days_from_monday());
        (bits != 0).then_some(Self(bits))
    }

    pub fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }
}

impl fmt::Display for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| Self::NAMES[i])
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The schedule of one item on the patient's wall clock: windows sorted by start, never
/// overlapping on the clock (including the last one of a day with the first of the next), and
/// the days of the week they open on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Times {
    windows: Vec<LocalWindow>,
    days: Weekdays,
}

impl Times {
    /// The one validator: sorts the windows by start and refuses none, too many, or overlaps.
    pub fn new(mut windows: Vec<LocalWindow>, days: Weekdays) -> Result<Self, ScheduleError> {
        if windows.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if windows.len() > MAX_WINDOWS {
            return Err(ScheduleError::TooMany);
        }
        windows.sort();
        for pair in windows.windows(2) {
            if pair[0].end_minute() > pair[1].start_minute() {
                return Err(ScheduleError::Overlap(
                    pair[0].to_string(),
                    pair[1].to_string(),
                ));
            }
        }
        let (first, last) = (windows[0], windows[windows.len() - 1]);
        // The last window of a day must close before the first of the next day opens (this is
        // also the single window's own wrap when there is only one: len <= 1440).
        if last.end_minute() > first.start_minute() + MINUTES_PER_DAY {
            return Err(ScheduleError::Overlap(last.to_string(), first.to_string()));
        }
        Ok(Self { windows, days })
    }

    /// The windows, sorted by start; a window's index here is the index in its slots' keys.
    pub fn windows(&self) -> &[LocalWindow] {
        &self.windows
    }

    pub fn days(&self) -> Weekdays {
        self.days
    }

    /// Whether windows open on this local date.
    pub fn applies_on(&self, date: chrono::NaiveDate) -> bool {
        self.days.contains(date.weekday())
    }
}

/// The canonical text: windows as `HH:MM-HH:MM` joined by `, `, then ` on mon,wed` unless every
/// day. `Times::from_str` reads it back to the same value.
impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.windows.iter().map(|w| w.to_string()).collect();
        f.write_str(&list.join(", "))?;
        if !self.days.is_all() {
            write!(f, " on {}", self.days)?;
        }
        Ok(())
    }
}

/// The one parser of a schedule's text (case-insensitive, spaces free):
///
/// - `07:00-10:00, 18:00-21:00` — windows, start inclusive, end exclusive; an end at or before
///   its start crosses midnight (`22:00-02:00`); `24:00` is midnight as an end;
/// - `08:00 ± 1h` (also `+-`, `+/-`) — the window from 07:00 to 09:00; may be mixed with ranges;
/// - `06:00 for 4h` — a start and a length (up to `24h`: a whole day from 06:00);
/// - `3/day 08:00-20:00` — N equal windows (whole minutes; the last takes any remainder);
/// - any of these followed by `on mon,wed,fri` — only on those days (default every day).
impl FromStr for Times {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text
            .trim()
            .to_lowercase()
            .replace('±', "+-")
            .replace("+/-", "+-");
        let (body, days) = match text.split_once(" on ") {
            Some((body, days)) => (body.trim(), parse_days(days)?),
            None => (text.as_str(), Weekdays::ALL),
        };
        if body.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let windows = match body.split_once("/day") {
            Some((count, window)) => split_evenly(count.trim(), window.trim())?,
            None => body
                .split(',')
                .map(|e| parse_window(e.trim()))
                .collect::<Result<_, _>>()?,
        };
        Self::new(windows, days)
    }
}

fn parse_days(text: &str) -> Result<Weekdays, ScheduleError> {
    let mut days = Vec::new();
    for name in text.split(',').map(str::trim) {
        let day = match name {
            "mon" => Weekday::Mon,
            "tue" => Weekday::Tue,
            "wed" => Weekday::Wed,
            "thu" => Weekday::Thu,
            "fri" => Weekday::Fri,
            "sat" => Weekday::Sat,
            "sun" => Weekday::Sun,
            _ => return Err(ScheduleError::BadDay(name.to_string())),
        };
        days.push(day);
    }
    Weekdays::of(&days).ok_or_else(|| ScheduleError::BadDay(text.to_string()))
}

fn split_evenly(count: &str, window: &str) -> Result<Vec<LocalWindow>, ScheduleError> {
    let n: u32 = count
        .parse()
        .ok()
        .filter(|n| (1..=MAX_WINDOWS as u32).contains(n))
        .ok_or_else(|| ScheduleError::BadCount(count.to_string()))?;
    let span = parse_window(window)?;
    let piece = span.len_minutes() / n;
    if piece == 0 {
        return Err(ScheduleError::BadLength(format!("{span} / {n}")));
    }
    (0..n)
        .map(|i| {
            let start = (span.start_minute() + i * piece) % MINUTES_PER_DAY;
            let len = if i + 1 == n {
                span.len_minutes() - i * piece
            } else {
                piece
            };
            LocalWindow::new(start, len)
        })
        .collect()
}

fn parse_window(text: &str) -> Result<LocalWindow, ScheduleError> {
    if let Some((start, len)) = text.split_once(" for ") {
        let start = parse_clock(start.trim(), false)?;
        return LocalWindow::new(start, parse_duration(len.trim())?);
    }
    if let Some((centre, tol)) = text.split_once("+-") {
        let centre = parse_clock(centre.trim(), false)?;
        let tol = parse_duration(tol.trim())?;
        if tol == 0 || 2 * tol > MINUTES_PER_DAY {
            return Err(ScheduleError::BadLength(text.to_string()));
        }
        let start = (centre + MINUTES_PER_DAY - tol % MINUTES_PER_DAY) % MINUTES_PER_DAY;
        return LocalWindow::new(start, 2 * tol);
    }
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| ScheduleError::BadWindow(text.to_string()))?;
    let start = parse_clock(start.trim(), false)?;
    let end = parse_clock(end.trim(), true)?;
    let len = (end + MINUTES_PER_DAY - start) % MINUTES_PER_DAY;
    if len == 0 {
        // 07:00-07:00 is refused (a whole day is written 00:00-24:00).
        if end == start + MINUTES_PER_DAY {
            return LocalWindow::new(start, MINUTES_PER_DAY);
        }
        return Err(ScheduleError::BadLength(text.to_string()));
    }
    LocalWindow::new(start, len)
}

/// `HH:MM` (or `H:MM`) as minutes after midnight; `24:00` (1440) only where `end` allows it.
fn parse_clock(text: &str, end: bool) -> Result<u32, ScheduleError> {
    let bad = || ScheduleError::BadTime(text.to_string());
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) if end => Ok(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// `1h`, `30m`, `45min`, `1h30m` as minutes.
fn parse_duration(text: &str) -> Result<u32, ScheduleError> {
    let bad = || ScheduleError::BadDuration(text.to_string());
    let mut rest = text.replace(' ', "");
    let mut total: u32 = 0;
    let mut seen = false;
    if let Some((h, tail)) = rest.split_once('h') {
        let h: u32 = h.parse().map_err(|_| bad())?;
        total = h.checked_mul(60).ok_or_else(bad)?;
        rest = tail.to_string();
        seen = true;
    }
    if !rest.is_empty() {
        let m = rest
            .strip_suffix("min")
            .or_else(|| rest.strip_suffix('m'))
            .ok_or_else(bad)?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        total = total.checked_add(m).ok_or_else(bad)?;
        seen = true;
    }
    if !seen {
        return Err(bad());
    }
    Ok(total)
}

/// An item's id in its plan (`bp`, `weight`, `dose-metformin`): 1 to 32 of `a-z 0-9 - _`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ItemId(String);

impl ItemId {
    /// The one parser of an item id.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let ok = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(ScheduleError::BadId(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ItemId {
    type Error = ScheduleError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<ItemId> for String {
    fn from(id: ItemId) -> String {
        id.0
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an item's slots expect: a reading from a device, or a dose from a dispenser. The engine
/// decides which events count for an item; this only names the alert ("missed reading" or
/// "missed dose").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Reading,
    Dose,
}

/// The one check of a measure's syntax, an item's or a rule's: trimmed, 1 to 32 of `A-Z a-z 0-9
/// - _` (a vital's code or a medication id; which one it must name is the caller's check).
pub(crate) fn parse_measure(text: &str) -> Result<String, ScheduleError> {
    let measure = text.trim();
    let ok = (1..=32).contains(&measure.len())
        && measure
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(measure.to_string())
    } else {
        Err(ScheduleError::BadMeasure(text.to_string()))
    }
}

/// One schedule item of a care plan, validated. Serialised as an [`ItemSpec`] (the schedule as
/// its canonical text); deserialising goes through [`Item::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ItemSpec", into = "ItemSpec")]
pub struct Item {
    id: ItemId,
    kind: Kind,
    measure: String,
    times: Times,
    urgent_after_min: u32,
    late_grace_min: u32,
}

/// An item as given (a form, a file, a command line): checked by [`Item::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    pub id: String,
    pub kind: Kind,
    /// What meets the item's slots: for a reading, the code of the vital a device reports
    /// (`NIBP_SYS`, `SPO2`); for a dose, the medication id the dispenser reports (`metformin`).
    /// The schedule only carries it; the engine matches events by it.
    pub measure: String,
    /// The schedule's text, read by `Times::from_str`.
    pub times: String,
    /// Minutes from the warning (at the window's end) to the urgent level.
    #[serde(default = "default_urgent")]
    pub urgent_after_min: u32,
    /// Minutes after the window's end during which a reading taken late resolves the slot.
    #[serde(default = "default_grace")]
    pub late_grace_min: u32,
}

fn default_urgent() -> u32 {
    DEFAULT_URGENT_AFTER_MIN
}

fn default_grace() -> u32 {
    DEFAULT_LATE_GRACE_MIN
}

impl ItemSpec {
    /// A spec with the default escalation and late grace.
    pub fn new(id: &str, kind: Kind, measure: &str, times: &str) -> Self {
        Self {
            id: id.to_string(),
            kind,
            measure: measure.to_string(),
            times: times.to_string(),
            urgent_after_min: DEFAULT_URGENT_AFTER_MIN,
            late_grace_min: DEFAULT_LATE_GRACE_MIN,
        }
    }
}

impl Item {
    /// The one validator of an item.
    pub fn new(spec: ItemSpec) -> Result<Self, ScheduleError> {
        for delay in [spec.urgent_after_min, spec.late_grace_min] {
            if delay > MAX_DELAY_MIN {
                return Err(ScheduleError::BadDelay(delay));
            }
        }
        let measure = parse_measure(&spec.measure)?;
        Ok(Self {
            id: ItemId::parse(&spec.id)?,
            kind: spec.kind,
            measure,
            times: spec.times.parse()?,
            urgent_after_min: spec.urgent_after_min,
            late_grace_min: spec.late_grace_min,
        })
    }

    /// Shorthand for `Item::new(ItemSpec::new(id, kind, measure, times))`.
    pub fn parse(id: &str, kind: Kind, measure: &str, times: &str) -> Result<Self, ScheduleError> {
        Self::new(ItemSpec::new(id, kind, measure, times))
    }

    pub fn id(&self) -> &ItemId {
        &self.id
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// What meets the item's slots (a vital's code or a medication id).
    pub fn measure(&self) -> &str {
        &self.measure
    }

    pub fn times(&self) -> &Times {
        &self.times
    }

    /// From the end of a window (warning) to the urgent level.
    pub fn urgent_after(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.urgent_after_min))
    }

    /// How long after a window's end a reading taken late still resolves its slot.
    pub fn late_grace(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.late_grace_min))
    }
}

impl TryFrom<ItemSpec> for Item {
    type Error = ScheduleError;
    fn try_from(spec: ItemSpec) -> Result<Self, Self::Error> {
        Self::new(spec)
    }
}

impl From<Item> for ItemSpec {
    fn from(item: Item) -> Self {
        Self {
            id: item.id.0,
            kind: item.kind,
            measure: item.measure,
            times: item.times.to_string(),
            urgent_after_min: item.urgent_after_min,
            late_grace_min: item.late_grace_min,
        }
    }
}

/// A patient's care plan: schedule items and change rules, each id once across both, in the
/// patient's IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PlanSpec", into = "PlanSpec")]
pub struct Plan {
    tz: Tz,
    items: Vec<Item>,
    rules: Vec<Rule>,
}

/// A plan as given: the zone by its IANA name (`Europe/London`), the items and the rules (left
/// out when there are none, so a plan stored before rules existed reads the same and one
/// without rules is written as it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    pub tz: Tz,
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

impl Plan {
    /// A plan without rules. Refuses an item id given twice. An empty plan is valid (a patient
    /// just enrolled).
    pub fn new(tz: Tz, items: Vec<Item>) -> Result<Self, ScheduleError> {
        Self::with_rules(tz, items, Vec::new())
    }

    /// A plan with change rules: refuses an id given twice among the items and the rules
    /// together ([`ScheduleError::DuplicateItem`] between two items,
    /// [`ScheduleError::DuplicateRule`] where a rule is one of the two).
    pub fn with_rules(tz: Tz, items: Vec<Item>, rules: Vec<Rule>) -> Result<Self, ScheduleError> {
        // (id, is a rule), sorted: a repeated id is two neighbours.
        let mut ids: Vec<(&ItemId, bool)> = items
            .iter()
            .map(|i| (i.id(), false))
            .chain(rules.iter().map(|r| (r.id(), true)))
            .collect();
        ids.sort();
        if let Some(pair) = ids.windows(2).find(|p| p[0].0 == p[1].0) {
            let id = pair[0].0.to_string();
            return Err(if pair[1].1 {
                ScheduleError::DuplicateRule(id)
            } else {
                ScheduleError::DuplicateItem(id)
            });
        }
        Ok(Self { tz, items, rules })
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn item(&self, id: &ItemId) -> Option<&Item> {
        self.items.iter().find(|i| i.id() == id)
    }

    /// The change rules, as given.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl TryFrom<PlanSpec> for Plan {
    type Error = ScheduleError;
    fn try_from(spec: PlanSpec) -> Result<Self, Self::Error> {
        Self::with_rules(spec.tz, spec.items, spec.rules)
    }
}

impl From<Plan> for PlanSpec {
    fn from(plan: Plan) -> Self {
        Self {
            tz: plan.tz,
            items: plan.items,
            rules: plan.rules,
        }
    }
}

/// Parses a zone by its IANA name; `None` for an unknown name.
pub fn zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &str) {
        match text.parse::<Times>() {
            Ok(times) => assert_eq!(times.to_string(), expect, "{text}"),
            Err(e) => assert_eq!(format!("error: {e}"), expect, "{text}"),
        }
    }

    #[test]
    fn parses_the_forms_of_the_issue() {
        check("07:00-10:00, 18:00-21:00", "07:00-10:00, 18:00-21:00");
        check("18:00-21:00,07:00-10:00", "07:00-10:00, 18:00-21:00");
        check("06:00 - 10:00", "06:00-10:00");
        check("3/day 08:00-20:00", "08:00-12:00, 12:00-16:00, 16:00-20:00");
        check("08:00 ± 1h", "07:00-09:00");
        check("08:00 +- 30m, 20:00+/-1h30m", "07:30-08:30, 18:30-21:30");
        check("7:05-7:35", "07:05-07:35");
        check("06:00-10:00 on mon,thu", "06:00-10:00 on mon,thu");
        check("06:00-10:00 ON Thu, Mon", "06:00-10:00 on mon,thu");
    }

    #[test]
    fn midnight_and_whole_days() {
        check("22:00-02:00", "22:00-02:00");
        check("22:00-00:00", "22:00-24:00");
        check("22:00-24:00", "22:00-24:00");
        check("00:00-24:00", "00:00-24:00");
        check("00:30 ± 1h", "23:30-01:30");
        // Sorted by start of day: a window's index is its place here.
        check("2/day 20:00-08:00", "02:00-08:00, 20:00-02:00");
        check("7/day 00:00-24:00", "00:00-03:25, 03:25-06:50, 06:50-10:15, 10:15-13:40, 13:40-17:05, 17:05-20:30, 20:30-24:00");
        check("12:00 ± 12h", "00:00-24:00");
        check("06:00 for 4h", "06:00-10:00");
        check("06:00 for 24h", "06:00 for 24h");
        check(
            "06:00 for 24h, 07:00-08:00",
            "error: windows 06:00 for 24h and 07:00-08:00 overlap",
        );
        check(
            "06:00 for 25h",
            "error: window `06:00 +1500 min` is empty or longer than a day",
        );
        check(
            "06:00-06:00",
            "error: window `06:00-06:00` is empty or longer than a day",
        );
    }

    #[test]
    fn refuses_with_a_reason() {
        check(
            "",
            "error: empty schedule: give at least one window, e.g. `07:00-10:00`",
        );
        check(
            "07:00-07:00",
            "error: window `07:00-07:00` is empty or longer than a day",
        );
        check(
            "07:00-10:00, 09:00-11:00",
            "error: windows 07:00-10:00 and 09:00-11:00 overlap",
        );
        check(
            "22:00-08:00, 07:00-09:00",
            "error: windows 22:00-08:00 and 07:00-09:00 overlap",
        );
        check(
            "25:00-26:00",
            "error: `25:00` is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)",
        );
        check(
            "24:00-02:00",
            "error: `24:00` is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)",
        );
        check(
            "07:60-08:00",
            "error: `07:60` is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)",
        );
        check(
            "7-8",
            "error: `7` is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)",
        );
        check(
            "morning",
            "error: `morning` is not a window (`HH:MM-HH:MM` or `HH:MM ± 1h`)",
        );
        check(
            "08:00 ± 0m",
            "error: window `08:00 +- 0m` is empty or longer than a day",
        );
        check(
            "08:00 ± 13h",
            "error: window `08:00 +- 13h` is empty or longer than a day",
        );
        check(
            "08:00 ± soon",
            "error: `soon` is not a duration (e.g. `1h`, `30m`, `1h30m`)",
        );
        check(
            "0/day 08:00-20:00",
            "error: `0` is not a count a day (`N/day` with N from 1 to 24, then one window)",
        );
        check(
            "25/day 00:00-24:00",
            "error: `25` is not a count a day (`N/day` with N from 1 to 24, then one window)",
        );
        check(
            "06:00-10:00 on someday",
            "error: `someday` is not a day of the week (mon, tue, wed, thu, fri, sat, sun)",
        );
        check(
            "07:00-10:00,",
            "error: `` is not a window (`HH:MM-HH:MM` or `HH:MM ± 1h`)",
        );
    }

    #[test]
    fn adjacent_windows_are_allowed() {
        check("07:00-10:00, 10:00-13:00", "07:00-10:00, 10:00-13:00");
        check("08:00-20:00, 20:00-08:00", "08:00-20:00, 20:00-08:00");
    }

    #[test]
    fn canonical_text_reads_back_to_the_same_schedule() {
        for text in [
            "3/day 07:00-22:00 on sat,sun",
            "23:00 ± 2h, 12:00-13:00",
            "00:00-24:00",
        ] {
            let times: Times = text.parse().expect(text);
            assert_eq!(times.to_string().parse::<Times>().as_ref(), Ok(&times));
        }
    }

    #[test]
    fn item_ids_and_delays_are_checked() {
        assert_eq!(
            Item::parse("BP", Kind::Reading, "NIBP_SYS", "07:00-10:00"),
            Err(ScheduleError::BadId("BP".into()))
        );
        let mut spec = ItemSpec::new("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00");
        spec.urgent_after_min = MAX_DELAY_MIN + 1;
        assert_eq!(
            Item::new(spec),
            Err(ScheduleError::BadDelay(MAX_DELAY_MIN + 1))
        );
        for bad in ["", "NIBP SYS", "x".repeat(33).as_str(), "dose;drop"] {
            assert_eq!(
                Item::parse("bp", Kind::Reading, bad, "07:00-10:00"),
                Err(ScheduleError::BadMeasure(bad.into())),
                "{bad:?}"
            );
        }
        let item = Item::parse("bp", Kind::Reading, " NIBP_SYS ", "07:00-10:00").unwrap();
        assert_eq!(item.measure(), "NIBP_SYS");
    }

    #[test]
    fn serde_goes_through_the_validator() {
        let item =
            Item::parse("bp", Kind::Reading, "NIBP_SYS", "18:00-21:00, 07:00-10:00").unwrap();
        let json = serde_json::to_string(&item).unwrap();
        assert_eq!(
            json,
            r#"{"id":"bp","kind":"reading","measure":"NIBP_SYS","times":"07:00-10:00, 18:00-21:00","urgent_after_min":60,"late_grace_min":120}"#
        );
        assert_eq!(serde_json::from_str::<Item>(&json).unwrap(), item);
        let bad = r#"{"id":"bp","kind":"reading","measure":"NIBP_SYS","times":"07:00-10:00, 09:00-11:00"}"#;
        let err = serde_json::from_str::<Item>(bad).unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");

        let plan = Plan::new(zone("Europe/London").unwrap(), vec![item.clone()]).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        assert!(
            json.starts_with(r#"{"tz":"Europe/London","items":[{"id":"bp""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
        let twice = format!(
            r#"{{"tz":"UTC","items":[{0},{0}]}}"#,
            serde_json::to_string(&item).unwrap()
        );
        let err = serde_json::from_str::<Plan>(&twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("appears twice"), "{err}");
        assert!(serde_json::from_str::<Plan>(r#"{"tz":"Mars/Olympus","items":[]}"#).is_err());
    }

    #[test]
    fn plans_carry_rules_with_ids_unique_across_items_and_rules() {
        use crate::rules::RuleSpec;
        let tz = zone("Europe/London").unwrap();
        let weight = Item::parse("weight", Kind::Reading, "WEIGHT", "06:00-10:00").unwrap();
        let gain = Rule::new(RuleSpec::rise("weight-gain", "WEIGHT", 2.0, "3d")).unwrap();
        let sbp = Rule::new(RuleSpec::above("sbp-high", "NIBP_SYS", 140.0, 3, 5)).unwrap();
        let plan =
            Plan::with_rules(tz, vec![weight.clone()], vec![gain.clone(), sbp.clone()]).unwrap();
        assert_eq!(plan.rules(), [gain.clone(), sbp.clone()]);
        assert_eq!(plan.items(), std::slice::from_ref(&weight));
        assert!(Plan::new(tz, vec![weight.clone()])
            .unwrap()
            .rules()
            .is_empty());

        // Serialised with its rules, read back through the validators.
        let json = serde_json::to_string(&plan).unwrap();
        assert!(
            json.ends_with(
                r#""rules":[{"id":"weight-gain","measure":"WEIGHT","rise":2.0,"within":"3d"},{"id":"sbp-high","measure":"NIBP_SYS","above":140.0,"n":3,"m":5}]}"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
        let bad = json.replace(r#""n":3"#, r#""n":6"#);
        let err = serde_json::from_str::<Plan>(&bad).unwrap_err().to_string();
        assert!(err.contains("6 of the last 5 is not a count"), "{err}");

        // A plan without rules is written as before rules existed, and such a plan still reads.
        let old = Plan::new(tz, vec![weight.clone()]).unwrap();
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("rules"), "{json}");
        let stored = r#"{"tz":"Europe/London","items":[{"id":"weight","kind":"reading","measure":"WEIGHT","times":"06:00-10:00","urgent_after_min":60,"late_grace_min":120}]}"#;
        assert_eq!(json, stored);
        assert_eq!(serde_json::from_str::<Plan>(stored).unwrap(), old);

        // One set of ids: an item's and a rule's, or two rules', clash.
        let named = |id: &str| Rule::new(RuleSpec::rise(id, "WEIGHT", 2.0, "3d")).unwrap();
        assert_eq!(
            Plan::with_rules(tz, vec![weight.clone()], vec![named("weight")]),
            Err(ScheduleError::DuplicateRule("weight".into()))
        );
        assert_eq!(
            Plan::with_rules(tz, vec![], vec![gain.clone(), sbp, gain]),
            Err(ScheduleError::DuplicateRule("weight-gain".into()))
        );
        assert_eq!(
            Plan::with_rules(tz, vec![weight.clone(), weight], vec![]),
            Err(ScheduleError::DuplicateItem("weight".into()))
        );
        assert_eq!(
            ScheduleError::DuplicateRule("weight".into()).to_string(),
            "rule `weight` appears twice in the plan, or has an item's id (items and rules share \
             one set of ids)"
        );
    }
}
