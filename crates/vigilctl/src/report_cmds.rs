//! `vigilctl report strip|trend|shift` and `vigilctl export fhir|csv`: adapters over
//! `vigil_core::report` as a station user (`--user`, the password from $VIGIL_PASSWORD or
//! stdin). The engine checks the role, gathers, renders and audits; this only parses the
//! arguments and writes the file (mode 0600, never over an existing one).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use vigil_core::auth::Permission;
use vigil_core::config::FileConfig;
use vigil_core::report::export::{self, ExportFormat, ExportRequest};
use vigil_core::report::{
    self, Format, Reason, ReportSettings, ShiftRequest, StripRequest, TrendRequest,
};
use vigil_core::telemetry::BedId;

use crate::history::{parse_duration_ms, parse_time};
use crate::remote_cmds::{as_user, Login};

fn bed_arg(s: &str) -> Result<BedId, String> {
    BedId::parse(s).map_err(|e| e.to_string())
}

fn format_arg(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| format!("{s:?}: use pdf, png or svg"))
}

fn time_arg(s: &str) -> Result<i64, String> {
    parse_time(s).map_err(|e| e.to_string())
}

fn reason_arg(s: &str) -> Result<Reason, String> {
    Reason::parse(s).map_err(|e| e.to_string())
}

/// Where and how a document is written.
#[derive(Args)]
pub struct Output {
    /// pdf (for printing), png or svg.
    #[arg(long, value_parser = format_arg, default_value = "pdf")]
    format: Format,
    /// The file to write (refused if it exists); default: the report's own name in the
    /// current directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Why (recorded in the audit trail), e.g. "chart copy", "physician review".
    #[arg(long, value_parser = reason_arg)]
    reason: Reason,
    /// Station configuration (for `[reports]`: time zone, strip length, gain, dpi).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ReportCmd {
    /// An alarm strip: the waveforms around one alarm on ECG paper (nurse, charge nurse).
    Strip {
        #[command(flatten)]
        login: Login,
        /// The bed, ward/bed.
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
        /// The alarm's id as `vigilctl query alarms` lists it (e.g. sim/bed-03/HR_HIGH).
        #[arg(long)]
        alarm: String,
        /// The alarm's onset (RFC 3339 or ms since the epoch), as listed.
        #[arg(long, value_parser = time_arg)]
        onset: i64,
        #[command(flatten)]
        output: Output,
    },
    /// A trend report of one bed over 1 hour to 30 days, with a table (nurse, charge nurse).
    Trend {
        #[command(flatten)]
        login: Login,
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
        /// Start (RFC 3339 or ms since the epoch).
        #[arg(long, value_parser = time_arg)]
        from: i64,
        /// End; default now.
        #[arg(long, value_parser = time_arg)]
        to: Option<i64>,
        /// One table row per interval (`15m`, `1h`).
        #[arg(long, default_value = "1h")]
        interval: String,
        #[command(flatten)]
        output: Output,
    },
    /// A shift handover report of a ward (nurse, charge nurse).
    Shift {
        #[command(flatten)]
        login: Login,
        #[arg(long)]
        ward: String,
        #[arg(long, value_parser = time_arg)]
        from: i64,
        #[arg(long, value_parser = time_arg)]
        to: Option<i64>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
pub enum ExportCmd {
    /// A FHIR R4 Bundle (collection) of vital-sign Observations and waveform SampledData.
    Fhir(ExportArgs),
    /// CSV: readings, then waveform samples.
    Csv(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    login: Login,
    #[arg(long, value_parser = bed_arg)]
    bed: BedId,
    #[arg(long, value_parser = time_arg)]
    from: i64,
    #[arg(long, value_parser = time_arg)]
    to: Option<i64>,
    /// With the patient's identity (charge nurse); default de-identified (no name, MRN or
    /// date of birth, dates shifted by a random offset, devices pseudonymised).
    #[arg(long)]
    identified: bool,
    /// Full-disclosure waveforms too (at most 24 hours).
    #[arg(long)]
    waveforms: bool,
    /// The file to write (refused if it exists); default: the export's own name.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Why (recorded in the audit trail), e.g. "study 2026-04, ethics ref. 123".
    #[arg(long, value_parser = reason_arg)]
    reason: Reason,
}

fn settings(config: Option<&Path>) -> Result<ReportSettings> {
    let file = FileConfig::load(config)?;
    Ok(ReportSettings::from_section(&file.reports)?)
}

/// Write `bytes` to a new private file.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    vigil_core::secure_fs::write_private_new(path, bytes)
        .with_context(|| format!("writing {} (it must not exist yet)", path.display()))
}

pub fn report(cmd: ReportCmd) -> Result<()> {
    let (login, output) = match &cmd {
        ReportCmd::Strip { login, output, .. }
        | ReportCmd::Trend { login, output, .. }
        | ReportCmd::Shift { login, output, .. } => (login, output),
    };
    let settings = settings(output.config.as_deref())?;
    // The file named is taken first: a printout that cannot be saved is never on record as made.
    let reserved = match &output.out {
        Some(p) => Some((
            p.clone(),
            vigil_core::secure_fs::create_private(p)
                .with_context(|| format!("writing {} (it must not exist yet)", p.display()))?,
        )),
        None => None,
    };
    let made = as_user(
        login,
        Permission::PrintReport,
        "print reports",
        |svc, _, auth, now| {
            let conn = svc.connection();
            Ok(match &cmd {
                ReportCmd::Strip {
                    bed, alarm, onset, ..
                } => report::alarm_strip(
                    conn,
                    auth,
                    &StripRequest {
                        bed: bed.clone(),
                        alarm_id: alarm.clone(),
                        onset_ms: *onset,
                        format: output.format,
                        reason: output.reason.clone(),
                        preview: false,
                    },
                    &settings,
                    now,
                )?,
                ReportCmd::Trend {
                    bed,
                    from,
                    to,
                    interval,
                    ..
                } => report::trend_report(
                    conn,
                    auth,
                    &TrendRequest {
                        bed: bed.clone(),
                        from_ms: *from,
                        to_ms: to.unwrap_or(now),
                        interval_ms: parse_duration_ms(interval)?,
                        format: output.format,
                        reason: output.reason.clone(),
                        preview: false,
                    },
                    &settings,
                    now,
                )?,
                ReportCmd::Shift { ward, from, to, .. } => report::shift_report(
                    conn,
                    auth,
                    &ShiftRequest {
                        ward: ward.clone(),
                        from_ms: *from,
                        to_ms: to.unwrap_or(now),
                        format: output.format,
                        reason: output.reason.clone(),
                        preview: false,
                    },
                    &settings,
                    now,
                )?,
            })
        },
    );
    let r = match made {
        Ok(r) => r,
        Err(e) => {
            if let Some((p, _)) = &reserved {
                // Nothing was made: the empty file taken for it goes.
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    let path = match reserved {
        Some((p, mut f)) => {
            use std::io::Write;
            f.write_all(&r.document.bytes)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing {}", p.display()))?;
            p
        }
        None => {
            let p = PathBuf::from(&r.file_name);
            write_new(&p, &r.document.bytes)?;
            p
        }
    };
    println!(
        "{} ({} page{}, {} bytes)",
        path.display(),
        r.document.pages,
        if r.document.pages == 1 { "" } else { "s" },
        r.document.bytes.len()
    );
    Ok(())
}

pub fn export(cmd: ExportCmd) -> Result<()> {
    let (format, a) = match cmd {
        ExportCmd::Fhir(a) => (ExportFormat::Fhir, a),
        ExportCmd::Csv(a) => (ExportFormat::Csv, a),
    };
    let permission = if a.identified {
        Permission::ExportIdentified
    } else {
        Permission::ExportDeidentified
    };
    let what = if a.identified {
        "export identified data"
    } else {
        "export de-identified data"
    };
    let summary = as_user(&a.login, permission, what, |svc, _, auth, now| {
        let req = ExportRequest {
            bed: a.bed.clone(),
            from_ms: a.from,
            to_ms: a.to.unwrap_or(now),
            format,
            identified: a.identified,
            waveforms: a.waveforms,
            reason: a.reason.clone(),
        };
        Ok(export::export_to_files(
            svc.connection(),
            auth,
            &req,
            Path::new("."),
            a.out.as_deref(),
            now,
        )?)
    })?;
    let (s, paths) = summary;
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    println!(
        "{}: {} readings, {} samples (export {})",
        names.join(" and "),
        s.readings,
        s.samples,
        s.export_id
    );
    if s.readings == 0 && s.samples == 0 {
        eprintln!("warning: nothing stored for {} in that period", a.bed);
    }
    Ok(())
}
