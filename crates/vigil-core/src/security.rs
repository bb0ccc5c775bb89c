//! Security events: everything suspicious the station sees, in one model, aggregated so that a
//! flood is one event that grows rather than a thousand log lines (docs/security.md).
//!
//! Sources report [`Occurrence`]s to the [`SecurityMonitor`] (cheap: a hash-map update under a
//! mutex, safe on the ingest path). An occurrence joins the open event of its kind and source
//! (count, last seen, latest detail); a kind with a threshold ([`Thresholds`]) opens an event only
//! once it happened that often within its window (malformed payloads: 15 a minute from one
//! source, as EMQX's flapping detection counts connects). The monitor's owner calls
//! [`SecurityMonitor::flush`] about once a second: new and changed events are written to the
//! `security_events` table (schema 009) and returned, for syslog ([`crate::syslog`]) and the
//! window. IT acknowledges an event with a note ([`acknowledge`], audited); the next occurrence
//! after that opens a new event.
//!
//! Events of severity high or critical are also technical alarms at the station
//! ([`SecurityMonitor::alarm_conditions`]): on their bed when they name one (a spoofing attempt
//! on a bed: that bed's numbers may be forged), else on the station.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::audit::{actions, format_time_utc, Audit, AuditError};
use crate::telemetry::{BedId, DecodeError};

/// How bad an event is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The RFC 5424 severity: critical 2, error 3, warning 4, notice 5, informational 6.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Critical => 2,
            Severity::High => 3,
            Severity::Medium => 4,
            Severity::Low => 5,
            Severity::Info => 6,
        }
    }

    /// High and critical events are technical alarms at the station.
    pub fn alarms(self) -> bool {
        self >= Severity::High
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened. Stored and filtered as [`Kind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "SecurityKind"))]
pub enum Kind {
    /// Telemetry from a device missing from (or disabled in) the registry.
    UnknownDevice,
    /// A device speaking for another bed or another device (topic/payload/registry disagree).
    IdentityMismatch,
    /// A reading sent again (sequence repeated or going back).
    Replay,
    /// A device over its rate or size budget.
    DeviceOverBudget,
    /// Readings stamped too far from the station clock, repeatedly.
    ClockSkew,
    /// Malformed, oversized or otherwise undecodable payloads, repeatedly.
    MalformedFlood,
    /// An MLLP (HL7 v2) peer refused.
    MllpRefused,
    /// Failed log-ins (wrong password, unknown user), repeatedly.
    LoginFailed,
    /// An account locked out after too many failed log-ins.
    Lockout,
    /// Emergency access taken.
    BreakGlass,
    /// Another station acted on this station's alarms (acknowledge, pause).
    RemoteStationAction,
    /// A station alarm state refused: unsigned, badly signed, from a station not enrolled (or
    /// not for that ward), replayed, stale or future-dated ([`crate::alarms::sync::Refusal`]).
    StationStateRefused,
    /// A setting changed (devices, ward profile, broker).
    ConfigChange,
    /// A TLS certificate near its expiry (or expired).
    CertExpiry,
    /// The broker refused the station's credentials, or authentication failed.
    BrokerAuth,
    /// The audit trail failed verification (broken chain, MAC, triggers).
    AuditVerifyFailed,
    /// The audit trail no longer holds the head published earlier (entries removed).
    AuditTruncated,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::UnknownDevice,
        Kind::IdentityMismatch,
        Kind::Replay,
        Kind::DeviceOverBudget,
        Kind::ClockSkew,
        Kind::MalformedFlood,
        Kind::MllpRefused,
        Kind::LoginFailed,
        Kind::Lockout,
        Kind::BreakGlass,
        Kind::RemoteStationAction,
        Kind::StationStateRefused,
        Kind::ConfigChange,
        Kind::CertExpiry,
        Kind::BrokerAuth,
        Kind::AuditVerifyFailed,
        Kind::AuditTruncated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnknownDevice => "unknown_device",
            Kind::IdentityMismatch => "identity_mismatch",
            Kind::Replay => "replay",
            Kind::DeviceOverBudget => "device_over_budget",
            Kind::ClockSkew => "clock_skew",
            Kind::MalformedFlood => "malformed_flood",
            Kind::MllpRefused => "mllp_refused",
            Kind::LoginFailed => "login_failed",
            Kind::Lockout => "lockout",
            Kind::BreakGlass => "break_glass",
            Kind::RemoteStationAction => "remote_station_action",
            Kind::StationStateRefused => "station_state_refused",
            Kind::ConfigChange => "config_change",
            Kind::CertExpiry => "cert_expiry",
            Kind::BrokerAuth => "broker_auth",
            Kind::AuditVerifyFailed => "audit_verify_failed",
            Kind::AuditTruncated => "audit_truncated",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a person reads on the Security screen and in the technical alarm.
    pub fn label(self) -> &'static str {
        match self {
            Kind::UnknownDevice => "Unknown device",
            Kind::IdentityMismatch => "Device identity mismatch (spoofing?)",
            Kind::Replay => "Replayed readings",
            Kind::DeviceOverBudget => "Device over its budget",
            Kind::ClockSkew => "Clock skew",
            Kind::MalformedFlood => "Malformed payloads",
            Kind::MllpRefused => "MLLP peer refused",
            Kind::LoginFailed => "Failed log-ins",
            Kind::Lockout => "Account locked out",
            Kind::BreakGlass => "Break-glass access",
            Kind::RemoteStationAction => "Remote station action",
            Kind::StationStateRefused => "Station alarm state refused (forged or replayed?)",
            Kind::ConfigChange => "Configuration change",
            Kind::CertExpiry => "Certificate expiry",
            Kind::BrokerAuth => "Broker authentication",
            Kind::AuditVerifyFailed => "Audit trail verification failed",
            Kind::AuditTruncated => "Audit trail truncated",
        }
    }

    /// The severity of this kind unless the reporter says otherwise.
    pub fn default_severity(self) -> Severity {
        match self {
            Kind::UnknownDevice | Kind::IdentityMismatch | Kind::Replay => Severity::High,
            Kind::BrokerAuth | Kind::StationStateRefused => Severity::High,
            Kind::AuditVerifyFailed | Kind::AuditTruncated => Severity::Critical,
            Kind::DeviceOverBudget | Kind::MalformedFlood | Kind::MllpRefused | Kind::Lockout => {
                Severity::Medium
            }
            Kind::BreakGlass | Kind::CertExpiry | Kind::RemoteStationAction => Severity::Medium,
            Kind::ClockSkew | Kind::LoginFailed => Severity::Low,
            Kind::ConfigChange => Severity::Info,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who or what an occurrence came from. Empty strings: not known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "SecuritySource"))]
pub struct Source {
    /// `ward/bed` it concerns.
    pub bed: String,
    pub device: String,
    /// Network peer (`ip:port`, or an MQTT topic's publisher as far as it is known).
    pub peer: String,
    pub user: String,
}

impl Source {
    pub fn bed(bed: &BedId) -> Source {
        Source {
            bed: bed.key(),
            ..Source::default()
        }
    }

    pub fn user(user: &str) -> Source {
        Source {
            user: clip(user, 64),
            ..Source::default()
        }
    }

    pub fn peer(peer: &str) -> Source {
        Source {
            peer: clip(peer, 128),
            ..Source::default()
        }
    }

    /// One line: `bed 4W/01 device mon-7 peer 10.0.0.5:4000 user alice`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("bed", &self.bed),
            ("device", &self.device),
            ("peer", &self.peer),
            ("user", &self.user),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k} {v}"));
            }
        }
        if parts.is_empty() {
            "station".into()
        } else {
            parts.join(" ")
        }
    }
}

fn clip(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}

/// One suspicious thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub kind: Kind,
    /// `None`: the kind's default.
    pub severity: Option<Severity>,
    pub source: Source,
    /// For people: what exactly (never a password).
    pub detail: String,
    pub t_ms: i64,
}

impl Occurrence {
    pub fn new(kind: Kind, source: Source, detail: impl Into<String>, t_ms: i64) -> Occurrence {
        Occurrence {
            kind,
            severity: None,
            source,
            detail: clip(&detail.into(), 500),
            t_ms,
        }
    }

    pub fn severity(mut self, s: Severity) -> Occurrence {
        self.severity = Some(s);
        self
    }

    /// The security event a refused telemetry message is, if any: spoofing-like refusals name
    /// the bed of the topic they were sent on. `peer` is the MLLP peer or empty.
    pub fn from_reject(e: &DecodeError, topic: &str, peer: &str, t_ms: i64) -> Option<Occurrence> {
        let parsed = crate::telemetry::Topic::parse(topic).ok();
        let mut source = Source {
            bed: parsed.as_ref().map(|t| t.bed.key()).unwrap_or_default(),
            device: parsed
                .as_ref()
                .map(|t| t.device.clone())
                .unwrap_or_default(),
            peer: clip(peer, 128),
            user: String::new(),
        };
        let detail = format!("{}: {e}", clip(topic, 200));
        let kind = match e {
            DecodeError::UnknownDevice(d) => {
                if source.device.is_empty() {
                    source.device = clip(d, 64);
                }
                Kind::UnknownDevice
            }
            DecodeError::BedMismatch { .. } | DecodeError::DeviceMismatch { .. } => {
                Kind::IdentityMismatch
            }
            // An MLLP peer speaking for a device of a bed: spoofing that bed. For a device
            // registered nowhere: the peer was refused (no bed at risk).
            DecodeError::ForeignDevice { device, bed, .. } => {
                source.device = clip(device, 64);
                match bed {
                    Some(b) => {
                        source.bed = clip(b, 64);
                        Kind::IdentityMismatch
                    }
                    None => Kind::MllpRefused,
                }
            }
            DecodeError::ClockSkew { .. } => Kind::ClockSkew,
            DecodeError::Replay { .. } => Kind::Replay,
            DecodeError::Topic(_)
            | DecodeError::TooLarge(_)
            | DecodeError::Json(_)
            | DecodeError::Version(_)
            | DecodeError::Invalid { .. }
            | DecodeError::ChannelMismatch { .. }
            | DecodeError::UnknownChannel(_) => Kind::MalformedFlood,
            // Plausibility and coding problems of a known device: data quality, not security.
            DecodeError::UnknownCode(_)
            | DecodeError::Unit { .. }
            | DecodeError::OutOfRange { .. } => return None,
            // A QoS 1 redelivery (same number, same content): the broker's normal behaviour.
            DecodeError::Duplicate { .. } => return None,
        };
        if kind == Kind::MalformedFlood {
            // A flood is counted per publisher, not per bed.
            source.bed.clear();
        }
        if kind == Kind::UnknownDevice || kind == Kind::IdentityMismatch {
            // Aggregated per bed: one spoofing event per bed however many ids are tried.
            if !source.bed.is_empty() {
                source.device.clear();
            }
        }
        Some(Occurrence::new(kind, source, detail, t_ms))
    }
}

/// How often a kind must happen (per source) within a window before it is an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    pub count: u32,
    pub window_ms: i64,
}

impl Threshold {
    pub const ONCE: Threshold = Threshold {
        count: 1,
        window_ms: 60_000,
    };
}

/// Per-kind thresholds and the aggregation settings, with defaults from the anchors.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Malformed payloads from one source: 15 a minute (EMQX flapping detection counts 15
    /// connects a minute by default).
    pub malformed: Threshold,
    /// Clock-skewed readings from one device: 15 a minute (as above).
    pub clock_skew: Threshold,
    /// Failed log-ins of one user name: 5 in 10 minutes (fail2ban's maxretry / findtime).
    pub login_failed: Threshold,
    /// An open event that has been quiet this long is closed; the next occurrence opens a new
    /// one [1 h].
    pub reopen_after_ms: i64,
    /// A high or critical event stays a technical alarm while unacknowledged and seen within
    /// this time [10 min].
    pub alarm_hold_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            malformed: Threshold {
                count: 15,
                window_ms: 60_000,
            },
            clock_skew: Threshold {
                count: 15,
                window_ms: 60_000,
            },
            login_failed: Threshold {
                count: 5,
                window_ms: 600_000,
            },
            reopen_after_ms: 3_600_000,
            alarm_hold_ms: 600_000,
        }
    }
}

impl Thresholds {
    pub fn of(&self, kind: Kind) -> Threshold {
        match kind {
            Kind::MalformedFlood => self.malformed,
            Kind::ClockSkew => self.clock_skew,
            Kind::LoginFailed => self.login_failed,
            _ => Threshold::ONCE,
        }
    }
}

/// One aggregated event, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SecurityEvent {
    pub id: i64,
    pub kind: Kind,
    pub severity: Severity,
    pub source: Source,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: u64,
    pub detail: String,
    pub ack_by: Option<String>,
    pub ack_ms: Option<i64>,
    pub ack_note: Option<String>,
}

impl SecurityEvent {
    /// For the technical alarm and notifications: `Unknown device: bed 4W/01 (12×)`.
    pub fn headline(&self) -> String {
        format!(
            "{}: {} ({}×)",
            self.kind.label(),
            self.source.describe(),
            self.count
        )
    }
}

/// Most events kept open in memory; beyond it new sources share one overflow event per kind.
const MAX_OPEN: usize = 2048;

#[derive(Debug)]
struct Agg {
    /// Stored id once written.
    id: Option<i64>,
    kind: Kind,
    severity: Severity,
    source: Source,
    /// Occurrence times below the threshold (empty once the event is open).
    pending: Vec<i64>,
    open: bool,
    first_ms: i64,
    last_ms: i64,
    count: u64,
    detail: String,
    dirty: bool,
}

/// The event that changed in a flush, and whether it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub event: SecurityEvent,
    pub new: bool,
}

/// Aggregates occurrences into events; see the module documentation.
#[derive(Debug)]
pub struct SecurityMonitor {
    thresholds: Thresholds,
    open: Mutex<HashMap<(Kind, Source), Agg>>,
}

#[derive(Debug, Error)]
pub enum SecurityError {
    #[error("security events database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("no security event {0}")]
    Unknown(i64),
    #[error("security event {0} is already acknowledged")]
    AlreadyAcknowledged(i64),
    #[error("an acknowledgement needs a note (what was found, what was done)")]
    NoteRequired,
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

impl Default for SecurityMonitor {
    fn default() -> Self {
        SecurityMonitor::new(Thresholds::default())
    }
}

impl SecurityMonitor {
    pub fn new(thresholds: Thresholds) -> SecurityMonitor {
        SecurityMonitor {
            thresholds,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Kind, Source), Agg>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record one occurrence. Never blocks on I/O.
    pub fn report(&self, o: Occurrence) {
        let th = self.thresholds.of(o.kind);
        let severity = o.severity.unwrap_or_else(|| o.kind.default_severity());
        let mut open = self.lock();
        let mut key = (o.kind, o.source.clone());
        if !open.contains_key(&key) && open.len() >= MAX_OPEN {
            // Too many sources (ids made up by the hundred): one event for the rest.
            key.1 = Source {
                peer: "(many sources)".into(),
                ..Source::default()
            };
        }
        // A quiet event is closed: the next occurrence starts a new one.
        if let Some(a) = open.get(&key) {
            if a.open && !a.dirty && o.t_ms - a.last_ms > self.thresholds.reopen_after_ms {
                open.remove(&key);
            }
        }
        let a = open.entry(key.clone()).or_insert_with(|| Agg {
            id: None,
            kind: o.kind,
            severity,
            source: key.1.clone(),
            pending: Vec::new(),
            open: false,
            first_ms: o.t_ms,
            last_ms: o.t_ms,
            count: 0,
            detail: String::new(),
            dirty: false,
        });
        a.severity = a.severity.max(severity);
        a.detail = o.detail;
        a.last_ms = a.last_ms.max(o.t_ms);
        if a.open {
            a.count += 1;
            a.dirty = true;
            return;
        }
        a.pending.retain(|&t| o.t_ms - t < th.window_ms);
        a.pending.push(o.t_ms);
        if a.pending.len() as u32 >= th.count.max(1) {
            a.open = true;
            a.first_ms = a.pending.iter().copied().min().unwrap_or(o.t_ms);
            a.count = a.pending.len() as u64;
            a.pending = Vec::new();
            a.dirty = true;
        }
    }

    /// Write new and changed events to the database (one transaction) and return them. Also
    /// drops pending runs that stayed below their threshold.
    pub fn flush(&self, conn: &Connection, now_ms: i64) -> Result<Vec<Changed>, SecurityError> {
        let mut open = self.lock();
        let windows = [
            self.thresholds.malformed.window_ms,
            self.thresholds.clock_skew.window_ms,
            self.thresholds.login_failed.window_ms,
        ];
        let longest = windows.into_iter().max().unwrap_or(60_000);
        let reopen = self.thresholds.reopen_after_ms;
        // Runs below their threshold past their window, and events quiet for so long that they
        // are closed (stored already; the next occurrence opens a new one), are forgotten.
        open.retain(|_, a| {
            if a.open {
                a.dirty || now_ms - a.last_ms <= reopen
            } else {
                now_ms - a.last_ms < longest
            }
        });
        let dirty: Vec<&mut Agg> = open.values_mut().filter(|a| a.dirty).collect();
        if dirty.is_empty() {
            return Ok(Vec::new());
        }
        let tx = conn.unchecked_transaction()?;
        let mut out = Vec::new();
        for a in dirty {
            let new = a.id.is_none();
            let id = match a.id {
                Some(id) => {
                    tx.execute(
                        "UPDATE security_events SET severity = ?1, last_ms = ?2, count = ?3,
                           detail = ?4 WHERE id = ?5",
                        params![a.severity.as_str(), a.last_ms, a.count as i64, a.detail, id],
                    )?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO security_events (kind, severity, source, bed, device, peer,
                           user, first_ms, last_ms, count, detail)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        params![
                            a.kind.as_str(),
                            a.severity.as_str(),
                            a.source.describe(),
                            a.source.bed,
                            a.source.device,
                            a.source.peer,
                            a.source.user,
                            a.first_ms,
                            a.last_ms,
                            a.count as i64,
                            a.detail
                        ],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            out.push(Changed {
                event: SecurityEvent {
                    id,
                    kind: a.kind,
                    severity: a.severity,
                    source: a.source.clone(),
                    first_ms: a.first_ms,
                    last_ms: a.last_ms,
                    count: a.count,
                    detail: a.detail.clone(),
                    ack_by: None,
                    ack_ms: None,
                    ack_note: None,
                },
                new,
            });
        }
        tx.commit()?;
        // Only once committed are the events marked clean (a failed commit retries next time).
        for a in open.values_mut().filter(|a| a.dirty) {
            if let Some(c) = out
                .iter()
                .find(|c| c.event.kind == a.kind && c.event.source == a.source)
            {
                a.id = Some(c.event.id);
                a.dirty = false;
            }
        }
        Ok(out)
    }

    /// Forget an acknowledged event: its next occurrence opens a new one.
    fn close(&self, id: i64) {
        self.lock().retain(|_, a| a.id != Some(id));
    }

    /// Technical alarm conditions now: for every open, unacknowledged event of severity high or
    /// critical seen within [`Thresholds::alarm_hold_ms`], its bed (`None`: the station) and the
    /// text to show. One per bed (the most severe, then the latest).
    pub fn alarm_conditions(&self, now_ms: i64) -> Vec<(Option<BedId>, String)> {
        let open = self.lock();
        let mut best: HashMap<String, &Agg> = HashMap::new();
        for a in open.values() {
            if !(a.open
                && a.severity.alarms()
                && now_ms - a.last_ms < self.thresholds.alarm_hold_ms)
            {
                continue;
            }
            let slot = best.entry(a.source.bed.clone()).or_insert(a);
            if (a.severity, a.last_ms) > (slot.severity, slot.last_ms) {
                *slot = a;
            }
        }
        let mut out: Vec<(Option<BedId>, String)> = best
            .into_iter()
            .map(|(bed, a)| {
                let bed = BedId::parse(&bed).ok();
                let text = format!(
                    "SECURITY: {} ({}×): {}",
                    a.kind.label(),
                    a.count,
                    if bed.is_some() {
                        "readings of this bed may be forged; IT is told"
                    } else {
                        "see the Security screen"
                    }
                );
                (bed, text)
            })
            .collect();
        out.sort();
        out
    }
}

/// Which events [`list`] returns; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
// Every field may be left out (`serde(default)`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
pub struct SecurityFilter {
    pub kind: Option<String>,
    /// This severity or worse.
    pub min_severity: Option<String>,
    /// Only unacknowledged events.
    #[cfg_attr(feature = "ts", ts(as = "Option<_>", optional))]
    pub open_only: bool,
    /// Seen at or after this time.
    pub since_ms: Option<i64>,
    /// The newest N (by last seen).
    pub limit: Option<usize>,
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecurityEvent> {
    let kind: String = r.get(1)?;
    let sev: String = r.get(2)?;
    let bad = |what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown security event {what} {v:?}").into(),
        )
    };
    Ok(SecurityEvent {
        id: r.get(0)?,
        kind: Kind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        severity: Severity::parse(&sev).ok_or_else(|| bad("severity", &sev))?,
        source: Source {
            bed: r.get(3)?,
            device: r.get(4)?,
            peer: r.get(5)?,
            user: r.get(6)?,
        },
        first_ms: r.get(7)?,
        last_ms: r.get(8)?,
        count: r.get::<_, i64>(9)?.max(0) as u64,
        detail: r.get(10)?,
        ack_by: r.get(11)?,
        ack_ms: r.get(12)?,
        ack_note: r.get(13)?,
    })
}

const COLUMNS: &str = "id, kind, severity, bed, device, peer, user, first_ms, last_ms, count, \
                       detail, ack_by, ack_ms, ack_note";

/// Stored events matching `filter`, most recently seen first.
pub fn list(
    conn: &Connection,
    filter: &SecurityFilter,
) -> Result<Vec<SecurityEvent>, SecurityError> {
    let min = filter
        .min_severity
        .as_deref()
        .and_then(Severity::parse)
        .unwrap_or(Severity::Info);
    let sevs: Vec<&str> = Severity::ALL
        .iter()
        .filter(|s| **s >= min)
        .map(|s| s.as_str())
        .collect();
    let limit = filter.limit.map_or(-1, |l| l.min(100_000) as i64);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM security_events
         WHERE (?1 IS NULL OR kind = ?1) AND (?2 = 0 OR ack_ms IS NULL)
           AND (?3 IS NULL OR last_ms >= ?3) AND instr(?4, ',' || severity || ',') > 0
         ORDER BY last_ms DESC, id DESC LIMIT ?5"
    ))?;
    let kind = filter.kind.as_deref().filter(|k| !k.is_empty());
    let rows = stmt
        .query_map(
            params![
                kind,
                filter.open_only,
                filter.since_ms,
                format!(",{},", sevs.join(",")),
                limit
            ],
            event_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// One stored event.
pub fn get(conn: &Connection, id: i64) -> Result<Option<SecurityEvent>, SecurityError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM security_events WHERE id = ?1"),
            [id],
            event_from_row,
        )
        .optional()?)
}

/// IT acknowledges an event with a note: stored with the event and audited in one transaction;
/// the monitor forgets it (its next occurrence is a new event) and its technical alarm ends.
pub fn acknowledge(
    conn: &Connection,
    monitor: Option<&SecurityMonitor>,
    id: i64,
    user: &str,
    note: &str,
    now_ms: i64,
) -> Result<SecurityEvent, SecurityError> {
    let note = note.trim();
    if note.is_empty() {
        return Err(SecurityError::NoteRequired);
    }
    let note = clip(note, 1000);
    let e = crate::store::in_tx(conn, |conn| {
        let e = get(conn, id)?.ok_or(SecurityError::Unknown(id))?;
        if e.ack_ms.is_some() {
            return Err(SecurityError::AlreadyAcknowledged(id));
        }
        conn.execute(
            "UPDATE security_events SET ack_by = ?1, ack_ms = ?2, ack_note = ?3 WHERE id = ?4",
            params![user, now_ms, note, id],
        )?;
        Audit::append(
            conn,
            user,
            actions::SECURITY_ACK,
            &format!("security_event {id}"),
            &format!("{}; note: {note}", e.headline()),
            now_ms,
        )?;
        get(conn, id)?.ok_or(SecurityError::Unknown(id))
    })?;
    if let Some(m) = monitor {
        m.close(id);
    }
    Ok(e)
}

/// Export the events matching `filter` as CSV (RFC 4180, formula-safe like the audit export),
/// recording the export in the audit trail first. Returns the number of events written.
pub fn export_csv<W: Write>(
    conn: &Connection,
    filter: &SecurityFilter,
    actor: &str,
    now_ms: i64,
    mut out: W,
) -> Result<usize, SecurityError> {
    let events = list(conn, filter)?;
    Audit::append(
        conn,
        actor,
        actions::SECURITY_EXPORT,
        "security_events",
        &format!("csv, {} events", events.len()),
        now_ms,
    )?;
    out.write_all(
        b"id,kind,severity,bed,device,peer,user,first_utc,last_utc,count,detail,ack_by,ack_utc,ack_note\r\n",
    )?;
    for e in &events {
        let cells = [
            e.id.to_string(),
            e.kind.as_str().to_string(),
            e.severity.as_str().to_string(),
            crate::audit::csv_text(&e.source.bed),
            crate::audit::csv_text(&e.source.device),
            crate::audit::csv_text(&e.source.peer),
            crate::audit::csv_text(&e.source.user),
            format_time_utc(e.first_ms),
            format_time_utc(e.last_ms),
            e.count.to_string(),
            crate::audit::csv_text(&e.detail),
            crate::audit::csv_text(e.ack_by.as_deref().unwrap_or("")),
            e.ack_ms.map(format_time_utc).unwrap_or_default(),
            crate::audit::csv_text(e.ack_note.as_deref().unwrap_or("")),
        ];
        out.write_all(cells.join(",").as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    out.flush()?;
    Ok(events.len())
}

/// Open, unacknowledged events by severity (for the header badge of the Security screen).
pub fn open_counts(conn: &Connection) -> Result<Vec<(Severity, u64)>, SecurityError> {
    let mut stmt = conn.prepare(
        "SELECT severity, COUNT(*) FROM security_events WHERE ack_ms IS NULL GROUP BY severity",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out: Vec<(Severity, u64)> = rows
        .into_iter()
        .filter_map(|(s, n)| Severity::parse(&s).map(|s| (s, n.max(0) as u64)))
        .collect();
    out.sort();
    Ok(out)
}

/// Report `o` to `monitor` if there is one (sources that run with or without a station).
pub fn report_to(monitor: Option<&SecurityMonitor>, o: Occurrence) {
    if let Some(m) = monitor {
        m.report(o);
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<SecurityMonitor>();
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_760_000_000_000;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::store::open(&dir.path().join("s.db")).expect("open");
        (dir, conn)
    }

    fn spoof(bed: &str, device: &str, t: i64) -> Occurrence {
        let topic = format!("vigil/v1/{bed}/{device}/vitals");
        Occurrence::from_reject(&DecodeError::UnknownDevice(device.into()), &topic, "", t)
            .expect("a security event")
    }

    #[test]
    fn a_flood_is_one_event_that_grows() {
        let (_d, conn) = db();
        let m = SecurityMonitor::default();
        // 1000 spoofed messages on bed 4W/01 under 50 made-up device ids.
        for i in 0..1000 {
            m.report(spoof("4W/01", &format!("evil-{}", i % 50), T0 + i));
        }
        let ch = m.flush(&conn, T0 + 1000).expect("flush");
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert!(ch[0].new);
        let e = &ch[0].event;
        assert_eq!(
            (e.kind, e.severity, e.count),
            (Kind::UnknownDevice, Severity::High, 1000)
        );
        assert_eq!(e.source.bed, "4W/01");
        assert_eq!((e.first_ms, e.last_ms), (T0, T0 + 999));
        // More of it: the same event, updated, not a new one.
        m.report(spoof("4W/01", "evil-x", T0 + 5000));
        let ch = m.flush(&conn, T0 + 5000).expect("flush");
        assert_eq!((ch.len(), ch[0].new, ch[0].event.count), (1, false, 1001));
        assert!(
            m.flush(&conn, T0 + 6000).expect("flush").is_empty(),
            "nothing changed"
        );
        let stored = list(&conn, &SecurityFilter::default()).expect("list");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].count, 1001);
        // It is a technical alarm on that bed.
        let alarms = m.alarm_conditions(T0 + 6000);
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].0, Some(BedId::new("4W", "01")));
        assert!(alarms[0].1.contains("may be forged"), "{}", alarms[0].1);
        // ... until it has been quiet for the hold time.
        assert!(m.alarm_conditions(T0 + 5000 + 600_000).is_empty());
    }

    #[test]
    fn thresholds_hold_back_what_is_not_yet_suspicious() {
        let (_d, conn) = db();
        let m = SecurityMonitor::default();
        let bad = DecodeError::Json("x".into());
        let topic = "vigil/v1/4W/02/mon-2/vitals";
        // 14 malformed payloads in a minute: below EMQX's 15, no event.
        for i in 0..14 {
            m.report(Occurrence::from_reject(&bad, topic, "", T0 + i * 1000).expect("occ"));
        }
        assert!(m.flush(&conn, T0 + 14_000).expect("flush").is_empty());
        // Spread out over more than a minute, they never reach it.
        m.report(Occurrence::from_reject(&bad, topic, "", T0 + 70_000).expect("occ"));
        assert!(m.flush(&conn, T0 + 70_000).expect("flush").is_empty());
        // 15 within a minute: one medium event counting all 15, no alarm.
        for i in 0..15 {
            m.report(Occurrence::from_reject(&bad, topic, "", T0 + 80_000 + i).expect("occ"));
        }
        let ch = m.flush(&conn, T0 + 81_000).expect("flush");
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].event.kind, Kind::MalformedFlood);
        assert!(ch[0].event.count >= 15);
        assert_eq!(ch[0].event.severity, Severity::Medium);
        assert!(m.alarm_conditions(T0 + 81_000).is_empty());
        // Data-quality refusals of a known device are not security events.
        assert!(Occurrence::from_reject(&DecodeError::UnknownCode(1), topic, "", T0).is_none());
    }

    #[test]
    fn acknowledge_with_a_note_closes_the_event_and_is_audited() {
        let (_d, conn) = db();
        let m = SecurityMonitor::default();
        m.report(spoof("4W/03", "evil", T0));
        let id = m.flush(&conn, T0).expect("flush")[0].event.id;
        assert!(matches!(
            acknowledge(&conn, Some(&m), id, "ada", "  ", T0 + 1),
            Err(SecurityError::NoteRequired)
        ));
        let e =
            acknowledge(&conn, Some(&m), id, "ada", "rogue laptop unplugged", T0 + 2).expect("ack");
        assert_eq!(e.ack_by.as_deref(), Some("ada"));
        assert!(m.alarm_conditions(T0 + 3).is_empty(), "the alarm ends");
        assert!(matches!(
            acknowledge(&conn, Some(&m), id, "ada", "again", T0 + 3),
            Err(SecurityError::AlreadyAcknowledged(_))
        ));
        let last = Audit::list(
            &conn,
            &crate::audit::AuditFilter {
                limit: Some(1),
                ..Default::default()
            },
        )
        .expect("audit");
        assert_eq!(last[0].action, actions::SECURITY_ACK);
        assert!(last[0].detail.contains("rogue laptop unplugged"));
        // The next attempt is a new event.
        m.report(spoof("4W/03", "evil", T0 + 10));
        let ch = m.flush(&conn, T0 + 10).expect("flush");
        assert!(ch[0].new && ch[0].event.id != id);
        let open = list(
            &conn,
            &SecurityFilter {
                open_only: true,
                ..Default::default()
            },
        )
        .expect("list");
        assert_eq!(open.len(), 1);
        let mut csv = Vec::new();
        assert_eq!(
            export_csv(&conn, &SecurityFilter::default(), "ada", T0 + 20, &mut csv).expect("csv"),
            2
        );
        let text = String::from_utf8(csv).expect("utf8");
        assert!(text.starts_with("id,kind,severity,bed"), "{text}");
        assert!(text.contains("rogue laptop unplugged"));
    }
}
