//! `vigilctl remote demo`: the simulated remote cohort on compressed time ("a day in a few
//! minutes"), headless, for training and demonstrations. An embedded broker, an engine whose
//! clock runs `--speed` times faster than the wall clock (`ScaledClock`), the cohort enrolled
//! there (as `sim:cohort`, `vigil_core::remote::cohort::seed`) and its home devices playing the
//! script on the same clock (`vigil_sim::remote::run`); each care-plan alert the station's watch
//! raises, escalates or resolves is printed with the simulated time, then a summary.
//!
//! A station's own clock is never scaled (the ward's alarm delays would be too), so this runs
//! apart from any station: on a new database file of its own, whose data is stamped in the
//! compressed time (in the future of the wall clock: no station should ever open it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::sync::broadcast::error::RecvError;
use vigil_core::audit::format_time_utc;
use vigil_core::auth::{AuthConfig, AuthService};
use vigil_core::engine::{
    AlarmOptions, Clock, Engine, EngineConfig, LiveEvent, ScaledClock, SecurityOptions,
};
use vigil_core::ingest::IngestPolicy;
use vigil_core::remote::watch::{AlertChange, Change};
use vigil_sim::broker;
use vigil_sim::remote::{self as home, CohortConfig, Progress, TimeSource};

/// `vigilctl remote demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// A new SQLite database file for the demonstration (refused if it exists: what it writes
    /// is stamped in compressed time, never for a station's own database).
    #[arg(long)]
    db: PathBuf,
    /// How many times faster than real time the cohort lives: 480 is a day in 3 minutes.
    #[arg(long, default_value_t = 480.0)]
    speed: f64,
    /// Seed of the cohort's values and times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds of real time (default: run until interrupted).
    #[arg(long)]
    duration: Option<f64>,
}

/// The fastest the demonstration runs: a day in 5 s. Faster, the watch's passes (every 250 ms)
/// would be hours of the cohort's time apart.
const MAX_SPEED: f64 = 17_280.0;

pub async fn demo(a: DemoArgs) -> Result<()> {
    if !(1.0..=MAX_SPEED).contains(&a.speed) {
        bail!("--speed must be from 1 to {MAX_SPEED} (480: a day in 3 minutes)");
    }
    if a.db.exists() {
        bail!(
            "{} exists: a demonstration writes a database of its own, stamped in compressed \
             time; give a new file",
            a.db.display()
        );
    }
    let broker = tokio::task::spawn_blocking(|| broker::start_embedded(None))
        .await
        .context("broker start task")??;

    // The cohort enrolled first (its devices registered, its beds remote when the engine
    // starts), from now on: it all happens in front of you.
    let started = vigil_core::store::now_ms();
    let mut cohort_cfg = CohortConfig::new(broker.url(), started, 0);
    cohort_cfg.seed = a.seed;
    cohort_cfg.client_id = format!("vigilctl-remote-demo-{}", std::process::id());
    cohort_cfg.poll = Duration::from_millis(50);
    // What the cohort did while the engine was starting (hours of its time, at speed) is
    // published at once when the publisher starts, with its own times.
    cohort_cfg.backfill_ms = 24 * 3_600_000;
    let members = home::members(&cohort_cfg.cohort());
    {
        let (db, now) = (a.db.clone(), started);
        let seeded = tokio::task::spawn_blocking(move || {
            let svc = AuthService::open(&db, AuthConfig::default())?;
            vigil_core::remote::cohort::seed(&svc, &members, now, now).map_err(anyhow::Error::from)
        })
        .await
        .context("enrolment task")??;
        eprintln!(
            "{} remote patients enrolled in {} (ward {}), {}x real time",
            seeded.enrolled.len(),
            a.db.display(),
            vigil_sim::cohort::WARD,
            a.speed
        );
    }

    let clock = Arc::new(ScaledClock::new(started, a.speed));
    let engine = Engine::start_clocked(
        EngineConfig {
            broker: broker.url().into(),
            client_id: "vigilctl-remote-demo".into(),
            ward: Some(vigil_sim::cohort::WARD.into()),
            db_path: a.db.clone(),
            limits: vigil_core::alarms::default_limits(),
            // The simulated devices on this loopback broker are the cohort's, registered.
            policy: IngestPolicy::default(),
            mllp: None,
        },
        AlarmOptions {
            // A pass every 250 ms of real time: 2 minutes of the cohort's at 480x.
            remote_tick: Duration::from_millis(250),
            ..AlarmOptions::default()
        },
        SecurityOptions::default(),
        Arc::clone(&clock) as Arc<dyn Clock>,
    )?;
    let mut live = engine.handle().subscribe();
    let mut link = engine.link();
    let subscribed = async {
        while !link.borrow_and_update().subscribed {
            if link.changed().await.is_err() {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), subscribed)
        .await
        .is_err()
    {
        engine.shutdown().await;
        bail!("the demonstration's station did not subscribe to its embedded broker");
    }
    let c = Arc::clone(&clock);
    let now: TimeSource = Arc::new(move || c.now_ms());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (progress_tx, _progress) = tokio::sync::watch::channel(Progress::default());
    let publisher = tokio::spawn(home::run(cohort_cfg, now, stop_rx, progress_tx));

    let mut counts: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    let stop = crate::stop_signal(a.duration);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = live.recv() => match ev {
                Ok(LiveEvent::Remote(u)) => {
                    for ch in &u.alerts {
                        println!("{}", line(ch, clock.now_ms()));
                        *counts.entry((ch.kind.as_str(), change_name(ch.change))).or_default() += 1;
                    }
                }
                Ok(_) => {}
                // Ward events may outrun this printer; the alerts are in the database anyway.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
        }
    }
    let _ = stop_tx.send(true);
    let done = publisher.await.context("the cohort's publisher")??;
    let rejects = engine.counters().rejects();
    let simulated_h = (clock.now_ms() - started) as f64 / 3_600_000.0;
    engine.shutdown().await;
    println!(
        "simulated {simulated_h:.1} h of the cohort: {} messages published, {} acknowledged",
        done.published, done.acknowledged
    );
    for ((kind, change), n) in &counts {
        println!("{n} {kind} {change}");
    }
    for (reason, n) in &rejects {
        println!("rejected {n} ({reason})");
    }
    Ok(())
}

fn change_name(c: Change) -> String {
    match c {
        Change::Raised(level) => format!("raised ({level:?})").to_lowercase(),
        Change::Escalated => "escalated".into(),
        Change::Resolved(r) => format!("resolved ({})", r.as_str()),
    }
}

/// "2026-12-07 21:02 (cohort time) home/h-03 missed_reading bp 2026-12-07: raised (warning)".
fn line(ch: &AlertChange, now_ms: i64) -> String {
    let at = format_time_utc(now_ms);
    format!(
        "{} (cohort time) {} {} {} {}: {}",
        at.get(..16).unwrap_or(&at),
        ch.bed,
        ch.kind.as_str(),
        ch.item,
        ch.slot_date,
        change_name(ch.change)
    )
}
