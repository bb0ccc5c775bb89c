//! Print and export from the window: adapters over `vigil_core::report`. The engine checks the
//! proof, gathers, renders and audits; here the session gives the proof (`print_report`,
//! `export_identified` or `export_deidentified`), the file is saved in the station's data
//! directory (`reports/`, `exports/`: 0700, files 0600) and the preview goes back as a data URL.
//! The render runs on a connection of its own, not under the session lock.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;
use vigil_core::auth::Permission;
use vigil_core::report::export::{self, ExportFormat, ExportRequest};
use vigil_core::report::{
    self, Format, Reason, Report, ReportSettings, ShiftRequest, StripRequest, TrendRequest,
};
use vigil_core::store;
use vigil_core::telemetry::BedId;

use crate::error::ApiError;
use crate::session::{self, AuthState};

/// A document printed from the window.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct PrintOut {
    /// Where the PDF was saved.
    pub path: String,
    pub pages: u32,
    /// The preview: a PNG data URL at `preview_dpi`, pages one under the other (A4 landscape
    /// each), for the screen and for printing at true size.
    pub preview: String,
    pub preview_dpi: u32,
}

/// What the window asks to export.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct ExportIn {
    /// `ward/bed`.
    pub bed: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// `fhir` or `csv`.
    pub format: String,
    /// With the patient's identity (export_identified), else de-identified
    /// (export_deidentified).
    pub identified: bool,
    /// Full-disclosure waveforms too.
    pub waveforms: bool,
    /// Why (recorded).
    pub reason: String,
}

/// A research export from the window.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct ExportOut {
    pub path: String,
    pub readings: u32,
    pub samples: u32,
    pub export_id: String,
}

/// `<data dir>/<sub>`, created private.
fn dir_beside(db: &Path, sub: &str) -> Result<PathBuf, ApiError> {
    let dir = db.parent().unwrap_or(Path::new(".")).join(sub);
    vigil_core::secure_fs::prepare_dir(&dir).map_err(ApiError::internal)?;
    Ok(dir)
}

fn reason(s: &str) -> Result<Reason, ApiError> {
    Ok(Reason::parse(s)?)
}

fn bed(s: &str) -> Result<BedId, ApiError> {
    Ok(BedId::parse(s)?)
}

/// Take the proof for `permission` from the session (the lock held for the check only).
fn proof(st: &AuthState, permission: Permission) -> Result<vigil_core::auth::Authorized, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    session::authorized(&mut g, permission, now)
}

/// Save the PDF and hand back the preview.
fn saved(db: &Path, r: Report) -> Result<PrintOut, ApiError> {
    let dir = dir_beside(db, "reports")?;
    let path = dir.join(&r.file_name);
    // A second print of the same document the same second gets its own file.
    let path = if path.exists() {
        dir.join(format!("{}-{}", store::now_ms(), r.file_name))
    } else {
        path
    };
    vigil_core::secure_fs::write_private_new(&path, &r.document.bytes)
        .map_err(|e| ApiError::internal(format!("saving {}: {e}", path.display())))?;
    let preview = r
        .preview
        .ok_or_else(|| ApiError::internal("the preview was not rendered"))?;
    Ok(PrintOut {
        path: path.display().to_string(),
        pages: u32::try_from(r.document.pages).unwrap_or(u32::MAX),
        preview: format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&preview.bytes)
        ),
        preview_dpi: report::PREVIEW_DPI as u32,
    })
}

/// Print an alarm strip (print_report): the alarm named by its bed, id and onset.
pub fn print_strip(
    st: &AuthState,
    db: &Path,
    settings: &ReportSettings,
    bed_key: &str,
    alarm_id: &str,
    onset_ms: i64,
    why: &str,
) -> Result<PrintOut, ApiError> {
    let req = StripRequest {
        bed: bed(bed_key)?,
        alarm_id: alarm_id.to_string(),
        onset_ms,
        format: Format::Pdf,
        reason: reason(why)?,
        preview: true,
    };
    let auth = proof(st, Permission::PrintReport)?;
    let conn = store::open(db)?;
    let r = report::alarm_strip(&conn, &auth, &req, settings, st.now())?;
    saved(db, r)
}

/// Print a trend report of a bed (print_report).
#[allow(clippy::too_many_arguments)]
pub fn print_trend(
    st: &AuthState,
    db: &Path,
    settings: &ReportSettings,
    bed_key: &str,
    from_ms: i64,
    to_ms: i64,
    interval_ms: i64,
    why: &str,
) -> Result<PrintOut, ApiError> {
    let req = TrendRequest {
        bed: bed(bed_key)?,
        from_ms,
        to_ms,
        interval_ms,
        format: Format::Pdf,
        reason: reason(why)?,
        preview: true,
    };
    let auth = proof(st, Permission::PrintReport)?;
    let conn = store::open(db)?;
    let r = report::trend_report(&conn, &auth, &req, settings, st.now())?;
    saved(db, r)
}

/// Print the shift handover of a ward (print_report).
pub fn print_shift(
    st: &AuthState,
    db: &Path,
    settings: &ReportSettings,
    ward: &str,
    from_ms: i64,
    to_ms: i64,
    why: &str,
) -> Result<PrintOut, ApiError> {
    let req = ShiftRequest {
        ward: ward.to_string(),
        from_ms,
        to_ms,
        format: Format::Pdf,
        reason: reason(why)?,
        preview: true,
    };
    let auth = proof(st, Permission::PrintReport)?;
    let conn = store::open(db)?;
    let r = report::shift_report(&conn, &auth, &req, settings, st.now())?;
    saved(db, r)
}

/// Export a bed's data (`fhir` or `csv`): identified needs export_identified, de-identified
/// export_deidentified. Saved in `exports/` beside the database.
pub fn export_data(st: &AuthState, db: &Path, input: &ExportIn) -> Result<ExportOut, ApiError> {
    let ExportIn {
        bed: bed_key,
        from_ms,
        to_ms,
        format,
        identified,
        waveforms,
        reason: why,
    } = input;
    let (from_ms, to_ms, identified, waveforms) = (*from_ms, *to_ms, *identified, *waveforms);
    let format = ExportFormat::parse(format)
        .ok_or_else(|| ApiError::bad_request(format!("export format {format:?}: fhir or csv")))?;
    let req = ExportRequest {
        bed: bed(bed_key)?,
        from_ms,
        to_ms,
        format,
        identified,
        waveforms,
        reason: reason(why)?,
    };
    let auth = proof(
        st,
        if identified {
            Permission::ExportIdentified
        } else {
            Permission::ExportDeidentified
        },
    )?;
    let dir = dir_beside(db, "exports")?;
    let conn = store::open(db)?;
    let (s, files) = export::export_to_files(&conn, &auth, &req, &dir, None, st.now())?;
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Ok(ExportOut {
        path: shown.join(" and "),
        readings: u32::try_from(s.readings).unwrap_or(u32::MAX),
        samples: u32::try_from(s.samples).unwrap_or(u32::MAX),
        export_id: s.export_id,
    })
}
