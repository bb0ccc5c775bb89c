//! NEWS2 (Royal College of Physicians, 2017): sub-scores, total and risk band, exactly as the
//! table in `shared/reference/clinical.md` §3.
//!
//! Inputs are recorded as the chart records them: respiration rate, SpO2, systolic pressure and
//! pulse rounded to whole numbers, temperature to 0.1 °C (half away from zero) before scoring.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::Priority;

/// ACVPU: alert, or new confusion, voice, pain, unresponsive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Consciousness {
    #[default]
    Alert,
    Confusion,
    Voice,
    Pain,
    Unresponsive,
}

impl FromStr for Consciousness {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "A" | "ALERT" => Ok(Consciousness::Alert),
            "C" | "CONFUSION" => Ok(Consciousness::Confusion),
            "V" | "VOICE" => Ok(Consciousness::Voice),
            "P" | "PAIN" => Ok(Consciousness::Pain),
            "U" | "UNRESPONSIVE" => Ok(Consciousness::Unresponsive),
            other => Err(format!(
                "consciousness must be A, C, V, P or U, not {other:?}"
            )),
        }
    }
}

impl Consciousness {
    pub fn letter(self) -> &'static str {
        match self {
            Consciousness::Alert => "A",
            Consciousness::Confusion => "C",
            Consciousness::Voice => "V",
            Consciousness::Pain => "P",
            Consciousness::Unresponsive => "U",
        }
    }
}

/// Everything NEWS2 scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct News2Input {
    pub rr: f64,
    pub spo2: f64,
    /// SpO2 scale 2 (confirmed hypercapnic respiratory failure).
    pub scale2: bool,
    /// Supplemental oxygen (else air).
    pub oxygen: bool,
    pub sbp: f64,
    pub pulse: f64,
    pub consciousness: Consciousness,
    pub temp: f64,
}

/// The clinical risk band (response) of a NEWS2 result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "News2Band"))]
pub enum Band {
    /// Total 0: routine monitoring.
    Zero,
    /// Total 1–4: ward assessment.
    Low,
    /// A 3 in any single parameter (total ≤ 4): urgent ward review.
    LowMedium,
    /// Total 5–6: urgent response.
    Medium,
    /// Total ≥ 7: emergency response.
    High,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Zero => "zero",
            Band::Low => "low",
            Band::LowMedium => "low-medium",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }

    /// The alarm priority of a band (`None` for 0).
    pub fn priority(self) -> Option<Priority> {
        match self {
            Band::Zero => None,
            Band::Low => Some(Priority::Low),
            Band::LowMedium | Band::Medium => Some(Priority::Medium),
            Band::High => Some(Priority::High),
        }
    }

    /// The alarm code of a band.
    pub fn code(self) -> &'static str {
        match self {
            Band::Zero => "NEWS2_ZERO",
            Band::Low => "NEWS2_LOW",
            Band::LowMedium => "NEWS2_LOW_MEDIUM",
            Band::Medium => "NEWS2_MEDIUM",
            Band::High => "NEWS2_HIGH",
        }
    }

    pub const ALARMING: [Band; 4] = [Band::Low, Band::LowMedium, Band::Medium, Band::High];
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sub-scores, total and band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct News2Score {
    pub rr: u8,
    pub spo2: u8,
    pub oxygen: u8,
    pub sbp: u8,
    pub pulse: u8,
    pub consciousness: u8,
    pub temp: u8,
    pub total: u8,
    pub band: Band,
}

fn whole(x: f64) -> i64 {
    x.round() as i64
}

/// The score of `x` in the bands of a parameter, in increasing order, each (its highest value,
/// its score); above the last band: `above`.
fn banded(x: i64, bands: &[(i64, u8)], above: u8) -> u8 {
    bands
        .iter()
        .find(|&&(highest, _)| x <= highest)
        .map_or(above, |&(_, score)| score)
}

pub fn score_rr(rr: f64) -> u8 {
    banded(whole(rr), &[(8, 3), (11, 1), (20, 0), (24, 2)], 3)
}

pub fn score_spo2(spo2: f64, scale2: bool, oxygen: bool) -> u8 {
    let s = whole(spo2);
    if !scale2 {
        return banded(s, &[(91, 3), (93, 2), (95, 1)], 0);
    }
    // Scale 2: above 92 % scores only on oxygen.
    let on_oxygen = if oxygen {
        banded(s, &[(94, 1), (96, 2)], 3)
    } else {
        0
    };
    banded(s, &[(83, 3), (85, 2), (87, 1), (92, 0)], on_oxygen)
}

pub fn score_sbp(sbp: f64) -> u8 {
    banded(whole(sbp), &[(90, 3), (100, 2), (110, 1), (219, 0)], 3)
}

pub fn score_pulse(pulse: f64) -> u8 {
    banded(
        whole(pulse),
        &[(40, 3), (50, 1), (90, 0), (110, 1), (130, 2)],
        3,
    )
}

pub fn score_temp(temp: f64) -> u8 {
    // Tenths of a degree, so that 35.0 / 35.1 are exact.
    banded(
        (temp * 10.0).round() as i64,
        &[(350, 3), (360, 1), (380, 0), (390, 1)],
        2,
    )
}

pub fn score(i: &News2Input) -> News2Score {
    let rr = score_rr(i.rr);
    let spo2 = score_spo2(i.spo2, i.scale2, i.oxygen);
    let oxygen = if i.oxygen { 2 } else { 0 };
    let sbp = score_sbp(i.sbp);
    let pulse = score_pulse(i.pulse);
    let consciousness = if i.consciousness == Consciousness::Alert {
        0
    } else {
        3
    };
    let temp = score_temp(i.temp);
    let parts = [rr, spo2, oxygen, sbp, pulse, consciousness, temp];
    let total: u8 = parts.iter().sum();
    let band = match total {
        0 => Band::Zero,
        7.. => Band::High,
        5..=6 => Band::Medium,
        _ if parts.contains(&3) => Band::LowMedium,
        _ => Band::Low,
    };
    News2Score {
        rr,
        spo2,
        oxygen,
        sbp,
        pulse,
        consciousness,
        temp,
        total,
        band,
    }
}

/// What a nurse enters for NEWS2 beside the monitored vitals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct News2Manual {
    pub consciousness: Consciousness,
    pub oxygen: bool,
    pub scale2: bool,
}
