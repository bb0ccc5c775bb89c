//! The tamper-evident audit trail: an append-only SQLite table (`audit_log`, schema 003) whose
//! entries are chained by SHA-256.
//!
//! Each entry's `hash` covers the previous entry's hash and every field of the entry (see
//! [`entry_hash`] for the exact encoding, also written out in `docs/security.md`). SQL triggers
//! refuse `UPDATE` and `DELETE` on the table; whoever can write the database file can drop them,
//! which is why [`Audit::verify`] walks the chain and names the first broken link: an altered
//! entry (its hash no longer matches its fields), a deleted entry (a gap in the ids, or a
//! `prev_hash` that matches nothing) and reordered or re-inserted entries (a `prev_hash` that is
//! not the previous entry's hash).
//!
//! Keyed entries: each entry also carries `mac`, an HMAC-SHA256 of its hash under the station's
//! audit key ([`crate::keys`]), which is kept outside the database (OS keyring or a root-only key
//! file). Whoever can write the file but not read the key cannot recompute a valid chain, nor
//! strip the MACs (the key record says from which entry on they are due).
//!
//! What the chain cannot show on its own: removal of the newest entries (the chain that is left is
//! intact). The engine publishes the head ([`AuditHead`]) periodically outside the station (syslog
//! and a retained broker topic) and compares the trail with the last published head
//! ([`Audit::check_head`]); see `docs/security.md`.

use std::fmt;
use std::io::Write;

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// First field of every hashed record; names the encoding so that it can evolve.
pub const HASH_DOMAIN: &str = "vigil-audit-v1";

/// First field of every MAC ([`entry_mac`]).
pub const MAC_DOMAIN: &str = "vigil-audit-mac-v1";

/// First field of a published head's MAC ([`AuditHead::sign`]).
pub const HEAD_DOMAIN: &str = "vigil-audit-head-v1";

/// The action names written to the trail. Filters (`vigilctl audit list --action`) use these.
pub mod actions {
    /// A successful log-in.
    pub const LOGIN: &str = "login";
    /// A refused log-in (unknown user, wrong password, disabled or locked-out account).
    pub const LOGIN_FAILED: &str = "login_failed";
    /// An account locked out after too many failed log-ins.
    pub const LOCKOUT: &str = "lockout";
    /// A session ended by its user.
    pub const LOGOUT: &str = "logout";
    /// A session locked (idle timeout, or by its user).
    pub const LOCK: &str = "lock";
    /// A locked session unlocked with its user's password.
    pub const UNLOCK: &str = "unlock";
    /// A refused attempt to unlock a locked session.
    pub const UNLOCK_FAILED: &str = "unlock_failed";
    /// Emergency access taken (flagged: review every one).
    pub const BREAK_GLASS: &str = "break_glass";
    /// Emergency access ended (expired or the session ended).
    pub const BREAK_GLASS_END: &str = "break_glass_end";
    /// A user changed their own password.
    pub const PASSWORD_CHANGE: &str = "password_change";
    pub const USER_CREATE: &str = "user_create";
    pub const USER_DISABLE: &str = "user_disable";
    pub const USER_ENABLE: &str = "user_enable";
    /// An administrator set a temporary password (the user must change it at next log-in).
    pub const USER_RESET_PASSWORD: &str = "user_reset_password";
    pub const USER_ROLE_CHANGE: &str = "user_role_change";
    /// An administrator cleared a lockout.
    pub const USER_UNLOCK: &str = "user_unlock";
    /// The trail (or part of it) was exported.
    pub const AUDIT_EXPORT: &str = "audit_export";
    /// A device was registered to a bed (or moved to another bed).
    pub const DEVICE_REGISTER: &str = "device_register";
    /// A device was removed from the registry.
    pub const DEVICE_REMOVE: &str = "device_remove";
    /// A bed's alarm limits changed (by a charge nurse, or following its patient).
    pub const LIMITS_CHANGE: &str = "limits_change";
    /// Another station enrolled (or its key replaced): its signed alarm state is accepted.
    pub const STATION_ENROL: &str = "station_enrol";
    /// An enrolled station removed: its alarm state is refused from now on.
    pub const STATION_REMOVE: &str = "station_remove";
    /// An acknowledgement made at another station, applied here.
    pub const REMOTE_ALARM_ACKNOWLEDGE: &str = "remote_alarm_acknowledge";
    /// An audio pause (or its end) made at another station, applied here.
    pub const REMOTE_AUDIO_PAUSE: &str = "remote_audio_pause";
    /// An alarm acknowledged from a station window.
    pub const ALARM_ACKNOWLEDGE: &str = "alarm_acknowledge";
    /// Alarm audio paused (one bed, or the whole station).
    pub const AUDIO_PAUSE: &str = "audio_pause";
    /// An audio pause ended early by a user.
    pub const AUDIO_PAUSE_END: &str = "audio_pause_end";
    /// The reason for an emergency access, given after it was taken.
    pub const BREAK_GLASS_REASON: &str = "break_glass_reason";
    /// A station setting changed from the window (latching, nurses acknowledge, volume).
    pub const STATION_SETTING: &str = "station_setting";
    /// A bed put in standby or back to monitoring.
    pub const BED_STANDBY: &str = "bed_standby";
    /// The ward profile (default limits of beds without their own) changed.
    pub const WARD_PROFILE_CHANGE: &str = "ward_profile_change";
    /// An alarm code made to latch, or not.
    pub const ALARM_LATCHING_CHANGE: &str = "alarm_latching_change";
    /// The broker URL and ward written to the config file (used from the next start).
    pub const BROKER_SETTINGS_CHANGE: &str = "broker_settings_change";
    /// Patient data read (trends, samples, alarm history, unmasked patient list): one entry at
    /// the first read of a bed by a user, then one summary when the reading stops.
    pub const PHI_READ: &str = "phi_read";
    /// The summary of a run of reads of one bed by one user (count, kinds, time window).
    pub const PHI_READ_SUMMARY: &str = "phi_read_summary";
    /// A security event acknowledged by IT, with its note.
    pub const SECURITY_ACK: &str = "security_ack";
    /// The security events exported.
    pub const SECURITY_EXPORT: &str = "security_export";
    /// A remote (home or mobile-clinic) patient enrolled to a remote bed.
    pub const REMOTE_PATIENT_ENROL: &str = "remote_patient_enrol";
    /// A remote patient's monitoring paused (with the reason).
    pub const REMOTE_PATIENT_PAUSE: &str = "remote_patient_pause";
    /// A remote patient's monitoring resumed.
    pub const REMOTE_PATIENT_RESUME: &str = "remote_patient_resume";
    /// A remote patient discharged from remote monitoring.
    pub const REMOTE_PATIENT_DISCHARGE: &str = "remote_patient_discharge";
    /// A new version of a remote patient's care plan (the schedule items it holds).
    pub const CARE_PLAN_SET: &str = "care_plan_set";
    /// A clinician's review of a remote patient: what was done (no action, called the patient,
    /// escalated), the findings it closed, the note.
    pub const REMOTE_PATIENT_REVIEW: &str = "remote_patient_review";
    /// A message from a clinician to a remote patient (its text: what the patient was told).
    pub const REMOTE_PATIENT_MESSAGE: &str = "remote_patient_message";
    /// A remote patient's record opened (its review time starts).
    pub const REMOTE_RECORD_OPEN: &str = "remote_record_open";
    /// A remote patient's record closed, with the review time it counts for.
    pub const REMOTE_RECORD_CLOSE: &str = "remote_record_close";
    /// A document printed or saved: an alarm strip (on demand or automatic), a trend report, a
    /// shift handover (what, the period, the file, why).
    pub const REPORT_PRINT: &str = "report_print";
    /// A bed's data exported (FHIR or CSV, identified or de-identified, the period, why).
    pub const DATA_EXPORT: &str = "data_export";
}

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("audit database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("writing the audit export: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    pub id: i64,
    pub t_ms: i64,
    /// Who: a user name, `cli:<OS user>` for the command line, or `setup` for the first admin.
    pub actor: String,
    /// What: one of [`actions`] (or an action name of a later feature).
    pub action: String,
    /// On what: a user name, a bed, a setting; empty when there is none.
    pub target: String,
    /// Free text; never a password.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC-SHA256 of `hash` under the station's audit key ([`entry_mac`]); `None` for entries
    /// written before the trail was keyed.
    pub mac: Option<String>,
}

/// The MAC of an entry: lowercase hex of HMAC-SHA256 under the audit key (derived from the
/// station key, [`crate::keys::StationKey::audit_mac`]) of `F("vigil-audit-mac-v1") || F(hash)`,
/// with `F` as in [`entry_hash`]. The hash covers every field and the previous hash, so each MAC
/// also vouches for every entry before it.
pub fn entry_mac(key: &crate::keys::StationKey, hash: &str) -> String {
    key.audit_mac(&[MAC_DOMAIN, hash])
}

/// The hash of an entry: lowercase hex of
///
/// ```text
/// SHA-256( F("vigil-audit-v1") || F(prev_hash) || F(id) || F(t_ms)
///          || F(actor) || F(action) || F(target) || F(detail) )
/// ```
///
/// where `F(s)` is the length of `s` in bytes as an unsigned 64-bit big-endian integer followed
/// by the UTF-8 bytes of `s`; `id` and `t_ms` are written as decimal ASCII (`-` for negatives,
/// no leading zeros); `prev_hash` is the previous entry's hash as 64 lowercase hex characters
/// ([`GENESIS_HASH`] for the first entry). The length prefixes make the encoding unambiguous:
/// no two different entries encode to the same bytes.
pub fn entry_hash(
    prev_hash: &str,
    id: i64,
    t_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    let id = id.to_string();
    let t = t_ms.to_string();
    for field in [
        HASH_DOMAIN,
        prev_hash,
        &id,
        &t,
        actor,
        action,
        target,
        detail,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    to_hex(&h.finalize())
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Which entries [`Audit::list`] returns. Every field is optional; all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct AuditFilter {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// From this time on (inclusive), ms since the epoch.
    pub from_ms: Option<i64>,
    /// Before this time (exclusive), ms since the epoch.
    pub to_ms: Option<i64>,
    /// At most this many entries: the newest ones.
    pub limit: Option<usize>,
}

/// How the chain is broken at [`BrokenLink::id`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakKind {
    /// Entries are missing before this one: ids jump from `expected_id - 1` to this id.
    Missing { expected_id: i64 },
    /// This entry's `prev_hash` is not the previous entry's hash: the previous entry was altered
    /// and re-hashed, or entries were removed, reordered or inserted.
    PrevHashMismatch,
    /// This entry's stored hash does not match its fields: the entry was altered.
    HashMismatch,
    /// This entry's MAC is not the one the station key gives: the entry (or the chain up to it)
    /// was forged or recomputed by someone without the key.
    MacMismatch,
    /// This entry has no MAC although the trail is keyed from an earlier entry: the MACs were
    /// stripped and the chain recomputed.
    MacMissing,
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The entry at which the break was found.
    pub id: i64,
    pub kind: BreakKind,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BreakKind::Missing { expected_id } if *expected_id + 1 == self.id => write!(
                f,
                "entry {expected_id} is missing (deleted): the next entry found is {}",
                self.id
            ),
            BreakKind::Missing { expected_id } => write!(
                f,
                "entries {expected_id} to {} are missing (deleted): the next entry found is {}",
                self.id - 1,
                self.id
            ),
            BreakKind::PrevHashMismatch => write!(
                f,
                "entry {}: its prev_hash does not match the hash of the entry before it \
                 (that entry was altered, or entries were removed, reordered or inserted)",
                self.id
            ),
            BreakKind::HashMismatch => write!(
                f,
                "entry {}: its contents do not match its hash (the entry was altered)",
                self.id
            ),
            BreakKind::MacMismatch => write!(
                f,
                "entry {}: its MAC does not match the station key (the chain was forged or \
                 recomputed without the key)",
                self.id
            ),
            BreakKind::MacMissing => write!(
                f,
                "entry {}: it has no MAC although the trail is keyed (the MACs were stripped and \
                 the chain recomputed)",
                self.id
            ),
        }
    }
}

/// What [`Audit::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries in the table.
    pub entries: u64,
    /// Highest id (None for an empty trail).
    pub last_id: Option<i64>,
    /// Hash of the last entry ([`GENESIS_HASH`] for an empty trail). Recording it elsewhere lets a
    /// later check detect removal of the newest entries or a rewritten chain.
    pub head_hash: String,
    /// The first broken link, walking from the oldest entry; None when the chain is intact.
    pub first_break: Option<BrokenLink>,
    /// Whether the triggers that refuse UPDATE, DELETE and out-of-order INSERT are all present
    /// with exactly the SQL Vigil created them with, and no other trigger is on the table.
    /// Anything else means the database was modified outside Vigil.
    pub triggers_present: bool,
    /// What is wrong with the triggers (missing, replaced, unexpected), one line each.
    pub trigger_findings: Vec<String>,
    /// The station key was available, so MACs were checked.
    pub keyed: bool,
    /// Entries up to this id predate the key and carry no MAC (0: all are keyed).
    pub legacy_until: i64,
    /// The head's MAC (None without a key or for an unkeyed head).
    pub head_mac: Option<String>,
}

impl VerifyReport {
    /// The chain is unbroken (the triggers are reported separately).
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }

    /// The chain is unbroken and its protective triggers are Vigil's.
    pub fn trustworthy(&self) -> bool {
        self.is_intact() && self.triggers_present
    }

    /// What was found, in one line for people.
    pub fn summary(&self) -> String {
        match (&self.first_break, self.triggers_present) {
            (None, true) if self.keyed => format!(
                "audit trail intact: {} entries (hash chain and MACs checked)",
                self.entries
            ),
            (None, true) => format!(
                "audit trail intact: {} entries (hash chain only: no station key)",
                self.entries
            ),
            (None, false) => format!(
                "chain intact ({} entries) but the protective triggers are not Vigil's ({}): \
                 the database was modified outside Vigil",
                self.entries,
                self.trigger_findings.join("; ")
            ),
            (Some(b), _) => format!("audit trail BROKEN at {b}"),
        }
    }
}

/// Names of the protective triggers created by schema 003.
pub const TRIGGERS: [&str; 3] = [
    "audit_log_no_update",
    "audit_log_no_delete",
    "audit_log_append_only",
];

/// The exact SQL of each protective trigger, as schema 003 creates it and SQLite stores it in
/// `sqlite_master.sql`. A trigger of the same name with other SQL (a no-op) is reported.
pub fn trigger_sql(name: &str) -> Option<String> {
    const SCHEMA: &str = include_str!("schema/003_auth_audit.sql");
    let start = SCHEMA.find(&format!("CREATE TRIGGER {name} "))?;
    let end = start + SCHEMA[start..].find("END;")? + "END".len();
    Some(SCHEMA[start..end].to_string())
}

/// A head of the trail as published outside the station: the newest entry's id and hash, and
/// a MAC under the station's audit key over the station name, id, hash and time, so that a
/// forged head on the broker is recognised as such.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The station (MQTT client id) whose trail this is.
    pub station: String,
    /// Newest entry id (0: empty trail).
    pub id: i64,
    /// Its hash ([`GENESIS_HASH`] for an empty trail).
    pub hash: String,
    /// When it was read, ms since the epoch.
    pub t_ms: i64,
    /// HMAC of the fields above under the station key; None without a key.
    pub mac: Option<String>,
}

impl AuditHead {
    fn mac_of(&self, key: &crate::keys::StationKey) -> String {
        key.audit_mac(&[
            HEAD_DOMAIN,
            &self.station,
            &self.id.to_string(),
            &self.hash,
            &self.t_ms.to_string(),
        ])
    }

    /// Set the MAC under `key`.
    pub fn sign(mut self, key: Option<&crate::keys::StationKey>) -> AuditHead {
        self.mac = key.map(|k| self.mac_of(k));
        self
    }

    /// The MAC is the one `key` gives.
    pub fn is_signed_by(&self, key: &crate::keys::StationKey) -> bool {
        self.mac.as_deref() == Some(self.mac_of(key).as_str())
    }

    /// `id:hash`, the form `vigilctl audit verify --head` takes.
    pub fn short(&self) -> String {
        format!("{}:{}", self.id, self.hash)
    }
}

/// How the trail compares with a head published earlier ([`Audit::check_head`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadCheck {
    /// The trail holds the published head: it has only grown since.
    Extends,
    /// The trail ends before the published head: its newest entries were removed.
    Truncated { published_id: i64, local_last: i64 },
    /// The entry at the published id has another hash: the trail was rewritten.
    Rewritten { id: i64 },
}

impl fmt::Display for HeadCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadCheck::Extends => f.write_str("the trail extends the published head"),
            HeadCheck::Truncated {
                published_id,
                local_last,
            } => write!(
                f,
                "TRUNCATED: entry {published_id} was published as the head, but the trail ends at \
                 {local_last}: its newest entries were removed"
            ),
            HeadCheck::Rewritten { id } => write!(
                f,
                "REWRITTEN: entry {id} does not have the hash that was published for it"
            ),
        }
    }
}

/// The station key of the database `conn` is open on, if it has one.
fn key_of(conn: &Connection) -> Result<Option<Arc<crate::keys::StationKey>>, AuditError> {
    match conn.path().filter(|p| !p.is_empty()) {
        Some(p) => Ok(crate::keys::get(std::path::Path::new(p))?),
        None => Ok(None),
    }
}

/// Operations on the audit trail. Every function takes the connection it works on, so that an
/// append joins the caller's transaction.
pub struct Audit;

impl Audit {
    /// Append an entry and return it.
    ///
    /// Inside a caller's transaction (use `TransactionBehavior::Immediate`, or
    /// [`crate::store::in_tx`], so that no other connection can append between reading the head
    /// and inserting), the entry commits or rolls back with the caller's work. Outside any
    /// transaction it runs in its own `BEGIN IMMEDIATE` transaction ([`crate::store::in_tx`]).
    /// Two writers can never fork the chain: the next id is the primary key, so the slower one
    /// fails rather than inserting a second entry with the same id.
    pub fn append(
        conn: &Connection,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<AuditEntry, AuditError> {
        crate::store::in_tx(conn, |conn| {
            let head: Option<(i64, String)> = conn
                .query_row(
                    "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (id, prev_hash) = match head {
                Some((id, hash)) => (id + 1, hash),
                None => (1, GENESIS_HASH.to_string()),
            };
            let hash = entry_hash(&prev_hash, id, now_ms, actor, action, target, detail);
            let mac = key_of(conn)?.map(|k| entry_mac(&k, &hash));
            conn.execute(
                "INSERT INTO audit_log
                   (id, t_ms, actor, action, target, detail, prev_hash, hash, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, now_ms, actor, action, target, detail, prev_hash, hash, mac],
            )?;
            tracing::info!(target: "vigil::audit", id, actor, action, target, detail, "audit");
            Ok(AuditEntry {
                id,
                t_ms: now_ms,
                actor: actor.to_string(),
                action: action.to_string(),
                target: target.to_string(),
                detail: detail.to_string(),
                prev_hash,
                hash,
                mac,
            })
        })
    }

    /// Walk the whole chain from the oldest entry and report the first broken link.
    ///
    /// Returns `Ok` whether or not the chain is intact; `Err` only when the table cannot be read.
    ///
    /// With the database's station key ([`crate::keys`]) the MACs are checked too; see
    /// [`Audit::verify_with`].
    pub fn verify(conn: &Connection) -> Result<VerifyReport, AuditError> {
        let key = key_of(conn)?;
        Self::verify_with(conn, key.as_deref())
    }

    /// [`Audit::verify`] with a given key (a copy of the database checked elsewhere), or none
    /// (the plain chain only; [`VerifyReport::keyed`] is then false).
    pub fn verify_with(
        conn: &Connection,
        key: Option<&crate::keys::StationKey>,
    ) -> Result<VerifyReport, AuditError> {
        let legacy_until = key.map_or(0, |k| k.legacy_until);
        let mut stmt = conn.prepare(
            "SELECT id, t_ms, actor, action, target, detail, prev_hash, hash, mac
             FROM audit_log ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut entries = 0u64;
        let mut last_id: Option<i64> = None;
        let mut prev_stored = GENESIS_HASH.to_string();
        let mut first_break: Option<BrokenLink> = None;
        let mut last_mac: Option<String> = None;
        while let Some(row) = rows.next()? {
            let e = entry_from_row(row)?;
            entries += 1;
            if first_break.is_none() {
                let expected_id = last_id.map_or(1, |i| i + 1);
                let kind = if e.id != expected_id {
                    Some(BreakKind::Missing { expected_id })
                } else if e.prev_hash != prev_stored {
                    Some(BreakKind::PrevHashMismatch)
                } else if e.hash
                    != entry_hash(
                        &e.prev_hash,
                        e.id,
                        e.t_ms,
                        &e.actor,
                        &e.action,
                        &e.target,
                        &e.detail,
                    )
                {
                    Some(BreakKind::HashMismatch)
                } else {
                    match (key, &e.mac) {
                        (Some(k), Some(mac)) if *mac != entry_mac(k, &e.hash) => {
                            Some(BreakKind::MacMismatch)
                        }
                        (Some(_), None) if e.id > legacy_until => Some(BreakKind::MacMissing),
                        _ => None,
                    }
                };
                first_break = kind.map(|kind| BrokenLink { id: e.id, kind });
            }
            last_id = Some(e.id);
            prev_stored = e.hash;
            last_mac = e.mac;
        }
        let trigger_findings = Self::check_triggers(conn)?;
        Ok(VerifyReport {
            entries,
            last_id,
            head_hash: prev_stored,
            first_break,
            triggers_present: trigger_findings.is_empty(),
            trigger_findings,
            keyed: key.is_some(),
            legacy_until,
            head_mac: last_mac,
        })
    }

    /// Compare the triggers on `audit_log` with the ones schema 003 created, by their full SQL:
    /// one line per trigger that is missing, replaced (same name, other SQL: e.g. a no-op) or
    /// unexpected (e.g. one that deletes entries after they are written).
    pub fn check_triggers(conn: &Connection) -> Result<Vec<String>, AuditError> {
        let mut stmt = conn.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'
             ORDER BY name",
        )?;
        let found = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for name in TRIGGERS {
            match found.iter().find(|(n, _)| n == name) {
                None => out.push(format!("trigger {name} is missing")),
                Some((_, sql)) if sql.as_deref() != trigger_sql(name).as_deref() => out.push(
                    format!("trigger {name} was replaced: its SQL is not the one Vigil created"),
                ),
                Some(_) => {}
            }
        }
        for (n, _) in &found {
            if !TRIGGERS.contains(&n.as_str()) {
                out.push(format!("unexpected trigger {n} on audit_log"));
            }
        }
        Ok(out)
    }

    /// The newest entry as a head to publish for `station` (signed with the station key when the
    /// database has one).
    pub fn head(conn: &Connection, station: &str, now_ms: i64) -> Result<AuditHead, AuditError> {
        let last: Option<(i64, String)> = conn
            .query_row(
                "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (id, hash) = last.unwrap_or((0, GENESIS_HASH.to_string()));
        let key = key_of(conn)?;
        Ok(AuditHead {
            station: station.to_string(),
            id,
            hash,
            t_ms: now_ms,
            mac: None,
        }
        .sign(key.as_deref()))
    }

    /// Compare the trail with a head published earlier: it must still hold that entry, with
    /// that hash. Catches the removal of the newest entries, which the chain alone cannot show.
    pub fn check_head(conn: &Connection, head: &AuditHead) -> Result<HeadCheck, AuditError> {
        if head.id <= 0 {
            return Ok(HeadCheck::Extends);
        }
        let at: Option<String> = conn
            .query_row("SELECT hash FROM audit_log WHERE id = ?1", [head.id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match at {
            Some(h) if h == head.hash => HeadCheck::Extends,
            Some(_) => HeadCheck::Rewritten { id: head.id },
            None => {
                let local_last: i64 =
                    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit_log", [], |r| {
                        r.get(0)
                    })?;
                if local_last >= head.id {
                    HeadCheck::Rewritten { id: head.id }
                } else {
                    HeadCheck::Truncated {
                        published_id: head.id,
                        local_last,
                    }
                }
            }
        })
    }

    /// Entries matching `filter`, oldest first (with a limit: the newest `limit` entries).
    pub fn list(conn: &Connection, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AuditError> {
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut stmt = conn.prepare(
            "SELECT id, t_ms, actor, action, target, detail, prev_hash, hash, mac FROM audit_log
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
               AND (?3 IS NULL OR t_ms >= ?3) AND (?4 IS NULL OR t_ms < ?4)
             ORDER BY id DESC LIMIT ?5",
        )?;
        let mut out = stmt
            .query_map(
                params![
                    filter.actor,
                    filter.action,
                    filter.from_ms,
                    filter.to_ms,
                    limit
                ],
                entry_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Write entries as CSV (RFC 4180, CRLF line ends, header row). Columns: `id, t_ms,
    /// time_utc, actor, action, target, detail, prev_hash, hash, mac`. Text fields that a spreadsheet
    /// would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) get a leading `'`.
    pub fn write_csv<W: Write>(entries: &[AuditEntry], mut out: W) -> Result<(), AuditError> {
        out.write_all(b"id,t_ms,time_utc,actor,action,target,detail,prev_hash,hash,mac\r\n")?;
        for e in entries {
            let fields = [
                e.id.to_string(),
                e.t_ms.to_string(),
                format_time_utc(e.t_ms),
                csv_text(&e.actor),
                csv_text(&e.action),
                csv_text(&e.target),
                csv_text(&e.detail),
                csv_text(&e.prev_hash),
                csv_text(&e.hash),
                csv_text(e.mac.as_deref().unwrap_or("")),
            ];
            let line = fields.join(",");
            out.write_all(line.as_bytes())?;
            out.write_all(b"\r\n")?;
        }
        out.flush()?;
        Ok(())
    }

    /// Export the entries matching `filter` as CSV to `out`, recording the export itself in the
    /// trail (`audit_export`, by `actor`) first. Returns the number of entries written.
    pub fn export_csv<W: Write>(
        conn: &Connection,
        filter: &AuditFilter,
        actor: &str,
        now_ms: i64,
        out: W,
    ) -> Result<usize, AuditError> {
        let entries = Self::list(conn, filter)?;
        Self::append(
            conn,
            actor,
            actions::AUDIT_EXPORT,
            "audit_log",
            &format!(
                "csv, {} entries, {}",
                entries.len(),
                describe_filter(filter)
            ),
            now_ms,
        )?;
        Self::write_csv(&entries, out)?;
        Ok(entries.len())
    }
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        t_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
        mac: r.get(8)?,
    })
}

/// `2024-05-01T12:00:00.000Z` (UTC), or the raw number when out of range.
pub fn format_time_utc(t_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t_ms).map_or_else(
        || t_ms.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

fn describe_filter(f: &AuditFilter) -> String {
    let mut parts = Vec::new();
    if let Some(a) = &f.actor {
        parts.push(format!("actor={a}"));
    }
    if let Some(a) = &f.action {
        parts.push(format!("action={a}"));
    }
    if let Some(t) = f.from_ms {
        parts.push(format!("from={}", format_time_utc(t)));
    }
    if let Some(t) = f.to_ms {
        parts.push(format!("to={}", format_time_utc(t)));
    }
    if let Some(l) = f.limit {
        parts.push(format!("limit={l}"));
    }
    if parts.is_empty() {
        "no filter".to_string()
    } else {
        parts.join(" ")
    }
}

/// One CSV text field: neutralised against formula injection, quoted when needed.
pub(crate) fn csv_text(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    fn db() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.db");
        let conn = store::open(&path).expect("open");
        (dir, path, conn)
    }

    fn fill(conn: &Connection, n: i64) -> Vec<AuditEntry> {
        (1..=n)
            .map(|i| {
                Audit::append(
                    conn,
                    if i % 2 == 0 { "alice" } else { "bob" },
                    if i % 3 == 0 { "logout" } else { "login" },
                    "",
                    &format!("entry number {i}"),
                    1_700_000_000_000 + i * 1000,
                )
                .expect("append")
            })
            .collect()
    }

    /// A copy of the database file, as an attacker would work on it.
    fn copy(dir: &tempfile::TempDir, path: &std::path::Path, name: &str) -> Connection {
        let to = dir.path().join(name);
        let src = Connection::open(path).expect("open source");
        src.execute("VACUUM INTO ?1", [to.to_string_lossy()])
            .expect("vacuum into");
        Connection::open(&to).expect("open copy")
    }

    /// A database of `n` entries, and a copy of it (`name`) tampered with by the statements
    /// `sql` (the attacker drops a trigger first, as it would refuse the change): the temporary
    /// directory, the original's connection, and the verification of the copy.
    fn tampered(n: i64, name: &str, sql: &str) -> (tempfile::TempDir, Connection, VerifyReport) {
        let (dir, path, conn) = db();
        fill(&conn, n);
        let evil = copy(&dir, &path, name);
        evil.execute_batch(sql).expect("tamper");
        let r = Audit::verify(&evil).expect("verify");
        (dir, conn, r)
    }

    fn broken(id: i64, kind: BreakKind) -> Option<BrokenLink> {
        Some(BrokenLink { id, kind })
    }

    /// The ids of the entries that `filter` lists.
    fn ids(conn: &Connection, filter: AuditFilter) -> Vec<i64> {
        Audit::list(conn, &filter)
            .expect("list")
            .iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn hash_encoding_is_the_documented_one() {
        // Built by hand from the documented encoding, independently of entry_hash.
        let mut bytes = Vec::new();
        for f in [
            "vigil-audit-v1",
            GENESIS_HASH,
            "1",
            "-5",
            "alice",
            "login",
            "",
            "détail",
        ] {
            bytes.extend_from_slice(&(f.len() as u64).to_be_bytes());
            bytes.extend_from_slice(f.as_bytes());
        }
        let expected = to_hex(&Sha256::digest(&bytes));
        assert_eq!(
            entry_hash(GENESIS_HASH, 1, -5, "alice", "login", "", "détail"),
            expected
        );
        // Moving text between fields changes the hash (the encoding is unambiguous).
        assert_ne!(
            entry_hash(GENESIS_HASH, 1, 0, "ab", "c", "", ""),
            entry_hash(GENESIS_HASH, 1, 0, "a", "bc", "", "")
        );
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // SHA-256 of the empty string, to pin the hex output to the standard digest.
        assert_eq!(
            to_hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let (_d, _p, conn) = db();
        let empty = Audit::verify(&conn).expect("verify");
        assert_eq!(empty.entries, 0);
        assert!(empty.is_intact());
        assert_eq!(empty.head_hash, GENESIS_HASH);
        let written = fill(&conn, 6);
        assert_eq!(written[0].prev_hash, GENESIS_HASH);
        for w in written.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
            assert_eq!(w[1].id, w[0].id + 1);
        }
        let r = Audit::verify(&conn).expect("verify");
        assert_eq!(r.entries, 6);
        assert_eq!(r.last_id, Some(6));
        assert_eq!(r.head_hash, written[5].hash);
        assert!(r.triggers_present);
        assert_eq!(r.first_break, None);
    }

    #[test]
    fn triggers_refuse_update_delete_and_out_of_order_insert() {
        let (_d, _p, conn) = db();
        fill(&conn, 3);
        let upd = conn.execute("UPDATE audit_log SET detail = 'x' WHERE id = 2", []);
        assert!(
            upd.is_err_and(|e| e.to_string().contains("append-only")),
            "update refused"
        );
        let del = conn.execute("DELETE FROM audit_log WHERE id = 2", []);
        assert!(del.is_err_and(|e| e.to_string().contains("append-only")));
        let replace = conn.execute(
            "INSERT OR REPLACE INTO audit_log (id, t_ms, actor, action, target, detail,
               prev_hash, hash) VALUES (2, 0, 'eve', 'login', '', '', '', 'h')",
            [],
        );
        assert!(replace.is_err_and(|e| e.to_string().contains("append-only")));
        let gap = conn.execute(
            "INSERT INTO audit_log (id, t_ms, actor, action, target, detail, prev_hash, hash)
             VALUES (9, 0, 'eve', 'login', '', '', '', 'h')",
            [],
        );
        assert!(gap.is_err());
        let r = Audit::verify(&conn).expect("verify");
        assert_eq!((r.entries, r.first_break), (3, None));
    }

    #[test]
    fn altered_row_in_a_copy_is_reported_by_id() {
        // The attacker drops the protection first, as the triggers would refuse the change.
        let (_dir, conn, r) = tampered(
            5,
            "altered.db",
            "DROP TRIGGER audit_log_no_update;
             UPDATE audit_log SET detail = 'nothing happened' WHERE id = 3;",
        );
        assert_eq!(r.entries, 5);
        assert_eq!(r.first_break, broken(3, BreakKind::HashMismatch));
        assert!(!r.triggers_present);
        assert!(r
            .first_break
            .as_ref()
            .is_some_and(|b| b.to_string().contains("entry 3")));
        // The original is untouched and still intact.
        assert!(Audit::verify(&conn).expect("verify").is_intact());
    }

    #[test]
    fn altered_and_rehashed_row_breaks_the_next_link() {
        let (dir, path, conn) = db();
        let w = fill(&conn, 5);
        let evil = copy(&dir, &path, "rehashed.db");
        let forged = entry_hash(&w[1].hash, 3, w[2].t_ms, "bob", "login", "", "forged");
        evil.execute_batch("DROP TRIGGER audit_log_no_update")
            .expect("drop");
        evil.execute(
            "UPDATE audit_log SET detail = 'forged', actor = 'bob', action = 'login', hash = ?1
             WHERE id = 3",
            [&forged],
        )
        .expect("tamper");
        let r = Audit::verify(&evil).expect("verify");
        assert_eq!(r.first_break, broken(4, BreakKind::PrevHashMismatch));
    }

    #[test]
    fn deleted_middle_row_is_reported() {
        let (_dir, _conn, r) = tampered(
            5,
            "deleted.db",
            "DROP TRIGGER audit_log_no_delete;
             DELETE FROM audit_log WHERE id = 3;",
        );
        assert_eq!(r.entries, 4);
        let b = r.first_break.expect("a break");
        assert_eq!(
            b,
            BrokenLink {
                id: 4,
                kind: BreakKind::Missing { expected_id: 3 }
            }
        );
        assert!(b.to_string().contains("entry 3 is missing"), "{b}");
    }

    #[test]
    fn deleted_and_renumbered_rows_are_reported() {
        // Deleting entry 2 and renumbering the rest to hide the gap breaks the prev_hash link.
        let (_dir, _conn, r) = tampered(
            4,
            "renumbered.db",
            "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_no_update;
             DELETE FROM audit_log WHERE id = 2;
             UPDATE audit_log SET id = id - 1 WHERE id > 2;",
        );
        assert_eq!(r.first_break, broken(2, BreakKind::PrevHashMismatch));
        // Deleting the first entry is caught too.
        let (_dir, _conn, r) = tampered(
            4,
            "first.db",
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id = 1;",
        );
        assert_eq!(
            r.first_break,
            broken(2, BreakKind::Missing { expected_id: 1 })
        );
    }

    #[test]
    fn swapped_rows_are_reported() {
        let (_dir, _conn, r) = tampered(
            4,
            "swapped.db",
            "DROP TRIGGER audit_log_no_update;
             UPDATE audit_log SET id = 100 WHERE id = 2;
             UPDATE audit_log SET id = 2 WHERE id = 3;
             UPDATE audit_log SET id = 3 WHERE id = 100;",
        );
        assert_eq!(r.first_break, broken(2, BreakKind::PrevHashMismatch));
    }

    #[test]
    fn append_joins_the_callers_transaction() {
        let (_d, _p, mut conn) = db();
        fill(&conn, 1);
        {
            let tx = conn.transaction().expect("tx");
            Audit::append(&tx, "alice", "login", "", "rolled back", 5).expect("append");
            // dropped without commit: rolled back
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("tx");
        let e = Audit::append(&tx, "alice", "login", "", "kept", 6).expect("append");
        tx.commit().expect("commit");
        assert_eq!(e.id, 2);
        let all = Audit::list(&conn, &AuditFilter::default()).expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].detail, "kept");
        assert!(Audit::verify(&conn).expect("verify").is_intact());
    }

    #[test]
    fn list_filters() {
        let (_d, _p, conn) = db();
        fill(&conn, 9);
        let actor = |a: &str| Some(a.to_string());
        for (case, filter, want) in [
            ("all", AuditFilter::default(), (1..=9).collect::<Vec<_>>()),
            (
                "alice",
                AuditFilter {
                    actor: actor("alice"),
                    ..Default::default()
                },
                vec![2, 4, 6, 8],
            ),
            (
                "logouts by alice",
                AuditFilter {
                    actor: actor("alice"),
                    action: Some("logout".into()),
                    ..Default::default()
                },
                vec![6],
            ),
            (
                "a window",
                AuditFilter {
                    from_ms: Some(1_700_000_000_000 + 3000),
                    to_ms: Some(1_700_000_000_000 + 6000),
                    ..Default::default()
                },
                vec![3, 4, 5],
            ),
            (
                "the newest 2",
                AuditFilter {
                    limit: Some(2),
                    ..Default::default()
                },
                vec![8, 9],
            ),
        ] {
            assert_eq!(ids(&conn, filter), want, "{case}");
        }
    }

    #[test]
    fn csv_export_quotes_and_is_audited() {
        let (_d, _p, conn) = db();
        Audit::append(&conn, "alice", "login", "", "plain", 0).expect("append");
        Audit::append(
            &conn,
            "bob",
            "note",
            "bed 4W/01",
            "said \"hello\", then\nleft",
            1000,
        )
        .expect("append");
        Audit::append(&conn, "eve", "note", "=HYPERLINK(\"x\")", "-1", 2000).expect("append");
        let mut out = Vec::new();
        let n = Audit::export_csv(&conn, &AuditFilter::default(), "cli:it", 3000, &mut out)
            .expect("export");
        assert_eq!(n, 3);
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "id,t_ms,time_utc,actor,action,target,detail,prev_hash,hash,mac"
        );
        assert!(lines[1].starts_with("1,0,1970-01-01T00:00:00.000Z,alice,login,,plain,0000"));
        assert!(
            lines[2].starts_with(
                "2,1000,1970-01-01T00:00:01.000Z,bob,note,bed 4W/01,\"said \"\"hello\"\", then\nleft\","
            ),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with(
                "3,2000,1970-01-01T00:00:02.000Z,eve,note,\"'=HYPERLINK(\"\"x\"\")\",'-1,"
            ),
            "{}",
            lines[3]
        );
        assert_eq!(lines.len(), 5, "header, 3 rows, empty after the last CRLF");
        let last = Audit::list(&conn, &AuditFilter::default()).expect("list");
        let last = last.last().expect("the export's own entry");
        assert_eq!(last.action, actions::AUDIT_EXPORT);
        assert_eq!(last.actor, "cli:it");
        assert_eq!(last.detail, "csv, 3 entries, no filter");
        assert!(Audit::verify(&conn).expect("verify").is_intact());
    }

    /// The key of the test database, to check copies of it.
    fn key(path: &std::path::Path) -> Arc<crate::keys::StationKey> {
        crate::keys::get(path)
            .expect("key")
            .expect("the database is keyed")
    }

    #[test]
    fn entries_are_keyed_and_a_recomputed_chain_is_detected() {
        let (dir, path, conn) = db();
        let w = fill(&conn, 5);
        let k = key(&path);
        assert_eq!(
            k.legacy_until, 0,
            "a new database is keyed from its first entry"
        );
        for e in &w {
            assert_eq!(e.mac.as_deref(), Some(entry_mac(&k, &e.hash).as_str()));
        }
        let r = Audit::verify(&conn).expect("verify");
        assert!(r.is_intact() && r.keyed && r.triggers_present, "{r:?}");

        // Forge entry 3 and recompute every hash after it, as anyone who can write the file
        // can; without the key the MACs cannot follow.
        let evil = copy(&dir, &path, "recomputed.db");
        evil.execute_batch("DROP TRIGGER audit_log_no_update")
            .expect("drop");
        let mut prev = w[1].hash.clone();
        for e in &w[2..] {
            let detail = if e.id == 3 {
                "forged"
            } else {
                e.detail.as_str()
            };
            let h = entry_hash(&prev, e.id, e.t_ms, &e.actor, &e.action, &e.target, detail);
            evil.execute(
                "UPDATE audit_log SET detail = ?1, prev_hash = ?2, hash = ?3 WHERE id = ?4",
                params![detail, prev, h, e.id],
            )
            .expect("rewrite");
            prev = h;
        }
        // The plain chain is intact again ...
        let plain = Audit::verify_with(&evil, None).expect("verify");
        assert!(plain.is_intact() && !plain.keyed);
        // ... but not with the key.
        let r = Audit::verify_with(&evil, Some(&k)).expect("verify");
        assert_eq!(r.first_break, broken(3, BreakKind::MacMismatch));
        // Stripping the MACs as well is seen too.
        evil.execute_batch("UPDATE audit_log SET mac = NULL")
            .expect("strip");
        let r = Audit::verify_with(&evil, Some(&k)).expect("verify");
        assert_eq!(r.first_break, broken(1, BreakKind::MacMissing));
        assert!(r.first_break.expect("break").to_string().contains("no MAC"));
    }

    #[test]
    fn a_no_op_trigger_of_the_same_name_is_detected() {
        let (dir, path, conn) = db();
        fill(&conn, 2);
        assert_eq!(
            Audit::check_triggers(&conn).expect("check"),
            Vec::<String>::new()
        );
        let evil = copy(&dir, &path, "noop.db");
        evil.execute_batch(
            "DROP TRIGGER audit_log_no_delete;
             CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END;
             CREATE TRIGGER audit_log_cleanup AFTER INSERT ON audit_log BEGIN SELECT 1; END;
             DELETE FROM audit_log WHERE id = 2;",
        )
        .expect("tamper");
        let r = Audit::verify_with(&evil, Some(&key(&path))).expect("verify");
        assert!(!r.triggers_present);
        assert_eq!(
            r.trigger_findings,
            vec![
                "trigger audit_log_no_delete was replaced: its SQL is not the one Vigil created"
                    .to_string(),
                "unexpected trigger audit_log_cleanup on audit_log".to_string()
            ]
        );
        // The deletion itself leaves an intact shorter chain: only the head shows it.
        assert!(r.is_intact());
    }

    #[test]
    fn tail_truncation_is_detected_against_the_published_head() {
        let (dir, path, conn) = db();
        fill(&conn, 6);
        let published = Audit::head(&conn, "vigil-4w", 42).expect("head");
        assert_eq!(published.id, 6);
        let k = key(&path);
        assert!(published.is_signed_by(&k));
        assert!(!AuditHead {
            id: 7,
            ..published.clone()
        }
        .is_signed_by(&k));
        assert_eq!(
            Audit::check_head(&conn, &published).expect("check"),
            HeadCheck::Extends
        );
        fill(&conn, 1);
        assert_eq!(
            Audit::check_head(&conn, &published).expect("check"),
            HeadCheck::Extends,
            "a trail that grew still holds the head"
        );
        // Delete the two newest entries: the chain left is intact, the head is not there.
        let evil = copy(&dir, &path, "truncated.db");
        evil.execute_batch(
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id >= 6;",
        )
        .expect("truncate");
        assert!(Audit::verify_with(&evil, Some(&k))
            .expect("verify")
            .is_intact());
        let c = Audit::check_head(&evil, &published).expect("check");
        assert_eq!(
            c,
            HeadCheck::Truncated {
                published_id: 6,
                local_last: 5
            }
        );
        assert!(c.to_string().contains("TRUNCATED"), "{c}");
    }
}
