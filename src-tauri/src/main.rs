//! Vigil desktop app: a thin Tauri shell over `vigil-core`. It owns the station (engine,
//! embedded broker and simulated ward when no broker is configured) and forwards live data to
//! the web UI in batched frames over a `tauri::ipc::Channel`.
//!
//! Architecture invariant: no monitoring logic here. Commands check, convert and delegate.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(test)]
mod bindings;
mod commands;
mod error;
mod frames;
mod session;
mod sound;
mod station;

use std::sync::Arc;

use tauri::ipc::Channel;
use tauri::{Emitter, Manager};
use vigil_core::auth::{AuthConfig, AuthService};

use crate::error::ApiError;
use crate::session::{AuthState, IDLE_CHECK_PERIOD};
use crate::station::Station;

/// The event the window gets when the session changes on its own (idle lock, break-glass
/// end, session ended by an administrator); the window then asks for `auth_state`.
const AUTH_CHANGED: &str = "auth-changed";

/// Start streaming live ward data to the calling window. Open to every station user and to
/// nobody logged in: vitals and alarms never depend on the login state. Commands that change
/// state check the caller's role in Rust (`session::require`).
#[tauri::command]
fn subscribe_ward(
    on_frame: Channel,
    station: tauri::State<'_, Station>,
    auth: tauri::State<'_, Arc<AuthState>>,
) -> Result<(), ApiError> {
    commands::auth::ward_access(&auth)?;
    station.subscribe(on_frame);
    Ok(())
}

/// Users and sessions on the station's database file.
fn open_auth(station: &Station) -> anyhow::Result<AuthState> {
    let mut cfg = AuthConfig::default();
    if let Some(min) = station.idle_lock_minutes() {
        anyhow::ensure!(min >= 1, "[auth] idle_lock_minutes must be at least 1");
        cfg.idle_lock_ms = i64::try_from(min.saturating_mul(60_000)).unwrap_or(i64::MAX);
    }
    let mut svc = AuthService::open(station.db_path(), cfg)?;
    // Whether nurses acknowledge is the ward's setting (default yes).
    let settings = vigil_core::settings::StationSettings::load(svc.connection())?;
    svc.set_policy(vigil_core::auth::WardPolicy {
        nurses_acknowledge: settings.nurses_acknowledge,
    });
    // Failed log-ins, lockouts, break-glass and user changes become security events.
    svc.set_security(station.engine().security());
    Ok(AuthState::new(svc, AuthState::system_clock()))
}

/// The idle timer: every few seconds, lock the session once idle for the configured time and
/// tell the window whenever the session changed by itself.
async fn idle_timer(auth: Arc<AuthState>, app: tauri::AppHandle) {
    let mut tick = tokio::time::interval(IDLE_CHECK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tick.tick().await;
        let a = Arc::clone(&auth);
        let Ok(now) = tauri::async_runtime::spawn_blocking(move || a.tick()).await else {
            continue;
        };
        if last.as_ref() != Some(&now) {
            if last.is_some() {
                if let Err(e) = app.emit(AUTH_CHANGED, ()) {
                    tracing::warn!(error = %e, "telling the window about the session failed");
                }
            }
            last = Some(now);
        }
    }
}

/// A central station uses its whole screen: the window opens covering the monitor it is on
/// (and asks the window manager for full screen), whatever its configured size.
fn fill_screen(app: &tauri::App) {
    let Some(w) = app.get_webview_window("main") else {
        return;
    };
    match w.current_monitor() {
        Ok(Some(m)) => {
            let _ = w.set_position(*m.position());
            let _ = w.set_size(*m.size());
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the monitor size"),
    }
    if let Err(e) = w.set_fullscreen(true) {
        tracing::warn!(error = %e, "full screen refused");
    }
}

fn main() {
    vigil_core::logging::init();
    let result = tauri::Builder::default()
        .setup(|app| {
            // The engine spawns its tasks on Tauri's Tokio runtime.
            let station = tauri::async_runtime::block_on(async { Station::start() })?;
            let auth = Arc::new(open_auth(&station)?);
            app.manage(station);
            app.manage(Arc::clone(&auth));
            tauri::async_runtime::spawn(idle_timer(auth, app.handle().clone()));
            fill_screen(app);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            subscribe_ward,
            commands::auth_state,
            commands::create_first_admin,
            commands::login,
            commands::logout,
            commands::lock_screen,
            commands::unlock,
            commands::change_password,
            commands::break_glass,
            commands::emergency_access,
            commands::emergency_reason,
            commands::touch,
            commands::list_users,
            commands::create_user,
            commands::disable_user,
            commands::enable_user,
            commands::reset_password,
            commands::unlock_user,
            commands::set_role,
            commands::audit_list,
            commands::audit_export_csv,
            commands::audit_verify,
            commands::acknowledge_alarm,
            commands::audio_pause,
            commands::end_audio_pause,
            commands::list_devices,
            commands::register_device,
            commands::remove_device,
            commands::ward_settings,
            commands::set_ward_profile,
            commands::set_latching,
            commands::set_latch_high,
            commands::set_nurses_acknowledge,
            commands::set_alarm_volume,
            commands::set_standby,
            commands::broker_settings,
            commands::test_broker,
            commands::save_broker,
            commands::bed_limits,
            commands::set_bed_limits,
            commands::trend,
            commands::samples,
            commands::alarm_history,
            commands::print_strip,
            commands::print_trend,
            commands::print_shift,
            commands::export_data,
            commands::list_patients,
            commands::admit_patient,
            commands::discharge_patient,
            commands::transfer_patient,
            commands::remote_worklist,
            commands::remote_record,
            commands::remote_review,
            commands::remote_message,
            commands::remote_record_open,
            commands::remote_record_close,
            commands::security_events,
            commands::security_acknowledge,
            commands::security_export_csv,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!(error = %e, "Vigil failed");
        eprintln!("Vigil failed: {e}");
        std::process::exit(1);
    }
}
