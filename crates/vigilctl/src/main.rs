//! `vigilctl`: the headless command-line face of the Vigil engine.
//!
//! - `vigilctl broker`: run the embedded MQTT broker on loopback;
//! - `vigilctl sim`: publish a simulated ward to a broker;
//! - `vigilctl record`: the headless engine (subscribe, store, evaluate alarms, log alarms).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use vigil_core::alarms::default_limits;
use vigil_core::broker;
use vigil_core::config::{self, BrokerUrl, FileConfig};
use vigil_core::engine::{Engine, EngineConfig};
use vigil_core::sim::{self, SimConfig};

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
}

#[derive(Args)]
struct SimArgs {
    /// Number of beds.
    #[arg(long, default_value_t = 8)]
    beds: usize,
    /// Broker URL, e.g. mqtt://127.0.0.1:1883.
    #[arg(long)]
    broker: BrokerUrl,
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off,rumqttc=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        match cli.cmd {
            Cmd::Broker { port } => run_broker(port).await,
            Cmd::Sim(a) => run_sim(a).await,
            Cmd::Record(a) => run_record(a).await,
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
    let mut cfg = SimConfig::new(a.broker.clone(), a.ward, a.beds);
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
    let broker_url = match (&a.broker, &file.broker.url) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(u)) => Some(u.parse::<BrokerUrl>()?),
        (None, None) => None,
    };
    let db_path = match a.db.or(file.storage.db) {
        Some(p) => p,
        None => config::default_db_path()?,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
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
            (b.url(), Some(tokio::spawn(sim::run(cfg, stop_rx.clone()))))
        }
    };
    let engine = Engine::start(EngineConfig {
        broker: broker_url.clone(),
        client_id: a
            .client_id
            .or(file.broker.client_id)
            .unwrap_or_else(config::default_client_id),
        ward: a.ward.or(file.broker.ward),
        db_path: db_path.clone(),
        limits: default_limits(),
    })?;
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
            engine.shutdown().await;
            bail!("stopped before the broker accepted the subscription");
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
    let rejects = c.rejects();
    engine.shutdown().await;
    println!("received {messages} messages: {samples} waveform samples, {readings} readings");
    for (reason, n) in rejects {
        println!("rejected {n} ({reason})");
    }
    Ok(())
}
