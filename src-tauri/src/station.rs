//! The station: the engine (and, with no broker configured, the embedded broker and simulated
//! ward) owned by the desktop app, and the forwarding of live data to the window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tauri::ipc::{Channel, InvokeResponseBody};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::watch;
use vigil_core::config::{self, BrokerSettings, FileConfig};
use vigil_core::engine::{
    AlarmOptions, Engine, EngineConfig, EngineHandle, LiveEvent, WardSnapshot,
};
use vigil_core::telemetry::BedId;
use vigil_sim::{self as sim, broker};

use crate::commands::station_admin::BrokerNow;
use crate::frames::{
    self, AlarmOut, BedInfo, DeviceOut, EngineState, Frame, News2Out, PauseOut, WaveOut,
};
use crate::sound::{Player, SoundOut, SoundState};

/// How often a frame is sent to the window.
const FRAME_PERIOD: Duration = Duration::from_millis(50);
/// NEWS2 and pauses are re-read every this many frames (1 s).
const STATUS_EVERY: u32 = 20;

/// What was last sent of the slow-changing per-bed state.
#[derive(Default)]
struct Status {
    news2: Option<Vec<News2Out>>,
    pauses: Option<Vec<PauseOut>>,
    standby: Option<Vec<String>>,
    sound: Option<SoundOut>,
}

impl Status {
    fn refresh(
        &mut self,
        engine: &EngineHandle,
        player: &Player,
        beds: &[BedId],
        frame: &mut Frame,
    ) {
        let standby: Vec<String> = engine.standby_beds().iter().map(BedId::key).collect();
        if self.standby.as_ref() != Some(&standby) {
            frame.standby = Some(standby.clone());
            self.standby = Some(standby);
        }
        let sound = player.status();
        if self.sound.as_ref() != Some(&sound) {
            frame.sound = Some(sound.clone());
            self.sound = Some(sound);
        }
        let news2: Vec<News2Out> = beds
            .iter()
            .filter_map(|b| {
                engine.news2(b).map(|n| News2Out {
                    bed: b.key(),
                    total: n.total,
                    band: n.band.as_str(),
                })
            })
            .collect();
        if self.news2.as_ref() != Some(&news2) {
            frame.news2 = Some(news2.clone());
            self.news2 = Some(news2);
        }
        let pauses: Vec<PauseOut> = engine.pauses().iter().map(PauseOut::from).collect();
        if self.pauses.as_ref() != Some(&pauses) {
            frame.pauses = Some(pauses.clone());
            self.pauses = Some(pauses);
        }
    }
}

pub struct Station {
    engine: Engine,
    /// The alarm sound, played by the station itself.
    player: Player,
    base: EngineState,
    /// The task forwarding live data to the window; replaced when the page subscribes again.
    forwarder: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// Stops the simulated ward (embedded mode).
    _sim_stop: Option<watch::Sender<bool>>,
    /// The SQLite file shared by the engine's store and the station's users and audit trail.
    db_path: std::path::PathBuf,
    /// `[auth] idle_lock_minutes` of the config file, if set.
    idle_lock_minutes: Option<u64>,
    /// `[reports]`: how the station prints.
    reports: vigil_core::report::ReportSettings,
    /// The config file (`$VIGIL_CONFIG`, else the platform's) and its `[broker]` section.
    config_path: Option<std::path::PathBuf>,
    broker_section: config::BrokerSection,
}

impl Station {
    /// Read the configuration (`$VIGIL_CONFIG`, else the platform config file, else defaults)
    /// and start everything. Must run inside the async runtime.
    pub fn start() -> Result<Station> {
        let path = std::env::var_os("VIGIL_CONFIG").map(std::path::PathBuf::from);
        let file = FileConfig::load(path.as_deref())?;
        let config_path = path.or_else(config::default_config_path);
        let db_path = match file.storage.db.clone() {
            Some(p) => p,
            None => config::default_db_path()?,
        };
        // A private data directory, the station key's place and encryption, before the
        // database is first opened.
        let security = file.prepare_station(&db_path)?;
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
        // The simulated remote cohort beside the simulated ward, unless turned off or hidden
        // by the station's ward filter (its stays would then miss every slot).
        let cohort = match &sim_stop {
            Some(stop) if file.simulator.remote_cohort() => {
                if ward.as_deref().is_none_or(|w| w == sim::cohort::WARD) {
                    Some(stop.subscribe())
                } else {
                    tracing::warn!(
                        ward = ward.as_deref().unwrap_or_default(),
                        "simulated remote cohort not started: the station watches another ward"
                    );
                    None
                }
            }
            _ => None,
        };
        // The desktop station raises desktop notifications (best effort) for alarms.
        // Alarm strips saved automatically as `[reports]` says (high-priority by default).
        let reports = vigil_core::report::ReportSettings::from_section(&file.reports)?;
        let alarm_options = AlarmOptions {
            notifications: true,
            strips: Some(reports.clone()),
            ..AlarmOptions::default()
        };
        let (engine, settings) = Engine::start_station(
            EngineConfig {
                broker: url.clone(),
                client_id: file
                    .broker
                    .client_id
                    .clone()
                    .unwrap_or_else(config::default_client_id),
                ward: ward.clone(),
                db_path: db_path.clone(),
                limits: Vec::new(),
                policy: file.ingest.policy(mode == "external"),
                mllp: file.ingest.mllp(None)?,
            },
            alarm_options,
            security,
        )?;
        if let Some(stop) = cohort {
            // History no older than the station accepts.
            let hours = sim::remote::backfill_hours(file.ingest.policy(false).max_age_ms);
            tauri::async_runtime::spawn(simulated_cohort(
                url.clone(),
                db_path.clone(),
                hours,
                stop,
            ));
        }
        let player = Player::spawn(file.sound.device.clone(), settings.alarm_volume);
        tauri::async_runtime::spawn(sound_loop(engine.handle(), player.clone()));
        Ok(Station {
            engine,
            player,
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
                warnings: Vec::new(),
                error: None,
            },
            forwarder: Mutex::new(None),
            _sim_stop: sim_stop,
            db_path,
            idle_lock_minutes: file.auth.idle_lock_minutes,
            reports,
            config_path,
            broker_section: file.broker.clone(),
        })
    }

    /// The alarm sound.
    pub fn sound(&self) -> &Player {
        &self.player
    }

    /// The engine's handle, for the commands (alarms, limits, devices, settings).
    pub fn engine(&self) -> EngineHandle {
        self.engine.handle()
    }

    /// The broker as the station uses it now and as its config file has it.
    pub fn broker_now(&self) -> BrokerNow<'_> {
        let link = self.engine.link().borrow().clone();
        BrokerNow {
            mode: self.base.mode,
            url: self.base.broker.clone(),
            connected: link.connected && link.subscribed,
            last_error: link.last_error,
            config_path: self.config_path.as_deref(),
            section: &self.broker_section,
        }
    }

    /// The config file's `[broker]` section.
    pub fn broker_section(&self) -> &config::BrokerSection {
        &self.broker_section
    }

    /// The config file the station reads at start (it may not exist yet).
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config_path.as_deref()
    }

    /// The station's database file (live data, users, audit trail).
    pub fn db_path(&self) -> &std::path::Path {
        &self.db_path
    }

    /// The database and how the station prints (`[reports]`), for the print commands.
    pub fn report_context(&self) -> (std::path::PathBuf, vigil_core::report::ReportSettings) {
        (self.db_path.clone(), self.reports.clone())
    }

    /// The configured idle-lock timeout, if any (`[auth] idle_lock_minutes`).
    pub fn idle_lock_minutes(&self) -> Option<u64> {
        self.idle_lock_minutes
    }

    /// Start sending frames to `channel`, replacing any previous subscriber (a reloaded page).
    pub fn subscribe(&self, channel: Channel) {
        let rx = self.engine.subscribe();
        let snap = self.engine.snapshot();
        let base = self.base.clone();
        let engine = self.engine.handle();
        let player = self.player.clone();
        let task = tauri::async_runtime::spawn(forward(rx, snap, base, engine, player, channel));
        let mut slot = self.forwarder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
    }
}

/// The simulated remote cohort (zero-config, `[simulator] remote_cohort`): played on the
/// station clock with 72 h of history (less if `[ingest] max_age_h` refuses it), and enrolled
/// once that history has settled (`vigil_sim::remote::run_station`).
async fn simulated_cohort(
    broker: BrokerSettings,
    db: std::path::PathBuf,
    backfill_hours: u32,
    stop: watch::Receiver<bool>,
) {
    let now: sim::remote::TimeSource = Arc::new(vigil_core::store::now_ms);
    let cfg = sim::remote::CohortConfig::new(broker, now(), backfill_hours);
    match sim::remote::run_station(cfg, db, now, stop).await {
        Ok(done) => tracing::info!(
            published = done.published,
            acknowledged = done.acknowledged,
            "simulated remote cohort stopped"
        ),
        Err(e) => tracing::error!(error = %e, "simulated remote cohort stopped"),
    }
}

/// Keep the sound in step with the alarms (every change of the list, and each second), and
/// raise the `AUDIO_FAILED` technical alarm while the station cannot sound.
async fn sound_loop(engine: EngineHandle, player: Player) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = engine.subscribe();
    player.update(&engine.snapshot().alarms);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed = false;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(LiveEvent::Alarms(a)) => player.update(&a),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => player.update(&engine.snapshot().alarms),
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                player.update(&engine.snapshot().alarms);
                let st = player.status();
                let now_failed = st.state == SoundState::Failed;
                if now_failed != failed {
                    failed = now_failed;
                    let msg = st.error.unwrap_or_else(|| "alarm sound works again".into());
                    engine
                        .station_technical(
                            vigil_core::alarms::state::AUDIO_FAILED,
                            "NO ALARM SOUND",
                            now_failed,
                            &format!("alarms cannot be heard at this station: {msg}"),
                        )
                        .await;
                }
            }
        }
    }
}

async fn forward(
    mut rx: tokio::sync::broadcast::Receiver<LiveEvent>,
    snap: WardSnapshot,
    base: EngineState,
    engine: EngineHandle,
    player: Player,
    channel: Channel,
) {
    let mut frame = Frame::default();
    frames::full_state(&mut frame, &snap, &engine.remote_beds());
    let mut beds = snap.beds.clone();
    let mut status = Status::default();
    let mut ticks: u32 = 0;
    let mut resync_next = false;
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
        let mut resync = std::mem::take(&mut resync_next);
        loop {
            match rx.try_recv() {
                Ok(LiveEvent::Wave(w)) => frame.waves.push(WaveOut::from(&*w)),
                Ok(LiveEvent::Vitals(v)) => frame.vitals.extend(frames::vitals_out(&v)),
                Ok(LiveEvent::Alarms(a)) => {
                    frame.alarms = Some(a.iter().map(AlarmOut::from).collect());
                }
                Ok(LiveEvent::Device(_)) | Ok(LiveEvent::BedAdded(_)) => resync = true,
                // The remote worklist reads again when its patients' alerts or findings change.
                Ok(LiveEvent::Remote(u)) => {
                    // An enrolment or a discharge: the beds are listed again, marked.
                    resync |= u.beds_changed;
                    let n = u32::try_from(u.alerts.len() + u.findings.len()).unwrap_or(u32::MAX);
                    frame.remote = Some(frame.remote.unwrap_or(0).saturating_add(n));
                }
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
            frame.beds = Some(BedInfo::list(&s.beds, &engine.remote_beds()));
            frame.alarms = Some(s.alarms.iter().map(AlarmOut::from).collect());
            frame.devices = Some(s.devices.iter().map(DeviceOut::from).collect());
            beds = s.beds;
        }
        // NEWS2 and audio pauses: at once after alarm changes (a pause shows up with the
        // alarms it silenced), else once a second; sent only when they changed.
        ticks = ticks.wrapping_add(1);
        if resync || frame.alarms.is_some() || ticks % STATUS_EVERY == 0 || ticks == 1 {
            status.refresh(&engine, &player, &beds, &mut frame);
        }
        frame.t = vigil_core::store::now_ms();
        let out = std::mem::take(&mut frame);
        let bytes = match frames::encode(&out) {
            Ok(b) => b,
            Err(e) => {
                // Cannot happen with these types; never silently: log, and send the whole
                // state with the next frame so that no alarm change is lost.
                tracing::error!(error = %e, "encoding a frame failed");
                resync_next = true;
                status = Status::default();
                continue;
            }
        };
        if let Err(e) = channel.send(InvokeResponseBody::Raw(bytes)) {
            tracing::info!(error = %e, "window channel closed; stopping live updates");
            return;
        }
    }
}
