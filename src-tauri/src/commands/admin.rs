//! Administration in the window: users and the audit trail. Every function starts with
//! [`require`] (manage_users, view_audit_log or export_audit_log); the service checks again.

use serde::Serialize;
use vigil_core::audit::{Audit, AuditEntry, AuditFilter};
use vigil_core::auth::{Actor, Permission, Role, UserInfo};

use crate::error::ApiError;
use crate::session::{self, require, AuthState};

/// Newest entries listed when the window gives no limit.
pub const DEFAULT_AUDIT_LIMIT: usize = 1000;
/// Most entries listed at once (an export has no limit).
pub const MAX_AUDIT_LIMIT: usize = 10_000;

fn role(name: &str) -> Result<Role, ApiError> {
    name.parse::<Role>()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

pub fn list_users(st: &AuthState) -> Result<Vec<UserInfo>, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    Ok(svc.list_users(&Actor::Session(s), now)?)
}

pub fn create_user(
    st: &AuthState,
    name: &str,
    role_name: &str,
    password: &str,
) -> Result<UserInfo, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    let role = role(role_name)?;
    Ok(svc.create_user(&Actor::Session(s), name.trim(), role, password, now)?)
}

pub fn disable_user(st: &AuthState, name: &str) -> Result<bool, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    Ok(svc.disable_user(&Actor::Session(s), name, now)?)
}

pub fn enable_user(st: &AuthState, name: &str) -> Result<bool, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    Ok(svc.enable_user(&Actor::Session(s), name, now)?)
}

/// Reset a password: returns the generated temporary password, shown once to the admin.
pub fn reset_password(st: &AuthState, name: &str) -> Result<String, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    Ok(svc.reset_password(&Actor::Session(s), name, None, now)?)
}

/// Clear a lockout; returns whether the account was locked out.
pub fn unlock_user(st: &AuthState, name: &str) -> Result<bool, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    Ok(svc.unlock_user(&Actor::Session(s), name, now)?)
}

pub fn set_role(st: &AuthState, name: &str, role_name: &str) -> Result<bool, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ManageUsers, now)?;
    let role = role(role_name)?;
    Ok(svc.set_role(&Actor::Session(s), name, role, now)?)
}

/// The audit viewer's filter as the window sends it made exact: blanks around the actor and
/// the action trimmed and an empty one meaning "any", the time range checked, `limit` the
/// number of newest entries to list (none: all).
fn exact(query: &AuditFilter, limit: Option<usize>) -> Result<AuditFilter, ApiError> {
    let text = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let (Some(f), Some(t)) = (query.from_ms, query.to_ms) {
        if t <= f {
            return Err(ApiError::bad_request(
                "the time range ends before it starts",
            ));
        }
    }
    Ok(AuditFilter {
        actor: text(&query.actor),
        action: text(&query.action),
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        limit,
    })
}

/// Entries matching the filter, oldest first (the newest `limit`, default 1000, at most 10 000).
pub fn audit_list(st: &AuthState, query: &AuditFilter) -> Result<Vec<AuditEntry>, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, _) = require(&mut g, Permission::ViewAuditLog, now)?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_AUDIT_LIMIT)
        .clamp(1, MAX_AUDIT_LIMIT);
    let filter = exact(query, Some(limit))?;
    Ok(Audit::list(svc.connection(), &filter)?)
}

/// The entries matching the filter as CSV text (no limit unless given). The export itself is
/// recorded in the trail first (`audit_export`).
pub fn audit_export_csv(st: &AuthState, query: &AuditFilter) -> Result<String, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ExportAuditLog, now)?;
    let filter = exact(query, query.limit)?;
    let mut out = Vec::new();
    Audit::export_csv(svc.connection(), &filter, s.user(), now, &mut out)?;
    String::from_utf8(out).map_err(ApiError::internal)
}

/// What "Verify chain" shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct VerifyOut {
    pub intact: bool,
    pub triggers_present: bool,
    pub entries: u64,
    pub last_id: Option<i64>,
    pub head_hash: String,
    /// The first broken link, described for people.
    pub first_break: Option<String>,
    /// One line for the window.
    pub summary: String,
}

pub fn audit_verify(st: &AuthState) -> Result<VerifyOut, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ViewAuditLog, now)?;
    let r = vigil_core::usecase::verify_trail(&g.svc, &proof, now)?;
    Ok(VerifyOut {
        intact: r.trustworthy(),
        triggers_present: r.triggers_present,
        entries: r.entries,
        last_id: r.last_id,
        summary: r.summary(),
        first_break: r.first_break.as_ref().map(|b| b.to_string()),
        head_hash: r.head_hash,
    })
}
