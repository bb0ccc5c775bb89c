//! `vigilctl bench remote`: the remote patients' watch at scale (issue 15). Enrols `--patients`
//! remote patients with four reading schedules each, in four time zones, through the station
//! actions; stores `--days` of their readings through the store writer (nine in ten slots met,
//! the tenth missed); then times `remote::watch::tick` (the evaluation the engine runs every
//! `remote_tick`) and the read of the enrolled list, and prints the process's memory.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use vigil_core::auth::{Actor, AuthConfig, AuthService, Role};
use vigil_core::codes::Vital;
use vigil_core::remote::review;
use vigil_core::remote::watch::{self, Change, WatchSettings};
use vigil_core::remote::{self, NewRemotePatient};
use vigil_core::store::{self, Op, StoreWriter};
use vigil_core::telemetry::{BedId, Reading, Vitals};
use vigil_schedule::{ItemSpec, Kind};

#[derive(Args)]
pub struct RemoteArgs {
    /// Enrolled remote patients.
    #[arg(long, default_value_t = 10_000)]
    patients: usize,
    /// Days of readings before now (the watch looks back 3).
    #[arg(long, default_value_t = 3)]
    days: i64,
    /// Steady-state ticks timed after the first.
    #[arg(long, default_value_t = 5)]
    ticks: usize,
}

const H: i64 = 3_600_000;
const PW: &str = "Bench-remote-station-2026!";
const ZONES: [&str; 4] = [
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
];

/// The four schedules of every patient: (id, vital, times, a usual value, a value outside the
/// adult limits that one reading in [`BREACH_EVERY`] has).
const ITEMS: [(&str, Vital, &str, f64, f64); 4] = [
    (
        "bp",
        Vital::NibpSys,
        "07:00-10:00, 18:00-21:00",
        128.0,
        175.0,
    ),
    ("spo2", Vital::SpO2, "3/day 08:00-20:00", 96.0, 86.0),
    ("temp", Vital::Temp, "08:00 ± 1h", 36.8, 39.0),
    ("hr", Vital::Hr, "06:00-10:00", 72.0, 131.0),
];

/// One stored reading in this many is outside the limits: a finding to review.
const BREACH_EVERY: u64 = 25;

fn mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn remote(a: RemoteArgs) -> Result<()> {
    let pid = std::process::id();
    let dir = super::bench::tempdir()?;
    let db = dir.join("remote.db");
    let now = store::now_ms();
    let start = now - a.days * 24 * H - H;
    println!(
        "remote watch: {} patients x {} schedules, {} days of readings ({})",
        a.patients,
        ITEMS.len(),
        a.days,
        db.display()
    );

    // Enrolment and plans, as a charge nurse would set them (one transaction each, audited).
    let t = Instant::now();
    let mut svc = AuthService::open(&db, AuthConfig::default()).context("opening the station")?;
    svc.create_user(
        &Actor::Local("bench".into()),
        "bench-charge",
        Role::ChargeNurse,
        PW,
        start,
    )?;
    let session = svc.login("bench-charge", PW, start)?;
    let manage = svc.authorize(Some(&session), remote::MANAGE, start)?;
    let plan = svc.authorize(Some(&session), remote::PLAN, start)?;
    let read = svc.authorize(Some(&session), remote::READ, start)?;
    let specs: Vec<ItemSpec> = ITEMS
        .iter()
        .map(|(id, v, times, ..)| ItemSpec::new(id, Kind::Reading, v.name(), times))
        .collect();
    let mut plans = Vec::with_capacity(a.patients);
    for i in 0..a.patients {
        let bed = BedId::new("remote", format!("p{i:05}"));
        let mrn = format!("B{i:06}");
        let name = format!("Bench Patient {i}");
        let who = NewRemotePatient {
            mrn: &mrn,
            name: &name,
            dob: "1950-01-01",
            tz: ZONES[i % ZONES.len()],
        };
        remote::enrol(svc.connection(), &manage, &bed, &who, start)?;
        let v = remote::set_plan(svc.connection(), &plan, &bed, &specs, &[], start)?;
        plans.push((bed, v.plan));
    }
    println!(
        "  enrolled with plans in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Readings through the store writer: nine slots in ten met (a reading 10 min into the
    // window), every tenth missed.
    let t = Instant::now();
    let writer = StoreWriter::spawn(&db)?;
    let tx = writer.sender();
    let (mut sent, mut missed) = (0u64, 0u64);
    for (i, (bed, plan)) in plans.iter().enumerate() {
        for (k, item) in plan.items().iter().enumerate() {
            let (_, vital, _, usual, breach) = ITEMS[k];
            let slots = item.slots(
                plan.tz(),
                vigil_core::telemetry::utc_from_ms(start),
                vigil_core::telemetry::utc_from_ms(now),
            );
            for (n, slot) in slots.iter().enumerate() {
                let taken = slot.start.timestamp_millis() + 10 * 60_000;
                if taken < start || taken > now {
                    continue;
                }
                if (i + k + n) % 10 == 0 {
                    missed += 1;
                    continue;
                }
                let v = Vitals {
                    bed: bed.clone(),
                    device: format!("hub-{i:05}"),
                    seq: sent,
                    readings: vec![Reading::new(
                        vital,
                        Some(if sent % BREACH_EVERY == 0 {
                            breach
                        } else {
                            usual
                        }),
                        taken,
                    )],
                    rejected: Vec::new(),
                    late: Vec::new(),
                };
                tx.send(Op::Vitals(Arc::new(v), taken))
                    .await
                    .context("store writer stopped")?;
                sent += 1;
            }
        }
    }
    writer.flush().await?;
    drop(tx);
    tokio::task::spawn_blocking(move || writer.close()).await?;
    println!(
        "  {sent} readings stored ({missed} slots left missed) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(svc);

    let rss0 = mb(pid);
    let conn = watch::open(&db)?;
    let settings = WatchSettings::default();
    let t = Instant::now();
    let changes = watch::tick(&conn, store::now_ms(), &settings)?;
    let first = t.elapsed().as_secs_f64() * 1000.0;
    let raised = changes
        .iter()
        .filter(|c| matches!(c.change, Change::Raised(_)))
        .count();
    println!(
        "  first tick: {first:.0} ms, {raised} alerts raised ({} changes)",
        changes.len()
    );
    let mut times = Vec::with_capacity(a.ticks);
    for _ in 0..a.ticks {
        let t = Instant::now();
        let c = watch::tick(&conn, store::now_ms(), &settings)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !c.is_empty() {
            println!("  ({} changes on a steady tick)", c.len());
        }
    }
    println!(
        "  steady tick: median {:.0} ms, max {:.0} ms over {} ticks ({:.1} µs per schedule)",
        median(times.clone()),
        times.iter().copied().fold(0.0, f64::max),
        times.len(),
        median(times) * 1000.0 / (a.patients * ITEMS.len()).max(1) as f64
    );
    let t = Instant::now();
    let listed = remote::load(&conn)?;
    println!(
        "  enrolled list read (remote::load, {} patients): {:.0} ms",
        listed.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    // Findings: every stored reading checked once against the limits (adult defaults here).
    let limits = |_: &BedId| vigil_core::alarms::default_limits();
    let t = Instant::now();
    // A backlog is read SCAN_BATCH readings a pass.
    let passes = sent / review::SCAN_BATCH + 1;
    let mut found = 0;
    for _ in 0..passes {
        found += review::scan(&conn, store::now_ms(), 30_000, &limits)?.len();
    }
    println!(
        "  findings scan of every stored reading: {:.0} ms in {passes} passes, {found} findings",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    review::scan(&conn, store::now_ms(), 30_000, &limits)?;
    println!(
        "  findings scan with nothing new: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..3 {
        let t = Instant::now();
        rows = review::worklist(&conn, &read, store::now_ms())?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "  worklist opened ({rows} rows, sorted, with 7- and 30-day adherence): median {:.0} ms of 3",
        median(times)
    );
    println!(
        "  memory: {rss0:.0} MB before the ticks, {:.0} MB after",
        mb(pid)
    );
    drop(conn);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(error = %e, dir = %dir.display(), "bench directory not removed");
    }
    Ok(())
}
