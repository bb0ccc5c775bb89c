//! `vigilctl bench report`: printouts and exports at ward scale (issue 16). Stores a day of
//! trends for `--beds` beds (HR, PR, SpO2 and RR every minute, a cuff every 30 min, a
//! temperature every 4 h, an alarm every 2 h) and `--wave-hours` of three ECG leads at 500 Hz
//! for the first bed, through the store writer; then times, through the station actions a user
//! would call: a 24 h trend report (PDF) of every bed, a 30 s three-lead alarm strip (PDF and
//! PNG), and the bed's full-disclosure export as a FHIR Bundle (samples per second). Prints
//! each with the process's peak memory.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use vigil_core::alarms::{AlarmEvent, AlarmEventKind, AlarmState, Priority};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Permission, Role};
use vigil_core::codes::{self, Vital};
use vigil_core::report::export::{self, ExportFormat, ExportRequest};
use vigil_core::report::{self, Format, Reason, ReportSettings, StripEnd, StripRequest};
use vigil_core::store::{self, Op, StoreWriter};
use vigil_core::telemetry::{BedId, Reading, Vitals, WaveChunk};

#[derive(Args)]
pub struct ReportArgs {
    /// Beds with a day of trends (each gets a trend report).
    #[arg(long, default_value_t = 64)]
    beds: usize,
    /// Hours of three-lead ECG at 500 Hz stored for the first bed (exported in full).
    #[arg(long, default_value_t = 24)]
    wave_hours: i64,
}

const H: i64 = 3_600_000;
const PW: &str = "Bench-report-station-2026!";

/// Peak resident memory of this process so far (VmHWM), MB.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Start measuring the peak afresh (Linux: writing 5 to `clear_refs` resets VmHWM to the
/// current RSS); returns the RSS now, MB.
fn reset_peak() -> f64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak_mb()
}

/// A writer that only counts.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plausible value of `vital` at minute `m` of bed `b`.
fn value(vital: Vital, b: usize, m: i64) -> f64 {
    let wave = ((m as f64 / 90.0) + b as f64).sin();
    match vital {
        Vital::Hr | Vital::Pr => 75.0 + 12.0 * wave,
        Vital::SpO2 => 96.0 + 2.0 * wave,
        Vital::Rr => 16.0 + 3.0 * wave,
        Vital::NibpSys => 125.0 + 15.0 * wave,
        Vital::NibpDia => 75.0 + 8.0 * wave,
        Vital::NibpMean => 92.0 + 10.0 * wave,
        _ => 37.0 + 0.4 * wave,
    }
}

pub async fn report(a: ReportArgs) -> Result<()> {
    let dir = super::bench::tempdir()?;
    let db = dir.join("report.db");
    let now = store::now_ms() / 60_000 * 60_000;
    let from = now - 24 * H;
    println!(
        "reports: {} beds x 24 h of trends, {} h of 3-lead ECG at 500 Hz ({})",
        a.beds,
        a.wave_hours,
        db.display()
    );
    let mut svc = AuthService::open(&db, AuthConfig::default()).context("opening the station")?;
    let it = Actor::Local("bench".into());
    svc.create_user(&it, "bench-charge", Role::ChargeNurse, PW, from)?;

    let t = Instant::now();
    let writer = StoreWriter::spawn(&db)?;
    let tx = writer.sender();
    let beds: Vec<BedId> = (1..=a.beds)
        .map(|i| BedId::new("bench", format!("bed-{i:02}")))
        .collect();
    let mut readings = 0u64;
    for (b, bed) in beds.iter().enumerate() {
        for m in 0..24 * 60 {
            let t_ms = from + m * 60_000;
            let mut rs: Vec<Reading> = [Vital::Hr, Vital::Pr, Vital::SpO2, Vital::Rr]
                .into_iter()
                .map(|v| Reading::new(v, Some(value(v, b, m).round()), t_ms))
                .collect();
            if m % 30 == 0 {
                for v in [Vital::NibpSys, Vital::NibpDia, Vital::NibpMean] {
                    rs.push(Reading::new(v, Some(value(v, b, m).round()), t_ms));
                }
            }
            if m % 240 == 0 {
                rs.push(Reading::new(
                    Vital::Temp,
                    Some((value(Vital::Temp, b, m) * 10.0).round() / 10.0),
                    t_ms,
                ));
            }
            readings += rs.len() as u64;
            let v = Vitals {
                bed: bed.clone(),
                device: format!("mon-{b:02}"),
                seq: m as u64,
                readings: rs,
                rejected: Vec::new(),
                late: Vec::new(),
            };
            tx.send(Op::Vitals(Arc::new(v), t_ms))
                .await
                .context("store writer stopped")?;
        }
    }
    // Three ECG leads of the first bed: 1 s chunks, a synthetic beat every 0.8 s.
    let leads = ["ECG_I", "ECG_II", "ECG_III"];
    let wave_from = now - a.wave_hours * H;
    let mut samples = 0u64;
    for s in 0..a.wave_hours * 3600 {
        let t0 = wave_from + s * 1000;
        for (k, lead) in leads.iter().enumerate() {
            let channel = codes::channel(lead).context("channel")?;
            let data: Vec<i32> = (0..500)
                .map(|i| {
                    let phase = ((s * 500 + i) % 400) as i32;
                    let qrs = if phase < 20 {
                        1000 - 100 * (phase - 10).abs()
                    } else {
                        0
                    };
                    qrs / (k as i32 + 1) + ((i as i32 * 7) % 40) - 20
                })
                .collect();
            samples += data.len() as u64;
            tx.send(Op::Wave(Arc::new(WaveChunk {
                bed: beds[0].clone(),
                device: "mon-00".into(),
                channel,
                unit: "mV",
                t0_ms: t0,
                rate: 500.0,
                seq: s as u64,
                origin: 0.0,
                factor: 0.001,
                data,
            })))
            .await
            .context("store writer stopped")?;
        }
    }
    // An alarm every 2 h on every bed (a raise, as the engine records one).
    for bed in &beds {
        for k in 0..12 {
            tx.send(Op::Alarm(AlarmEvent {
                t_ms: now - k * 2 * H - 30_000,
                bed: bed.clone(),
                alarm_id: format!("{}/HR_HIGH", bed.key()),
                code: "HR_HIGH".into(),
                kind: AlarmEventKind::Raise,
                priority: Priority::High,
                value: Some(131.0),
                limit: Some(120.0),
                message: "HR HIGH 131 > 120".into(),
                user: None,
                station: None,
                state: AlarmState::Active,
                level: 0,
                audible: true,
            }))
            .await
            .context("store writer stopped")?;
        }
    }
    writer.flush().await?;
    drop(tx);
    tokio::task::spawn_blocking(move || writer.close()).await?;
    println!(
        "  stored {readings} readings and {samples} samples in {:.1} s; peak memory {:.0} MB",
        t.elapsed().as_secs_f64(),
        peak_mb()
    );

    let session = svc.login("bench-charge", PW, now)?;
    let print = svc.authorize(Some(&session), Permission::PrintReport, now)?;
    let settings = ReportSettings {
        strip_before_ms: 10_000,
        strip_end: StripEnd::After(20_000),
        ..ReportSettings::default()
    };
    let reason = Reason::parse("benchmark")?;

    // A 24 h trend report of every bed, as PDF.
    let before = reset_peak();
    let t = Instant::now();
    let mut bytes = 0usize;
    let mut pages = 0usize;
    let mut each = Vec::with_capacity(beds.len());
    for bed in &beds {
        let one = Instant::now();
        let r = report::trend_report(
            svc.connection(),
            &print,
            &report::TrendRequest {
                bed: bed.clone(),
                from_ms: from,
                to_ms: now,
                interval_ms: H,
                format: Format::Pdf,
                reason: reason.clone(),
                preview: false,
            },
            &settings,
            now,
        )?;
        each.push(one.elapsed().as_secs_f64() * 1000.0);
        bytes += r.document.bytes.len();
        pages += r.document.pages;
    }
    each.sort_by(f64::total_cmp);
    println!(
        "  trend reports, 24 h, PDF: {} beds in {:.1} s (median {:.0} ms, max {:.0} ms per bed), {pages} pages, {:.1} MB; peak memory {:.0} MB (from {:.0})",
        beds.len(),
        t.elapsed().as_secs_f64(),
        each[each.len() / 2],
        each[each.len() - 1],
        bytes as f64 / 1e6,
        peak_mb(),
        before
    );

    // A 30 s strip of the three leads around the newest alarm of the first bed.
    let onset = now - 30_000;
    for format in [Format::Pdf, Format::Png] {
        let before = reset_peak();
        let t = Instant::now();
        let r = report::alarm_strip(
            svc.connection(),
            &print,
            &StripRequest {
                bed: beds[0].clone(),
                alarm_id: format!("{}/HR_HIGH", beds[0].key()),
                onset_ms: onset,
                format,
                reason: reason.clone(),
                preview: false,
            },
            &settings,
            now,
        )?;
        println!(
            "  alarm strip, 30 s x 3 leads, {}: {:.0} ms, {} pages, {:.2} MB; peak memory {:.0} MB (from {:.0})",
            format.extension(),
            t.elapsed().as_secs_f64() * 1000.0,
            r.document.pages,
            r.document.bytes.len() as f64 / 1e6,
            peak_mb(),
            before
        );
    }

    // The first bed's full disclosure as a FHIR Bundle.
    let export = svc.authorize(Some(&session), Permission::ExportIdentified, now)?;
    let before = reset_peak();
    let t = Instant::now();
    let mut out = Count(0);
    let s = export::export(
        svc.connection(),
        &export,
        &ExportRequest {
            bed: beds[0].clone(),
            from_ms: wave_from.max(now - 24 * H),
            to_ms: now,
            format: ExportFormat::Fhir,
            identified: true,
            waveforms: true,
            reason,
        },
        &mut out,
        None,
        now,
    )?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  FHIR export, {} h full disclosure: {} samples and {} readings in {:.1} s = {:.2} M samples/s, {:.0} MB of JSON; peak memory {:.0} MB (from {:.0})",
        a.wave_hours.min(24),
        s.samples,
        s.readings,
        secs,
        s.samples as f64 / secs / 1e6,
        out.0 as f64 / 1e6,
        peak_mb(),
        before
    );
    svc.logout(session, store::now_ms())?;
    drop(svc);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
