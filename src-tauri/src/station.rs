//! The station: the engine (and, with no broker configured, the embedded broker and simulated
//! ward) owned by the desktop app, and the forwarding of live data to the window.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use tauri::ipc::Channel;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::watch;
use vigil_core::alarms::default_limits;
use vigil_core::config::{self, FileConfig};
use vigil_core::engine::{
    AlarmOptions, Engine, EngineConfig, EngineHandle, LiveEvent, WardSnapshot,
};
use vigil_core::{broker, sim};

use crate::frames::{self, AlarmOut, BedInfo, DeviceOut, EngineState, Frame, VitalOut, WaveOut};

/// How often a frame is sent to the window.
const FRAME_PERIOD: Duration = Duration::from_millis(50);

pub struct Station {
    engine: Engine,
    base: EngineState,
    /// The task forwarding live data to the window; replaced when the page subscribes again.
    forwarder: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// Stops the simulated ward (embedded mode).
    _sim_stop: Option<watch::Sender<bool>>,
    /// The SQLite file shared by the engine's store and the station's users and audit trail.
    db_path: std::path::PathBuf,
    /// `[auth] idle_lock_minutes` of the config file, if set.
    idle_lock_minutes: Option<u64>,
}

impl Station {
    /// Read the configuration (`$VIGIL_CONFIG`, else the platform config file, else defaults)
    /// and start everything. Must run inside the async runtime.
    pub fn start() -> Result<Station> {
        let path = std::env::var_os("VIGIL_CONFIG").map(std::path::PathBuf::from);
        let file = FileConfig::load(path.as_deref())?;
        let db_path = match file.storage.db.clone() {
            Some(p) => p,
            None => config::default_db_path()?,
        };
        let (url, mode, sim_stop) = match file.broker.settings()? {
            Some(s) => (s, "external", None),
            None => {
                let b = broker::start_embedded(None).context("starting the embedded broker")?;
                let beds = file.simulator.beds.unwrap_or(8);
                let (stop_tx, stop_rx) = watch::channel(false);
                let cfg = sim::SimConfig::new(b.url(), "sim", beds);
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = sim::run(cfg, stop_rx).await {
                        tracing::error!(error = %e, "simulated ward stopped");
                    }
                });
                tracing::info!(beds, url = %b.url(), "embedded broker and simulated ward");
                (b.url().into(), "embedded", Some(stop_tx))
            }
        };
        let ward = file.broker.ward.clone();
        // The desktop station raises desktop notifications (best effort) for alarms.
        let alarm_options = AlarmOptions {
            notifications: true,
            ..AlarmOptions::default()
        };
        let engine = Engine::start_with(
            EngineConfig {
                broker: url.clone(),
                client_id: file
                    .broker
                    .client_id
                    .clone()
                    .unwrap_or_else(config::default_client_id),
                ward: ward.clone(),
                db_path: db_path.clone(),
                limits: default_limits(),
                policy: file.ingest.policy(mode == "external"),
                mllp: file.ingest.mllp_listen,
            },
            alarm_options,
        )?;
        Ok(Station {
            engine,
            base: EngineState {
                ward: ward.unwrap_or_else(|| {
                    if mode == "embedded" {
                        "Simulated ward".into()
                    } else {
                        "All wards".into()
                    }
                }),
                broker: url.url.to_string(),
                connected: false,
                mode,
                error: None,
            },
            forwarder: Mutex::new(None),
            _sim_stop: sim_stop,
            db_path,
            idle_lock_minutes: file.auth.idle_lock_minutes,
        })
    }

    /// The station's database file (live data, users, audit trail).
    pub fn db_path(&self) -> &std::path::Path {
        &self.db_path
    }

    /// A handle on the running engine (limits, beds) for the bed detail commands.
    pub fn engine(&self) -> EngineHandle {
        self.engine.handle()
    }

    /// The configured idle-lock timeout, if any (`[auth] idle_lock_minutes`).
    pub fn idle_lock_minutes(&self) -> Option<u64> {
        self.idle_lock_minutes
    }

    /// Start sending frames to `channel`, replacing any previous subscriber (a reloaded page).
    pub fn subscribe(&self, channel: Channel<Frame>) {
        let rx = self.engine.subscribe();
        let snap = self.engine.snapshot();
        let base = self.base.clone();
        let engine = self.engine.handle();
        let task = tauri::async_runtime::spawn(forward(rx, snap, base, engine, channel));
        let mut slot = self.forwarder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
    }
}

async fn forward(
    mut rx: tokio::sync::broadcast::Receiver<LiveEvent>,
    snap: WardSnapshot,
    base: EngineState,
    engine: EngineHandle,
    channel: Channel<Frame>,
) {
    let mut frame = Frame::default();
    frames::full_state(&mut frame, &snap);
    let mut engine_state = snap
        .link
        .as_ref()
        .map(|l| frames::engine_state(&base, l))
        .unwrap_or_else(|| base.clone());
    frame.engine = Some(engine_state.clone());
    let mut tick = tokio::time::interval(FRAME_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut resync = false;
        loop {
            match rx.try_recv() {
                Ok(LiveEvent::Wave(w)) => frame.waves.push(WaveOut::from(&*w)),
                Ok(LiveEvent::Vitals(v)) => frame
                    .vitals
                    .extend(v.readings.iter().map(|r| VitalOut::new(&v.bed, r))),
                Ok(LiveEvent::Alarms(a)) => {
                    frame.alarms = Some(a.iter().map(AlarmOut::from).collect());
                }
                Ok(LiveEvent::Device(_)) | Ok(LiveEvent::BedAdded(_)) => resync = true,
                Ok(LiveEvent::Link(l)) => {
                    engine_state = frames::engine_state(&base, &l);
                    frame.engine = Some(engine_state.clone());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => {
                    // The window fell behind: skip the lost waveforms, resend the full state
                    // so that no alarm, bed or device change is missed.
                    tracing::warn!(lost = n, "window fell behind the live stream; resyncing");
                    resync = true;
                }
                Err(TryRecvError::Closed) => return,
            }
        }
        if resync {
            let s = engine.snapshot();
            frame.beds = Some(s.beds.iter().map(BedInfo::from).collect());
            frame.alarms = Some(s.alarms.iter().map(AlarmOut::from).collect());
            frame.devices = Some(s.devices.iter().map(DeviceOut::from).collect());
        }
        frame.t = vigil_core::store::now_ms();
        let out = std::mem::take(&mut frame);
        if let Err(e) = channel.send(out) {
            tracing::info!(error = %e, "window channel closed; stopping live updates");
            return;
        }
    }
}
