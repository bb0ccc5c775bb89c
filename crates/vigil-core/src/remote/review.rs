//! What a clinician reviews of remote patients (schema 013, issue 15): findings, reviews,
//! review time and the worklist.
//!
//! - **Findings** ([`scan`]): every reading stored for a current remote stay is checked once,
//!   when it is stored, whatever its age: against the bed's limits (the same [`Limit`]s its
//!   alarms use) and against the care plan's change rules (weight gain ≥ 2 kg in 3 days,
//!   systolic above target on 3 of the last 5: `vigil_schedule::Rule`, a finding where a rule
//!   turns true, by the reading's device time). What breaches is a finding to review,
//!   kept in `remote_findings`. A reading received within the live window also sounds as a live
//!   alarm (the alarm engine); one that reached the station later (a buffered upload, a clinic's
//!   batch, hours old) is marked *stale* and is only a finding: never sounded as live, never lost.
//! - **Reviews** ([`review`]): a nurse or charge nurse ([`REVIEW`]) records what they did for a
//!   patient — reviewed with no action, called the patient, escalated — with a note, in one
//!   transaction with its audit entry; it closes the findings standing then. A patient whose
//!   latest review escalated is *escalated* until a later review says otherwise.
//! - **Review time** ([`open_record`], [`close_record`]): opening and closing a patient's record
//!   are audited and timed; the minutes of the patient's calendar month are what remote-monitoring
//!   programmes count ([`review_ms`]). A view never closed (the station stopped) counts
//!   for nothing: time is counted only when it is known.
//! - **The worklist** ([`worklist`]): one row per current stay, sorted by what needs attention
//!   first: urgent alerts, then missed readings and silent devices, then findings awaiting
//!   review, then adherence below [`ADHERENCE_TARGET`] over 7 days.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone};
use rusqlite::{params, Connection, OptionalExtension};
use vigil_alarms::limits::Limit;
use vigil_schedule::Sample;

use super::watch::{self, AdherenceRow};
use super::{current, RemoteError, RemotePatient, State};
use crate::audit::{actions, Audit};
use crate::auth::{Authorized, Permission};
use crate::codes::Vital;
use crate::store::in_tx;
use crate::telemetry::BedId;

/// Review a remote patient (record what was done, with a note) and open or close their record:
/// nurse and charge nurse, the permission of a patient's history.
pub const REVIEW: Permission = Permission::ViewHistory;

/// Longest review note, in characters.
pub const MAX_NOTE: usize = 500;

/// Below this share of scheduled readings taken in their window over the last 7 days, a patient
/// is on the worklist for adherence.
pub const ADHERENCE_TARGET: f64 = 0.8;

/// One opening of a record counts for at most this long (a record left open on an unattended
/// screen is not review time).
pub const MAX_VIEW_MS: i64 = 30 * 60_000;

/// How many stored rows one scan reads at most (a large upload is read over several ticks).
pub const SCAN_BATCH: u64 = 50_000;

/// What a clinician did when reviewing a remote patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewAction {
    /// Reviewed, nothing to do.
    NoAction,
    /// Called the patient.
    CalledPatient,
    /// Escalated (to the physician, the care team).
    Escalated,
}

impl ReviewAction {
    pub const ALL: [ReviewAction; 3] = [
        ReviewAction::NoAction,
        ReviewAction::CalledPatient,
        ReviewAction::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAction => "reviewed_no_action",
            Self::CalledPatient => "called_patient",
            Self::Escalated => "escalated",
        }
    }

    /// The one parser of an action's name (as stored, and as the window and the command line
    /// give it).
    pub fn parse(s: &str) -> Result<Self, RemoteError> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                RemoteError::Invalid(format!(
                    "review action {s:?}: expected one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }
}

/// A review note: trimmed, at most [`MAX_NOTE`] characters, no control characters (it goes
/// into the audit trail as written). May be empty.
pub fn parse_note(s: &str) -> Result<String, RemoteError> {
    let s = s.trim();
    if s.chars().count() > MAX_NOTE {
        return Err(RemoteError::Invalid(format!(
            "review note: at most {MAX_NOTE} characters"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(RemoteError::Invalid(
            "review note: no control characters (line breaks, tabs)".into(),
        ));
    }
    Ok(s.to_string())
}

/// What kind of breach a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// Outside the bed's alarm limits.
    Limit,
    /// A care plan's change rule turned true.
    Rule,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Rule => "rule",
        }
    }
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRow {
    pub id: i64,
    pub stay: i64,
    pub bed: BedId,
    pub kind: String,
    /// The limit's code (`SPO2_low`) or the rule's id.
    pub rule: String,
    /// The vital's code.
    pub code: String,
    pub t_ms: i64,
    pub received_ms: i64,
    pub value: f64,
    pub priority: String,
    pub detail: String,
    /// Received too late to sound as a live alarm: only a finding.
    pub stale: bool,
    pub found_ms: i64,
    /// The review that closed it.
    pub review: Option<i64>,
}

/// A reading of a current stay as the scan reads it.
struct Stored {
    stay: i64,
    bed: BedId,
    code: String,
    t_ms: i64,
    received_ms: i64,
    value: f64,
}

/// What the scan reads of a reading (`p` the stay, `n` the reading).
const STORED_COLUMNS: &str =
    "p.id, p.ward, p.bed, n.code, n.t_ms, COALESCE(n.received_ms, n.t_ms), n.value";

/// A row of [`STORED_COLUMNS`].
fn stored_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        stay: r.get(0)?,
        bed: BedId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
        code: r.get(3)?,
        t_ms: r.get(4)?,
        received_ms: r.get(5)?,
        value: r.get(6)?,
    })
}

fn cursor(conn: &Connection) -> Result<i64, RemoteError> {
    Ok(conn
        .query_row(
            "SELECT numerics_id FROM remote_scan WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Check the readings stored since the last scan for current remote stays against their beds'
/// limits (`limits_of`, the limits the alarms use) and their plans' change rules, and keep what
/// breaches as findings (once per reading and rule). `live_window_ms` is the alarms' live window
/// (`IngestPolicy::live_window_ms`): a reading received later than that after it was taken did
/// not sound and is marked stale. Returns the new findings.
pub fn scan(
    conn: &Connection,
    now_ms: i64,
    live_window_ms: i64,
    limits_of: &dyn Fn(&BedId) -> Vec<Limit>,
) -> Result<Vec<FindingRow>, RemoteError> {
    in_tx(conn, |tx| {
        let from = cursor(tx)?;
        let top: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM numerics", [], |r| {
            r.get(0)
        })?;
        let until = top.min(from.saturating_add(SCAN_BATCH as i64));
        // Stays the scan has not seen yet: their readings stored before the cursor, once.
        let mut caught_up = tx.prepare_cached(
            "SELECT p.id FROM remote_patients p
             WHERE p.discharged_ms IS NULL
               AND NOT EXISTS (SELECT 1 FROM remote_scan_stays s WHERE s.patient = p.id)",
        )?;
        let new_stays: Vec<i64> = caught_up
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(caught_up);
        if until <= from && new_stays.is_empty() {
            return Ok(Vec::new());
        }
        let statuses = watch::counted_sql();
        let mut q = tx.prepare_cached(&format!(
            "SELECT {STORED_COLUMNS}
             FROM numerics n
             JOIN remote_patients p
               ON p.ward = n.ward AND p.bed = n.bed AND p.discharged_ms IS NULL
             WHERE n.id > ?1 AND n.id <= ?2 AND n.t_ms >= p.enrolled_ms
               AND n.value IS NOT NULL AND n.status IN {statuses}
             ORDER BY n.id"
        ))?;
        let rows = q.query_map(params![from, until], stored_from_row)?;
        let mut stored: Vec<Stored> = rows.collect::<Result<_, _>>()?;
        drop(q);
        for stay in &new_stays {
            let mut q = tx.prepare_cached(&format!(
                "SELECT {STORED_COLUMNS}
                 FROM remote_patients p
                 JOIN numerics n ON n.ward = p.ward AND n.bed = p.bed
                 WHERE p.id = ?1 AND n.id <= ?2 AND n.t_ms >= p.enrolled_ms
                   AND n.value IS NOT NULL AND n.status IN {statuses}
                 ORDER BY n.id"
            ))?;
            let rows = q.query_map(params![stay, from], stored_from_row)?;
            for row in rows {
                stored.push(row?);
            }
            tx.execute(
                "INSERT INTO remote_scan_stays (patient, numerics_id) VALUES (?1, ?2)",
                params![stay, from],
            )?;
        }
        let mut found = Vec::new();
        let mut limits: HashMap<BedId, Vec<Limit>> = HashMap::new();
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO remote_findings
               (patient, kind, rule, code, t_ms, received_ms, value, priority, detail, stale,
                found_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut keep = |s: &Stored,
                        kind: FindingKind,
                        rule: String,
                        priority: &str,
                        detail: String|
         -> Result<(), RemoteError> {
            let stale = s.received_ms.saturating_sub(s.t_ms) > live_window_ms;
            let n = ins.execute(params![
                s.stay,
                kind.as_str(),
                rule,
                s.code,
                s.t_ms,
                s.received_ms,
                s.value,
                priority,
                detail,
                stale,
                now_ms
            ])?;
            if n == 1 {
                found.push(FindingRow {
                    id: tx.last_insert_rowid(),
                    stay: s.stay,
                    bed: s.bed.clone(),
                    kind: kind.as_str().to_string(),
                    rule,
                    code: s.code.clone(),
                    t_ms: s.t_ms,
                    received_ms: s.received_ms,
                    value: s.value,
                    priority: priority.to_string(),
                    detail,
                    stale,
                    found_ms: now_ms,
                    review: None,
                });
            }
            Ok(())
        };
        for s in &stored {
            let Some(vital) = Vital::from_name(&s.code) else {
                continue;
            };
            let bed_limits = limits
                .entry(s.bed.clone())
                .or_insert_with(|| limits_of(&s.bed));
            for l in bed_limits.iter().filter(|l| l.vital == vital) {
                if l.breached(s.value, false) {
                    keep(
                        s,
                        FindingKind::Limit,
                        l.code(),
                        l.priority.as_str(),
                        l.message(s.value),
                    )?;
                }
            }
        }
        // Change rules: for each stay and measure with new readings, the plan's rules on that
        // measure over the readings around them. Only hits at or after the earliest new reading
        // can be new (a late upload lands where it belongs and may change what follows it).
        let mut touched: BTreeMap<(i64, String), (BedId, i64)> = BTreeMap::new();
        for s in &stored {
            let e = touched
                .entry((s.stay, s.code.clone()))
                .or_insert((s.bed.clone(), s.t_ms));
            e.1 = e.1.min(s.t_ms);
        }
        let mut plans: HashMap<i64, Option<super::PlanVersion>> = HashMap::new();
        for ((stay, code), (bed, first_new)) in &touched {
            if !plans.contains_key(stay) {
                plans.insert(*stay, super::current_plan(tx, *stay)?);
            }
            let Some(Some(plan)) = plans.get(stay) else {
                continue;
            };
            let rules: Vec<&vigil_schedule::Rule> = plan
                .plan
                .rules()
                .iter()
                .filter(|r| r.measure() == code)
                .collect();
            if rules.is_empty() {
                continue;
            }
            let enrolled = super::stay(tx, *stay)?.map_or(*first_new, |p| p.enrolled_ms);
            let since = first_new.saturating_sub(RULE_LOOKBACK_MS).max(enrolled);
            let series = rule_series(tx, bed, code, since)?;
            let samples: Vec<Sample> = series
                .iter()
                .filter_map(|&(t, _, v)| {
                    DateTime::from_timestamp_millis(t).map(|taken| Sample { taken, value: v })
                })
                .collect();
            let received: HashMap<i64, i64> = series.iter().map(|&(t, r, _)| (t, r)).collect();
            for rule in rules {
                for hit in rule.evaluate(&samples) {
                    let t_ms = hit.at.timestamp_millis();
                    if t_ms < *first_new {
                        continue;
                    }
                    let at = Stored {
                        stay: *stay,
                        bed: bed.clone(),
                        code: code.clone(),
                        t_ms,
                        received_ms: received.get(&t_ms).copied().unwrap_or(t_ms),
                        value: hit.value,
                    };
                    keep(
                        &at,
                        FindingKind::Rule,
                        rule.id().to_string(),
                        RULE_PRIORITY,
                        format!("{rule} ({})", hit.detail),
                    )?;
                }
            }
        }
        drop(ins);
        tx.execute(
            "INSERT INTO remote_scan (id, numerics_id) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET numerics_id = excluded.numerics_id",
            [until.max(from)],
        )?;
        Ok(found)
    })
}

/// How far back a change rule looks when new readings arrive: its longest look-back
/// (`vigil_schedule::rules::MAX_WITHIN_DAYS`).
const RULE_LOOKBACK_MS: i64 = vigil_schedule::rules::MAX_WITHIN_DAYS * 24 * 3_600_000;

/// The priority of a change rule's finding (a trend to act on today, not a live emergency).
const RULE_PRIORITY: &str = "medium";

/// One bed's readings of `code` taken since `since_ms` that a person may act on:
/// (taken, received, value), by time.
fn rule_series(
    conn: &Connection,
    bed: &BedId,
    code: &str,
    since_ms: i64,
) -> Result<Vec<(i64, i64, f64)>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT t_ms, COALESCE(received_ms, t_ms), value FROM numerics
         WHERE ward = ?1 AND bed = ?2 AND code = ?3 AND t_ms >= ?4 AND value IS NOT NULL
           AND status IN {}
         ORDER BY t_ms",
        watch::counted_sql()
    ))?;
    let rows = q.query_map(params![bed.ward, bed.bed, code, since_ms], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn finding_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        id: r.get(0)?,
        stay: r.get(1)?,
        bed: BedId::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?),
        kind: r.get(4)?,
        rule: r.get(5)?,
        code: r.get(6)?,
        t_ms: r.get(7)?,
        received_ms: r.get(8)?,
        value: r.get(9)?,
        priority: r.get(10)?,
        detail: r.get(11)?,
        stale: r.get(12)?,
        found_ms: r.get(13)?,
        review: r.get(14)?,
    })
}

const FINDING_COLUMNS: &str = "f.id, f.patient, p.ward, p.bed, f.kind, f.rule, f.code, f.t_ms,
    f.received_ms, f.value, f.priority, f.detail, f.stale, f.found_ms, f.review
    FROM remote_findings f JOIN remote_patients p ON p.id = f.patient";

/// A stay's findings, newest reading first (`open_only`: those awaiting review).
pub fn findings(
    conn: &Connection,
    stay: i64,
    open_only: bool,
) -> Result<Vec<FindingRow>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {FINDING_COLUMNS}
         WHERE f.patient = ?1 AND (?2 = 0 OR f.review IS NULL)
         ORDER BY f.t_ms DESC, f.id DESC"
    ))?;
    let rows = q.query_map(params![stay, open_only], finding_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stored reading of a remote patient, as their record shows it (points, not a sweep).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    pub code: String,
    pub t_ms: i64,
    pub received_ms: i64,
    pub value: f64,
    pub unit: String,
}

/// The readings of `bed` taken since `from_ms` that a person may act on (the newest `limit`),
/// oldest first.
pub fn readings(
    conn: &Connection,
    bed: &BedId,
    from_ms: i64,
    limit: usize,
) -> Result<Vec<ReadingRow>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT code, t_ms, COALESCE(received_ms, t_ms), value, unit FROM numerics
         WHERE ward = ?1 AND bed = ?2 AND t_ms >= ?3 AND value IS NOT NULL AND status IN {}
         ORDER BY t_ms DESC, id DESC LIMIT ?4",
        watch::counted_sql()
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = q.query_map(params![bed.ward, bed.bed, from_ms, limit], |r| {
        Ok(ReadingRow {
            code: r.get(0)?,
            t_ms: r.get(1)?,
            received_ms: r.get(2)?,
            value: r.get(3)?,
            unit: r.get(4)?,
        })
    })?;
    let mut out: Vec<ReadingRow> = rows.collect::<Result<_, _>>()?;
    out.reverse();
    Ok(out)
}

/// A dispenser's dose event as a remote patient's record shows it (the dose history).
#[derive(Debug, Clone, PartialEq)]
pub struct DoseRow {
    pub medication: String,
    pub event: crate::dose::DoseKind,
    pub device: String,
    /// When it happened on the dispenser.
    pub t_ms: i64,
    /// When the dispenser had it scheduled, if it said.
    pub due_ms: Option<i64>,
    pub received_ms: i64,
}

/// The dose events of `bed` that happened since `from_ms` (the newest `limit`), oldest first.
pub fn doses(
    conn: &Connection,
    bed: &BedId,
    from_ms: i64,
    limit: usize,
) -> Result<Vec<DoseRow>, RemoteError> {
    let mut q = conn.prepare_cached(
        "SELECT medication, event, device, t_ms, due_ms, received_ms FROM doses
         WHERE ward = ?1 AND bed = ?2 AND t_ms >= ?3
         ORDER BY t_ms DESC, id DESC LIMIT ?4",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = q.query_map(params![bed.ward, bed.bed, from_ms, limit], |r| {
        let event: String = r.get(1)?;
        let event = crate::dose::DoseKind::parse(&event).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown dose event {event:?}").into(),
            )
        })?;
        Ok(DoseRow {
            medication: r.get(0)?,
            event,
            device: r.get(2)?,
            t_ms: r.get(3)?,
            due_ms: r.get(4)?,
            received_ms: r.get(5)?,
        })
    })?;
    let mut out: Vec<DoseRow> = rows.collect::<Result<_, _>>()?;
    out.reverse();
    Ok(out)
}

/// A review as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRow {
    pub id: i64,
    pub stay: i64,
    pub action: ReviewAction,
    pub note: String,
    pub at_ms: i64,
    pub by: String,
    /// The findings it closed.
    pub findings: u32,
}

fn review_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewRow> {
    let action: String = r.get(2)?;
    let action = ReviewAction::parse(&action).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })?;
    Ok(ReviewRow {
        id: r.get(0)?,
        stay: r.get(1)?,
        action,
        note: r.get(3)?,
        at_ms: r.get(4)?,
        by: r.get(5)?,
        findings: r.get(6)?,
    })
}

const REVIEW_COLUMNS: &str = "r.id, r.patient, r.action, r.note, r.at_ms, r.by,
    (SELECT COUNT(*) FROM remote_findings f WHERE f.review = r.id)
    FROM remote_reviews r";

/// A stay's reviews, newest first.
pub fn reviews(conn: &Connection, stay: i64) -> Result<Vec<ReviewRow>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {REVIEW_COLUMNS} WHERE r.patient = ?1 ORDER BY r.at_ms DESC, r.id DESC"
    ))?;
    let rows = q.query_map([stay], review_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Record a review of the patient in `bed` ([`REVIEW`]): what was done and a note, in one
/// transaction with its audit entry (`remote_patient_review`: the MRN, the action, how many
/// findings it closed, the note). Closes the findings awaiting review.
pub fn review(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    action: ReviewAction,
    note: &str,
    now_ms: i64,
) -> Result<ReviewRow, RemoteError> {
    let user = auth.require(REVIEW)?;
    let note = parse_note(note)?;
    let row = in_tx(conn, |tx| {
        let p = super::current_in(tx, bed)?;
        tx.execute(
            "INSERT INTO remote_reviews (patient, action, note, at_ms, by)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![p.stay, action.as_str(), note, now_ms, user],
        )?;
        let id = tx.last_insert_rowid();
        let closed = tx.execute(
            "UPDATE remote_findings SET review = ?2 WHERE patient = ?1 AND review IS NULL",
            params![p.stay, id],
        )?;
        let closed = u32::try_from(closed).unwrap_or(u32::MAX);
        Audit::append(
            tx,
            user,
            actions::REMOTE_PATIENT_REVIEW,
            &bed.key(),
            &format!(
                "mrn={}; {}; {closed} finding(s) reviewed; note {note:?}",
                p.mrn,
                action.as_str()
            ),
            now_ms,
        )?;
        Ok::<_, RemoteError>(ReviewRow {
            id,
            stay: p.stay,
            action,
            note: note.clone(),
            at_ms: now_ms,
            by: user.to_string(),
            findings: closed,
        })
    })?;
    tracing::info!(bed = %bed, stay = row.stay, action = action.as_str(), findings = row.findings,
        "remote patient reviewed");
    Ok(row)
}

/// Open the record of the patient in `bed` ([`REVIEW`]): audited (`remote_record_open`) and
/// timed until [`close_record`]. Returns the view's id.
pub fn open_record(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    now_ms: i64,
) -> Result<i64, RemoteError> {
    let user = auth.require(REVIEW)?;
    in_tx(conn, |tx| {
        let p = super::current_in(tx, bed)?;
        tx.execute(
            "INSERT INTO remote_record_views (patient, user, from_ms) VALUES (?1, ?2, ?3)",
            params![p.stay, user, now_ms],
        )?;
        let id = tx.last_insert_rowid();
        Audit::append(
            tx,
            user,
            actions::REMOTE_RECORD_OPEN,
            &bed.key(),
            &format!("mrn={}; view {id}", p.mrn),
            now_ms,
        )?;
        Ok(id)
    })
}

/// Close a record view the same user opened ([`open_record`]): audited (`remote_record_close`,
/// with the time it counts for, at most [`MAX_VIEW_MS`]). Closing a view already closed, or
/// another user's, is refused.
pub fn close_record(
    conn: &Connection,
    auth: &Authorized,
    view: i64,
    now_ms: i64,
) -> Result<i64, RemoteError> {
    let user = auth.require(REVIEW)?;
    in_tx(conn, |tx| {
        let open: Option<(i64, i64, String, String, String)> = tx
            .query_row(
                "SELECT v.patient, v.from_ms, p.ward, p.bed, p.mrn
                 FROM remote_record_views v JOIN remote_patients p ON p.id = v.patient
                 WHERE v.id = ?1 AND v.user = ?2 AND v.to_ms IS NULL",
                params![view, user],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((_, from_ms, ward, bed, mrn)) = open else {
            return Err(RemoteError::Invalid(format!(
                "record view {view} is not open for {user}"
            )));
        };
        let to_ms = now_ms.max(from_ms);
        tx.execute(
            "UPDATE remote_record_views SET to_ms = ?2 WHERE id = ?1",
            params![view, to_ms],
        )?;
        let counted = (to_ms - from_ms).min(MAX_VIEW_MS);
        Audit::append(
            tx,
            user,
            actions::REMOTE_RECORD_CLOSE,
            &BedId::new(ward, bed).key(),
            &format!(
                "mrn={mrn}; view {view}; open {} s, counted {} s",
                (to_ms - from_ms) / 1000,
                counted / 1000
            ),
            now_ms,
        )?;
        Ok(counted)
    })
}

/// The first instant of the calendar month of `now_ms` in `tz`.
fn month_start(tz: chrono_tz::Tz, now_ms: i64) -> i64 {
    let now = tz.timestamp_millis_opt(now_ms).single();
    let Some(now) = now else { return now_ms };
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or(now.date_naive());
    vigil_schedule::instant_of(tz, first.and_time(NaiveTime::MIN)).timestamp_millis()
}

/// Review time of each of `stays` (the current ones, by id) in the patient's calendar month of
/// `now_ms`, in ms: closed record views, each at most [`MAX_VIEW_MS`].
pub fn review_ms(
    conn: &Connection,
    stays: &HashMap<i64, RemotePatient>,
    now_ms: i64,
) -> Result<HashMap<i64, i64>, RemoteError> {
    let mut out = HashMap::new();
    let mut q = conn.prepare_cached(
        "SELECT v.patient, v.from_ms, v.to_ms FROM remote_record_views v
         JOIN remote_patients p ON p.id = v.patient
         WHERE p.discharged_ms IS NULL AND v.to_ms IS NOT NULL AND v.to_ms >= ?1",
    )?;
    // The earliest month start of any zone: a day before the UTC one is enough.
    let since = month_start(chrono_tz::UTC, now_ms) - 24 * 3_600_000;
    let rows = q.query_map([since], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (stay, from, to) = row?;
        let Some(p) = stays.get(&stay) else { continue };
        let start = month_start(p.tz, now_ms);
        let from = from.max(start);
        if to > from {
            *out.entry(stay).or_insert(0) += (to - from).min(MAX_VIEW_MS);
        }
    }
    Ok(out)
}

/// Why a patient is where they are on the worklist, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attention {
    /// An urgent alert stands (a missed reading or dose, silent devices).
    Urgent,
    /// A missed reading or dose, or silent devices, as a warning.
    Missed,
    /// Findings awaiting review.
    Findings,
    /// Fewer than [`ADHERENCE_TARGET`] of the last 7 days' readings taken in their window.
    Adherence,
    /// Nothing needs attention.
    None,
}

impl Attention {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::Missed => "missed",
            Self::Findings => "findings",
            Self::Adherence => "adherence",
            Self::None => "none",
        }
    }
}

/// One patient of the worklist.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkRow {
    pub patient: RemotePatient,
    pub attention: Attention,
    /// Standing alerts: urgent, warning; and whether the devices are silent.
    pub urgent: u32,
    pub warning: u32,
    pub silent: bool,
    /// Findings awaiting review, how many are stale, and the newest's text.
    pub findings: u32,
    pub stale_findings: u32,
    pub newest_finding: Option<String>,
    /// When the oldest thing needing attention began (the order within a group).
    pub since_ms: Option<i64>,
    pub adherence: AdherenceRow,
    /// Review time this calendar month (the patient's), ms.
    pub review_ms: i64,
    pub last_review: Option<ReviewRow>,
    /// The latest review escalated.
    pub escalated: bool,
}

/// The remote worklist at `now_ms` ([`super::READ`]): one row per current stay, most urgent
/// first ([`Attention`]), then the longest waiting, then by bed. The caller records the read.
pub fn worklist(
    conn: &Connection,
    auth: &Authorized,
    now_ms: i64,
) -> Result<Vec<WorkRow>, RemoteError> {
    auth.require(super::READ)?;
    let adherence = watch::adherence(conn, auth, now_ms)?;
    let stays: HashMap<i64, RemotePatient> =
        current(conn)?.into_iter().map(|p| (p.stay, p)).collect();
    // Standing alerts by stay: (urgent, warning, silent, oldest from).
    let mut alerts: HashMap<i64, (u32, u32, bool, i64)> = HashMap::new();
    {
        let mut q = conn.prepare_cached(
            "SELECT a.patient, a.kind, a.level, a.to_ms FROM remote_alerts a
             JOIN remote_patients p ON p.id = a.patient
             WHERE a.resolved_ms IS NULL AND p.discharged_ms IS NULL",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (stay, kind, level, at) = row?;
            let e = alerts.entry(stay).or_insert((0, 0, false, i64::MAX));
            if level == "urgent" {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
            e.2 |= kind == watch::AlertKind::DeviceSilent.as_str();
            e.3 = e.3.min(at);
        }
    }
    // Findings awaiting review by stay: (count, stale, oldest found, newest's detail).
    let mut open: HashMap<i64, (u32, u32, i64, i64, String)> = HashMap::new();
    {
        let mut q = conn.prepare_cached(
            "SELECT f.patient, f.stale, f.found_ms, f.t_ms, f.detail FROM remote_findings f
             JOIN remote_patients p ON p.id = f.patient
             WHERE f.review IS NULL AND p.discharged_ms IS NULL",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (stay, stale, found, t, detail) = row?;
            let e = open
                .entry(stay)
                .or_insert((0, 0, i64::MAX, i64::MIN, String::new()));
            e.0 += 1;
            e.1 += u32::from(stale);
            e.2 = e.2.min(found);
            if t > e.3 {
                e.3 = t;
                e.4 = detail;
            }
        }
    }
    let mut last: HashMap<i64, ReviewRow> = HashMap::new();
    {
        let mut q = conn.prepare_cached(&format!(
            "SELECT {REVIEW_COLUMNS}
             WHERE r.id IN (SELECT MAX(id) FROM remote_reviews GROUP BY patient)"
        ))?;
        for row in q.query_map([], review_from_row)? {
            let row = row?;
            last.insert(row.stay, row);
        }
    }
    let review_time = review_ms(conn, &stays, now_ms)?;
    let mut out: Vec<WorkRow> = Vec::with_capacity(adherence.len());
    for a in adherence {
        let Some(p) = stays.get(&a.stay) else {
            continue;
        };
        let (urgent, warning, silent, alert_since) =
            alerts
                .get(&a.stay)
                .cloned()
                .unwrap_or((0, 0, false, i64::MAX));
        let (findings, stale_findings, found_since, _, newest) = open
            .get(&a.stay)
            .cloned()
            .unwrap_or((0, 0, i64::MAX, 0, String::new()));
        let below =
            p.state() == State::Active && a.last_7.share().is_some_and(|s| s < ADHERENCE_TARGET);
        let (attention, since) = if urgent > 0 {
            (Attention::Urgent, Some(alert_since))
        } else if warning > 0 {
            (Attention::Missed, Some(alert_since))
        } else if findings > 0 {
            (Attention::Findings, Some(found_since))
        } else if below {
            (Attention::Adherence, None)
        } else {
            (Attention::None, None)
        };
        let last_review = last.get(&a.stay).cloned();
        out.push(WorkRow {
            patient: p.clone(),
            attention,
            urgent,
            warning,
            silent,
            findings,
            stale_findings,
            newest_finding: (findings > 0).then_some(newest),
            since_ms: since,
            review_ms: review_time.get(&a.stay).copied().unwrap_or(0),
            escalated: last_review
                .as_ref()
                .is_some_and(|r| r.action == ReviewAction::Escalated),
            last_review,
            adherence: a,
        });
    }
    out.sort_by(|x, y| {
        (x.attention, x.since_ms.unwrap_or(i64::MAX), &x.patient.bed).cmp(&(
            y.attention,
            y.since_ms.unwrap_or(i64::MAX),
            &y.patient.bed,
        ))
    });
    Ok(out)
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
