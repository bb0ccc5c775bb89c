//! The window's commands. Each is a thin Tauri wrapper over a plain function of [`auth`] or
//! [`admin`] that takes the [`AuthState`] (so the role matrix test calls the same logic without
//! a webview). They run on the blocking pool: password hashing takes tens of milliseconds and
//! must not stall the window or the async runtime.

pub mod admin;
pub mod alarms;
pub mod auth;
pub mod detail;
pub mod security;
pub mod station_admin;

use std::sync::Arc;

use vigil_core::audit::AuditEntry;
use vigil_core::auth::UserInfo;

use crate::error::ApiError;
use crate::session::AuthState;
use admin::{AuditQuery, VerifyOut};
use auth::AuthStateOut;

type St<'a> = tauri::State<'a, Arc<AuthState>>;

async fn run<T: Send + 'static>(
    st: &Arc<AuthState>,
    f: impl FnOnce(&AuthState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = Arc::clone(st);
    tauri::async_runtime::spawn_blocking(move || f(&st))
        .await
        .map_err(ApiError::internal)?
}

#[tauri::command]
pub async fn auth_state(st: St<'_>) -> Result<AuthStateOut, ApiError> {
    run(&st, auth::auth_state).await
}

#[tauri::command]
pub async fn create_first_admin(
    st: St<'_>,
    name: String,
    password: String,
) -> Result<AuthStateOut, ApiError> {
    run(&st, move |s| auth::create_first_admin(s, &name, &password)).await
}

#[tauri::command]
pub async fn login(st: St<'_>, name: String, password: String) -> Result<AuthStateOut, ApiError> {
    run(&st, move |s| auth::login(s, &name, &password)).await
}

#[tauri::command]
pub async fn logout(st: St<'_>) -> Result<AuthStateOut, ApiError> {
    run(&st, auth::logout).await
}

#[tauri::command]
pub async fn lock_screen(st: St<'_>) -> Result<AuthStateOut, ApiError> {
    run(&st, auth::lock_screen).await
}

#[tauri::command]
pub async fn unlock(st: St<'_>, password: String) -> Result<AuthStateOut, ApiError> {
    run(&st, move |s| auth::unlock(s, &password)).await
}

#[tauri::command]
pub async fn change_password(
    st: St<'_>,
    current_password: String,
    new_password: String,
) -> Result<AuthStateOut, ApiError> {
    run(&st, move |s| {
        auth::change_password(s, &current_password, &new_password)
    })
    .await
}

/// Break-glass: the password again and a reason; the ward's other stations are told.
#[tauri::command]
pub async fn break_glass(
    st: St<'_>,
    station: tauri::State<'_, crate::station::Station>,
    password: String,
    reason: String,
) -> Result<AuthStateOut, ApiError> {
    let r = reason.clone();
    let out = run(&st, move |s| auth::break_glass(s, &password, &r)).await?;
    if let (Some(user), Some(until)) = (&out.user, out.break_glass_until_ms) {
        station
            .engine()
            .announce_break_glass(user, reason.trim(), until);
    }
    Ok(out)
}

/// Emergency access: the password again, the reason afterwards; the ward's other stations are
/// told (as for break-glass).
#[tauri::command]
pub async fn emergency_access(
    st: St<'_>,
    station: tauri::State<'_, crate::station::Station>,
    password: String,
) -> Result<AuthStateOut, ApiError> {
    let out = run(&st, move |s| auth::emergency_access(s, &password)).await?;
    if let (Some(user), Some(until)) = (&out.user, out.break_glass_until_ms) {
        station
            .engine()
            .announce_break_glass(user, "emergency access; reason pending", until);
    }
    Ok(out)
}

#[tauri::command]
pub async fn emergency_reason(st: St<'_>, reason: String) -> Result<AuthStateOut, ApiError> {
    run(&st, move |s| auth::emergency_reason(s, &reason)).await
}

#[tauri::command]
pub async fn touch(st: St<'_>) -> Result<(), ApiError> {
    run(&st, auth::touch).await
}

#[tauri::command]
pub async fn list_users(st: St<'_>) -> Result<Vec<UserInfo>, ApiError> {
    run(&st, admin::list_users).await
}

#[tauri::command]
pub async fn create_user(
    st: St<'_>,
    name: String,
    role: String,
    password: String,
) -> Result<UserInfo, ApiError> {
    run(&st, move |s| admin::create_user(s, &name, &role, &password)).await
}

#[tauri::command]
pub async fn disable_user(st: St<'_>, name: String) -> Result<bool, ApiError> {
    run(&st, move |s| admin::disable_user(s, &name)).await
}

#[tauri::command]
pub async fn enable_user(st: St<'_>, name: String) -> Result<bool, ApiError> {
    run(&st, move |s| admin::enable_user(s, &name)).await
}

#[tauri::command]
pub async fn reset_password(st: St<'_>, name: String) -> Result<String, ApiError> {
    run(&st, move |s| admin::reset_password(s, &name)).await
}

#[tauri::command]
pub async fn unlock_user(st: St<'_>, name: String) -> Result<bool, ApiError> {
    run(&st, move |s| admin::unlock_user(s, &name)).await
}

#[tauri::command]
pub async fn set_role(st: St<'_>, name: String, role: String) -> Result<bool, ApiError> {
    run(&st, move |s| admin::set_role(s, &name, &role)).await
}

#[tauri::command]
pub async fn audit_list(st: St<'_>, filter: AuditQuery) -> Result<Vec<AuditEntry>, ApiError> {
    run(&st, move |s| admin::audit_list(s, &filter)).await
}

#[tauri::command]
pub async fn audit_export_csv(st: St<'_>, filter: AuditQuery) -> Result<String, ApiError> {
    run(&st, move |s| admin::audit_export_csv(s, &filter)).await
}

#[tauri::command]
pub async fn audit_verify(st: St<'_>) -> Result<VerifyOut, ApiError> {
    run(&st, admin::audit_verify).await
}

type Engine<'a> = tauri::State<'a, crate::station::Station>;

/// Acknowledge an alarm (charge nurse): silences it until it re-triggers.
#[tauri::command]
pub async fn acknowledge_alarm(
    st: St<'_>,
    station: Engine<'_>,
    id: String,
) -> Result<(), ApiError> {
    let engine = station.engine();
    run(&st, move |s| alarms::acknowledge(s, &engine, &id)).await
}

/// Pause alarm audio for one bed (`bed` = "ward/bed") or all beds (`bed` absent) for the
/// configured time (every role on duty; also from a locked screen or with nobody logged in,
/// audited as such).
#[tauri::command]
pub async fn audio_pause(
    st: St<'_>,
    station: Engine<'_>,
    bed: Option<String>,
) -> Result<(), ApiError> {
    pause(st, station, bed, true).await
}

/// End an audio pause early: tones return for conditions still present.
#[tauri::command]
pub async fn end_audio_pause(
    st: St<'_>,
    station: Engine<'_>,
    bed: Option<String>,
) -> Result<(), ApiError> {
    pause(st, station, bed, false).await
}

async fn pause(
    st: St<'_>,
    station: Engine<'_>,
    bed: Option<String>,
    on: bool,
) -> Result<(), ApiError> {
    let bed = bed.as_deref().map(alarms::parse_bed).transpose()?;
    let engine = station.engine();
    run(&st, move |s| {
        alarms::audio_pause(s, &engine, bed.as_ref(), on)
    })
    .await
}

/// The device registry and the devices heard live (admin).
#[tauri::command]
pub async fn list_devices(
    st: St<'_>,
    station: Engine<'_>,
) -> Result<Vec<station_admin::DeviceRow>, ApiError> {
    let seen = station.engine().snapshot().devices;
    run(&st, move |s| station_admin::list_devices(s, &seen)).await
}

/// Register a device to a bed (or move it); the engine uses the new mapping at once.
#[tauri::command]
pub async fn register_device(
    st: St<'_>,
    station: Engine<'_>,
    device: String,
    bed: String,
    label: String,
) -> Result<(), ApiError> {
    let reg = run(&st, move |s| {
        station_admin::register_device(s, &device, &bed, &label)
    })
    .await?;
    station.engine().set_registry(reg);
    Ok(())
}

#[tauri::command]
pub async fn remove_device(
    st: St<'_>,
    station: Engine<'_>,
    device: String,
) -> Result<(), ApiError> {
    let reg = run(&st, move |s| station_admin::remove_device(s, &device)).await?;
    station.engine().set_registry(reg);
    Ok(())
}

#[tauri::command]
pub async fn ward_settings(st: St<'_>) -> Result<station_admin::WardSettingsOut, ApiError> {
    run(&st, station_admin::ward_settings).await
}

/// Set the ward profile (default limits of beds without their own); applied at once.
#[tauri::command]
pub async fn set_ward_profile(
    st: St<'_>,
    station: Engine<'_>,
    profile: String,
) -> Result<(), ApiError> {
    let engine = station.engine();
    run(&st, move |s| {
        station_admin::set_ward_profile(s, &engine, &profile)
    })
    .await
}

/// Make every high-priority alarm latch, or not (IT); applied at once.
#[tauri::command]
pub async fn set_latch_high(st: St<'_>, station: Engine<'_>, on: bool) -> Result<(), ApiError> {
    let engine = station.engine();
    run(&st, move |s| {
        station_admin::set_flag(s, &engine, vigil_core::settings::Flag::LatchHigh, on)
    })
    .await
}

/// Whether nurses may acknowledge alarms (IT); applied at once to the session's rights.
#[tauri::command]
pub async fn set_nurses_acknowledge(
    st: St<'_>,
    station: Engine<'_>,
    on: bool,
) -> Result<(), ApiError> {
    let engine = station.engine();
    run(&st, move |s| {
        station_admin::set_flag(
            s,
            &engine,
            vigil_core::settings::Flag::NursesAcknowledge,
            on,
        )
    })
    .await
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

/// Put a bed in standby (no patient: physiological alarms off) or back to monitoring.
#[tauri::command]
pub async fn set_standby(
    st: St<'_>,
    station: Engine<'_>,
    bed: String,
    on: bool,
) -> Result<(), ApiError> {
    let bed = alarms::parse_bed(&bed)?;
    let engine = station.engine();
    run(&st, move |s| alarms::set_standby(s, &engine, &bed, on)).await
}

#[tauri::command]
pub async fn set_latching(
    st: St<'_>,
    station: Engine<'_>,
    code: String,
    latching: bool,
) -> Result<(), ApiError> {
    let engine = station.engine();
    run(&st, move |s| {
        station_admin::set_latching(s, &engine, &code, latching)
    })
    .await
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

// ----- the Security screen (commands/security.rs) -----

#[tauri::command]
pub async fn security_events(
    st: St<'_>,
    filter: vigil_core::security::SecurityFilter,
) -> Result<security::SecurityOut, ApiError> {
    run(&st, move |s| security::security_events(s, &filter)).await
}

#[tauri::command]
pub async fn security_acknowledge(
    st: St<'_>,
    station: Engine<'_>,
    id: i64,
    note: String,
) -> Result<vigil_core::security::SecurityEvent, ApiError> {
    let monitor = station.engine().security();
    run(&st, move |s| {
        security::security_acknowledge(s, Some(&monitor), id, &note)
    })
    .await
}

#[tauri::command]
pub async fn security_export_csv(
    st: St<'_>,
    filter: vigil_core::security::SecurityFilter,
) -> Result<String, ApiError> {
    run(&st, move |s| security::security_export_csv(s, &filter)).await
}

/// Write the broker URL and ward to the config file; used from the next start.
#[tauri::command]
pub async fn save_broker(
    st: St<'_>,
    station: Engine<'_>,
    url: Option<String>,
    ward: Option<String>,
) -> Result<String, ApiError> {
    let path = station.config_path().map(std::path::Path::to_path_buf);
    run(&st, move |s| {
        station_admin::save_broker(s, path.as_deref(), url.as_deref(), ward.as_deref())
    })
    .await
}

#[cfg(test)]
mod matrix_tests;
// ----- bed detail (commands/detail.rs) -----

type Station<'a> = tauri::State<'a, crate::station::Station>;

#[tauri::command]
pub async fn bed_limits(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
) -> Result<Vec<detail::LimitOut>, ApiError> {
    let mon = station.engine();
    run(&st, move |s| detail::bed_limits(s, &mon, &bed)).await
}

#[tauri::command]
pub async fn set_bed_limits(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
    changes: Vec<detail::ThresholdChange>,
) -> Result<Vec<detail::LimitOut>, ApiError> {
    let mon = station.engine();
    run(&st, move |s| {
        detail::set_bed_limits(s, &mon, &bed, &changes)
    })
    .await
}

#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn trend(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
    vital: String,
    from_ms: i64,
    to_ms: i64,
    buckets: u32,
) -> Result<detail::TrendOut, ApiError> {
    let db = station.db_path().to_path_buf();
    run(&st, move |s| {
        detail::trend(s, &db, &bed, &vital, from_ms, to_ms, buckets)
    })
    .await
}

#[tauri::command]
pub async fn samples(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
    channel: String,
    from_ms: i64,
    to_ms: i64,
) -> Result<detail::SamplesOut, ApiError> {
    let db = station.db_path().to_path_buf();
    run(&st, move |s| {
        detail::samples(s, &db, &bed, &channel, from_ms, to_ms)
    })
    .await
}

#[tauri::command]
pub async fn alarm_history(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<detail::AlarmHistoryOut>, ApiError> {
    let db = station.db_path().to_path_buf();
    run(&st, move |s| {
        detail::alarm_history(s, &db, &bed, from_ms, to_ms)
    })
    .await
}

#[tauri::command]
pub async fn list_patients(st: St<'_>) -> Result<Vec<detail::PatientOut>, ApiError> {
    run(&st, detail::list_patients).await
}

#[tauri::command]
pub async fn admit_patient(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
    patient: detail::AdmitIn,
) -> Result<detail::PatientOut, ApiError> {
    let mon = station.engine();
    run(&st, move |s| detail::admit_patient(s, &mon, &bed, &patient)).await
}

#[tauri::command]
pub async fn discharge_patient(
    st: St<'_>,
    station: Station<'_>,
    bed: String,
) -> Result<detail::PatientOut, ApiError> {
    let mon = station.engine();
    run(&st, move |s| detail::discharge_patient(s, &mon, &bed)).await
}

#[tauri::command]
pub async fn transfer_patient(
    st: St<'_>,
    station: Station<'_>,
    from_bed: String,
    to_bed: String,
) -> Result<detail::PatientOut, ApiError> {
    let mon = station.engine();
    run(&st, move |s| {
        detail::transfer_patient(s, &mon, &from_bed, &to_bed)
    })
    .await
}
