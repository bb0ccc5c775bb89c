//! Alarm strips saved automatically: every physiological alarm of a configured priority
//! ([`ReportSettings::auto_strip`], high by default) gets its strip saved as a PDF in the
//! strip directory once its window has passed ([`gather::strip_window`]), recorded in
//! `alarm_strips` (schema 016) with its audit entry in one transaction. A raise is looked at for
//! a day; each is tried once (a failure is recorded and logged, never retried in a loop), and a
//! restart does not save a strip twice. The engine runs [`run`] every few seconds on its own
//! connection (`engine/reports.rs`); this is the station's own action, under
//! [`AUTO_USER`], not a user's.

use std::path::Path;

use rusqlite::{params, Connection};

use super::gather::{self, episode, strip_complete};
use super::{Format, Reason, ReportError, ReportSettings, StripRequest};
use crate::audit::{actions, Audit};
use crate::telemetry::BedId;

/// Who saved an automatic strip, in the audit trail and on the strip.
pub const AUTO_USER: &str = "station (automatic)";
/// How far back raises are looked at.
pub const LOOK_BACK_MS: i64 = 24 * 3_600_000;
/// How long after a strip's window ends it is saved: the waveforms' last chunks are in the
/// database by then (the writer commits within a second; late chunks are held 3 s as gaps).
pub const SETTLE_MS: i64 = 4_000;

/// What one pass saved (or failed to).
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub bed: BedId,
    pub alarm_id: String,
    pub onset_ms: i64,
    /// The file in the strip directory, or why there is none.
    pub file: Result<String, String>,
}

/// Save the strips due at `now_ms` into `dir` (created 0700 if missing). Returns what was done.
pub fn run(
    conn: &Connection,
    settings: &ReportSettings,
    dir: &Path,
    now_ms: i64,
) -> Result<Vec<Saved>, ReportError> {
    if settings.auto_strip.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<&str> = settings.auto_strip.iter().map(|p| p.as_str()).collect();
    // The raises of the priorities wanted (`?3`: a JSON list) not yet saved.
    let mut q = conn.prepare_cached(
        "SELECT e.ward, e.bed, e.alarm_id, e.t_ms, e.code FROM alarm_events e
         WHERE e.kind = 'raise' AND e.t_ms >= ?1 AND e.t_ms <= ?2
           AND e.priority IN (SELECT value FROM json_each(?3))
           AND NOT EXISTS (SELECT 1 FROM alarm_strips s WHERE s.ward = e.ward AND s.bed = e.bed
                           AND s.alarm_id = e.alarm_id AND s.onset_ms = e.t_ms)
         ORDER BY e.t_ms, e.id",
    )?;
    let wanted = serde_json::to_string(&wanted).map_err(|e| ReportError::Invalid(e.to_string()))?;
    let raises = q
        .query_map(params![now_ms - LOOK_BACK_MS, now_ms, wanted], |r| {
            Ok((
                BedId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (bed, alarm_id, onset_ms, code) in raises {
        // Technical alarms have no strip of their own (their bed's strips are its alarms').
        if !crate::alarms::is_physiological(&code) {
            continue;
        }
        let Some(ep) = episode(conn, &bed, &alarm_id, onset_ms, now_ms)? else {
            continue;
        };
        if !strip_complete(&ep, settings, now_ms - SETTLE_MS) {
            continue;
        }
        let file = save(conn, settings, dir, &bed, &ep, now_ms);
        let (name, error) = match &file {
            Ok(f) => (Some(f.as_str()), None),
            Err(e) => (None, Some(e.as_str())),
        };
        crate::store::in_tx(conn, |c| {
            c.execute(
                "INSERT INTO alarm_strips (ward, bed, alarm_id, onset_ms, saved_ms, file, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![bed.ward, bed.bed, alarm_id, onset_ms, now_ms, name, error],
            )?;
            let detail = match &file {
                Ok(f) => format!(
                    "alarm strip {} raised {}; automatic; {f}",
                    ep.message,
                    super::iso(onset_ms)
                ),
                Err(e) => format!(
                    "alarm strip {} raised {}; automatic; NOT SAVED: {e}",
                    ep.message,
                    super::iso(onset_ms)
                ),
            };
            Audit::append(
                c,
                AUTO_USER,
                actions::REPORT_PRINT,
                &bed.key(),
                &detail,
                now_ms,
            )?;
            Ok::<_, ReportError>(())
        })?;
        match &file {
            Ok(f) => {
                tracing::info!(target: "vigil::report", bed = %bed, alarm = %ep.message, file = %f, "alarm strip saved")
            }
            Err(e) => {
                tracing::error!(target: "vigil::report", bed = %bed, alarm = %ep.message, error = %e, "alarm strip NOT saved")
            }
        }
        out.push(Saved {
            bed,
            alarm_id,
            onset_ms,
            file,
        });
    }
    Ok(out)
}

/// Render and write one strip; the error as text (it is recorded).
fn save(
    conn: &Connection,
    settings: &ReportSettings,
    dir: &Path,
    bed: &BedId,
    ep: &crate::query::AlarmEpisode,
    now_ms: i64,
) -> Result<String, String> {
    let reason = Reason::parse(&format!(
        "automatic: {}-priority alarm",
        ep.priority.as_str()
    ))
    .map_err(|e| e.to_string())?;
    let req = StripRequest {
        bed: bed.clone(),
        alarm_id: ep.alarm_id.clone(),
        onset_ms: ep.t_ms,
        format: Format::Pdf,
        reason,
        preview: false,
    };
    let (doc, name) =
        gather::strip(conn, AUTO_USER, &req, settings, now_ms).map_err(|e| e.to_string())?;
    let pdf = vigil_report::strip(&doc, &settings.paper, Format::Pdf).map_err(|e| e.to_string())?;
    crate::secure_fs::prepare_dir(dir).map_err(|e| e.to_string())?;
    let name = format!("{name}.pdf");
    let path = dir.join(&name);
    crate::secure_fs::write_private_new(&path, &pdf.bytes)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(name)
}
