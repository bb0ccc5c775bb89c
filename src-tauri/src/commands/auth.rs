//! Log-in, lock, unlock, password change, break-glass: the window's own session.
//! Plain functions over [`AuthState`] (the Tauri wrappers are in `commands/mod.rs`).

use serde::Serialize;
use vigil_core::auth::{AuthError, AuthService, Permission, Role, ScreenState, Session};

use crate::error::ApiError;
use crate::session::{require, require_session, AuthState};

/// What the window shows and offers. Computed in Rust: the UI decides nothing about rights,
/// it only hides what `permissions` does not list (and the commands refuse it anyway).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct AuthStateOut {
    /// No user exists: the window asks for the first administrator.
    pub first_run: bool,
    /// The user's own role.
    pub role: Option<Role>,
    /// The session as the screen shows it ([`AuthService::screen_state`]): whose it is, the
    /// role rights are checked against, locked, password change or emergency reason pending,
    /// patient identity masked (`masked`), actions offered.
    #[serde(flatten)]
    pub screen: ScreenState,
    /// Alarms are shown and sounded: always true, whatever the login state.
    pub alarms_shown: bool,
    /// The permissions usable right now (`Permission::as_str`).
    pub permissions: Vec<Permission>,
    /// Inactivity after which the session locks.
    pub idle_lock_ms: i64,
    /// When the session will lock if nothing happens (none when locked or logged out).
    pub idle_lock_at_ms: Option<i64>,
    pub now_ms: i64,
}

/// The current state; open to everyone (no session needed). Also records an idle lock that is
/// due and forgets a session that has ended.
pub fn auth_state(st: &AuthState) -> Result<AuthStateOut, ApiError> {
    st.tick();
    let now = st.now();
    let g = st.lock();
    let svc = &g.svc;
    let session = g.session.as_ref();
    let screen = svc.screen_state(session, now);
    let live = screen.user.is_some();
    let permissions = Permission::ALL
        .into_iter()
        .filter(|&p| svc.authorize(session, p, now).is_ok())
        .collect();
    let idle_lock_ms = svc.config().idle_lock_ms;
    Ok(AuthStateOut {
        first_run: svc.needs_first_admin()?,
        role: session.filter(|_| live).map(|s| s.role()),
        alarms_shown: screen.alarms_shown_and_sounding(),
        permissions,
        idle_lock_ms,
        idle_lock_at_ms: session
            .filter(|_| live && !screen.locked)
            .map(|s| s.last_activity_ms().saturating_add(idle_lock_ms)),
        now_ms: now,
        screen,
    })
}

/// First run only (no user exists): create the first admin and log them in.
pub fn create_first_admin(
    st: &AuthState,
    name: &str,
    password: &str,
) -> Result<AuthStateOut, ApiError> {
    {
        let now = st.now();
        let mut g = st.lock();
        g.svc.create_first_admin(name, password, now)?;
        let s = g.svc.login(name, password, now)?;
        if let Some(old) = g.session.replace(s) {
            g.svc.logout(old, now)?;
        }
    }
    auth_state(st)
}

/// Log in. A session already open at this station (e.g. locked by a colleague who walked away)
/// is logged out once the new log-in has succeeded; a failed attempt leaves it as it was.
pub fn login(st: &AuthState, name: &str, password: &str) -> Result<AuthStateOut, ApiError> {
    {
        let now = st.now();
        let mut g = st.lock();
        let s = g.svc.login(name.trim(), password, now)?;
        if let Some(old) = g.session.replace(s) {
            g.svc.logout(old, now)?;
        }
    }
    auth_state(st)
}

/// Log out (from any state, locked included). Needs a session.
pub fn logout(st: &AuthState) -> Result<AuthStateOut, ApiError> {
    {
        let now = st.now();
        let mut g = st.lock();
        require_session(&mut g)?;
        if let Some(s) = g.session.take() {
            g.svc.logout(s, now)?;
        }
    }
    auth_state(st)
}

/// Lock the screen now. Needs a live session.
pub fn lock_screen(st: &AuthState) -> Result<AuthStateOut, ApiError> {
    in_session(st, None, |svc, s, now| svc.lock(s, now).map(drop))
}

/// Unlock the locked screen with the session user's password.
pub fn unlock(st: &AuthState, password: &str) -> Result<AuthStateOut, ApiError> {
    in_session(st, None, |svc, s, now| {
        svc.unlock(s, password, now).map(drop)
    })
}

/// Change one's own password (required after a reset).
pub fn change_password(
    st: &AuthState,
    current_password: &str,
    new_password: &str,
) -> Result<AuthStateOut, ApiError> {
    in_session(st, Some(Permission::ChangeOwnPassword), |svc, s, now| {
        svc.change_password(s, current_password, new_password, now)
            .map(drop)
    })
}

/// Emergency access for a nurse: charge-nurse rights for a limited time, with her password
/// again and a reason; not renewable while in force.
pub fn break_glass(st: &AuthState, password: &str, reason: &str) -> Result<AuthStateOut, ApiError> {
    in_session(st, Some(Permission::BreakGlass), |svc, s, now| {
        svc.break_glass(s, password, reason, now).map(drop)
    })
}

/// Emergency access (from the locked screen too) with the session user's password only: the
/// reason is asked afterwards. Needs a session (locked or not) of a nurse or charge nurse.
pub fn emergency_access(st: &AuthState, password: &str) -> Result<AuthStateOut, ApiError> {
    in_session(st, None, |svc, s, now| {
        svc.emergency_access(s, password, now).map(drop)
    })
}

/// The reason for the emergency access just taken (at least 10 characters).
pub fn emergency_reason(st: &AuthState, reason: &str) -> Result<AuthStateOut, ApiError> {
    in_session(st, None, |svc, s, now| {
        svc.emergency_reason(s, reason, now).map(drop)
    })
}

/// `f` on the service and the window's session (with `permission` checked first; `None`: any
/// session, locked too), then the state afterwards.
fn in_session(
    st: &AuthState,
    permission: Option<Permission>,
    f: impl FnOnce(&mut AuthService, &mut Session, i64) -> Result<(), AuthError>,
) -> Result<AuthStateOut, ApiError> {
    {
        let now = st.now();
        let mut g = st.lock();
        let (svc, s) = match permission {
            Some(p) => require(&mut g, p, now)?,
            None => require_session(&mut g)?,
        };
        f(svc, s, now)?;
    }
    auth_state(st)
}

/// User activity (input in the window): postpones the idle lock. Refused (`locked`) once the
/// session is locked, so activity never unlocks.
pub fn touch(st: &AuthState) -> Result<(), ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require_session(&mut g)?;
    svc.touch(s, now)?;
    Ok(())
}

/// The live ward stream is open to every station user and to nobody logged in: alarms never
/// depend on the login state (docs/security.md). Always `Ok`; `subscribe_ward` calls it so that
/// the matrix test covers the rule.
pub fn ward_access(_st: &AuthState) -> Result<(), ApiError> {
    Ok(())
}
