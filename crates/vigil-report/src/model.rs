//! What a document shows, as plain data. The engine fills these in (patient identity already
//! masked or not for the viewer, times in ms since the epoch); this crate only draws them.

use chrono_tz::Tz;

/// Output format of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One bitmap, pages one under the other, with its resolution in the PNG `pHYs` chunk.
    Png,
    /// One SVG, pages one under the other (sizes in mm, so it prints true-size).
    Svg,
    /// One PDF page per page (A4 landscape), vector, fonts embedded.
    Pdf,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
            Format::Pdf => "pdf",
        }
    }
    pub fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
            Format::Pdf => "application/pdf",
        }
    }
}

/// Who and when, printed on every document's header and footer.
#[derive(Debug, Clone, PartialEq)]
pub struct Printed {
    /// The user the document was made for (`sim:…`, `cli:…` or a station user), or
    /// "station (automatic)".
    pub by: String,
    pub at_ms: i64,
    /// The station's time zone: every time on the document is printed in it, with its
    /// abbreviation.
    pub tz: Tz,
}

/// The patient as the viewer may see them: the engine has already masked what the viewer's
/// role may not see (`Patient::masked`) or left `None` when nobody is admitted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatientLine {
    /// Name, or initials when masked.
    pub name: String,
    /// MRN, `None` when masked.
    pub mrn: Option<String>,
    /// Date of birth `YYYY-MM-DD`, `None` when masked or unknown.
    pub dob: Option<String>,
    pub sex: Option<String>,
    pub pacemaker: bool,
}

/// One contiguous stretch of samples (no pen lift inside it).
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    /// Time of the first value, ms since the epoch.
    pub t0_ms: f64,
    /// Samples per second.
    pub rate: f64,
    pub values: Vec<f64>,
}

/// What kind of trace a channel is, which fixes its scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceKind {
    /// An ECG lead in mV, drawn at the strip's gain (mm/mV) with a 1 mV calibration pulse.
    Ecg,
    /// Pleth or respiration in arbitrary units: scaled to its band, "scaled" printed.
    Scaled,
}

/// One channel of a strip.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// `II`, `V5`, `Pleth`, `Resp`, …
    pub label: String,
    pub kind: TraceKind,
    pub unit: String,
    pub stretches: Vec<Stretch>,
    /// Where there is no signal, `[from_ms, to_ms]`: drawn as a gap (no line), marked.
    pub gaps: Vec<[i64; 2]>,
}

/// A numeric value shown in a header: `("HR", "72 /min")`.
#[derive(Debug, Clone, PartialEq)]
pub struct Numeric {
    pub label: String,
    pub value: String,
}

/// An alarm strip: the waveforms around an alarm event.
#[derive(Debug, Clone, PartialEq)]
pub struct StripDoc {
    pub printed: Printed,
    pub patient: Option<PatientLine>,
    /// `ICU-A/bed-03`.
    pub bed: String,
    /// The alarm's message (`HR HIGH 142 > 120`) and code.
    pub alarm: String,
    /// `high`, `medium`, `low`.
    pub priority: String,
    pub onset_ms: i64,
    /// "Acknowledged by nina at 14:03:07", "Not acknowledged", "Resolved at …".
    pub outcome: String,
    /// The numerics at onset (the last reading of each vital at or before it).
    pub numerics: Vec<Numeric>,
    /// The window drawn: `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Every ECG lead first, then pleth and resp, in the order given.
    pub traces: Vec<Trace>,
    /// Why it was printed ("automatic: high-priority alarm", or the user's reason).
    pub reason: String,
}

/// Paper settings of a strip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paper {
    /// Resolution of the bitmap (PNG); the PDF and SVG are true-size whatever it is. At the
    /// default 254 dpi one millimetre is exactly 10 px, so 25 mm/s is exactly 250 px/s.
    pub dpi: f64,
    /// Paper speed, mm/s (25).
    pub speed_mm_s: f64,
    /// ECG gain, mm/mV (10).
    pub gain_mm_mv: f64,
}

impl Default for Paper {
    fn default() -> Self {
        Paper {
            dpi: 254.0,
            speed_mm_s: 25.0,
            gain_mm_mv: 10.0,
        }
    }
}

/// One vital's series in a trend report.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `HR`, `PR`, `SpO2`, `RR`, `Temp`, `NEWS2`, …
    pub label: String,
    pub unit: String,
    /// `(t_ms, value)`, in time order; a hole longer than the bucket is a gap in the line.
    pub points: Vec<(i64, f64)>,
}

/// One non-invasive blood pressure measurement (drawn as a bar from diastolic to systolic with
/// the mean marked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cuff {
    pub t_ms: i64,
    pub sys: Option<f64>,
    pub dia: Option<f64>,
    pub mean: Option<f64>,
}

/// An alarm onset marked on a trend chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Onset {
    pub t_ms: i64,
    pub priority: String,
    pub label: String,
}

/// A trend report: one bed or patient over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendDoc {
    pub printed: Printed,
    pub patient: Option<PatientLine>,
    pub bed: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// HR and PR drawn together; SpO2; RR; Temp; NEWS2 (each on its own chart, empty charts
    /// say "no data").
    pub hr: Series,
    pub pr: Series,
    pub spo2: Series,
    pub rr: Series,
    pub temp: Series,
    pub news2: Series,
    pub cuffs: Vec<Cuff>,
    pub onsets: Vec<Onset>,
    /// The table under the charts: one row per interval.
    pub table: TrendTable,
}

/// The trend table: a header row and one row per interval (values already formatted, "—"
/// where there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendTable {
    pub interval_ms: i64,
    pub columns: Vec<String>,
    pub rows: Vec<(i64, Vec<String>)>,
}

/// How one alarm of a shift ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftAlarm {
    pub t_ms: i64,
    pub priority: String,
    pub technical: bool,
    pub message: String,
    /// "ack nina 14:03", "resolved 14:05", "still active", …
    pub outcome: String,
}

/// One bed's part of a shift handover.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftBed {
    pub bed: String,
    pub patient: Option<PatientLine>,
    /// Counts of physiological alarms by priority: high, medium, low.
    pub counts: [u32; 3],
    pub alarms: Vec<ShiftAlarm>,
    /// Limit changes: "14:10 HR high 120 → 130 by carl".
    pub limit_changes: Vec<String>,
    /// NEWS2 over the shift, `(t_ms, score)`.
    pub news2: Vec<(i64, f64)>,
    /// Remote patients only: adherence and missed readings, one line each.
    pub remote: Vec<String>,
}

/// A shift handover report for a ward.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftDoc {
    pub printed: Printed,
    pub ward: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub beds: Vec<ShiftBed>,
}
