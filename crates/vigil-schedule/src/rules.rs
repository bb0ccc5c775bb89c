//! Change rules of a care plan: per-patient tests on how a measure's readings *change*, beside
//! the fixed limits of the alarms ("weight gain ≥ 2 kg in 3 days", "systolic above 140 on 3 of
//! the last 5 readings").
//!
//! [`RuleSpec`] is a rule as given (a form, a file); [`Rule::new`] is its one validator, which
//! serde goes through too. [`Rule::evaluate`] is a pure function of the samples it is given: no
//! clock, no I/O; which readings are a rule's samples (its measure, the patient's stay) is the
//! caller's choice.
//!
//! # Forms
//! - **Rise** (`rise = 2, within = "3d"`): at a sample `s`, the rule holds if some sample taken
//!   *strictly before* `s` and at most `within` before it (exactly `within` apart counts) is
//!   lower by at least `by` (a change of exactly `by` counts). The comparison is against the
//!   *lowest* value in that look-back (the earliest of equal lowest values). **Fall** is the
//!   mirror: the highest value in the look-back, a drop of at least `by`. A change is compared
//!   with a tolerance of a billionth of the figures' size, so that decimal readings differing by
//!   exactly `by` (37.2 → 37.3 for 0.1) count although binary floating point makes their
//!   difference a hair smaller.
//! - **Above** (`above = 140, n = 3, m = 5`): at a sample `s`, among the last `m` samples up to
//!   and including `s` (all of them while there are fewer than `m`), at least `n` are
//!   *strictly* above the threshold. With fewer than `m` samples it can still hold, once `n` of
//!   them are above. **Below** is the mirror (strictly below). No tolerance: a reading equal to
//!   the threshold is neither above nor below it.
//!
//! # Samples and hits
//! - Samples come in any order: [`Rule::evaluate`] sorts them by `taken` and works on that order,
//!   so a late batch upload lands where it belongs. Two samples taken at the same instant are
//!   ordered by value (lower first), so the order they were given in never matters; the same
//!   reading twice (same instant, same value: a redelivery) counts once. Non-finite values are
//!   ignored.
//! - A [`Hit`] is emitted at each sample where the rule *turns* true: it did not hold at the
//!   previous sample (or there is none). While it stays true there is no further hit; once it
//!   has been false, a later true is a new hit. A hit carries the sample's instant and value and
//!   a short sentence with the figures ("+2.4 since 2026-03-02 07:10 UTC (78.0 → 80.4)",
//!   "4 of the last 5 above 140").
//!
//! # Validation ([`Rule::new`])
//! The id has the syntax of an item's ([`ItemId::parse`]); the measure is checked as an item's
//! (the caller checks that it names a vital); exactly one form: `rise` or `fall` with `within`,
//! or `above` or `below` with `n` and `m` (a mix, or a missing field, is refused saying which
//! form is expected); a change `by` finite and above 0; a threshold finite; `1 <= n <= m <= 50`;
//! `within` read by [`parse_within`] (`3d`, `72h`, `90m`), above 0 and at most 31 days.

use std::collections::VecDeque;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::item::{parse_measure, ItemId, ScheduleError};

/// At most this many readings in an "`n` of the last `m`" rule (`m`).
pub const MAX_LAST: u32 = 50;
/// The longest look-back of a rise or fall rule, in days.
pub const MAX_WITHIN_DAYS: i64 = 31;

const MINUTES_PER_DAY: i64 = 24 * 60;
/// Relative tolerance of a change's comparison with `by` (see the module's doc).
const CHANGE_TOLERANCE: f64 = 1e-9;

/// One reading of a rule's measure: when the device says it was taken, and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub taken: DateTime<Utc>,
    pub value: f64,
}

/// Where a rule turned true: the sample's instant and value, and the figures in a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub at: DateTime<Utc>,
    pub value: f64,
    pub detail: String,
}

/// What a rule tests (validated in a [`Rule`]; see the module's doc for the exact meaning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Test {
    /// A rise of at least `by` from the lowest reading at most `within` earlier.
    Rise { by: f64, within: Duration },
    /// A drop of at least `by` from the highest reading at most `within` earlier.
    Fall { by: f64, within: Duration },
    /// At least `n` of the last `m` readings strictly above `threshold`.
    Above { threshold: f64, n: u32, m: u32 },
    /// At least `n` of the last `m` readings strictly below `threshold`.
    Below { threshold: f64, n: u32, m: u32 },
}

/// `rises by ≥ 2 within 3d`, `falls by ≥ 5 within 72h`, `> 140 on 3 of the last 5`,
/// `< 90 on 2 of the last 2`.
impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Test::Rise { by, within } => {
                write!(f, "rises by ≥ {by} within {}", within_text(within))
            }
            Test::Fall { by, within } => {
                write!(f, "falls by ≥ {by} within {}", within_text(within))
            }
            Test::Above { threshold, n, m } => write!(f, "> {threshold} on {n} of the last {m}"),
            Test::Below { threshold, n, m } => write!(f, "< {threshold} on {n} of the last {m}"),
        }
    }
}

/// A rule as given (a form, a file, a command line): checked by [`Rule::new`]. Exactly one of
/// `rise`, `fall` (each with `within`), `above`, `below` (each with `n` and `m`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The rule's id in its plan: an item id's syntax, unique across the plan's items and rules.
    pub id: String,
    /// The vital whose readings the rule tests (`WEIGHT`, `NIBP_SYS`).
    pub measure: String,
    /// A rise of at least this much within `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rise: Option<f64>,
    /// A drop of at least this much within `within`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<f64>,
    /// The look-back of `rise` or `fall`: `3d`, `72h`, `90m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// At least `n` of the last `m` readings strictly above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// At least `n` of the last `m` readings strictly below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<u32>,
}

impl RuleSpec {
    /// `measure` rises by at least `by` within `within` (`"3d"`).
    pub fn rise(id: &str, measure: &str, by: f64, within: &str) -> Self {
        Self {
            rise: Some(by),
            within: Some(within.to_string()),
            ..Self::named(id, measure)
        }
    }

    /// `measure` falls by at least `by` within `within` (`"3d"`).
    pub fn fall(id: &str, measure: &str, by: f64, within: &str) -> Self {
        Self {
            fall: Some(by),
            within: Some(within.to_string()),
            ..Self::named(id, measure)
        }
    }

    /// At least `n` of the last `m` readings of `measure` strictly above `threshold`.
    pub fn above(id: &str, measure: &str, threshold: f64, n: u32, m: u32) -> Self {
        Self {
            above: Some(threshold),
            n: Some(n),
            m: Some(m),
            ..Self::named(id, measure)
        }
    }

    /// At least `n` of the last `m` readings of `measure` strictly below `threshold`.
    pub fn below(id: &str, measure: &str, threshold: f64, n: u32, m: u32) -> Self {
        Self {
            below: Some(threshold),
            n: Some(n),
            m: Some(m),
            ..Self::named(id, measure)
        }
    }

    fn named(id: &str, measure: &str) -> Self {
        Self {
            id: id.to_string(),
            measure: measure.to_string(),
            ..Self::default()
        }
    }
}

/// A change rule of a care plan, validated. Serialised as a [`RuleSpec`] (`within` as its
/// canonical text); deserialising goes through [`Rule::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleSpec", into = "RuleSpec")]
pub struct Rule {
    id: ItemId,
    measure: String,
    test: Test,
}

/// Every figure of a rule is finite ([`Rule::new`] refuses the others), so equality is an
/// equivalence (a plan with rules stays `Eq`).
impl Eq for Rule {}

/// The forms a spec may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Rise,
    Fall,
    Above,
    Below,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Rise => "rise",
            Form::Fall => "fall",
            Form::Above => "above",
            Form::Below => "below",
        }
    }
}

impl Rule {
    /// The one validator of a rule (see the module's doc).
    pub fn new(spec: RuleSpec) -> Result<Self, ScheduleError> {
        let id = ItemId::parse(&spec.id)?;
        let measure = parse_measure(&spec.measure)?;
        let form = |why: String| ScheduleError::RuleForm {
            id: spec.id.clone(),
            why,
        };
        let given: Vec<(Form, f64)> = [
            (Form::Rise, spec.rise),
            (Form::Fall, spec.fall),
            (Form::Above, spec.above),
            (Form::Below, spec.below),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .collect();
        let (kind, figure) = match given.as_slice() {
            [] => return Err(form("no test given".into())),
            [one] => *one,
            [(a, _), (b, _), ..] => {
                return Err(form(format!(
                    "`{}` and `{}` given, a rule has one",
                    a.name(),
                    b.name()
                )))
            }
        };
        let test = match kind {
            Form::Rise | Form::Fall => {
                if spec.n.is_some() || spec.m.is_some() {
                    return Err(form(format!(
                        "`n` and `m` belong to `above` or `below`, not to `{}`",
                        kind.name()
                    )));
                }
                let Some(within) = spec.within.as_deref() else {
                    return Err(form(format!(
                        "`{}` needs `within` (e.g. within = \"3d\")",
                        kind.name()
                    )));
                };
                if !(figure.is_finite() && figure > 0.0) {
                    return Err(ScheduleError::BadChange {
                        id: spec.id.clone(),
                        value: figure.to_string(),
                    });
                }
                let within = parse_within(within)?;
                if kind == Form::Rise {
                    Test::Rise { by: figure, within }
                } else {
                    Test::Fall { by: figure, within }
                }
            }
            Form::Above | Form::Below => {
                if spec.within.is_some() {
                    return Err(form(format!(
                        "`within` belongs to `rise` or `fall`, not to `{}`",
                        kind.name()
                    )));
                }
                let (Some(n), Some(m)) = (spec.n, spec.m) else {
                    return Err(form(format!(
                        "`{}` needs `n` and `m`: at least n of the last m readings \
                         (e.g. n = 3, m = 5)",
                        kind.name()
                    )));
                };
                if !figure.is_finite() {
                    return Err(ScheduleError::BadThreshold {
                        id: spec.id.clone(),
                        value: figure.to_string(),
                    });
                }
                if n == 0 || n > m || m > MAX_LAST {
                    return Err(ScheduleError::BadLast {
                        id: spec.id.clone(),
                        n,
                        m,
                    });
                }
                if kind == Form::Above {
                    Test::Above {
                        threshold: figure,
                        n,
                        m,
                    }
                } else {
                    Test::Below {
                        threshold: figure,
                        n,
                        m,
                    }
                }
            }
        };
        Ok(Self { id, measure, test })
    }

    /// The rule's id in its plan (the syntax of an item's).
    pub fn id(&self) -> &ItemId {
        &self.id
    }

    /// The measure whose readings it tests (a vital's code).
    pub fn measure(&self) -> &str {
        &self.measure
    }

    pub fn test(&self) -> &Test {
        &self.test
    }

    /// The hits of the rule over `samples` (any order; see the module's doc), in time order.
    pub fn evaluate(&self, samples: &[Sample]) -> Vec<Hit> {
        let samples = normalise(samples);
        let holds = match self.test {
            Test::Rise { by, within } => change(&samples, by, within, true),
            Test::Fall { by, within } => change(&samples, by, within, false),
            Test::Above { threshold, n, m } => last(&samples, threshold, n, m, true),
            Test::Below { threshold, n, m } => last(&samples, threshold, n, m, false),
        };
        let mut hits = Vec::new();
        let mut before = false;
        for (s, detail) in samples.iter().zip(holds) {
            let now = detail.is_some();
            if let (Some(detail), false) = (detail, before) {
                hits.push(Hit {
                    at: s.taken,
                    value: s.value,
                    detail,
                });
            }
            before = now;
        }
        hits
    }
}

/// `weight-gain: WEIGHT rises by ≥ 2 within 3d`, `sbp-high: NIBP_SYS > 140 on 3 of the last 5`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.id, self.measure, self.test)
    }
}

impl TryFrom<RuleSpec> for Rule {
    type Error = ScheduleError;
    fn try_from(spec: RuleSpec) -> Result<Self, Self::Error> {
        Self::new(spec)
    }
}

impl From<Rule> for RuleSpec {
    fn from(rule: Rule) -> Self {
        let (id, measure) = (rule.id.as_str(), rule.measure.as_str());
        match rule.test {
            Test::Rise { by, within } => RuleSpec::rise(id, measure, by, &within_text(within)),
            Test::Fall { by, within } => RuleSpec::fall(id, measure, by, &within_text(within)),
            Test::Above { threshold, n, m } => RuleSpec::above(id, measure, threshold, n, m),
            Test::Below { threshold, n, m } => RuleSpec::below(id, measure, threshold, n, m),
        }
    }
}

/// The one parser of a rule's look-back: a whole number of days, hours or minutes (`3d`, `72h`,
/// `90m`; case and spaces free), above 0 and at most [`MAX_WITHIN_DAYS`] days.
pub fn parse_within(text: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::BadWithin(text.to_string());
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (count, unit) = t.split_at(split);
    let count: i64 = count.parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "d" => MINUTES_PER_DAY,
        "h" => 60,
        "m" => 1,
        _ => return Err(bad()),
    };
    let minutes = count.checked_mul(per).ok_or_else(bad)?;
    if minutes <= 0 || minutes > MAX_WITHIN_DAYS * MINUTES_PER_DAY {
        return Err(bad());
    }
    Ok(Duration::minutes(minutes))
}

/// A look-back's canonical text: days, else hours, else minutes (`parse_within` reads it back).
fn within_text(within: Duration) -> String {
    let minutes = within.num_minutes();
    if minutes % MINUTES_PER_DAY == 0 {
        format!("{}d", minutes / MINUTES_PER_DAY)
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// The samples a rule works on: finite values, by instant then value, a repeated reading once.
fn normalise(samples: &[Sample]) -> Vec<Sample> {
    let mut out: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.value.is_finite())
        .collect();
    out.sort_by(|a, b| a.taken.cmp(&b.taken).then(a.value.total_cmp(&b.value)));
    out.dedup_by(|a, b| a.taken == b.taken && a.value.to_bits() == b.value.to_bits());
    out
}

/// Per sample, the detail if a rise (`up`) or a fall of at least `by` within `within` holds
/// there. A sliding window over the samples taken strictly before, at most `within` before,
/// keeping the candidates for its lowest (highest) value in a queue: linear time.
fn change(samples: &[Sample], by: f64, within: Duration, up: bool) -> Vec<Option<String>> {
    // Whether `a` is a better reference than `b` (lower for a rise, higher for a fall).
    let better = |a: f64, b: f64| if up { a < b } else { a > b };
    let mut out = Vec::with_capacity(samples.len());
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut next = 0;
    for (i, s) in samples.iter().enumerate() {
        while next < i && samples[next].taken < s.taken {
            let v = samples[next].value;
            while queue.back().is_some_and(|&b| better(v, samples[b].value)) {
                queue.pop_back();
            }
            queue.push_back(next);
            next += 1;
        }
        while queue
            .front()
            .is_some_and(|&f| s.taken - samples[f].taken > within)
        {
            queue.pop_front();
        }
        out.push(queue.front().and_then(|&f| {
            let from = samples[f];
            let moved = if up {
                s.value - from.value
            } else {
                from.value - s.value
            };
            let scale = s.value.abs().max(from.value.abs()).max(by);
            (moved + CHANGE_TOLERANCE * scale >= by).then(|| {
                format!(
                    "{}{} since {} ({} → {})",
                    if up { "+" } else { "-" },
                    figure(moved),
                    from.taken.format("%Y-%m-%d %H:%M UTC"),
                    figure(from.value),
                    figure(s.value)
                )
            })
        }));
    }
    out
}

/// Per sample, the detail if at least `n` of the last `m` samples (up to and including it) are
/// strictly above (`up`) or below `threshold`.
fn last(samples: &[Sample], threshold: f64, n: u32, m: u32, up: bool) -> Vec<Option<String>> {
    let beyond = |v: f64| if up { v > threshold } else { v < threshold };
    let (n, m) = (n as usize, m as usize);
    let mut count = 0usize;
    let mut out = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        if beyond(s.value) {
            count += 1;
        }
        if i >= m && beyond(samples[i - m].value) {
            count -= 1;
        }
        let of = (i + 1).min(m);
        out.push((count >= n).then(|| {
            format!(
                "{count} of the last {of} {} {threshold}",
                if up { "above" } else { "below" }
            )
        }));
    }
    out
}

/// A figure in a hit's sentence: one decimal (`78.0`), more only where the value needs them (up
/// to three).
fn figure(x: f64) -> String {
    for places in 1..3 {
        let text = format!("{x:.places$}");
        if text
            .parse::<f64>()
            .is_ok_and(|back| (back - x).abs() <= 1e-9 * x.abs().max(1.0))
        {
            return text;
        }
    }
    format!("{x:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// 2026-03-02T07:10:00Z plus `min` minutes.
    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 7, 10, 0).unwrap() + Duration::minutes(min)
    }

    fn samples(list: &[(i64, f64)]) -> Vec<Sample> {
        list.iter()
            .map(|&(min, value)| Sample {
                taken: at(min),
                value,
            })
            .collect()
    }

    fn rule(spec: RuleSpec) -> Rule {
        Rule::new(spec).expect("a valid rule")
    }

    /// The hits as (minute, value, detail).
    fn hits(rule: &Rule, list: &[(i64, f64)]) -> Vec<(i64, f64, String)> {
        rule.evaluate(&samples(list))
            .into_iter()
            .map(|h| ((h.at - at(0)).num_minutes(), h.value, h.detail))
            .collect()
    }

    const DAY: i64 = 24 * 60;

    #[test]
    fn weight_gain_in_three_days() {
        let r = rule(RuleSpec::rise("weight-gain", "WEIGHT", 2.0, "3d"));
        assert_eq!(r.to_string(), "weight-gain: WEIGHT rises by ≥ 2 within 3d");
        assert_eq!(
            hits(
                &r,
                &[
                    (0, 78.0),
                    (DAY, 79.1),
                    (2 * DAY, 80.4),
                    (2 * DAY + 60, 80.5)
                ]
            ),
            [(
                2 * DAY,
                80.4,
                "+2.4 since 2026-03-02 07:10 UTC (78.0 → 80.4)".to_string()
            )],
            "one hit where it turns true, none while it stays true"
        );
        // Slower than the rule: never.
        assert!(hits(&r, &[(0, 78.0), (2 * DAY, 79.0), (4 * DAY, 80.5)]).is_empty());
    }

    #[test]
    fn a_change_of_exactly_by_exactly_within_apart_counts() {
        let r = rule(RuleSpec::rise("gain", "WEIGHT", 2.0, "3d"));
        assert_eq!(hits(&r, &[(0, 78.0), (3 * DAY, 80.0)]).len(), 1);
        // A minute more apart: out of the look-back.
        assert!(hits(&r, &[(0, 78.0), (3 * DAY + 1, 80.0)]).is_empty());
        // A hair less than `by`: no.
        assert!(hits(&r, &[(0, 78.0), (DAY, 79.99)]).is_empty());
        // Decimal readings exactly `by` apart count, whatever binary floating point makes of
        // their difference (37.3 - 37.2 is 0.09999999999999432).
        let r = rule(RuleSpec::rise("fever", "TEMP", 0.1, "90m"));
        assert_eq!(
            hits(&r, &[(0, 37.2), (90, 37.3)]),
            [(
                90,
                37.3,
                "+0.1 since 2026-03-02 07:10 UTC (37.2 → 37.3)".to_string()
            )]
        );
    }

    #[test]
    fn the_look_back_uses_the_lowest_value_and_strictly_earlier_samples() {
        let r = rule(RuleSpec::rise("gain", "WEIGHT", 2.0, "72h"));
        // The lowest of the look-back (77.5), not the first or the last.
        assert_eq!(
            hits(&r, &[(0, 78.0), (60, 77.5), (120, 79.0), (180, 79.6)]),
            [(
                180,
                79.6,
                "+2.1 since 2026-03-02 08:10 UTC (77.5 → 79.6)".to_string()
            )]
        );
        // Two readings at the same instant are no change over time.
        assert!(hits(&r, &[(0, 78.0), (0, 81.0)]).is_empty());
    }

    #[test]
    fn a_fall_mirrors_a_rise_and_hits_again_after_it_was_false() {
        let r = rule(RuleSpec::fall("sbp-drop", "NIBP_SYS", 20.0, "1d"));
        assert_eq!(r.to_string(), "sbp-drop: NIBP_SYS falls by ≥ 20 within 1d");
        let got = hits(
            &r,
            &[
                (0, 130.0),
                (60, 108.0),
                (120, 105.0),
                // 2 days later: the look-back has only 105, no drop.
                (2 * DAY, 104.0),
                (2 * DAY + 60, 84.0),
            ],
        );
        assert_eq!(
            got,
            [
                (
                    60,
                    108.0,
                    "-22.0 since 2026-03-02 07:10 UTC (130.0 → 108.0)".to_string()
                ),
                (
                    2 * DAY + 60,
                    84.0,
                    "-20.0 since 2026-03-04 07:10 UTC (104.0 → 84.0)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn n_of_the_last_m() {
        let r = rule(RuleSpec::above("sbp-high", "NIBP_SYS", 140.0, 3, 5));
        assert_eq!(r.to_string(), "sbp-high: NIBP_SYS > 140 on 3 of the last 5");
        // 140 itself is not above.
        let got = hits(
            &r,
            &[
                (0, 150.0),
                (1, 140.0),
                (2, 145.0),
                (3, 141.0),
                (4, 150.0),
                (5, 120.0),
                (6, 120.0),
                (7, 120.0),
                (8, 130.0),
                (9, 142.0),
                (10, 143.0),
                (11, 144.0),
            ],
        );
        assert_eq!(
            got,
            [
                (3, 141.0, "3 of the last 4 above 140".to_string()),
                (11, 144.0, "3 of the last 5 above 140".to_string()),
            ]
        );
        // Fewer than m samples: holds once n of them are beyond.
        let r = rule(RuleSpec::below("spo2-low", "SPO2", 92.0, 2, 5));
        assert_eq!(r.to_string(), "spo2-low: SPO2 < 92 on 2 of the last 5");
        assert_eq!(
            hits(&r, &[(0, 90.0), (1, 91.0)]),
            [(1, 91.0, "2 of the last 2 below 92".to_string())]
        );
        assert!(hits(&r, &[(0, 90.0), (1, 92.0)]).is_empty());
    }

    #[test]
    fn order_duplicates_and_non_finite_values() {
        let r = rule(RuleSpec::above("sbp-high", "NIBP_SYS", 140.0, 2, 3));
        let list = [(0, 150.0), (5, 120.0), (10, 150.0)];
        let expect = hits(&r, &list);
        assert_eq!(
            expect,
            [(10, 150.0, "2 of the last 3 above 140".to_string())]
        );
        // A late batch lands where it belongs; a redelivered reading counts once; NaN and
        // infinities are ignored.
        let shuffled = [
            (10, 150.0),
            (0, 150.0),
            (10, 150.0),
            (3, f64::NAN),
            (5, 120.0),
            (7, f64::INFINITY),
        ];
        assert_eq!(hits(&r, &shuffled), expect);
        assert!(r.evaluate(&[]).is_empty());
    }

    #[test]
    fn within_has_one_parser() {
        for (text, min) in [
            ("3d", 3 * DAY),
            ("72h", 72 * 60),
            ("90m", 90),
            (" 2 D ", 2 * DAY),
            ("31d", 31 * DAY),
            ("744h", 31 * DAY),
        ] {
            assert_eq!(parse_within(text), Ok(Duration::minutes(min)), "{text}");
        }
        for bad in [
            "",
            "d",
            "3",
            "0d",
            "0m",
            "32d",
            "745h",
            "-1d",
            "+3d",
            "3w",
            "1d12h",
            "1.5d",
            "3 days",
            "99999999999999999999d",
        ] {
            assert_eq!(
                parse_within(bad),
                Err(ScheduleError::BadWithin(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!(within_text(Duration::minutes(90)), "90m");
        assert_eq!(within_text(Duration::minutes(72 * 60)), "3d");
        assert_eq!(within_text(Duration::minutes(30 * 60)), "30h");
    }

    fn refused(spec: RuleSpec) -> String {
        Rule::new(spec).expect_err("refused").to_string()
    }

    #[test]
    fn the_validator_says_which_form_is_expected() {
        let form = "; a rule is `rise` or `fall` with `within`, or `above` or `below` with `n` \
                    and `m`";
        let base = RuleSpec {
            id: "r".into(),
            measure: "WEIGHT".into(),
            ..RuleSpec::default()
        };
        assert_eq!(
            refused(base.clone()),
            format!("rule `r`: no test given{form}")
        );
        assert_eq!(
            refused(RuleSpec {
                above: Some(140.0),
                ..RuleSpec::rise("r", "WEIGHT", 2.0, "3d")
            }),
            format!("rule `r`: `rise` and `above` given, a rule has one{form}")
        );
        assert_eq!(
            refused(RuleSpec {
                n: Some(3),
                ..RuleSpec::rise("r", "WEIGHT", 2.0, "3d")
            }),
            format!("rule `r`: `n` and `m` belong to `above` or `below`, not to `rise`{form}")
        );
        assert_eq!(
            refused(RuleSpec {
                fall: Some(2.0),
                ..base.clone()
            }),
            format!("rule `r`: `fall` needs `within` (e.g. within = \"3d\"){form}")
        );
        assert_eq!(
            refused(RuleSpec {
                within: Some("3d".into()),
                ..RuleSpec::above("r", "NIBP_SYS", 140.0, 3, 5)
            }),
            format!("rule `r`: `within` belongs to `rise` or `fall`, not to `above`{form}")
        );
        assert_eq!(
            refused(RuleSpec {
                m: None,
                ..RuleSpec::below("r", "SPO2", 92.0, 2, 5)
            }),
            format!(
                "rule `r`: `below` needs `n` and `m`: at least n of the last m readings \
                 (e.g. n = 3, m = 5){form}"
            )
        );
    }

    #[test]
    fn the_validator_checks_every_figure() {
        for by in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                Rule::new(RuleSpec::rise("r", "WEIGHT", by, "3d")),
                Err(ScheduleError::BadChange {
                    id: "r".into(),
                    value: by.to_string()
                }),
                "{by}"
            );
        }
        assert_eq!(
            refused(RuleSpec::fall("r", "WEIGHT", 0.0, "3d")),
            "rule `r`: the change must be a finite number above 0, not 0"
        );
        assert_eq!(
            refused(RuleSpec::above("r", "NIBP_SYS", f64::NAN, 3, 5)),
            "rule `r`: the threshold must be a finite number, not NaN"
        );
        for (n, m) in [(0, 5), (6, 5), (1, 51), (0, 0)] {
            assert_eq!(
                Rule::new(RuleSpec::above("r", "NIBP_SYS", 140.0, n, m)),
                Err(ScheduleError::BadLast {
                    id: "r".into(),
                    n,
                    m
                }),
                "{n} of {m}"
            );
        }
        assert_eq!(
            refused(RuleSpec::above("r", "NIBP_SYS", 140.0, 6, 5)),
            "rule `r`: 6 of the last 5 is not a count (1 <= n <= m <= 50)"
        );
        for (n, m) in [(1, 1), (50, 50), (1, 50)] {
            assert!(Rule::new(RuleSpec::below("r", "SPO2", 92.0, n, m)).is_ok());
        }
        assert_eq!(
            Rule::new(RuleSpec::rise("r", "WEIGHT", 2.0, "32d")),
            Err(ScheduleError::BadWithin("32d".into()))
        );
        assert_eq!(
            Rule::new(RuleSpec::rise("Gain!", "WEIGHT", 2.0, "3d")),
            Err(ScheduleError::BadId("Gain!".into()))
        );
        for bad in ["", "  ", "NIBP SYS"] {
            assert_eq!(
                Rule::new(RuleSpec::rise("r", bad, 2.0, "3d")),
                Err(ScheduleError::BadMeasure(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            rule(RuleSpec::rise("r", " WEIGHT ", 2.0, "3d")).measure(),
            "WEIGHT"
        );
    }

    #[test]
    fn serde_goes_through_the_validator() {
        let r = rule(RuleSpec::rise("weight-gain", "WEIGHT", 2.0, "72h"));
        assert_eq!(
            *r.test(),
            Test::Rise {
                by: 2.0,
                within: Duration::days(3)
            }
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"id":"weight-gain","measure":"WEIGHT","rise":2.0,"within":"3d"}"#
        );
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);
        let r = rule(RuleSpec::above("sbp-high", "NIBP_SYS", 140.0, 3, 5));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"id":"sbp-high","measure":"NIBP_SYS","above":140.0,"n":3,"m":5}"#
        );
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);
        for bad in [
            r#"{"id":"r","measure":"WEIGHT","rise":2,"within":"3d","n":3}"#,
            r#"{"id":"r","measure":"WEIGHT","rise":2,"within":"3d","extra":1}"#,
            r#"{"id":"r","measure":"WEIGHT","rise":2}"#,
        ] {
            assert!(serde_json::from_str::<Rule>(bad).is_err(), "{bad}");
        }
    }
}
