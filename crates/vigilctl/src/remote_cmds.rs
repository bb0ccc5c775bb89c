//! `vigilctl remote …`: the headless face of the remote-patient station actions (enrol, pause,
//! resume, discharge, care plans, the enrolled list). An adapter over `vigil_core::remote`: this
//! file reads arguments, the password and the plan file, and prints. Every rule (identifiers,
//! time zones, reasons, the schedule's validator, who may do what) is `vigil_core`'s and
//! `vigil_schedule`'s.
//!
//! These are clinical actions (the charge nurse's, a nurse's read), which IT's local
//! administration (`Actor::cli()`) does not have: each command logs in as a station user
//! (`AuthService::login`, audited), takes the proof for its permission
//! (`AuthService::authorize`), acts, and logs out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use vigil_core::audit::format_time_utc;
use vigil_core::auth::{AuthService, Authorized, Permission, PhiRead, Session, WardPolicy};
use vigil_core::remote::{self, Enrolled, NewRemotePatient, PlanVersion};
use vigil_core::settings::StationSettings;
use vigil_core::store;
use vigil_core::telemetry::BedId;
use vigil_schedule::{Item, ItemSpec, Kind, Rule, RuleSpec};

use crate::admin::{open_existing, print_table, printable, read_stdin_line};

/// The environment variable a station user's password may be given in (never a flag).
const PASSWORD_ENV: &str = "VIGIL_PASSWORD";

/// Who acts, on which database.
#[derive(Args)]
pub(crate) struct Login {
    /// SQLite database file of the station.
    #[arg(long)]
    db: PathBuf,
    /// The station user who acts (log-in audited). The password is read from $VIGIL_PASSWORD,
    /// else from the first line of standard input (prompted for, unechoed, on a terminal);
    /// never from a flag.
    #[arg(long)]
    user: String,
}

/// A remote bed: `ward/bed` of a remote ward (`home/p-0042`).
fn bed_arg(s: &str) -> Result<BedId, String> {
    BedId::parse(s).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
pub enum RemoteCmd {
    /// Enrol a remote patient to a free remote bed (charge nurse). Audited.
    Enrol {
        #[command(flatten)]
        login: Login,
        /// The patient's remote bed, `ward/bed` (e.g. home/p-0042); never given to another
        /// patient afterwards.
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
        /// Medical record number (first identifier).
        #[arg(long)]
        mrn: String,
        /// The patient's name.
        #[arg(long)]
        name: String,
        /// Date of birth, YYYY-MM-DD (second identifier).
        #[arg(long)]
        dob: String,
        /// The patient's IANA time zone (e.g. Europe/London): the clock of the plan's windows.
        #[arg(long)]
        tz: String,
    },
    /// Pause the monitoring of a remote patient (charge nurse): no slot is due or missed until
    /// resumed. Audited with the reason.
    Pause {
        #[command(flatten)]
        login: Login,
        /// The remote bed, ward/bed (e.g. home/p-0042).
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
        /// Why (e.g. "hospital stay", "travel"); required.
        #[arg(long)]
        reason: String,
    },
    /// Resume the monitoring of a paused remote patient (charge nurse). Audited.
    Resume {
        #[command(flatten)]
        login: Login,
        /// The remote bed, ward/bed (e.g. home/p-0042).
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
    },
    /// Discharge a remote patient (charge nurse): the stay, its pauses and plan versions are
    /// kept; devices stay registered to the bed until IT removes them. Audited.
    Discharge {
        #[command(flatten)]
        login: Login,
        /// The remote bed, ward/bed (e.g. home/p-0042).
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
    },
    /// Care plans: set a new version from a file (charge nurse), show the one in force.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// The enrolled remote patients (nurse, charge nurse): bed, MRN, name, state (paused with
    /// its reason), plan version, devices. The read is audited.
    List {
        #[command(flatten)]
        login: Login,
        /// Machine-readable output (JSON array), with the plans' items.
        #[arg(long)]
        json: bool,
    },
    /// Adherence report (CSV on stdout; nurse, charge nurse): per enrolled patient, the slots
    /// due over the last 7 and 30 days of the patient's calendar (under the plan in force when
    /// each opened, none while paused) — on time, received late (taken in the window, uploaded
    /// after it), taken late, missed — the share taken in the window, and the days of the last
    /// 30 with at least one reading (programmes ask for 16). The read is audited.
    Adherence {
        #[command(flatten)]
        login: Login,
    },
    /// Publish the simulated remote cohort to a broker in real time, as its home devices would
    /// (a test or training station only): twenty patients of ward `home` (home/h-01 …, MRN
    /// SIM-H01 …; some always on time, one who forgets the evening blood pressure, one whose
    /// weight climbs, one whose cuff stops reporting, a clinic uploading every 6 h, an
    /// occasional hypoglycaemia and low SpO2). First the last --backfill-hours of their readings
    /// at once, with their own times (a history upload), then each reading when it is taken.
    /// A station watches them once they are enrolled there: `vigilctl remote cohort-enrol`,
    /// run after this has uploaded the history (the zero-config desktop station does both).
    Simulate(SimulateArgs),
    /// The simulated remote cohort on compressed time, headless (training, demonstrations):
    /// an embedded broker, a station engine whose clock runs --speed times faster (480: a day
    /// in 3 minutes), the cohort enrolled and its devices playing on that clock. Prints each
    /// care-plan alert raised, escalated and resolved, with the cohort's time, then a summary.
    /// Writes a new database file of its own (stamped in compressed time), never a station's.
    Demo(crate::remote_demo::DemoArgs),
    /// Enrol the simulated remote cohort in a station's database (a test or training station
    /// only): every one of its twenty patients whose remote bed never had a stay, with the
    /// care plan and home devices, the stay and plan dated --backfill-hours ago. Audited as
    /// `sim:cohort`; a charge nurse logs in to allow it (audited too). Run it once
    /// `vigilctl remote simulate` has uploaded the history, or the station raises, for a few
    /// seconds, a missed reading for each slot of the history still on its way — except on a
    /// station that refuses unregistered devices (`[ingest] require_registered`, the default
    /// with a hospital broker): enrol first there (this registers the home devices), then
    /// simulate with --db, and expect those alerts, resolved as received late.
    CohortEnrol {
        #[command(flatten)]
        login: Login,
        /// How long ago the cohort's stays and plans start: the history `simulate` uploads.
        #[arg(long, default_value_t = vigil_sim::cohort::DEFAULT_BACKFILL_HOURS)]
        backfill_hours: u32,
    },
}

/// `vigilctl remote simulate`.
#[derive(Args)]
pub struct SimulateArgs {
    /// Broker URL, e.g. mqtt://127.0.0.1:1883 or mqtts://broker.ward4:8883.
    #[arg(long)]
    broker: vigil_core::config::BrokerUrl,
    #[command(flatten)]
    auth: crate::BrokerAuthArgs,
    /// Hours of history published at start, with their own times.
    #[arg(long, default_value_t = vigil_sim::cohort::DEFAULT_BACKFILL_HOURS)]
    backfill_hours: u32,
    /// Seed of the cohort's values and times: the same seed gives the same cohort.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Follow the cohort enrolled in this station database: its start is read from there
    /// (default: --backfill-hours ago).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration: Option<f64>,
}

/// Play the simulated cohort on the system clock until interrupted.
pub async fn simulate(a: SimulateArgs) -> Result<()> {
    use vigil_sim::remote::{self as home, CohortConfig, Progress, TimeSource};
    let settings = a
        .auth
        .apply(
            vigil_core::config::BrokerSection::default(),
            Some(&a.broker),
        )
        .settings()?
        .context("no broker URL")?;
    let now: TimeSource = std::sync::Arc::new(store::now_ms);
    let mut cfg = CohortConfig::new(settings, now(), a.backfill_hours);
    cfg.seed = a.seed;
    cfg.client_id = format!("vigilctl-home-cohort-{}", std::process::id());
    if let Some(db) = &a.db {
        let conn =
            store::open_read_only(db).with_context(|| format!("opening {}", db.display()))?;
        let beds: Vec<BedId> = cfg
            .cohort()
            .patients()
            .iter()
            .map(|p| p.bed.clone())
            .collect();
        match remote::cohort::origin(&conn, &beds)? {
            Some(origin) => cfg.origin_ms = origin,
            None => bail!("no simulated cohort is enrolled in {}", db.display()),
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (tx, _progress) = tokio::sync::watch::channel(Progress::default());
    eprintln!(
        "simulating the remote cohort ({} patients of ward {}) on {}, from {}",
        vigil_sim::cohort::PATIENTS,
        vigil_sim::cohort::WARD,
        a.broker,
        format_time_utc(cfg.origin_ms)
    );
    let task = tokio::spawn(home::run(cfg, now, stop_rx, tx));
    crate::stop_signal(a.duration).await;
    let _ = stop_tx.send(true);
    let done = task.await.context("the cohort's publisher")??;
    eprintln!(
        "published {} messages ({} of history), {} acknowledged",
        done.published, done.backfilled, done.acknowledged
    );
    if done.acknowledged < done.published {
        bail!(
            "{} publishes were not acknowledged by the broker",
            done.published - done.acknowledged
        );
    }
    Ok(())
}

// The help of `plan set` shows the plan file's TOML tables (`[[item]]`) as they are typed:
// clap prints doc comments verbatim, rustdoc would read them as links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Subcommand)]
pub enum PlanCmd {
    /// Set a new version of a remote patient's care plan from a TOML file (charge nurse).
    ///
    /// Audited with the version and its items. The file is the whole plan: it replaces the
    /// version in force (which is kept); the same plan again is refused as unchanged.
    ///
    /// The file has one `[[item]]` table per item of the plan:
    ///
    ///   [[item]]
    ///   id = "bp"                  # 1-32 of a-z 0-9 - _, unique in the plan
    ///   kind = "reading"           # reading, or dose (met by a dispenser's taken dose)
    ///   measure = "NIBP_SYS"       # a vital's code: NIBP_SYS, SPO2, ...; a dose's
    ///                              # medication id as the dispenser reports it: metformin
    ///   times = "07:00-10:00, 18:00-21:00"
    ///   urgent_after_min = 60      # optional: missed warning -> urgent, minutes (60)
    ///   late_grace_min = 120       # optional: a late reading still counts, minutes (120)
    ///
    ///   [[item]]
    ///   id = "spo2"
    ///   kind = "reading"
    ///   measure = "SPO2"
    ///   times = "08:00 ± 1h"
    ///
    /// Schedules, on the wall clock of the patient's time zone: "07:00-10:00, 18:00-21:00",
    /// "08:00 ± 1h", "06:00 for 4h", "3/day 08:00-20:00", "06:00-10:00 on mon,thu".
    ///
    /// And one `[[rule]]` table per change rule (optional), on how a vital's readings change,
    /// either a rise or fall within a look-back:
    ///
    ///   [[rule]]
    ///   id = "weight-gain"         # 1-32 of a-z 0-9 - _, unique among items and rules
    ///   measure = "WEIGHT"         # a vital's code
    ///   rise = 2                   # or fall = ...: by at least this much (above 0) ...
    ///   within = "3d"              # ... within this: "3d", "72h", "90m" (at most 31 days)
    ///
    /// or n of the last m readings beyond a threshold:
    ///
    ///   [[rule]]
    ///   id = "sbp-high"
    ///   measure = "NIBP_SYS"
    ///   above = 140                # or below = ...: strictly above (below) this ...
    ///   n = 3                      # ... on at least n ...
    ///   m = 5                      # ... of the last m readings (1 <= n <= m <= 50)
    #[command(verbatim_doc_comment)]
    Set {
        #[command(flatten)]
        login: Login,
        /// The remote bed, ward/bed (e.g. home/p-0042).
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
        /// The plan file (TOML, `[[item]]` and `[[rule]]` tables as above).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// The care plan in force for a remote patient (nurse, charge nurse): its version, who set
    /// it and when, every item and every change rule. The read is audited.
    Show {
        #[command(flatten)]
        login: Login,
        /// The remote bed, ward/bed (e.g. home/p-0042).
        #[arg(long, value_parser = bed_arg)]
        bed: BedId,
    },
}

/// A plan file: the items and change rules of one plan (`[[item]]` and `[[rule]]` tables).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    item: Vec<ItemSpec>,
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// The items and rules of a plan file as written; checked by `remote::set_plan` (the
/// schedule's validators, in the patient's zone).
fn read_plan_file(path: &Path) -> Result<PlanFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the plan file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "plan file {}: expected TOML [[item]] and [[rule]] tables (see `vigilctl remote \
             plan set --help`)",
            path.display()
        )
    })
}

/// The password of `user`: $VIGIL_PASSWORD, else one line of standard input.
fn read_password(user: &str) -> Result<String> {
    match std::env::var(PASSWORD_ENV) {
        Ok(p) if p.is_empty() => bail!("${PASSWORD_ENV} is set but empty"),
        Ok(p) => Ok(p),
        Err(std::env::VarError::NotUnicode(_)) => bail!("${PASSWORD_ENV} is not valid UTF-8"),
        Err(std::env::VarError::NotPresent) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("Password for {user}: "))
                .context("reading the password")
        }
        Err(std::env::VarError::NotPresent) => read_stdin_line(),
    }
}

/// Log in as the station user of `login`, take the proof for `permission`, run `act` with it,
/// and log out whatever `act` returned. A wrong password, a locked or disabled account and a
/// role without the permission are errors (the log-in and its failures are audited by the
/// auth service).
/// The adherence report as CSV: one row per patient, the 7-day then the 30-day figures.
fn adherence_csv(rows: &[remote::watch::AdherenceRow]) -> String {
    let mut out = String::from(
        "bed,mrn,due_7d,on_time_7d,received_late_7d,taken_late_7d,missed_7d,in_window_7d,\
         due_30d,on_time_30d,received_late_30d,taken_late_30d,missed_30d,in_window_30d,\
         days_with_data_30d\n",
    );
    let share =
        |a: &vigil_schedule::Adherence| a.share().map_or(String::new(), |s| format!("{s:.3}"));
    for r in rows {
        let mut cells = vec![r.bed.key(), r.mrn.clone()];
        for a in [&r.last_7, &r.last_30] {
            cells.extend(
                [a.due, a.on_time, a.received_late, a.taken_late, a.missed].map(|n| n.to_string()),
            );
            cells.push(share(a));
        }
        cells.push(r.days_with_data_30.to_string());
        let cells: Vec<String> = cells.iter().map(|c| crate::history::csv_field(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

pub(crate) fn as_user<T>(
    login: &Login,
    permission: Permission,
    what: &str,
    act: impl FnOnce(&mut AuthService, &Session, &Authorized, i64) -> Result<T>,
) -> Result<T> {
    let password = read_password(&login.user)?;
    let mut svc = open_existing(&login.db)?;
    // The same check as the window's: the matrix under the ward's policy.
    let settings = StationSettings::load(svc.connection()).context("reading station settings")?;
    svc.set_policy(WardPolicy {
        nurses_acknowledge: settings.nurses_acknowledge,
    });
    let now = store::now_ms();
    let session = svc
        .login(&login.user, &password, now)
        .with_context(|| format!("log-in as {:?} refused", login.user))?;
    let result = svc
        .authorize(Some(&session), permission, now)
        .with_context(|| format!("{} may not {what}", login.user))
        .and_then(|auth| act(&mut svc, &session, &auth, now));
    if let Err(e) = svc.logout(session, store::now_ms()) {
        tracing::warn!(user = %login.user, error = %e, "log-out failed");
    }
    result
}

pub fn run(cmd: RemoteCmd) -> Result<()> {
    match cmd {
        RemoteCmd::Enrol {
            login,
            bed,
            mrn,
            name,
            dob,
            tz,
        } => {
            let p = as_user(
                &login,
                remote::MANAGE,
                "enrol remote patients",
                |svc, _, auth, now| {
                    let new = NewRemotePatient {
                        mrn: &mrn,
                        name: &name,
                        dob: &dob,
                        tz: &tz,
                    };
                    remote::enrol(svc.connection(), auth, &bed, &new, now)
                        .with_context(|| format!("enrolment in remote bed {bed} refused"))
                },
            )?;
            println!(
                "enrolled MRN {} ({}, born {}, {}) in remote bed {}",
                printable(&p.mrn),
                printable(&p.name),
                p.dob,
                p.tz.name(),
                p.bed
            );
            println!("no care plan yet: set one with `vigilctl remote plan set`");
        }
        RemoteCmd::Pause { login, bed, reason } => {
            let p = as_user(
                &login,
                remote::MANAGE,
                "pause remote monitoring",
                |svc, _, auth, now| {
                    remote::pause(svc.connection(), auth, &bed, &reason, now)
                        .with_context(|| format!("pause of remote bed {bed} refused"))
                },
            )?;
            let reason = p.pause.map(|z| z.reason).unwrap_or_default();
            println!(
                "monitoring of remote bed {} (MRN {}) paused: {}",
                p.bed,
                printable(&p.mrn),
                printable(&reason)
            );
        }
        RemoteCmd::Resume { login, bed } => {
            let p = as_user(
                &login,
                remote::MANAGE,
                "resume remote monitoring",
                |svc, _, auth, now| {
                    remote::resume(svc.connection(), auth, &bed, now)
                        .with_context(|| format!("resumption of remote bed {bed} refused"))
                },
            )?;
            println!(
                "monitoring of remote bed {} (MRN {}) resumed",
                p.bed,
                printable(&p.mrn)
            );
        }
        RemoteCmd::Discharge { login, bed } => {
            let p = as_user(
                &login,
                remote::MANAGE,
                "discharge remote patients",
                |svc, _, auth, now| {
                    remote::discharge(svc.connection(), auth, &bed, now)
                        .with_context(|| format!("discharge from remote bed {bed} refused"))
                },
            )?;
            println!(
                "MRN {} discharged from remote bed {}",
                printable(&p.mrn),
                p.bed
            );
        }
        RemoteCmd::Plan(PlanCmd::Set { login, bed, file }) => {
            let plan = read_plan_file(&file)?;
            let v = as_user(
                &login,
                remote::PLAN,
                "set care plans",
                |svc, _, auth, now| {
                    remote::set_plan(svc.connection(), auth, &bed, &plan.item, &plan.rule, now)
                        .with_context(|| format!("care plan of remote bed {bed} refused"))
                },
            )?;
            let rules = match v.plan.rules().len() {
                0 => String::new(),
                1 => ", 1 rule".to_string(),
                n => format!(", {n} rules"),
            };
            println!(
                "care plan of remote bed {bed} set: version {} ({} items{rules})",
                v.version,
                v.plan.items().len()
            );
            print_items(v.plan.items());
            print_rules(v.plan.rules());
        }
        RemoteCmd::Plan(PlanCmd::Show { login, bed }) => {
            let e = as_user(
                &login,
                remote::READ,
                "see remote patients",
                |svc, session, auth, now| {
                    let all = remote::enrolled(svc.connection(), auth)?;
                    let Some(e) = all.into_iter().find(|e| e.patient.bed == bed) else {
                        bail!("no remote patient in bed {bed}");
                    };
                    let key = bed.key();
                    svc.audit_read(
                        session,
                        PhiRead {
                            bed: &key,
                            what: "care plan",
                            from_ms: now,
                            to_ms: now,
                        },
                        now,
                    )?;
                    Ok(e)
                },
            )?;
            print_plan(&e);
        }
        RemoteCmd::Simulate(_) | RemoteCmd::Demo(_) => {
            bail!("`remote simulate` and `remote demo` run on the async runtime")
        }
        RemoteCmd::CohortEnrol {
            login,
            backfill_hours,
        } => {
            let members = vigil_sim::remote::members(&vigil_sim::cohort::Cohort::new(1, 0));
            let seeded = as_user(
                &login,
                remote::MANAGE,
                "enrol remote patients",
                |svc, session, _, now| {
                    svc.authorize(Some(session), remote::PLAN, now)
                        .with_context(|| format!("{} may not set care plans", login.user))?;
                    let from = now - i64::from(backfill_hours) * 3_600_000;
                    remote::cohort::seed(svc, &members, from, now)
                        .context("enrolment of the simulated cohort refused")
                },
            )?;
            println!(
                "simulated remote cohort: {} enrolled, {} left alone (enrolled before)",
                seeded.enrolled.len(),
                seeded.present.len()
            );
        }
        RemoteCmd::Adherence { login } => {
            let rows = as_user(
                &login,
                remote::READ,
                "see remote patients",
                |svc, session, auth, now| {
                    let rows = remote::watch::adherence(svc.connection(), auth, now)?;
                    svc.audit_read(
                        session,
                        PhiRead {
                            bed: "*",
                            what: "remote adherence report",
                            from_ms: now - 30 * 24 * 3_600_000,
                            to_ms: now,
                        },
                        now,
                    )?;
                    Ok(rows)
                },
            )?;
            print!("{}", adherence_csv(&rows));
        }
        RemoteCmd::List { login, json } => {
            let all = as_user(
                &login,
                remote::READ,
                "see remote patients",
                |svc, session, auth, now| {
                    let all = remote::enrolled(svc.connection(), auth)?;
                    // Identities shown: who saw them is recorded (one entry per run of reads).
                    svc.audit_read(
                        session,
                        PhiRead {
                            bed: "*",
                            what: "remote patient list",
                            from_ms: now,
                            to_ms: now,
                        },
                        now,
                    )?;
                    Ok(all)
                },
            )?;
            if json {
                let rows: Vec<ListRow<'_>> = all.iter().map(ListRow::of).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_list(&all);
            }
        }
    }
    Ok(())
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Reading => "reading",
        Kind::Dose => "dose",
    }
}

/// A plan's items, one row each.
fn print_items(items: &[Item]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                i.id().to_string(),
                kind_name(i.kind()).to_string(),
                i.measure().to_string(),
                i.times().to_string(),
                format!("{} min", i.urgent_after().num_minutes()),
                format!("{} min", i.late_grace().num_minutes()),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "KIND",
            "MEASURE",
            "TIMES",
            "URGENT AFTER",
            "LATE GRACE",
        ],
        &rows,
    );
}

/// A plan's change rules, one row each (none printed when there are none).
fn print_rules(rules: &[Rule]) {
    if rules.is_empty() {
        return;
    }
    println!();
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.id().to_string(),
                r.measure().to_string(),
                r.test().to_string(),
            ]
        })
        .collect();
    print_table(&["RULE", "MEASURE", "TEST"], &rows);
}

fn state_text(e: &Enrolled) -> String {
    match &e.patient.pause {
        Some(z) => format!(
            "paused since {} by {}: {}",
            format_time_utc(z.from_ms),
            printable(&z.by),
            printable(&z.reason)
        ),
        None => e.patient.state().as_str().to_string(),
    }
}

fn print_plan(e: &Enrolled) {
    let p = &e.patient;
    println!(
        "remote bed {}: MRN {}, {}, {} ({})",
        p.bed,
        printable(&p.mrn),
        printable(&p.name),
        p.tz.name(),
        state_text(e)
    );
    match &e.plan {
        None => println!("no care plan set (vigilctl remote plan set)"),
        Some(PlanVersion {
            version,
            plan,
            set_ms,
            set_by,
            ..
        }) => {
            println!(
                "care plan version {version}, set by {} at {}",
                printable(set_by),
                format_time_utc(*set_ms)
            );
            print_items(plan.items());
            print_rules(plan.rules());
        }
    }
}

fn print_list(all: &[Enrolled]) {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|e| {
            let p = &e.patient;
            vec![
                p.bed.key(),
                printable(&p.mrn),
                printable(&p.name),
                p.tz.name().to_string(),
                p.state().as_str().to_string(),
                p.pause
                    .as_ref()
                    .map(|z| printable(&z.reason))
                    .unwrap_or_default(),
                e.plan
                    .as_ref()
                    .map_or("none".to_string(), |v| format!("v{}", v.version)),
                devices_text(e),
            ]
        })
        .collect();
    print_table(
        &[
            "BED", "MRN", "NAME", "TZ", "STATE", "REASON", "PLAN", "DEVICES",
        ],
        &rows,
    );
}

fn devices_text(e: &Enrolled) -> String {
    e.devices
        .iter()
        .map(|d| {
            if d.enabled {
                d.device.clone()
            } else {
                format!("{} (disabled)", d.device)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One enrolled patient in `remote list --json`.
#[derive(Serialize)]
struct ListRow<'a> {
    bed: String,
    mrn: &'a str,
    name: &'a str,
    dob: &'a str,
    tz: &'a str,
    state: &'a str,
    enrolled: String,
    enrolled_by: &'a str,
    pause: Option<PauseRow<'a>>,
    plan: Option<PlanRow<'a>>,
    devices: Vec<DeviceRow<'a>>,
}

#[derive(Serialize)]
struct PauseRow<'a> {
    since: String,
    by: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct PlanRow<'a> {
    version: u32,
    set: String,
    set_by: &'a str,
    /// Serialised as written in a plan file (`ItemSpec`).
    items: &'a [Item],
    /// Serialised as written in a plan file (`RuleSpec`); left out when there are none.
    #[serde(skip_serializing_if = "<[Rule]>::is_empty")]
    rules: &'a [Rule],
}

#[derive(Serialize)]
struct DeviceRow<'a> {
    device: &'a str,
    label: &'a str,
    enabled: bool,
}

impl<'a> ListRow<'a> {
    fn of(e: &'a Enrolled) -> Self {
        let p = &e.patient;
        ListRow {
            bed: p.bed.key(),
            mrn: &p.mrn,
            name: &p.name,
            dob: &p.dob,
            tz: p.tz.name(),
            state: p.state().as_str(),
            enrolled: format_time_utc(p.enrolled_ms),
            enrolled_by: &p.enrolled_by,
            pause: p.pause.as_ref().map(|z| PauseRow {
                since: format_time_utc(z.from_ms),
                by: &z.by,
                reason: &z.reason,
            }),
            plan: e.plan.as_ref().map(|v| PlanRow {
                version: v.version,
                set: format_time_utc(v.set_ms),
                set_by: &v.set_by,
                items: v.plan.items(),
                rules: v.plan.rules(),
            }),
            devices: e
                .devices
                .iter()
                .map(|d| DeviceRow {
                    device: &d.device,
                    label: &d.label,
                    enabled: d.enabled,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_files_are_item_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.toml");
        std::fs::write(
            &path,
            "[[item]]\nid = \"bp\"\nkind = \"reading\"\nmeasure = \"NIBP_SYS\"\n\
             times = \"07:00-10:00, 18:00-21:00\"\n\n[[item]]\nid = \"spo2\"\n\
             kind = \"reading\"\nmeasure = \"SPO2\"\ntimes = \"08:00 ± 1h\"\n\
             late_grace_min = 30\n",
        )
        .expect("write");
        let file = read_plan_file(&path).expect("read");
        assert!(file.rule.is_empty());
        let items = file.item;
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0],
            ItemSpec::new("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00, 18:00-21:00")
        );
        assert_eq!(items[1].late_grace_min, 30);

        // A misspelt key is refused, not ignored.
        std::fs::write(&path, "[[items]]\nid = \"bp\"\n").expect("write");
        let err = format!("{:#}", read_plan_file(&path).expect_err("typo"));
        assert!(err.contains("items"), "{err}");
        std::fs::write(
            &path,
            "[[item]]\nid = \"bp\"\nkind = \"reading\"\nmeasure = \"NIBP_SYS\"\n\
             times = \"07:00-10:00\"\nurgent_after = 5\n",
        )
        .expect("write");
        let err = format!("{:#}", read_plan_file(&path).expect_err("typo"));
        assert!(err.contains("urgent_after"), "{err}");
    }

    #[test]
    fn plan_files_have_rule_tables_beside_items() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.toml");
        std::fs::write(
            &path,
            "[[item]]\nid = \"weight\"\nkind = \"reading\"\nmeasure = \"WEIGHT\"\n\
             times = \"06:00-10:00\"\n\n[[rule]]\nid = \"weight-gain\"\nmeasure = \"WEIGHT\"\n\
             rise = 2\nwithin = \"3d\"\n\n[[rule]]\nid = \"sbp-high\"\nmeasure = \"NIBP_SYS\"\n\
             above = 140.5\nn = 3\nm = 5\n",
        )
        .expect("write");
        let file = read_plan_file(&path).expect("read");
        assert_eq!(file.item.len(), 1);
        assert_eq!(
            file.rule,
            [
                RuleSpec::rise("weight-gain", "WEIGHT", 2.0, "3d"),
                RuleSpec::above("sbp-high", "NIBP_SYS", 140.5, 3, 5),
            ]
        );
        // A misspelt key of a rule is refused, not ignored.
        std::fs::write(
            &path,
            "[[rule]]\nid = \"gain\"\nmeasure = \"WEIGHT\"\nrise = 2\nwithin_days = 3\n",
        )
        .expect("write");
        let err = format!("{:#}", read_plan_file(&path).expect_err("typo"));
        assert!(err.contains("within_days"), "{err}");
    }
}
