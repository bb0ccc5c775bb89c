//! The window's session: one station, one window, at most one [`Session`], kept here in the
//! station process (its token never goes to the web page). [`AuthState`] holds the
//! [`AuthService`] (on the station's database file) and that session behind one mutex, and
//! [`require`] is the one permission check every command that needs a right goes through.
//!
//! Idle lock: [`AuthState::tick`] runs every [`IDLE_CHECK_PERIOD`] on a background task
//! (see `main.rs`) and locks the session once it has been idle for the configured time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vigil_core::auth::{AuthService, Authorized, Permission, Session};

use crate::error::ApiError;

/// How often the idle timer checks the session.
pub const IDLE_CHECK_PERIOD: Duration = Duration::from_secs(2);

/// Milliseconds since the epoch. Injected so tests run on a simulated clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct AuthInner {
    pub svc: AuthService,
    pub session: Option<Session>,
}

pub struct AuthState {
    inner: Mutex<AuthInner>,
    clock: Clock,
}

/// What the idle timer saw; the window is told when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub user: Option<String>,
    pub locked: bool,
    pub must_change_password: bool,
    pub break_glass: bool,
}

impl AuthState {
    pub fn new(svc: AuthService, clock: Clock) -> AuthState {
        AuthState {
            inner: Mutex::new(AuthInner { svc, session: None }),
            clock,
        }
    }

    /// The station clock (wall time in the app).
    pub fn system_clock() -> Clock {
        Arc::new(vigil_core::store::now_ms)
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The service and the session. A poisoned lock is taken over: the state it guards is
    /// kept consistent by `AuthService` (each change is one transaction).
    pub fn lock(&self) -> MutexGuard<'_, AuthInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One idle-timer step: record an idle lock, end expired break-glass, and drop a session
    /// that has ended (user disabled or role changed, maybe by `vigilctl`) or expired.
    /// Returns the summary afterwards.
    pub fn tick(&self) -> Summary {
        let now = self.now();
        let mut g = self.lock();
        let AuthInner { svc, session } = &mut *g;
        if let Some(s) = session.as_mut() {
            if let Err(e) = svc.check_idle(s, now) {
                tracing::warn!(error = %e, "idle check failed");
            }
        }
        let st = svc.screen_state(session.as_ref(), now);
        if session.is_some() && st.user.is_none() {
            if let Some(s) = session.take() {
                tracing::info!(user = s.user(), "session ended or expired");
                if let Err(e) = svc.logout(s, now) {
                    tracing::warn!(error = %e, "recording the end of a session failed");
                }
            }
        }
        Summary {
            user: st.user,
            locked: st.locked,
            must_change_password: st.must_change_password,
            break_glass: st.break_glass_until_ms.is_some(),
        }
    }
}

/// The one permission check: the current session must be allowed `permission` now
/// ([`AuthService::authorize`]; deny by default). On success the call counts as user activity
/// and the session is returned along with the service.
pub fn require(
    g: &mut AuthInner,
    permission: Permission,
    now: i64,
) -> Result<(&mut AuthService, &mut Session), ApiError> {
    authorized(g, permission, now)?;
    let AuthInner { svc, session } = g;
    let s = session
        .as_mut()
        .ok_or(ApiError::from(vigil_core::auth::AuthError::NoSession))?;
    Ok((svc, s))
}

/// [`require`] for the engine's entry points, which take the proof itself
/// ([`Authorized`]) rather than the session.
pub fn authorized(
    g: &mut AuthInner,
    permission: Permission,
    now: i64,
) -> Result<Authorized, ApiError> {
    let AuthInner { svc, session } = g;
    let proof = svc.authorize(session.as_ref(), permission, now)?;
    if let Some(s) = session.as_mut() {
        // Activity; cannot fail after a successful authorize except on a database error,
        // which must not turn an allowed action into a refused one.
        if let Err(e) = svc.touch(s, now) {
            tracing::warn!(error = %e, "recording activity failed");
        }
    }
    Ok(proof)
}

/// A command that needs a live session but no particular right (log out, lock): the session,
/// or `no_session`.
pub fn require_session(g: &mut AuthInner) -> Result<(&mut AuthService, &mut Session), ApiError> {
    let AuthInner { svc, session } = g;
    match session.as_mut() {
        Some(s) => Ok((svc, s)),
        None => Err(vigil_core::auth::AuthError::NoSession.into()),
    }
}

/// An alarm action's audit entry: the service is taken for the append only, not while the
/// engine takes the action ([`vigil_core::usecase::Trail`]).
impl vigil_core::usecase::Trail for AuthState {
    fn append(
        &self,
        entry: &vigil_core::usecase::Entry<'_>,
        now_ms: i64,
    ) -> Result<(), vigil_core::audit::AuditError> {
        vigil_core::usecase::Trail::append(&self.lock().svc, entry, now_ms)
    }
}
