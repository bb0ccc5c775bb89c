//! Vigil desktop app: a thin Tauri shell over `vigil-core`. It owns the station (engine,
//! embedded broker and simulated ward when no broker is configured) and forwards live data to
//! the web UI in batched frames over a `tauri::ipc::Channel`.
//!
//! Architecture invariant: no monitoring logic here. Commands check, convert and delegate.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod frames;
mod station;

use tauri::ipc::Channel;
use tauri::Manager;
use tracing_subscriber::EnvFilter;

use crate::frames::Frame;
use crate::station::Station;

/// Start streaming live ward data to the calling window. Viewing the ward is open to every
/// station user; commands that change state will check the caller's role here, in Rust.
#[tauri::command]
fn subscribe_ward(on_frame: Channel<Frame>, station: tauri::State<'_, Station>) {
    station.subscribe(on_frame);
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off,rumqttc=warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = tauri::Builder::default()
        .setup(|app| {
            // The engine spawns its tasks on Tauri's Tokio runtime.
            let station = tauri::async_runtime::block_on(async { Station::start() })?;
            app.manage(station);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![subscribe_ward])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!(error = %e, "Vigil failed");
        eprintln!("Vigil failed: {e}");
        std::process::exit(1);
    }
}
