//! Patient engagement (schema 014, issue 15): what the station tells a remote patient, and
//! whether it reached them.
//!
//! - **Reminders**: when a slot of the patient's care plan opens (a reading is due) and when it
//!   is missed (its alert is raised), the watch queues a reminder, once per slot and reason
//!   ([`queue_reminder`], in the watch's transaction).
//! - **Messages**: a nurse or charge nurse writes a short message to the patient ([`message`],
//!   [`super::review::REVIEW`], audited `remote_patient_message` with its text).
//! - Both are published by the engine's remote loop ([`unsent`], [`mark_sent`]) to the
//!   patient's own topic, `vigil/v1/{ward}/{bed}/_patient/notice` (QoS 1, not retained), as a
//!   [`Notice`]; the patient's app or dispenser answers on `.../_patient/receipt` with a
//!   [`Receipt`] naming the notice, which records it as delivered ([`receipt`]). A receipt for
//!   a notice of another patient, or an unknown one, is refused and counted as a reject.
//!   docs/telemetry.md §7 is the contract a patient app follows.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::{RemoteError, RemotePatient};
use crate::audit::{actions, Audit};
use crate::auth::Authorized;
use crate::codes::Vital;
use crate::store::in_tx;
use crate::telemetry::{valid_segment, BedId, TOPIC_ROOT};

/// The topic level of a patient's own topics (never a device: device ids never start with `_`).
pub const PATIENT_LEVEL: &str = "_patient";
/// Longest message to a patient, in characters.
pub const MAX_MESSAGE: usize = 300;
/// Longest receipt accepted, in bytes (one is `{"v":1,"id":42}`).
pub const MAX_RECEIPT_BYTES: usize = 1024;
/// Receipts waiting for the remote loop at most; more are refused (counted as `bad_receipt`).
pub const MAX_PENDING_RECEIPTS: usize = 10_000;

/// Notices published per pass at most (a backlog goes out over several passes, 10 s apart):
/// few enough to leave the station's client queue room for its own publishes.
pub const SEND_BATCH: usize = 200;

/// Where the station publishes a patient's reminders and messages.
pub fn notice_topic(bed: &BedId) -> String {
    format!(
        "{TOPIC_ROOT}/{}/{}/{PATIENT_LEVEL}/notice",
        bed.ward, bed.bed
    )
}

/// Where the patient's app answers with receipts.
pub fn receipt_topic(bed: &BedId) -> String {
    format!(
        "{TOPIC_ROOT}/{}/{}/{PATIENT_LEVEL}/receipt",
        bed.ward, bed.bed
    )
}

/// What a topic of a patient's is: `Some(Some(bed))` for a receipt, `Some(None)` for the other
/// patient topics (the station's own notices, heard back: nothing to do), `None` for any other.
pub fn patient_topic(topic: &str) -> Option<Option<BedId>> {
    // Asked of every message the station receives: no allocation unless it is one.
    if !topic.contains("/_patient/") {
        return None;
    }
    let rest = topic.strip_prefix(TOPIC_ROOT)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [ward, bed, PATIENT_LEVEL, "receipt"] if valid_segment(ward) && valid_segment(bed) => {
            Some(Some(BedId::new(*ward, *bed)))
        }
        [_, _, PATIENT_LEVEL, ..] => Some(None),
        _ => None,
    }
}

/// A notice as published (JSON): a reminder or a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub v: u32,
    /// Answer with this id in the receipt.
    pub id: i64,
    /// `reminder` or `message`.
    pub kind: String,
    /// A reminder's reason: `due` (the window is open) or `missed` (it ended with nothing).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A reminder's care plan item and what it measures (a vital's code, or a dose item's
    /// medication id).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub item: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub measure: String,
    /// A reminder's window, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// What to show the patient.
    pub text: String,
    /// When it was written, RFC 3339 UTC.
    pub t: String,
}

/// The patient app's answer to a notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub v: u32,
    pub id: i64,
}

/// A reminder or message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: i64,
    pub stay: i64,
    pub bed: BedId,
    pub kind: String,
    pub reason: String,
    pub item: String,
    pub text: String,
    pub by: String,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
    pub delivered_ms: Option<i64>,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The patient's local clock time of an instant, "07:00".
fn local_hm(tz: chrono_tz::Tz, ms: i64) -> String {
    tz.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| rfc3339(ms), |t| t.format("%H:%M").to_string())
}

/// What a reading is called for the patient ("blood pressure").
fn measure_words(measure: &str) -> String {
    match Vital::from_name(measure) {
        Some(Vital::NibpSys | Vital::NibpDia | Vital::NibpMean) => "blood pressure".into(),
        Some(Vital::SpO2) => "oxygen (SpO2)".into(),
        Some(Vital::Weight) => "weight".into(),
        Some(Vital::Glucose) => "blood glucose".into(),
        Some(Vital::Temp) => "temperature".into(),
        Some(Vital::Hr | Vital::Pr) => "pulse".into(),
        Some(v) => vigil_alarms::limits::vital_label(v).to_string(),
        None => measure.to_string(),
    }
}

/// The reminder's words, in the patient's own time: "Time for your blood pressure reading
/// (07:00–10:00)." / "Your blood pressure reading due 07:00–10:00 has not arrived. Please take
/// it now." A dose (`dose`, `measure` the medication id) is never "take it now": whether a
/// missed dose is taken late is the care team's advice, not the station's.
pub fn reminder_text(
    tz: chrono_tz::Tz,
    dose: bool,
    measure: &str,
    from_ms: i64,
    to_ms: i64,
    missed: bool,
) -> String {
    let (from, to) = (local_hm(tz, from_ms), local_hm(tz, to_ms));
    match (dose, missed) {
        (true, true) => format!(
            "Your {measure} dose due {from}–{to} has not been taken from your dispenser. If you \
             have not taken it, follow your care team's advice for a missed dose."
        ),
        (true, false) => format!("Time for your {measure} dose ({from}–{to})."),
        (false, true) => format!(
            "Your {} reading due {from}–{to} has not arrived. Please take it now.",
            measure_words(measure)
        ),
        (false, false) => format!(
            "Time for your {} reading ({from}–{to}).",
            measure_words(measure)
        ),
    }
}

/// The slot a reminder is for.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub item: &'a str,
    /// A dose item (`measure` is a medication id), else a reading.
    pub dose: bool,
    pub measure: &'a str,
    pub slot_date: &'a str,
    pub slot_index: u32,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Queue a reminder for `slot` of `p` (`missed`: the window ended with nothing, else it is
/// open), unless one was queued for that slot and reason already. Its id if queued now.
pub fn queue_reminder(
    conn: &Connection,
    p: &RemotePatient,
    slot: Slot<'_>,
    missed: bool,
    now_ms: i64,
) -> Result<Option<i64>, RemoteError> {
    let text = reminder_text(
        p.tz,
        slot.dose,
        slot.measure,
        slot.from_ms,
        slot.to_ms,
        missed,
    );
    let n = conn.execute(
        "INSERT OR IGNORE INTO remote_messages
           (patient, kind, reason, item, slot_date, slot_index, measure, from_ms, to_ms, text,
            by, created_ms)
         VALUES (?1, 'reminder', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'station', ?10)",
        params![
            p.stay,
            if missed { "missed" } else { "due" },
            slot.item,
            slot.slot_date,
            slot.slot_index,
            slot.measure,
            slot.from_ms,
            slot.to_ms,
            text,
            now_ms
        ],
    )?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

/// A message to a patient: trimmed, 1 to [`MAX_MESSAGE`] characters, no control characters.
pub fn parse_message(text: &str) -> Result<String, RemoteError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_MESSAGE {
        return Err(RemoteError::Invalid(format!(
            "a message to a patient has 1 to {MAX_MESSAGE} characters"
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(RemoteError::Invalid(
            "a message to a patient has no control characters (line breaks, tabs)".into(),
        ));
    }
    Ok(t.to_string())
}

/// Write a message to the patient in `bed` ([`super::review::REVIEW`]): queued for the engine
/// to publish, in one transaction with its audit entry (`remote_patient_message`, with the
/// text: what the patient was told is part of the record).
pub fn message(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    text: &str,
    now_ms: i64,
) -> Result<MessageRow, RemoteError> {
    let user = auth.require(super::review::REVIEW)?;
    let text = parse_message(text)?;
    let row = in_tx(conn, |tx| {
        let p = super::current_in(tx, bed)?;
        tx.execute(
            "INSERT INTO remote_messages (patient, kind, text, by, created_ms)
             VALUES (?1, 'message', ?2, ?3, ?4)",
            params![p.stay, text, user, now_ms],
        )?;
        let id = tx.last_insert_rowid();
        Audit::append(
            tx,
            user,
            actions::REMOTE_PATIENT_MESSAGE,
            &bed.key(),
            &format!("mrn={}; message {id}: {text:?}", p.mrn),
            now_ms,
        )?;
        Ok::<_, RemoteError>(MessageRow {
            id,
            stay: p.stay,
            bed: bed.clone(),
            kind: "message".into(),
            reason: String::new(),
            item: String::new(),
            text: text.clone(),
            by: user.to_string(),
            created_ms: now_ms,
            sent_ms: None,
            delivered_ms: None,
        })
    })?;
    tracing::info!(bed = %bed, id = row.id, "message to a remote patient queued");
    Ok(row)
}

const MESSAGE_COLUMNS: &str = "m.id, m.patient, p.ward, p.bed, m.kind, m.reason, m.item, m.text,
    m.by, m.created_ms, m.sent_ms, m.delivered_ms";
const MESSAGE_FROM: &str = "FROM remote_messages m JOIN remote_patients p ON p.id = m.patient";

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        stay: r.get(1)?,
        bed: BedId::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?),
        kind: r.get(4)?,
        reason: r.get(5)?,
        item: r.get(6)?,
        text: r.get(7)?,
        by: r.get(8)?,
        created_ms: r.get(9)?,
        sent_ms: r.get(10)?,
        delivered_ms: r.get(11)?,
    })
}

/// A stay's reminders and messages, newest first.
pub fn messages(conn: &Connection, stay: i64) -> Result<Vec<MessageRow>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} {MESSAGE_FROM}
         WHERE m.patient = ?1 ORDER BY m.created_ms DESC, m.id DESC"
    ))?;
    let rows = q.query_map([stay], message_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A notice ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Notices not yet handed to the broker, oldest first (at most [`SEND_BATCH`]), for current
/// stays (a discharged patient is told nothing more).
pub fn unsent(conn: &Connection) -> Result<Vec<Outgoing>, RemoteError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS}, m.measure, m.from_ms, m.to_ms {MESSAGE_FROM}
         WHERE m.sent_ms IS NULL AND p.discharged_ms IS NULL ORDER BY m.id LIMIT ?1"
    ))?;
    let rows = q.query_map([SEND_BATCH as i64], |r| {
        Ok((
            message_from_row(r)?,
            r.get::<_, String>(12)?,
            r.get::<_, Option<i64>>(13)?,
            r.get::<_, Option<i64>>(14)?,
        ))
    })?;
    let rows: Vec<(MessageRow, String, Option<i64>, Option<i64>)> =
        rows.collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (m, measure, from, to) in rows {
        let notice = Notice {
            v: 1,
            id: m.id,
            kind: m.kind.clone(),
            reason: m.reason.clone(),
            item: m.item.clone(),
            measure,
            from: from.map(rfc3339),
            to: to.map(rfc3339),
            text: m.text.clone(),
            t: rfc3339(m.created_ms),
        };
        let payload = serde_json::to_vec(&notice)
            .map_err(|e| RemoteError::Invalid(format!("notice {}: {e}", m.id)))?;
        out.push(Outgoing {
            id: m.id,
            topic: notice_topic(&m.bed),
            payload,
        });
    }
    Ok(out)
}

/// Record notices as handed to the broker at `now_ms`.
pub fn mark_sent(conn: &Connection, ids: &[i64], now_ms: i64) -> Result<(), RemoteError> {
    in_tx(conn, |tx| {
        let mut q = tx.prepare_cached("UPDATE remote_messages SET sent_ms = ?2 WHERE id = ?1")?;
        for id in ids {
            q.execute(params![id, now_ms])?;
        }
        Ok(())
    })
}

/// A patient's receipt from `bed`'s receipt topic: the notice it names is delivered (the first
/// receipt counts). Refused: unreadable, or naming a notice that is not this bed's current
/// patient's.
pub fn receipt(
    conn: &Connection,
    bed: &BedId,
    payload: &[u8],
    now_ms: i64,
) -> Result<i64, RemoteError> {
    let r: Receipt = serde_json::from_slice(payload)
        .map_err(|e| RemoteError::Invalid(format!("receipt from {bed}: {e}")))?;
    if r.v != 1 {
        return Err(RemoteError::Invalid(format!(
            "receipt from {bed}: version {} (this station reads 1)",
            r.v
        )));
    }
    let n = conn.execute(
        "UPDATE remote_messages SET delivered_ms = COALESCE(delivered_ms, ?3)
         WHERE id = ?1 AND patient = (
           SELECT id FROM remote_patients
           WHERE ward = ?2 AND bed = ?4 AND discharged_ms IS NULL)",
        params![r.id, bed.ward, now_ms, bed.bed],
    )?;
    if n == 0 {
        return Err(RemoteError::Invalid(format!(
            "receipt from {bed} for notice {}: no such notice to this patient",
            r.id
        )));
    }
    Ok(r.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_topics_are_told_from_telemetry() {
        let bed = BedId::new("home", "p-01");
        assert_eq!(patient_topic(&receipt_topic(&bed)), Some(Some(bed.clone())));
        assert_eq!(patient_topic(&notice_topic(&bed)), Some(None));
        assert_eq!(patient_topic("vigil/v1/home/p-01/cuff-1/vitals"), None);
        assert_eq!(
            patient_topic("vigil/v1/home/+/_patient/receipt"),
            Some(None)
        );
        assert_eq!(patient_topic("other/v1/home/p-01/_patient/receipt"), None);
    }
}
