//! Remote patients (schema 011, issue 15): patients at home or seen by a mobile clinic, watched
//! from the station as the beds of a remote ward. A remote bed is a patient, not a place: its
//! [`BedId`] (`home/p-0042`) is the key its readings are stored, trended and alarmed under, and
//! it is never given to another MRN, so its history and its devices stay one patient's.
//!
//! - **Stays**: [`enrol`] (two identifiers, MRN and date of birth, and the patient's IANA time
//!   zone), [`pause`] (with a reason: a hospital stay, travel) and [`resume`], [`discharge`].
//!   One row per stay, as the patient register ([`crate::patients`]) has one per admission; a
//!   stay is [`State::Active`], [`State::Paused`] or [`State::Discharged`], with who and when.
//! - **Devices**: the device registry as for a ward bed ([`crate::ingest::Registry`],
//!   `usecase::register_device`, IT's [`Permission::ManageDevices`]): a home device is
//!   registered to the patient's remote bed, with its own identity. The read model lists them
//!   ([`Enrolled::devices`]).
//! - **Care plans**: [`set_plan`] keeps every version of a stay's [`Plan`] (its items and change
//!   rules validated by `vigil_schedule`'s validators, in the patient's zone; a reading's or a
//!   rule's measure a vital of the contract, [`vital_measure`]) with who set it and when; slot
//!   outcomes name the version they were evaluated under ([`PlanVersion`]). A version, once set,
//!   is never changed (the table's triggers refuse it).
//!
//! Every change is a station action: typed input checked here, an [`Authorized`] proof, and one
//! transaction ([`in_tx`], joining the caller's) holding the change and its audit entry (which
//! names the MRN, never the name). Permissions, from the one matrix ([`crate::auth::allowed`]):
//! [`MANAGE`] (enrol, pause, resume, discharge) and [`PLAN`] (care plans) are the charge
//! nurse's; [`READ`] (the enrolled list with identities, [`enrolled`]) the nurse's and the
//! charge nurse's. The engine reads the same list without a session ([`load`]): no session
//! gates monitoring.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;
use vigil_schedule::{Item, ItemSpec, Kind, Plan, Rule, RuleSpec, ScheduleError};

use crate::audit::{actions, Audit, AuditError};
use crate::auth::{AuthError, Authorized, Permission};
use crate::codes::Vital;
use crate::ingest::{self, RegisteredDevice};
use crate::patients::{self, PatientError};
use crate::store::{in_tx, StoreError};
use crate::telemetry::BedId;

/// Enrol, pause, resume and discharge a remote patient: the register's permission, as for a
/// ward admission (charge nurse).
pub const MANAGE: Permission = Permission::AdmitDischargeTransfer;
/// Set a care plan (schedules now, per-patient limits and change rules with them): the
/// permission of a patient's alarm limits (charge nurse).
pub const PLAN: Permission = Permission::ChangePatientLimits;
/// See the enrolled patients with their identity and plans (nurse, charge nurse).
pub const READ: Permission = Permission::ViewWard;

/// Longest pause reason accepted, in characters.
pub const MAX_REASON: usize = 200;

#[derive(Debug, Error)]
pub enum RemoteError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("time zone {0:?}: not an IANA time zone name (e.g. Europe/London, America/New_York)")]
    TimeZone(String),
    /// Refused by the schedule's one validator (`vigil_schedule`).
    #[error("care plan: {0}")]
    Plan(#[from] ScheduleError),
    #[error("remote bed {0} already has a patient; discharge first")]
    BedOccupied(String),
    #[error("bed {0} has a ward patient; a remote patient needs a bed of a remote ward")]
    WardBed(String),
    #[error("bed {0} was another remote patient's; give this patient a bed of their own")]
    BedOfAnother(String),
    #[error("MRN {0} is already enrolled in remote bed {1}")]
    MrnEnrolled(String, String),
    #[error("no remote patient in bed {0}")]
    NoPatient(String),
    #[error("monitoring of remote bed {0} is already paused")]
    AlreadyPaused(String),
    #[error("monitoring of remote bed {0} is not paused")]
    NotPaused(String),
    #[error("the care plan of remote bed {0} is unchanged (version {1})")]
    Unchanged(String, u32),
    #[error("stored care plan {version} of remote stay {stay} is unreadable: {reason}")]
    StoredPlan {
        stay: i64,
        version: u32,
        reason: String,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// What the patient register's validators and reads refused ([`patients::parse_dob`]): bad
/// input, or the database.
fn from_register(e: PatientError) -> RemoteError {
    match e {
        PatientError::Sql(e) => RemoteError::Sql(e),
        other => RemoteError::Invalid(other.to_string()),
    }
}

/// Where a stay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Monitored: its plan's slots are due and missed.
    Active,
    /// Enrolled, not monitored for now: its slots are neither due nor missed.
    Paused,
    /// Over.
    Discharged,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Paused => "paused",
            State::Discharged => "discharged",
        }
    }
}

/// A pause of monitoring: open while `to_ms` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub from_ms: i64,
    pub by: String,
    pub reason: String,
    pub to_ms: Option<i64>,
    pub to_by: Option<String>,
}

/// One remote stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePatient {
    /// The stay's id: care plan versions (and later slot outcomes) belong to it.
    pub stay: i64,
    pub bed: BedId,
    pub mrn: String,
    pub name: String,
    /// `YYYY-MM-DD`, the second identifier.
    pub dob: String,
    /// The patient's own time zone: the clock of their plan's windows.
    pub tz: Tz,
    pub enrolled_ms: i64,
    pub enrolled_by: String,
    /// The pause in force, if any (a discharge ends it).
    pub pause: Option<Pause>,
    pub discharged_ms: Option<i64>,
    pub discharged_by: Option<String>,
}

impl RemotePatient {
    pub fn state(&self) -> State {
        match (self.discharged_ms, &self.pause) {
            (Some(_), _) => State::Discharged,
            (None, Some(_)) => State::Paused,
            (None, None) => State::Active,
        }
    }

    /// What may be shown without the right to see identities (as [`patients::Patient::masked`]):
    /// the initials, no MRN, no date of birth.
    pub fn masked(&self) -> RemotePatient {
        RemotePatient {
            mrn: String::new(),
            name: patients::initials(&self.name),
            dob: String::new(),
            ..self.clone()
        }
    }
}

/// What an enrolment records.
#[derive(Debug, Clone, Default)]
pub struct NewRemotePatient<'a> {
    pub mrn: &'a str,
    pub name: &'a str,
    /// `YYYY-MM-DD`: the second identifier, required.
    pub dob: &'a str,
    /// IANA name (`Europe/London`).
    pub tz: &'a str,
}

/// One version of a stay's care plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanVersion {
    pub stay: i64,
    /// From 1, per stay.
    pub version: u32,
    pub plan: Plan,
    pub set_ms: i64,
    pub set_by: String,
}

/// A current stay as the window, the command line and the engine see it: the patient, the plan
/// in force (none until a charge nurse sets one) and the devices registered to the bed.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrolled {
    pub patient: RemotePatient,
    pub plan: Option<PlanVersion>,
    pub devices: Vec<RegisteredDevice>,
}

/// An IANA time zone by name (the schedule's [`vigil_schedule::zone`]).
pub fn parse_tz(name: &str) -> Result<Tz, RemoteError> {
    let name = name.trim();
    vigil_schedule::zone(name).ok_or_else(|| RemoteError::TimeZone(name.to_string()))
}

/// A pause reason as typed: required, at most [`MAX_REASON`] printable characters.
pub fn parse_reason(s: &str) -> Result<String, RemoteError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(RemoteError::Invalid(
            "a reason is required to pause monitoring (no missed-reading alert while paused)"
                .into(),
        ));
    }
    if s.chars().count() > MAX_REASON || s.chars().any(char::is_control) {
        return Err(RemoteError::Invalid(format!(
            "reason must be at most {MAX_REASON} printable characters"
        )));
    }
    Ok(s.to_string())
}

/// A reading's or a change rule's measure, `what` naming the item or rule in the refusal: it
/// must be a vital of the contract (its code, any case), or no reading could ever meet the
/// item's slots or the rule's test; returned as the contract spells it.
pub fn vital_measure(what: &str, measure: &str) -> Result<String, RemoteError> {
    let vital = Vital::from_name(measure.trim()).ok_or_else(|| {
        RemoteError::Invalid(format!(
            "{what}: {measure:?} is not a vital Vigil receives ({})",
            Vital::ALL.map(Vital::name).join(", ")
        ))
    })?;
    Ok(vital.name().to_string())
}

/// A plan in `tz` from items and change rules as given, through the schedule's validators
/// ([`Item::new`], [`Rule::new`], [`Plan::with_rules`]: ids unique across items and rules). A
/// reading's measure and a rule's must be vitals ([`vital_measure`]).
pub fn parse_plan(tz: Tz, items: &[ItemSpec], rules: &[RuleSpec]) -> Result<Plan, RemoteError> {
    let items = items
        .iter()
        .cloned()
        .map(|mut spec| {
            spec.measure = match spec.kind {
                Kind::Reading => vital_measure(&format!("item {}", spec.id), &spec.measure)?,
                Kind::Dose => crate::dose::parse_medication(&spec.measure)
                    .map_err(|e| RemoteError::Invalid(format!("item {}: {e}", spec.id)))?,
            };
            Ok(Item::new(spec)?)
        })
        .collect::<Result<Vec<_>, RemoteError>>()?;
    let rules = rules
        .iter()
        .cloned()
        .map(|mut spec| {
            spec.measure = vital_measure(&format!("rule {}", spec.id), &spec.measure)?;
            Ok(Rule::new(spec)?)
        })
        .collect::<Result<Vec<_>, RemoteError>>()?;
    Ok(Plan::with_rules(tz, items, rules)?)
}

const PATIENT_COLUMNS: &str = "p.id, p.ward, p.bed, p.mrn, p.name, p.dob, p.tz, p.enrolled_ms,
    p.enrolled_by, p.discharged_ms, p.discharged_by, z.from_ms, z.from_by, z.reason
    FROM remote_patients p
    LEFT JOIN remote_pauses z ON z.patient = p.id AND z.to_ms IS NULL";

fn patient_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RemotePatient> {
    let tz: String = r.get(6)?;
    let tz = vigil_schedule::zone(&tz).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            6,
            rusqlite::types::Type::Text,
            format!("unknown time zone {tz:?}").into(),
        )
    })?;
    let pause = match r.get::<_, Option<i64>>(11)? {
        Some(from_ms) => Some(Pause {
            from_ms,
            by: r.get(12)?,
            reason: r.get(13)?,
            to_ms: None,
            to_by: None,
        }),
        None => None,
    };
    Ok(RemotePatient {
        stay: r.get(0)?,
        bed: BedId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
        mrn: r.get(3)?,
        name: r.get(4)?,
        dob: r.get(5)?,
        tz,
        enrolled_ms: r.get(7)?,
        enrolled_by: r.get(8)?,
        pause,
        discharged_ms: r.get(9)?,
        discharged_by: r.get(10)?,
    })
}

/// The current (not discharged) stay in `bed`, if any.
pub fn in_bed(conn: &Connection, bed: &BedId) -> Result<Option<RemotePatient>, RemoteError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {PATIENT_COLUMNS}
                 WHERE p.ward = ?1 AND p.bed = ?2 AND p.discharged_ms IS NULL"
            ),
            params![bed.ward, bed.bed],
            patient_from_row,
        )
        .optional()?)
}

/// A stay by its id, discharged or not.
pub fn stay(conn: &Connection, stay: i64) -> Result<Option<RemotePatient>, RemoteError> {
    Ok(conn
        .query_row(
            &format!("SELECT {PATIENT_COLUMNS} WHERE p.id = ?1"),
            [stay],
            patient_from_row,
        )
        .optional()?)
}

/// Every current stay, by bed.
pub fn current(conn: &Connection) -> Result<Vec<RemotePatient>, RemoteError> {
    let mut q = conn.prepare(&format!(
        "SELECT {PATIENT_COLUMNS} WHERE p.discharged_ms IS NULL ORDER BY p.ward, p.bed"
    ))?;
    let rows = q.query_map([], patient_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The beds of every current stay.
pub fn current_beds(conn: &Connection) -> Result<std::collections::BTreeSet<BedId>, RemoteError> {
    let mut q =
        conn.prepare_cached("SELECT ward, bed FROM remote_patients WHERE discharged_ms IS NULL")?;
    let rows = q.query_map([], |r| {
        Ok(BedId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every pause of a stay, oldest first (what adherence leaves out).
pub fn pauses(conn: &Connection, stay: i64) -> Result<Vec<Pause>, RemoteError> {
    let mut q = conn.prepare(
        "SELECT from_ms, from_by, reason, to_ms, to_by FROM remote_pauses
         WHERE patient = ?1 ORDER BY from_ms, id",
    )?;
    let rows = q.query_map([stay], |r| {
        Ok(Pause {
            from_ms: r.get(0)?,
            by: r.get(1)?,
            reason: r.get(2)?,
            to_ms: r.get(3)?,
            to_by: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const PLAN_COLUMNS: &str = "patient, version, plan, set_ms, set_by";

/// A stored version, read back through the schedule's validator.
fn plan_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<PlanVersion, RemoteError>> {
    let (stay, version, json): (i64, u32, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (set_ms, set_by) = (r.get(3)?, r.get(4)?);
    Ok(match serde_json::from_str::<Plan>(&json) {
        Ok(plan) => Ok(PlanVersion {
            stay,
            version,
            plan,
            set_ms,
            set_by,
        }),
        Err(e) => Err(RemoteError::StoredPlan {
            stay,
            version,
            reason: e.to_string(),
        }),
    })
}

/// Every version of a stay's care plan, oldest first.
pub fn plan_versions(conn: &Connection, stay: i64) -> Result<Vec<PlanVersion>, RemoteError> {
    let mut q = conn.prepare(&format!(
        "SELECT {PLAN_COLUMNS} FROM care_plans WHERE patient = ?1 ORDER BY version"
    ))?;
    let rows = q.query_map([stay], plan_from_row)?;
    rows.map(|r| r?).collect()
}

/// Every version of every current stay's care plan, by stay then version (the watch's read).
pub fn current_plan_versions(conn: &Connection) -> Result<Vec<PlanVersion>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {PLAN_COLUMNS} FROM care_plans
         WHERE patient IN (SELECT id FROM remote_patients WHERE discharged_ms IS NULL)
         ORDER BY patient, version"
    ))?;
    let rows = q.query_map([], plan_from_row)?;
    rows.map(|r| r?).collect()
}

/// One version of a stay's care plan (the one a slot outcome names).
pub fn plan_version(
    conn: &Connection,
    stay: i64,
    version: u32,
) -> Result<Option<PlanVersion>, RemoteError> {
    conn.query_row(
        &format!("SELECT {PLAN_COLUMNS} FROM care_plans WHERE patient = ?1 AND version = ?2"),
        params![stay, version],
        plan_from_row,
    )
    .optional()?
    .transpose()
}

/// The plan in force for a stay: its latest version.
pub fn current_plan(conn: &Connection, stay: i64) -> Result<Option<PlanVersion>, RemoteError> {
    conn.query_row(
        &format!(
            "SELECT {PLAN_COLUMNS} FROM care_plans WHERE patient = ?1
             ORDER BY version DESC LIMIT 1"
        ),
        [stay],
        plan_from_row,
    )
    .optional()?
    .transpose()
}

/// Every current stay with its plan in force and its devices, by bed: the engine's read (no
/// session gates monitoring). A face showing identities calls [`enrolled`].
pub fn load(conn: &Connection) -> Result<Vec<Enrolled>, RemoteError> {
    let mut plans: BTreeMap<i64, PlanVersion> = BTreeMap::new();
    {
        let mut q = conn.prepare(&format!(
            "SELECT {PLAN_COLUMNS} FROM care_plans c
             WHERE version = (SELECT MAX(version) FROM care_plans m WHERE m.patient = c.patient)
               AND patient IN (SELECT id FROM remote_patients WHERE discharged_ms IS NULL)"
        ))?;
        for r in q.query_map([], plan_from_row)? {
            let v = r??;
            plans.insert(v.stay, v);
        }
    }
    let mut devices: BTreeMap<BedId, Vec<RegisteredDevice>> = BTreeMap::new();
    for d in ingest::list_devices(conn)? {
        devices.entry(d.bed.clone()).or_default().push(d);
    }
    Ok(current(conn)?
        .into_iter()
        .map(|p| Enrolled {
            plan: plans.remove(&p.stay),
            devices: devices.remove(&p.bed).unwrap_or_default(),
            patient: p,
        })
        .collect())
}

/// The enrolled patients with their identity, plans and devices, for a user allowed to see
/// them ([`READ`]). The caller records the read of patient data (`AuthService::audit_read`).
pub fn enrolled(conn: &Connection, auth: &Authorized) -> Result<Vec<Enrolled>, RemoteError> {
    auth.require(READ)?;
    load(conn)
}

/// Enrol a remote patient to a free remote bed (`remote_patient_enrol`). Two identifiers (MRN
/// and date of birth) and the patient's time zone; no care plan yet ([`set_plan`]). Refused: a
/// bed with a current stay or a ward patient, a bed once given to another MRN, an MRN already
/// enrolled.
pub fn enrol(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    new: &NewRemotePatient<'_>,
    now_ms: i64,
) -> Result<RemotePatient, RemoteError> {
    let user = auth.require(MANAGE)?;
    let mrn = patients::clean("MRN", new.mrn).map_err(from_register)?;
    let name = patients::clean("name", new.name).map_err(from_register)?;
    if new.dob.trim().is_empty() {
        return Err(RemoteError::Invalid(
            "date of birth is required (the second identifier)".into(),
        ));
    }
    let dob = patients::parse_dob(new.dob, now_ms)
        .map_err(from_register)?
        .format("%Y-%m-%d")
        .to_string();
    let tz = parse_tz(new.tz)?;
    let stay = in_tx(conn, |conn| {
        if in_bed(conn, bed)?.is_some() {
            return Err(RemoteError::BedOccupied(bed.key()));
        }
        if patients::in_bed(conn, bed)
            .map_err(from_register)?
            .is_some()
        {
            return Err(RemoteError::WardBed(bed.key()));
        }
        let earlier: Option<String> = conn
            .query_row(
                "SELECT mrn FROM remote_patients WHERE ward = ?1 AND bed = ?2 AND mrn <> ?3
                 LIMIT 1",
                params![bed.ward, bed.bed, mrn],
                |r| r.get(0),
            )
            .optional()?;
        if earlier.is_some() {
            return Err(RemoteError::BedOfAnother(bed.key()));
        }
        let elsewhere: Option<(String, String)> = conn
            .query_row(
                "SELECT ward, bed FROM remote_patients WHERE mrn = ?1 AND discharged_ms IS NULL",
                [&mrn],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((w, b)) = elsewhere {
            return Err(RemoteError::MrnEnrolled(
                mrn.clone(),
                BedId::new(w, b).key(),
            ));
        }
        conn.execute(
            "INSERT INTO remote_patients (ward, bed, mrn, name, dob, tz, enrolled_ms, enrolled_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![bed.ward, bed.bed, mrn, name, dob, tz.name(), now_ms, user],
        )?;
        let stay = conn.last_insert_rowid();
        Audit::append(
            conn,
            user,
            actions::REMOTE_PATIENT_ENROL,
            &bed.key(),
            &format!("mrn={mrn}; tz={}", tz.name()),
            now_ms,
        )?;
        Ok(stay)
    })?;
    tracing::info!(bed = %bed, stay, "remote patient enrolled");
    Ok(RemotePatient {
        stay,
        bed: bed.clone(),
        mrn,
        name,
        dob,
        tz,
        enrolled_ms: now_ms,
        enrolled_by: user.to_string(),
        pause: None,
        discharged_ms: None,
        discharged_by: None,
    })
}

/// The current stay in `bed`, or [`RemoteError::NoPatient`].
fn current_in(conn: &Connection, bed: &BedId) -> Result<RemotePatient, RemoteError> {
    in_bed(conn, bed)?.ok_or_else(|| RemoteError::NoPatient(bed.key()))
}

/// Pause the monitoring of the patient in `bed` (`remote_patient_pause`, with the reason): no
/// slot is due or missed until [`resume`].
pub fn pause(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    reason: &str,
    now_ms: i64,
) -> Result<RemotePatient, RemoteError> {
    let user = auth.require(MANAGE)?;
    let reason = parse_reason(reason)?;
    let p = in_tx(conn, |conn| {
        let p = current_in(conn, bed)?;
        if p.pause.is_some() {
            return Err(RemoteError::AlreadyPaused(bed.key()));
        }
        conn.execute(
            "INSERT INTO remote_pauses (patient, from_ms, from_by, reason)
             VALUES (?1, ?2, ?3, ?4)",
            params![p.stay, now_ms, user, reason],
        )?;
        Audit::append(
            conn,
            user,
            actions::REMOTE_PATIENT_PAUSE,
            &bed.key(),
            &format!("mrn={}; reason {reason:?}", p.mrn),
            now_ms,
        )?;
        Ok(RemotePatient {
            pause: Some(Pause {
                from_ms: now_ms,
                by: user.to_string(),
                reason: reason.clone(),
                to_ms: None,
                to_by: None,
            }),
            ..p
        })
    })?;
    tracing::info!(bed = %bed, stay = p.stay, "remote monitoring paused");
    Ok(p)
}

/// Resume the monitoring of the paused patient in `bed` (`remote_patient_resume`).
pub fn resume(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    now_ms: i64,
) -> Result<RemotePatient, RemoteError> {
    let user = auth.require(MANAGE)?;
    let p = in_tx(conn, |conn| {
        let p = current_in(conn, bed)?;
        let Some(paused) = &p.pause else {
            return Err(RemoteError::NotPaused(bed.key()));
        };
        end_pause(conn, p.stay, user, now_ms)?;
        Audit::append(
            conn,
            user,
            actions::REMOTE_PATIENT_RESUME,
            &bed.key(),
            &format!(
                "mrn={}; paused {} min",
                p.mrn,
                (now_ms - paused.from_ms).max(0) / 60_000
            ),
            now_ms,
        )?;
        Ok(RemotePatient { pause: None, ..p })
    })?;
    tracing::info!(bed = %bed, stay = p.stay, "remote monitoring resumed");
    Ok(p)
}

/// End the open pause of a stay, if any.
fn end_pause(conn: &Connection, stay: i64, user: &str, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE remote_pauses SET to_ms = ?2, to_by = ?3 WHERE patient = ?1 AND to_ms IS NULL",
        params![stay, now_ms, user],
    )
}

/// Discharge the patient in `bed` from remote monitoring (`remote_patient_discharge`); a pause
/// in force ends with it. The stay, its pauses and its plan versions are kept. The devices stay
/// registered to the bed (IT removes them); the bed is never given to another patient.
pub fn discharge(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    now_ms: i64,
) -> Result<RemotePatient, RemoteError> {
    let user = auth.require(MANAGE)?;
    let p = in_tx(conn, |conn| -> Result<_, RemoteError> {
        let p = current_in(conn, bed)?;
        end_pause(conn, p.stay, user, now_ms)?;
        conn.execute(
            "UPDATE remote_patients SET discharged_ms = ?2, discharged_by = ?3 WHERE id = ?1",
            params![p.stay, now_ms, user],
        )?;
        Audit::append(
            conn,
            user,
            actions::REMOTE_PATIENT_DISCHARGE,
            &bed.key(),
            &format!("mrn={}", p.mrn),
            now_ms,
        )?;
        Ok(RemotePatient {
            pause: None,
            discharged_ms: Some(now_ms),
            discharged_by: Some(user.to_string()),
            ..p
        })
    })?;
    tracing::info!(bed = %bed, stay = p.stay, "remote patient discharged");
    Ok(p)
}

/// Set a new version of the care plan of the patient in `bed` (`care_plan_set`, naming the
/// version, its items and its rules: [`describe`]): `items` and `rules` as given, validated by
/// [`parse_plan`], in the patient's time zone. A plan equal to the one in force is refused as
/// unchanged. A paused patient's plan may change; a discharged one's may not.
pub fn set_plan(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    items: &[ItemSpec],
    rules: &[RuleSpec],
    now_ms: i64,
) -> Result<PlanVersion, RemoteError> {
    let user = auth.require(PLAN)?;
    let v = in_tx(conn, |conn| {
        let p = current_in(conn, bed)?;
        let plan = parse_plan(p.tz, items, rules)?;
        let before = current_plan(conn, p.stay)?;
        if let Some(before) = &before {
            if before.plan == plan {
                return Err(RemoteError::Unchanged(bed.key(), before.version));
            }
        }
        let version = before.map_or(1, |b| b.version + 1);
        let json = serde_json::to_string(&plan)
            .map_err(|e| RemoteError::Invalid(format!("care plan: {e}")))?;
        conn.execute(
            "INSERT INTO care_plans (patient, version, plan, set_ms, set_by)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![p.stay, version, json, now_ms, user],
        )?;
        Audit::append(
            conn,
            user,
            actions::CARE_PLAN_SET,
            &bed.key(),
            &format!("mrn={}; v{version}: {}", p.mrn, describe(&plan)),
            now_ms,
        )?;
        Ok(PlanVersion {
            stay: p.stay,
            version,
            plan,
            set_ms: now_ms,
            set_by: user.to_string(),
        })
    })?;
    tracing::info!(bed = %bed, stay = v.stay, version = v.version, "care plan set");
    Ok(v)
}

/// A plan's items and rules for the audit trail: `bp reading "07:00-10:00, 18:00-21:00" urgent
/// +60m grace 120m; …; rule weight-gain: WEIGHT rises by ≥ 2 within 3d; …`, or `no items` for
/// an empty plan.
pub fn describe(plan: &Plan) -> String {
    let items = plan.items().iter().map(|i| {
        let kind = match i.kind() {
            Kind::Reading => "reading",
            Kind::Dose => "dose",
        };
        format!(
            "{} {kind} {} \"{}\" urgent +{}m grace {}m",
            i.id(),
            i.measure(),
            i.times(),
            i.urgent_after().num_minutes(),
            i.late_grace().num_minutes()
        )
    });
    let rules = plan.rules().iter().map(|r| format!("rule {r}"));
    let all: Vec<String> = items.chain(rules).collect();
    if all.is_empty() {
        return "no items".into();
    }
    all.join("; ")
}

pub mod cohort;
pub mod engage;
pub mod review;
pub mod watch;

#[cfg(test)]
mod tests;
