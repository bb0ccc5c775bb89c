//! Alarm evaluation: a pure, deterministic state machine. It is fed readings (with their own
//! timestamps) and answers with alarm events; it does no I/O and reads no clock, so every rule
//! is unit-testable.
//!
//! This is the basic threshold evaluator: a limit per vital and direction, each with an
//! IEC 60601-1-8 priority. A reading past the limit raises the alarm once; a reading back inside
//! clears it. A "no reading" (`None`) neither raises nor clears: an alarm is never silently
//! dropped because a sensor stopped reporting. Nor does a reading that is not alarmable
//! (preliminary, cancelled, entered in error).

use std::collections::BTreeMap;

use crate::codes::Vital;
use crate::telemetry::{BedId, Reading};

/// Alarm priority (IEC 60601-1-8). Ordered: `High > Medium > Low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// The IEC 60601-1-8 text marker.
    pub fn marker(self) -> &'static str {
        match self {
            Priority::Low => "*",
            Priority::Medium => "**",
            Priority::High => "***",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Low,
    High,
}

/// One alarm limit: the condition is present while the value is below (`Low`) or above (`High`)
/// the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub vital: Vital,
    pub direction: Direction,
    pub threshold: f64,
    pub priority: Priority,
}

impl Limit {
    pub fn code(&self) -> String {
        let dir = match self.direction {
            Direction::Low => "LOW",
            Direction::High => "HIGH",
        };
        format!("{}_{dir}", self.vital.name())
    }

    fn label(&self) -> String {
        let name = match self.vital {
            Vital::SpO2 => "SpO2",
            v => v.name(),
        };
        let dir = match self.direction {
            Direction::Low => "LOW",
            Direction::High => "HIGH",
        };
        format!("{name} {dir}")
    }

    fn breached(&self, value: f64) -> bool {
        match self.direction {
            Direction::Low => value < self.threshold,
            Direction::High => value > self.threshold,
        }
    }
}

/// Adult default limits used until per-patient limits exist.
pub fn default_limits() -> Vec<Limit> {
    vec![
        Limit {
            vital: Vital::Hr,
            direction: Direction::Low,
            threshold: 50.0,
            priority: Priority::Medium,
        },
        Limit {
            vital: Vital::Hr,
            direction: Direction::High,
            threshold: 120.0,
            priority: Priority::Medium,
        },
        Limit {
            vital: Vital::SpO2,
            direction: Direction::Low,
            threshold: 90.0,
            priority: Priority::High,
        },
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmEventKind {
    Raise,
    Clear,
}

impl AlarmEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmEventKind::Raise => "raise",
            AlarmEventKind::Clear => "clear",
        }
    }
}

/// Something that happened to an alarm; persisted as the alarm history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvent {
    pub t_ms: i64,
    pub bed: BedId,
    /// `ward/bed/CODE`: stable for one alarm condition of one bed.
    pub alarm_id: String,
    pub code: String,
    pub kind: AlarmEventKind,
    pub priority: Priority,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub message: String,
}

/// An alarm condition currently present.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlarm {
    pub id: String,
    pub bed: BedId,
    pub code: String,
    pub label: String,
    pub priority: Priority,
    pub since_ms: i64,
    /// The most recent value seen while the condition is present.
    pub value: Option<f64>,
    pub limit: Option<f64>,
}

/// The evaluator's state: limits and the alarms currently present.
#[derive(Debug, Clone)]
pub struct AlarmEvaluator {
    limits: Vec<Limit>,
    active: BTreeMap<String, ActiveAlarm>,
}

impl AlarmEvaluator {
    pub fn new(limits: Vec<Limit>) -> Self {
        AlarmEvaluator {
            limits,
            active: BTreeMap::new(),
        }
    }

    /// Evaluate one reading of one bed; returns the events it causes (possibly none).
    pub fn observe(&mut self, bed: &BedId, reading: &Reading) -> Vec<AlarmEvent> {
        let Some(value) = reading.value.filter(|_| reading.alarmable()) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        for limit in self.limits.iter().filter(|l| l.vital == reading.vital) {
            let code = limit.code();
            let id = format!("{}/{code}", bed.key());
            let breached = limit.breached(value);
            match (self.active.get_mut(&id), breached) {
                (Some(a), true) => a.value = Some(value),
                (None, true) => {
                    let label = limit.label();
                    let message = format!(
                        "{label} {} {} {}",
                        fmt_value(value),
                        if limit.direction == Direction::Low {
                            "<"
                        } else {
                            ">"
                        },
                        fmt_value(limit.threshold)
                    );
                    self.active.insert(
                        id.clone(),
                        ActiveAlarm {
                            id: id.clone(),
                            bed: bed.clone(),
                            code: code.clone(),
                            label,
                            priority: limit.priority,
                            since_ms: reading.t_ms,
                            value: Some(value),
                            limit: Some(limit.threshold),
                        },
                    );
                    events.push(AlarmEvent {
                        t_ms: reading.t_ms,
                        bed: bed.clone(),
                        alarm_id: id,
                        code,
                        kind: AlarmEventKind::Raise,
                        priority: limit.priority,
                        value: Some(value),
                        limit: Some(limit.threshold),
                        message,
                    });
                }
                (Some(_), false) => {
                    if let Some(a) = self.active.remove(&id) {
                        events.push(AlarmEvent {
                            t_ms: reading.t_ms,
                            bed: bed.clone(),
                            alarm_id: id,
                            code,
                            kind: AlarmEventKind::Clear,
                            priority: a.priority,
                            value: Some(value),
                            limit: a.limit,
                            message: format!("{} cleared at {}", a.label, fmt_value(value)),
                        });
                    }
                }
                (None, false) => {}
            }
        }
        events
    }

    /// Alarms present now, highest priority first, then oldest first.
    pub fn active(&self) -> Vec<ActiveAlarm> {
        let mut v: Vec<ActiveAlarm> = self.active.values().cloned().collect();
        v.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.since_ms.cmp(&b.since_ms))
                .then(a.id.cmp(&b.id))
        });
        v
    }
}

fn fmt_value(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(vital: Vital, value: Option<f64>, t_ms: i64) -> Reading {
        Reading::new(vital, value, t_ms)
    }

    /// Feed a sequence of (vital, value) readings one second apart; collect (kind, code) events.
    fn run(seq: &[(Vital, Option<f64>)]) -> (Vec<(AlarmEventKind, String)>, AlarmEvaluator) {
        let mut ev = AlarmEvaluator::new(default_limits());
        let bed = BedId::new("4W", "01");
        let mut out = Vec::new();
        for (i, (v, x)) in seq.iter().enumerate() {
            for e in ev.observe(&bed, &reading(*v, *x, i as i64 * 1000)) {
                out.push((e.kind, e.code));
            }
        }
        (out, ev)
    }

    use AlarmEventKind::{Clear, Raise};
    use Vital::{Hr, SpO2};

    #[test]
    fn raise_once_then_clear() {
        let (events, ev) = run(&[
            (SpO2, Some(97.0)),
            (SpO2, Some(89.0)),
            (SpO2, Some(85.0)),
            (SpO2, Some(95.0)),
        ]);
        assert_eq!(
            events,
            vec![(Raise, "SPO2_LOW".into()), (Clear, "SPO2_LOW".into())]
        );
        assert!(ev.active().is_empty());
    }

    #[test]
    fn threshold_itself_is_not_a_breach() {
        let (events, _) = run(&[(Hr, Some(120.0)), (Hr, Some(50.0)), (SpO2, Some(90.0))]);
        assert!(events.is_empty());
    }

    #[test]
    fn no_reading_never_clears_an_alarm() {
        let (events, ev) = run(&[(Hr, Some(131.0)), (Hr, None), (Hr, None)]);
        assert_eq!(events, vec![(Raise, "HR_HIGH".into())]);
        let active = ev.active();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].value, Some(131.0));
        assert_eq!(active[0].priority, Priority::Medium);
    }

    #[test]
    fn active_sorted_by_priority_and_message_text() {
        let mut ev = AlarmEvaluator::new(default_limits());
        let bed = BedId::new("4W", "02");
        let e1 = ev.observe(&bed, &reading(Hr, Some(130.5), 1000));
        let e2 = ev.observe(&bed, &reading(SpO2, Some(84.0), 2000));
        assert_eq!(e1[0].message, "HR HIGH 130.5 > 120");
        assert_eq!(e2[0].message, "SpO2 LOW 84 < 90");
        assert_eq!(e2[0].alarm_id, "4W/02/SPO2_LOW");
        let codes: Vec<_> = ev.active().into_iter().map(|a| a.code).collect();
        assert_eq!(codes, ["SPO2_LOW", "HR_HIGH"]);
    }

    #[test]
    fn non_final_results_never_alarm_nor_clear() {
        use crate::telemetry::ObsStatus;
        let mut ev = AlarmEvaluator::new(default_limits());
        let bed = BedId::new("4W", "01");
        for status in [
            ObsStatus::Cancelled,
            ObsStatus::EnteredInError,
            ObsStatus::Preliminary,
        ] {
            let r = Reading {
                status,
                ..Reading::new(SpO2, Some(70.0), 0)
            };
            assert!(ev.observe(&bed, &r).is_empty(), "{status:?}");
        }
        assert_eq!(
            ev.observe(&bed, &Reading::new(SpO2, Some(80.0), 1)).len(),
            1
        );
        let r = Reading {
            status: ObsStatus::EnteredInError,
            ..Reading::new(SpO2, Some(98.0), 2)
        };
        assert!(
            ev.observe(&bed, &r).is_empty(),
            "an erroneous value cannot clear"
        );
        assert_eq!(ev.active().len(), 1);
    }

    #[test]
    fn beds_are_independent() {
        let mut ev = AlarmEvaluator::new(default_limits());
        let a = BedId::new("4W", "01");
        let b = BedId::new("4W", "02");
        assert_eq!(ev.observe(&a, &reading(Hr, Some(40.0), 0)).len(), 1);
        assert_eq!(ev.observe(&b, &reading(Hr, Some(40.0), 0)).len(), 1);
        assert_eq!(ev.observe(&a, &reading(Hr, Some(70.0), 1)).len(), 1);
        let left: Vec<_> = ev.active().into_iter().map(|a| a.bed.key()).collect();
        assert_eq!(left, ["4W/02"]);
    }
}
