//! `vigilctl`: the headless command-line face of the Vigil engine.
//!
//! - `vigilctl broker`: run the embedded MQTT broker on loopback;
//! - `vigilctl sim`: publish a simulated ward to a broker;
//! - `vigilctl record`: the headless engine (subscribe, store, evaluate alarms, log alarms);
//! - `vigilctl replay`: publish a recording; `query`, `status`: the stored history;
//! - `vigilctl device`: the device registry;
//! - `vigilctl station`: the ward's other stations whose alarm state is believed;
//! - `vigilctl remote`: remote patients and their care plans, as a station user.

mod admin;
mod alarm_cmds;
mod bench;
mod bench_remote;
mod bench_report;
mod history;
mod remote_cmds;
mod remote_demo;
mod replay;
mod report_cmds;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;
use vigil_core::config::{self, BrokerSection, BrokerUrl, FileConfig};
use vigil_core::engine::{AlarmOptions, Engine, EngineConfig};
use vigil_core::report::ReportSettings;
use vigil_sim::broker;
use vigil_sim::{self as sim, SimConfig};

#[derive(Parser)]
#[command(name = "vigilctl", version, about = "Vigil central station, headless")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the embedded MQTT broker on 127.0.0.1 until interrupted.
    Broker {
        /// TCP port on 127.0.0.1.
        #[arg(long, default_value_t = 1883)]
        port: u16,
    },
    /// Publish a simulated ward (ECG, pleth, respiration, numerics) to a broker.
    Sim(SimArgs),
    /// Run the engine headless: subscribe, store to SQLite, evaluate alarms and log them.
    /// With no broker configured, starts the embedded broker and a simulated ward.
    Record(RecordArgs),
    /// Publish a recording (CSV) through the broker, at real time or faster.
    Replay(replay::ReplayArgs),
    /// Query the stored history (CSV on stdout).
    #[command(subcommand)]
    Query(history::QueryCmd),
    /// What a database holds: per bed and stream, gaps, rejects per reason.
    Status {
        #[arg(long)]
        db: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The device registry: which device feeds which bed.
    #[command(subcommand)]
    Device(history::DeviceCmd),
    /// Load harnesses that print figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Users (IT): add, list, disable, enable, reset-password, unlock, set-role.
    #[command(subcommand)]
    User(admin::UserCmd),
    /// The audit trail: verify its hash chain, list or export it.
    #[command(subcommand)]
    Audit(admin::AuditCmd),
    /// The ward's other stations (IT): this station's key, enrol, list, remove.
    #[command(subcommand)]
    Station(admin::StationCmd),
    /// The database itself: encrypt it at rest (migration).
    #[command(subcommand)]
    Db(admin::DbCmd),
    /// Remote patients (as a station user, --user): enrol, pause, resume, discharge, care
    /// plans, the enrolled list.
    #[command(subcommand)]
    Remote(remote_cmds::RemoteCmd),
    /// Score NEWS2 (sub-scores, total, risk band) from entered observations.
    News2(alarm_cmds::News2Args),
    /// Print documents (as a station user, --user): an alarm strip, a trend report, a shift
    /// handover; PDF, PNG or SVG. Audited with the reason.
    #[command(subcommand)]
    Report(report_cmds::ReportCmd),
    /// Export a bed's data for research (as a station user, --user): FHIR R4 or CSV,
    /// de-identified unless --identified. Audited with the reason.
    #[command(subcommand)]
    Export(report_cmds::ExportCmd),
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Full-rate simulated beds through Mosquitto into the engine; prints throughput, CPU,
    /// memory, stored bytes per sample and the ratio to mosquitto_sub.
    Ingest(bench::IngestArgs),
    /// Publish -> alarm raised latency (p50, p99) with full-rate beds as background load.
    Alarms(bench::AlarmArgs),
    /// The full pipeline at increasing bed counts (--steps), with publish -> alarm latency,
    /// bytes per bed-hour and the largest bed count sustained; --rss-every for memory over time.
    Load(bench::LoadArgs),
    /// Remote patients' watch at scale: enrol N patients with four schedules, store days of
    /// readings, time the evaluation of every schedule (the engine's tick) and the enrolled list.
    Remote(bench_remote::RemoteArgs),
    /// Printouts and exports at ward scale: 24 h trend reports of N beds, a 30 s 3-lead alarm
    /// strip, a 24 h full-disclosure FHIR export (time, memory, samples/s).
    Report(bench_report::ReportArgs),
}

#[derive(Args)]
struct SimArgs {
    /// Number of beds.
    #[arg(long, default_value_t = 8)]
    beds: usize,
    /// Broker URL, e.g. mqtt://127.0.0.1:1883 or mqtts://broker.ward4:8883.
    #[arg(long)]
    broker: BrokerUrl,
    #[command(flatten)]
    auth: BrokerAuthArgs,
    /// Ward name used in topics.
    #[arg(long, default_value = "sim")]
    ward: String,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration: Option<f64>,
    /// Seed for baselines and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Beds (1-based numbers, comma separated) that periodically breach alarm limits
    /// (default: bed 3, or the last bed of a smaller ward).
    #[arg(long, value_delimiter = ',')]
    breach: Option<Vec<usize>>,
    /// Write what was published (per bed and channel) as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
}

#[derive(Args)]
struct RecordArgs {
    /// Broker URL (overrides the config file). None anywhere: embedded broker + simulated ward.
    #[arg(long)]
    broker: Option<BrokerUrl>,
    #[command(flatten)]
    auth: BrokerAuthArgs,
    /// SQLite database file (default: from the config file, else the platform data directory).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Config file (default: $VIGIL_CONFIG, else vigil.toml in the platform config directory).
    #[arg(long, env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Only this ward.
    #[arg(long)]
    ward: Option<String>,
    /// MQTT client id (persistent session) of this station.
    #[arg(long)]
    client_id: Option<String>,
    /// Beds of the simulated ward in embedded mode.
    #[arg(long)]
    beds: Option<usize>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration: Option<f64>,
    /// Accept devices missing from the device registry (default with a broker: refuse them).
    #[arg(long)]
    allow_unregistered: bool,
    /// Also accept HL7 v2 over MLLP on this address (e.g. 127.0.0.1:2575).
    #[arg(long)]
    mllp: Option<std::net::SocketAddr>,
}

/// TLS and credentials for the broker; each overrides the config file's `[broker]` key.
#[derive(Args, Default)]
pub(crate) struct BrokerAuthArgs {
    /// CA bundle (PEM) that signed the broker's certificate (needed for mqtts://).
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; its CN is this client's identity.
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// MQTT user name; the password is read from $VIGIL_MQTT_PASSWORD (never a flag).
    #[arg(long)]
    username: Option<String>,
}

impl BrokerAuthArgs {
    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.username.is_some()
    }

    /// The `[broker]` section with these flags (and `url`) put over it.
    pub(crate) fn apply(self, mut s: BrokerSection, url: Option<&BrokerUrl>) -> BrokerSection {
        if let Some(u) = url {
            s.url = Some(u.to_string());
        }
        s.ca_file = self.ca.or(s.ca_file);
        if self.cert.is_some() {
            s.cert_file = self.cert;
            s.key_file = self.key;
        }
        if self.username.is_some() {
            s.username = self.username;
        }
        s
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    vigil_core::logging::init();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        match cli.cmd {
            Cmd::Broker { port } => run_broker(port).await,
            Cmd::Sim(a) => run_sim(a).await,
            Cmd::Record(a) => run_record(a).await,
            Cmd::Replay(a) => replay::run(a).await,
            Cmd::Query(q) => history::run_query(q),
            Cmd::Status { db, json } => history::run_status(db, json),
            Cmd::Device(d) => history::run_device(d),
            Cmd::Bench(BenchCmd::Ingest(a)) => bench::ingest(a).await,
            Cmd::Bench(BenchCmd::Alarms(a)) => bench::alarms(a).await,
            Cmd::Bench(BenchCmd::Load(a)) => bench::load(a).await,
            Cmd::Bench(BenchCmd::Remote(a)) => bench_remote::remote(a).await,
            Cmd::Bench(BenchCmd::Report(a)) => bench_report::report(a).await,
            Cmd::User(u) => admin::run_user(u),
            Cmd::Audit(a) => admin::run_audit(a),
            Cmd::Db(d) => admin::run_db(d),
            Cmd::Station(c) => admin::run_station(c),
            Cmd::Remote(remote_cmds::RemoteCmd::Simulate(a)) => remote_cmds::simulate(a).await,
            Cmd::Remote(remote_cmds::RemoteCmd::Demo(a)) => remote_demo::demo(a).await,
            Cmd::Remote(c) => remote_cmds::run(c),
            Cmd::Report(c) => report_cmds::report(c),
            Cmd::Export(c) => report_cmds::export(c),
            Cmd::News2(a) => alarm_cmds::news2(a),
        }
    })
}

/// Resolves when the process is asked to stop (Ctrl-C, SIGTERM) or after `duration` seconds.
async fn stop_signal(duration: Option<f64>) {
    let timer = async {
        match duration {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
                _ = timer => {},
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = timer => {},
                }
            }
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = timer => {},
    }
}

async fn run_broker(port: u16) -> Result<()> {
    let b = tokio::task::spawn_blocking(move || broker::start_embedded(Some(port)))
        .await
        .context("broker start task")??;
    println!("broker listening on {}", b.url());
    stop_signal(None).await;
    Ok(())
}

async fn run_sim(a: SimArgs) -> Result<()> {
    if a.beds == 0 {
        bail!("--beds must be at least 1");
    }
    let settings = a
        .auth
        .apply(BrokerSection::default(), Some(&a.broker))
        .settings()?
        .context("no broker URL")?;
    let mut cfg = SimConfig::new(settings, a.ward, a.beds);
    cfg.seed = a.seed;
    if let Some(b) = a.breach {
        if let Some(bad) = b.iter().find(|&&n| n == 0 || n > a.beds) {
            bail!("--breach {bad}: beds are numbered 1 to {}", a.beds);
        }
        cfg.breaching = b.into_iter().map(|n| n - 1).collect();
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let sim = tokio::spawn(sim::run(cfg, stop_rx));
    eprintln!("simulating {} beds on {}", a.beds, a.broker);
    stop_signal(a.duration).await;
    let _ = stop_tx.send(true);
    let report = sim.await.context("simulator task")??;
    let total: u64 = report.samples.values().flat_map(|m| m.values()).sum();
    eprintln!(
        "published {} messages ({} acknowledged), {} waveform samples",
        report.published, report.acknowledged, total
    );
    if let Some(path) = a.summary {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.acknowledged < report.published {
        bail!(
            "{} publishes were not acknowledged by the broker",
            report.published - report.acknowledged
        );
    }
    Ok(())
}

async fn run_record(a: RecordArgs) -> Result<()> {
    let file = FileConfig::load(a.config.as_deref())?;
    if a.auth.any() && a.broker.is_none() && file.broker.url.is_none() {
        bail!("--ca, --cert, --key and --username need a broker (--broker or [broker] url)");
    }
    let broker_url = a
        .auth
        .apply(file.broker.clone(), a.broker.as_ref())
        .settings()?;
    let db_path = match a.db.or(file.storage.db.clone()) {
        Some(p) => p,
        None => config::default_db_path()?,
    };
    // The recorder keeps a data directory for good: private, keyed as configured.
    let security = file.prepare_station(&db_path)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut policy = file.ingest.policy(broker_url.is_some());
    if a.allow_unregistered {
        policy.require_registered = false;
    }
    let (broker_url, sim_task) = match broker_url {
        Some(u) => (u, None),
        None => {
            let b = tokio::task::spawn_blocking(|| broker::start_embedded(None))
                .await
                .context("broker start task")??;
            let beds = a.beds.or(file.simulator.beds).unwrap_or(8);
            eprintln!(
                "no broker configured: embedded broker on {} with a simulated ward of {beds} beds",
                b.url()
            );
            let cfg = SimConfig::new(b.url(), "sim", beds);
            (
                b.url().into(),
                Some(tokio::spawn(sim::run(cfg, stop_rx.clone()))),
            )
        }
    };
    // As the window starts it: the ward profile, latching and standby beds IT last set.
    let (engine, _) = Engine::start_station(
        EngineConfig {
            broker: broker_url.clone(),
            client_id: a
                .client_id
                .or(file.broker.client_id)
                .unwrap_or_else(config::default_client_id),
            ward: a.ward.or(file.broker.ward),
            db_path: db_path.clone(),
            limits: Vec::new(),
            policy,
            mllp: file.ingest.mllp(a.mllp)?,
        },
        // As the window: alarm strips saved automatically as `[reports]` says.
        AlarmOptions {
            strips: Some(ReportSettings::from_section(&file.reports)?),
            ..AlarmOptions::default()
        },
        security,
    )?;
    let mut link = engine.link();
    let wait_subscribed = async {
        while !link.borrow_and_update().subscribed {
            if link.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = wait_subscribed => println!("subscribed to {broker_url}, recording to {}", db_path.display()),
        _ = stop_signal(a.duration) => {
            let why = engine.link().borrow().last_error.clone();
            engine.shutdown().await;
            match why {
                Some(e) => bail!("stopped before the broker accepted the subscription (last error: {e})"),
                None => bail!("stopped before the broker accepted the subscription"),
            }
        }
    }
    stop_signal(a.duration).await;
    let _ = stop_tx.send(true);
    if let Some(t) = sim_task {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "simulator task failed");
        }
    }
    let c = engine.counters();
    let (messages, samples, readings) = (
        c.messages.load(std::sync::atomic::Ordering::Relaxed),
        c.samples.load(std::sync::atomic::Ordering::Relaxed),
        c.readings.load(std::sync::atomic::Ordering::Relaxed),
    );
    let late = c.late.load(std::sync::atomic::Ordering::Relaxed);
    let rejects = c.rejects();
    engine.shutdown().await;
    println!("received {messages} messages: {samples} waveform samples, {readings} readings");
    if late > 0 {
        println!("late {late} (stored as history, not alarmed on)");
    }
    for (reason, n) in rejects {
        println!("rejected {n} ({reason})");
    }
    Ok(())
}
