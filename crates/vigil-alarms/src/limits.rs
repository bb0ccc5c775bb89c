//! Alarm limits and the ward profiles that initialise a patient's limits.
//!
//! Defaults are typical factory settings of bedside monitors and central stations (adult values
//! close to Philips IntelliVue / Mindray BeneVision factory defaults; paediatric and neonatal
//! ranges from the same vendors' age-group defaults and common NICU practice, e.g. neonatal SpO2
//! 88–95 % to limit hyperoxia). They are the responsible organisation's to change: every limit
//! is per patient and can be replaced through `EngineHandle::set_limits`.
//!
//! Condition delays (alarm fatigue, clinical.md §1): SpO2, RR and etCO2 10 s (short motion
//! artefacts do not alarm); HR, PR, NIBP, temperature and glucose none (HR is already averaged
//! over beats; NIBP, temperature and glucose are discrete, slow measurements).
//!
//! Home devices (issue 15): body weight has no default limit (an absolute weight says little;
//! what matters is a gain, e.g. about 2 kg over 3 days in heart failure, a change rule still to
//! come) but can be given one. Capillary glucose alarms by default at the thresholds diabetes
//! programmes use: below 70 mg/dL (3.9 mmol/L, hypoglycaemia "level 1" of the ADA Standards of
//! Care and ISPAD) at high priority, since a hypoglycaemia needs treating at once; above
//! 300 mg/dL (16.7 mmol/L, where programmes check ketones and call) at medium priority.
//! Neonates: below 47 mg/dL (2.6 mmol/L, the operational threshold commonly used for neonatal
//! hypoglycaemia) and above 180 mg/dL (10 mmol/L). `shared/reference/clinical.md` gives no
//! glucose or weight values; these are \[R\] (from research, not a standard the reference
//! gives) and the responsible organisation's to change.

use std::collections::BTreeSet;

use crate::codes::Vital;

use super::{fmt_value, Priority};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Low,
    High,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Low => "LOW",
            Direction::High => "HIGH",
        }
    }
}

/// One alarm limit: the condition is present while the value is below (`Low`) or above
/// (`High`) the threshold (the threshold itself is inside).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub vital: Vital,
    pub direction: Direction,
    pub threshold: f64,
    pub priority: Priority,
    /// The condition must persist this long before the alarm is raised (0 = at once).
    pub delay_ms: i64,
    /// A present condition clears only once the value is back inside by this margin.
    pub hysteresis: f64,
}

impl Limit {
    pub fn new(vital: Vital, direction: Direction, threshold: f64, priority: Priority) -> Limit {
        Limit {
            vital,
            direction,
            threshold,
            priority,
            delay_ms: 0,
            hysteresis: 0.0,
        }
    }

    pub fn delay(mut self, ms: i64) -> Limit {
        self.delay_ms = ms;
        self
    }

    pub fn hysteresis(mut self, margin: f64) -> Limit {
        self.hysteresis = margin;
        self
    }

    pub fn code(&self) -> String {
        format!("{}_{}", self.vital.name(), self.direction.as_str())
    }

    pub fn label(&self) -> String {
        format!("{} {}", vital_label(self.vital), self.direction.as_str())
    }

    /// Whether `value` is an alarm condition; `present` says whether the condition is present
    /// now (then the hysteresis margin applies).
    pub fn breached(&self, value: f64, present: bool) -> bool {
        let margin = if present { self.hysteresis } else { 0.0 };
        match self.direction {
            Direction::Low => value < self.threshold + margin,
            Direction::High => value > self.threshold - margin,
        }
    }

    /// The alarm text, in the words of the tile: "HR LOW 67 /min (limit 70)".
    pub fn message(&self, value: f64) -> String {
        format!(
            "{} {} {} (limit {})",
            self.label(),
            fmt_value(value),
            display_unit(self.vital),
            fmt_value(self.threshold)
        )
    }

    /// Why a limit is unusable, if it is.
    pub fn invalid(&self) -> Option<String> {
        if !self.threshold.is_finite() {
            return Some(format!("{}: threshold is not a number", self.code()));
        }
        if !self.hysteresis.is_finite() || self.hysteresis < 0.0 {
            return Some(format!("{}: hysteresis must be >= 0", self.code()));
        }
        if !(0..=600_000).contains(&self.delay_ms) {
            return Some(format!("{}: delay must be 0 to 600 s", self.code()));
        }
        None
    }
}

/// The range an alarm threshold of `vital` may be set to: wide enough for every ward profile,
/// narrow enough to catch a typing error (a heart-rate limit of 1200).
pub fn settable_range(vital: Vital) -> (f64, f64) {
    match vital {
        Vital::Hr | Vital::Pr => (15.0, 300.0),
        Vital::SpO2 => (50.0, 100.0),
        Vital::Rr => (2.0, 120.0),
        Vital::NibpSys => (30.0, 280.0),
        Vital::NibpDia => (10.0, 220.0),
        Vital::NibpMean => (20.0, 250.0),
        Vital::Temp => (30.0, 43.0),
        Vital::EtCo2 => (5.0, 100.0),
        Vital::Weight => (0.3, 500.0),
        Vital::Glucose => (20.0, 600.0),
    }
}

/// Why a set of limits must not be applied, if it must not: each limit valid
/// ([`Limit::invalid`]), each threshold inside [`settable_range`], no code twice, and for
/// every vital the low limit below the high limit (with room for both hysteresis margins).
pub fn validate(limits: &[Limit]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for l in limits {
        if let Some(why) = l.invalid() {
            return Err(why);
        }
        let (lo, hi) = settable_range(l.vital);
        if l.threshold < lo || l.threshold > hi {
            return Err(format!(
                "{}: {} is outside {} to {} {}",
                l.label(),
                fmt_value(l.threshold),
                fmt_value(lo),
                fmt_value(hi),
                l.vital.unit()
            ));
        }
        if !seen.insert(l.code()) {
            return Err(format!("{} given twice", l.code()));
        }
    }
    for low in limits.iter().filter(|l| l.direction == Direction::Low) {
        let high = limits
            .iter()
            .find(|h| h.vital == low.vital && h.direction == Direction::High);
        if let Some(high) = high {
            if low.threshold + low.hysteresis >= high.threshold - high.hysteresis {
                return Err(format!(
                    "{}: the low limit ({}) must be below the high limit ({}){}",
                    vital_label(low.vital),
                    fmt_value(low.threshold),
                    fmt_value(high.threshold),
                    if low.threshold < high.threshold {
                        format!(
                            " by more than {}",
                            fmt_value(low.hysteresis + high.hysteresis)
                        )
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    Ok(())
}

/// The unit a vital is shown in ("/min", "%", "mmHg", "°C", "kg", "mg/dL").
pub fn display_unit(v: Vital) -> &'static str {
    match v.unit() {
        "mm[Hg]" => "mmHg",
        "Cel" => "°C",
        "{beats}/min" => "/min",
        other => other,
    }
}

pub fn vital_label(v: Vital) -> &'static str {
    match v {
        Vital::Hr => "HR",
        Vital::Pr => "PR",
        Vital::SpO2 => "SpO2",
        Vital::Rr => "RR",
        Vital::NibpSys => "NIBP sys",
        Vital::NibpDia => "NIBP dia",
        Vital::NibpMean => "NIBP mean",
        Vital::Temp => "Temp",
        Vital::EtCo2 => "etCO2",
        Vital::Weight => "Weight",
        Vital::Glucose => "Glucose",
    }
}

/// A ward profile's defaults for one vital (see [`WardProfile::limits`]).
type Row = (
    Vital,
    Option<f64>,
    Option<f64>,
    Priority,
    Priority,
    i64,
    f64,
);

/// The patient population of a ward: selects default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WardProfile {
    #[default]
    Adult,
    Paediatric,
    Neonatal,
}

impl WardProfile {
    pub const ALL: [WardProfile; 3] = [
        WardProfile::Adult,
        WardProfile::Paediatric,
        WardProfile::Neonatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WardProfile::Adult => "adult",
            WardProfile::Paediatric => "paediatric",
            WardProfile::Neonatal => "neonatal",
        }
    }

    pub fn parse(s: &str) -> Option<WardProfile> {
        match s.to_ascii_lowercase().as_str() {
            "adult" => Some(WardProfile::Adult),
            "paediatric" | "pediatric" => Some(WardProfile::Paediatric),
            "neonatal" => Some(WardProfile::Neonatal),
            _ => None,
        }
    }

    /// The profile's row per vital: (vital, low, high, priority low, priority high, delay ms,
    /// hysteresis); a threshold `None` is no default limit.
    fn rows(self) -> &'static [Row] {
        use Priority::{High, Low, Medium};
        use Vital::*;
        match self {
            WardProfile::Adult => &[
                (Hr, Some(50.0), Some(120.0), Medium, Medium, 0, 5.0),
                (Pr, Some(50.0), Some(120.0), Medium, Medium, 0, 5.0),
                (SpO2, Some(90.0), None, High, Medium, 10_000, 2.0),
                (Rr, Some(8.0), Some(30.0), High, Medium, 10_000, 2.0),
                (NibpSys, Some(90.0), Some(160.0), Medium, Medium, 0, 5.0),
                (NibpDia, Some(50.0), Some(90.0), Medium, Medium, 0, 5.0),
                (NibpMean, Some(65.0), Some(110.0), Medium, Medium, 0, 5.0),
                (Temp, Some(35.0), Some(38.5), Low, Low, 0, 0.2),
                (EtCo2, Some(25.0), Some(50.0), Medium, Medium, 10_000, 2.0),
                (Weight, None, None, Low, Low, 0, 0.0),
                (Glucose, Some(70.0), Some(300.0), High, Medium, 0, 5.0),
            ],
            WardProfile::Paediatric => &[
                (Hr, Some(70.0), Some(150.0), Medium, Medium, 0, 5.0),
                (Pr, Some(70.0), Some(150.0), Medium, Medium, 0, 5.0),
                (SpO2, Some(90.0), None, High, Medium, 10_000, 2.0),
                (Rr, Some(12.0), Some(40.0), High, Medium, 10_000, 2.0),
                (NibpSys, Some(75.0), Some(130.0), Medium, Medium, 0, 5.0),
                (NibpDia, Some(40.0), Some(85.0), Medium, Medium, 0, 5.0),
                (NibpMean, Some(50.0), Some(100.0), Medium, Medium, 0, 5.0),
                (Temp, Some(35.5), Some(38.5), Low, Low, 0, 0.2),
                (EtCo2, Some(25.0), Some(50.0), Medium, Medium, 10_000, 2.0),
                (Weight, None, None, Low, Low, 0, 0.0),
                (Glucose, Some(70.0), Some(300.0), High, Medium, 0, 5.0),
            ],
            WardProfile::Neonatal => &[
                (Hr, Some(100.0), Some(200.0), Medium, Medium, 0, 5.0),
                (Pr, Some(100.0), Some(200.0), Medium, Medium, 0, 5.0),
                (SpO2, Some(88.0), Some(95.0), High, Medium, 10_000, 1.0),
                (Rr, Some(30.0), Some(70.0), High, Medium, 10_000, 2.0),
                (NibpSys, Some(45.0), Some(90.0), Medium, Medium, 0, 3.0),
                (NibpDia, Some(25.0), Some(60.0), Medium, Medium, 0, 3.0),
                (NibpMean, Some(30.0), Some(70.0), Medium, Medium, 0, 3.0),
                (Temp, Some(36.0), Some(37.8), Low, Low, 0, 0.1),
                (EtCo2, Some(30.0), Some(50.0), Medium, Medium, 10_000, 2.0),
                (Weight, None, None, Low, Low, 0, 0.0),
                (Glucose, Some(47.0), Some(180.0), High, Medium, 0, 3.0),
            ],
        }
    }

    /// Default limits of the profile.
    pub fn limits(self) -> Vec<Limit> {
        use Direction::{High as H, Low as L};
        let mut out = Vec::new();
        for &(vital, low, high, pl, ph, delay, hyst) in self.rows() {
            if let Some(t) = low {
                out.push(Limit::new(vital, L, t, pl).delay(delay).hysteresis(hyst));
            }
            if let Some(t) = high {
                out.push(Limit::new(vital, H, t, ph).delay(delay).hysteresis(hyst));
            }
        }
        out
    }
}

/// Adult default limits.
pub fn default_limits() -> Vec<Limit> {
    WardProfile::Adult.limits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_cover_every_vital_and_are_valid() {
        for p in [
            WardProfile::Adult,
            WardProfile::Paediatric,
            WardProfile::Neonatal,
        ] {
            let l = p.limits();
            for v in Vital::ALL {
                assert!(p.rows().iter().any(|r| r.0 == v), "{p:?} {v:?}: a row");
                if v != Vital::Weight {
                    assert!(l.iter().any(|x| x.vital == v), "{p:?} {v:?}");
                }
            }
            assert!(
                !l.iter().any(|x| x.vital == Vital::Weight),
                "{p:?}: weight has no default limit"
            );
            assert!(l.iter().all(|x| x.invalid().is_none()));
            for a in &l {
                for b in &l {
                    if a.vital == b.vital
                        && a.direction == Direction::Low
                        && b.direction == Direction::High
                    {
                        assert!(
                            a.threshold + a.hysteresis < b.threshold - b.hysteresis,
                            "{p:?} {a:?}"
                        );
                    }
                }
            }
        }
        let spo2 = default_limits()
            .into_iter()
            .find(|l| l.code() == "SPO2_LOW")
            .expect("SpO2 low");
        assert_eq!((spo2.delay_ms, spo2.priority), (10_000, Priority::High));
    }

    #[test]
    fn glucose_alarms_by_default_weight_only_when_set() {
        let adult = default_limits();
        let code = |c: &str| adult.iter().find(|l| l.code() == c).copied();
        let low = code("GLUCOSE_LOW").expect("glucose low");
        assert_eq!((low.threshold, low.priority), (70.0, Priority::High));
        let high = code("GLUCOSE_HIGH").expect("glucose high");
        assert_eq!((high.threshold, high.priority), (300.0, Priority::Medium));
        assert_eq!(low.message(52.0), "Glucose LOW 52 mg/dL (limit 70)");
        assert_eq!(code("WEIGHT_LOW"), None);
        assert_eq!(code("WEIGHT_HIGH"), None);
        // A weight limit can be set, within its range, and reads in kg.
        let w = Limit::new(Vital::Weight, Direction::High, 95.0, Priority::Low);
        assert_eq!(validate(&[w]), Ok(()));
        assert_eq!(w.message(96.5), "Weight HIGH 96.5 kg (limit 95)");
        let typo = Limit::new(Vital::Weight, Direction::High, 950.0, Priority::Low);
        assert!(validate(&[typo]).is_err());
        let typo = Limit::new(Vital::Glucose, Direction::Low, 7.0, Priority::High);
        assert!(
            validate(&[typo]).is_err(),
            "mmol/L typed where mg/dL is meant"
        );
    }

    #[test]
    fn alarm_text_names_value_unit_and_limit() {
        let l = Limit::new(Vital::Hr, Direction::Low, 70.0, Priority::Medium);
        assert_eq!(l.message(67.0), "HR LOW 67 /min (limit 70)");
        let t = Limit::new(Vital::Temp, Direction::High, 38.5, Priority::Low);
        assert_eq!(t.message(38.9), "Temp HIGH 38.9 °C (limit 38.5)");
        let s = Limit::new(Vital::SpO2, Direction::Low, 90.0, Priority::High);
        assert_eq!(s.message(84.0), "SpO2 LOW 84 % (limit 90)");
    }

    #[test]
    fn hysteresis_applies_only_to_a_present_condition() {
        let l = Limit::new(Vital::SpO2, Direction::Low, 90.0, Priority::High).hysteresis(2.0);
        assert!(!l.breached(90.0, false));
        assert!(l.breached(89.9, false));
        assert!(l.breached(91.9, true));
        assert!(!l.breached(92.0, true));
        let h = Limit::new(Vital::Hr, Direction::High, 120.0, Priority::Medium).hysteresis(5.0);
        assert!(!h.breached(120.0, false));
        assert!(h.breached(115.1, true));
        assert!(!h.breached(115.0, true));
    }
}
