//! Interoperability decoders: HL7 FHIR R4 Observations ([`fhir`]), HL7 v2 ORU^R01 as profiled
//! by IHE PCD-01 and Continua WAN ([`hl7v2`]) and MLLP transport for HL7 v2 ([`mllp`]).
//!
//! Every decoder produces a [`Batch`](crate::telemetry::Batch): readings (with their result
//! status, so that cancelled, entered-in-error and preliminary results are stored but never
//! alarmed on), waveform [`Samples`] and the parts of the message that
//! were refused. Decoding never panics; "no reading" is `None`, never 0.
//!
//! This module holds what the formats share: code lookups (LOINC and MDC, with the aliases Vigil
//! accepts), unit conversion to Vigil's units, exact decimal parsing and quantisation of waveform
//! samples, and time bounds.
//!
//! The other way, for research: [`fhir_export`] writes an export as a FHIR R4 Bundle that
//! [`fhir::decode`] reads back exactly, [`csv_export`] as CSV; [`export`] holds what they share.

pub mod csv_export;
pub mod export;
pub mod fhir;
pub mod fhir_export;
pub mod hl7v2;
pub mod mllp;

use crate::codes::{self, ChannelInfo, Vital};
pub(crate) use crate::telemetry::truncate;
use crate::telemetry::{DecodeError, Samples, MAX_CHUNK_SAMPLES, MAX_SAMPLE_RATE};

// ---------------------------------------------------------------------------------------------
// Codes

/// MDC codes accepted as aliases of a Vigil vital, beyond the numeric codes of the contract
/// table (`codes.rs`): temperature measured at a named site is body temperature for Vigil, and
/// the impedance respiration rate is the respiration rate.
const MDC_ALIASES: [(u32, Vital); 5] = [
    (150392, Vital::Temp), // MDC_TEMP_TYMP
    (188420, Vital::Temp), // MDC_TEMP_RECT
    (188424, Vital::Temp), // MDC_TEMP_ORAL
    (188428, Vital::Temp), // MDC_TEMP_EAR
    (151578, Vital::Rr),   // MDC_TTHOR_RESP_RATE
];

/// LOINC codes accepted as aliases of a Vigil vital, beyond the one in the contract table.
/// Glucose: only capillary blood glucose codes (a meter's reading), by mass or by moles (the
/// unit says which and is converted); venous and laboratory glucose are other observations.
const LOINC_ALIASES: [(&str, Vital); 5] = [
    ("2708-6", Vital::SpO2),     // Oxygen saturation in arterial blood
    ("8331-1", Vital::Temp),     // Oral temperature
    ("3141-9", Vital::Weight),   // Body weight Measured
    ("32016-8", Vital::Glucose), // Glucose [Mass/volume] in Capillary blood
    ("14743-9", Vital::Glucose), // Glucose [Moles/volume] in Capillary blood by Glucometer
];

/// LOINC panel codes that only group other observations (components or `hasMember`); an
/// observation with such a code and nothing Vigil knows inside is skipped, not rejected.
const LOINC_GROUPS: [&str; 3] = [
    "85354-9", // Blood pressure panel with all children optional
    "55284-4", // Blood pressure systolic and diastolic (older panel code)
    "85353-1", // Vital signs panel
];

/// MDC codes that only group waveform channels (MDC_ECG_ELEC_POTL, the 12-lead ECG parent).
const MDC_GROUPS: [u32; 1] = [131328];

/// The vital a numeric MDC code stands for, including the accepted aliases.
pub fn vital_from_mdc(code: u32) -> Option<Vital> {
    Vital::from_mdc(code).or_else(|| {
        MDC_ALIASES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| *v)
    })
}

/// The vital a LOINC code stands for ("8867-4" HR, "59408-5" and "2708-6" SpO2, ...).
pub fn vital_from_loinc(code: &str) -> Option<Vital> {
    let code = code.trim();
    Vital::ALL
        .iter()
        .copied()
        .find(|v| v.info().loinc == code)
        .or_else(|| {
            LOINC_ALIASES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, v)| *v)
        })
}

/// The waveform channel of a numeric MDC code.
pub fn channel_from_mdc(code: u32) -> Option<&'static ChannelInfo> {
    codes::CHANNELS.iter().find(|c| c.mdc == code)
}

/// Whether a LOINC code only groups other observations (a panel).
pub fn is_loinc_group(code: &str) -> bool {
    LOINC_GROUPS.contains(&code.trim())
}

/// Whether an MDC code only groups waveform channels.
pub fn is_mdc_group(code: u32) -> bool {
    MDC_GROUPS.contains(&code)
}

/// What an observation code means to Vigil.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A numeric vital sign.
    Vital(Vital),
    /// A waveform channel.
    Channel(&'static ChannelInfo),
    /// A panel or parent code that only groups other observations.
    Group,
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Vital(v) => v.name(),
            Target::Channel(c) => c.name,
            Target::Group => "panel",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Units

/// A unit as a message gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnitRef<'a> {
    /// A UCUM code (`/min`, `mm[Hg]`, `[degF]`); annotations in braces are ignored.
    Ucum(&'a str),
    /// An IEEE 11073 MDC unit code (`MDC_DIM_*`, numeric form).
    Mdc(u32),
}

impl std::fmt::Display for UnitRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitRef::Ucum(u) => write!(f, "{}", truncate(u, 32)),
            UnitRef::Mdc(c) => write!(f, "MDC {c}"),
        }
    }
}

/// Linear conversion into a Vigil unit: `vigil = value × scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    pub scale: f64,
    pub offset: f64,
}

impl Conversion {
    const IDENTITY: Conversion = Conversion {
        scale: 1.0,
        offset: 0.0,
    };

    /// Whether this is the identity (the value is already in the Vigil unit).
    pub fn is_identity(&self) -> bool {
        *self == Conversion::IDENTITY
    }

    /// Convert a value. Converted values are rounded to 1e-6 so that 98.6 °F is exactly
    /// 37.0 °C rather than 36.99999999999999; values already in the Vigil unit are untouched.
    pub fn apply(&self, v: f64) -> f64 {
        if self.is_identity() {
            v
        } else {
            ((v * self.scale + self.offset) * 1e6).round() / 1e6
        }
    }
}

/// One accepted unit: its UCUM codes, its MDC code (0 = none), the Vigil unit it converts to.
struct UnitDef {
    ucum: &'static [&'static str],
    mdc: u32,
    vigil: &'static str,
    conv: Conversion,
}

const fn lin(scale: f64, offset: f64) -> Conversion {
    Conversion { scale, offset }
}

/// 1 kPa in mm[Hg] (1 mm[Hg] = 133.322387415 Pa).
const MMHG_PER_KPA: f64 = 1000.0 / 133.322_387_415;

/// 1 [lb_av] in kg (exact by definition).
const KG_PER_LB: f64 = 0.453_592_37;

/// 1 mmol/L of glucose in mg/dL (molar mass 180.16 g/mol).
const GLUCOSE_MGDL_PER_MMOLL: f64 = 18.016;

const UNITS: [UnitDef; 17] = [
    UnitDef {
        ucum: &["/min", "1/min"],
        mdc: 264864, // MDC_DIM_BEAT_PER_MIN
        vigil: "/min",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &[],
        mdc: 264928, // MDC_DIM_RESP_PER_MIN
        vigil: "/min",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["%"],
        mdc: 262688, // MDC_DIM_PERCENT
        vigil: "%",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        // "mmHg" is not UCUM but is what many senders write; it is unambiguous.
        ucum: &["mm[Hg]", "mmHg"],
        mdc: 266016, // MDC_DIM_MMHG
        vigil: "mm[Hg]",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["kPa"],
        mdc: 0,
        vigil: "mm[Hg]",
        conv: lin(MMHG_PER_KPA, 0.0),
    },
    UnitDef {
        ucum: &["Cel"],
        mdc: 268192, // MDC_DIM_DEGC
        vigil: "Cel",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["[degF]"],
        mdc: 266560, // MDC_DIM_FAHR
        vigil: "Cel",
        conv: lin(5.0 / 9.0, -32.0 * 5.0 / 9.0),
    },
    UnitDef {
        ucum: &["K"],
        mdc: 0,
        vigil: "Cel",
        conv: lin(1.0, -273.15),
    },
    UnitDef {
        ucum: &["mV"],
        mdc: 266418, // MDC_DIM_MILLI_VOLT
        vigil: "mV",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["uV"],
        mdc: 266419, // MDC_DIM_MICRO_VOLT
        vigil: "mV",
        conv: lin(1e-3, 0.0),
    },
    UnitDef {
        ucum: &["V"],
        mdc: 0,
        vigil: "mV",
        conv: lin(1e3, 0.0),
    },
    UnitDef {
        ucum: &["1"],
        mdc: 262656, // MDC_DIM_DIMLESS
        vigil: "1",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["kg"],
        mdc: 263875, // MDC_DIM_KILO_G
        vigil: "kg",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["g"],
        mdc: 263872, // MDC_DIM_X_G
        vigil: "kg",
        conv: lin(1e-3, 0.0),
    },
    UnitDef {
        ucum: &["[lb_av]"],
        mdc: 263904, // MDC_DIM_LB
        vigil: "kg",
        conv: lin(KG_PER_LB, 0.0),
    },
    UnitDef {
        // "mg/dl" is not UCUM (which is case-sensitive) but is what many senders write.
        ucum: &["mg/dL", "mg/dl"],
        mdc: 264274, // MDC_DIM_MILLI_G_PER_DL
        vigil: "mg/dL",
        conv: Conversion::IDENTITY,
    },
    UnitDef {
        ucum: &["mmol/L", "mmol/l"],
        mdc: 266866, // MDC_DIM_MILLI_MOLE_PER_L
        vigil: "mg/dL",
        conv: lin(GLUCOSE_MGDL_PER_MMOLL, 0.0),
    },
];

/// A UCUM code without its annotations (`{beats}/min` → `/min`, `{score}` → `1`).
fn strip_annotations(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    let mut depth = 0u32;
    for ch in u.trim().chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if out.is_empty() {
        "1".to_string()
    } else {
        out
    }
}

/// How to convert `unit` into `target` (a Vigil unit: `/min`, `%`, `mm[Hg]`, `Cel`, `kg`,
/// `mg/dL`, `mV`, `1`).
/// `what` names the vital or channel in the error.
pub fn conversion(
    unit: UnitRef<'_>,
    target: &'static str,
    what: &str,
) -> Result<Conversion, DecodeError> {
    let found = match unit {
        UnitRef::Ucum(u) => {
            let u = strip_annotations(u);
            UNITS
                .iter()
                .find(|d| d.vigil == target && d.ucum.contains(&u.as_str()))
        }
        UnitRef::Mdc(0) => None,
        UnitRef::Mdc(c) => UNITS.iter().find(|d| d.vigil == target && d.mdc == c),
    };
    found.map(|d| d.conv).ok_or_else(|| DecodeError::Unit {
        what: what.to_string(),
        got: unit.to_string(),
        expected: target,
    })
}

/// Convert a reading into its vital's unit and check the plausible range.
pub fn convert_reading(vital: Vital, value: f64, unit: UnitRef<'_>) -> Result<f64, DecodeError> {
    let info = vital.info();
    let conv = conversion(unit, info.unit, info.name)?;
    let v = conv.apply(value);
    check_range(vital, v)?;
    Ok(v)
}

/// Reject a value outside the vital's plausible range (and any non-finite value).
pub fn check_range(vital: Vital, v: f64) -> Result<(), DecodeError> {
    let info = vital.info();
    let (lo, hi) = info.plausible;
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(DecodeError::OutOfRange {
            what: info.name.to_string(),
            value: v,
            lo,
            hi,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Exact decimals and waveform quantisation

/// Most decimal places a waveform sample may have (the data are scaled by at most 10^6).
pub const MAX_SAMPLE_DECIMALS: u32 = 6;

/// A decimal number read exactly from text: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

impl Decimal {
    /// The nearest `f64`.
    pub fn to_f64(self) -> f64 {
        // Both parts are exactly representable or rounded once each; good enough for display.
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }
}

/// Parse a plain decimal (`-12`, `3.25`, `+.5`, and with `allow_exponent` also `1.5e2`) exactly.
/// Rejects `NaN`, `Infinity`, hex, empty strings and anything with more than 30 digits.
pub fn parse_decimal(s: &str, allow_exponent: bool) -> Option<Decimal> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (num, exp) = match body.find(['e', 'E']) {
        Some(i) if allow_exponent => {
            let e = &body[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (&body[..i], e.parse::<i32>().ok()?)
        }
        Some(_) => return None,
        None => (body, 0),
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = int.len() + frac.len();
    if digits > 30 {
        return None;
    }
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    if neg {
        mantissa = -mantissa;
    }
    // value = mantissa × 10^(exp - frac.len())
    let mut scale = frac.len() as i32 - exp;
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        if mantissa.unsigned_abs() > 10u128.pow(30) {
            return None;
        }
        scale += 1;
    }
    if scale > 60 {
        return None;
    }
    Some(Decimal {
        mantissa,
        scale: scale as u32,
    })
}

/// Samples quantised to integers: physical value = origin + factor × data\[i\], where the
/// factor has been divided by 10^`shift` to make every sample integral. `None` is a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantised {
    pub data: Vec<Option<i32>>,
    pub shift: u32,
}

/// Turn decimal samples into `i32` exactly: if all are integers they are kept; otherwise all are
/// scaled by the smallest 10^k (k ≤ [`MAX_SAMPLE_DECIMALS`]) that makes them integral.
pub fn quantise(samples: &[Option<Decimal>]) -> Result<Quantised, String> {
    let mut shift = 0u32;
    for d in samples.iter().flatten() {
        // Trailing zeros do not need a larger shift (1.50 is 1.5).
        let (mut m, mut s) = (d.mantissa, d.scale);
        while s > 0 && m % 10 == 0 {
            m /= 10;
            s -= 1;
        }
        shift = shift.max(s);
    }
    if shift > MAX_SAMPLE_DECIMALS {
        return Err(format!(
            "a sample has {shift} decimal places, at most {MAX_SAMPLE_DECIMALS} are supported"
        ));
    }
    let mut data = Vec::with_capacity(samples.len());
    for d in samples {
        let Some(d) = d else {
            data.push(None);
            continue;
        };
        // d.scale may exceed shift only through trailing zeros: divide them away exactly.
        let v = if d.mantissa == 0 {
            Some(0)
        } else if d.scale >= shift {
            10i128.checked_pow(d.scale - shift).map(|p| d.mantissa / p)
        } else {
            10i128
                .checked_pow(shift - d.scale)
                .and_then(|p| d.mantissa.checked_mul(p))
        };
        let v = v
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| format!("sample {} does not fit a 32-bit integer", d.to_f64()))?;
        data.push(Some(v));
    }
    Ok(Quantised { data, shift })
}

/// The sample rate of a period in ms: 1000 / period, snapped to the nearest integer when
/// within 1e-12 of it relatively. A period written as the shortest decimal of 1000 / rate (60 Hz:
/// `16.666666666666668`) otherwise gives back a rate one ulp off (59.99999999999999 Hz).
pub fn rate_of_period(period_ms: f64) -> f64 {
    let rate = 1000.0 / period_ms;
    let nearest = rate.round();
    if nearest > 0.0 && (rate - nearest).abs() <= nearest * 1e-12 {
        nearest
    } else {
        rate
    }
}

/// Cut quantised samples into [`Samples`] chunks around gaps (`None`) and at
/// [`MAX_CHUNK_SAMPLES`]. Chunk `t0` is `t0_ms` + index × period, rounded to the millisecond.
/// `origin`/`factor` are the physical scaling (already in the channel's unit) before the shift.
pub fn chunk_samples(
    channel: &'static ChannelInfo,
    t0_ms: i64,
    period_ms: f64,
    origin: f64,
    factor: f64,
    q: &Quantised,
) -> Result<Vec<Samples>, String> {
    if !(period_ms.is_finite() && period_ms > 0.0) {
        return Err(format!("sample period {period_ms} ms is not positive"));
    }
    let rate = rate_of_period(period_ms);
    if !(rate.is_finite() && rate > 0.0 && rate <= MAX_SAMPLE_RATE) {
        return Err(format!(
            "sample rate {rate} Hz is not in (0, {MAX_SAMPLE_RATE}]"
        ));
    }
    let factor = factor / 10f64.powi(q.shift as i32);
    if !(factor.is_finite() && factor != 0.0 && origin.is_finite()) {
        return Err("factor must be finite and non-zero, origin finite".into());
    }
    // A finite factor can still scale a sample to infinity (factor 1e308, sample -2).
    if q.data
        .iter()
        .flatten()
        .any(|&d| !(origin + factor * f64::from(d)).is_finite())
    {
        return Err("origin + factor × sample overflows to infinity".into());
    }
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut cur: Vec<i32> = Vec::new();
    let flush = |start: usize, cur: &mut Vec<i32>, out: &mut Vec<Samples>| {
        if !cur.is_empty() {
            let offset = (start as f64 * period_ms).round();
            out.push(Samples {
                channel,
                t0_ms: t0_ms.saturating_add(offset as i64),
                rate,
                origin,
                factor,
                data: std::mem::take(cur),
            });
        }
    };
    for (i, s) in q.data.iter().enumerate() {
        match s {
            Some(v) => {
                if cur.is_empty() {
                    start = i;
                }
                cur.push(*v);
                if cur.len() == MAX_CHUNK_SAMPLES {
                    flush(start, &mut cur, &mut out);
                }
            }
            None => flush(start, &mut cur, &mut out),
        }
    }
    flush(start, &mut cur, &mut out);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Small shared helpers

/// Earliest and latest year accepted in a timestamp; anything else is an absurd time.
pub const YEAR_RANGE: (i32, i32) = (1900, 2200);

/// Longest device identifier taken from a message.
pub const MAX_DEVICE_ID: usize = 128;

/// A device identifier fit to key the device registry: trimmed, 1 to [`MAX_DEVICE_ID`]
/// characters, no control characters.
pub(crate) fn clean_device_id(s: &str) -> Result<Option<String>, DecodeError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_DEVICE_ID || s.chars().any(char::is_control) {
        return Err(DecodeError::Invalid {
            field: "device",
            why: format!(
                "device identifier {:?} is not 1 to {MAX_DEVICE_ID} printable characters",
                truncate(s, 40)
            ),
        });
    }
    Ok(Some(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lookups_with_aliases() {
        assert_eq!(vital_from_loinc("8867-4"), Some(Vital::Hr));
        assert_eq!(vital_from_loinc("59408-5"), Some(Vital::SpO2));
        assert_eq!(vital_from_loinc("2708-6"), Some(Vital::SpO2));
        assert_eq!(vital_from_loinc("9279-1"), Some(Vital::Rr));
        assert_eq!(vital_from_loinc("8480-6"), Some(Vital::NibpSys));
        assert_eq!(vital_from_loinc("8462-4"), Some(Vital::NibpDia));
        assert_eq!(vital_from_loinc("8478-0"), Some(Vital::NibpMean));
        assert_eq!(vital_from_loinc("8310-5"), Some(Vital::Temp));
        assert_eq!(vital_from_loinc("19889-5"), Some(Vital::EtCo2));
        assert_eq!(vital_from_loinc("8889-8"), Some(Vital::Pr));
        assert_eq!(
            vital_from_loinc("9269-2"),
            None,
            "Glasgow is not a vital here"
        );
        assert_eq!(vital_from_mdc(188424), Some(Vital::Temp), "MDC_TEMP_ORAL");
        assert_eq!(vital_from_mdc(150456), Some(Vital::SpO2));
        assert_eq!(vital_from_mdc(160184), Some(Vital::Glucose));
        assert_eq!(vital_from_mdc(188736), Some(Vital::Weight));
        assert_eq!(vital_from_mdc(160220), None, "HbA1c is not a vital here");
        assert_eq!(vital_from_loinc("29463-7"), Some(Vital::Weight));
        assert_eq!(vital_from_loinc("3141-9"), Some(Vital::Weight));
        assert_eq!(vital_from_loinc("41653-7"), Some(Vital::Glucose));
        assert_eq!(vital_from_loinc("32016-8"), Some(Vital::Glucose));
        assert_eq!(vital_from_loinc("14743-9"), Some(Vital::Glucose));
        assert_eq!(
            vital_from_loinc("2345-7"),
            None,
            "serum or plasma glucose is a laboratory result"
        );
        assert_eq!(channel_from_mdc(150452).map(|c| c.name), Some("PLETH"));
        assert!(is_loinc_group("85354-9"));
        assert!(is_mdc_group(131328));
    }

    #[test]
    fn unit_conversions() {
        let c = |u, t| conversion(u, t, "x");
        assert!(c(UnitRef::Ucum("/min"), "/min").is_ok_and(|c| c.is_identity()));
        assert!(c(UnitRef::Ucum("{beats}/min"), "/min").is_ok());
        assert!(c(UnitRef::Mdc(264864), "/min").is_ok());
        assert!(c(UnitRef::Mdc(264928), "/min").is_ok());
        assert!(c(UnitRef::Ucum("%"), "/min").is_err());
        assert!(c(UnitRef::Ucum("{score}"), "/min").is_err());
        assert!(c(UnitRef::Mdc(0), "%").is_err());
        assert_eq!(
            convert_reading(Vital::Temp, 98.6, UnitRef::Ucum("[degF]")),
            Ok(37.0)
        );
        assert_eq!(
            convert_reading(Vital::Temp, 98.6, UnitRef::Mdc(266560)),
            Ok(37.0)
        );
        assert_eq!(
            convert_reading(Vital::Temp, 36.5, UnitRef::Ucum("Cel")),
            Ok(36.5)
        );
        let kpa = convert_reading(Vital::EtCo2, 5.0, UnitRef::Ucum("kPa")).expect("kPa");
        assert!((kpa - 37.503084).abs() < 1e-5, "{kpa}");
        let e = convert_reading(Vital::Temp, 98.6, UnitRef::Ucum("Cel")).expect_err("range");
        assert_eq!(e.reason(), "out_of_range");
        let e = convert_reading(Vital::Hr, 60.0, UnitRef::Ucum("mm[Hg]")).expect_err("unit");
        assert_eq!(e.reason(), "bad_unit");
        assert!(check_range(Vital::Hr, f64::NAN).is_err());
    }

    #[test]
    fn weight_and_glucose_conversions() {
        let w = |v, u| convert_reading(Vital::Weight, v, u);
        assert_eq!(w(80.0, UnitRef::Ucum("kg")), Ok(80.0));
        assert_eq!(w(80.0, UnitRef::Mdc(263875)), Ok(80.0));
        assert_eq!(w(176.4, UnitRef::Ucum("[lb_av]")), Ok(80.013694));
        assert_eq!(w(100.0, UnitRef::Mdc(263904)), Ok(45.359237));
        assert_eq!(w(3250.0, UnitRef::Ucum("g")), Ok(3.25));
        assert_eq!(
            w(80.0, UnitRef::Ucum("lb")).map_err(|e| e.reason()),
            Err("bad_unit")
        );
        assert_eq!(
            w(0.0, UnitRef::Ucum("kg")).map_err(|e| e.reason()),
            Err("out_of_range")
        );
        assert_eq!(
            w(600.0, UnitRef::Ucum("kg")).map_err(|e| e.reason()),
            Err("out_of_range")
        );

        let g = |v, u| convert_reading(Vital::Glucose, v, u);
        assert_eq!(g(37.5, UnitRef::Mdc(264274)), Ok(37.5));
        assert_eq!(g(99.0, UnitRef::Ucum("mg/dL")), Ok(99.0));
        assert_eq!(g(5.5, UnitRef::Ucum("mmol/L")), Ok(99.088));
        assert_eq!(g(3.9, UnitRef::Mdc(266866)), Ok(70.2624));
        assert_eq!(
            g(5.5, UnitRef::Ucum("%")).map_err(|e| e.reason()),
            Err("bad_unit")
        );
        assert_eq!(
            g(5.0, UnitRef::Ucum("mg/dL")).map_err(|e| e.reason()),
            Err("out_of_range")
        );
        // A weight unit is no glucose unit, nor the other way round.
        assert!(g(80.0, UnitRef::Ucum("kg")).is_err());
        assert!(w(99.0, UnitRef::Ucum("mg/dL")).is_err());
    }

    #[test]
    fn decimals_parse_exactly() {
        let d = |s| parse_decimal(s, false);
        assert_eq!(
            d("12"),
            Some(Decimal {
                mantissa: 12,
                scale: 0
            })
        );
        assert_eq!(
            d("-3.25"),
            Some(Decimal {
                mantissa: -325,
                scale: 2
            })
        );
        assert_eq!(
            d("+.5"),
            Some(Decimal {
                mantissa: 5,
                scale: 1
            })
        );
        assert_eq!(
            d("7."),
            Some(Decimal {
                mantissa: 7,
                scale: 0
            })
        );
        for bad in [
            "", "-", ".", "NaN", "Infinity", "inf", "1e5", "0x10", "1,5", "1.2.3", "--1", " ",
        ] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_decimal("1.5e2", true),
            Some(Decimal {
                mantissa: 150,
                scale: 0
            })
        );
        assert_eq!(
            parse_decimal("15E-3", true),
            Some(Decimal {
                mantissa: 15,
                scale: 3
            })
        );
        assert_eq!(parse_decimal("1e99999", true), None);
        assert_eq!(parse_decimal("1e40", true), None);
        assert_eq!(d(&"9".repeat(31)), None);
    }

    #[test]
    fn quantisation_is_exact() {
        let p = |s: &str| parse_decimal(s, true);
        let q = quantise(&[p("1"), p("-2"), None, p("30")]).expect("ints");
        assert_eq!(q.shift, 0);
        assert_eq!(q.data, vec![Some(1), Some(-2), None, Some(30)]);
        let q = quantise(&[p("0.5"), p("-1.25"), p("2.50"), p("3")]).expect("decimals");
        assert_eq!(q.shift, 2);
        assert_eq!(q.data, vec![Some(50), Some(-125), Some(250), Some(300)]);
        assert!(quantise(&[p("0.0000001")]).is_err());
        assert!(quantise(&[p("3000000000")]).is_err());
        let q = quantise(&[
            p("0e-60"),
            p("1.5e-5"),
            p("100000000000000000000000000000e-29"),
        ])
        .expect("extreme exponents");
        assert_eq!(q.shift, 6, "1.5e-5 has six decimal places");
        assert_eq!(q.data, vec![Some(0), Some(15), Some(1_000_000)]);
    }

    #[test]
    fn chunks_split_at_gaps() {
        let ch = codes::channel("ECG_II").expect("channel");
        let q = Quantised {
            data: vec![Some(1), Some(2), None, None, Some(3)],
            shift: 1,
        };
        let s = chunk_samples(ch, 1000, 2.0, 0.5, 0.01, &q).expect("chunks");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].t0_ms, s[0].data.clone()), (1000, vec![1, 2]));
        assert_eq!((s[1].t0_ms, s[1].data.clone()), (1008, vec![3]));
        assert_eq!(s[0].rate, 500.0);
        assert!((s[0].factor - 0.001).abs() < 1e-15);
        assert!(chunk_samples(ch, 0, 0.0, 0.0, 1.0, &q).is_err());
        assert!(chunk_samples(ch, 0, 0.01, 0.0, 1.0, &q).is_err(), "100 kHz");
        assert!(chunk_samples(ch, 0, 1.0, 0.0, 0.0, &q).is_err());
        let big = Quantised {
            data: vec![Some(1), Some(-2)],
            shift: 0,
        };
        // Found by tests/fuzz.rs: a finite factor whose physical values are infinite.
        assert!(chunk_samples(ch, 0, 1.0, 0.0, f64::MAX, &big).is_err());
        assert!(chunk_samples(ch, 0, 1.0, 0.0, f64::MAX / 2.0, &big).is_ok());
        let long = Quantised {
            data: vec![Some(0); MAX_CHUNK_SAMPLES + 5],
            shift: 0,
        };
        let s = chunk_samples(ch, 0, 1.0, 0.0, 1.0, &long).expect("long");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].t0_ms, MAX_CHUNK_SAMPLES as i64);
    }

    #[test]
    fn device_ids_cleaned() {
        assert_eq!(clean_device_id("  mon-1 "), Ok(Some("mon-1".into())));
        assert_eq!(clean_device_id(""), Ok(None));
        assert!(clean_device_id("a\u{0}b").is_err());
        assert!(clean_device_id(&"x".repeat(200)).is_err());
        assert_eq!(truncate("héllo", 2), "h…");
    }
}
