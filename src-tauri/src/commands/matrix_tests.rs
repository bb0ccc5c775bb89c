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

use super::detail::{self, Adt, Monitor as _};
use super::{admin, alarms, auth, remote, reports, security, station_admin};
use crate::error::ApiError;
use crate::session::AuthState;
use vigil_core::alarms::default_limits;
use vigil_core::codes::Vital;
use vigil_core::patients;
use vigil_core::settings::Flag;
use vigil_core::telemetry::{BedId, Reading};

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
    // One tap, from the locked screen too; the reason comes afterwards.
    ("emergency_access",   [NO,   OK,   OK,   FORB,          OK,   OK,   FORB,          OK,   OK,   FORB]),
    ("emergency_reason",   [NO,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
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
    // Nurses acknowledge by default (a ward setting, see `nurses_acknowledge_is_a_ward_setting`).
    ("acknowledge_alarm",  [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    // Audio pause needs no log-in on a locked or unattended station (audited as such).
    ("audio_pause",        [OK,   OK,   OK,   FORB,          OK,   OK,   OK,            MC,   MC,   MC]),
    ("end_audio_pause",    [OK,   OK,   OK,   FORB,          OK,   OK,   OK,            MC,   MC,   MC]),
    ("list_devices",       [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("register_device",    [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remove_device",      [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("ward_settings",      [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_ward_profile",   [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_latching",       [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_latch_high",     [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_nurses_acknowledge", [NO, FORB, FORB, OK,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_alarm_volume",   [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("set_standby",        [NO,   FORB, OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("broker_settings",    [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("test_broker",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("save_broker",        [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("bed_limits",         [OK,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("set_bed_limits",     [NO,   FORB, OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("trend",              [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("samples",            [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("alarm_history",      [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("list_patients",      [OK,   OK,   OK,   OK,            OK,   OK,   OK,            OK,   OK,   OK]),
    ("admit_patient",      [NO,   FORB, OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("discharge_patient",  [NO,   FORB, OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("transfer_patient",   [NO,   FORB, OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("security_events",    [NO,   FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("security_acknowledge", [NO, FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("security_export_csv", [NO,  FORB, FORB, OK,            LCK,  LCK,  LCK,           MC,   MC,   MC]),
    // Remote patients: nurses and charge nurses (identities, reviews), never IT.
    ("remote_worklist",    [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remote_record",      [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remote_review",      [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remote_message",     [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remote_record_open", [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("remote_record_close", [NO,  OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    // Printouts carry the patient's identity (the chart's copy): nurses and charge nurses.
    ("print_strip",        [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("print_trend",        [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    ("print_shift",        [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
    // De-identified here; identified exports are the charge nurse's (`exports_by_identity`).
    ("export_data",        [NO,   OK,   OK,   FORB,          LCK,  LCK,  LCK,           MC,   MC,   MC]),
];

/// Every command registered in `main.rs` (besides `subscribe_ward`, in the table too).
const COMMANDS: [&str; 60] = [
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
    "emergency_access",
    "emergency_reason",
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
    "set_latch_high",
    "set_nurses_acknowledge",
    "set_alarm_volume",
    "set_standby",
    "broker_settings",
    "test_broker",
    "save_broker",
    "bed_limits",
    "set_bed_limits",
    "trend",
    "samples",
    "alarm_history",
    "list_patients",
    "admit_patient",
    "discharge_patient",
    "transfer_patient",
    "security_events",
    "security_acknowledge",
    "security_export_csv",
    "remote_worklist",
    "remote_record",
    "remote_review",
    "remote_message",
    "remote_record_open",
    "remote_record_close",
    "print_strip",
    "print_trend",
    "print_shift",
    "export_data",
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
            // A patient in bed 4W/01 (for discharge and transfer); 4W/02 is empty.
            let s = svc.login("charge1", PW, T0 - 9_000).unwrap();
            let adt = svc
                .authorize(Some(&s), Permission::AdmitDischargeTransfer, T0 - 9_000)
                .unwrap();
            let jane = patients::NewPatient {
                mrn: "MRN-1",
                name: "Jane Q. Doe",
                dob: "1950-02-03",
                sex: "F",
                pacemaker: false,
            };
            patients::admit(
                svc.connection(),
                &adt,
                &BedId::new("4W", "01"),
                &jane,
                T0 - 9_000,
            )
            .unwrap();
            // A remote patient in home/p-01 (for the remote commands).
            let manage = svc
                .authorize(Some(&s), vigil_core::remote::MANAGE, T0 - 9_000)
                .unwrap();
            let pat = vigil_core::remote::NewRemotePatient {
                mrn: "MRN-R1",
                name: "Ray Home",
                dob: "1948-05-06",
                tz: "Europe/London",
            };
            vigil_core::remote::enrol(
                svc.connection(),
                &manage,
                &BedId::new("home", "p-01"),
                &pat,
                T0 - 9_000,
            )
            .unwrap();
            svc.logout(s, T0 - 9_000).unwrap();
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
    // The station key of the copy: the template's (kept beside it).
    std::fs::copy(
        vigil_core::keys::beside(template()),
        vigil_core::keys::beside(&db),
    )
    .unwrap();
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
    assert_eq!(
        s.screen.user.is_some(),
        state != State::NoSession,
        "{state:?}"
    );
    assert_eq!(
        s.screen.locked,
        matches!(state, State::Locked(_)),
        "{state:?}"
    );
    assert_eq!(
        s.screen.must_change_password,
        matches!(state, State::MustChange(_)),
        "{state:?}"
    );
    Case { st, _dir: dir }
}

/// Call a command's logic with valid arguments; `Ok(())` or the error.
fn call(st: &AuthState, command: &str, state: State) -> Result<(), ApiError> {
    let own_pw = account(state).map_or(PW, |(_, pw)| pw);
    let all = AuditFilter::default();
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
            auth::break_glass(st, own_pw, "charge nurse off the ward, bed 3 alarming").map(drop)
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
        // The alarm commands over a fake engine; the engine's own check of the proof and the
        // effect on alarms are tested in vigil-core and end to end (tests/e2e_alarms.rs).
        "acknowledge_alarm" => alarms::acknowledge(st, &FakeMonitor::default(), "alarm-1"),
        "audio_pause" => alarms::audio_pause(st, &FakeMonitor::default(), None, true),
        "end_audio_pause" => alarms::audio_pause(st, &FakeMonitor::default(), None, false),
        "set_alarm_volume" => alarms::set_volume(st, 50).map(drop),
        "set_standby" => {
            alarms::set_standby(st, &FakeMonitor::default(), &BedId::new("4W", "01"), true)
        }
        "emergency_access" => auth::emergency_access(st, own_pw).map(drop),
        "emergency_reason" => auth::emergency_reason(st, "charge nurse off the ward").map(drop),
        "set_latch_high" => {
            station_admin::set_flag(st, &FakeMonitor::default(), Flag::LatchHigh, true)
        }
        "set_nurses_acknowledge" => {
            station_admin::set_flag(st, &FakeMonitor::default(), Flag::NursesAcknowledge, true)
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
        "set_ward_profile" => {
            station_admin::set_ward_profile(st, &FakeMonitor::default(), "paediatric")
        }
        "set_latching" => {
            station_admin::set_latching(st, &FakeMonitor::default(), "SPO2_LOW", true)
        }
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
        "bed_limits" => detail::bed_limits(st, &FakeMonitor::default(), "4W/01").map(drop),
        "set_bed_limits" => detail::set_bed_limits(
            st,
            &FakeMonitor::default(),
            "4W/01",
            &[detail::ThresholdChange {
                code: "HR_LOW".into(),
                threshold: 45.0,
            }],
        )
        .map(drop),
        "trend" => detail::trend(st, &db_of(st), "4W/01", "HR", T0 - 3_600_000, T0, 600).map(drop),
        "samples" => detail::samples(st, &db_of(st), "4W/01", "ECG_II", T0 - 10_000, T0).map(drop),
        "alarm_history" => {
            detail::alarm_history(st, &db_of(st), "4W/01", T0 - 3_600_000, T0).map(drop)
        }
        "list_patients" => detail::list_patients(st).map(drop),
        "security_events" => security::security_events(st, &Default::default()).map(drop),
        "security_acknowledge" => {
            // An event stored beforehand (as the engine's monitor would).
            let m = vigil_core::security::SecurityMonitor::default();
            m.report(vigil_core::security::Occurrence::new(
                vigil_core::security::Kind::UnknownDevice,
                vigil_core::security::Source::bed(&BedId::new("4W", "01")),
                "spoofed",
                T0,
            ));
            let id = m.flush(st.lock().svc.connection(), T0).unwrap()[0].event.id;
            security::security_acknowledge(st, Some(&m), id, "checked the network port").map(drop)
        }
        "security_export_csv" => security::security_export_csv(st, &Default::default()).map(drop),
        "admit_patient" => {
            let patient = adm("MRN-2", "John Roe");
            detail::adt(st, &FakeMonitor::default(), admit("4W/02", &patient)).map(drop)
        }
        "discharge_patient" => {
            let change = Adt::Discharge { bed: "4W/01" };
            detail::adt(st, &FakeMonitor::default(), change).map(drop)
        }
        "transfer_patient" => {
            let change = Adt::Transfer {
                from_bed: "4W/01",
                to_bed: "4W/02",
            };
            detail::adt(st, &FakeMonitor::default(), change).map(drop)
        }
        "remote_worklist" => remote::worklist(st, false).map(drop),
        "remote_record" => remote::record(st, "home/p-01", 7).map(drop),
        "remote_review" => remote::review(st, "home/p-01", "called_patient", "").map(drop),
        "remote_message" => remote::message(st, "home/p-01", "Please call us.", || ()).map(drop),
        "remote_record_open" => remote::record_open(st, "home/p-01").map(drop),
        // A view of one's own: opened first (refused the same way when not allowed).
        "remote_record_close" => {
            remote::record_open(st, "home/p-01").and_then(|v| remote::record_close(st, v).map(drop))
        }
        "print_strip" => {
            let onset = raised_alarm(st);
            reports::print_strip(
                st,
                &db_of(st),
                &Default::default(),
                "4W/01",
                "4W/01/HR_HIGH",
                onset,
                "chart copy",
            )
            .map(drop)
        }
        "print_trend" => reports::print_trend(
            st,
            &db_of(st),
            &Default::default(),
            "4W/01",
            T0 - 3_600_000,
            T0,
            900_000,
            "physician review",
        )
        .map(drop),
        "print_shift" => reports::print_shift(
            st,
            &db_of(st),
            &Default::default(),
            "4W",
            T0 - 8 * 3_600_000,
            T0,
            "handover",
        )
        .map(drop),
        "export_data" => reports::export_data(st, &db_of(st), &export_in(false)).map(drop),
        other => panic!("no such command in the matrix test: {other}"),
    }
}

/// A high-priority alarm raised on 4W/01 a minute before T0 (as the engine records one);
/// returns its onset.
fn raised_alarm(st: &AuthState) -> i64 {
    let onset = T0 - 60_000;
    st.lock()
        .svc
        .connection()
        .execute(
            "INSERT INTO alarm_events (t_ms, ward, bed, alarm_id, code, kind, priority, value,
                                       limit_value, message, state)
             VALUES (?1, '4W', '01', '4W/01/HR_HIGH', 'HR_HIGH', 'raise', 'high', 142, 120,
                     'HR HIGH 142 > 120', 'active')",
            [onset],
        )
        .unwrap();
    onset
}

/// The last hour of 4W/01 as FHIR, without waveforms.
fn export_in(identified: bool) -> reports::ExportIn {
    reports::ExportIn {
        bed: "4W/01".into(),
        from_ms: T0 - 3_600_000,
        to_ms: T0,
        format: "fhir".into(),
        identified,
        waveforms: false,
        reason: "study 42".into(),
    }
}

/// An admission with both identifiers.
fn adm(mrn: &str, name: &str) -> detail::AdmitIn {
    detail::AdmitIn {
        mrn: mrn.into(),
        name: name.into(),
        dob: "1961-07-14".into(),
        sex: "M".into(),
        pacemaker: false,
    }
}

/// The admission of `patient` to `bed`.
fn admit<'a>(bed: &'a str, patient: &'a detail::AdmitIn) -> Adt<'a> {
    Adt::Admit { bed, patient }
}

/// The engine as the commands see it: beds 4W/01 to 4W/08 with the default limits.
type FakeMonitor = vigil_core::usecase::fake::FakeLive;

/// The database file of a case (history is read on a connection of its own).
fn db_of(st: &AuthState) -> PathBuf {
    PathBuf::from(st.lock().svc.connection().path().unwrap())
}

/// The entries of `action` in the audit trail.
fn audited(st: &AuthState, action: &str) -> Vec<vigil_core::audit::AuditEntry> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..Default::default()
    };
    Audit::list(st.lock().svc.connection(), &filter).unwrap()
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
    assert!(
        s.first_run && s.screen.user.is_none() && s.screen.mask_patient_identity && s.alarms_shown
    );
    let weak = auth::create_first_admin(&st, "boss", "password123").unwrap_err();
    assert_eq!(weak.code, "password_policy", "{weak}");
    assert!(weak.message.contains("password refused"), "{weak}");
    let s = auth::create_first_admin(&st, "boss", STRONG).unwrap();
    assert!(!s.first_run);
    assert_eq!(s.screen.user.as_deref(), Some("boss"));
    assert_eq!(s.role, Some(Role::Admin));
    assert!(
        s.screen.mask_patient_identity,
        "the admin sees the ward masked"
    );
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
    assert!(!s.screen.mask_patient_identity && !s.screen.locked && s.screen.actions_enabled);
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
    assert!(
        s.screen.locked
            && s.screen.mask_patient_identity
            && !s.screen.actions_enabled
            && s.alarms_shown
    );
    assert!(s.permissions.is_empty(), "{:?}", s.permissions);
    assert_eq!(s.screen.user.as_deref(), Some("nurse1"));
    assert_eq!(auth::touch(&st).unwrap_err().code, "locked");
    auth::ward_access(&st).unwrap();
    // The lock is in the trail, and the password unlocks.
    let locks = audited(&st, "lock");
    assert_eq!(locks.len(), 1);
    assert!(locks[0].detail.starts_with("idle"), "{:?}", locks[0]);
    assert_eq!(
        auth::unlock(&st, "wrong password!!").unwrap_err().code,
        "invalid_credentials"
    );
    let s = auth::unlock(&st, PW).unwrap();
    assert!(!s.screen.locked && !s.screen.mask_patient_identity);
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
    assert_eq!(
        (s.screen.user.as_deref(), s.screen.locked),
        (Some("nurse1"), true)
    );
    let s = auth::login(&st, "charge1", PW).unwrap();
    assert_eq!(
        (s.screen.user.as_deref(), s.screen.locked),
        (Some("charge1"), false)
    );
    let outs = audited(&st, "logout");
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
    let short = auth::break_glass(&st, PW, "urgent").unwrap_err();
    assert_eq!(short.code, "break_glass_reason");
    let wrong =
        auth::break_glass(&st, "not her password", "charge nurse in theatre, bed 3").unwrap_err();
    assert_eq!(wrong.code, "invalid_credentials");
    let s = auth::break_glass(&st, PW, "charge nurse in theatre, bed 3 alarming").unwrap();
    let again = auth::break_glass(&st, PW, "charge nurse in theatre, bed 3 alarming").unwrap_err();
    assert_eq!(
        again.code, "break_glass_active",
        "not renewable while in force"
    );
    assert_eq!(s.role, Some(Role::Nurse));
    assert_eq!(s.screen.effective_role, Some(Role::ChargeNurse));
    assert_eq!(s.screen.break_glass_until_ms, Some(T0 + 30 * 60_000));
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
        &AuditFilter {
            actor: Some("boss".into()),
            action: Some(" ".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(entries.iter().all(|e| e.actor == "boss"));
    assert!(entries.iter().any(|e| e.action == "user_role_change"));
    let csv = admin::audit_export_csv(&st, &AuditFilter::default()).unwrap();
    assert!(csv.starts_with("id,t_ms,time_utc,actor,action,target,detail,prev_hash,hash,mac\r\n"));
    let last = admin::audit_list(&st, &AuditFilter::default()).unwrap();
    assert_eq!(last.last().map(|e| e.action.as_str()), Some("audit_export"));
    let v = admin::audit_verify(&st).unwrap();
    assert!(v.intact, "{v:?}");
    assert!(v.summary.starts_with("audit trail intact"), "{v:?}");
    let bad = AuditFilter {
        from_ms: Some(10),
        to_ms: Some(5),
        ..Default::default()
    };
    assert_eq!(
        admin::audit_list(&st, &bad).unwrap_err().code,
        "bad_request"
    );
}

// ----- bed detail -----

fn change(code: &str, threshold: f64) -> detail::ThresholdChange {
    detail::ThresholdChange {
        code: code.into(),
        threshold,
    }
}

#[test]
fn limits_are_checked_audited_applied_and_saved() {
    let c = case(State::Active(Role::ChargeNurse));
    let mon = FakeMonitor::default();
    let before = audit_len(&c.st);
    for (bad, why) in [
        (
            vec![change("HR_LOW", 130.0)],
            "must be below the high limit",
        ),
        (vec![change("HR_HIGH", 1200.0)], "outside 15 to 300"),
        (vec![change("SPO2_HIGH", 99.0)], "has no limit SPO2_HIGH"),
        (
            vec![change("HR_LOW", 40.0), change("HR_LOW", 45.0)],
            "twice",
        ),
        (vec![], "no limit to change"),
    ] {
        let e = detail::set_bed_limits(&c.st, &mon, "4W/01", &bad).unwrap_err();
        assert_eq!(e.code, "bad_request", "{bad:?}: {e}");
        assert!(e.message.contains(why), "{bad:?}: {e}");
    }
    assert_eq!(audit_len(&c.st), before, "refused changes are not audited");
    assert_eq!(mon.limits(&BedId::new("4W", "01")), default_limits());

    let out = detail::set_bed_limits(
        &c.st,
        &mon,
        "4W/01",
        &[change("SPO2_LOW", 88.0), change("HR_HIGH", 120.0)],
    )
    .unwrap();
    let spo2 = out.iter().find(|l| l.code == "SPO2_LOW").unwrap();
    assert_eq!((spo2.threshold, spo2.priority), (88.0, "high"));
    // Applied to the engine...
    let bed = BedId::new("4W", "01");
    let applied = mon.limits(&bed);
    assert_eq!(
        applied
            .iter()
            .find(|l| l.code() == "SPO2_LOW")
            .unwrap()
            .threshold,
        88.0
    );
    // ...audited old → new (only what changed)...
    let entries = audited(&c.st, "limits_change");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].actor.as_str(),
            entries[0].target.as_str(),
            entries[0].detail.as_str()
        ),
        ("charge1", "4W/01", "SPO2_LOW 90 → 88")
    );
    // ...and saved: a station reopening the file starts with them.
    let db = db_of(&c.st);
    let saved = vigil_core::limits_db::load(&vigil_core::store::open(&db).unwrap()).unwrap();
    assert_eq!(saved.get(&bed), Some(&applied));
    // The window reads them back.
    let shown = detail::bed_limits(&c.st, &mon, "4W/01").unwrap();
    assert_eq!(shown, out);
}

#[test]
fn patient_identity_is_masked_unless_the_session_may_see_the_ward() {
    let names = |st: &AuthState| -> Vec<(String, String, String, bool)> {
        detail::list_patients(st)
            .unwrap()
            .into_iter()
            .map(|p| (p.bed, p.mrn, p.name, p.masked))
            .collect()
    };
    let full = vec![(
        "4W/01".to_string(),
        "MRN-1".to_string(),
        "Jane Q. Doe".to_string(),
        false,
    )];
    let masked = vec![(
        "4W/01".to_string(),
        String::new(),
        "J. Q. D.".to_string(),
        true,
    )];
    assert_eq!(names(&case(State::NoSession).st), masked);
    assert_eq!(names(&case(State::Active(Role::Nurse)).st), full);
    assert_eq!(names(&case(State::Locked(Role::Nurse)).st), masked);
    assert_eq!(names(&case(State::MustChange(Role::Nurse)).st), masked);
    assert_eq!(names(&case(State::Active(Role::Admin)).st), masked);
}

#[test]
fn admit_discharge_transfer_refuse_what_cannot_be_done() {
    let c = case(State::Active(Role::ChargeNurse));
    let mon = FakeMonitor::default();
    let e = detail::adt(&c.st, &mon, admit("4W/01", &adm("MRN-9", "Al Smith"))).unwrap_err();
    assert_eq!(e.code, "bed_occupied", "{e}");
    let e = detail::adt(&c.st, &mon, admit("4W/09", &adm("MRN-9", "Al Smith"))).unwrap_err();
    assert_eq!(e.code, "bad_request", "{e}");
    let e = detail::adt(&c.st, &mon, admit("4W/02", &adm("MRN-1", "Al Smith"))).unwrap_err();
    assert_eq!(e.code, "mrn_in_use", "{e}");
    let e = detail::adt(&c.st, &mon, Adt::Discharge { bed: "4W/03" }).unwrap_err();
    assert_eq!(e.code, "no_patient", "{e}");
    // Two identifiers: no date of birth, no admission.
    let mut no_dob = adm("MRN-7", "Al Smith");
    no_dob.dob = String::new();
    let e = detail::adt(&c.st, &mon, admit("4W/02", &no_dob)).unwrap_err();
    assert_eq!(e.code, "bad_request", "{e}");
    let p = detail::adt(
        &c.st,
        &mon,
        Adt::Transfer {
            from_bed: "4W/01",
            to_bed: "4W/03",
        },
    )
    .unwrap();
    assert_eq!((p.bed.as_str(), p.name.as_str()), ("4W/03", "Jane Q. Doe"));
    let p = detail::adt(&c.st, &mon, admit("4W/01", &adm(" MRN-2 ", "Al Smith"))).unwrap();
    assert_eq!((p.mrn.as_str(), p.masked), ("MRN-2", false));
    let beds: Vec<String> = detail::list_patients(&c.st)
        .unwrap()
        .into_iter()
        .map(|p| p.bed)
        .collect();
    assert_eq!(beds, ["4W/01", "4W/03"]);
    assert_eq!(p.age, Some(detail_age("1961-07-14")));
    // A discharged bed goes to standby (no physiological alarms); an admission ends it.
    detail::adt(&c.st, &mon, Adt::Discharge { bed: "4W/03" }).unwrap();
    assert!(mon
        .standby
        .lock()
        .unwrap()
        .contains(&BedId::new("4W", "03")));
    // Saved, so that a restart keeps the bed in standby.
    let saved = vigil_core::settings::StationSettings::load(c.st.lock().svc.connection())
        .unwrap()
        .standby;
    assert!(saved.contains("4W/03"), "{saved:?}");
    detail::adt(&c.st, &mon, admit("4W/03", &adm("MRN-8", "Bo Lee"))).unwrap();
    assert!(!mon
        .standby
        .lock()
        .unwrap()
        .contains(&BedId::new("4W", "03")));
}

fn detail_age(dob: &str) -> u32 {
    patients::age_years(dob, vigil_core::store::now_ms()).unwrap()
}

#[test]
fn history_windows_are_bounded_and_empty_history_is_a_gap() {
    let c = case(State::Active(Role::Nurse));
    let db = db_of(&c.st);
    let e = detail::samples(&c.st, &db, "4W/01", "ECG_II", T0 - 61_000, T0).unwrap_err();
    assert_eq!(e.code, "bad_request", "{e}");
    let e = detail::samples(&c.st, &db, "4W/01", "NOPE", T0 - 1_000, T0).unwrap_err();
    assert_eq!(e.code, "bad_request", "{e}");
    let e = detail::trend(&c.st, &db, "4W/01", "HR", T0, T0 - 1, 100).unwrap_err();
    assert_eq!(e.code, "bad_request", "{e}");
    // Nothing stored: no samples, and the whole window (up to now) is a gap.
    let s = detail::samples(&c.st, &db, "4W/01", "ECG_II", T0 - 10_000, T0 + 5_000).unwrap();
    assert!(s.segments.is_empty());
    assert_eq!(s.gaps, vec![[T0 - 10_000, T0]]);
    // Trend of stored readings (written as the engine writes them), one bucket per minute
    // over an hour.
    let writer = vigil_core::store::StoreWriter::spawn(&db).unwrap();
    for (seq, (i, v)) in [(0_i64, 60.0), (1, 80.0), (70, 100.0)]
        .into_iter()
        .enumerate()
    {
        let t_ms = T0 - 3_600_000 + i * 1_000;
        let vitals = vigil_core::telemetry::Vitals {
            bed: BedId::new("4W", "01"),
            device: "m".into(),
            seq: seq as u64,
            readings: vec![Reading::new(Vital::Hr, Some(v), t_ms)],
            rejected: Vec::new(),
            late: Vec::new(),
        };
        writer
            .sender()
            .blocking_send(vigil_core::store::Op::Vitals(Arc::new(vitals), t_ms))
            .unwrap();
    }
    writer.close();
    let t = detail::trend(&c.st, &db, "4W/01", "HR", T0 - 3_600_000, T0, 60).unwrap();
    assert_eq!(t.bucket_ms, 60_000);
    let p: Vec<(f64, f64, f64)> = t.points.iter().map(|p| (p.min, p.max, p.mean)).collect();
    assert_eq!(p, vec![(60.0, 80.0, 70.0), (100.0, 100.0, 100.0)]);
}

#[test]
fn limits_follow_the_patient() {
    let c = case(State::Active(Role::ChargeNurse));
    let mon = FakeMonitor::default();
    let (b1, b2) = (BedId::new("4W", "01"), BedId::new("4W", "02"));
    detail::set_bed_limits(&c.st, &mon, "4W/01", &[change("SPO2_LOW", 85.0)]).unwrap();
    let own = mon.limits(&b1);
    assert_ne!(own, default_limits());
    // Transfer: the limits go with the patient; the old bed is back to the defaults, saved so.
    detail::adt(
        &c.st,
        &mon,
        Adt::Transfer {
            from_bed: "4W/01",
            to_bed: "4W/02",
        },
    )
    .unwrap();
    assert_eq!(mon.limits(&b2), own);
    assert_eq!(mon.limits(&b1), default_limits());
    let saved =
        vigil_core::limits_db::load(&vigil_core::store::open(&db_of(&c.st)).unwrap()).unwrap();
    assert_eq!(saved.get(&b2), Some(&own));
    assert!(!saved.contains_key(&b1));
    // Discharge: the next patient starts with the defaults.
    detail::adt(&c.st, &mon, Adt::Discharge { bed: "4W/02" }).unwrap();
    assert_eq!(mon.limits(&b2), default_limits());
    let saved =
        vigil_core::limits_db::load(&vigil_core::store::open(&db_of(&c.st)).unwrap()).unwrap();
    assert!(saved.is_empty(), "{saved:?}");
    let details: Vec<String> = audited(&c.st, "limits_change")
        .into_iter()
        .map(|e| format!("{} {}", e.target, e.detail))
        .collect();
    assert_eq!(
        details,
        [
            "4W/01 SPO2_LOW 90 → 85",
            "4W/02 limits of the patient transferred from 4W/01",
            "4W/01 defaults: patient transferred to 4W/02",
            "4W/02 defaults: patient discharged",
        ]
    );
}

#[test]
fn nurses_acknowledge_is_a_ward_setting_and_the_locked_screen_can_still_act() {
    let (st, now, _dir) = empty_station();
    auth::create_first_admin(&st, "boss", STRONG).unwrap();
    admin::create_user(&st, "nina", "nurse", PW).unwrap();
    // IT turns nurse acknowledgement off: refused to a nurse at once, and audited.
    station_admin::set_flag(&st, &FakeMonitor::default(), Flag::NursesAcknowledge, false).unwrap();
    auth::login(&st, "nina", PW).unwrap();
    let e = alarms::authorize(&st, Permission::AcknowledgeAlarm).unwrap_err();
    assert_eq!(e.code, "forbidden");
    let s = auth::auth_state(&st).unwrap();
    assert!(!s.permissions.contains(&Permission::AcknowledgeAlarm));
    // Locked: audio pause without logging in, audited under the locked user's name.
    auth::lock_screen(&st).unwrap();
    let p = alarms::authorize_pause(&st).unwrap();
    assert_eq!(p.user(), "nina (locked screen)");
    // Emergency access with the password only unlocks and grants charge-nurse rights; the
    // reason follows. Someone who does not know nina's password gets nothing.
    now.fetch_add(1000, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        auth::emergency_access(&st, "not-ninas-password")
            .unwrap_err()
            .code,
        "invalid_credentials"
    );
    assert!(auth::auth_state(&st).unwrap().screen.locked);
    let s = auth::emergency_access(&st, PW).unwrap();
    assert!(!s.screen.locked && s.screen.reason_pending, "{s:?}");
    assert!(s.permissions.contains(&Permission::AcknowledgeAlarm));
    assert_eq!(
        auth::emergency_reason(&st, "short").unwrap_err().code,
        "break_glass_reason"
    );
    let s = auth::emergency_reason(&st, "bed 3 desaturating, charge nurse away").unwrap();
    assert!(!s.screen.reason_pending);
    let trail = Audit::list(st.lock().svc.connection(), &AuditFilter::default()).unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    for want in ["station_setting", "break_glass", "break_glass_reason"] {
        assert!(actions.contains(&want), "{want}: {actions:?}");
    }
    assert!(trail
        .iter()
        .any(|e| e.action == "break_glass" && e.detail.contains("from the locked screen")));
    // Nobody logged in: the station's own pause.
    auth::logout(&st).unwrap();
    assert_eq!(
        alarms::authorize_pause(&st).unwrap().user(),
        "station (not logged in)"
    );
}

#[test]
fn exports_by_identity_and_prints_are_audited_with_the_reason() {
    let reading = |st: &AuthState| {
        st.lock()
            .svc
            .connection()
            .execute(
                "INSERT INTO numerics (ward, bed, device, t_ms, mdc, code, value, unit, status)
                 VALUES ('4W', '01', 'mon-01', ?1, 147842, 'HR', 72, '/min', 'final')",
                [T0 - 5_000],
            )
            .unwrap();
    };
    let export = |st: &AuthState, identified: bool| {
        reports::export_data(st, &db_of(st), &export_in(identified))
    };
    // A nurse: de-identified only, and nothing of Jane's identity in it.
    let n = case(State::Active(Role::Nurse));
    reading(&n.st);
    assert_eq!(export(&n.st, true).unwrap_err().code, "forbidden");
    let out = export(&n.st, false).unwrap();
    assert_eq!(out.readings, 1);
    let text = std::fs::read_to_string(&out.path).unwrap();
    for secret in ["Jane", "MRN-1", "1950-02-03", "mon-01", "4W"] {
        assert!(!text.contains(secret), "{secret} in a de-identified export");
    }
    // A charge nurse: identified.
    let c = case(State::Active(Role::ChargeNurse));
    reading(&c.st);
    let out = export(&c.st, true).unwrap();
    let text = std::fs::read_to_string(&out.path).unwrap();
    assert!(
        text.contains("Jane Q. Doe") && text.contains("MRN-1"),
        "{text}"
    );
    let entries = audited(&c.st, "data_export");
    assert!(
        entries.iter().any(|e| e.actor == "charge1"
            && e.target == "4W/01"
            && e.detail.contains("fhir identified")
            && e.detail.contains(&out.export_id)
            && e.detail.contains("reason: study 42")),
        "{entries:?}"
    );
    // A print: the PDF saved privately, a preview, the entry with its reason.
    let onset = raised_alarm(&c.st);
    let p = reports::print_strip(
        &c.st,
        &db_of(&c.st),
        &Default::default(),
        "4W/01",
        "4W/01/HR_HIGH",
        onset,
        "chart copy",
    )
    .unwrap();
    let pdf = std::fs::read(&p.path).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert!(p.preview.starts_with("data:image/png;base64,"));
    let entries = audited(&c.st, "report_print");
    assert!(
        entries
            .iter()
            .any(|e| e.actor == "charge1" && e.detail.contains("reason: chart copy")),
        "{entries:?}"
    );
    // An unknown alarm is said so.
    let e = reports::print_strip(
        &c.st,
        &db_of(&c.st),
        &Default::default(),
        "4W/01",
        "4W/01/HR_HIGH",
        onset + 1,
        "chart copy",
    )
    .unwrap_err();
    assert_eq!(e.code, "unknown_alarm", "{e}");
}
