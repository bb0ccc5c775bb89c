//! The window's commands. Each is a thin Tauri wrapper over a plain function of [`auth`] or
//! [`admin`] that takes the [`AuthState`] (so the role matrix test calls the same logic without
//! a webview). They run on the blocking pool: password hashing takes tens of milliseconds and
//! must not stall the window or the async runtime.

pub mod admin;
pub mod alarms;
pub mod auth;
pub mod detail;
pub mod remote;
pub mod reports;
pub mod security;
pub mod station_admin;

use std::sync::Arc;

use vigil_core::audit::{AuditEntry, AuditFilter};
use vigil_core::auth::UserInfo;
use vigil_core::settings::Flag;
use vigil_core::usecase::Live;

use crate::error::ApiError;
use crate::session::AuthState;
use admin::VerifyOut;
use auth::AuthStateOut;
use detail::Adt;

type St<'a> = tauri::State<'a, Arc<AuthState>>;
type Engine<'a> = tauri::State<'a, crate::station::Station>;

async fn run<T: Send + 'static>(
    st: &Arc<AuthState>,
    f: impl FnOnce(&AuthState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = Arc::clone(st);
    tauri::async_runtime::spawn_blocking(move || f(&st))
        .await
        .map_err(ApiError::internal)?
}

/// Declares the `#[tauri::command]` wrappers that run one call on the blocking pool ([`run`]),
/// an entry each: `name(window arguments) -> Ok type = |s| call;`, the call made with the
/// session state `s`. `|s, x = station.part()...|` also takes the station (the command's
/// `tauri::State` of [`crate::station::Station`], named as written) and binds `x` to that part
/// of it first, for the call. `DECLARED` lists the entries' signatures as written, for the
/// bindings test (`bindings::command_table_matches_the_commands`).
macro_rules! commands {
    (@fn $(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
        [], |$s:ident| $call:expr) => {
        $(#[$doc])*
        #[tauri::command]
        pub async fn $name(st: St<'_>, $($arg: $ty),*) -> Result<$ret, ApiError> {
            run(&st, move |$s| $call).await
        }
    };
    (@fn $(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
        [$part:ident = $station:ident $(.$m:ident $(($($a:tt)*))?)+], |$s:ident| $call:expr) => {
        $(#[$doc])*
        #[tauri::command]
        pub async fn $name(
            st: St<'_>,
            $station: Engine<'_>,
            $($arg: $ty),*
        ) -> Result<$ret, ApiError> {
            let $part = $station$(.$m $(($($a)*))?)+;
            run(&st, move |$s| $call).await
        }
    };
    ($(
        $(#[$doc:meta])*
        $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty =
            |$s:ident $(, $part:ident = $station:ident $(.$m:ident $(($($a:tt)*))?)+)?| $call:expr;
    )*) => {
        $(commands!(@fn $(#[$doc])* $name($($arg: $ty),*) -> $ret,
            [$($part = $station $(.$m $(($($a)*))?)+)?], |$s| $call);)*

        /// Each command of `commands!`: its name, window arguments and `Ok` type, as written.
        #[cfg(test)]
        pub(crate) const DECLARED: &[(&str, &[&str], &str)] =
            &[$((stringify!($name), &[$(stringify!($arg: $ty)),*], stringify!($ret))),*];
    };
}

commands! {
    // ----- the window's own session (commands/auth.rs) -----
    auth_state() -> AuthStateOut = |s| auth::auth_state(s);
    create_first_admin(name: String, password: String) -> AuthStateOut =
        |s| auth::create_first_admin(s, &name, &password);
    login(name: String, password: String) -> AuthStateOut = |s| auth::login(s, &name, &password);
    logout() -> AuthStateOut = |s| auth::logout(s);
    lock_screen() -> AuthStateOut = |s| auth::lock_screen(s);
    unlock(password: String) -> AuthStateOut = |s| auth::unlock(s, &password);
    change_password(current_password: String, new_password: String) -> AuthStateOut =
        |s| auth::change_password(s, &current_password, &new_password);
    /// Break-glass: the password again and a reason; the ward's other stations are told.
    break_glass(password: String, reason: String) -> AuthStateOut =
        |s, engine = station.engine()| auth::break_glass(s, &password, &reason)
            .inspect(|out| announce_break_glass(&engine, out, reason.trim()));
    /// Emergency access: the password again, the reason afterwards; the ward's other stations
    /// are told (as for break-glass).
    emergency_access(password: String) -> AuthStateOut =
        |s, engine = station.engine()| auth::emergency_access(s, &password).inspect(|out| {
            announce_break_glass(&engine, out, "emergency access; reason pending")
        });
    emergency_reason(reason: String) -> AuthStateOut = |s| auth::emergency_reason(s, &reason);
    touch() -> () = |s| auth::touch(s);

    // ----- users and the audit trail (commands/admin.rs) -----
    list_users() -> Vec<UserInfo> = |s| admin::list_users(s);
    create_user(name: String, role: String, password: String) -> UserInfo =
        |s| admin::create_user(s, &name, &role, &password);
    disable_user(name: String) -> bool = |s| admin::disable_user(s, &name);
    enable_user(name: String) -> bool = |s| admin::enable_user(s, &name);
    reset_password(name: String) -> String = |s| admin::reset_password(s, &name);
    unlock_user(name: String) -> bool = |s| admin::unlock_user(s, &name);
    set_role(name: String, role: String) -> bool = |s| admin::set_role(s, &name, &role);
    audit_list(filter: AuditFilter) -> Vec<AuditEntry> = |s| admin::audit_list(s, &filter);
    audit_export_csv(filter: AuditFilter) -> String = |s| admin::audit_export_csv(s, &filter);
    audit_verify() -> VerifyOut = |s| admin::audit_verify(s);

    // ----- alarms (commands/alarms.rs) -----
    /// Acknowledge an alarm (charge nurse): silences it until it re-triggers.
    acknowledge_alarm(id: String) -> () =
        |s, engine = station.engine()| alarms::acknowledge(s, &engine, &id);
    /// Pause alarm audio for one bed (`bed` = "ward/bed") or all beds (`bed` absent) for the
    /// configured time (every role on duty; also from a locked screen or with nobody logged
    /// in, audited as such).
    audio_pause(bed: Option<String>) -> () =
        |s, engine = station.engine()| pause(s, &engine, bed.as_deref(), true);
    /// End an audio pause early: tones return for conditions still present.
    end_audio_pause(bed: Option<String>) -> () =
        |s, engine = station.engine()| pause(s, &engine, bed.as_deref(), false);
    /// Put a bed in standby (no patient: physiological alarms off) or back to monitoring.
    set_standby(bed: String, on: bool) -> () =
        |s, engine = station.engine()| {
            alarms::set_standby(s, &engine, &alarms::parse_bed(&bed)?, on)
        };

    // ----- devices, ward settings, broker (commands/station_admin.rs) -----
    /// The device registry and the devices heard live (admin).
    list_devices() -> Vec<station_admin::DeviceRow> =
        |s, seen = station.engine().snapshot().devices| station_admin::list_devices(s, &seen);
    /// Register a device to a bed (or move it); the engine uses the new mapping at once.
    register_device(device: String, bed: String, label: String) -> () =
        |s, engine = station.engine()| station_admin::register_device(s, &device, &bed, &label)
            .map(|reg| engine.set_registry(reg));
    remove_device(device: String) -> () =
        |s, engine = station.engine()| station_admin::remove_device(s, &device)
            .map(|reg| engine.set_registry(reg));
    ward_settings() -> station_admin::WardSettingsOut = |s| station_admin::ward_settings(s);
    /// Set the ward profile (default limits of beds without their own); applied at once.
    set_ward_profile(profile: String) -> () =
        |s, engine = station.engine()| station_admin::set_ward_profile(s, &engine, &profile);
    /// Make every high-priority alarm latch, or not (IT); applied at once.
    set_latch_high(on: bool) -> () =
        |s, engine = station.engine()| station_admin::set_flag(s, &engine, Flag::LatchHigh, on);
    /// Whether nurses may acknowledge alarms (IT); applied at once to the session's rights.
    set_nurses_acknowledge(on: bool) -> () = |s, engine = station.engine()| {
        station_admin::set_flag(s, &engine, Flag::NursesAcknowledge, on)
    };
    set_latching(code: String, latching: bool) -> () = |s, engine = station.engine()| {
        station_admin::set_latching(s, &engine, &code, latching)
    };
    /// Write the broker URL and ward to the config file; used from the next start.
    save_broker(url: Option<String>, ward: Option<String>) -> String =
        |s, path = station.config_path().map(std::path::Path::to_path_buf)| {
            station_admin::save_broker(s, path.as_deref(), url.as_deref(), ward.as_deref())
        };

    // ----- the Security screen (commands/security.rs) -----
    security_events(filter: vigil_core::security::SecurityFilter) -> security::SecurityOut =
        |s| security::security_events(s, &filter);
    security_acknowledge(id: i64, note: String) -> vigil_core::security::SecurityEvent =
        |s, monitor = station.engine().security()| {
            security::security_acknowledge(s, Some(&monitor), id, &note)
        };
    security_export_csv(filter: vigil_core::security::SecurityFilter) -> String =
        |s| security::security_export_csv(s, &filter);

    // ----- bed detail (commands/detail.rs) -----
    bed_limits(bed: String) -> Vec<detail::LimitOut> =
        |s, mon = station.engine()| detail::bed_limits(s, &mon, &bed);
    set_bed_limits(bed: String, changes: Vec<detail::ThresholdChange>) -> Vec<detail::LimitOut> =
        |s, mon = station.engine()| detail::set_bed_limits(s, &mon, &bed, &changes);
    trend(bed: String, vital: String, from_ms: i64, to_ms: i64, buckets: u32) -> detail::TrendOut =
        |s, db = station.db_path().to_path_buf()| {
            detail::trend(s, &db, &bed, &vital, from_ms, to_ms, buckets)
        };
    samples(bed: String, channel: String, from_ms: i64, to_ms: i64) -> detail::SamplesOut =
        |s, db = station.db_path().to_path_buf()| {
            detail::samples(s, &db, &bed, &channel, from_ms, to_ms)
        };
    alarm_history(bed: String, from_ms: i64, to_ms: i64) -> Vec<detail::AlarmHistoryOut> =
        |s, db = station.db_path().to_path_buf()| {
            detail::alarm_history(s, &db, &bed, from_ms, to_ms)
        };
    list_patients() -> Vec<detail::PatientOut> = |s| detail::list_patients(s);

    // ----- printouts and exports (commands/reports.rs) -----
    /// An alarm strip of the alarm raised on `bed` as `alarm_id` at `onset_ms` (print_report).
    print_strip(bed: String, alarm_id: String, onset_ms: i64, reason: String) -> reports::PrintOut =
        |s, ctx = station.report_context()| {
            reports::print_strip(s, &ctx.0, &ctx.1, &bed, &alarm_id, onset_ms, &reason)
        };
    /// A trend report of a bed, a table row per `interval_ms` (print_report).
    print_trend(bed: String, from_ms: i64, to_ms: i64, interval_ms: i64, reason: String)
        -> reports::PrintOut =
        |s, ctx = station.report_context()| {
            reports::print_trend(s, &ctx.0, &ctx.1, &bed, from_ms, to_ms, interval_ms, &reason)
        };
    /// The shift handover of a ward (print_report).
    print_shift(ward: String, from_ms: i64, to_ms: i64, reason: String) -> reports::PrintOut =
        |s, ctx = station.report_context()| {
            reports::print_shift(s, &ctx.0, &ctx.1, &ward, from_ms, to_ms, &reason)
        };
    /// A bed's data for research, `fhir` or `csv`, identified (export_identified) or not
    /// (export_deidentified).
    export_data(request: reports::ExportIn) -> reports::ExportOut =
        |s, db = station.db_path().to_path_buf()| reports::export_data(s, &db, &request);

    // ----- remote patients (commands/remote.rs) -----
    /// The remote worklist, most urgent first (or only the escalated patients).
    remote_worklist(escalated_only: bool) -> Vec<remote::WorkRowOut> =
        |s| remote::worklist(s, escalated_only);
    /// A remote patient's record over the last `days` days.
    remote_record(bed: String, days: u32) -> remote::RemoteRecordOut =
        |s| remote::record(s, &bed, days);
    /// Record a review of a remote patient (audited).
    remote_review(bed: String, action: String, note: String) -> remote::ReviewOut =
        |s| remote::review(s, &bed, &action, &note);
    /// Write a short message to a remote patient (audited); sent to their topic at once.
    remote_message(bed: String, text: String) -> remote::MessageOut =
        |s, engine = station.engine()| remote::message(s, &bed, &text, || engine.remote_wake());
    /// Open a remote patient's record (audited, timed): the view's id.
    remote_record_open(bed: String) -> i64 = |s| remote::record_open(s, &bed);
    /// Close a record view: the review time it counted, ms.
    remote_record_close(view: i64) -> i64 = |s| remote::record_close(s, view);
    admit_patient(bed: String, patient: detail::AdmitIn) -> detail::PatientOut =
        |s, mon = station.engine()| {
            detail::adt(s, &mon, Adt::Admit { bed: &bed, patient: &patient })
        };
    discharge_patient(bed: String) -> detail::PatientOut =
        |s, mon = station.engine()| detail::adt(s, &mon, Adt::Discharge { bed: &bed });
    transfer_patient(from_bed: String, to_bed: String) -> detail::PatientOut =
        |s, mon = station.engine()| {
            detail::adt(s, &mon, Adt::Transfer { from_bed: &from_bed, to_bed: &to_bed })
        };
}

/// Tell the ward's other stations about the break-glass access `out` shows, if any.
fn announce_break_glass(
    engine: &vigil_core::engine::EngineHandle,
    out: &AuthStateOut,
    reason: &str,
) {
    if let (Some(user), Some(until)) = (&out.screen.user, out.screen.break_glass_until_ms) {
        engine.announce_break_glass(user, reason, until);
    }
}

/// An audio pause of `bed` ("ward/bed"; every bed when absent), or its early end (`on` false).
fn pause(s: &AuthState, live: &dyn Live, bed: Option<&str>, on: bool) -> Result<(), ApiError> {
    let bed = bed.map(alarms::parse_bed).transpose()?;
    alarms::audio_pause(s, live, bed.as_ref(), on)
}

/// The alarm volume (every role on duty; never below the minimum); applied at once.
#[tauri::command]
pub async fn set_alarm_volume(
    st: St<'_>,
    station: Engine<'_>,
    percent: i64,
) -> Result<u8, ApiError> {
    let v = run(&st, move |s| alarms::set_volume(s, percent)).await?;
    station.sound().set_volume(v);
    Ok(v)
}

#[tauri::command]
pub async fn broker_settings(
    st: St<'_>,
    station: Engine<'_>,
) -> Result<station_admin::BrokerOut, ApiError> {
    station_admin::broker_settings(&st, &station.broker_now())
}

/// Try to connect to `url` (5 s at most) with the config file's TLS files, and with its
/// credentials only when `url` is the configured broker.
#[tauri::command]
pub async fn test_broker(st: St<'_>, station: Engine<'_>, url: String) -> Result<String, ApiError> {
    let section = station.broker_section().clone();
    let (settings, withheld) =
        run(&st, move |s| station_admin::candidate(s, &section, &url)).await?;
    let note = if withheld {
        " (without the station's credentials: they are only sent to the configured broker)"
    } else {
        ""
    };
    match settings.probe(std::time::Duration::from_secs(5)).await {
        Ok(()) => Ok(format!("connected to {settings}{note}")),
        Err(e) => Err(ApiError::new("broker_unreachable", format!("{e}{note}"))),
    }
}

#[cfg(test)]
mod matrix_tests;
