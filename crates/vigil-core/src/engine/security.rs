//! Security monitoring (docs/security.md): the security loop (events stored, forwarded to
//! syslog and kept in step with the SECURITY technical alarms; the device registry read again),
//! audit rounds and the publication of the audit trail's head, certificate expiry.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Level;

use super::alarms::emit_alarm_events;
use super::sync::audit_head_topic;
use super::{lock, SecurityOptions, Shared};
use crate::config::BrokerSettings;
use crate::ingest::Registry;
use crate::security::{Kind, Occurrence, Severity, Source};
use crate::store;
use crate::syslog::SyslogMessage;
use crate::telemetry::BedId;

/// How often the device registry is read again from the database, so that a device IT
/// registered or removed with `vigilctl device` while the station runs takes effect without a
/// restart (the window's own changes apply at once, `EngineHandle::set_registry`).
const REGISTRY_RELOAD: Duration = Duration::from_secs(5);

/// Every second: write new and changed security events, forward them to syslog, keep the
/// SECURITY technical alarms in step with the open high-severity events; every
/// `head_every`: verify the audit trail and publish its head; daily: certificate expiry.
/// Every `REGISTRY_RELOAD`: the device registry from the database.
pub(super) async fn security_loop(
    shared: Arc<Shared>,
    opts: SecurityOptions,
    certs: Vec<(String, PathBuf)>,
    mut stop: watch::Receiver<bool>,
) {
    let db = shared.db_path.clone();
    let failed = (
        "security events cannot be stored",
        "security loop start failed",
    );
    let Some(conn) = blocking(move || store::open(&db), Level::ERROR, failed).await else {
        return;
    };
    let conn = Arc::new(Mutex::new(conn));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first audit round soon after start (the retained head has arrived by then).
    let mut next_head = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut next_certs = tokio::time::Instant::now();
    let mut next_registry = tokio::time::Instant::now() + REGISTRY_RELOAD;
    let mut alarmed: std::collections::BTreeSet<Option<BedId>> = Default::default();
    let mut forwarded: std::collections::HashMap<i64, i64> = Default::default();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = shared.clock.now_ms();
        if tokio::time::Instant::now() >= next_certs {
            next_certs += Duration::from_secs(24 * 3600);
            for o in check_certificates(&certs, opts.cert_warn_days, now) {
                shared.security.report(o);
            }
        }
        if tokio::time::Instant::now() >= next_head {
            next_head = tokio::time::Instant::now() + opts.head_every.max(Duration::from_secs(1));
            publish_head(&shared).await;
        }
        if tokio::time::Instant::now() >= next_registry {
            next_registry = tokio::time::Instant::now() + REGISTRY_RELOAD;
            reload_registry(&shared, &conn).await;
        }
        // Other stations' actions applied here, into the audit trail.
        let pending = std::mem::take(&mut *lock(&shared.remote_audit));
        if !pending.is_empty() {
            let c = Arc::clone(&conn);
            let failed = tokio::task::spawn_blocking(move || {
                let conn = lock(&c);
                let mut failed = Vec::new();
                for a in pending {
                    if let Err(e) = crate::audit::Audit::append(
                        &conn, &a.actor, a.action, &a.target, &a.detail, a.t_ms,
                    ) {
                        tracing::error!(error = %e, "remote station action not audited yet; retrying");
                        failed.push(a);
                    }
                }
                failed
            })
            .await
            .unwrap_or_default();
            if !failed.is_empty() {
                let mut q = lock(&shared.remote_audit);
                let later = std::mem::take(&mut *q);
                *q = failed;
                q.extend(later);
            }
        }
        // Write what changed.
        let (m, c) = (Arc::clone(&shared.security), Arc::clone(&conn));
        let failed = (
            "writing security events failed; retrying",
            "security flush task failed",
        );
        let changed = blocking(move || m.flush(&lock(&c), now), Level::ERROR, failed)
            .await
            .unwrap_or_default();
        for ch in changed {
            let e = &ch.event;
            if ch.new {
                tracing::warn!(
                    target: "vigil::security",
                    id = e.id, kind = e.kind.as_str(), severity = e.severity.as_str(),
                    source = %e.source.describe(), count = e.count,
                    "SECURITY EVENT {}: {}", e.headline(), e.detail
                );
            }
            let Some(sl) = &shared.syslog else {
                continue;
            };
            // New events at once; a growing one at most once a minute.
            let last = forwarded.get(&e.id).copied();
            if last.is_none_or(|t| now - t >= 60_000) {
                forwarded.insert(e.id, now);
                sl.send(event_message(e, if ch.new { "new" } else { "update" }, now));
            }
        }
        forwarded.retain(|_, t| now - *t < 3_600_000);
        // Technical alarms.
        let conds = shared.security.alarm_conditions(now);
        let events = {
            let mut st = lock(&shared.state);
            let mut events = Vec::new();
            let mut now_alarmed = std::collections::BTreeSet::new();
            for (bed, text) in &conds {
                events.extend(st.alarms.security(bed.as_ref(), true, text, now));
                now_alarmed.insert(bed.clone());
            }
            for bed in alarmed.difference(&now_alarmed) {
                events.extend(st.alarms.security(bed.as_ref(), false, "", now));
            }
            alarmed = now_alarmed;
            events
        };
        emit_alarm_events(&shared, events, now).await;
    }
}

/// Read the registry again; replace the one in force if the database says otherwise.
async fn reload_registry(shared: &Arc<Shared>, conn: &Arc<Mutex<rusqlite::Connection>>) {
    let c = Arc::clone(conn);
    let failed = (
        "device registry not read again",
        "device registry reload failed",
    );
    if let Some(stored) = blocking(move || Registry::load(&lock(&c)), Level::WARN, failed).await {
        let mut reg = lock(&shared.registry);
        if *reg != stored {
            tracing::info!(
                devices = stored.len(),
                "device registry changed outside this window: reloaded"
            );
            *reg = stored;
        }
    }
}

/// `work` on a blocking thread. When it fails, or the task does, that is logged at `level` as
/// `failed` says (the work's failure, the task's) and the answer is None.
pub(super) async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    level: Level,
    failed: (&str, &str),
) -> Option<T>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (what, error) = match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => return Some(v),
        Ok(Err(e)) => (failed.0, e.to_string()),
        Err(e) => (failed.1, e.to_string()),
    };
    if level == Level::ERROR {
        tracing::error!(error = %error, "{what}");
    } else {
        tracing::warn!(error = %error, "{what}");
    }
    None
}

/// A security event as a syslog message (facility security/authorization).
fn event_message(e: &crate::security::SecurityEvent, state: &str, now: i64) -> SyslogMessage {
    SyslogMessage {
        facility: crate::syslog::FACILITY_SECURITY,
        severity: e.severity.syslog(),
        msgid: "SECEVENT",
        t_ms: now,
        params: vec![
            ("id", e.id.to_string()),
            ("state", state.to_string()),
            ("kind", e.kind.as_str().to_string()),
            ("severity", e.severity.as_str().to_string()),
            ("count", e.count.to_string()),
            ("first", crate::audit::format_time_utc(e.first_ms)),
            ("last", crate::audit::format_time_utc(e.last_ms)),
            ("bed", e.source.bed.clone()),
            ("device", e.source.device.clone()),
            ("peer", e.source.peer.clone()),
            ("user", e.source.user.clone()),
        ],
        text: format!("{} - {}", e.headline(), e.detail),
    }
}

/// Verify the trail, compare it with the last published head, publish the new head (retained
/// on the broker, and to syslog).
async fn publish_head(shared: &Arc<Shared>) {
    let db = shared.db_path.clone();
    let station = shared.alarm_io.station.clone();
    let published = lock(&shared.published_head).clone();
    let now = shared.clock.now_ms();
    let round = move || audit_round(&db, &station, published.as_ref(), now);
    let failed = ("audit round failed", "audit round task failed");
    let Some((head, found)) = blocking(round, Level::WARN, failed).await else {
        return;
    };
    for o in found {
        tracing::error!(target: "vigil::security", "{}", o.detail);
        shared.security.report(o);
    }
    shared.alarm_io.publish_json(
        audit_head_topic(&head.station),
        true,
        &head,
        (
            "cannot encode the audit head",
            "cannot publish the audit head",
        ),
    );
    if let Some(sl) = &shared.syslog {
        sl.send(SyslogMessage {
            facility: crate::syslog::FACILITY_AUDIT,
            severity: 6,
            msgid: "AUDITHEAD",
            t_ms: now,
            params: vec![
                ("station", head.station.clone()),
                ("id", head.id.to_string()),
                ("hash", head.hash.clone()),
                ("mac", head.mac.clone().unwrap_or_default()),
            ],
            text: format!("audit trail head {} {}", head.id, head.hash),
        });
    }
    let mut p = lock(&shared.published_head);
    if p.as_ref().is_none_or(|old| old.id <= head.id) {
        *p = Some(head);
    }
}

/// One audit round: verify the whole trail, compare it with the last published head, and
/// return the new head to publish (with what went wrong, as occurrences).
fn audit_round(
    db: &std::path::Path,
    station: &str,
    published: Option<&crate::audit::AuditHead>,
    now_ms: i64,
) -> Result<(crate::audit::AuditHead, Vec<Occurrence>), String> {
    use crate::audit::{Audit, HeadCheck};
    let conn = store::open_read_only(db).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let r = Audit::verify(&conn).map_err(|e| e.to_string())?;
    if let Some(b) = &r.first_break {
        found.push(Occurrence::new(
            Kind::AuditVerifyFailed,
            Source::default(),
            format!("audit trail BROKEN at {b}"),
            now_ms,
        ));
    }
    for t in &r.trigger_findings {
        found.push(Occurrence::new(
            Kind::AuditVerifyFailed,
            Source::default(),
            format!("audit trail protection: {t}"),
            now_ms,
        ));
    }
    if let Some(p) = published {
        let c = Audit::check_head(&conn, p).map_err(|e| e.to_string())?;
        if c != HeadCheck::Extends {
            found.push(Occurrence::new(
                Kind::AuditTruncated,
                Source::default(),
                format!("published head {}: {c}", p.short()),
                now_ms,
            ));
        }
    }
    let head = Audit::head(&conn, station, now_ms).map_err(|e| e.to_string())?;
    Ok((head, found))
}

/// The retained audit head of this station came back from the broker (at start, or our own
/// publication): the trail must still hold it.
pub(super) async fn published_head(shared: &Shared, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    let head: crate::audit::AuditHead = match serde_json::from_slice(payload) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable audit head on the broker ignored");
            return;
        }
    };
    if head.station != shared.alarm_io.station {
        return;
    }
    let db = shared.db_path.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let conn = store::open_read_only(&db).map_err(|e| e.to_string())?;
        let key = crate::keys::get(&db).map_err(|e| e.to_string())?;
        if let Some(k) = &key {
            if !head.is_signed_by(k) {
                return Ok((head, None));
            }
        }
        let c = crate::audit::Audit::check_head(&conn, &head).map_err(|e| e.to_string())?;
        Ok::<_, String>((head, Some(c)))
    })
    .await;
    let now = shared.clock.now_ms();
    match checked {
        Ok(Ok((head, Some(crate::audit::HeadCheck::Extends)))) => {
            let mut p = lock(&shared.published_head);
            if p.as_ref().is_none_or(|old| old.id <= head.id) {
                *p = Some(head);
            }
        }
        Ok(Ok((head, Some(finding)))) => {
            tracing::error!(head = %head.short(), %finding, "AUDIT TRAIL does not hold its published head");
            shared.security.report(Occurrence::new(
                Kind::AuditTruncated,
                Source::default(),
                format!("published head {}: {finding}", head.short()),
                now,
            ));
        }
        Ok(Ok((head, None))) => {
            tracing::error!(head = %head.short(), "an audit head on the broker is not signed by this station's key");
            shared.security.report(
                Occurrence::new(
                    Kind::AuditVerifyFailed,
                    Source::default(),
                    format!(
                        "a forged audit head {} was found on the broker (its MAC is not this \
                         station's): someone else writes this station's topic",
                        head.short()
                    ),
                    now,
                )
                .severity(Severity::High),
            );
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot check the published audit head"),
        Err(e) => tracing::warn!(error = %e, "audit head check failed"),
    }
}

/// The TLS certificates the engine relies on, to warn before they expire.
pub(super) fn cert_files(broker: &BrokerSettings) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Some(p) = &broker.ca_file {
        out.push(("broker CA bundle".to_string(), p.clone()));
    }
    if let Some(p) = &broker.cert_file {
        out.push(("station client certificate".to_string(), p.clone()));
    }
    out
}

/// Certificates in `files` expiring within `warn_days` (or expired), as occurrences.
pub fn check_certificates(
    files: &[(String, PathBuf)],
    warn_days: u64,
    now_ms: i64,
) -> Vec<Occurrence> {
    let mut out = Vec::new();
    for (what, path) in files {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        for item in x509_parser::pem::Pem::iter_from_buffer(&pem).flatten() {
            let Ok(cert) = item.parse_x509() else {
                continue;
            };
            let not_after_ms = cert.validity().not_after.timestamp().saturating_mul(1000);
            let left_ms = not_after_ms - now_ms;
            let days = left_ms.div_euclid(86_400_000);
            if left_ms > (warn_days as i64).saturating_mul(86_400_000) {
                continue;
            }
            let severity = if days < 7 {
                Severity::High
            } else {
                Severity::Medium
            };
            let when = crate::audit::format_time_utc(not_after_ms);
            let detail = if left_ms <= 0 {
                format!(
                    "{what} {} ({}) EXPIRED at {when}",
                    path.display(),
                    cert.subject()
                )
            } else {
                format!(
                    "{what} {} ({}) expires at {when}, in {days} days",
                    path.display(),
                    cert.subject()
                )
            };
            out.push(
                Occurrence::new(
                    Kind::CertExpiry,
                    Source::peer(&path.display().to_string()),
                    detail,
                    now_ms,
                )
                .severity(severity),
            );
        }
    }
    out
}
