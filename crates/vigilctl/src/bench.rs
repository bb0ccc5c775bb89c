//! `vigilctl bench ingest`: a load harness that prints figures (not a timed test).
//!
//! It starts Mosquitto (Debian's, on a free loopback port) unless `--broker` is given, runs the
//! engine as a separate `vigilctl record` process, drains the same stream with `mosquitto_sub`
//! as the ceiling, and publishes a simulated ward of `--beds` full-rate beds (ECG 2 × 500 Hz,
//! pleth 125 Hz, resp 62.5 Hz, numerics 1 Hz) for `--seconds`. It reports sustained samples/s
//! and messages/s, the engine's CPU and peak RSS (from /proc), stored bytes per sample, and the
//! engine/mosquitto_sub message ratio, ending with one machine-readable `RESULT` line.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use tokio::sync::watch;
use vigil_core::config::BrokerUrl;
use vigil_core::{query, store};
use vigil_sim::{self as sim, SimConfig};

#[derive(Args)]
pub struct IngestArgs {
    /// Simulated beds at full rate.
    #[arg(long, default_value_t = 128)]
    beds: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Use this broker instead of starting Mosquitto (then mosquitto_sub must reach it).
    #[arg(long)]
    broker: Option<BrokerUrl>,
    /// Keep the benchmark database here (default: a temporary directory).
    #[arg(long)]
    db: Option<PathBuf>,
}

/// A child process killed (SIGTERM, then SIGKILL) on drop.
struct Guard(Child);

impl Guard {
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        self.0.wait().ok()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn program(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{name} not found (scripts/setup.sh installs it)"))
}

/// CPU seconds (user + system) and peak RSS in MiB of a process, from /proc.
fn proc_usage(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("bad /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok((ticks / hz, hwm_kb / 1024.0))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_mosquitto(dir: &Path) -> Result<(Guard, BrokerUrl)> {
    let port = free_port()?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 1000000\nmax_inflight_messages 20000\n\
             log_dest file {}\nuser root\n",
            dir.join("mosquitto.log").display()
        ),
    )?;
    let child = Command::new(program("mosquitto")?)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto")?;
    let g = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("mosquitto did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((g, BrokerUrl::plain("127.0.0.1", port)))
}

pub async fn ingest(a: IngestArgs) -> Result<()> {
    if a.beds == 0 || a.seconds == 0 {
        bail!("--beds and --seconds must be positive");
    }
    let r = run_step(&StepOpts {
        beds: a.beds,
        seconds: a.seconds,
        broker: a.broker.clone(),
        db: a.db.clone(),
        probe: false,
        rss_every: None,
        encrypt: false,
        budget_kib: 1024,
        flood: None,
    })
    .await?;
    r.print();
    Ok(())
}

#[derive(Args)]
pub struct LoadArgs {
    /// Bed counts to run, one step each, in order (a fresh broker, engine and database per step).
    #[arg(long, value_delimiter = ',', default_value = "128,256,512,768,1024")]
    steps: Vec<usize>,
    /// Seconds of load per step.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Sample the engine's RSS this often (seconds) and report whether it stays flat.
    #[arg(long)]
    rss_every: Option<u64>,
    /// Stop at the first step that is not sustained.
    #[arg(long)]
    stop_early: bool,
    /// Encrypt the engine's database (SQLCipher, `[storage] encrypt = true`) to measure what
    /// encryption at rest costs.
    #[arg(long)]
    encrypt: bool,
    /// The engine's per-device byte budget, KiB/s (`[ingest] device_bytes_per_s`); a simulated
    /// bed sends about 25 KB/s. 1 to 1048576 (1 GiB/s).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    budget_kib: u64,
    /// A device on its own bed floods waveform chunks at this multiple of its byte budget
    /// (e.g. 10) beside the ward: the probe's latency shows what it costs the other beds.
    #[arg(long)]
    flood: Option<f64>,
}

/// `vigilctl bench load`: the full pipeline at increasing bed counts. Each step runs
/// [`run_step`] with an alarm probe (publish → alarm latency measured in the same run) and prints
/// its `RESULT` line; a last `RESULT` line names the largest bed count sustained.
pub async fn load(a: LoadArgs) -> Result<()> {
    if a.steps.is_empty() || a.steps.contains(&0) || a.seconds == 0 {
        bail!("--steps must list positive bed counts and --seconds must be positive");
    }
    let mut best: Option<usize> = None;
    let mut lines = Vec::new();
    for &beds in &a.steps {
        let r = run_step(&StepOpts {
            beds,
            seconds: a.seconds,
            broker: None,
            db: None,
            probe: true,
            rss_every: a.rss_every,
            encrypt: a.encrypt,
            budget_kib: a.budget_kib,
            flood: a.flood,
        })
        .await?;
        r.print();
        lines.push(r.result_line());
        if r.sustained() {
            best = Some(best.map_or(beds, |b| b.max(beds)));
        } else if a.stop_early {
            break;
        }
    }
    println!();
    for l in &lines {
        println!("{l}");
    }
    println!(
        "RESULT max_sustained_beds={} steps={} seconds={}",
        best.map_or_else(|| "none".to_string(), |b| b.to_string()),
        a.steps
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(","),
        a.seconds
    );
    Ok(())
}

/// One run of the pipeline.
struct StepOpts {
    beds: usize,
    seconds: u64,
    broker: Option<BrokerUrl>,
    db: Option<PathBuf>,
    /// Measure publish → alarm latency with a probe monitor beside the ward.
    probe: bool,
    /// Sample the engine's RSS every so many seconds.
    rss_every: Option<u64>,
    /// The engine's database encrypted (SQLCipher).
    encrypt: bool,
    /// The engine's per-device byte budget, KiB/s.
    budget_kib: u64,
    /// A flooding device at this multiple of its budget.
    flood: Option<f64>,
}

/// What one run measured.
struct StepResult {
    beds: usize,
    seconds: u64,
    published: u64,
    published_samples: u64,
    publish_s: f64,
    engine_msgs: u64,
    engine_samples: u64,
    sub_total: u64,
    sub_done_s: f64,
    cpu_pct: f64,
    sub_cpu_pct: f64,
    rss_mb: f64,
    bytes_per_sample: f64,
    ecg_bytes_per_sample: f64,
    db_bytes: u64,
    /// Publish → alarm raised, ms, sorted; and probes that saw no alarm within 2 s.
    alarm_ms: Vec<f64>,
    alarm_missed: u32,
    /// (seconds since start, RSS MiB) samples.
    rss_series: Vec<(f64, f64)>,
    probe: bool,
    /// MiB the engine wrote to the write-ahead log (disk wear), from its closing log line.
    wal_mib: Option<f64>,
    /// COMM LOST alarms the engine raised while the ward ran (none is expected: every bed
    /// keeps sending).
    comm_lost: u64,
    /// With a flood: chunks the flooder published and whether its bed got DEVICE OVER BUDGET.
    flood: Option<(u64, bool)>,
}

/// Messages per bed and second at full rate: 4 waveform channels × 4 chunks, 1 vitals message.
const MSGS_PER_BED_S: f64 = 17.0;
/// A step is sustained only if the publisher offered at least this share of the nominal rate.
const MIN_OFFERED: f64 = 0.95;

impl StepResult {
    fn per(&self, n: u64) -> f64 {
        n as f64 / self.publish_s
    }

    fn ceiling_ratio(&self) -> f64 {
        self.engine_msgs as f64 / self.sub_total.max(1) as f64
    }

    /// Offered load against the nominal full rate of `beds` beds.
    fn offered_ratio(&self) -> f64 {
        self.per(self.published) / (self.beds as f64 * MSGS_PER_BED_S)
    }

    /// The engine got everything published (within 2 s of mosquitto_sub draining it) while
    /// the publisher offered the full rate, and no alarm probe was missed.
    fn sustained(&self) -> bool {
        self.engine_msgs >= self.published
            && self.engine_samples >= self.published_samples
            && self.offered_ratio() >= MIN_OFFERED
            && self.alarm_missed == 0
    }

    fn bytes_per_bed_hour(&self) -> f64 {
        self.db_bytes as f64 / self.beds as f64 / (self.publish_s / 3600.0)
    }

    /// Write-ahead log written per bed and hour of load, MiB.
    fn wal_mib_per_bed_hour(&self) -> Option<f64> {
        Some(self.wal_mib? / self.beds as f64 / (self.publish_s / 3600.0))
    }

    fn pct(&self, p: f64) -> Option<f64> {
        percentile(&self.alarm_ms, p)
    }

    /// RSS after warm-up (the first fifth of the run): first, last and largest sample, MiB.
    fn rss_trend(&self) -> Option<(f64, f64, f64)> {
        let warm = self.seconds as f64 / 5.0;
        let after: Vec<f64> = self
            .rss_series
            .iter()
            .filter(|(t, _)| *t >= warm)
            .map(|(_, r)| *r)
            .collect();
        let (first, last) = (*after.first()?, *after.last()?);
        let max = after.iter().copied().fold(first, f64::max);
        Some((first, last, max))
    }

    fn print(&self) {
        println!("beds                      {}", self.beds);
        println!(
            "published                 {} messages, {} samples in {:.1} s ({:.3} of the full rate)",
            self.published,
            self.published_samples,
            self.publish_s,
            self.offered_ratio()
        );
        println!(
            "engine received           {} messages, {} samples",
            self.engine_msgs, self.engine_samples
        );
        println!(
            "mosquitto_sub received    {} messages (drained after {:.1} s)",
            self.sub_total, self.sub_done_s
        );
        println!(
            "samples/s                 {:.0}",
            self.per(self.engine_samples)
        );
        println!(
            "messages/s                {:.0}",
            self.per(self.engine_msgs)
        );
        println!(
            "engine CPU                {:.1} % of one core (mosquitto_sub {:.1} %)",
            self.cpu_pct, self.sub_cpu_pct
        );
        println!("engine peak RSS           {:.1} MiB", self.rss_mb);
        println!(
            "stored waveform bytes     {:.3} per sample (ECG {:.3}); database {:.1} MiB, {:.1} MiB per bed-hour",
            self.bytes_per_sample,
            self.ecg_bytes_per_sample,
            self.db_bytes as f64 / 1048576.0,
            self.bytes_per_bed_hour() / 1048576.0
        );
        if let (Some(w), Some(per)) = (self.wal_mib, self.wal_mib_per_bed_hour()) {
            println!("write-ahead log written   {w:.0} MiB, {per:.1} MiB per bed-hour");
        }
        println!("engine / mosquitto_sub    {:.3}", self.ceiling_ratio());
        if self.probe {
            match (self.pct(0.5), self.pct(0.99), self.pct(1.0)) {
                (Some(p50), Some(p99), Some(max)) => println!(
                    "publish -> alarm raised   p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({} probes, {} missed)",
                    self.alarm_ms.len(),
                    self.alarm_missed
                ),
                _ => println!("publish -> alarm raised   no alarm seen ({} missed)", self.alarm_missed),
            }
        }
        println!("COMM LOST raised          {}", self.comm_lost);
        if let Some((n, alarmed)) = self.flood {
            println!(
                "flood                     {n} chunks; DEVICE OVER BUDGET on its bed: {}",
                if alarmed { "yes" } else { "no" }
            );
        }
        if let Some((first, last, max)) = self.rss_trend() {
            let series: Vec<String> = self
                .rss_series
                .iter()
                .map(|(t, r)| format!("{t:.0}s:{r:.1}"))
                .collect();
            println!("engine RSS over time      {} (MiB)", series.join(" "));
            println!(
                "RESULT beds={} seconds={} rss_after_warmup_mb={first:.1} rss_end_mb={last:.1} rss_max_mb={max:.1} rss_growth_mb={:.1} rss_flat={}",
                self.beds,
                self.seconds,
                last - first,
                if rss_flat(first, last, max) { "yes" } else { "no" }
            );
        }
        println!("{}", self.result_line());
    }

    fn result_line(&self) -> String {
        let mut l = format!(
            "RESULT beds={} sustained={} samples_per_s={:.0} msgs_per_s={:.0} offered_ratio={:.3} cpu_pct={:.1} rss_mb={:.1}",
            self.beds,
            if self.sustained() { "yes" } else { "no" },
            self.per(self.engine_samples),
            self.per(self.engine_msgs),
            self.offered_ratio(),
            self.cpu_pct,
            self.rss_mb,
        );
        if self.probe {
            let f = |x: Option<f64>| x.map_or_else(|| "none".into(), |v| format!("{v:.1}"));
            l += &format!(
                " alarm_p50_ms={} alarm_p99_ms={} alarm_probes={} alarm_missed={}",
                f(self.pct(0.5)),
                f(self.pct(0.99)),
                self.alarm_ms.len(),
                self.alarm_missed
            );
        }
        l += &format!(
            " bytes_per_sample={:.3} bytes_per_bed_hour={:.0} ceiling_ratio={:.3}",
            self.bytes_per_sample,
            self.bytes_per_bed_hour(),
            self.ceiling_ratio()
        );
        if let Some(w) = self.wal_mib_per_bed_hour() {
            l += &format!(" wal_mib_per_bed_hour={w:.1}");
        }
        l += &format!(" comm_lost={}", self.comm_lost);
        if let Some((n, alarmed)) = self.flood {
            l += &format!(
                " flood_chunks={n} flood_alarm={}",
                if alarmed { "yes" } else { "no" }
            );
        }
        l
    }
}

/// RSS is flat when, after warm-up, it ends within 10 % (at least 4 MiB) of where it started
/// and never went more than 20 % (at least 8 MiB) above it.
fn rss_flat(first: f64, last: f64, max: f64) -> bool {
    last - first <= (first * 0.10).max(4.0) && max - first <= (first * 0.20).max(8.0)
}

fn vm_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

async fn run_step(a: &StepOpts) -> Result<StepResult> {
    let tmp = tempdir()?;
    let (_broker, url) = match &a.broker {
        Some(u) => (None, u.clone()),
        None => {
            let (g, u) = start_mosquitto(&tmp)?;
            (Some(g), u)
        }
    };
    let db = a.db.clone().unwrap_or_else(|| tmp.join("bench.db"));
    let _ = std::fs::remove_file(&db);

    // The engine, as its own process. Its alarm log (stderr) is read for the probe's alarms.
    let exe = std::env::current_exe()?;
    // The engine's config (private, as the engine requires): encryption when measured, the
    // per-device byte budget.
    let mut conf = format!("[ingest]\ndevice_bytes_per_s = {}\n", a.budget_kib * 1024);
    if a.encrypt {
        conf += "[storage]\nencrypt = true\n";
    }
    vigil_core::secure_fs::replace_private(&tmp.join("none.toml"), conf.as_bytes())?;
    if a.encrypt {
        println!("database encrypted (SQLCipher)");
    }
    let mut engine = Command::new(&exe)
        .args([
            "record",
            "--allow-unregistered",
            "--client-id",
            "bench-engine",
        ])
        .arg("--broker")
        .arg(url.to_string())
        .arg("--db")
        .arg(&db)
        .env("VIGIL_CONFIG", tmp.join("none.toml"))
        .env(
            "RUST_LOG",
            "warn,vigil::alarm=info,vigil_core::engine=info,rumqttd=off",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the engine")?;
    let pid = engine.id();
    let out = engine
        .stdout
        .take()
        .ok_or_else(|| anyhow!("engine stdout"))?;
    let err = engine
        .stderr
        .take()
        .ok_or_else(|| anyhow!("engine stderr"))?;
    let mut engine = Guard(engine);
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = line_tx.send(l);
        }
    });
    // Probe alarm lines, stamped as they are read.
    let (alarm_tx, mut alarm_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, bool)>();
    // The writer's figures, from its closing log line: MiB written to the write-ahead log.
    // COMM LOST counts only while the ward runs (every bed's comm is lost once it stops).
    let loaded = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let running = Arc::clone(&loaded);
    let err_reader = std::thread::spawn(move || {
        let mut wal_mib = None;
        let (mut comm_lost, mut over_budget) = (0u64, false);
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if l.contains("code=COMM_LOST")
                && l.contains("ALARM")
                && !l.contains("RESOLVED")
                && running.load(Ordering::Relaxed)
            {
                comm_lost += 1;
                println!("engine: {}", l.trim());
            }
            if l.contains(FLOOD_BED) && l.contains("code=DEVICE_OVER_BUDGET") {
                over_budget = true;
            }
            if let Some(v) = l.split("wal_mib_written=").nth(1) {
                wal_mib = v
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<f64>().ok());
            }
            if l.contains(PROBE_BED) && l.contains("code=HR_HIGH") {
                let _ = alarm_tx.send((Instant::now(), !l.contains("RESOLVED")));
            } else if l.contains("store writer closed")
                || l.contains("database commit")
                || l.contains("write-ahead log")
            {
                // The writer's own figures (slowest commit and checkpoint) and disk warnings.
                println!("engine: {}", l.trim());
            }
        }
        (wal_mib, comm_lost, over_budget)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match line_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.starts_with("subscribed") => break,
            Ok(_) => {}
            Err(_) => bail!("the engine did not subscribe within 20 s"),
        }
    }

    // The ceiling: mosquitto_sub draining the same stream.
    let mut sub = Command::new(program("mosquitto_sub")?)
        .args(["-h", &url.host, "-p", &url.port.to_string()])
        .args(["-t", "vigil/v1/#", "-q", "1", "-F", "%t"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto_sub")?;
    let sub_out = sub.stdout.take().ok_or_else(|| anyhow!("sub stdout"))?;
    let sub_pid = sub.id();
    let mut sub = Guard(sub);
    let sub_msgs = Arc::new(AtomicU64::new(0));
    let sc = Arc::clone(&sub_msgs);
    std::thread::spawn(move || {
        for _ in BufReader::new(sub_out).lines().map_while(Result::ok) {
            sc.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (cpu0, _) = proc_usage(pid)?;
    let (sub_cpu0, _) = proc_usage(sub_pid)?;
    let t0 = Instant::now();
    eprintln!(
        "bench: {} beds at full rate for {} s through {url}{}",
        a.beds,
        a.seconds,
        if a.probe { ", with an alarm probe" } else { "" }
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = SimConfig::new(url.clone(), "bench", a.beds);
    let sim_task = tokio::spawn(sim::run(cfg, stop_rx));
    let flood_task = a.flood.map(|x| {
        let rate = x * (a.budget_kib * 1024) as f64;
        eprintln!(
            "bench: a device floods at {x}x its budget ({:.0} KiB/s)",
            rate / 1024.0
        );
        tokio::spawn(flood(url.clone(), rate, stop_tx.subscribe()))
    });
    let end = t0 + Duration::from_secs(a.seconds);
    let probe_task = if a.probe {
        let url = url.clone();
        let stop = stop_tx.subscribe();
        Some(tokio::spawn(async move {
            // Let the ward's first second (connections, first alarms) pass.
            tokio::time::sleep(Duration::from_secs(1)).await;
            probe(url, &mut alarm_rx, stop).await
        }))
    } else {
        None
    };
    let mut rss_series = Vec::new();
    let every = a.rss_every.map(|s| Duration::from_secs(s.max(1)));
    let mut next_rss = t0 + every.unwrap_or_default();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        match every {
            Some(e) => {
                if now >= next_rss {
                    if let Some(r) = vm_rss_mb(pid) {
                        rss_series.push((t0.elapsed().as_secs_f64(), r));
                    }
                    next_rss += e;
                }
                tokio::time::sleep(next_rss.min(end).saturating_duration_since(now)).await;
            }
            None => tokio::time::sleep(end - now).await,
        }
    }
    if every.is_some() {
        if let Some(r) = vm_rss_mb(pid) {
            rss_series.push((t0.elapsed().as_secs_f64(), r));
        }
    }
    let _ = stop_tx.send(true);
    loaded.store(false, Ordering::Relaxed);
    let report = sim_task.await??;
    let flooded = match flood_task {
        Some(t) => Some(t.await??),
        None => None,
    };
    let publish_s = t0.elapsed().as_secs_f64();
    let (alarm_ms, alarm_missed) = match probe_task {
        Some(t) => t.await??,
        None => (Vec::new(), 0),
    };
    // The probe's own messages count as published too.
    let published = report.published + alarm_ms.len() as u64 * 2 + u64::from(alarm_missed) * 2;
    // Let both subscribers drain what the broker still holds (bounded).
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while sub_msgs.load(Ordering::Relaxed) < published && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sub_done_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu1, rss_mb) = proc_usage(pid)?;
    let (sub_cpu1, _) = proc_usage(sub_pid)?;
    let wall = t0.elapsed().as_secs_f64();
    engine.stop();
    sub.stop();
    let mut engine_msgs = 0u64;
    let mut engine_samples = 0u64;
    while let Ok(l) = line_rx.try_recv() {
        // "received N messages: S waveform samples, R readings"
        if let Some(rest) = l.strip_prefix("received ") {
            let nums: Vec<u64> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|x| x.parse().ok())
                .collect();
            engine_msgs = nums.first().copied().unwrap_or(0);
            engine_samples = nums.get(1).copied().unwrap_or(0);
        }
    }
    let sub_total = sub_msgs.load(Ordering::Relaxed);
    let published_samples: u64 = report.samples.values().flat_map(|m| m.values()).sum();
    // The engine has exited: its stderr is at its end.
    let (wal_mib, comm_lost, over_budget) = err_reader.join().unwrap_or((None, 0, false));

    let conn = store::open_read_only(&db)?;
    let st = query::status(&conn)?;
    let (mut wave_bytes, mut wave_samples, mut ecg_bytes, mut ecg_samples) = (0, 0, 0, 0);
    for streams in st.beds.values() {
        for (name, s) in streams {
            if name.starts_with(query::NUMERICS_PREFIX) {
                continue;
            }
            wave_bytes += s.bytes;
            wave_samples += s.samples;
            if name.starts_with("ECG") {
                ecg_bytes += s.bytes;
                ecg_samples += s.samples;
            }
        }
    }
    drop(conn);
    // After the engine's clean stop the WAL is checkpointed: the file is what the disk holds.
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(StepResult {
        beds: a.beds,
        seconds: a.seconds,
        published,
        published_samples,
        publish_s,
        engine_msgs,
        engine_samples,
        sub_total,
        sub_done_s,
        cpu_pct: (cpu1 - cpu0) / wall * 100.0,
        sub_cpu_pct: (sub_cpu1 - sub_cpu0) / wall * 100.0,
        rss_mb,
        bytes_per_sample: wave_bytes as f64 / wave_samples.max(1) as f64,
        ecg_bytes_per_sample: ecg_bytes as f64 / ecg_samples.max(1) as f64,
        db_bytes,
        alarm_ms,
        alarm_missed,
        rss_series,
        probe: a.probe,
        wal_mib,
        comm_lost,
        flood: flooded.map(|n| (n, over_budget)),
    })
}

/// The flooding device's bed (its own ward, apart from the simulated ward and the probe).
const FLOOD_BED: &str = "flood/f1";

/// A device publishing valid ECG chunks of about 10 KB at `bytes_per_s` until `stop`; returns
/// how many it published.
async fn flood(url: BrokerUrl, bytes_per_s: f64, mut stop: watch::Receiver<bool>) -> Result<u64> {
    use vigil_core::telemetry::{BedId, Topic, WavePayload};
    let bed = BedId::new("flood", "f1");
    let mut opts = mqtt_options(&url, "bench-load-flood")?;
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let link = Link::connect(opts, 1024);
    let topic = Topic::wave(&bed, "flood-1", "ECG_II");
    let chunk = |seq: u64| -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&WavePayload::ecg_ii(
            "flood-1",
            seq,
            chrono::Utc::now(),
            (0..1400).map(|i| (i % 2000) - 1000).collect(),
        ))?)
    };
    let every = Duration::from_secs_f64(chunk(0)?.len() as f64 / bytes_per_s.max(1.0));
    let start = tokio::time::Instant::now();
    let mut seq = 0u64;
    while !*stop.borrow_and_update() {
        seq += 1;
        link.publish(&topic, chunk(seq)?).await?;
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(start + every.mul_f64(seq as f64)) => {}
        }
    }
    link.close().await;
    Ok(seq)
}

/// The broker options of a client of the harness on `url`.
fn mqtt_options(url: &BrokerUrl, client_id: &str) -> Result<rumqttc::MqttOptions> {
    let settings: vigil_core::config::BrokerSettings = url.clone().into();
    Ok(settings.mqtt_options(client_id)?)
}

/// An MQTT client of the harness, its event loop polled on the runtime until the connection
/// ends.
struct Link {
    client: rumqttc::AsyncClient,
    net: tokio::task::JoinHandle<()>,
}

impl Link {
    fn connect(opts: rumqttc::MqttOptions, cap: usize) -> Link {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, cap);
        let net = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        Link { client, net }
    }

    /// Publish at QoS 1, not retained.
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<()> {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }

    /// Disconnect, and give the event loop 2 s to end.
    async fn close(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.net).await;
    }
}

/// The probe monitor's bed (its own ward, so no simulated bed matches it in the alarm log).
const PROBE_BED: &str = "probe/p1";

/// A probe monitor beside the ward: heart rate 150 (HR HIGH, no condition delay), then 70 until
/// the alarm resolves, over and over until `stop`. Each latency runs from just before the
/// publish call to the engine's alarm log line being read (broker hop, decoding, ingest policy,
/// the alarm state machine, logging). Returns the sorted latencies (ms) and the misses.
async fn probe(
    url: BrokerUrl,
    alarms: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, bool)>,
    mut stop: watch::Receiver<bool>,
) -> Result<(Vec<f64>, u32)> {
    let bed = vigil_core::telemetry::BedId::new("probe", "p1");
    let mut monitor = ProbeMonitor::connect(&url, "bench-load-probe", &bed)?;
    let mut probes = Probes::default();
    while !*stop.borrow_and_update() {
        probes.note(monitor.cycle(&mut *alarms).await?);
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    monitor.link.close().await;
    Ok(probes.sorted())
}

/// Where a probe monitor's HR HIGH alarm is seen raised and resolved.
trait AlarmWatch {
    /// Forget what was seen before this cycle.
    fn drain(&mut self);
    /// When the alarm was seen raised, within 2 s; `None`: not seen.
    async fn raised(&mut self) -> Option<Instant>;
    /// Wait (5 s at most) until the alarm has resolved.
    async fn resolved(&mut self);
}

/// The engine's alarm log lines of the probe's bed, stamped as they were read (`true`: raised).
impl AlarmWatch for tokio::sync::mpsc::UnboundedReceiver<(Instant, bool)> {
    fn drain(&mut self) {
        while self.try_recv().is_ok() {}
    }

    async fn raised(&mut self) -> Option<Instant> {
        log_line(self, true, Duration::from_secs(2)).await
    }

    async fn resolved(&mut self) {
        let _ = log_line(self, false, Duration::from_secs(5)).await;
    }
}

/// Wait for an alarm log line of the given kind (raise = true).
async fn log_line(
    alarms: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, bool)>,
    raise: bool,
    within: Duration,
) -> Option<Instant> {
    tokio::time::timeout(within, async {
        while let Some((t, r)) = alarms.recv().await {
            if r == raise {
                return Some(t);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// A probe monitor: HR readings of one bed, each cycle 150 (HR HIGH, no condition delay) then
/// 70 (resolved).
struct ProbeMonitor {
    link: Link,
    topic: String,
    readings: ProbeReadings,
    seq: u64,
}

impl ProbeMonitor {
    fn connect(
        url: &BrokerUrl,
        client_id: &str,
        bed: &vigil_core::telemetry::BedId,
    ) -> Result<Self> {
        Ok(ProbeMonitor {
            link: Link::connect(mqtt_options(url, client_id)?, 64),
            topic: vigil_core::telemetry::Topic::vitals(bed, "probe"),
            readings: ProbeReadings::default(),
            seq: 0,
        })
    }

    async fn send(&mut self, hr: f64) -> Result<()> {
        let payload = self.readings.payload(self.seq, hr)?;
        self.link.publish(&self.topic, payload).await?;
        self.seq += 1;
        Ok(())
    }

    /// One cycle: HR 150, its alarm seen raised on `watch` (the latency, ms, from just before
    /// the publish call; `None`: missed), then HR 70 until the alarm has resolved.
    async fn cycle(&mut self, watch: &mut impl AlarmWatch) -> Result<Option<f64>> {
        watch.drain();
        let sent = Instant::now();
        self.send(150.0).await?;
        let latency = watch
            .raised()
            .await
            .map(|t| t.duration_since(sent).as_secs_f64() * 1000.0);
        self.send(70.0).await?;
        watch.resolved().await;
        Ok(latency)
    }
}

/// The probe cycles' latencies (ms) and misses.
#[derive(Default)]
struct Probes {
    latencies: Vec<f64>,
    missed: u32,
}

impl Probes {
    fn note(&mut self, latency: Option<f64>) {
        match latency {
            Some(ms) => self.latencies.push(ms),
            None => self.missed += 1,
        }
    }

    /// The latencies sorted, and the misses.
    fn sorted(mut self) -> (Vec<f64>, u32) {
        self.latencies.sort_by(f64::total_cmp);
        (self.latencies, self.missed)
    }
}

/// The value at fraction `p` (0 to 1) of `sorted`, none if it is empty.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

/// The alarm probe's HR readings, each stamped after the one before: the normal reading often
/// follows the high one within the same millisecond, and a reading of the same time as the
/// device's last is a duplicate (history only, as the store keeps one reading per device,
/// vital and time), which would leave the alarm standing and count the next probe as missed.
struct ProbeReadings {
    last_t: chrono::DateTime<chrono::Utc>,
}

impl Default for ProbeReadings {
    fn default() -> Self {
        ProbeReadings {
            last_t: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        }
    }
}

impl ProbeReadings {
    fn payload(&mut self, seq: u64, hr: f64) -> Result<Vec<u8>> {
        let t = chrono::Utc::now().max(self.last_t + chrono::Duration::milliseconds(1));
        self.last_t = t;
        Ok(serde_json::to_vec(
            &vigil_core::telemetry::VitalsPayload::single(
                "probe",
                seq,
                t,
                vigil_core::codes::Vital::Hr,
                hr,
            ),
        )?)
    }
}

/// The engine's alarm list (on its live broadcast, as the window watches it) for the probe
/// monitor of `bed`.
struct EngineWatch<'a> {
    engine: &'a vigil_core::engine::Engine,
    live: tokio::sync::broadcast::Receiver<vigil_core::engine::LiveEvent>,
    bed: vigil_core::telemetry::BedId,
}

impl EngineWatch<'_> {
    fn shown(&self, alarms: &[vigil_core::alarms::ActiveAlarm]) -> bool {
        alarms
            .iter()
            .any(|x| x.bed == self.bed && x.code == "HR_HIGH")
    }
}

impl AlarmWatch for EngineWatch<'_> {
    /// Drop what the live stream holds so only this cycle's raise is seen.
    fn drain(&mut self) {
        while self.live.try_recv().is_ok() {}
    }

    async fn raised(&mut self) -> Option<Instant> {
        use tokio::sync::broadcast::error::RecvError;
        let seen = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match self.live.recv().await {
                    Ok(vigil_core::engine::LiveEvent::Alarms(list)) if self.shown(&list) => {
                        return true;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        if self.shown(&self.engine.snapshot().alarms) {
                            return true;
                        }
                    }
                    Err(_) => return false,
                }
            }
        })
        .await;
        matches!(seen, Ok(true)).then(Instant::now)
    }

    async fn resolved(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.shown(&self.engine.snapshot().alarms) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A fresh private (0700) directory under the system temp dir.
pub(crate) fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "vigil-bench-{}-{}",
        std::process::id(),
        store::now_ms()
    ));
    vigil_core::secure_fs::prepare_dir(&d)?;
    Ok(d)
}

#[derive(Args)]
pub struct AlarmArgs {
    /// Simulated full-rate beds publishing beside the probe (background load).
    #[arg(long, default_value_t = 128)]
    beds: usize,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// `vigilctl bench alarms`: publish → alarm raised latency under load.
///
/// Mosquitto on a free loopback port; the engine in this process (its alarm list watched on the
/// live broadcast, as the window watches it); `--beds` simulated full-rate beds as background
/// load; and a probe monitor that publishes a heart rate of 150 (HR HIGH, no condition delay),
/// then 70 for a second (resolved), over and over. Each latency is from just before the probe's
/// publish call to the moment the raised alarm appears in the engine's alarm list.
pub async fn alarms(a: AlarmArgs) -> Result<()> {
    use vigil_core::alarms::default_limits;
    use vigil_core::engine::{AlarmOptions, Engine, EngineConfig};
    use vigil_core::ingest::IngestPolicy;
    use vigil_core::telemetry::BedId;

    if a.seconds == 0 {
        bail!("--seconds must be positive");
    }
    let tmp = tempdir()?;
    let (_broker, url) = start_mosquitto(&tmp)?;
    let engine = Engine::start_with(
        EngineConfig {
            broker: url.clone().into(),
            client_id: "bench-alarm-engine".into(),
            ward: None,
            db_path: tmp.join("alarms.db"),
            limits: default_limits(),
            policy: IngestPolicy::default(),
            mllp: None,
        },
        AlarmOptions {
            notifications: false,
            sync: false,
            ..AlarmOptions::default()
        },
    )?;
    let mut link = engine.link();
    while !link.borrow_and_update().subscribed {
        tokio::time::timeout(Duration::from_secs(20), link.changed())
            .await
            .context("engine did not subscribe")??;
    }
    let live = engine.subscribe();

    let (stop_tx, stop_rx) = watch::channel(false);
    let sim_task = if a.beds > 0 {
        let mut cfg = SimConfig::new(url.clone(), "load", a.beds);
        cfg.breaching.clear();
        Some(tokio::spawn(sim::run(cfg, stop_rx)))
    } else {
        None
    };

    let probe_bed = BedId::new("bench", "probe");
    let mut monitor = ProbeMonitor::connect(&url, "bench-probe", &probe_bed)?;
    // Let the load settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "bench: alarm latency with {} background beds for {} s through {url}",
        a.beds, a.seconds
    );
    let mut watch = EngineWatch {
        engine: &engine,
        live,
        bed: probe_bed,
    };
    let mut probes = Probes::default();
    let end = Instant::now() + Duration::from_secs(a.seconds);
    while Instant::now() < end {
        probes.note(monitor.cycle(&mut watch).await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(true);
    if let Some(t) = sim_task {
        let _ = t.await;
    }
    monitor.link.close().await;
    engine.shutdown().await;
    let (latencies, missed) = probes.sorted();
    if latencies.is_empty() {
        bail!("no alarm was raised ({missed} probes missed)");
    }
    let pct = |p: f64| percentile(&latencies, p).unwrap_or_default();
    println!("background beds           {}", a.beds);
    println!(
        "probes                    {} raised, {missed} missed",
        latencies.len()
    );
    println!(
        "publish -> alarm raised   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "RESULT beds={} alarm_probes={} alarm_missed={missed} alarm_p50_ms={:.1} alarm_p99_ms={:.1} alarm_max_ms={:.1}",
        a.beds,
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: super::LoadArgs,
    }

    /// The byte budget is written into the engine's config as bytes per second: a value that
    /// would overflow (or a zero budget) is refused with the allowed range.
    #[test]
    fn the_budget_is_refused_out_of_range() {
        let parse = |kib: &str| Cli::try_parse_from(["bench", "--budget-kib", kib]);
        assert_eq!(parse("256").map(|c| c.load.budget_kib).ok(), Some(256));
        for bad in ["0", "1048577", "99999999999999999"] {
            let e = parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("1..=1048576"), "{bad}: {e}");
        }
    }
}
