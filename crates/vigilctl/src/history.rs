//! `vigilctl query`, `vigilctl status` and `vigilctl device`: the stored history and the device
//! registry, from the command line. Query output is CSV on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Authorized, Permission};
use vigil_core::codes::{self, Vital};
use vigil_core::ingest;
use vigil_core::query;
use vigil_core::security::{SecurityMonitor, Thresholds};
use vigil_core::store;
use vigil_core::telemetry::{parse_ward, utc_from_ms, BedId, DeviceId};
use vigil_core::usecase;

#[derive(Subcommand)]
pub enum QueryCmd {
    /// Trend of one vital for a bed, downsampled to min/max/mean per bucket (CSV).
    Trend {
        #[command(flatten)]
        w: Window,
        /// Vital: HR, PR, SPO2, RR, NIBP_SYS, NIBP_DIA, NIBP_MEAN, TEMP, ETCO2, WEIGHT (kg),
        /// GLUCOSE (mg/dL) (or its MDC code).
        #[arg(long)]
        code: String,
        /// Bucket length: e.g. 2s, 60s, 5m, 1h.
        #[arg(long, default_value = "60s")]
        bucket: String,
    },
    /// The stored samples of one waveform channel for a time window (CSV: time, value).
    Samples {
        #[command(flatten)]
        w: Window,
        /// Channel: ECG_I, ECG_II, ECG_III, ECG_V5, PLETH, RESP.
        #[arg(long)]
        channel: String,
    },
    /// Alarm history (CSV), for one bed or the whole database.
    Alarms {
        #[arg(long)]
        db: PathBuf,
        /// `ward/bed`; default all beds.
        #[arg(long)]
        bed: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Args)]
pub struct Window {
    #[arg(long)]
    db: PathBuf,
    /// `ward/bed`, e.g. `4W/12`.
    #[arg(long)]
    bed: String,
    /// Start: RFC 3339 time or ms since the epoch (default: the beginning).
    #[arg(long)]
    from: Option<String>,
    /// End (exclusive): RFC 3339 time or ms since the epoch (default: now + 1 day).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Subcommand)]
pub enum DeviceCmd {
    /// Register a device as feeding a bed (replaces an existing entry).
    Add {
        device: String,
        /// `ward/bed`.
        #[arg(long)]
        bed: String,
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        db: PathBuf,
    },
    /// Register the simulated monitors of `vigilctl sim` (`mon-{ward}-01` feeds `{ward}/01`, ...),
    /// so that a station which refuses unregistered devices stores the simulated ward.
    AddSim {
        /// Number of beds, as given to `vigilctl sim`.
        #[arg(long, default_value_t = 8)]
        beds: usize,
        /// Ward, as given to `vigilctl sim`.
        #[arg(long, default_value = "sim")]
        ward: String,
        #[arg(long)]
        db: PathBuf,
    },
    /// List registered devices.
    List {
        #[arg(long)]
        db: PathBuf,
    },
    /// Remove a device from the registry.
    Remove {
        device: String,
        #[arg(long)]
        db: PathBuf,
    },
}

pub fn parse_bed(s: &str) -> Result<BedId> {
    Ok(BedId::parse(s)?)
}

/// RFC 3339 or ms since the epoch.
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| anyhow!("time {s:?}: {e} (use RFC 3339 or ms since the epoch)"))
}

/// `60s`, `5m`, `1h`, `500ms`, or plain seconds.
pub fn parse_duration_ms(s: &str) -> Result<i64> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (s, 1000.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| anyhow!("duration {s:?}: e.g. 60s, 5m, 1h"))?;
    let ms = (v * mult).round();
    if !(1.0..1e13).contains(&ms) {
        bail!("duration {s:?} out of range");
    }
    Ok(ms as i64)
}

fn window(from: &Option<String>, to: &Option<String>) -> Result<(i64, i64)> {
    let from = from.as_deref().map(parse_time).transpose()?.unwrap_or(0);
    let to = to
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or_else(|| store::now_ms() + 86_400_000);
    if to <= from {
        bail!("--to must be after --from");
    }
    Ok((from, to))
}

fn iso(ms: i64) -> String {
    utc_from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn open_db(path: &std::path::Path) -> Result<rusqlite::Connection> {
    if !path.exists() {
        bail!("database {} does not exist", path.display());
    }
    store::open_read_only(path).with_context(|| format!("opening {}", path.display()))
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

pub fn run_query(cmd: QueryCmd) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cmd {
        QueryCmd::Trend { w, code, bucket } => {
            let vital = Vital::from_name(&code)
                .or_else(|| code.parse().ok().and_then(Vital::from_mdc))
                .ok_or_else(|| anyhow!("unknown vital {code:?}"))?;
            let bed = parse_bed(&w.bed)?;
            let (from, to) = window(&w.from, &w.to)?;
            let conn = open_db(&w.db)?;
            let rows = query::trend(&conn, &bed, vital, from, to, parse_duration_ms(&bucket)?)?;
            writeln!(out, "time,t_ms,min,max,mean,n,unit")?;
            for b in rows {
                writeln!(
                    out,
                    "{},{},{},{},{:.3},{},{}",
                    iso(b.t_ms),
                    b.t_ms,
                    b.min,
                    b.max,
                    b.mean,
                    b.n,
                    vital.unit()
                )?;
            }
        }
        QueryCmd::Samples { w, channel } => {
            if codes::channel(&channel).is_none() {
                bail!("unknown channel {channel:?}");
            }
            let bed = parse_bed(&w.bed)?;
            let (from, to) = window(&w.from, &w.to)?;
            let conn = open_db(&w.db)?;
            let s = query::samples(&conn, &bed, &channel, from, to)?;
            writeln!(out, "t_ms,value,unit")?;
            for g in &s.gaps {
                eprintln!("gap: {} .. {}", iso(g.0), iso(g.1));
            }
            for seg in &s.segments {
                for (i, v) in seg.values.iter().enumerate() {
                    let t = seg.t0_ms as f64 + i as f64 * 1000.0 / seg.rate;
                    writeln!(out, "{t:.3},{v},{}", seg.unit)?;
                }
            }
        }
        QueryCmd::Alarms { db, bed, from, to } => {
            let bed = bed.as_deref().map(parse_bed).transpose()?;
            let (from, to) = window(&from, &to)?;
            let conn = open_db(&db)?;
            writeln!(
                out,
                "time,t_ms,bed,alarm_id,code,event,priority,value,limit,message,user,state,level,audible"
            )?;
            for a in query::alarms(&conn, bed.as_ref(), from, to)? {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    iso(a.t_ms),
                    a.t_ms,
                    csv_field(&a.bed.key()),
                    csv_field(&a.alarm_id),
                    a.code,
                    a.kind,
                    a.priority,
                    opt(a.value),
                    opt(a.limit),
                    csv_field(&a.message),
                    csv_field(a.user.as_deref().unwrap_or("")),
                    a.state,
                    a.level,
                    a.audible
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn run_status(db: PathBuf, json: bool) -> Result<()> {
    let conn = open_db(&db)?;
    let st = query::status(&conn)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<20} {:>10} {:>12} {:>8} {:>6} {:>8}",
        "bed", "stream", "chunks", "samples", "B/sample", "gaps", "missing"
    );
    for (bed, streams) in &st.beds {
        for (name, s) in streams {
            let bps = if s.samples > 0 && s.bytes > 0 {
                format!("{:.2}", s.bytes as f64 / s.samples as f64)
            } else {
                "-".into()
            };
            println!(
                "{bed:<14} {name:<20} {:>10} {:>12} {bps:>8} {:>6} {:>8}",
                s.chunks, s.samples, s.gaps, s.missing_chunks
            );
        }
    }
    println!("alarm events: {}", st.alarm_events);
    println!("registered devices: {}", st.registered_devices);
    if st.rejects.is_empty() {
        println!("rejects: none");
    }
    for (reason, n) in &st.rejects {
        println!("rejected {n} ({reason})");
    }
    Ok(())
}

/// The station's database as the command-line user acting as IT (audited as `cli:<user>`),
/// allowed to manage devices; what it changes is a security event, stored by [`It::done`].
struct It {
    svc: AuthService,
    auth: Authorized,
    monitor: Arc<SecurityMonitor>,
}

impl It {
    fn open(db: &std::path::Path) -> Result<It> {
        let mut svc = AuthService::open(db, AuthConfig::default())?;
        let monitor = Arc::new(SecurityMonitor::new(Thresholds::default()));
        svc.set_security(Arc::clone(&monitor));
        let auth =
            svc.authorize_admin(&Actor::cli(), Permission::ManageDevices, store::now_ms())?;
        Ok(It { svc, auth, monitor })
    }

    /// Register one device to its bed ([`usecase::register_device`]).
    fn register(&self, input: &usecase::RegisterDevice) -> Result<()> {
        usecase::register_device(&self.svc, &self.auth, input, store::now_ms())?;
        println!("device {} feeds bed {}", input.device, input.bed);
        Ok(())
    }

    /// Store the security events of what was changed (IT's Security screen shows them).
    fn done(self) -> Result<()> {
        self.monitor
            .flush(self.svc.connection(), store::now_ms())
            .context("recording the configuration change as a security event")?;
        Ok(())
    }
}

pub fn run_device(cmd: DeviceCmd) -> Result<()> {
    match cmd {
        DeviceCmd::Add {
            device,
            bed,
            label,
            db,
        } => {
            let input = usecase::RegisterDevice {
                device: DeviceId::parse(&device)?,
                bed: parse_bed(&bed)?,
                label: usecase::Label::parse(&label)?,
            };
            let it = It::open(&db)?;
            it.register(&input)?;
            it.done()?;
        }
        DeviceCmd::AddSim { beds, ward, db } => {
            parse_ward(&ward)?;
            if beds == 0 {
                bail!("--beds must be at least 1");
            }
            let it = It::open(&db)?;
            for i in 0..beds {
                let (device, bed) = vigil_sim::monitor(&ward, i);
                let input = usecase::RegisterDevice {
                    device: DeviceId::parse(&device).with_context(|| {
                        format!("ward {ward:?} is too long for simulated device ids")
                    })?,
                    bed,
                    label: usecase::Label::parse("simulated monitor")?,
                };
                it.register(&input)?;
            }
            it.done()?;
        }
        DeviceCmd::List { db } => {
            let conn = open_db(&db)?;
            println!("device,bed,label,enabled");
            for d in ingest::list_devices(&conn)? {
                println!(
                    "{},{},{},{}",
                    d.device,
                    d.bed,
                    csv_field(&d.label),
                    d.enabled
                );
            }
        }
        DeviceCmd::Remove { device, db } => {
            let device = DeviceId::parse(&device)?;
            let it = It::open(&db)?;
            usecase::remove_device(&it.svc, &it.auth, &device, store::now_ms())?;
            it.done()?;
            println!("device {device} removed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(parse_duration_ms("60s").ok(), Some(60_000));
        assert_eq!(parse_duration_ms("5m").ok(), Some(300_000));
        assert_eq!(parse_duration_ms("1h").ok(), Some(3_600_000));
        assert_eq!(parse_duration_ms("250ms").ok(), Some(250));
        assert_eq!(parse_duration_ms("2").ok(), Some(2000));
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("x").is_err());
        assert_eq!(parse_time("1000").ok(), Some(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z").ok(), Some(1000));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_bed("4W/12").ok(), Some(BedId::new("4W", "12")));
        assert!(parse_bed("4W").is_err());
        assert!(parse_bed("4W/+").is_err());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
