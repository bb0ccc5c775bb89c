//! The Security screen for hospital IT: security events (filter, acknowledge with a note,
//! export). Plain functions over [`AuthState`]; the Tauri wrappers are in `commands/mod.rs`.
//! Reading and acknowledging need `view_audit_log` (security events belong to the audit
//! controls), exporting needs `export_audit_log`; acknowledgements and exports are audited.

use serde::Serialize;
use vigil_core::auth::Permission;
use vigil_core::security::{self, SecurityError, SecurityEvent, SecurityFilter, SecurityMonitor};

use crate::error::ApiError;
use crate::session::{require, AuthState};

/// Events listed when the window gives no limit.
pub const DEFAULT_LIMIT: usize = 500;

fn security_error(e: SecurityError) -> ApiError {
    match e {
        SecurityError::Unknown(_) => ApiError::new("unknown_event", e.to_string()),
        SecurityError::AlreadyAcknowledged(_) => {
            ApiError::new("already_acknowledged", e.to_string())
        }
        SecurityError::NoteRequired => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// What the Security screen shows.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct SecurityOut {
    pub events: Vec<SecurityEvent>,
    /// Unacknowledged events by severity: `[["high", 2], ...]`.
    pub open: Vec<(String, u64)>,
    pub kinds: Vec<&'static str>,
    pub severities: Vec<&'static str>,
}

fn check_filter(f: &SecurityFilter) -> Result<(), ApiError> {
    if let Some(k) = f.kind.as_deref().filter(|k| !k.is_empty()) {
        if security::Kind::parse(k).is_none() {
            return Err(ApiError::bad_request(format!("unknown event kind {k:?}")));
        }
    }
    if let Some(s) = f.min_severity.as_deref().filter(|s| !s.is_empty()) {
        if security::Severity::parse(s).is_none() {
            return Err(ApiError::bad_request(format!("unknown severity {s:?}")));
        }
    }
    Ok(())
}

/// Events matching the filter, most recently seen first (the newest 500 unless a limit is given).
pub fn security_events(st: &AuthState, filter: &SecurityFilter) -> Result<SecurityOut, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, _) = require(&mut g, Permission::ViewAuditLog, now)?;
    check_filter(filter)?;
    let mut f = filter.clone();
    f.limit = Some(f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 10_000));
    let conn = svc.connection();
    Ok(SecurityOut {
        events: security::list(conn, &f).map_err(security_error)?,
        open: security::open_counts(conn)
            .map_err(security_error)?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect(),
        kinds: security::Kind::ALL.iter().map(|k| k.as_str()).collect(),
        severities: security::Severity::ALL.iter().map(|s| s.as_str()).collect(),
    })
}

/// Acknowledge an event with a note (what was found, what was done); audited. Its technical
/// alarm ends and its next occurrence opens a new event.
pub fn security_acknowledge(
    st: &AuthState,
    monitor: Option<&SecurityMonitor>,
    id: i64,
    note: &str,
) -> Result<SecurityEvent, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ViewAuditLog, now)?;
    let user = s.user().to_string();
    security::acknowledge(svc.connection(), monitor, id, &user, note, now).map_err(security_error)
}

/// The events matching the filter as CSV (the export is audited first).
pub fn security_export_csv(st: &AuthState, filter: &SecurityFilter) -> Result<String, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ExportAuditLog, now)?;
    check_filter(filter)?;
    let user = s.user().to_string();
    let mut out = Vec::new();
    security::export_csv(svc.connection(), filter, &user, now, &mut out).map_err(security_error)?;
    String::from_utf8(out).map_err(ApiError::internal)
}
