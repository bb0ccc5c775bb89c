//! A bed's data over a period for research: a FHIR R4 `Bundle` (type `collection`) of
//! vital-sign `Observation`s and waveform `SampledData`, or CSV; identified (a charge nurse's
//! [`Permission::ExportIdentified`]) or de-identified ([`Permission::ExportDeidentified`]: no
//! name, MRN or date of birth, devices pseudonymised, every time shifted by a random offset
//! drawn for this export and kept nowhere). The encoders are the contract's
//! (`vigil_contract::interop::fhir_export`); this module reads the history and streams it to
//! them, so a day of full disclosure never sits in memory.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;
use rusqlite::{params, Connection};

use super::{gather, Reason, ReportError};
use crate::audit::{actions, Audit};
use crate::auth::{Authorized, Permission};
use crate::codes::{self, Vital};
use crate::telemetry::{BedId, ObsStatus};
use vigil_contract::interop::csv_export::CsvWriter;
use vigil_contract::interop::export::ExportError;
use vigil_contract::interop::fhir_export::{
    ExportHeader, ExportReading, ExportWave, FhirWriter, Subject,
};

/// The longest period of an export of readings, and of one with waveforms.
pub const MAX_EXPORT_MS: i64 = 31 * 24 * 3_600_000;
pub const MAX_WAVE_EXPORT_MS: i64 = 24 * 3_600_000;
/// The identifier system of the station's MRNs in an identified export.
pub const MRN_SYSTEM: &str = "urn:vigil:mrn";
/// The longest SampledData of one Observation (contiguous chunks are joined up to it).
const MAX_STRETCH_MS: i64 = 60_000;

/// FHIR or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Fhir,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "fhir" => Some(ExportFormat::Fhir),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Fhir => "fhir",
            ExportFormat::Csv => "csv",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Fhir => "json",
            ExportFormat::Csv => "csv",
        }
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    pub bed: BedId,
    pub from_ms: i64,
    pub to_ms: i64,
    pub format: ExportFormat,
    /// With the patient's identity (else de-identified).
    pub identified: bool,
    /// Full-disclosure waveforms too (at most [`MAX_WAVE_EXPORT_MS`]).
    pub waveforms: bool,
    pub reason: Reason,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// Random, in the audit entry and the Bundle's id: ties a file to its entry.
    pub export_id: String,
    pub readings: u64,
    pub samples: u64,
    /// `export_ICU-A_bed-03_….json` (de-identified: `export_deid_<id>.json`, no bed).
    pub file_name: String,
    /// CSV with waveforms: the samples' file (`…_waveforms.csv`); they have other columns.
    pub waves_file_name: Option<String>,
}

/// Export `req` to `out` (a FHIR Bundle, or the CSV of readings) and, for CSV with waveforms,
/// the samples to `waves` (required then; unused otherwise). The audit entry (who, what, why)
/// is written first, so an export that fails half-way is on record too. Refused: a period over
/// the limits, or one that spans two patients' stays in the bed (each stay is exported on its
/// own).
pub fn export(
    conn: &Connection,
    auth: &Authorized,
    req: &ExportRequest,
    out: &mut dyn Write,
    waves: Option<&mut dyn Write>,
    now_ms: i64,
) -> Result<ExportSummary, ReportError> {
    let need = if req.identified {
        Permission::ExportIdentified
    } else {
        Permission::ExportDeidentified
    };
    let user = auth.require(need)?;
    let span = req.to_ms - req.from_ms;
    let max = if req.waveforms {
        MAX_WAVE_EXPORT_MS
    } else {
        MAX_EXPORT_MS
    };
    if span <= 0 || span > max {
        return Err(ReportError::Invalid(format!(
            "an export covers up to {} days ({} hours with waveforms)",
            MAX_EXPORT_MS / 86_400_000,
            MAX_WAVE_EXPORT_MS / 3_600_000
        )));
    }
    if req.format == ExportFormat::Csv && req.waveforms && waves.is_none() {
        return Err(ReportError::Invalid(
            "a CSV export with waveforms needs a second file for the samples".into(),
        ));
    }
    let stays = stays_in(conn, &req.bed, req.from_ms, req.to_ms)?;
    if stays > 1 {
        return Err(ReportError::Invalid(format!(
            "the period covers {stays} patients' stays in bed {}: export each stay on its own",
            req.bed
        )));
    }
    let mut rng = rand::rng();
    let export_id = format!("{:016x}", rng.random::<u64>());
    let patient = gather::patient_at(conn, &req.bed, req.to_ms.min(now_ms))?
        .or(gather::patient_at(conn, &req.bed, req.from_ms)?);
    let subject = if req.identified {
        let subject = match &patient {
            Some(p) => Subject::Identified {
                id: format!("patient-{export_id}"),
                name: p.name.clone(),
                mrn: p.mrn.clone(),
                mrn_system: MRN_SYSTEM.to_string(),
                dob: p.dob.clone(),
                sex: p.sex.clone(),
            },
            None => Subject::None,
        };
        subject
    } else {
        // Whole days (the time of day is kept: circadian patterns matter to studies), 100 to
        // 1000 days into the past.
        Subject::Deidentified {
            pseudonym: format!("subject-{export_id}"),
            shift_ms: -rng.random_range(100..=1000_i64) * 86_400_000,
        }
    };
    let file_name = if req.identified {
        format!(
            "export_{}_{}_{}.{}",
            super::file_part(&req.bed.key()),
            super::stamp(req.from_ms),
            super::stamp(req.to_ms),
            req.format.extension()
        )
    } else {
        format!("export_deid_{export_id}.{}", req.format.extension())
    };
    crate::store::in_tx(conn, |c| {
        Audit::append(
            c,
            user,
            actions::DATA_EXPORT,
            &req.bed.key(),
            &format!(
                "{} {}, {}{}, {} to {}; export {export_id}; {file_name}; reason: {}",
                req.format.as_str(),
                if req.identified {
                    "identified"
                } else {
                    "de-identified"
                },
                "readings",
                if req.waveforms { " and waveforms" } else { "" },
                super::iso(req.from_ms),
                super::iso(req.to_ms),
                req.reason.as_str()
            ),
            now_ms,
        )
        .map_err(ReportError::from)
    })?;
    let header = ExportHeader {
        bundle_id: export_id.clone(),
        generated_ms: now_ms,
        period_ms: (req.from_ms, req.to_ms),
        subject,
        bed: req.identified.then(|| req.bed.clone()),
    };
    let counts = match req.format {
        ExportFormat::Fhir => {
            let mut w = FhirWriter::new(&mut *out, header)?;
            feed(conn, req, &mut w)?;
            w.finish()?.1
        }
        ExportFormat::Csv => {
            let mut sink = std::io::sink();
            let waves: &mut dyn Write = match waves {
                Some(w) if req.waveforms => w,
                _ => &mut sink,
            };
            let mut w = CsvWriter::new(&mut *out, &mut *waves, header)?;
            feed(conn, req, &mut w)?;
            let counts = w.finish()?.2;
            flush(waves)?;
            counts
        }
    };
    flush(out)?;
    let (readings, samples) = (counts.readings, counts.samples);
    let waves_file_name = (req.format == ExportFormat::Csv && req.waveforms)
        .then(|| file_name.replace(".csv", "_waveforms.csv"));
    tracing::info!(target: "vigil::report", bed = %req.bed, export = %export_id, readings, samples, "data exported");
    Ok(ExportSummary {
        export_id,
        readings,
        samples,
        file_name,
        waves_file_name,
    })
}

/// [`export`] into files: `out`, or the export's own name in `dir`; for CSV with waveforms the
/// samples beside it (`<stem>_waveforms.csv`). Each is written to a temporary file in the same
/// directory (mode 0600) and renamed when complete, never over an existing file: a failed
/// export leaves no partial file that looks whole. Returns the summary and the files written.
pub fn export_to_files(
    conn: &Connection,
    auth: &Authorized,
    req: &ExportRequest,
    dir: &Path,
    out: Option<&Path>,
    now_ms: i64,
) -> Result<(ExportSummary, Vec<PathBuf>), ReportError> {
    let dir = out
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(dir);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    let temp = || {
        tempfile::Builder::new()
            .prefix(".vigil-export-")
            .tempfile_in(dir)
            .map_err(io(dir))
    };
    let tmp = temp()?;
    let waves_tmp = if req.format == ExportFormat::Csv && req.waveforms {
        Some(temp()?)
    } else {
        None
    };
    let summary = {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        let mut waves = waves_tmp
            .as_ref()
            .map(|t| std::io::BufWriter::new(t.as_file()));
        export(
            conn,
            auth,
            req,
            &mut w,
            waves.as_mut().map(|w| w as &mut dyn Write),
            now_ms,
        )?
    };
    let path = out.map_or_else(|| dir.join(&summary.file_name), Path::to_path_buf);
    tmp.persist_noclobber(&path)
        .map_err(|e| io(&path)(e.error))?;
    let mut files = vec![path.clone()];
    if let Some(t) = waves_tmp {
        let stem = path
            .file_stem()
            .map_or_else(|| "export".into(), |s| s.to_string_lossy().into_owned());
        let w = path.with_file_name(format!("{stem}_waveforms.csv"));
        t.persist_noclobber(&w).map_err(|e| io(&w)(e.error))?;
        files.push(w);
    }
    Ok((summary, files))
}

fn flush(w: &mut dyn Write) -> Result<(), ReportError> {
    w.flush().map_err(|source| ReportError::Io {
        path: "the export".into(),
        source,
    })
}

/// How many patients' stays (ward or remote) overlap `[from, to)` in `bed`.
fn stays_in(conn: &Connection, bed: &BedId, from: i64, to: i64) -> Result<i64, ReportError> {
    Ok(conn.query_row(
        "SELECT (SELECT COUNT(*) FROM patients WHERE ward = ?1 AND bed = ?2 AND admitted_ms < ?4
                   AND (discharged_ms IS NULL OR discharged_ms > ?3))
              + (SELECT COUNT(*) FROM remote_patients WHERE ward = ?1 AND bed = ?2
                   AND enrolled_ms < ?4 AND (discharged_ms IS NULL OR discharged_ms > ?3))",
        params![bed.ward, bed.bed, from, to],
        |r| r.get(0),
    )?)
}

/// What [`feed`] writes into: either encoder.
trait Sink {
    fn reading(&mut self, r: &ExportReading) -> Result<(), ExportError>;
    fn wave(&mut self, w: &ExportWave) -> Result<(), ExportError>;
}

impl<W: Write> Sink for FhirWriter<W> {
    fn reading(&mut self, r: &ExportReading) -> Result<(), ExportError> {
        FhirWriter::reading(self, r)
    }
    fn wave(&mut self, w: &ExportWave) -> Result<(), ExportError> {
        FhirWriter::wave(self, w)
    }
}

impl<R: Write, V: Write> Sink for CsvWriter<R, V> {
    fn reading(&mut self, r: &ExportReading) -> Result<(), ExportError> {
        CsvWriter::reading(self, r)
    }
    fn wave(&mut self, w: &ExportWave) -> Result<(), ExportError> {
        CsvWriter::wave(self, w)
    }
}

/// Read the period's readings (time order) and then its waveforms (channel by channel, time
/// order, contiguous chunks joined) into the writer.
fn feed(conn: &Connection, req: &ExportRequest, sink: &mut impl Sink) -> Result<(), ReportError> {
    let mut q = conn.prepare(
        "SELECT t_ms, code, value, status, device FROM numerics
         WHERE ward = ?1 AND bed = ?2 AND t_ms >= ?3 AND t_ms < ?4 ORDER BY t_ms, code, id",
    )?;
    let mut rows = q.query(params![req.bed.ward, req.bed.bed, req.from_ms, req.to_ms])?;
    while let Some(r) = rows.next()? {
        let code: String = r.get(1)?;
        let Some(vital) = Vital::from_name(&code) else {
            tracing::warn!(%code, "export: a stored reading of an unknown vital skipped");
            continue;
        };
        let status: String = r.get(3)?;
        let status = ObsStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == status)
            .unwrap_or(ObsStatus::Unknown);
        sink.reading(&ExportReading {
            t_ms: r.get(0)?,
            vital,
            value: r.get(2)?,
            status,
            device: r.get(4)?,
        })?;
    }
    if !req.waveforms {
        return Ok(());
    }
    let mut q = conn.prepare(
        "SELECT channel, device, t0_ms, rate, origin, factor, n, enc, data FROM wave_chunks
         WHERE ward = ?1 AND bed = ?2 AND t0_ms >= ?3 AND t0_ms < ?4
         ORDER BY channel, t0_ms, device",
    )?;
    let mut rows = q.query(params![
        req.bed.ward,
        req.bed.bed,
        req.from_ms - crate::query::CHUNK_LOOKBACK_MS,
        req.to_ms
    ])?;
    let mut open: Option<ExportWave> = None;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        let Some(channel) = codes::channel(&name) else {
            continue;
        };
        let device: String = r.get(1)?;
        let (t0, rate, origin, factor): (i64, f64, f64, f64) =
            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let (n, enc, blob): (i64, String, Vec<u8>) = (r.get(6)?, r.get(7)?, r.get(8)?);
        if !(rate > 0.0 && rate.is_finite()) {
            continue;
        }
        let data = match crate::codec::decode(&enc, &blob, n.max(0) as usize) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, t0, channel = %name, "export: unreadable waveform chunk skipped");
                continue;
            }
        };
        // Keep the samples inside the period.
        let period = 1000.0 / rate;
        let first = ((req.from_ms - t0) as f64 / period).ceil().max(0.0) as usize;
        let last = (((req.to_ms - t0) as f64 / period).ceil().max(0.0) as usize).min(data.len());
        if first >= last {
            continue;
        }
        let t_first = t0 as f64 + first as f64 * period;
        let data = &data[first..last];
        if let Some(w) = open.as_mut() {
            let end = w.t0_ms as f64 + w.data.len() as f64 * 1000.0 / w.rate;
            let joins = w.channel.name == channel.name
                && w.device == device
                && w.rate == rate
                && w.origin == origin
                && w.factor == factor
                && (t_first - end).abs() <= period / 2.0
                && (end - w.t0_ms as f64) < MAX_STRETCH_MS as f64;
            if joins {
                w.data.extend_from_slice(data);
                continue;
            }
        }
        if let Some(w) = open.take() {
            sink.wave(&w)?;
        }
        open = Some(ExportWave {
            channel,
            t0_ms: t_first.round() as i64,
            rate,
            origin,
            factor,
            data: data.to_vec(),
            device,
        });
    }
    if let Some(w) = open.take() {
        sink.wave(&w)?;
    }
    Ok(())
}
