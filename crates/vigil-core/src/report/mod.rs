//! Printed documents and research exports: station actions, one home each.
//!
//! - [`alarm_strip`]: the waveforms around one alarm on ECG paper (on demand, and
//!   automatically for the priorities configured: [`auto`]).
//! - [`trend_report`]: one bed over 1 h to 30 days: charts and a table.
//! - [`shift_report`]: a ward's handover over a shift.
//! - [`export::export`]: a bed's data over a period as a FHIR R4 `Bundle` or CSV, identified or
//!   de-identified.
//!
//! Each takes typed input and an [`Authorized`] proof: [`Permission::PrintReport`] for the
//! documents (which carry the patient's identity: they go into the chart),
//! [`Permission::ExportIdentified`] or [`Permission::ExportDeidentified`] for exports. Each writes
//! its audit entry (who, what, why) in one transaction with whatever it records. The data is read
//! here ([`gather`]); `vigil-report` only draws it, `vigil-contract` only encodes it.

pub mod auto;
pub mod export;
pub mod gather;

use std::path::PathBuf;

use chrono::TimeZone;
use chrono_tz::Tz;
use rusqlite::Connection;

use crate::alarms::Priority;
use crate::audit::{actions, AuditError};
use crate::auth::{AuthError, Authorized, Permission};
use crate::config::ReportsSection;
use crate::patients::Patient;
use crate::store::StoreError;
use crate::telemetry::BedId;
pub use vigil_report::{Document, Format, Paper};

/// The shortest and longest period of a trend report.
pub const MIN_TREND_MS: i64 = 3_600_000;
pub const MAX_TREND_MS: i64 = 30 * 24 * 3_600_000;
/// The longest shift a handover covers.
pub const MAX_SHIFT_MS: i64 = 24 * 3_600_000;
/// The most rows a trend table may have (a 30-day report at 30 min is 1 440).
pub const MAX_TABLE_ROWS: i64 = 2_000;
/// A strip that runs to the event's end still shows this much after the onset.
pub const MIN_STRIP_AFTER_MS: i64 = 6_000;
/// The longest strip (before + after).
pub const MAX_STRIP_MS: i64 = 60_000;

/// Why a report or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("no alarm {alarm} raised on bed {bed} at {onset_ms}")]
    UnknownAlarm {
        bed: String,
        alarm: String,
        onset_ms: i64,
    },
    #[error("the report could not be drawn: {0}")]
    Render(#[from] vigil_report::ReportError),
    #[error("the export could not be written: {0}")]
    Export(#[from] vigil_contract::interop::export::ExportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// When an alarm strip ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripEnd {
    /// At the end of the alarm event (its resolution, or now while it lasts), at least
    /// [`MIN_STRIP_AFTER_MS`] after the onset and at most [`MAX_STRIP_MS`] in all.
    Event,
    /// This long after the onset.
    After(i64),
}

/// How the station prints: `[reports]` in vigil.toml, validated here (the one validator).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    /// The zone every time on a document is printed in.
    pub tz: Tz,
    pub paper: Paper,
    /// How long before the onset a strip starts (10 s).
    pub strip_before_ms: i64,
    pub strip_end: StripEnd,
    /// Priorities of the physiological alarms whose strip is saved automatically (high).
    pub auto_strip: Vec<Priority>,
    /// Where automatic strips are saved (`<data dir>/strips` unless set).
    pub strip_dir: Option<PathBuf>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            tz: Tz::UTC,
            paper: Paper::default(),
            strip_before_ms: 10_000,
            strip_end: StripEnd::Event,
            auto_strip: vec![Priority::High],
            strip_dir: None,
        }
    }
}

impl ReportSettings {
    /// The settings of `[reports]`; the time zone defaults to the workstation's
    /// ([`station_tz`]).
    pub fn from_section(s: &ReportsSection) -> Result<ReportSettings, ReportError> {
        let mut out = ReportSettings {
            tz: match &s.time_zone {
                Some(z) => z.parse::<Tz>().map_err(|_| {
                    ReportError::Invalid(format!(
                        "[reports] time_zone {z:?} is not an IANA time zone (e.g. Europe/London)"
                    ))
                })?,
                None => station_tz(),
            },
            ..ReportSettings::default()
        };
        if let Some(before) = s.strip_before_s {
            if !(0..=30).contains(&before) {
                return Err(ReportError::Invalid(
                    "[reports] strip_before_s must be 0 to 30".into(),
                ));
            }
            out.strip_before_ms = before * 1000;
        }
        if let Some(after) = s.strip_after_s {
            if !(1..=50).contains(&after)
                || (after + out.strip_before_ms / 1000) * 1000 > MAX_STRIP_MS
            {
                return Err(ReportError::Invalid(format!(
                    "[reports] strip_after_s must be 1 to 50, and before + after at most {} s",
                    MAX_STRIP_MS / 1000
                )));
            }
            out.strip_end = StripEnd::After(after * 1000);
        }
        if let Some(list) = &s.auto_strip {
            out.auto_strip = list
                .iter()
                .map(|p| {
                    Priority::parse(p).ok_or_else(|| {
                        ReportError::Invalid(format!(
                            "[reports] auto_strip: {p:?} is not a priority (high, medium, low)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(gain) = s.gain_mm_mv {
            if ![5.0, 10.0, 20.0].contains(&gain) {
                return Err(ReportError::Invalid(
                    "[reports] gain_mm_mv must be 5, 10 or 20".into(),
                ));
            }
            out.paper.gain_mm_mv = gain;
        }
        if let Some(dpi) = s.dpi {
            if !(100.0..=1200.0).contains(&dpi) {
                return Err(ReportError::Invalid(
                    "[reports] dpi must be 100 to 1200".into(),
                ));
            }
            out.paper.dpi = dpi;
        }
        out.strip_dir = s.strip_dir.clone();
        Ok(out)
    }
}

/// The workstation's time zone: `$TZ`, else `/etc/timezone`, else the zone `/etc/localtime`
/// links to; UTC when none names an IANA zone (said in the log).
pub fn station_tz() -> Tz {
    let named = std::env::var("TZ")
        .ok()
        .map(|z| z.trim_start_matches(':').to_string())
        .or_else(|| std::fs::read_to_string("/etc/timezone").ok())
        .or_else(|| {
            std::fs::read_link("/etc/localtime").ok().and_then(|p| {
                let s = p.to_string_lossy().into_owned();
                s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
            })
        });
    match named.as_deref().map(str::trim).map(str::parse::<Tz>) {
        Some(Ok(tz)) => tz,
        _ => {
            tracing::info!(
                "reports: the workstation names no IANA time zone; times printed in UTC"
            );
            Tz::UTC
        }
    }
}

/// Why a document was printed or data exported, as the user gives it: trimmed, 3 to 200
/// characters, no control characters. Recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(s: &str) -> Result<Reason, ReportError> {
        let s = s.trim();
        let n = s.chars().count();
        if !(3..=200).contains(&n) {
            return Err(ReportError::Invalid(
                "give a reason of 3 to 200 characters".into(),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ReportError::Invalid(
                "a reason cannot contain control characters".into(),
            ));
        }
        Ok(Reason(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Resolution of a window's preview (5 px/mm: a page is 1485 × 1050 px).
pub const PREVIEW_DPI: f64 = 127.0;

/// A rendered document and the file name it is saved under.
#[derive(Debug, Clone)]
pub struct Report {
    pub document: Document,
    /// `strip_ICU-A_bed-03_20261207T140307Z_HR_HIGH.pdf`: no patient identity in it.
    pub file_name: String,
    /// The same document as a PNG at [`PREVIEW_DPI`], when asked for (`preview`): what a
    /// window shows and prints; the same action, one audit entry.
    pub preview: Option<Document>,
}

/// An alarm strip on demand: the alarm is named by its bed, id and onset (an alarm id names
/// the alarm's slot; each raise is an episode).
#[derive(Debug, Clone, PartialEq)]
pub struct StripRequest {
    pub bed: BedId,
    pub alarm_id: String,
    pub onset_ms: i64,
    pub format: Format,
    pub reason: Reason,
    /// Also render a PNG preview ([`Report::preview`]).
    pub preview: bool,
}

/// Print an alarm strip ([`Permission::PrintReport`]): the stored waveforms of the bed from
/// the configured time before the onset to the end (see [`StripEnd`]), every ECG lead and
/// pleth/resp present, with the patient, the alarm, its outcome and the numerics at onset.
/// Audited (`report_print`) before the document is returned.
pub fn alarm_strip(
    conn: &Connection,
    auth: &Authorized,
    req: &StripRequest,
    settings: &ReportSettings,
    now_ms: i64,
) -> Result<Report, ReportError> {
    let user = auth.require(Permission::PrintReport)?;
    let (doc, file_name) = gather::strip(conn, user, req, settings, now_ms)?;
    let document = vigil_report::strip(&doc, &settings.paper, req.format)?;
    let preview = if req.preview {
        let paper = Paper {
            dpi: PREVIEW_DPI,
            ..settings.paper
        };
        Some(vigil_report::strip(&doc, &paper, Format::Png)?)
    } else {
        None
    };
    let file_name = format!("{file_name}.{}", req.format.extension());
    audit(
        conn,
        user,
        &req.bed.key(),
        &format!(
            "alarm strip {} raised {}; {} to {}; {}; reason: {}",
            doc.alarm,
            iso(req.onset_ms),
            iso(doc.from_ms),
            iso(doc.to_ms),
            file_name,
            req.reason.as_str()
        ),
        now_ms,
    )?;
    Ok(Report {
        document,
        file_name,
        preview,
    })
}

/// A trend report of one bed.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRequest {
    pub bed: BedId,
    pub from_ms: i64,
    pub to_ms: i64,
    /// One table row per interval (at least a minute; at most [`MAX_TABLE_ROWS`] rows).
    pub interval_ms: i64,
    pub format: Format,
    pub reason: Reason,
    /// Also render a PNG preview ([`Report::preview`]).
    pub preview: bool,
}

impl TrendRequest {
    fn check(&self) -> Result<(), ReportError> {
        let span = self.to_ms - self.from_ms;
        if !(MIN_TREND_MS..=MAX_TREND_MS).contains(&span) {
            return Err(ReportError::Invalid(
                "a trend report covers 1 hour to 30 days".into(),
            ));
        }
        if self.interval_ms < 60_000 || span / self.interval_ms > MAX_TABLE_ROWS {
            return Err(ReportError::Invalid(format!(
                "the table interval must be at least 1 minute and give at most {MAX_TABLE_ROWS} rows"
            )));
        }
        Ok(())
    }
}

/// Print a trend report ([`Permission::PrintReport`]), audited (`report_print`).
pub fn trend_report(
    conn: &Connection,
    auth: &Authorized,
    req: &TrendRequest,
    settings: &ReportSettings,
    now_ms: i64,
) -> Result<Report, ReportError> {
    let user = auth.require(Permission::PrintReport)?;
    req.check()?;
    let doc = gather::trend(conn, user, req, settings, now_ms)?;
    let document = vigil_report::trend(&doc, req.format, settings.paper.dpi)?;
    let preview = req
        .preview
        .then(|| vigil_report::trend(&doc, Format::Png, PREVIEW_DPI))
        .transpose()?;
    let file_name = format!(
        "trend_{}_{}_{}.{}",
        file_part(&req.bed.key()),
        stamp(req.from_ms),
        stamp(req.to_ms),
        req.format.extension()
    );
    audit(
        conn,
        user,
        &req.bed.key(),
        &format!(
            "trend report {} to {}, table every {} min; {}; reason: {}",
            iso(req.from_ms),
            iso(req.to_ms),
            req.interval_ms / 60_000,
            file_name,
            req.reason.as_str()
        ),
        now_ms,
    )?;
    Ok(Report {
        document,
        file_name,
        preview,
    })
}

/// A shift handover of one ward.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftRequest {
    pub ward: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub format: Format,
    pub reason: Reason,
    /// Also render a PNG preview ([`Report::preview`]).
    pub preview: bool,
}

/// Print a shift handover report ([`Permission::PrintReport`]), audited (`report_print`).
pub fn shift_report(
    conn: &Connection,
    auth: &Authorized,
    req: &ShiftRequest,
    settings: &ReportSettings,
    now_ms: i64,
) -> Result<Report, ReportError> {
    let user = auth.require(Permission::PrintReport)?;
    let span = req.to_ms - req.from_ms;
    if !(1..=MAX_SHIFT_MS).contains(&span) {
        return Err(ReportError::Invalid(
            "a shift handover covers up to 24 hours".into(),
        ));
    }
    crate::telemetry::parse_ward(&req.ward)
        .map_err(|e| ReportError::Invalid(format!("ward: {e}")))?;
    let doc = gather::shift(conn, user, req, settings, now_ms)?;
    let document = vigil_report::shift(&doc, req.format, settings.paper.dpi)?;
    let preview = req
        .preview
        .then(|| vigil_report::shift(&doc, Format::Png, PREVIEW_DPI))
        .transpose()?;
    let file_name = format!(
        "shift_{}_{}_{}.{}",
        file_part(&req.ward),
        stamp(req.from_ms),
        stamp(req.to_ms),
        req.format.extension()
    );
    audit(
        conn,
        user,
        &format!("ward {}", req.ward),
        &format!(
            "shift handover {} to {}, {} beds; {}; reason: {}",
            iso(req.from_ms),
            iso(req.to_ms),
            doc.beds.len(),
            file_name,
            req.reason.as_str()
        ),
        now_ms,
    )?;
    Ok(Report {
        document,
        file_name,
        preview,
    })
}

fn audit(
    conn: &Connection,
    user: &str,
    target: &str,
    detail: &str,
    now_ms: i64,
) -> Result<(), ReportError> {
    crate::store::in_tx(conn, |c| {
        crate::audit::Audit::append(c, user, actions::REPORT_PRINT, target, detail, now_ms)
            .map(|_| ())
            .map_err(ReportError::from)
    })
}

/// The patient line of a document: the identity in full (printing is for the chart; a proof
/// of [`Permission::PrintReport`] is the right to it).
pub(crate) fn patient_line(p: &Patient) -> vigil_report::PatientLine {
    vigil_report::PatientLine {
        name: p.name.clone(),
        mrn: Some(p.mrn.clone()),
        dob: p.dob.clone(),
        sex: p.sex.clone(),
        pacemaker: p.pacemaker,
    }
}

/// `2026-12-07T14:03:07.250Z`.
pub(crate) fn iso(t_ms: i64) -> String {
    chrono::Utc.timestamp_millis_opt(t_ms).single().map_or_else(
        || t_ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

/// `20261207T140307Z`, for file names.
pub(crate) fn stamp(t_ms: i64) -> String {
    chrono::Utc.timestamp_millis_opt(t_ms).single().map_or_else(
        || t_ms.to_string(),
        |t| t.format("%Y%m%dT%H%M%SZ").to_string(),
    )
}

/// A bed key or code as part of a file name: `/` and anything unusual become `_`.
pub(crate) fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
