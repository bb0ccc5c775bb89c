//! Users, roles, sessions and the single permission check (docs/security.md).
//!
//! - [`allowed`] is the permission matrix: one table, role × [`Permission`].
//! - [`AuthService`] owns a database connection and does everything that touches users:
//!   log-in with lockout, sessions with idle lock and break-glass, user administration, and the
//!   audit entries for all of it ([`crate::audit`]).
//! - [`AuthService::authorize`] is the one check every state-changing or sensitive command calls.
//!
//! Time is always passed in (`now_ms`, ms since the Unix epoch), never read here, so lockout, idle
//! lock and break-glass expiry are tested with a simulated clock.
//!
//! Sessions never gate alarm processing: the engine ([`crate::engine`], [`crate::alarms`]) takes
//! no session and keeps evaluating, storing and publishing alarms whoever is logged in, and a
//! locked screen ([`ScreenState`]) masks patient identity and disables actions but keeps every
//! bed's vitals and alarms on screen and audible.

mod password;
mod reads;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use thiserror::Error;

use crate::audit::{actions, format_time_utc, Audit, AuditEntry, AuditError};
use crate::security::{Kind, Occurrence, SecurityMonitor, Source};
use crate::store::{self, StoreError};

pub use reads::{PhiRead, READ_RUN_GAP_MS};

pub use password::{
    check_password, common_password_count, generate_temporary_password, hash_password,
    verify_password, PolicyError, MAX_PASSWORD_LEN, MIN_NAME_LEN_FOR_CONTAINMENT, MIN_PASSWORD_LEN,
};

const MINUTE_MS: i64 = 60_000;

/// Shortest accepted break-glass reason, in characters (after trimming).
pub const MIN_BREAK_GLASS_REASON: usize = 10;
/// The actor of the simulated remote cohort's enrolment (`AuthService::authorize_simulation`, crate-private).
pub const SIMULATION_USER: &str = "sim:cohort";
/// Longest accepted user name, in characters.
pub const MAX_USER_NAME_LEN: usize = 64;

/// A user's role. Stored and typed as `nurse`, `charge-nurse`, `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Role {
    /// Views beds, trends and history; pauses audio.
    Nurse,
    /// Everything a nurse does, plus acknowledging alarms, patient limits and admissions.
    ChargeNurse,
    /// Hospital IT: users, devices, ward profiles, broker settings, the audit log. No clinical
    /// actions.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Nurse, Role::ChargeNurse, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Nurse => "nurse",
            Role::ChargeNurse => "charge-nurse",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `nurse`, `charge-nurse`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown role {0:?}: expected nurse, charge-nurse or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// The role whose [`Role::as_str`] is `s`, exactly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Every state-changing or sensitive action of the product. Each Tauri command and each engine
/// entry point that changes state names one of these and calls [`AuthService::authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Permission {
    /// See the live ward with patient identity (names, MRNs) unmasked.
    ViewWard,
    /// Trends, full-disclosure history and past alarms of a patient.
    ViewHistory,
    /// Pause alarm audio for the limited pause time (never silences new high-priority alarms).
    AudioPause,
    /// Acknowledge an alarm.
    AcknowledgeAlarm,
    /// Change a patient's alarm limits.
    ChangePatientLimits,
    /// Admit, discharge or transfer a patient.
    AdmitDischargeTransfer,
    /// Print (save) an alarm strip, a trend report or a shift handover, with the patient's
    /// identity (it goes into the chart).
    PrintReport,
    /// Export a bed's data for research, de-identified (no name, MRN or date of birth; dates
    /// shifted by a per-export offset; devices pseudonymised).
    ExportDeidentified,
    /// Export a bed's data with the patient's identity (name, MRN, date of birth).
    ExportIdentified,
    /// Emergency access: take charge-nurse rights for a limited time with a typed reason.
    BreakGlass,
    /// Change one's own password (the only thing allowed while a change is required).
    ChangeOwnPassword,
    /// Create, disable, enable, unlock users; reset passwords; change roles.
    ManageUsers,
    /// Devices and the device-to-bed mapping.
    ManageDevices,
    /// Ward profiles (default limits) and alarm latching.
    ManageWardProfiles,
    /// Broker connection settings.
    BrokerSettings,
    /// Read and filter the audit log.
    ViewAuditLog,
    /// Export the audit log (CSV).
    ExportAuditLog,
}

impl Permission {
    pub const ALL: [Permission; 17] = [
        Permission::ViewWard,
        Permission::ViewHistory,
        Permission::AudioPause,
        Permission::AcknowledgeAlarm,
        Permission::ChangePatientLimits,
        Permission::AdmitDischargeTransfer,
        Permission::PrintReport,
        Permission::ExportDeidentified,
        Permission::ExportIdentified,
        Permission::BreakGlass,
        Permission::ChangeOwnPassword,
        Permission::ManageUsers,
        Permission::ManageDevices,
        Permission::ManageWardProfiles,
        Permission::BrokerSettings,
        Permission::ViewAuditLog,
        Permission::ExportAuditLog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewWard => "view_ward",
            Permission::ViewHistory => "view_history",
            Permission::AudioPause => "audio_pause",
            Permission::AcknowledgeAlarm => "acknowledge_alarm",
            Permission::ChangePatientLimits => "change_patient_limits",
            Permission::AdmitDischargeTransfer => "admit_discharge_transfer",
            Permission::PrintReport => "print_report",
            Permission::ExportDeidentified => "export_deidentified",
            Permission::ExportIdentified => "export_identified",
            Permission::BreakGlass => "break_glass",
            Permission::ChangeOwnPassword => "change_own_password",
            Permission::ManageUsers => "manage_users",
            Permission::ManageDevices => "manage_devices",
            Permission::ManageWardProfiles => "manage_ward_profiles",
            Permission::BrokerSettings => "broker_settings",
            Permission::ViewAuditLog => "view_audit_log",
            Permission::ExportAuditLog => "export_audit_log",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permission matrix: whether `role` may do `permission`. This is the only table.
///
/// Each row lists `[nurse, charge-nurse, admin]`. There is no catch-all arm: a new permission
/// does not compile until its row is written, and everything not marked `Y` is denied.
/// Invariants (tested): the charge nurse has everything the nurse has; the admin has no clinical
/// permission; break-glass is only meaningful for a nurse ([`AuthService::break_glass`] refuses
/// it to a charge nurse as unnecessary).
pub fn allowed(role: Role, permission: Permission) -> bool {
    const Y: bool = true;
    const N: bool = false;
    use Permission as P;
    #[rustfmt::skip]
    let row: [bool; 3] = match permission {
        //                              nurse charge admin
        P::ViewWard                  => [Y,    Y,     N],
        P::ViewHistory               => [Y,    Y,     N],
        P::AudioPause                => [Y,    Y,     N],
        P::AcknowledgeAlarm          => [N,    Y,     N],
        P::ChangePatientLimits       => [N,    Y,     N],
        P::AdmitDischargeTransfer    => [N,    Y,     N],
        P::PrintReport               => [Y,    Y,     N],
        P::ExportDeidentified        => [Y,    Y,     N],
        P::ExportIdentified          => [N,    Y,     N],
        P::BreakGlass                => [Y,    Y,     N],
        P::ChangeOwnPassword         => [Y,    Y,     Y],
        P::ManageUsers               => [N,    N,     Y],
        P::ManageDevices             => [N,    N,     Y],
        P::ManageWardProfiles        => [N,    N,     Y],
        P::BrokerSettings            => [N,    N,     Y],
        P::ViewAuditLog              => [N,    N,     Y],
        P::ExportAuditLog            => [N,    N,     Y],
    };
    row[match role {
        Role::Nurse => 0,
        Role::ChargeNurse => 1,
        Role::Admin => 2,
    }]
}

/// A break-glass reason as given: trimmed, at least [`MIN_BREAK_GLASS_REASON`] characters.
fn break_glass_reason(reason: &str) -> Result<&str, AuthError> {
    let reason = reason.trim();
    if reason.chars().count() < MIN_BREAK_GLASS_REASON {
        return Err(AuthError::BreakGlassReason);
    }
    Ok(reason)
}

/// What the ward decides beyond the matrix (station settings, `crate::settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WardPolicy {
    /// Nurses may acknowledge alarms (default: yes). Every acknowledgement is audited with its user.
    pub nurses_acknowledge: bool,
}

impl Default for WardPolicy {
    fn default() -> Self {
        WardPolicy {
            nurses_acknowledge: true,
        }
    }
}

/// [`allowed`] under the ward's policy: the matrix, plus acknowledging alarms for nurses when
/// the ward allows it.
pub fn allowed_by(role: Role, permission: Permission, policy: &WardPolicy) -> bool {
    allowed(role, permission)
        || (permission == Permission::AcknowledgeAlarm
            && role == Role::Nurse
            && policy.nurses_acknowledge)
}

/// Timings and limits (defaults in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Consecutive failed log-ins that lock an account out (default: 5).
    pub max_failed_logins: u32,
    /// How long a lockout lasts [15 min].
    pub lockout_ms: i64,
    /// Inactivity after which a session locks [10 min].
    pub idle_lock_ms: i64,
    /// How long break-glass rights last [30 min].
    pub break_glass_ms: i64,
    /// Longest a session lives, active or not, before a new log-in is needed [12 h].
    pub session_max_ms: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_failed_logins: 5,
            lockout_ms: 15 * MINUTE_MS,
            idle_lock_ms: 10 * MINUTE_MS,
            break_glass_ms: 30 * MINUTE_MS,
            session_max_ms: 12 * 60 * MINUTE_MS,
        }
    }
}

#[derive(Debug, Error)]
pub enum AuthError {
    /// An authorisation made for one permission was presented for another.
    #[error("authorised for {granted}, not for {needed}")]
    WrongAuthorization {
        granted: Permission,
        needed: Permission,
    },
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("account locked after too many failed log-ins, until {}", format_time_utc(*until_ms))]
    AccountLocked { until_ms: i64 },
    #[error("account disabled")]
    AccountDisabled,
    #[error("not logged in")]
    NoSession,
    /// Logged out, or ended because the user was disabled, removed or given another role.
    #[error("session ended; log in again")]
    SessionEnded,
    #[error("session expired; log in again")]
    SessionExpired,
    #[error("session locked; unlock with your password")]
    Locked,
    #[error("password change required before anything else")]
    MustChangePassword,
    #[error("role {role} may not {permission}")]
    Forbidden { role: Role, permission: Permission },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("invalid user name {name:?}: {why}")]
    InvalidUserName { name: String, why: &'static str },
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no user {0:?}")]
    UnknownUser(String),
    #[error("refused: this would leave no enabled admin")]
    LastAdmin,
    #[error("users already exist; the first admin is created only on an empty station")]
    NotFirstRun,
    #[error("break-glass needs a reason of at least {MIN_BREAK_GLASS_REASON} characters")]
    BreakGlassReason,
    #[error("break-glass is not needed: role {0} already has charge-nurse rights")]
    BreakGlassNotNeeded(Role),
    /// Break-glass is in force already: it cannot be renewed before it ends.
    #[error("break-glass is already in force until {}; it cannot be renewed while active", format_time_utc(*until_ms))]
    BreakGlassActive { until_ms: i64 },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored user {0:?} has an unknown role")]
    CorruptUser(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("user database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user as listed (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub enabled: bool,
    pub must_change_password: bool,
    pub failed_count: u32,
    pub locked_until_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl UserInfo {
    /// Locked out (too many failed log-ins) at `now_ms`.
    pub fn is_locked_out(&self, now_ms: i64) -> bool {
        self.locked_until_ms.is_some_and(|t| t > now_ms)
    }
}

/// Proof that a user was authorised for one permission: only [`AuthService::authorize`] makes
/// one (the fields are private). The engine's state-changing entry points (acknowledge, audio
/// pause, limits, ...) take it, so they cannot be reached without the permission check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    user: String,
    permission: Permission,
}

impl Authorized {
    /// The user the check was made for.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The user, if this proof is for `permission`; the entry point's own check.
    pub fn require(&self, permission: Permission) -> Result<&str, AuthError> {
        if self.permission == permission {
            Ok(&self.user)
        } else {
            Err(AuthError::WrongAuthorization {
                granted: self.permission,
                needed: permission,
            })
        }
    }
}

/// A logged-in user at this station. Only [`AuthService::login`] makes one (the fields are
/// private), and it is not `Clone`: the holder (the desktop shell) keeps the one copy, and
/// [`AuthService::logout`] consumes it. `Debug` never shows the token.
pub struct Session {
    user_id: i64,
    user: String,
    role: Role,
    token: String,
    created_ms: i64,
    last_activity_ms: i64,
    locked: bool,
    break_glass_until_ms: Option<i64>,
    must_change_password: bool,
    /// Emergency access was taken in one tap; its reason is still to be given.
    reason_pending: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .field("created_ms", &self.created_ms)
            .field("last_activity_ms", &self.last_activity_ms)
            .field("locked", &self.locked)
            .field("break_glass_until_ms", &self.break_glass_until_ms)
            .field("must_change_password", &self.must_change_password)
            .finish()
    }
}

impl Session {
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The role the user has in the database (see [`Session::effective_role`]).
    pub fn role(&self) -> Role {
        self.role
    }
    /// 256 random bits, lowercase hex (64 characters).
    pub fn token(&self) -> &str {
        &self.token
    }
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }
    pub fn last_activity_ms(&self) -> i64 {
        self.last_activity_ms
    }
    /// Locked (idle timeout recorded, or locked by the user). [`AuthService::authorize`] also
    /// treats a session idle past the timeout as locked before the lock is recorded.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
    pub fn break_glass_until_ms(&self) -> Option<i64> {
        self.break_glass_until_ms
    }
    pub fn must_change_password(&self) -> bool {
        self.must_change_password
    }
    /// Emergency access taken whose reason is still owed.
    pub fn reason_pending(&self) -> bool {
        self.reason_pending
    }
    /// Break-glass rights in force at `now_ms`.
    pub fn is_break_glass(&self, now_ms: i64) -> bool {
        self.break_glass_until_ms.is_some_and(|t| now_ms < t)
    }
    /// The role that permissions are checked against at `now_ms`: a nurse under break-glass
    /// acts as a charge nurse until it expires.
    pub fn effective_role(&self, now_ms: i64) -> Role {
        if self.role == Role::Nurse && self.is_break_glass(now_ms) {
            Role::ChargeNurse
        } else {
            self.role
        }
    }
}

/// What the station window may show and do for the current session (or none).
///
/// Whatever this says, every bed's vitals and alarms stay on screen and audible: the engine never
/// consults the session ([`ScreenState::alarms_shown_and_sounding`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ScreenState {
    /// Hide patient identity (names, MRNs): no session, locked, or a role without `ViewWard`.
    #[serde(rename = "masked")]
    pub mask_patient_identity: bool,
    /// Offer actions at all (each one is still checked by [`AuthService::authorize`]). False
    /// when there is no session, it is locked or ended, or a password change is pending.
    pub actions_enabled: bool,
    /// A session exists and is locked: show the unlock prompt.
    pub locked: bool,
    /// Whose session this is, even when locked (for the unlock prompt).
    pub user: Option<String>,
    pub effective_role: Option<Role>,
    pub break_glass_until_ms: Option<i64>,
    pub must_change_password: bool,
    /// An emergency access's reason is still owed.
    pub reason_pending: bool,
}

impl ScreenState {
    /// Always true: alarms are displayed and sounded in every login state (no session, locked,
    /// any role). Stated in code so that the UI has nothing to decide here.
    pub fn alarms_shown_and_sounding(&self) -> bool {
        true
    }
}

/// Who performs a user-administration action.
#[derive(Debug)]
pub enum Actor<'a> {
    /// A logged-in user; must hold [`Permission::ManageUsers`].
    Session(&'a Session),
    /// Local administration (the `vigilctl` command line), audited under this name, e.g.
    /// `cli:jsmith`. Not permission-checked: whoever can write the database file already
    /// controls it (docs/security.md, threat notes).
    Local(String),
}

impl Actor<'_> {
    /// The name audited for this actor.
    pub fn name(&self) -> &str {
        match self {
            Actor::Session(s) => s.user(),
            Actor::Local(n) => n,
        }
    }
}

impl Actor<'static> {
    /// `cli:<OS user>` from `$USER` (or `%USERNAME%`), else `cli:unknown`.
    pub fn cli() -> Actor<'static> {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_string());
        Actor::Local(format!("cli:{user}"))
    }
}

/// User names: 1 to 64 characters, ASCII letters, digits, `.`, `_`, `-`, starting with a letter
/// or digit (so they can never look like `cli:…` or carry spaces or control characters).
pub fn validate_user_name(name: &str) -> Result<(), AuthError> {
    let bad = |why| {
        Err(AuthError::InvalidUserName {
            name: name.chars().take(MAX_USER_NAME_LEN).collect(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.chars().count() > MAX_USER_NAME_LEN {
        return bad("longer than 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or a digit");
    }
    Ok(())
}

struct UserRow {
    info: UserInfo,
    hash: String,
}

const USER_COLUMNS: &str = "id, name, role, enabled, must_change_password, failed_count, \
                            locked_until_ms, created_ms, updated_ms, password_hash";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(UserInfo, String, String)> {
    let role: String = r.get(2)?;
    Ok((
        UserInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            role: Role::Nurse, // replaced by the caller from the role text
            enabled: r.get(3)?,
            must_change_password: r.get(4)?,
            failed_count: r.get(5)?,
            locked_until_ms: r.get(6)?,
            created_ms: r.get(7)?,
            updated_ms: r.get(8)?,
        },
        role,
        r.get(9)?,
    ))
}

fn finish_user((mut info, role, hash): (UserInfo, String, String)) -> Result<UserRow, AuthError> {
    info.role = role
        .parse()
        .map_err(|_| AuthError::CorruptUser(info.name.clone()))?;
    Ok(UserRow { info, hash })
}

fn find_user(conn: &Connection, name: &str) -> Result<Option<UserRow>, AuthError> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
        [name],
        user_from_row,
    )
    .optional()?
    .map(finish_user)
    .transpose()
}

fn user_by_id(conn: &Connection, id: i64) -> Result<Option<UserRow>, AuthError> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_from_row,
    )
    .optional()?
    .map(finish_user)
    .transpose()
}

/// Refuse a change after which `user`, an enabled administrator now, would not be one (with
/// `role`, `enabled`) when they are the last: there is always an enabled administrator.
fn keep_an_admin(
    conn: &Connection,
    user: &UserInfo,
    role: Role,
    enabled: bool,
) -> Result<(), AuthError> {
    let admin = |role: Role, enabled: bool| role == Role::Admin && enabled;
    if !admin(user.role, user.enabled) || admin(role, enabled) {
        return Ok(());
    }
    let admins: i64 = conn.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND enabled = 1",
        [],
        |r| r.get(0),
    )?;
    if admins <= 1 {
        Err(AuthError::LastAdmin)
    } else {
        Ok(())
    }
}

fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A typed name as it goes into the audit trail of a failed log-in: at most 64 characters, no
/// control characters (a mistyped password in the name field is not kept whole).
fn typed_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_NAME_LEN)
        .collect()
}

fn hash(pw: &str) -> Result<String, AuthError> {
    hash_password(pw).map_err(|e| AuthError::Hash(e.to_string()))
}

/// Users, sessions and their audit trail over one SQLite connection.
pub struct AuthService {
    conn: Connection,
    cfg: AuthConfig,
    /// Tokens of the sessions that are live in this process → user id.
    live: HashMap<String, i64>,
    policy: WardPolicy,
    /// Where failed log-ins, lockouts, break-glass and user changes are reported as security
    /// events (the running station's monitor), if anywhere.
    security: Option<Arc<SecurityMonitor>>,
    /// Runs of patient-data reads not yet summarised in the trail.
    reads: reads::ReadRuns,
}

impl AuthService {
    /// Over an open connection whose schema includes migration 003 (see [`store::open`]).
    pub fn new(conn: Connection, cfg: AuthConfig) -> AuthService {
        AuthService {
            conn,
            cfg,
            live: HashMap::new(),
            policy: WardPolicy::default(),
            security: None,
            reads: reads::ReadRuns::default(),
        }
    }

    /// Report security-relevant happenings (failed log-ins, lockouts, break-glass, user
    /// changes) to `monitor` from now on.
    pub fn set_security(&mut self, monitor: Arc<SecurityMonitor>) {
        self.security = Some(monitor);
    }

    /// Report an occurrence to the station's security monitor, if one is attached (the shell's
    /// configuration changes go through here).
    pub fn report_security(&self, o: Occurrence) {
        crate::security::report_to(self.security.as_deref(), o);
    }

    fn report(&self, kind: Kind, source: Source, detail: String, now_ms: i64) {
        crate::security::report_to(
            self.security.as_deref(),
            Occurrence::new(kind, source, detail, now_ms),
        );
    }

    /// Open (creating and migrating if needed) the database file.
    pub fn open(path: &Path, cfg: AuthConfig) -> Result<AuthService, AuthError> {
        Ok(AuthService::new(store::open(path)?, cfg))
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// The ward's policy in force (see [`allowed_by`]).
    pub fn policy(&self) -> WardPolicy {
        self.policy
    }

    /// Apply the ward's policy (read at start; changed by IT from the window).
    pub fn set_policy(&mut self, policy: WardPolicy) {
        self.policy = policy;
    }

    /// The proof for an audio pause at a station where nobody can act (the screen is locked,
    /// or nobody is logged in): anyone at the station may silence alarms for the limited
    /// pause time without logging in, as at a bedside monitor. The user recorded is the
    /// locked session's ("nurse1 (locked screen)") or "station (not logged in)"; the caller
    /// audits it. Only for [`Permission::AudioPause`]; a usable session must use
    /// [`AuthService::authorize`].
    pub fn authorize_unattended_pause(
        &self,
        session: Option<&Session>,
        now_ms: i64,
    ) -> Result<Authorized, AuthError> {
        let live = session.filter(|s| self.check_live(s, now_ms).is_ok());
        let user = match live {
            Some(s) if s.locked || self.is_idle(s, now_ms) => format!("{} (locked screen)", s.user),
            Some(_) => return self.authorize(session, Permission::AudioPause, now_ms),
            None => "station (not logged in)".to_string(),
        };
        Ok(Authorized {
            user,
            permission: Permission::AudioPause,
        })
    }
    /// The simulated remote cohort's proof, and nothing else's (`remote::cohort::seed`, the
    /// zero-config station's simulated home patients): user [`SIMULATION_USER`], for the three
    /// permissions enrolling a simulated patient takes — [`Permission::AdmitDischargeTransfer`]
    /// (enrol), [`Permission::ChangePatientLimits`] (care plan) and
    /// [`Permission::ManageDevices`] (its home devices) — and refused for any other. Crate-private
    /// so that no face can act as the simulation by accident; its audit entries are under
    /// `sim:cohort`, never a person's name.
    pub(crate) fn authorize_simulation(
        &self,
        permission: Permission,
    ) -> Result<Authorized, AuthError> {
        match permission {
            Permission::AdmitDischargeTransfer
            | Permission::ChangePatientLimits
            | Permission::ManageDevices => Ok(Authorized {
                user: SIMULATION_USER.to_string(),
                permission,
            }),
            _ => Err(AuthError::Forbidden {
                role: Role::Admin,
                permission,
            }),
        }
    }

    /// An [`Authorized`] proof for an administration action of `by`: a session is checked like
    /// [`AuthService::authorize`]; local administration (the `vigilctl` command line, audited
    /// under its name) gets only the administrator's non-clinical permissions — whoever can
    /// write the database file controls it already (docs/security.md).
    pub fn authorize_admin(
        &self,
        by: &Actor<'_>,
        permission: Permission,
        now_ms: i64,
    ) -> Result<Authorized, AuthError> {
        match by {
            Actor::Session(s) => self.authorize(Some(s), permission, now_ms),
            Actor::Local(name) if allowed(Role::Admin, permission) => Ok(Authorized {
                user: name.clone(),
                permission,
            }),
            Actor::Local(_) => Err(AuthError::Forbidden {
                role: Role::Admin,
                permission,
            }),
        }
    }

    /// The connection, for reading (e.g. [`Audit::list`]); writes go through this service.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    // ----- users -----

    /// No user exists yet: the station must create its first admin.
    pub fn needs_first_admin(&self) -> Result<bool, AuthError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
        Ok(n == 0)
    }

    /// Create the first admin on an empty station (audited with actor `setup`).
    pub fn create_first_admin(
        &mut self,
        name: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<UserInfo, AuthError> {
        if !self.needs_first_admin()? {
            return Err(AuthError::NotFirstRun);
        }
        self.insert_user("setup", name, Role::Admin, password, false, now_ms)
    }

    /// Create a user. The password must pass [`check_password`].
    pub fn create_user(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        role: Role,
        password: &str,
        now_ms: i64,
    ) -> Result<UserInfo, AuthError> {
        let actor = self.admin_actor(by, now_ms)?;
        self.insert_user(&actor, name, role, password, false, now_ms)
    }

    fn insert_user(
        &mut self,
        actor: &str,
        name: &str,
        role: Role,
        password: &str,
        must_change: bool,
        now_ms: i64,
    ) -> Result<UserInfo, AuthError> {
        validate_user_name(name)?;
        check_password(name, password)?;
        if find_user(&self.conn, name)?.is_some() {
            return Err(AuthError::UserExists(name.to_string()));
        }
        let phc = hash(password)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO users (name, role, password_hash, enabled, must_change_password,
               failed_count, locked_until_ms, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, 1, ?4, 0, NULL, ?5, ?5)",
            params![name, role.as_str(), phc, must_change, now_ms],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(AuthError::UserExists(name.to_string()));
            }
            other => {
                other?;
            }
        }
        Audit::append(
            &tx,
            actor,
            actions::USER_CREATE,
            name,
            &format!("role {role}"),
            now_ms,
        )?;
        let info = find_user(&tx, name)?
            .ok_or_else(|| AuthError::UnknownUser(name.to_string()))?
            .info;
        tx.commit()?;
        self.report(
            Kind::ConfigChange,
            Source::user(actor),
            format!("user {name} created with role {role}"),
            now_ms,
        );
        Ok(info)
    }

    /// All users, by name.
    pub fn list_users(&self, by: &Actor<'_>, now_ms: i64) -> Result<Vec<UserInfo>, AuthError> {
        self.admin_actor(by, now_ms)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY name COLLATE NOCASE"
        ))?;
        let rows = stmt
            .query_map([], user_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|r| finish_user(r).map(|u| u.info))
            .collect()
    }

    /// One user (no permission check: for the shell's own use, e.g. the unlock prompt).
    pub fn user(&self, name: &str) -> Result<Option<UserInfo>, AuthError> {
        Ok(find_user(&self.conn, name)?.map(|u| u.info))
    }

    /// Disable a user (they cannot log in; their sessions end). Returns whether anything changed.
    pub fn disable_user(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        self.set_enabled(by, name, false, now_ms)
    }

    /// Enable a disabled user again. Returns whether anything changed.
    pub fn enable_user(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        self.set_enabled(by, name, true, now_ms)
    }

    fn set_enabled(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        enabled: bool,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        let (actor, tx, u) = self.admin_change(by, name, now_ms)?;
        if u.info.enabled == enabled {
            return Ok(false);
        }
        keep_an_admin(&tx, &u.info, u.info.role, enabled)?;
        tx.execute(
            "UPDATE users SET enabled = ?1, updated_ms = ?2 WHERE id = ?3",
            params![enabled, now_ms, u.info.id],
        )?;
        let action = if enabled {
            actions::USER_ENABLE
        } else {
            actions::USER_DISABLE
        };
        Audit::append(&tx, &actor, action, &u.info.name, "", now_ms)?;
        tx.commit()?;
        self.report(
            Kind::ConfigChange,
            Source::user(&actor),
            format!("{action} {}", u.info.name),
            now_ms,
        );
        if !enabled {
            self.live.retain(|_, id| *id != u.info.id);
        }
        Ok(true)
    }

    /// Give a user a temporary password (the given one, which must pass the policy, or a
    /// generated one) that must be changed at the next log-in; also clears a lockout. Returns the
    /// temporary password, to hand to the user. The trail records the reset, never the password.
    pub fn reset_password(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        temporary: Option<&str>,
        now_ms: i64,
    ) -> Result<String, AuthError> {
        let actor = self.admin_actor(by, now_ms)?;
        let u =
            find_user(&self.conn, name)?.ok_or_else(|| AuthError::UnknownUser(name.to_string()))?;
        let temp = match temporary {
            Some(t) => {
                check_password(&u.info.name, t)?;
                t.to_string()
            }
            None => generate_temporary_password(&u.info.name),
        };
        let phc = hash(&temp)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE users SET password_hash = ?1, must_change_password = 1, failed_count = 0,
               locked_until_ms = NULL, updated_ms = ?2 WHERE id = ?3",
            params![phc, now_ms, u.info.id],
        )?;
        Audit::append(
            &tx,
            &actor,
            actions::USER_RESET_PASSWORD,
            &u.info.name,
            if temporary.is_some() {
                "temporary password given; change required at next log-in"
            } else {
                "temporary password generated; change required at next log-in"
            },
            now_ms,
        )?;
        tx.commit()?;
        Ok(temp)
    }

    /// Clear a lockout (and the failed log-in count). Returns whether the user was locked out.
    pub fn unlock_user(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        let (actor, tx, u) = self.admin_change(by, name, now_ms)?;
        let was_locked = u.info.is_locked_out(now_ms);
        tx.execute(
            "UPDATE users SET failed_count = 0, locked_until_ms = NULL, updated_ms = ?1
             WHERE id = ?2",
            params![now_ms, u.info.id],
        )?;
        let detail = match u.info.locked_until_ms {
            Some(t) if was_locked => format!("lockout until {} cleared", format_time_utc(t)),
            _ => format!(
                "not locked out; {} failed log-ins cleared",
                u.info.failed_count
            ),
        };
        Audit::append(
            &tx,
            &actor,
            actions::USER_UNLOCK,
            &u.info.name,
            &detail,
            now_ms,
        )?;
        tx.commit()?;
        Ok(was_locked)
    }

    /// Change a user's role; their live sessions end. Returns whether anything changed.
    pub fn set_role(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        let (actor, tx, u) = self.admin_change(by, name, now_ms)?;
        if u.info.role == role {
            return Ok(false);
        }
        keep_an_admin(&tx, &u.info, role, u.info.enabled)?;
        tx.execute(
            "UPDATE users SET role = ?1, updated_ms = ?2 WHERE id = ?3",
            params![role.as_str(), now_ms, u.info.id],
        )?;
        Audit::append(
            &tx,
            &actor,
            actions::USER_ROLE_CHANGE,
            &u.info.name,
            &format!("{} -> {role}", u.info.role),
            now_ms,
        )?;
        tx.commit()?;
        self.report(
            Kind::ConfigChange,
            Source::user(&actor),
            format!("role of {} changed: {} -> {role}", u.info.name, u.info.role),
            now_ms,
        );
        self.live.retain(|_, id| *id != u.info.id);
        Ok(true)
    }

    /// An administrator's change of the user `name`: the actor (as [`Self::admin_actor`]), an
    /// immediate transaction, and the user as read in it.
    fn admin_change(
        &mut self,
        by: &Actor<'_>,
        name: &str,
        now_ms: i64,
    ) -> Result<(String, rusqlite::Transaction<'_>, UserRow), AuthError> {
        let actor = self.admin_actor(by, now_ms)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let u = find_user(&tx, name)?.ok_or_else(|| AuthError::UnknownUser(name.to_string()))?;
        Ok((actor, tx, u))
    }

    fn admin_actor(&self, by: &Actor<'_>, now_ms: i64) -> Result<String, AuthError> {
        match by {
            Actor::Session(s) => {
                self.authorize(Some(s), Permission::ManageUsers, now_ms)?;
                Ok(s.user.clone())
            }
            Actor::Local(_) => Ok(by.name().to_string()),
        }
    }

    // ----- log-in and sessions -----

    /// Log in. Unknown user and wrong password give the same error and take the same time. A
    /// locked-out account is refused without checking the password. After
    /// [`AuthConfig::max_failed_logins`] consecutive failures the account is locked out for
    /// [`AuthConfig::lockout_ms`]. With a pending password change the session only allows
    /// [`AuthService::change_password`].
    pub fn login(&mut self, name: &str, password: &str, now_ms: i64) -> Result<Session, AuthError> {
        let Some(u) = find_user(&self.conn, name)? else {
            let _ = verify_password(password, password::dummy_hash());
            Audit::append(
                &self.conn,
                &typed_name(name),
                actions::LOGIN_FAILED,
                "",
                "unknown user",
                now_ms,
            )?;
            self.report(
                Kind::LoginFailed,
                Source::user(&typed_name(name)),
                format!("log-in as unknown user {:?}", typed_name(name)),
                now_ms,
            );
            return Err(AuthError::InvalidCredentials);
        };
        if let Some(until_ms) = u.info.locked_until_ms.filter(|&t| t > now_ms) {
            Audit::append(
                &self.conn,
                &u.info.name,
                actions::LOGIN_FAILED,
                &u.info.name,
                &format!("account locked out until {}", format_time_utc(until_ms)),
                now_ms,
            )?;
            self.report(
                Kind::LoginFailed,
                Source::user(&u.info.name),
                "log-in attempt while locked out".into(),
                now_ms,
            );
            return Err(AuthError::AccountLocked { until_ms });
        }
        if !verify_password(password, &u.hash) {
            return Err(self.record_failure(&u.info, actions::LOGIN_FAILED, now_ms)?);
        }
        if !u.info.enabled {
            Audit::append(
                &self.conn,
                &u.info.name,
                actions::LOGIN_FAILED,
                &u.info.name,
                "account disabled",
                now_ms,
            )?;
            return Err(AuthError::AccountDisabled);
        }
        self.own_change(
            &u.info.name,
            "UPDATE users SET failed_count = 0, locked_until_ms = NULL WHERE id = ?1",
            [u.info.id],
            actions::LOGIN,
            &format!(
                "role {}{}",
                u.info.role,
                if u.info.must_change_password {
                    "; password change required"
                } else {
                    ""
                }
            ),
            now_ms,
        )?;
        let token = new_token();
        self.live.insert(token.clone(), u.info.id);
        Ok(Session {
            user_id: u.info.id,
            user: u.info.name,
            role: u.info.role,
            token,
            created_ms: now_ms,
            last_activity_ms: now_ms,
            locked: false,
            break_glass_until_ms: None,
            must_change_password: u.info.must_change_password,
            reason_pending: false,
        })
    }

    /// `sql` on the row of `user` (with `params`) and the entry `action` of `user` on themself,
    /// in one immediate transaction.
    fn own_change(
        &mut self,
        user: &str,
        sql: &str,
        params: impl rusqlite::Params,
        action: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(sql, params)?;
        Audit::append(&tx, user, action, user, detail, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Count a failed password check for `user` (log-in, unlock or password change), lock the
    /// account out when the limit is reached, audit both; returns the error to give the caller.
    fn record_failure(
        &mut self,
        user: &UserInfo,
        action: &str,
        now_ms: i64,
    ) -> Result<AuthError, AuthError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let count: u32 = tx.query_row(
            "UPDATE users SET failed_count = failed_count + 1 WHERE id = ?1
             RETURNING failed_count",
            [user.id],
            |r| r.get(0),
        )?;
        let max = self.cfg.max_failed_logins.max(1);
        Audit::append(
            &tx,
            &user.name,
            action,
            &user.name,
            &format!("wrong password ({count} of {max})"),
            now_ms,
        )?;
        let err = if count >= max {
            let until_ms = now_ms.saturating_add(self.cfg.lockout_ms);
            tx.execute(
                "UPDATE users SET failed_count = 0, locked_until_ms = ?1, updated_ms = ?2
                 WHERE id = ?3",
                params![until_ms, now_ms, user.id],
            )?;
            Audit::append(
                &tx,
                &user.name,
                actions::LOCKOUT,
                &user.name,
                &format!(
                    "{count} failed log-ins; locked out until {}",
                    format_time_utc(until_ms)
                ),
                now_ms,
            )?;
            tracing::warn!(user = %user.name, until_ms, "account locked out");
            AuthError::AccountLocked { until_ms }
        } else {
            AuthError::InvalidCredentials
        };
        tx.commit()?;
        self.report(
            Kind::LoginFailed,
            Source::user(&user.name),
            format!("{action}: wrong password ({count} of {max})"),
            now_ms,
        );
        if let AuthError::AccountLocked { until_ms } = &err {
            self.report(
                Kind::Lockout,
                Source::user(&user.name),
                format!(
                    "{count} failed log-ins; locked out until {}",
                    format_time_utc(*until_ms)
                ),
                now_ms,
            );
        }
        Ok(err)
    }

    /// End a session (locked or not). Its token stops working at once.
    pub fn logout(&mut self, mut session: Session, now_ms: i64) -> Result<(), AuthError> {
        self.end_break_glass_if_expired(&mut session, now_ms)?;
        self.flush_reads(Some(&session.user), now_ms)?;
        if self.live.remove(&session.token).is_none() {
            return Ok(()); // already ended (disabled, role changed): nothing to record
        }
        Audit::append(
            &self.conn,
            &session.user,
            actions::LOGOUT,
            &session.user,
            if session.locked || self.is_idle(&session, now_ms) {
                "from the locked screen"
            } else {
                ""
            },
            now_ms,
        )?;
        Ok(())
    }

    /// Record user activity. Errors if the session is no longer usable; a session idle past the
    /// timeout is locked (and the lock audited) instead of being refreshed.
    pub fn touch(&mut self, session: &mut Session, now_ms: i64) -> Result<(), AuthError> {
        self.check_live(session, now_ms)?;
        self.end_break_glass_if_expired(session, now_ms)?;
        if session.locked {
            return Err(AuthError::Locked);
        }
        if self.is_idle(session, now_ms) {
            self.record_lock(session, now_ms, "idle")?;
            return Err(AuthError::Locked);
        }
        session.last_activity_ms = session.last_activity_ms.max(now_ms);
        Ok(())
    }

    /// Lock the session if it has been idle for [`AuthConfig::idle_lock_ms`] (the shell calls
    /// this on a timer) and end expired break-glass. Returns whether the session is locked.
    pub fn check_idle(&mut self, session: &mut Session, now_ms: i64) -> Result<bool, AuthError> {
        self.end_break_glass_if_expired(session, now_ms)?;
        self.flush_reads(None, now_ms)?;
        if !session.locked && self.is_idle(session, now_ms) {
            self.record_lock(session, now_ms, "idle")?;
        }
        Ok(session.locked)
    }

    /// Lock the session now (the user steps away).
    pub fn lock(&mut self, session: &mut Session, now_ms: i64) -> Result<(), AuthError> {
        self.check_live(session, now_ms)?;
        if !session.locked {
            self.record_lock(session, now_ms, "by the user")?;
        }
        Ok(())
    }

    fn record_lock(
        &mut self,
        session: &mut Session,
        now_ms: i64,
        why: &str,
    ) -> Result<(), AuthError> {
        self.flush_reads(Some(&session.user), now_ms)?;
        Audit::append(
            &self.conn,
            &session.user,
            actions::LOCK,
            &session.user,
            &format!(
                "{why}; last activity {}",
                format_time_utc(session.last_activity_ms)
            ),
            now_ms,
        )?;
        session.locked = true;
        Ok(())
    }

    /// Unlock a locked session with the same user's password. Failures count towards the
    /// lockout like failed log-ins.
    pub fn unlock(
        &mut self,
        session: &mut Session,
        password: &str,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        self.check_live(session, now_ms)?;
        if !session.locked && !self.is_idle(session, now_ms) {
            return Ok(());
        }
        let u = self.session_user(session)?;
        if let Some(until_ms) = u.info.locked_until_ms.filter(|&t| t > now_ms) {
            Audit::append(
                &self.conn,
                &u.info.name,
                actions::UNLOCK_FAILED,
                &u.info.name,
                &format!("account locked out until {}", format_time_utc(until_ms)),
                now_ms,
            )?;
            return Err(AuthError::AccountLocked { until_ms });
        }
        if !verify_password(password, &u.hash) {
            return Err(self.record_failure(&u.info, actions::UNLOCK_FAILED, now_ms)?);
        }
        self.own_change(
            &u.info.name,
            "UPDATE users SET failed_count = 0 WHERE id = ?1",
            [u.info.id],
            actions::UNLOCK,
            "",
            now_ms,
        )?;
        session.locked = false;
        session.last_activity_ms = now_ms;
        Ok(())
    }

    /// Change the session user's own password (required after a reset). Needs the current
    /// password; the new one must pass the policy and differ from it.
    pub fn change_password(
        &mut self,
        session: &mut Session,
        current: &str,
        new: &str,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        self.authorize(Some(session), Permission::ChangeOwnPassword, now_ms)?;
        let u = self.session_user(session)?;
        if !verify_password(current, &u.hash) {
            return Err(self.record_failure(&u.info, actions::LOGIN_FAILED, now_ms)?);
        }
        check_password(&u.info.name, new)?;
        if new == current {
            return Err(PolicyError::SameAsCurrent.into());
        }
        let phc = hash(new)?;
        self.own_change(
            &u.info.name,
            "UPDATE users SET password_hash = ?1, must_change_password = 0, failed_count = 0,
               updated_ms = ?2 WHERE id = ?3",
            params![phc, now_ms, u.info.id],
            actions::PASSWORD_CHANGE,
            if u.info.must_change_password {
                "required change after reset"
            } else {
                ""
            },
            now_ms,
        )?;
        // Other sessions of this user (another station process cannot be reached) end here.
        let keep = session.token.clone();
        self.live
            .retain(|tok, id| *id != session.user_id || *tok == keep);
        session.must_change_password = false;
        session.last_activity_ms = now_ms;
        Ok(())
    }

    /// Emergency access: a nurse takes charge-nurse rights for [`AuthConfig::break_glass_ms`],
    /// giving her password again (the person at the keyboard must be the session's user; a
    /// wrong one counts towards the lockout) and a reason of at least
    /// [`MIN_BREAK_GLASS_REASON`] characters. It cannot be renewed while in force
    /// ([`AuthError::BreakGlassActive`]): a new one needs a new decision once it ended. Flagged in
    /// the trail (`break_glass`), and so is its end (`break_glass_end`); reported as a security
    /// event. The caller tells the ward's other stations
    /// ([`crate::engine::EngineHandle::announce_break_glass`]). Returns when it expires.
    pub fn break_glass(
        &mut self,
        session: &mut Session,
        password: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<i64, AuthError> {
        self.end_break_glass_if_expired(session, now_ms)?;
        self.authorize(Some(session), Permission::BreakGlass, now_ms)?;
        if session.role != Role::Nurse {
            return Err(AuthError::BreakGlassNotNeeded(session.role));
        }
        if let Some(until_ms) = session.break_glass_until_ms.filter(|&t| now_ms < t) {
            return Err(AuthError::BreakGlassActive { until_ms });
        }
        let reason = break_glass_reason(reason)?;
        let u = self.session_user(session)?;
        if !verify_password(password, &u.hash) {
            return Err(self.record_failure(&u.info, actions::UNLOCK_FAILED, now_ms)?);
        }
        let until_ms = now_ms.saturating_add(self.cfg.break_glass_ms);
        Audit::append(
            &self.conn,
            &session.user,
            actions::BREAK_GLASS,
            &session.user,
            &format!(
                "charge-nurse rights until {}; password re-entered; reason: {reason}",
                format_time_utc(until_ms)
            ),
            now_ms,
        )?;
        tracing::warn!(user = %session.user, until_ms, "break-glass access taken");
        self.report(
            Kind::BreakGlass,
            Source::user(&session.user),
            format!(
                "{} took charge-nurse rights until {}; reason: {reason}",
                session.user,
                format_time_utc(until_ms)
            ),
            now_ms,
        );
        session.break_glass_until_ms = Some(until_ms);
        session.last_activity_ms = now_ms;
        Ok(until_ms)
    }

    /// Emergency access, the reason asked afterwards: the session's user gives her password
    /// again (the only thing typed; a wrong one counts towards the lockout), and from a locked
    /// screen the session unlocks; a nurse gets charge-nurse rights for
    /// [`AuthConfig::break_glass_ms`], not renewable while in force. Flagged in the trail at once
    /// (`break_glass`, "reason pending") and reported as a security event, like
    /// [`AuthService::break_glass`]; [`AuthService::emergency_reason`] records the reason. The
    /// caller tells the ward's other stations. Refused to IT.
    pub fn emergency_access(
        &mut self,
        session: &mut Session,
        password: &str,
        now_ms: i64,
    ) -> Result<i64, AuthError> {
        self.end_break_glass_if_expired(session, now_ms)?;
        self.check_live(session, now_ms)?;
        if session.role == Role::Admin {
            return Err(AuthError::Forbidden {
                role: session.role,
                permission: Permission::BreakGlass,
            });
        }
        if let Some(until_ms) = session.break_glass_until_ms.filter(|&t| now_ms < t) {
            return Err(AuthError::BreakGlassActive { until_ms });
        }
        let u = self.session_user(session)?;
        if !verify_password(password, &u.hash) {
            return Err(self.record_failure(&u.info, actions::UNLOCK_FAILED, now_ms)?);
        }
        let was_locked = session.locked || self.is_idle(session, now_ms);
        let until_ms = now_ms.saturating_add(self.cfg.break_glass_ms);
        Audit::append(
            &self.conn,
            &session.user,
            actions::BREAK_GLASS,
            &session.user,
            &format!(
                "emergency access{}; {} until {}; reason pending",
                if was_locked {
                    " from the locked screen"
                } else {
                    ""
                },
                if session.role == Role::Nurse {
                    "charge-nurse rights"
                } else {
                    "unlocked"
                },
                format_time_utc(until_ms)
            ),
            now_ms,
        )?;
        tracing::warn!(user = %session.user, until_ms, was_locked, "emergency access taken");
        self.report(
            Kind::BreakGlass,
            Source::user(&session.user),
            format!(
                "{} took emergency access{} until {}; reason pending",
                session.user,
                if was_locked {
                    " from the locked screen"
                } else {
                    ""
                },
                format_time_utc(until_ms)
            ),
            now_ms,
        );
        session.locked = false;
        session.last_activity_ms = now_ms;
        session.reason_pending = true;
        if session.role == Role::Nurse {
            session.break_glass_until_ms = Some(until_ms);
        }
        Ok(until_ms)
    }

    /// The reason for an emergency access taken in one tap ([`AuthService::emergency_access`]):
    /// at least [`MIN_BREAK_GLASS_REASON`] characters, recorded in the trail.
    pub fn emergency_reason(
        &mut self,
        session: &mut Session,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        self.check_live(session, now_ms)?;
        let reason = break_glass_reason(reason)?;
        Audit::append(
            &self.conn,
            &session.user,
            actions::BREAK_GLASS_REASON,
            &session.user,
            &format!("reason: {reason}"),
            now_ms,
        )?;
        session.reason_pending = false;
        Ok(())
    }

    fn end_break_glass_if_expired(
        &mut self,
        session: &mut Session,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        if let Some(until) = session.break_glass_until_ms.filter(|&t| now_ms >= t) {
            Audit::append(
                &self.conn,
                &session.user,
                actions::BREAK_GLASS_END,
                &session.user,
                &format!("expired at {}", format_time_utc(until)),
                now_ms,
            )?;
            session.break_glass_until_ms = None;
        }
        Ok(())
    }

    /// The single permission check. In order: a session is required ([`AuthError::NoSession`]);
    /// it must be live in this service and its user still enabled with the same role
    /// ([`AuthError::SessionEnded`]); younger than [`AuthConfig::session_max_ms`]
    /// ([`AuthError::SessionExpired`]); not locked or idle past the timeout
    /// ([`AuthError::Locked`]); without a pending password change unless the permission is
    /// [`Permission::ChangeOwnPassword`] ([`AuthError::MustChangePassword`]); and the matrix must
    /// allow the effective role ([`AuthError::Forbidden`]). Does not record activity; call
    /// [`AuthService::touch`] for that.
    pub fn authorize(
        &self,
        session: Option<&Session>,
        permission: Permission,
        now_ms: i64,
    ) -> Result<Authorized, AuthError> {
        let s = session.ok_or(AuthError::NoSession)?;
        self.check_live(s, now_ms)?;
        let must_change: bool = self
            .conn
            .query_row(
                "SELECT must_change_password FROM users WHERE id = ?1",
                [s.user_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(AuthError::SessionEnded)?;
        if s.locked || self.is_idle(s, now_ms) {
            return Err(AuthError::Locked);
        }
        if must_change && permission != Permission::ChangeOwnPassword {
            return Err(AuthError::MustChangePassword);
        }
        let role = s.effective_role(now_ms);
        if allowed_by(role, permission, &self.policy) {
            Ok(Authorized {
                user: s.user().to_string(),
                permission,
            })
        } else {
            Err(AuthError::Forbidden { role, permission })
        }
    }

    /// What the window may show and do now. Alarms are shown and sounded in every state.
    pub fn screen_state(&self, session: Option<&Session>, now_ms: i64) -> ScreenState {
        let usable = |p| self.authorize(session, p, now_ms).is_ok();
        let live = session.is_some_and(|s| self.check_live(s, now_ms).is_ok());
        let locked = live && session.is_some_and(|s| s.locked || self.is_idle(s, now_ms));
        let s = session.filter(|_| live);
        ScreenState {
            mask_patient_identity: !usable(Permission::ViewWard),
            actions_enabled: live
                && !locked
                && Permission::ALL
                    .iter()
                    .any(|&p| p != Permission::ChangeOwnPassword && usable(p)),
            locked,
            user: s.map(|s| s.user.clone()),
            effective_role: s.map(|s| s.effective_role(now_ms)),
            break_glass_until_ms: s
                .filter(|s| s.is_break_glass(now_ms))
                .and_then(|s| s.break_glass_until_ms),
            must_change_password: s.is_some_and(|s| s.must_change_password),
            reason_pending: s.is_some_and(|s| s.reason_pending),
        }
    }

    /// Record an action done in a session (acknowledge, limit change, ...) after
    /// [`AuthService::authorize`] allowed it. Actions under break-glass are flagged
    /// (`[break-glass]` before the detail).
    pub fn audit(
        &mut self,
        session: &Session,
        action: &str,
        target: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<AuditEntry, AuthError> {
        self.check_live(session, now_ms)?;
        let detail = if session.is_break_glass(now_ms) {
            format!("[break-glass] {detail}")
        } else {
            detail.to_string()
        };
        Ok(Audit::append(
            &self.conn,
            &session.user,
            action,
            target,
            &detail,
            now_ms,
        )?)
    }

    fn is_idle(&self, s: &Session, now_ms: i64) -> bool {
        now_ms.saturating_sub(s.last_activity_ms) >= self.cfg.idle_lock_ms
    }

    /// Live in this service, its user still enabled with the session's role, not too old.
    fn check_live(&self, s: &Session, now_ms: i64) -> Result<(), AuthError> {
        if self.live.get(&s.token) != Some(&s.user_id) {
            return Err(AuthError::SessionEnded);
        }
        let row: Option<(bool, String)> = self
            .conn
            .query_row(
                "SELECT enabled, role FROM users WHERE id = ?1",
                [s.user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((true, role)) if role == s.role.as_str() => {}
            _ => return Err(AuthError::SessionEnded),
        }
        if now_ms.saturating_sub(s.created_ms) >= self.cfg.session_max_ms {
            return Err(AuthError::SessionExpired);
        }
        Ok(())
    }

    fn session_user(&self, s: &Session) -> Result<UserRow, AuthError> {
        user_by_id(&self.conn, s.user_id)?.ok_or(AuthError::SessionEnded)
    }
}

#[cfg(test)]
mod tests;
