//! Remote patients in the window (issue 15): the worklist, a patient's record (schedule with
//! its missed slots, sparse readings, alerts, findings, reviews), reviews and the timing of
//! record views. Plain functions over [`AuthState`]; the Tauri wrappers are in
//! `commands/mod.rs`. Every rule is `vigil_core::remote`'s: the worklist and the record need
//! `view_ward` (identities) and reading them is recorded in the trail; reviewing and opening a
//! record need `view_history` (nurse, charge nurse), each in one transaction with its audit
//! entry.

use serde::Serialize;
use vigil_core::auth::PhiRead;
use vigil_core::remote::review::{self, ReviewAction, ReviewRow, WorkRow};
use vigil_core::remote::{self, engage, watch};

use crate::commands::alarms::parse_bed;
use crate::error::ApiError;
use crate::session::{authorized, AuthState};

/// The longest past a record shows, in days.
pub const MAX_RECORD_DAYS: u32 = 31;
/// Readings (and dose events) a record shows at most (the newest).
pub const MAX_READINGS: usize = 5_000;

/// A review as the window shows it.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct ReviewOut {
    /// reviewed_no_action | called_patient | escalated
    pub action: &'static str,
    pub note: String,
    pub at_ms: i64,
    pub by: String,
    /// Findings it closed.
    pub findings: u32,
}

impl From<&ReviewRow> for ReviewOut {
    fn from(r: &ReviewRow) -> Self {
        ReviewOut {
            action: r.action.as_str(),
            note: r.note.clone(),
            at_ms: r.at_ms,
            by: r.by.clone(),
            findings: r.findings,
        }
    }
}

/// One row of the remote worklist.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct WorkRowOut {
    /// "home/p-01".
    pub bed: String,
    pub name: String,
    pub mrn: String,
    pub tz: String,
    /// active | paused
    pub state: &'static str,
    /// urgent | missed | findings | adherence | none: why the row is where it is.
    pub attention: &'static str,
    pub urgent: u32,
    pub warning: u32,
    pub silent: bool,
    pub findings: u32,
    pub stale_findings: u32,
    pub newest_finding: Option<String>,
    pub since_ms: Option<i64>,
    /// Share of due readings taken in their window, 0 to 1 (none due: null).
    pub adherence_7: Option<f64>,
    pub adherence_30: Option<f64>,
    pub days_with_data_30: u32,
    /// Review time this calendar month, whole minutes.
    pub review_minutes: i64,
    pub last_review: Option<ReviewOut>,
    pub escalated: bool,
}

impl From<&WorkRow> for WorkRowOut {
    fn from(r: &WorkRow) -> Self {
        WorkRowOut {
            bed: r.patient.bed.key(),
            name: r.patient.name.clone(),
            mrn: r.patient.mrn.clone(),
            tz: r.patient.tz.name().to_string(),
            state: r.patient.state().as_str(),
            attention: r.attention.as_str(),
            urgent: r.urgent,
            warning: r.warning,
            silent: r.silent,
            findings: r.findings,
            stale_findings: r.stale_findings,
            newest_finding: r.newest_finding.clone(),
            since_ms: r.since_ms,
            adherence_7: r.adherence.last_7.share(),
            adherence_30: r.adherence.last_30.share(),
            days_with_data_30: r.adherence.days_with_data_30,
            review_minutes: r.review_ms / 60_000,
            last_review: r.last_review.as_ref().map(ReviewOut::from),
            escalated: r.escalated,
        }
    }
}

/// The remote worklist, most urgent first (`escalated_only`: the patients whose latest review
/// escalated). The read is recorded in the trail.
pub fn worklist(st: &AuthState, escalated_only: bool) -> Result<Vec<WorkRowOut>, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = authorized(&mut g, remote::READ, now)?;
    let rows = review::worklist(g.svc.connection(), &proof, now)?;
    let crate::session::AuthInner { svc, session } = &mut *g;
    if let Some(s) = session.as_ref() {
        svc.audit_read(
            s,
            PhiRead {
                bed: "remote/*",
                what: "remote worklist",
                from_ms: now,
                to_ms: now,
            },
            now,
        )?;
    }
    Ok(rows
        .iter()
        .filter(|r| !escalated_only || r.escalated)
        .map(WorkRowOut::from)
        .collect())
}

/// A slot of the schedule.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct SlotOut {
    pub item: String,
    pub measure: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// upcoming | open | on_time | received_late | taken_late | missed
    pub state: &'static str,
    pub level: Option<&'static str>,
    pub taken_ms: Option<i64>,
}

/// A stored reading.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct ReadingOut {
    pub code: String,
    pub t_ms: i64,
    pub received_ms: i64,
    pub value: f64,
    pub unit: String,
}

/// A dispenser's dose event (the dose history).
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct DoseOut {
    pub medication: String,
    /// `taken`, `late` or `missed`, as the dispenser reported it.
    pub event: &'static str,
    pub device: String,
    pub t_ms: i64,
    pub due_ms: Option<i64>,
    pub received_ms: i64,
}

/// A care-plan alert (missed reading or dose, silent devices).
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct AlertOut {
    pub kind: String,
    pub item: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub level: String,
    pub raised_ms: i64,
    pub resolved_ms: Option<i64>,
    pub resolution: Option<String>,
}

/// A finding (a reading outside limits, a change rule).
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct FindingOut {
    pub kind: String,
    pub rule: String,
    pub code: String,
    pub t_ms: i64,
    pub received_ms: i64,
    pub value: f64,
    pub priority: String,
    pub detail: String,
    pub stale: bool,
    pub reviewed: bool,
}

/// A reminder or a message to the patient.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct MessageOut {
    /// reminder | message
    pub kind: String,
    /// A reminder's reason: due | missed.
    pub reason: String,
    pub item: String,
    pub text: String,
    pub by: String,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
    pub delivered_ms: Option<i64>,
}

impl From<&engage::MessageRow> for MessageOut {
    fn from(m: &engage::MessageRow) -> Self {
        MessageOut {
            kind: m.kind.clone(),
            reason: m.reason.clone(),
            item: m.item.clone(),
            text: m.text.clone(),
            by: m.by.clone(),
            created_ms: m.created_ms,
            sent_ms: m.sent_ms,
            delivered_ms: m.delivered_ms,
        }
    }
}

/// A remote patient's record.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct RemoteRecordOut {
    pub bed: String,
    pub name: String,
    pub mrn: String,
    pub dob: String,
    pub tz: String,
    pub state: &'static str,
    pub enrolled_ms: i64,
    /// The plan in force, one line per item; empty without a plan.
    pub plan: Vec<String>,
    pub plan_version: Option<u32>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub slots: Vec<SlotOut>,
    pub readings: Vec<ReadingOut>,
    /// The dispensers' dose events, oldest first.
    pub doses: Vec<DoseOut>,
    pub alerts: Vec<AlertOut>,
    pub findings: Vec<FindingOut>,
    pub reviews: Vec<ReviewOut>,
    /// Reminders and messages to the patient, newest first (the last 100).
    pub messages: Vec<MessageOut>,
}

/// The record of the remote patient in `bed` over the last `days` days (1 to 31), with the
/// schedule's upcoming slots of the next day. The read is recorded in the trail.
pub fn record(st: &AuthState, bed: &str, days: u32) -> Result<RemoteRecordOut, ApiError> {
    let bed = parse_bed(bed)?;
    if !(1..=MAX_RECORD_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "a record covers 1 to {MAX_RECORD_DAYS} days"
        )));
    }
    let now = st.now();
    let from_ms = now - i64::from(days) * 24 * 3_600_000;
    let to_ms = now + 24 * 3_600_000;
    let mut g = st.lock();
    let _ = authorized(&mut g, remote::READ, now)?;
    let conn = g.svc.connection();
    let p = remote::in_bed(conn, &bed)?
        .ok_or_else(|| ApiError::new("no_patient", format!("no remote patient in bed {bed}")))?;
    let plan = remote::current_plan(conn, p.stay)?;
    let slots = watch::slots_of(conn, &p, from_ms, to_ms, now)?
        .into_iter()
        .map(|s| SlotOut {
            item: s.item,
            measure: s.measure,
            from_ms: s.from_ms,
            to_ms: s.to_ms,
            state: s.state,
            level: s.level,
            taken_ms: s.taken_ms,
        })
        .collect();
    let readings = review::readings(conn, &bed, from_ms, MAX_READINGS)?
        .into_iter()
        .map(|r| ReadingOut {
            code: r.code,
            t_ms: r.t_ms,
            received_ms: r.received_ms,
            value: r.value,
            unit: r.unit,
        })
        .collect();
    let doses = review::doses(conn, &bed, from_ms, MAX_READINGS)?
        .into_iter()
        .map(|d| DoseOut {
            medication: d.medication,
            event: d.event.as_str(),
            device: d.device,
            t_ms: d.t_ms,
            due_ms: d.due_ms,
            received_ms: d.received_ms,
        })
        .collect();
    let alerts = watch::alerts(conn, p.stay)?
        .into_iter()
        .filter(|a| a.to_ms >= from_ms || a.resolved_ms.is_none())
        .map(|a| AlertOut {
            kind: a.kind,
            item: a.item,
            from_ms: a.from_ms,
            to_ms: a.to_ms,
            level: a.level,
            raised_ms: a.raised_ms,
            resolved_ms: a.resolved_ms,
            resolution: a.resolution,
        })
        .collect();
    let findings = review::findings(conn, p.stay, false)?
        .into_iter()
        .filter(|f| f.t_ms >= from_ms || f.review.is_none())
        .map(|f| FindingOut {
            kind: f.kind,
            rule: f.rule,
            code: f.code,
            t_ms: f.t_ms,
            received_ms: f.received_ms,
            value: f.value,
            priority: f.priority,
            detail: f.detail,
            stale: f.stale,
            reviewed: f.review.is_some(),
        })
        .collect();
    let reviews = review::reviews(conn, p.stay)?
        .iter()
        .map(ReviewOut::from)
        .collect();
    let messages = engage::messages(conn, p.stay)?
        .iter()
        .take(100)
        .map(MessageOut::from)
        .collect();
    let out = RemoteRecordOut {
        bed: bed.key(),
        name: p.name.clone(),
        mrn: p.mrn.clone(),
        dob: p.dob.clone(),
        tz: p.tz.name().to_string(),
        state: p.state().as_str(),
        enrolled_ms: p.enrolled_ms,
        plan: plan
            .as_ref()
            .map(|v| {
                remote::describe(&v.plan)
                    .split("; ")
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        plan_version: plan.as_ref().map(|v| v.version),
        from_ms,
        to_ms,
        slots,
        readings,
        doses,
        alerts,
        findings,
        reviews,
        messages,
    };
    let crate::session::AuthInner { svc, session } = &mut *g;
    if let Some(s) = session.as_ref() {
        svc.audit_read(
            s,
            PhiRead {
                bed: &bed.key(),
                what: "remote record",
                from_ms,
                to_ms: now,
            },
            now,
        )?;
    }
    Ok(out)
}

/// Record a review of the patient in `bed`: `action` is reviewed_no_action, called_patient or
/// escalated; the note is optional. Audited.
pub fn review(st: &AuthState, bed: &str, action: &str, note: &str) -> Result<ReviewOut, ApiError> {
    let bed = parse_bed(bed)?;
    let action = ReviewAction::parse(action)?;
    let now = st.now();
    let mut g = st.lock();
    let proof = authorized(&mut g, review::REVIEW, now)?;
    let r = review::review(g.svc.connection(), &proof, &bed, action, note, now)?;
    Ok(ReviewOut::from(&r))
}

/// Write a short message to the patient in `bed` (audited with its text); the engine publishes
/// it to the patient's topic at once (`wake`).
pub fn message(
    st: &AuthState,
    bed: &str,
    text: &str,
    wake: impl FnOnce(),
) -> Result<MessageOut, ApiError> {
    let bed = parse_bed(bed)?;
    let now = st.now();
    let mut g = st.lock();
    let proof = authorized(&mut g, review::REVIEW, now)?;
    let m = engage::message(g.svc.connection(), &proof, &bed, text, now)?;
    wake();
    Ok(MessageOut::from(&m))
}

/// Open the record of the patient in `bed` (audited; review time counts until it is closed):
/// the view's id.
pub fn record_open(st: &AuthState, bed: &str) -> Result<i64, ApiError> {
    let bed = parse_bed(bed)?;
    let now = st.now();
    let mut g = st.lock();
    let proof = authorized(&mut g, review::REVIEW, now)?;
    Ok(review::open_record(g.svc.connection(), &proof, &bed, now)?)
}

/// Close a record view the user opened: the review time it counts for, ms (audited).
pub fn record_close(st: &AuthState, view: i64) -> Result<i64, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = authorized(&mut g, review::REVIEW, now)?;
    Ok(review::close_record(g.svc.connection(), &proof, view, now)?)
}
