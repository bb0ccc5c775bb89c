//! The role × command matrix: every window command, called through the same plain function the
//! Tauri wrapper calls, for every role in every session state (and with no session), must be
//! allowed or refused exactly as written below. The table is written out by hand from
//! docs/security.md ("Window commands"); it is deliberately not derived from `auth::allowed`.
//!
//! Each case runs on a fresh copy of a prepared database, so one command cannot influence the
//! next. A refused command must leave the audit trail untouched (it changed nothing).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use vigil_core::audit::{Audit, AuditFilter};
use vigil_core::auth::{Actor, AuthConfig, AuthService, Permission, Role};

use super::{admin, alarms, auth, station_admin};
use crate::error::ApiError;
use crate::session::AuthState;

const T0: i64 = 1_700_000_000_000;
const PW: &str = "correct horse battery";
const TEMP: &str = "Temporary-Kx7q-Wm3r";
const NEW_PW: &str = "a brand new passphrase";
const STRONG: &str = "violet tugboat kettle";

/// The session the command runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NoSession,
    Active(Role),
    Locked(Role),
    MustChange(Role),
}

/// Expected outcome: allowed, or refused with this `ApiError::code`.
const OK: &str = "ok";
const NO: &str = "no_session";
const LCK: &str = "locked";
const MC: &str = "must_change_password";
const FORB: &str = "forbidden";
const NFR: &str = "not_first_run";
const BGN: &str = "break_glass_not_needed";

/// Columns: no session | active nurse, charge, admin | locked nurse, charge, admin |
/// password change pending nurse, charge, admin.
#[rustfmt::skip]
const MATRIX: &[(&str, [&str; 10])] = &[
    //                      none  active nurse/charge/admin  locked nurse/charge/admin  must-change nurse/charge/admin
    ("subscribe_ward",     [OK,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("auth_state",         [OK,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("create_first_admin", [NFR,  NFR,  NFR,  NFR,           NFR,  NFR,  NFR,           NFR,  NFR,  NFR]),
    ("login",              [OK,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("logout",             [NO,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("lock_screen",        [NO,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("unlock",             [NO,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("touch",              [NO,   OK,   OK,   OK,            LCK,  LCK,  LCK,           OK,   OK,   OK]),
    ("change_password",    [NO,   OK,   OK,   OK,            LCK,  LCK,  LCK,           OK,   OK,   OK]),
    ("break_glass",        [NO,   OK,   BGN,  FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("list_users",         [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("create_user",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("disable_user",       [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("enable_user",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("reset_password",     [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("unlock_user",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_role",           [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("audit_list",         [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("audit_export_csv",   [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("audit_verify",       [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("acknowledge_alarm",  [NO,   FORB, OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("audio_pause",        [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("end_audio_pause",    [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("list_devices",       [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("register_device",    [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remove_device",      [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("ward_settings",      [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_ward_profile",   [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_latching",       [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("broker_settings",    [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("test_broker",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("save_broker",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
];

/// Every command registered in `main.rs` (besides `subscribe_ward`, in the table too).
const COMMANDS: [&str; 32] = [
    "subscribe_ward",
    "auth_state",
    "create_first_admin",
    "login",
    "logout",
    "lock_screen",
    "unlock",
    "touch",
    "change_password",
    "break_glass",
    "list_users",
    "create_user",
    "disable_user",
    "enable_user",
    "reset_password",
    "unlock_user",
    "set_role",
    "audit_list",
    "audit_export_csv",
    "audit_verify",
    "acknowledge_alarm",
    "audio_pause",
    "end_audio_pause",
    "list_devices",
    "register_device",
    "remove_device",
    "ward_settings",
    "set_ward_profile",
    "set_latching",
    "broker_settings",
    "test_broker",
    "save_broker",
];

fn column(state: State) -> usize {
    let r = |role| match role {
        Role::Nurse => 0,
        Role::ChargeNurse => 1,
        Role::Admin => 2,
    };
    match state {
        State::NoSession => 0,
        State::Active(role) => 1 + r(role),
        State::Locked(role) => 4 + r(role),
        State::MustChange(role) => 7 + r(role),
    }
}

/// (user name, password) logged in for a state.
fn account(state: State) -> Option<(&'static str, &'static str)> {
    let normal = |role| match role {
        Role::Nurse => "nurse1",
        Role::ChargeNurse => "charge1",
        Role::Admin => "admin1",
    };
    let pending = |role| match role {
        Role::Nurse => "nurse2",
        Role::ChargeNurse => "charge2",
        Role::Admin => "admin2",
    };
    match state {
        State::NoSession => None,
        State::Active(r) | State::Locked(r) => Some((normal(r), PW)),
        State::MustChange(r) => Some((pending(r), TEMP)),
    }
}

struct Template {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

/// The prepared database: admin1, nurse1, charge1 (password `PW`); admin2, nurse2, charge2
/// reset to `TEMP` (change pending); target1, a nurse for the admin commands to act on.
fn template() -> &'static Path {
    static T: OnceLock<Template> = OnceLock::new();
    &T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("template.db");
        {
            let mut svc = AuthService::open(&db, AuthConfig::default()).unwrap();
            let it = Actor::Local("cli:test".into());
            svc.create_first_admin("admin1", PW, T0 - 10_000).unwrap();
            for (name, role) in [
                ("nurse1", Role::Nurse),
                ("charge1", Role::ChargeNurse),
                ("admin2", Role::Admin),
                ("nurse2", Role::Nurse),
                ("charge2", Role::ChargeNurse),
                ("target1", Role::Nurse),
            ] {
                svc.create_user(&it, name, role, PW, T0 - 10_000).unwrap();
            }
            for name in ["admin2", "nurse2", "charge2"] {
                svc.reset_password(&it, name, Some(TEMP), T0 - 10_000)
                    .unwrap();
            }
        }
        Template { _dir: dir, db }
    })
    .db
}

struct Case {
    st: AuthState,
    _dir: tempfile::TempDir,
}

fn fake_clock(t: i64) -> (Arc<AtomicI64>, crate::session::Clock) {
    let now = Arc::new(AtomicI64::new(t));
    let n = Arc::clone(&now);
    (now, Arc::new(move || n.load(Ordering::SeqCst)))
}

/// A fresh copy of the template with the window in `state`.
fn case(state: State) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    std::fs::copy(template(), &db).unwrap();
    let svc = AuthService::open(&db, AuthConfig::default()).unwrap();
    let (_, clock) = fake_clock(T0);
    let st = AuthState::new(svc, clock);
    if let Some((name, pw)) = account(state) {
        auth::login(&st, name, pw).unwrap();
    }
    if let State::Locked(_) = state {
        auth::lock_screen(&st).unwrap();
    }
    // The window really is in the state the column claims.
    let s = auth::auth_state(&st).unwrap();
    assert_eq!(s.user.is_some(), state != State::NoSession, "{state:?}");
    assert_eq!(s.locked, matches!(state, State::Locked(_)), "{state:?}");
    assert_eq!(
        s.must_change_password,
        matches!(state, State::MustChange(_)),
        "{state:?}"
    );
    Case { st, _dir: dir }
}

/// Call a command's logic with valid arguments; `Ok(())` or the error.
fn call(st: &AuthState, command: &str, state: State) -> Result<(), ApiError> {
    let own_pw = account(state).map_or(PW, |(_, pw)| pw);
    let all = admin::AuditQuery::default();
    match command {
        "subscribe_ward" => auth::ward_access(st),
        "auth_state" => auth::auth_state(st).map(drop),
        "create_first_admin" => auth::create_first_admin(st, "admin9", STRONG).map(drop),
        "login" => auth::login(st, "nurse1", PW).map(drop),
        "logout" => auth::logout(st).map(drop),
        "lock_screen" => auth::lock_screen(st).map(drop),
        "unlock" => auth::unlock(st, own_pw).map(drop),
        "touch" => auth::touch(st),
        "change_password" => auth::change_password(st, own_pw, NEW_PW).map(drop),
        "break_glass" => {
            auth::break_glass(st, "charge nurse off the ward, bed 3 alarming").map(drop)
        }
        "list_users" => admin::list_users(st).map(drop),
        "create_user" => admin::create_user(st, "newuser", "nurse", STRONG).map(drop),
        "disable_user" => admin::disable_user(st, "target1").map(drop),
        "enable_user" => admin::enable_user(st, "target1").map(drop),
        "reset_password" => admin::reset_password(st, "target1").map(drop),
        "unlock_user" => admin::unlock_user(st, "target1").map(drop),
        "set_role" => admin::set_role(st, "target1", "charge-nurse").map(drop),
        "audit_list" => admin::audit_list(st, &all).map(drop),
        "audit_export_csv" => admin::audit_export_csv(st, &all).map(drop),
        "audit_verify" => admin::audit_verify(st).map(drop),
        // The permission step of the alarm commands; the engine's own check of the proof and
        // the effect on alarms are tested in vigil-core and end to end (tests/e2e_alarms.rs).
        "acknowledge_alarm" => alarms::authorize(st, Permission::AcknowledgeAlarm).map(drop),
        "audio_pause" | "end_audio_pause" => {
            alarms::authorize(st, Permission::AudioPause).map(drop)
        }
        "list_devices" => station_admin::list_devices(st, &[]).map(drop),
        "register_device" => {
            station_admin::register_device(st, "mon-7", "icu/07", "bedside monitor").map(drop)
        }
        "remove_device" => {
            // A device registered beforehand, straight in the database (not audited).
            vigil_core::ingest::register_device(
                st.lock().svc.connection(),
                "mon-9",
                &vigil_core::telemetry::BedId::new("icu", "09"),
                "",
                T0,
            )
            .unwrap();
            station_admin::remove_device(st, "mon-9").map(drop)
        }
        "ward_settings" => station_admin::ward_settings(st).map(drop),
        "set_ward_profile" => station_admin::set_ward_profile(st, "paediatric").map(drop),
        "set_latching" => station_admin::set_latching(st, "SPO2_LOW", true).map(drop),
        "broker_settings" => {
            let section = vigil_core::config::BrokerSection::default();
            let now = station_admin::BrokerNow {
                mode: "embedded",
                url: "mqtt://127.0.0.1:1883".into(),
                connected: true,
                last_error: None,
                config_path: None,
                section: &section,
            };
            station_admin::broker_settings(st, &now).map(drop)
        }
        // The permission step; the connection itself is tested in vigil-core (config::probe).
        "test_broker" => station_admin::candidate(
            st,
            &vigil_core::config::BrokerSection::default(),
            "mqtt://127.0.0.1:1883",
        )
        .map(drop),
        "save_broker" => {
            let dir = tempfile::tempdir().unwrap();
            station_admin::save_broker(
                st,
                Some(&dir.path().join("vigil.toml")),
                Some("mqtt://broker.example:1883"),
                Some("icu"),
            )
            .map(drop)
        }
        other => panic!("no such command in the matrix test: {other}"),
    }
}

fn audit_len(st: &AuthState) -> usize {
    Audit::list(st.lock().svc.connection(), &AuditFilter::default())
        .unwrap()
        .len()
}

fn check_states(states: &[State]) {
    let mut failures = Vec::new();
    for &(command, row) in MATRIX {
        for &state in states {
            let expected = row[column(state)];
            let c = case(state);
            let before = audit_len(&c.st);
            let got = match call(&c.st, command, state) {
                Ok(()) => OK,
                Err(e) => e.code,
            };
            if got != expected {
                failures.push(format!(
                    "{command} in {state:?}: expected {expected}, got {got}"
                ));
            }
            if got != OK && audit_len(&c.st) != before {
                failures.push(format!(
                    "{command} in {state:?}: refused ({got}) but the audit trail changed"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "matrix mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_matrix_lists_every_command_once() {
    let listed: Vec<&str> = MATRIX.iter().map(|(c, _)| *c).collect();
    assert_eq!(listed, COMMANDS);
}

#[test]
fn matrix_with_no_session() {
    check_states(&[State::NoSession]);
}

#[test]
fn matrix_with_an_active_session() {
    check_states(&Role::ALL.map(State::Active));
}

#[test]
fn matrix_with_a_locked_session() {
    check_states(&Role::ALL.map(State::Locked));
}

#[test]
fn matrix_with_a_password_change_pending() {
    check_states(&Role::ALL.map(State::MustChange));
}

// ----- behaviour beyond allowed / refused -----

fn empty_station() -> (AuthState, Arc<AtomicI64>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let svc = AuthService::open(&dir.path().join("vigil.db"), AuthConfig::default()).unwrap();
    let (now, clock) = fake_clock(T0);
    (AuthState::new(svc, clock), now, dir)
}

#[test]
fn first_run_creates_and_logs_in_the_admin_once() {
    let (st, _, _dir) = empty_station();
    let s = auth::auth_state(&st).unwrap();
    assert!(s.first_run && s.user.is_none() && s.masked && s.alarms_shown);
    let weak = auth::create_first_admin(&st, "boss", "password123").unwrap_err();
    assert_eq!(weak.code, "password_policy", "{weak}");
    assert!(weak.message.contains("password refused"), "{weak}");
    let s = auth::create_first_admin(&st, "boss", STRONG).unwrap();
    assert!(!s.first_run);
    assert_eq!(s.user.as_deref(), Some("boss"));
    assert_eq!(s.role, Some(Role::Admin));
    assert!(s.masked, "the admin sees the ward masked");
    assert!(s
        .permissions
        .contains(&vigil_core::auth::Permission::ManageUsers));
    let again = auth::create_first_admin(&st, "boss2", STRONG).unwrap_err();
    assert_eq!(again.code, "not_first_run");
}

#[test]
fn idle_timer_locks_and_alarms_stay_shown() {
    let (st, now, _dir) = empty_station();
    auth::create_first_admin(&st, "boss", STRONG).unwrap();
    admin::create_user(&st, "nurse1", "nurse", PW).unwrap();
    let s = auth::login(&st, "nurse1", PW).unwrap();
    assert!(!s.masked && !s.locked && s.actions_enabled);
    assert_eq!(s.idle_lock_at_ms, Some(T0 + 10 * 60_000));
    // Activity postpones the lock.
    now.store(T0 + 9 * 60_000, Ordering::SeqCst);
    auth::touch(&st).unwrap();
    now.store(T0 + 15 * 60_000, Ordering::SeqCst);
    assert!(!st.tick().locked, "touched 6 minutes ago");
    now.store(T0 + 19 * 60_000 + 1, Ordering::SeqCst);
    let summary = st.tick();
    assert!(summary.locked, "idle for 10 minutes: locked");
    let s = auth::auth_state(&st).unwrap();
    assert!(s.locked && s.masked && !s.actions_enabled && s.alarms_shown);
    assert!(s.permissions.is_empty(), "{:?}", s.permissions);
    assert_eq!(s.user.as_deref(), Some("nurse1"));
    assert_eq!(auth::touch(&st).unwrap_err().code, "locked");
    auth::ward_access(&st).unwrap();
    // The lock is in the trail, and the password unlocks.
    let locks = Audit::list(
        st.lock().svc.connection(),
        &AuditFilter {
            action: Some("lock".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(locks.len(), 1);
    assert!(locks[0].detail.starts_with("idle"), "{:?}", locks[0]);
    assert_eq!(
        auth::unlock(&st, "wrong password!!").unwrap_err().code,
        "invalid_credentials"
    );
    let s = auth::unlock(&st, PW).unwrap();
    assert!(!s.locked && !s.masked);
}

#[test]
fn another_user_replaces_a_locked_session_only_on_success() {
    let (st, _, _dir) = empty_station();
    auth::create_first_admin(&st, "boss", STRONG).unwrap();
    admin::create_user(&st, "nurse1", "nurse", PW).unwrap();
    admin::create_user(&st, "charge1", "charge-nurse", PW).unwrap();
    auth::login(&st, "nurse1", PW).unwrap();
    auth::lock_screen(&st).unwrap();
    let e = auth::login(&st, "charge1", "not the password").unwrap_err();
    assert_eq!(e.code, "invalid_credentials");
    let s = auth::auth_state(&st).unwrap();
    assert_eq!((s.user.as_deref(), s.locked), (Some("nurse1"), true));
    let s = auth::login(&st, "charge1", PW).unwrap();
    assert_eq!((s.user.as_deref(), s.locked), (Some("charge1"), false));
    let outs = Audit::list(
        st.lock().svc.connection(),
        &AuditFilter {
            action: Some("logout".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(outs.len(), 2, "boss, then nurse1 from the locked screen");
    assert_eq!(outs[1].actor, "nurse1");
    assert_eq!(outs[1].detail, "from the locked screen");
}

#[test]
fn break_glass_gives_a_nurse_charge_nurse_rights() {
    let (st, _, _dir) = empty_station();
    auth::create_first_admin(&st, "boss", STRONG).unwrap();
    admin::create_user(&st, "nurse1", "nurse", PW).unwrap();
    auth::login(&st, "nurse1", PW).unwrap();
    let short = auth::break_glass(&st, "urgent").unwrap_err();
    assert_eq!(short.code, "break_glass_reason");
    let s = auth::break_glass(&st, "charge nurse in theatre, bed 3 alarming").unwrap();
    assert_eq!(s.role, Some(Role::Nurse));
    assert_eq!(s.effective_role, Some(Role::ChargeNurse));
    assert_eq!(s.break_glass_until_ms, Some(T0 + 30 * 60_000));
    assert!(s
        .permissions
        .contains(&vigil_core::auth::Permission::AcknowledgeAlarm));
}

#[test]
fn admin_commands_work_end_to_end() {
    let (st, _, _dir) = empty_station();
    auth::create_first_admin(&st, "boss", STRONG).unwrap();
    let u = admin::create_user(&st, " nurse1 ", "nurse", PW).unwrap();
    assert_eq!((u.name.as_str(), u.role), ("nurse1", Role::Nurse));
    assert_eq!(
        admin::create_user(&st, "x", "surgeon", STRONG)
            .unwrap_err()
            .code,
        "bad_request"
    );
    assert_eq!(
        admin::create_user(&st, "nurse2", "nurse", "short")
            .unwrap_err()
            .code,
        "password_policy"
    );
    assert!(admin::disable_user(&st, "nurse1").unwrap());
    assert!(admin::enable_user(&st, "nurse1").unwrap());
    assert!(admin::set_role(&st, "nurse1", "charge-nurse").unwrap());
    assert_eq!(
        admin::disable_user(&st, "boss").unwrap_err().code,
        "last_admin"
    );
    let temp = admin::reset_password(&st, "nurse1").unwrap();
    assert!(temp.len() >= 16, "{temp}");
    let users = admin::list_users(&st).unwrap();
    assert_eq!(users.len(), 2);
    assert!(users[1].must_change_password);
    let entries = admin::audit_list(
        &st,
        &admin::AuditQuery {
            actor: Some("boss".into()),
            action: Some(" ".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(entries.iter().all(|e| e.actor == "boss"));
    assert!(entries.iter().any(|e| e.action == "user_role_change"));
    let csv = admin::audit_export_csv(&st, &admin::AuditQuery::default()).unwrap();
    assert!(csv.starts_with("id,t_ms,time_utc,actor,action,target,detail,prev_hash,hash\r\n"));
    let last = admin::audit_list(&st, &admin::AuditQuery::default()).unwrap();
    assert_eq!(last.last().map(|e| e.action.as_str()), Some("audit_export"));
    let v = admin::audit_verify(&st).unwrap();
    assert!(v.intact, "{v:?}");
    assert!(v.summary.starts_with("audit trail intact"), "{v:?}");
    let bad = admin::AuditQuery {
        from_ms: Some(10),
        to_ms: Some(5),
        ..Default::default()
    };
    assert_eq!(
        admin::audit_list(&st, &bad).unwrap_err().code,
        "bad_request"
    );
}
