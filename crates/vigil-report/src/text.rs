//! Times and people as printed.

use chrono::TimeZone;
use chrono_tz::Tz;

use crate::PatientLine;

/// A time in the station's zone with its abbreviation: `2026-12-07 14:03:07 CET`.
pub(crate) fn time(ms: i64, tz: Tz) -> String {
    format_ms(ms, tz, "%Y-%m-%d %H:%M:%S %Z")
}

/// A time with a chrono format string, in the zone; the raw number when out of range.
pub(crate) fn format_ms(ms: i64, tz: Tz, fmt: &str) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.format(fmt).to_string(),
        None => format!("{ms} ms"),
    }
}

/// A duration in words: "10 s", "24 h", "3 d 4 h".
pub(crate) fn duration(ms: i64) -> String {
    let s = ms / 1000;
    if s < 120 {
        format!("{s} s")
    } else if s < 2 * 3600 {
        format!("{} min", s / 60)
    } else if s < 2 * 86_400 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    } else {
        let (d, h) = (s / 86_400, (s % 86_400) / 3600);
        if h == 0 {
            format!("{d} d")
        } else {
            format!("{d} d {h} h")
        }
    }
}

/// The patient as printed: whatever is known, or "No patient admitted".
pub(crate) fn patient(p: Option<&PatientLine>) -> String {
    let Some(p) = p else {
        return "No patient admitted".to_string();
    };
    let mut parts = vec![p.name.clone()];
    if let Some(mrn) = &p.mrn {
        parts.push(format!("MRN {mrn}"));
    }
    if let Some(dob) = &p.dob {
        parts.push(format!("DOB {dob}"));
    }
    if let Some(sex) = &p.sex {
        parts.push(format!("sex {sex}"));
    }
    if p.pacemaker {
        parts.push("PACEMAKER".to_string());
    }
    parts.join(" · ")
}

/// The colour of an alarm priority.
pub(crate) fn priority_color(priority: &str) -> plotters::style::RGBColor {
    use plotters::style::RGBColor;
    match priority.to_ascii_lowercase().as_str() {
        "high" => RGBColor(205, 0, 0),
        "medium" => RGBColor(215, 140, 0),
        "low" => RGBColor(0, 150, 175),
        _ => crate::canvas::GREY,
    }
}
