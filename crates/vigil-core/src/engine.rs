//! The engine: subscribes to ward telemetry over MQTT, decodes it, stores it, evaluates alarms,
//! and publishes live updates to whoever watches (the desktop window, `vigilctl record`).
//!
//! Data flow: MQTT event loop → [`telemetry::decode`] → alarm evaluator (pure) → store writer
//! (one thread, batched transactions) and the live broadcast. Bad payloads are counted per
//! reason, logged and stored as rejects; they never stop the loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::alarms::{ActiveAlarm, AlarmEvaluator, AlarmEventKind, Limit};
use crate::codes::Vital;
use crate::config::BrokerUrl;
use crate::store::{self, Op, StoreError, StoreWriter};
use crate::telemetry::{self, BedId, DeviceStatus, Message, Reading, Vitals, WaveChunk};

/// Live events buffered per watcher before it is told it lagged (and must re-read the snapshot).
const LIVE_CAPACITY: usize = 8192;
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to run the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub broker: BrokerUrl,
    pub client_id: String,
    /// Only this ward; `None` = every ward on the broker.
    pub ward: Option<String>,
    pub db_path: PathBuf,
    pub limits: Vec<Limit>,
}

/// What changed, for live watchers. Waveforms and vitals are shared, not copied, per watcher.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Wave(Arc<WaveChunk>),
    Vitals(Arc<Vitals>),
    /// The full list of active alarms after a change.
    Alarms(Arc<Vec<ActiveAlarm>>),
    Device(Arc<DeviceStatus>),
    /// A bed was seen for the first time.
    BedAdded(BedId),
    Link(LinkState),
}

/// The engine's link to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub connected: bool,
    pub subscribed: bool,
    pub last_error: Option<String>,
}

/// Everything a newly attached watcher needs to draw the ward.
#[derive(Debug, Clone, Default)]
pub struct WardSnapshot {
    pub beds: Vec<BedId>,
    /// Latest reading per bed and vital.
    pub latest: BTreeMap<BedId, BTreeMap<Vital, Reading>>,
    pub alarms: Vec<ActiveAlarm>,
    pub devices: Vec<DeviceStatus>,
    pub link: Option<LinkState>,
}

/// Counters of the ingest path.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub messages: AtomicU64,
    pub samples: AtomicU64,
    pub readings: AtomicU64,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
}

impl IngestCounters {
    /// Rejects per reason so far.
    pub fn rejects(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.rejects).clone()
    }

    fn reject(&self, reason: &'static str) {
        *lock(&self.rejects).entry(reason).or_default() += 1;
    }
}

/// Lock a mutex; a poisoned mutex (a panic elsewhere) still yields its data so that the
/// monitoring path keeps running.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Shared {
    state: Mutex<WardState>,
    live: broadcast::Sender<LiveEvent>,
    counters: IngestCounters,
    link: watch::Sender<LinkState>,
}

struct WardState {
    evaluator: AlarmEvaluator,
    snapshot: WardSnapshot,
    devices: BTreeMap<String, DeviceStatus>,
}

/// A running engine. Derefs to its [`EngineHandle`].
pub struct Engine {
    handle: EngineHandle,
    client: AsyncClient,
    task: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    writer: Option<StoreWriter>,
}

impl Engine {
    /// Open the store, connect to the broker and start ingesting. Must be called inside a Tokio
    /// runtime.
    pub fn start(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let writer = StoreWriter::spawn(&cfg.db_path)?;
        let mut opts = cfg.broker.mqtt_options(&cfg.client_id);
        // Persistent session: the broker queues QoS 1 telemetry while the station is away.
        opts.set_clean_session(false);
        let (client, eventloop) = AsyncClient::new(opts, 1024);
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let (link, _) = watch::channel(LinkState {
            connected: false,
            subscribed: false,
            last_error: None,
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(WardState {
                evaluator: AlarmEvaluator::new(cfg.limits.clone()),
                snapshot: WardSnapshot::default(),
                devices: BTreeMap::new(),
            }),
            live,
            counters: IngestCounters::default(),
            link,
        });
        let (stop, stop_rx) = watch::channel(false);
        let filter = telemetry::subscription_filter(cfg.ward.as_deref());
        tracing::info!(broker = %cfg.broker, %filter, db = %cfg.db_path.display(), "engine starting");
        let task = tokio::spawn(run_loop(
            Arc::clone(&shared),
            client.clone(),
            eventloop,
            filter,
            writer.sender(),
            stop_rx,
        ));
        Ok(Engine {
            handle: EngineHandle { shared },
            client,
            task: Some(task),
            stop,
            writer: Some(writer),
        })
    }

    /// A cloneable handle for watchers (snapshot, live events, link state, counters).
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Wait until everything ingested so far is committed to the database.
    pub async fn flush(&self) -> Result<(), EngineError> {
        match &self.writer {
            Some(w) => Ok(w.flush().await?),
            None => Err(EngineError::Store(StoreError::Closed)),
        }
    }

    /// Stop ingesting, commit what was received and close the database.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                tracing::warn!("engine loop did not stop within 5 s");
            }
        }
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.close()).await;
        }
        tracing::info!("engine stopped");
    }
}

/// Read access to a running engine, cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl EngineHandle {
    /// Live events from now on. On `RecvError::Lagged`, re-read [`Engine::snapshot`].
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.shared.live.subscribe()
    }

    /// The current state of the ward.
    pub fn snapshot(&self) -> WardSnapshot {
        let st = lock(&self.shared.state);
        let mut s = st.snapshot.clone();
        s.devices = st.devices.values().cloned().collect();
        s.link = Some(self.shared.link.borrow().clone());
        s
    }

    /// The broker link, as a watch (connected / subscribed).
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.shared.link.subscribe()
    }

    pub fn counters(&self) -> &IngestCounters {
        &self.shared.counters
    }
}

impl std::ops::Deref for Engine {
    type Target = EngineHandle;

    fn deref(&self) -> &EngineHandle {
        &self.handle
    }
}

async fn run_loop(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    filter: String,
    store: mpsc::Sender<Op>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let ev = tokio::select! {
            _ = stop.changed() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(250);
                // Subscribe on every ConnAck: harmless when the session kept the subscription,
                // essential when it did not.
                if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                    tracing::error!(error = %e, "cannot queue subscription");
                }
                set_link(&shared, true, false, None);
                tracing::info!("connected to broker");
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                set_link(&shared, true, true, None);
                tracing::info!(%filter, "subscribed");
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                handle_publish(&shared, &store, &p.topic, &p.payload).await;
            }
            Ok(_) => {}
            Err(e) => {
                if *stop.borrow() {
                    break;
                }
                let msg = e.to_string();
                if shared.link.borrow().connected || shared.link.borrow().last_error.is_none() {
                    tracing::warn!(error = %msg, "broker connection lost; retrying");
                }
                set_link(&shared, false, false, Some(msg));
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn set_link(shared: &Shared, connected: bool, subscribed: bool, last_error: Option<String>) {
    let new = LinkState {
        connected,
        subscribed,
        last_error,
    };
    let changed = shared.link.send_if_modified(|cur| {
        if *cur == new {
            false
        } else {
            *cur = new.clone();
            true
        }
    });
    if changed {
        let _ = shared.live.send(LiveEvent::Link(new));
    }
}

async fn store_op(store: &mpsc::Sender<Op>, op: Op) {
    if store.send(op).await.is_err() {
        tracing::error!("store writer has stopped; data not stored");
    }
}

async fn reject(
    shared: &Shared,
    store: &mpsc::Sender<Op>,
    topic: &str,
    e: &telemetry::DecodeError,
) {
    shared.counters.reject(e.reason());
    tracing::warn!(reason = e.reason(), topic = %topic.chars().take(200).collect::<String>(), error = %e, "telemetry rejected");
    store_op(
        store,
        Op::Reject {
            reason: e.reason(),
            detail: format!("{}: {e}", topic.chars().take(200).collect::<String>()),
            t_ms: store::now_ms(),
        },
    )
    .await;
}

async fn handle_publish(shared: &Shared, store: &mpsc::Sender<Op>, topic: &str, payload: &[u8]) {
    shared.counters.messages.fetch_add(1, Ordering::Relaxed);
    let msg = match telemetry::decode(topic, payload) {
        Ok(m) => m,
        Err(e) => return reject(shared, store, topic, &e).await,
    };
    match msg {
        Message::Vitals(v) => {
            for e in &v.rejected {
                reject(shared, store, topic, e).await;
            }
            shared
                .counters
                .readings
                .fetch_add(v.readings.len() as u64, Ordering::Relaxed);
            let v = Arc::new(v);
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &v.bed);
                let mut events = Vec::new();
                for r in &v.readings {
                    events.extend(st.evaluator.observe(&v.bed, r));
                    st.snapshot
                        .latest
                        .entry(v.bed.clone())
                        .or_default()
                        .insert(r.vital, *r);
                }
                if !events.is_empty() {
                    let active = st.evaluator.active();
                    st.snapshot.alarms = active.clone();
                    let _ = shared.live.send(LiveEvent::Alarms(Arc::new(active)));
                }
                events
            };
            let _ = shared.live.send(LiveEvent::Vitals(Arc::clone(&v)));
            for e in events {
                match e.kind {
                    AlarmEventKind::Raise => tracing::warn!(
                        target: "vigil::alarm",
                        bed = %e.bed, code = %e.code, priority = e.priority.as_str(),
                        "ALARM {} {}", e.priority.marker(), e.message
                    ),
                    AlarmEventKind::Clear => tracing::info!(
                        target: "vigil::alarm",
                        bed = %e.bed, code = %e.code, "ALARM CLEARED {}", e.message
                    ),
                }
                store_op(store, Op::Alarm(e)).await;
            }
            store_op(store, Op::Vitals(v)).await;
        }
        Message::Wave(w) => {
            shared
                .counters
                .samples
                .fetch_add(w.data.len() as u64, Ordering::Relaxed);
            let w = Arc::new(w);
            {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &w.bed);
            }
            let _ = shared.live.send(LiveEvent::Wave(Arc::clone(&w)));
            store_op(store, Op::Wave(w)).await;
        }
        Message::Status(s) => {
            if !s.online {
                tracing::warn!(bed = %s.bed, device = %s.device, "device offline");
            }
            {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &s.bed);
                st.devices.insert(s.device.clone(), s.clone());
            }
            let _ = shared.live.send(LiveEvent::Device(Arc::new(s.clone())));
            store_op(store, Op::Status(s)).await;
        }
    }
}

fn note_bed(shared: &Shared, st: &mut WardState, bed: &BedId) {
    if let Err(pos) = st.snapshot.beds.binary_search(bed) {
        st.snapshot.beds.insert(pos, bed.clone());
        tracing::info!(%bed, "new bed");
        let _ = shared.live.send(LiveEvent::BedAdded(bed.clone()));
    }
}
