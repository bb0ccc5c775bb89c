//! Silence is an alarm (issue 15): every remote patient's care plan evaluated against the
//! readings the station has received, and the alerts that gives kept in the `remote_alerts`
//! table (schema 012), apart from the physiological alarms: acknowledging one never silences
//! the other.
//!
//! - **Missed reading**: a slot of a reading item whose window ended with no reading of the
//!   item's measure taken in it: a *warning*, *urgent* after the item's further delay
//!   (`vigil_schedule::evaluate`). A reading taken in the window but received after it (a
//!   buffered upload, the clinic's batch) resolves it as *received late*; one taken after the
//!   window within the item's late grace as *taken late*. Never a new breach.
//! - **Missed dose**: the same for a dose item, met by a dispenser's `taken` or `late` event of
//!   the item's medication (table `doses`, by the dispenser's time); the dispenser's own
//!   `missed` event is history, and the plan's window decides (a dose taken after the
//!   dispenser gave up still counts within the late grace).
//! - **Device silent**: no reading at all from the patient's bed for
//!   [`WatchSettings::silent_after_ms`] (battery, connectivity, a cuff that stopped reporting):
//!   a technical alert, urgent after twice that; resolved when data arrives.
//! - Slots are evaluated under the plan version in force when they opened, from enrolment (a
//!   window open at enrolment or when a plan is set is not expected), never while monitoring is
//!   paused (a slot overlapping a pause is neither due nor missed), over the last
//!   [`WatchSettings::lookback_ms`]. A discharge resolves what stands.
//! - A reading counts for a slot by its device time, from when the station received it
//!   (`numerics.received_ms`, stamped by the engine): what arrives out of order lands where it
//!   belongs. Only results a person may act on count (final, amended, corrected, device data):
//!   a cancelled or entered-in-error reading, or "no reading", meets nothing.
//!
//! [`assess`] is pure (one stay, its readings, an instant); [`tick`] reads what it needs, runs
//! it for every current stay and writes the changes in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use vigil_schedule::{Event, Kind, Level, SlotState};

use super::{current, PlanVersion, RemoteError, RemotePatient};
use crate::store::in_tx;
use crate::telemetry::{BedId, ObsStatus};

/// How the watch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSettings {
    /// Slots are evaluated over this much past (and alerts for them raised or resolved).
    pub lookback_ms: i64,
    /// No reading from a patient's bed for this long: the devices are silent.
    pub silent_after_ms: i64,
    /// Evaluation runs this far behind the clock, so that a reading received just before a
    /// window's end, still on its way to the database, never raises a false missed alert.
    pub settle_ms: i64,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            lookback_ms: 72 * 3_600_000,
            silent_after_ms: 24 * 3_600_000,
            settle_ms: 5_000,
        }
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    MissedReading,
    MissedDose,
    DeviceSilent,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissedReading => "missed_reading",
            Self::MissedDose => "missed_dose",
            Self::DeviceSilent => "device_silent",
        }
    }
}

/// How a standing alert ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Taken in the window, received after it.
    ReceivedLate,
    /// Taken after the window, within the item's late grace.
    TakenLate,
    /// Received by the window's end after all (it was still on its way when the alert rose).
    OnTime,
    /// The patient's devices sent data again.
    DataReceived,
    /// Monitoring was paused (device silence only: a missed slot before the pause stands).
    Paused,
    /// The stay ended.
    Discharged,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReceivedLate => "received_late",
            Self::TakenLate => "taken_late",
            Self::OnTime => "on_time",
            Self::DataReceived => "data_received",
            Self::Paused => "paused",
            Self::Discharged => "discharged",
        }
    }
}

/// An alert's identity: the slot (item, local date, index), or the silence's start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    pub item: String,
    pub slot_date: String,
    pub slot_index: u32,
}

/// A missed slot found longer than this after its window ended (the station was down) raises its
/// alert but sends the patient no reminder.
pub const MISSED_REMINDER_MS: i64 = 6 * 3_600_000;

/// The item name device silence is filed under.
pub const DEVICES: &str = "devices";

/// What should stand for one key at the instant assessed.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: AlertKey,
    pub kind: AlertKind,
    /// What meets the slot (an item's measure); empty for device silence.
    pub measure: String,
    pub plan_version: Option<u32>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The slot's window is open and nothing meets it yet: the patient is reminded.
    Due,
    /// An alert stands at `level`; `urgent_ms` is when it turns (or turned) urgent.
    Standing { level: Level, urgent_ms: i64 },
    /// An alert for this key, if one stands, ends so; `taken_ms` is the resolving reading's.
    Resolved {
        resolution: Resolution,
        taken_ms: Option<i64>,
    },
}

/// A received reading of one measure: device time and the station's receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Received {
    pub taken_ms: i64,
    pub received_ms: i64,
}

/// What [`assess`] needs of one stay.
#[derive(Debug, Clone)]
pub struct StayView<'a> {
    pub patient: &'a RemotePatient,
    /// Every version of the stay's plan, oldest first.
    pub versions: &'a [PlanVersion],
    /// Every pause of the stay `(from_ms, to_ms)`, an open one with `None`.
    pub pauses: &'a [(i64, Option<i64>)],
    /// The readings received by the bed, by measure (vital code), over the lookback.
    pub readings: &'a HashMap<String, Vec<Received>>,
    /// The doses the bed's dispensers say were taken (`taken` or `late`), by medication id,
    /// over the lookback: what meets a dose item.
    pub doses: &'a HashMap<String, Vec<Received>>,
    /// When the bed last received any reading (however old), if ever.
    pub last_data_ms: Option<i64>,
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn rfc3339(ms: i64) -> String {
    utc(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One slot of a stay's plan in force when it opened, and its state at the instant assessed.
#[derive(Debug, Clone)]
pub struct StaySlot<'a> {
    pub version: u32,
    pub item: &'a vigil_schedule::Item,
    pub status: vigil_schedule::SlotStatus,
}

/// The slots of a stay opening in `[from_ms, until_ms)` that are expected of the patient — each
/// under the plan version in force when it opened, from enrolment, none overlapping a pause —
/// with their states at `now_ms` (pure). What [`assess`] raises alerts from and [`adherence`]
/// counts.
pub fn expected_slots<'a>(
    stay: &StayView<'a>,
    from_ms: i64,
    until_ms: i64,
    now_ms: i64,
) -> Vec<StaySlot<'a>> {
    let mut out = Vec::new();
    let p = stay.patient;
    let overlaps_pause = |from: i64, to: i64| {
        stay.pauses
            .iter()
            .any(|&(a, b)| a < to && b.is_none_or(|b| b > from))
    };
    for (i, v) in stay.versions.iter().enumerate() {
        // This version governs slots opening from when it was set (never before enrolment)
        // until the next version was set.
        let from = v.set_ms.max(p.enrolled_ms).max(from_ms);
        let until = stay
            .versions
            .get(i + 1)
            .map_or(until_ms, |n| n.set_ms.min(until_ms));
        if from >= until {
            continue;
        }
        let tz = v.plan.tz();
        for item in v.plan.items() {
            let events_of = match item.kind() {
                Kind::Reading => stay.readings,
                Kind::Dose => stay.doses,
            };
            let events: Vec<Event> = events_of
                .get(item.measure())
                .map(|r| {
                    r.iter()
                        .map(|r| Event {
                            taken: utc(r.taken_ms),
                            received: utc(r.received_ms),
                        })
                        .collect()
                })
                .unwrap_or_default();
            for status in item.evaluate(tz, &events, utc(from), utc(until), utc(now_ms)) {
                let start = status.slot.start.timestamp_millis();
                let end = status.slot.end.timestamp_millis();
                // A window already open when the plan (or the stay) began is not expected.
                if start < from || start >= until || overlaps_pause(start, end) {
                    continue;
                }
                out.push(StaySlot {
                    version: v.version,
                    item,
                    status,
                });
            }
        }
    }
    out
}

/// What should stand for one stay at `now_ms` (pure). Slots with nothing to say (upcoming,
/// open, met on time) give no finding.
pub fn assess(stay: &StayView<'_>, now_ms: i64, settings: &WatchSettings) -> Vec<Finding> {
    let mut out = Vec::new();
    let p = stay.patient;
    let horizon = now_ms.saturating_sub(settings.lookback_ms);
    for s in expected_slots(stay, horizon, now_ms, now_ms) {
        let kind = match s.item.kind() {
            Kind::Reading => AlertKind::MissedReading,
            Kind::Dose => AlertKind::MissedDose,
        };
        let outcome = match s.status.state {
            SlotState::Upcoming => continue,
            SlotState::Open => Outcome::Due,
            SlotState::MetOnTime { taken, .. } => Outcome::Resolved {
                resolution: Resolution::OnTime,
                taken_ms: Some(taken.timestamp_millis()),
            },
            SlotState::Missed { level, urgent_at } => Outcome::Standing {
                level,
                urgent_ms: urgent_at.timestamp_millis(),
            },
            SlotState::ReceivedLate { taken, .. } => Outcome::Resolved {
                resolution: Resolution::ReceivedLate,
                taken_ms: Some(taken.timestamp_millis()),
            },
            SlotState::TakenLate { taken, .. } => Outcome::Resolved {
                resolution: Resolution::TakenLate,
                taken_ms: Some(taken.timestamp_millis()),
            },
        };
        out.push(Finding {
            key: AlertKey {
                item: s.item.id().to_string(),
                slot_date: s.status.slot.key.date.to_string(),
                slot_index: u32::from(s.status.slot.key.index),
            },
            kind,
            measure: s.item.measure().to_string(),
            plan_version: Some(s.version),
            from_ms: s.status.slot.start.timestamp_millis(),
            to_ms: s.status.slot.end.timestamp_millis(),
            outcome,
        });
    }
    // Device silence: counted from the last data, or from enrolment or the end of the last
    // pause if later; never while paused.
    let paused = stay.pauses.iter().any(|&(a, b)| a <= now_ms && b.is_none());
    if !paused {
        let since = stay
            .pauses
            .iter()
            .filter_map(|&(_, b)| b)
            .chain(stay.last_data_ms)
            .fold(p.enrolled_ms, i64::max);
        let silent_at = since.saturating_add(settings.silent_after_ms);
        if now_ms >= silent_at {
            let urgent_ms = since.saturating_add(2 * settings.silent_after_ms);
            let level = if now_ms >= urgent_ms {
                Level::Urgent
            } else {
                Level::Warning
            };
            out.push(Finding {
                key: AlertKey {
                    item: DEVICES.to_string(),
                    slot_date: rfc3339(since),
                    slot_index: 0,
                },
                kind: AlertKind::DeviceSilent,
                measure: String::new(),
                plan_version: None,
                from_ms: since,
                to_ms: silent_at,
                outcome: Outcome::Standing { level, urgent_ms },
            });
        }
    }
    out
}

/// A change [`tick`] made to an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    pub id: i64,
    pub stay: i64,
    pub bed: BedId,
    pub kind: AlertKind,
    pub item: String,
    pub slot_date: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Raised(Level),
    Escalated,
    Resolved(Resolution),
}

/// A standing alert row.
struct Open {
    id: i64,
    stay: i64,
    kind: String,
    key: AlertKey,
    level: String,
    from_ms: i64,
    to_ms: i64,
}

fn level_str(l: Level) -> &'static str {
    match l {
        Level::Warning => "warning",
        Level::Urgent => "urgent",
    }
}

impl AlertKind {
    pub const ALL: [AlertKind; 3] = [
        AlertKind::MissedReading,
        AlertKind::MissedDose,
        AlertKind::DeviceSilent,
    ];

    /// A kind by its stored name.
    pub fn parse(s: &str) -> Option<AlertKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The stored statuses of results a person may act on (`ObsStatus::alarmable`, the one rule):
/// what meets a slot, as an SQL list.
pub(super) fn counted_sql() -> String {
    let names: Vec<String> = ObsStatus::ALL
        .into_iter()
        .filter(|s| s.alarmable())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

/// What was received, by measure (a vital's code, or a dose item's medication id).
type ByMeasure = HashMap<String, Vec<Received>>;

/// Run `q` (columns: stay, measure, taken, received) and group its rows by stay and measure.
fn grouped(
    q: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<HashMap<i64, ByMeasure>, RemoteError> {
    let mut out: HashMap<i64, ByMeasure> = HashMap::new();
    let rows = q.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            Received {
                taken_ms: r.get(2)?,
                received_ms: r.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (stay, measure, rec) = row?;
        out.entry(stay)
            .or_default()
            .entry(measure)
            .or_default()
            .push(rec);
    }
    Ok(out)
}

/// Every current stay's readings over the lookback, by stay and measure.
fn readings_since(
    conn: &Connection,
    since_ms: i64,
) -> Result<HashMap<i64, ByMeasure>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT p.id, n.code, n.t_ms, COALESCE(n.received_ms, n.t_ms)
         FROM remote_patients p
         JOIN numerics n ON n.ward = p.ward AND n.bed = p.bed
         WHERE p.discharged_ms IS NULL AND n.t_ms >= ?1 AND n.value IS NOT NULL
           AND n.status IN {}",
        counted_sql()
    ))?;
    grouped(&mut q, [since_ms])
}

/// The taken doses (`taken`, `late`) of every current stay taken since `since_ms`, by stay and
/// medication.
fn doses_since(conn: &Connection, since_ms: i64) -> Result<HashMap<i64, ByMeasure>, RemoteError> {
    let mut q = conn.prepare_cached(
        "SELECT p.id, d.medication, d.t_ms, d.received_ms
         FROM remote_patients p
         JOIN doses d ON d.ward = p.ward AND d.bed = p.bed
         WHERE p.discharged_ms IS NULL AND d.t_ms >= ?1 AND d.event IN ('taken', 'late')",
    )?;
    grouped(&mut q, [since_ms])
}

/// One bed's readings that count and taken doses, taken since `since_ms`: (readings by vital,
/// doses by medication).
fn bed_received_since(
    conn: &Connection,
    bed: &BedId,
    since_ms: i64,
) -> Result<(ByMeasure, ByMeasure), RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT 0, code, t_ms, COALESCE(received_ms, t_ms) FROM numerics
         WHERE ward = ?1 AND bed = ?2 AND t_ms >= ?3 AND value IS NOT NULL AND status IN {}
         UNION ALL
         SELECT 1, medication, t_ms, received_ms FROM doses
         WHERE ward = ?1 AND bed = ?2 AND t_ms >= ?3 AND event IN ('taken', 'late')",
        counted_sql()
    ))?;
    let mut both = grouped(&mut q, params![bed.ward, bed.bed, since_ms])?;
    Ok((
        both.remove(&0).unwrap_or_default(),
        both.remove(&1).unwrap_or_default(),
    ))
}

/// When a bed last received anything from its devices (a reading or a dose event), if ever.
fn last_data(conn: &Connection, bed: &BedId) -> Result<Option<i64>, RemoteError> {
    Ok(conn
        .query_row(
            "SELECT MAX(t) FROM (
               SELECT MAX(COALESCE(received_ms, t_ms)) AS t FROM numerics
                 WHERE ward = ?1 AND bed = ?2
               UNION ALL
               SELECT MAX(received_ms) FROM doses WHERE ward = ?1 AND bed = ?2)",
            params![bed.ward, bed.bed],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}

fn open_alerts(conn: &Connection) -> Result<Vec<Open>, RemoteError> {
    let mut q = conn.prepare_cached(
        "SELECT id, patient, kind, item, slot_date, slot_index, level, from_ms, to_ms
         FROM remote_alerts WHERE resolved_ms IS NULL",
    )?;
    let rows = q.query_map([], |r| {
        Ok(Open {
            id: r.get(0)?,
            stay: r.get(1)?,
            kind: r.get(2)?,
            key: AlertKey {
                item: r.get(3)?,
                slot_date: r.get(4)?,
                slot_index: r.get(5)?,
            },
            level: r.get(6)?,
            from_ms: r.get(7)?,
            to_ms: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the watch reads of every current stay: the stays, their readings since an instant,
/// their plan versions and pauses.
struct Inputs {
    stays: Vec<RemotePatient>,
    readings: HashMap<i64, HashMap<String, Vec<Received>>>,
    doses: HashMap<i64, HashMap<String, Vec<Received>>>,
    versions: HashMap<i64, Vec<PlanVersion>>,
    pauses: HashMap<i64, Vec<(i64, Option<i64>)>>,
}

impl Inputs {
    fn read(conn: &Connection, readings_since_ms: i64) -> Result<Self, RemoteError> {
        let mut versions: HashMap<i64, Vec<PlanVersion>> = HashMap::new();
        for v in super::current_plan_versions(conn)? {
            versions.entry(v.stay).or_default().push(v);
        }
        let mut pauses: HashMap<i64, Vec<(i64, Option<i64>)>> = HashMap::new();
        let mut q = conn.prepare_cached(
            "SELECT patient, from_ms, to_ms FROM remote_pauses ORDER BY from_ms, id",
        )?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (stay, from, to): (i64, i64, Option<i64>) = row?;
            pauses.entry(stay).or_default().push((from, to));
        }
        Ok(Self {
            stays: current(conn)?,
            readings: readings_since(conn, readings_since_ms)?,
            doses: doses_since(conn, readings_since_ms)?,
            versions,
            pauses,
        })
    }

    fn view<'a>(
        &'a self,
        p: &'a RemotePatient,
        empty: &'a HashMap<String, Vec<Received>>,
        last_data_ms: Option<i64>,
    ) -> StayView<'a> {
        StayView {
            patient: p,
            versions: self.versions.get(&p.stay).map_or(&[], Vec::as_slice),
            pauses: self.pauses.get(&p.stay).map_or(&[], Vec::as_slice),
            readings: self.readings.get(&p.stay).unwrap_or(empty),
            doses: self.doses.get(&p.stay).unwrap_or(empty),
            last_data_ms,
        }
    }
}

/// One patient's adherence to their care plan at an instant: the slots due over the last 7 and
/// 30 days of the patient's calendar (under the plan in force when each opened, none while
/// paused) and the days of the last 30 with at least one reading (programmes ask for 16).
#[derive(Debug, Clone, PartialEq)]
pub struct AdherenceRow {
    pub stay: i64,
    pub bed: BedId,
    pub mrn: String,
    pub last_7: vigil_schedule::Adherence,
    pub last_30: vigil_schedule::Adherence,
    pub days_with_data_30: u32,
}

/// Every current stay's adherence at `now_ms`, by bed, for a user allowed to see remote
/// patients ([`super::READ`]). The caller records the read of patient data.
pub fn adherence(
    conn: &Connection,
    auth: &crate::auth::Authorized,
    now_ms: i64,
) -> Result<Vec<AdherenceRow>, RemoteError> {
    auth.require(super::READ)?;
    adherence_at(conn, now_ms)
}

/// [`adherence`] without the permission check, for a caller holding another proof (a shift
/// handover report, [`crate::report`]).
pub(crate) fn adherence_at(
    conn: &Connection,
    now_ms: i64,
) -> Result<Vec<AdherenceRow>, RemoteError> {
    // 30 local dates back in any zone, and a day more for the late grace.
    let inputs = Inputs::read(conn, now_ms.saturating_sub(32 * 24 * 3_600_000))?;
    let empty = HashMap::new();
    let now = utc(now_ms);
    let mut out = Vec::with_capacity(inputs.stays.len());
    for p in &inputs.stays {
        let view = inputs.view(p, &empty, None);
        let period = |days: u32| {
            vigil_schedule::period(p.tz, now, days).map_or(now_ms, |(first, _)| {
                vigil_schedule::instant_of(p.tz, first.and_time(chrono::NaiveTime::MIN))
                    .timestamp_millis()
            })
        };
        let count = |days: u32| {
            let slots: Vec<_> = expected_slots(&view, period(days), now_ms, now_ms)
                .into_iter()
                .map(|s| s.status)
                .collect();
            vigil_schedule::Adherence::of(&slots)
        };
        let events: Vec<Event> = view
            .readings
            .values()
            .flatten()
            .map(|r| Event {
                taken: utc(r.taken_ms),
                received: utc(r.received_ms),
            })
            .collect();
        out.push(AdherenceRow {
            stay: p.stay,
            bed: p.bed.clone(),
            mrn: p.mrn.clone(),
            last_7: count(7),
            last_30: count(30),
            days_with_data_30: vigil_schedule::days_with_data(p.tz, &events, now, 30),
        });
    }
    Ok(out)
}

/// Page cache of the watch's connection, KiB: every tick reads each current stay's readings
/// over the lookback, which then stay in memory instead of being read (and, encrypted,
/// decrypted) again from the file (`vigilctl bench remote`).
const CACHE_KIB: i64 = 32 * 1024;

/// The watch's own connection to the station's database (the engine's loop and the bench).
pub fn open(db: &std::path::Path) -> Result<Connection, RemoteError> {
    let conn = crate::store::open(db)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(conn)
}

/// Evaluate every current stay at `now_ms` and write what changed (raised, escalated,
/// resolved) in one transaction. Returns the changes, for the log and the window.
pub fn tick(
    conn: &Connection,
    now_ms: i64,
    settings: &WatchSettings,
) -> Result<Vec<AlertChange>, RemoteError> {
    let at = now_ms.saturating_sub(settings.settle_ms);
    in_tx(conn, |tx| {
        let horizon = at.saturating_sub(settings.lookback_ms);
        // Readings taken up to a day before the horizon: a slot's late grace may reach back.
        let Inputs {
            stays,
            readings,
            doses,
            versions,
            pauses,
        } = Inputs::read(tx, horizon.saturating_sub(24 * 3_600_000))?;
        let open = open_alerts(tx)?;
        let by_key: HashMap<(i64, &AlertKey), &Open> =
            open.iter().map(|o| ((o.stay, &o.key), o)).collect();
        let empty = HashMap::new();
        let mut changes = Vec::new();
        let mut seen: BTreeSet<i64> = BTreeSet::new();
        let mut beds: BTreeMap<i64, &RemotePatient> = BTreeMap::new();
        for p in &stays {
            beds.insert(p.stay, p);
            let mine = readings.get(&p.stay).unwrap_or(&empty);
            let my_doses = doses.get(&p.stay).unwrap_or(&empty);
            // The last data: from the lookback's readings and doses, else (a silent bed) the
            // whole history.
            let mut last = mine
                .values()
                .chain(my_doses.values())
                .flatten()
                .map(|r| r.received_ms)
                .max();
            if last.is_none() {
                last = last_data(tx, &p.bed)?;
            }
            let view = StayView {
                patient: p,
                versions: versions.get(&p.stay).map_or(&[], Vec::as_slice),
                pauses: pauses.get(&p.stay).map_or(&[], Vec::as_slice),
                readings: mine,
                doses: my_doses,
                last_data_ms: last,
            };
            for f in assess(&view, at, settings) {
                let existing = by_key.get(&(p.stay, &f.key)).copied();
                if let Some(o) = existing {
                    seen.insert(o.id);
                }
                let change = |id: i64, change: Change| AlertChange {
                    id,
                    stay: p.stay,
                    bed: p.bed.clone(),
                    kind: f.kind,
                    item: f.key.item.clone(),
                    slot_date: f.key.slot_date.clone(),
                    from_ms: f.from_ms,
                    to_ms: f.to_ms,
                    change,
                };
                let slot = super::engage::Slot {
                    item: &f.key.item,
                    dose: f.kind == AlertKind::MissedDose,
                    measure: &f.measure,
                    slot_date: &f.key.slot_date,
                    slot_index: f.key.slot_index,
                    from_ms: f.from_ms,
                    to_ms: f.to_ms,
                };
                match (f.outcome, existing) {
                    (Outcome::Due, _) => {
                        super::engage::queue_reminder(tx, p, slot, false, now_ms)?;
                    }
                    (Outcome::Standing { level, urgent_ms }, None) => {
                        // A slot is missed once: a row resolved before is not raised again.
                        let n = tx.execute(
                            "INSERT OR IGNORE INTO remote_alerts
                               (patient, kind, item, slot_date, slot_index, plan_version,
                                from_ms, to_ms, level, raised_ms, urgent_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                            params![
                                p.stay,
                                f.kind.as_str(),
                                f.key.item,
                                f.key.slot_date,
                                f.key.slot_index,
                                f.plan_version,
                                f.from_ms,
                                f.to_ms,
                                level_str(level),
                                now_ms,
                                (level == Level::Urgent).then_some(urgent_ms),
                            ],
                        )?;
                        if n == 1 {
                            changes.push(change(tx.last_insert_rowid(), Change::Raised(level)));
                            // The patient is told a reading is missing, while it can still be
                            // taken late (not for slots long over, found after downtime).
                            let recent = at.saturating_sub(f.to_ms) <= MISSED_REMINDER_MS;
                            if f.kind != AlertKind::DeviceSilent && recent {
                                super::engage::queue_reminder(tx, p, slot, true, now_ms)?;
                            }
                        }
                    }
                    (Outcome::Standing { level, urgent_ms }, Some(o)) => {
                        if level == Level::Urgent && o.level != "urgent" {
                            tx.execute(
                                "UPDATE remote_alerts SET level = 'urgent', urgent_ms = ?2
                                 WHERE id = ?1",
                                params![o.id, urgent_ms],
                            )?;
                            changes.push(change(o.id, Change::Escalated));
                        }
                    }
                    (Outcome::Resolved { .. }, None) => {}
                    (
                        Outcome::Resolved {
                            resolution,
                            taken_ms,
                        },
                        Some(o),
                    ) => {
                        resolve(tx, o.id, now_ms, resolution, taken_ms)?;
                        changes.push(change(o.id, Change::Resolved(resolution)));
                    }
                }
            }
        }
        // Standing alerts the assessment no longer speaks for: a discharged stay's, and device
        // silences that ended. A missed slot out of the lookback stands until it is resolved.
        for o in &open {
            if seen.contains(&o.id) {
                continue;
            }
            let Some(kind) = AlertKind::parse(&o.kind) else {
                // Not written by this version: left as it stands, and said.
                tracing::error!(id = o.id, kind = %o.kind, "remote alert of an unknown kind left as is");
                continue;
            };
            let resolution = match beds.get(&o.stay) {
                None => Resolution::Discharged,
                Some(_) if o.kind != AlertKind::DeviceSilent.as_str() => continue,
                Some(p) if p.pause.is_some() => Resolution::Paused,
                Some(_) => Resolution::DataReceived,
            };
            resolve(tx, o.id, now_ms, resolution, None)?;
            let bed = match beds.get(&o.stay) {
                Some(p) => p.bed.clone(),
                None => super::stay(tx, o.stay)?.map_or_else(|| BedId::new("?", "?"), |p| p.bed),
            };
            changes.push(AlertChange {
                id: o.id,
                stay: o.stay,
                bed,
                kind,
                item: o.key.item.clone(),
                slot_date: o.key.slot_date.clone(),
                from_ms: o.from_ms,
                to_ms: o.to_ms,
                change: Change::Resolved(resolution),
            });
        }
        Ok(changes)
    })
}

fn resolve(
    conn: &Connection,
    id: i64,
    now_ms: i64,
    resolution: Resolution,
    taken_ms: Option<i64>,
) -> Result<(), RemoteError> {
    conn.execute(
        "UPDATE remote_alerts SET resolved_ms = ?2, resolution = ?3, resolved_by_ms = ?4
         WHERE id = ?1",
        params![id, now_ms, resolution.as_str(), taken_ms],
    )?;
    Ok(())
}

/// A standing or past alert, as the window and the command line list them.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub stay: i64,
    pub kind: String,
    pub item: String,
    pub slot_date: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub level: String,
    pub raised_ms: i64,
    pub urgent_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub resolution: Option<String>,
}

/// The current remote beds on which an urgent care-plan alert stands, each with what stands
/// ("reading bp missed; devices silent"): what the engine raises as the bed's
/// [`crate::alarms::state::CARE_PLAN`] alarm.
pub fn urgent_beds(conn: &Connection) -> Result<BTreeMap<BedId, String>, RemoteError> {
    let mut q = conn.prepare_cached(
        "SELECT p.ward, p.bed, a.kind, a.item FROM remote_alerts a
         JOIN remote_patients p ON p.id = a.patient
         WHERE a.resolved_ms IS NULL AND a.level = 'urgent' AND p.discharged_ms IS NULL
         ORDER BY p.ward, p.bed, a.from_ms, a.id",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            BedId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out: BTreeMap<BedId, Vec<String>> = BTreeMap::new();
    for row in rows {
        let (bed, kind, item) = row?;
        let what = match AlertKind::parse(&kind) {
            Some(AlertKind::MissedReading) => format!("reading {item} missed"),
            Some(AlertKind::MissedDose) => format!("dose {item} missed"),
            Some(AlertKind::DeviceSilent) => "devices silent".to_string(),
            None => format!("{kind} {item}"),
        };
        let list = out.entry(bed).or_default();
        if !list.contains(&what) {
            list.push(what);
        }
    }
    Ok(out.into_iter().map(|(b, l)| (b, l.join("; "))).collect())
}

/// A stay's alerts, newest window first.
pub fn alerts(conn: &Connection, stay: i64) -> Result<Vec<AlertRow>, RemoteError> {
    let mut q = conn.prepare_cached(
        "SELECT id, patient, kind, item, slot_date, from_ms, to_ms, level, raised_ms, urgent_ms,
                resolved_ms, resolution
         FROM remote_alerts WHERE patient = ?1 ORDER BY from_ms DESC, id DESC",
    )?;
    let rows = q.query_map([stay], |r| {
        Ok(AlertRow {
            id: r.get(0)?,
            stay: r.get(1)?,
            kind: r.get(2)?,
            item: r.get(3)?,
            slot_date: r.get(4)?,
            from_ms: r.get(5)?,
            to_ms: r.get(6)?,
            level: r.get(7)?,
            raised_ms: r.get(8)?,
            urgent_ms: r.get(9)?,
            resolved_ms: r.get(10)?,
            resolution: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One slot of a stay's schedule as the patient's record draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow {
    pub item: String,
    pub measure: String,
    /// The plan version it was evaluated under.
    pub version: u32,
    pub from_ms: i64,
    pub to_ms: i64,
    /// upcoming | open | on_time | received_late | taken_late | missed
    pub state: &'static str,
    /// warning | urgent: the level a missed slot is at, or had reached before it was met late.
    pub level: Option<&'static str>,
    /// When the reading that met it was taken.
    pub taken_ms: Option<i64>,
}

/// The slots of one stay's schedule opening in `[from_ms, until_ms)`, with their states at
/// `now_ms` (as [`expected_slots`]: under the plan version in force when each opened, from
/// enrolment, none while paused), by start.
pub fn slots_of(
    conn: &Connection,
    p: &RemotePatient,
    from_ms: i64,
    until_ms: i64,
    now_ms: i64,
) -> Result<Vec<SlotRow>, RemoteError> {
    let versions = super::plan_versions(conn, p.stay)?;
    let pauses: Vec<(i64, Option<i64>)> = super::pauses(conn, p.stay)?
        .into_iter()
        .map(|z| (z.from_ms, z.to_ms))
        .collect();
    // A day before the range: a slot's late grace may reach back.
    let (readings, doses) =
        bed_received_since(conn, &p.bed, from_ms.saturating_sub(24 * 3_600_000))?;
    let view = StayView {
        patient: p,
        versions: &versions,
        pauses: &pauses,
        readings: &readings,
        doses: &doses,
        last_data_ms: None,
    };
    let mut out: Vec<SlotRow> = expected_slots(&view, from_ms, until_ms, now_ms)
        .into_iter()
        .map(|s| {
            let level = |l: Level| Some(level_str(l));
            let ms = |t: DateTime<Utc>| Some(t.timestamp_millis());
            let (state, level, taken_ms) = match s.status.state {
                SlotState::Upcoming => ("upcoming", None, None),
                SlotState::Open => ("open", None, None),
                SlotState::MetOnTime { taken, .. } => ("on_time", None, ms(taken)),
                SlotState::Missed { level: l, .. } => ("missed", level(l), None),
                SlotState::ReceivedLate { taken, reached, .. } => {
                    ("received_late", level(reached), ms(taken))
                }
                SlotState::TakenLate { taken, reached, .. } => {
                    ("taken_late", level(reached), ms(taken))
                }
            };
            SlotRow {
                item: s.item.id().to_string(),
                measure: s.item.measure().to_string(),
                version: s.version,
                from_ms: s.status.slot.start.timestamp_millis(),
                to_ms: s.status.slot.end.timestamp_millis(),
                state,
                level,
                taken_ms,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.from_ms, &a.item).cmp(&(b.from_ms, &b.item)));
    Ok(out)
}
