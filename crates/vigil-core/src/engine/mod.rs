//! The engine: subscribes to ward telemetry over MQTT, decodes it, stores it, evaluates alarms,
//! and publishes live updates to whoever watches (the desktop window, `vigilctl record`).
//!
//! Data flow: MQTT event loop → [`crate::decode::decode`] → alarm evaluator (pure) → store writer
//! (one thread, batched transactions) and the live broadcast. Bad payloads are counted per
//! reason, logged and stored as rejects; they never stop the loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, Publish, QoS};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::alarms::news2::{News2Manual, News2Score};
use crate::alarms::sync::{self as alarm_sync, Refusal, Trust};
use crate::alarms::{
    ActiveAlarm, AlarmConfig, AlarmError, AlarmEvent, AlarmEventKind, AlarmMachine, Limit,
    PauseInfo, PauseScope, WardProfile,
};
use crate::auth::{Authorized, Permission};
use crate::codes::Vital;
use crate::config::{BrokerSettings, ConfigError};
use crate::ingest::{
    Admission, DeviceBudgets, GapTracker, IngestPolicy, ReadingGate, Registry, Retention, SeqCheck,
};
use crate::notify::Notifier;
use crate::security::{Kind, Occurrence, SecurityMonitor, Severity, Source, Thresholds};
use crate::store::{self, Op, StoreError, StoreWriter, WriterStats};
use crate::syslog::{Syslog, SyslogConfig, SyslogMessage};
use crate::telemetry::{self, Batch, BedId, DeviceStatus, Message, Reading, Vitals, WaveChunk};

/// Live events buffered per watcher before it is told it lagged (and must re-read the snapshot).
const LIVE_CAPACITY: usize = 8192;

/// Alarms left unacknowledged this recently before a restart are shown again
/// (`AlarmMachine::restore_unfinished`); older ones stay history.
pub const UNFINISHED_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Reconnect delays: from `MIN_BACKOFF`, doubled after every failed attempt, at most
/// `MAX_BACKOFF`; back to `MIN_BACKOFF` on every ConnAck.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest an operator action (acknowledge) waits for its record to be committed.
const ACTION_COMMIT_WAIT: Duration = Duration::from_secs(2);
/// Messages waiting for the priority lane (vitals, device status, interop, station topics).
/// Nothing in that lane waits for the database, so it drains as fast as it decodes.
const FAST_LANE: usize = 16_384;
/// Waveform chunks waiting for the bulk lane. When the database cannot keep up and this is
/// full, further chunks are dropped (counted as `wave_backlog`, recorded as gaps) rather than
/// holding up the priority lane behind them.
const BULK_LANE: usize = 4_096;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Broker settings or TLS files unusable (the message names the file).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    /// The saved per-bed limits cannot be read.
    #[error(transparent)]
    SavedLimits(#[from] crate::limits_db::LimitsDbError),
    /// The caller lacks the permission for this action.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The station key (which signs this station's alarm state) is unusable.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The enrolled stations cannot be read.
    #[error(transparent)]
    Stations(#[from] crate::stations::StationError),
    /// MLLP settings that would expose the listener, or are unusable (the message says the fix).
    #[error(transparent)]
    MllpConfig(#[from] crate::interop::mllp::MllpConfigError),
    #[error("cannot listen for MLLP on {addr}: {source}")]
    Mllp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// How to run the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Broker URL, TLS files, credentials.
    pub broker: BrokerSettings,
    pub client_id: String,
    /// Only this ward; `None` = every ward on the broker.
    pub ward: Option<String>,
    pub db_path: PathBuf,
    pub limits: Vec<Limit>,
    /// Device registry enforcement, clock-skew limits, retention.
    pub policy: IngestPolicy,
    /// Listen for HL7 v2 over MLLP (address, allowed peers and their devices, limits);
    /// `None` = no listener. Checked at start ([`crate::interop::mllp::MllpConfig::check`]).
    pub mllp: Option<crate::interop::mllp::MllpConfig>,
}

/// Alarm settings of an engine beyond its default limits (`EngineConfig::limits`).
#[derive(Debug, Clone)]
pub struct AlarmOptions {
    pub config: AlarmConfig,
    /// Desktop notifications of raised and escalated alarms (best effort).
    pub notifications: bool,
    /// Share acknowledgements and audio pauses with the ward's other stations over the broker.
    pub sync: bool,
    /// Period of the time-based rules (delays, comm lost, pause expiry, escalation).
    pub tick: Duration,
}

impl Default for AlarmOptions {
    fn default() -> Self {
        AlarmOptions {
            config: AlarmConfig::default(),
            notifications: false,
            sync: true,
            tick: Duration::from_millis(250),
        }
    }
}

/// Security monitoring of an engine (docs/security.md): event thresholds, syslog forwarding,
/// audit-head publication and certificate expiry warnings.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    pub thresholds: Thresholds,
    /// Forward security events and audit heads to this collector.
    pub syslog: Option<SyslogConfig>,
    /// Publish the audit trail's head (retained on the broker, and to syslog) this often.
    pub head_every: Duration,
    /// Warn this many days before a TLS certificate in use expires.
    pub cert_warn_days: u64,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        SecurityOptions {
            thresholds: Thresholds::default(),
            syslog: None,
            head_every: Duration::from_secs(300),
            cert_warn_days: 30,
        }
    }
}

/// A notice one station sends the others of the ward (retained: no; QoS 1), e.g. that a user
/// took break-glass access: charge nurses elsewhere are told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StationNotice {
    pub v: u32,
    /// The sending station (its MQTT client id).
    pub station: String,
    /// `break_glass`.
    pub kind: String,
    pub user: String,
    pub detail: String,
    pub until_ms: Option<i64>,
    pub t_ms: i64,
}

/// The topic level of a station id: `A-Z a-z 0-9 . _ -`, anything else as `_`.
fn station_level(station: &str) -> String {
    station
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// Where a station publishes its audit-trail head (retained): `vigil/v1/_station/{id}/audit/head`.
pub fn audit_head_topic(station: &str) -> String {
    format!(
        "{}/_station/{}/audit/head",
        telemetry::TOPIC_ROOT,
        station_level(station)
    )
}

/// Where a station sends notices to the others: `vigil/v1/_station/{id}/notice`.
pub fn notice_topic(station: &str) -> String {
    format!(
        "{}/_station/{}/notice",
        telemetry::TOPIC_ROOT,
        station_level(station)
    )
}

/// The station of a notice topic, if `topic` is one.
fn notice_station(topic: &str) -> Option<&str> {
    let rest = topic
        .strip_prefix(telemetry::TOPIC_ROOT)?
        .strip_prefix("/_station/")?;
    let (station, tail) = rest.split_once('/')?;
    (tail == "notice").then_some(station)
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
    /// Why the link is down (kept until the next successful connection).
    pub last_error: Option<String>,
    /// Wall-clock time (ms since the Unix epoch) when `connected` last changed (or the engine
    /// started): how long the link has been up, or down (communication-lost alarm).
    pub since_ms: i64,
    /// Standing warnings about the broker's trustworthiness (an insecure broker allowed by
    /// `insecure = true`, a broker that let the station write a device's topic), kept for as
    /// long as the engine runs.
    pub warnings: Vec<String>,
}

/// The start-up check that the broker refuses the station's publish on a device's topic
/// (docs/broker-security.md: devices write only their own topics, stations only theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclCheck {
    /// Not done: an anonymous broker on loopback (the embedded broker) lets anyone write.
    Skipped,
    /// The probe is on its way.
    Pending,
    /// The probe did not come back: the broker refused it.
    Refused,
    /// The broker delivered the station's probe on a device topic: any holder of the
    /// station's credentials can forge any bed's readings.
    Accepted,
}

/// How long the station waits for its probe to come back before it counts it as refused.
const ACL_PROBE_WAIT: Duration = Duration::from_secs(5);
/// The device level of the probe topic (not a station id, not a real device).
const ACL_PROBE_DEVICE: &str = "vigil-acl-probe";

/// Everything a newly attached watcher needs to draw the ward.
#[derive(Debug, Clone, Default)]
pub struct WardSnapshot {
    pub beds: Vec<BedId>,
    /// Latest reading per bed and vital.
    pub latest: BTreeMap<BedId, BTreeMap<Vital, Reading>>,
    /// Latest late reading per bed and vital (stored as history, never alarmed on): shown as
    /// late beside the live value.
    pub late: BTreeMap<BedId, BTreeMap<Vital, Reading>>,
    pub alarms: Vec<ActiveAlarm>,
    pub devices: Vec<DeviceStatus>,
    pub link: Option<LinkState>,
    /// Audio pauses in force (with their countdown at snapshot time).
    pub pauses: Vec<PauseInfo>,
}

/// Counters of the ingest path.
#[derive(Debug, Default)]
pub struct IngestCounters {
    pub messages: AtomicU64,
    pub samples: AtomicU64,
    pub readings: AtomicU64,
    /// Readings stored as history but not alarmed on: taken before the device's last reading
    /// of the vital, or longer ago than the live window.
    pub late: AtomicU64,
    /// Of the late readings, those of the same time as the last one (redelivered readings).
    pub late_duplicates: AtomicU64,
    /// Vitals messages received again with the same sequence number and content (a QoS 1
    /// redelivery), dropped before alarms.
    pub duplicates: AtomicU64,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
}

impl IngestCounters {
    /// Rejects per reason so far.
    pub fn rejects(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.rejects).clone()
    }

    /// Count one reject; returns the count of its reason so far.
    fn reject(&self, reason: &'static str) -> u64 {
        let mut m = lock(&self.rejects);
        let n = m.entry(reason).or_default();
        *n += 1;
        *n
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
    policy: IngestPolicy,
    registry: Mutex<Registry>,
    gaps: Mutex<GapTracker>,
    /// Vitals sequence numbers and reading times: replays, duplicates and late readings.
    gate: Mutex<ReadingGate>,
    alarm_io: AlarmIo,
    /// The writer's counters (is it failing?).
    store_stats: Arc<WriterStats>,
    /// Operations not queued for the writer because it was failing and its queue was full.
    store_dropped: Arc<AtomicU64>,
    /// Security events: aggregation, thresholds, technical alarms.
    security: Arc<SecurityMonitor>,
    /// Forwarding of security events and audit heads, if configured.
    syslog: Option<Syslog>,
    /// The database (for the security loop's own connection).
    db_path: PathBuf,
    /// The audit head published last (by this station, or found retained on the broker).
    published_head: Mutex<Option<crate::audit::AuditHead>>,
    /// Per-device rate and size budgets, checked before decoding.
    budgets: Mutex<DeviceBudgets>,
    /// The topic of the start-up ACL probe, and what it found.
    acl_probe: String,
    acl_check: Mutex<AclCheck>,
    /// Store operations and acknowledgements of the paths that must never wait for the
    /// database (alarm events, the priority lane, operator actions): queued here without
    /// waiting, forwarded to the writer in order by `forward_outbox`.
    outbox: mpsc::UnboundedSender<Outbox>,
    /// Items in the outbox not yet forwarded.
    outbox_len: Arc<AtomicU64>,
    /// Whose alarm state is believed (this station and the enrolled ones), and the last
    /// sequence admitted of each.
    trust: Mutex<Trust>,
    /// Audit entries of other stations' actions applied here, written by the security loop.
    remote_audit: Mutex<Vec<RemoteAudit>>,
}

/// An audit entry of another station's action applied here.
#[derive(Debug, Clone)]
struct RemoteAudit {
    actor: String,
    action: &'static str,
    target: String,
    detail: String,
    t_ms: i64,
}

/// Reject records (one per refused payload) are not queued beyond this outbox backlog: a flood
/// of refused payloads is counted, not stored row by row, and cannot grow memory without bound.
const REJECT_BACKLOG: u64 = 50_000;

/// What `forward_outbox` passes on, in order.
enum Outbox {
    Op(Op),
    /// A QoS 1 message handled: acknowledge it once what came before is committed.
    Ack(Publish),
}

/// The writer's queue as the ingest paths use it: while the writer is failing (disk full) and
/// its queue is full, operations are dropped and counted rather than waited for.
#[derive(Clone)]
struct StoreSink {
    tx: mpsc::Sender<Op>,
    stats: Arc<WriterStats>,
    dropped: Arc<AtomicU64>,
}

/// Where alarm events go besides the live stream.
struct AlarmIo {
    client: AsyncClient,
    station: String,
    sync: bool,
    notifier: Option<Notifier>,
    /// Signs this station's alarm state.
    key: Arc<crate::keys::StationKey>,
    /// Sequence of this station's alarm-state messages: increasing, also across restarts
    /// (it starts at the clock in ms).
    sync_seq: AtomicU64,
}

struct WardState {
    alarms: AlarmMachine,
    /// The reading each bed's alarms evaluated last, per vital: (device, time). Only its own
    /// source may revise it (a correction or a retraction).
    evaluated: BTreeMap<(BedId, Vital), (String, i64)>,
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
        Engine::start_with(cfg, AlarmOptions::default())
    }

    /// [`Engine::start`] with alarm settings.
    pub fn start_with(cfg: EngineConfig, alarm: AlarmOptions) -> Result<Engine, EngineError> {
        Engine::start_secured(cfg, alarm, SecurityOptions::default())
    }

    /// [`Engine::start_with`] with security monitoring settings.
    pub fn start_secured(
        cfg: EngineConfig,
        alarm: AlarmOptions,
        security: SecurityOptions,
    ) -> Result<Engine, EngineError> {
        // Broker settings first: a bad TLS file, or a broker on the network without TLS or
        // authentication (unless `insecure = true`), is reported before anything starts.
        // Persistent session (clean session off, stable client id): the broker keeps the
        // subscription and queues QoS 1 telemetry while the station is away.
        let broker_warnings = cfg.broker.check_trust()?;
        let opts = mqtt_options(&cfg)?;
        // An MLLP listener reachable from the network without an allow-list: refused before
        // anything starts.
        if let Some(m) = &cfg.mllp {
            m.check()?;
        }
        let writer = StoreWriter::spawn(&cfg.db_path)?;
        let (registry, saved_limits, last_stored, enrolled, unfinished) = {
            let conn = store::open(&cfg.db_path)?;
            let last = report_last_stored(&conn);
            (
                Registry::load(&conn)?,
                crate::limits_db::load(&conn)?,
                last,
                crate::stations::load(&conn)?,
                crate::query::unfinished_alarms(&conn, store::now_ms() - UNFINISHED_WINDOW_MS)?,
            )
        };
        let mut budgets = DeviceBudgets::new(cfg.policy.budget);
        if let Some(t) = last_stored {
            // The broker redelivers what devices sent while the station was down.
            budgets.catch_up(store::now_ms() - t, store::now_ms());
        }
        let key =
            crate::keys::get(&cfg.db_path)?.ok_or_else(|| crate::keys::KeyError::Missing {
                db: cfg.db_path.clone(),
                looked: "after opening the database".into(),
            })?;
        tracing::info!(
            station = %cfg.client_id,
            key = %crate::stations::fingerprint(&key.public_key()),
            enrolled = enrolled.len(),
            "station alarm state signed; enrolled stations believed"
        );
        let trust = Trust::new(&cfg.client_id, key.public_key(), enrolled);
        if cfg.policy.require_registered && registry.is_empty() {
            tracing::warn!("device registry is empty and enforced: all telemetry will be rejected");
        }
        let mut alarms = AlarmMachine::with_limits(alarm.config.clone(), cfg.limits.clone());
        for (bed, limits) in saved_limits {
            // A stored set that no longer passes the checks is reported and the bed keeps the
            // defaults: starting without monitoring would be worse.
            if let Err(e) = alarms.restore_limits(bed.clone(), limits) {
                tracing::error!(bed = %bed, error = %e, "saved alarm limits unusable; defaults apply");
            } else {
                tracing::info!(bed = %bed, "saved alarm limits restored");
            }
        }
        // Alarms nobody acknowledged before the station stopped are shown again (latched, or
        // as "not yet reviewed"), never wiped by a restart.
        let now = store::now_ms();
        for u in &unfinished {
            if let Some(state) = alarms.restore_unfinished(u, now) {
                tracing::warn!(
                    alarm = %u.alarm_id,
                    state = state.as_str(),
                    "alarm unacknowledged before the restart shown again"
                );
            }
        }
        let restored = alarms.active(now);
        // Room for a broker's whole in-flight window of acknowledgements besides the station's
        // own publishes (alarm state sync uses try_publish and must find space).
        let (client, eventloop) = AsyncClient::new(opts, 4096);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let (order_tx, order_rx) = mpsc::unbounded_channel();
        tokio::spawn(ack_in_order(client.clone(), order_rx));
        tokio::spawn(ack_after_commit(order_tx.clone(), writer.sender(), ack_rx));
        let sink = StoreSink {
            tx: writer.sender(),
            stats: writer.stats(),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let outbox_len = Arc::new(AtomicU64::new(0));
        tokio::spawn(forward_outbox(
            sink.clone(),
            ack_tx.clone(),
            outbox_rx,
            Arc::clone(&outbox_len),
        ));
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let (link, _) = watch::channel(LinkState {
            connected: false,
            subscribed: false,
            last_error: None,
            since_ms: store::now_ms(),
            warnings: broker_warnings.clone(),
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(WardState {
                alarms,
                evaluated: BTreeMap::new(),
                snapshot: WardSnapshot {
                    alarms: restored,
                    ..WardSnapshot::default()
                },
                devices: BTreeMap::new(),
            }),
            live,
            counters: IngestCounters::default(),
            link,
            policy: cfg.policy.clone(),
            registry: Mutex::new(registry),
            gaps: Mutex::new(GapTracker::default()),
            gate: Mutex::new(ReadingGate::default()),
            store_stats: writer.stats(),
            store_dropped: Arc::clone(&sink.dropped),
            security: Arc::new(SecurityMonitor::new(security.thresholds.clone())),
            syslog: security
                .syslog
                .clone()
                .map(Syslog::spawn)
                .transpose()
                .map_err(|e| {
                    EngineError::Config(ConfigError::Broker(format!("[security] syslog: {e}")))
                })?,
            db_path: cfg.db_path.clone(),
            published_head: Mutex::new(None),
            budgets: Mutex::new(budgets),
            acl_probe: telemetry::Topic::status(
                &BedId::new(cfg.ward.as_deref().unwrap_or("acl-probe"), "acl-probe"),
                ACL_PROBE_DEVICE,
            ),
            acl_check: Mutex::new(if cfg.broker.on_loopback() && !cfg.broker.authenticated() {
                AclCheck::Skipped
            } else {
                AclCheck::Pending
            }),
            outbox,
            outbox_len,
            trust: Mutex::new(trust),
            remote_audit: Mutex::new(Vec::new()),
            alarm_io: AlarmIo {
                client: client.clone(),
                station: cfg.client_id.clone(),
                sync: alarm.sync,
                notifier: alarm
                    .notifications
                    .then(|| Notifier::spawn(Duration::from_secs(2))),
                key,
                sync_seq: AtomicU64::new(u64::try_from(store::now_ms()).unwrap_or(0)),
            },
        });
        for w in &broker_warnings {
            tracing::warn!(target: "vigil::security", "INSECURE BROKER: {w}");
            shared.security.report(
                Occurrence::new(
                    Kind::BrokerAuth,
                    Source::peer(&cfg.broker.url.to_string()),
                    format!("broker accepted only because insecure = true: {w}"),
                    store::now_ms(),
                )
                .severity(Severity::Medium),
            );
        }
        let (stop, stop_rx) = watch::channel(false);
        let filter = telemetry::subscription_filter(cfg.ward.as_deref());
        // The station's own audit head and the ward's station notices: under the filter of every
        // ward already; a one-ward filter needs them besides (overlapping subscriptions could
        // deliver twice).
        let mut filters = vec![filter.clone()];
        if cfg.ward.is_some() {
            filters.push(audit_head_topic(&cfg.client_id));
            filters.push(format!("{}/_station/+/notice", telemetry::TOPIC_ROOT));
        }
        tracing::info!(broker = %cfg.broker, %filter, db = %cfg.db_path.display(), "engine starting");
        let task = tokio::spawn(run_loop(
            Arc::clone(&shared),
            client.clone(),
            eventloop,
            filters,
            sink.clone(),
            order_tx,
            stop_rx,
        ));
        if let Some(m) = &cfg.mllp {
            let addr = m.listen;
            let listener = std::net::TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(|source| EngineError::Mllp { addr, source })?;
            let peers = m.peers.as_ref().map_or(0, |p| p.len());
            tracing::info!(%addr, peers, "MLLP listener for HL7 v2");
            let (tx, rx) = mpsc::channel(256);
            let (events_tx, events_rx) = mpsc::channel(256);
            let opts = crate::interop::mllp::ServeOptions {
                events: Some(events_tx),
                ..m.serve_options()
            };
            tokio::spawn(crate::interop::mllp::serve_with(
                listener,
                tx,
                stop.subscribe(),
                opts,
            ));
            tokio::spawn(mllp_intake(
                Arc::clone(&shared),
                sink.clone(),
                m.peers.clone(),
                rx,
            ));
            tokio::spawn(mllp_conn_events(Arc::clone(&shared), events_rx));
        }
        tokio::spawn(alarm_tick(
            Arc::clone(&shared),
            alarm.tick.max(Duration::from_millis(10)),
            stop.subscribe(),
        ));
        tokio::spawn(security_loop(
            Arc::clone(&shared),
            security,
            cert_files(&cfg.broker),
            stop.subscribe(),
        ));
        tokio::spawn(prune_loop(
            cfg.policy.retention,
            writer.sender(),
            stop.subscribe(),
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
        if self.writer.is_none() {
            return Err(EngineError::Store(StoreError::Closed));
        }
        // Through the outbox: what the priority lane and the alarms queued there comes first.
        let (done_tx, done) = tokio::sync::oneshot::channel();
        if !outbox_send(&self.shared, Outbox::Op(Op::Flush(done_tx))) {
            return Err(EngineError::Store(StoreError::Closed));
        }
        done.await
            .map_err(|_| EngineError::Store(StoreError::Closed))
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
        // Chunks still missing are recorded as gaps (no alarm: the station is stopping).
        for g in lock(&self.handle.shared.gaps).due(i64::MAX) {
            outbox_op(&self.handle.shared, Op::Gap(g));
        }
        // What the lanes and alarms queued in the outbox goes to the writer before it closes.
        if tokio::time::timeout(Duration::from_secs(5), self.flush())
            .await
            .is_err()
        {
            tracing::warn!("the last data did not reach the database within 5 s");
        }
        if let Some(w) = self.writer.take() {
            let st = w.stats();
            let _ = tokio::task::spawn_blocking(move || w.close()).await;
            tracing::info!(
                transactions = st.transactions.load(Ordering::Relaxed),
                committed_ops = st.committed_ops.load(Ordering::Relaxed),
                slowest_commit_ms = st.slowest_commit_ms.load(Ordering::Relaxed),
                checkpoints = st.checkpoints.load(Ordering::Relaxed),
                slowest_checkpoint_ms = st.slowest_checkpoint_ms.load(Ordering::Relaxed),
                slowest_hold_ms = st.slowest_hold_ms.load(Ordering::Relaxed),
                wal_mib_written = st.wal_frames.load(Ordering::Relaxed) / 256,
                "store writer closed"
            );
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
        s.pauses = st.alarms.pauses(store::now_ms());
        s
    }

    /// Acknowledge an alarm shown now (silent until it re-triggers; a latched alarm whose
    /// condition cleared is resolved). Persisted, broadcast and shared with the ward.
    pub async fn acknowledge(&self, alarm_id: &str, auth: &Authorized) -> Result<(), EngineError> {
        let user = auth.require(Permission::AcknowledgeAlarm)?;
        let now = store::now_ms();
        let (events, bed) = {
            let mut st = lock(&self.shared.state);
            let ev = st.alarms.acknowledge(alarm_id, user, now)?;
            let bed = ev.first().map(|e| e.bed.clone());
            (ev, bed)
        };
        emit_alarm_events(&self.shared, events, now).await;
        if let Some(bed) = bed {
            publish_bed_state(&self.shared, &[bed], now);
        }
        // Confirmed to the user only once the acknowledgement is in the database.
        wait_committed(&self.shared).await;
        Ok(())
    }

    /// Pause audio for one bed (`Some`) or the whole station (`None`) for the configured time.
    pub async fn audio_pause(
        &self,
        bed: Option<BedId>,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        let user = auth.require(Permission::AudioPause)?;
        let now = store::now_ms();
        let scope = bed.map_or(PauseScope::All, PauseScope::Bed);
        let events = lock(&self.shared.state)
            .alarms
            .audio_pause(scope.clone(), user, now)?;
        let beds: Vec<BedId> = events
            .iter()
            .map(|e| e.bed.clone())
            .filter(|b| b.ward != "*")
            .collect();
        emit_alarm_events(&self.shared, events, now).await;
        publish_bed_state(&self.shared, &beds, now);
        Ok(())
    }

    /// End an audio pause early: signals come back for conditions still present.
    pub async fn end_audio_pause(
        &self,
        bed: Option<BedId>,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        let user = auth.require(Permission::AudioPause)?;
        let now = store::now_ms();
        let scope = bed.map_or(PauseScope::All, PauseScope::Bed);
        let events = lock(&self.shared.state)
            .alarms
            .end_audio_pause(&scope, user, now);
        let beds: Vec<BedId> = events
            .iter()
            .map(|e| e.bed.clone())
            .filter(|b| b.ward != "*")
            .collect();
        emit_alarm_events(&self.shared, events, now).await;
        publish_bed_state(&self.shared, &beds, now);
        Ok(())
    }

    /// Replace a bed's alarm limits (per patient).
    pub async fn set_limits(
        &self,
        bed: &BedId,
        limits: Vec<Limit>,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        let user = auth.require(Permission::ChangePatientLimits)?;
        let now = store::now_ms();
        let events = lock(&self.shared.state)
            .alarms
            .set_limits(bed, limits, user, now)?;
        emit_alarm_events(&self.shared, events, now).await;
        Ok(())
    }

    /// The alarm limits of a bed.
    pub fn limits(&self, bed: &BedId) -> Vec<Limit> {
        lock(&self.shared.state).alarms.limits(bed)
    }

    /// The limits of a bed without its own (a new patient's).
    pub fn default_limits(&self) -> Vec<Limit> {
        lock(&self.shared.state).alarms.default_limits().to_vec()
    }

    /// Enter a bed's NEWS2 inputs (consciousness, oxygen, SpO2 scale 2).
    pub async fn set_news2_inputs(
        &self,
        bed: &BedId,
        inputs: News2Manual,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        self.patient_change(auth, |m, user, now| {
            m.set_news2_manual(bed, inputs, user, now)
        })
        .await
    }

    /// A user's change to a patient's alarm settings (needs `ChangePatientLimits`): applied
    /// to the alarm machine, its events published, logged and stored.
    async fn patient_change(
        &self,
        auth: &Authorized,
        change: impl FnOnce(&mut AlarmMachine, &str, i64) -> Result<Vec<AlarmEvent>, AlarmError>,
    ) -> Result<(), EngineError> {
        let user = auth.require(Permission::ChangePatientLimits)?;
        let now = store::now_ms();
        let events = change(&mut lock(&self.shared.state).alarms, user, now)?;
        emit_alarm_events(&self.shared, events, now).await;
        Ok(())
    }

    /// A bed's NEWS2 from its latest vitals and inputs, once every vital has been seen.
    pub fn news2(&self, bed: &BedId) -> Option<News2Score> {
        lock(&self.shared.state).alarms.news2(bed)
    }

    /// Admin setting (ward profiles): whether alarms with this code latch.
    pub fn set_latching(
        &self,
        code: &str,
        latching: bool,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        auth.require(Permission::ManageWardProfiles)?;
        lock(&self.shared.state).alarms.set_latching(code, latching);
        Ok(())
    }

    /// Admin setting (ward profiles): the default limits of beds without their own.
    pub fn set_ward_profile(
        &self,
        profile: WardProfile,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        auth.require(Permission::ManageWardProfiles)?;
        lock(&self.shared.state).alarms.set_profile(profile);
        Ok(())
    }

    /// The ward profile and the latching codes in force.
    pub fn ward_settings(&self) -> (WardProfile, std::collections::BTreeSet<String>) {
        let st = lock(&self.shared.state);
        let cfg = st.alarms.config();
        (cfg.profile, cfg.latching.clone())
    }

    /// Raise (`present`) or resolve a technical alarm of the station itself, such as
    /// `AUDIO_FAILED` when the station cannot sound (see `AlarmMachine::station_technical`).
    pub async fn station_technical(&self, code: &str, label: &str, present: bool, message: &str) {
        let now = store::now_ms();
        let events = lock(&self.shared.state)
            .alarms
            .station_technical(code, label, present, message, now);
        emit_alarm_events(&self.shared, events, now).await;
    }

    /// Put a bed in standby (no patient: physiological alarms off) or back to monitoring.
    pub async fn set_standby(
        &self,
        bed: &BedId,
        on: bool,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        self.patient_change(auth, |m, user, now| m.set_standby(bed, on, user, now))
            .await
    }

    /// Beds in standby as saved before a restart (see `settings::StationSettings::standby`).
    pub fn restore_standby(&self, beds: impl IntoIterator<Item = BedId>) {
        let mut st = lock(&self.shared.state);
        for b in beds {
            st.alarms.restore_standby(b);
        }
    }

    /// Beds in standby.
    pub fn standby_beds(&self) -> Vec<BedId> {
        lock(&self.shared.state).alarms.standby_beds()
    }

    /// Admin setting: whether every high-priority alarm latches.
    pub fn set_latch_high(&self, on: bool, auth: &Authorized) -> Result<(), EngineError> {
        auth.require(Permission::ManageWardProfiles)?;
        lock(&self.shared.state).alarms.set_latch_high(on);
        Ok(())
    }

    /// Audio pauses in force now.
    pub fn pauses(&self) -> Vec<PauseInfo> {
        lock(&self.shared.state).alarms.pauses(store::now_ms())
    }

    /// The broker link, as a watch (connected / subscribed, standing warnings).
    pub fn link(&self) -> watch::Receiver<LinkState> {
        self.shared.link.subscribe()
    }

    /// What the start-up check of the broker's ACL found so far.
    pub fn acl_check(&self) -> AclCheck {
        *lock(&self.shared.acl_check)
    }

    pub fn counters(&self) -> &IngestCounters {
        &self.shared.counters
    }

    /// Replace the device registry (after an administrator changed it).
    pub fn set_registry(&self, registry: Registry) {
        *lock(&self.shared.registry) = registry;
    }

    /// The device registry in force.
    pub fn registry(&self) -> Registry {
        lock(&self.shared.registry).clone()
    }

    /// Replace the enrolled stations (after IT enrolled or removed one,
    /// [`crate::stations::enrol`]): their alarm state is believed, or refused, from now on.
    pub fn set_stations(
        &self,
        stations: std::collections::BTreeMap<String, crate::stations::Enrolled>,
    ) {
        lock(&self.shared.trust).set_stations(stations);
    }

    /// This station's public key (hex), which IT enrols at the ward's other stations.
    pub fn station_public_key(&self) -> String {
        crate::stations::own_public_key(&self.shared.alarm_io.key)
    }

    /// The security event monitor (the window's session service reports log-in failures,
    /// break-glass and configuration changes to it).
    pub fn security(&self) -> Arc<SecurityMonitor> {
        Arc::clone(&self.shared.security)
    }

    /// Tell the ward's other stations that `user` took break-glass access until `until_ms`
    /// (QoS 1 notice; they record a security event and show a desktop notification).
    pub fn announce_break_glass(&self, user: &str, reason: &str, until_ms: i64) {
        let io = &self.shared.alarm_io;
        let notice = StationNotice {
            v: 1,
            station: io.station.clone(),
            kind: "break_glass".into(),
            user: user.to_string(),
            detail: reason.chars().take(300).collect(),
            until_ms: Some(until_ms),
            t_ms: store::now_ms(),
        };
        match serde_json::to_vec(&notice) {
            Ok(payload) => {
                if let Err(e) = io.client.try_publish(
                    notice_topic(&io.station),
                    QoS::AtLeastOnce,
                    false,
                    payload,
                ) {
                    tracing::warn!(error = %e, "cannot tell the ward's stations about break-glass");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a station notice"),
        }
    }
}

impl std::ops::Deref for Engine {
    type Target = EngineHandle;

    fn deref(&self) -> &EngineHandle {
        &self.handle
    }
}

/// Which lane a message is handled on: the priority lane never waits for the database; the
/// bulk lane (waveform chunks) may, without holding up the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Priority,
    Bulk,
}

/// The network side of the engine: reads the broker connection, checks each device's budget
/// on the topic and payload size (nothing decoded yet), and hands messages to their lane:
/// waveform chunks to the bulk lane, everything else (vitals, device status, interop, station
/// topics) to the priority lane. Never waits for the bulk lane or the database.
struct Dispatch {
    priority: mpsc::Sender<Publish>,
    bulk: mpsc::Sender<Publish>,
    /// Acknowledgements, released in the order the messages arrived (`ack_in_order`).
    order: mpsc::UnboundedSender<AckOrder>,
}

impl Dispatch {
    async fn publish(&self, shared: &Shared, p: Publish) {
        if p.topic == shared.acl_probe {
            acl_probe_back(shared);
            self.ack(p);
            return;
        }
        let parsed = telemetry::Topic::parse(&p.topic);
        let Ok(t) = parsed else {
            // Station topics, or a bad topic rejected (and counted) on the priority lane.
            let _ = self.priority.send(p).await;
            return;
        };
        let now = store::now_ms();
        let admission = lock(&shared.budgets).admit(&t.bed, &t.device, p.payload.len(), now);
        if let Admission::Drop { first } = admission {
            shared.counters.messages.fetch_add(1, Ordering::Relaxed);
            over_budget(shared, &t.bed, &t.device, first, now);
            self.ack(p);
            return;
        }
        if matches!(t.stream, telemetry::Stream::Wave(_)) {
            match self.bulk.try_send(p) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(p)) => {
                    shared.counters.messages.fetch_add(1, Ordering::Relaxed);
                    let n = shared.counters.reject("wave_backlog");
                    if n == 1 || n % 1000 == 0 {
                        tracing::error!(
                            dropped = n,
                            "the database cannot keep up with waveforms: chunks dropped \
                             (recorded as gaps) so that vitals and alarms go on"
                        );
                    }
                    self.ack(p);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        } else {
            let _ = self.priority.send(p).await;
        }
    }

    /// Acknowledge a message dropped here (QoS 1) without waiting for a commit (there is
    /// nothing to commit); the broker gets it in arrival order, after the messages before it.
    fn ack(&self, p: Publish) {
        if p.qos != QoS::AtMostOnce {
            let _ = self.order.send(AckOrder::Ready(p.pkid));
        }
    }
}

/// Publish the ACL probe: the station's own credentials, a device's status topic. A broker
/// set up as docs/broker-security.md says refuses it (drops it); one that delivers it back
/// lets whoever holds the station's credentials forge any bed's readings. Counted as refused
/// once `ACL_PROBE_WAIT` passes without it coming back.
fn send_acl_probe(shared: &Arc<Shared>, client: &AsyncClient) {
    let payload = format!("vigil ACL probe from station {}", shared.alarm_io.station);
    if let Err(e) = client.try_publish(
        shared.acl_probe.clone(),
        QoS::AtLeastOnce,
        false,
        payload.into_bytes(),
    ) {
        tracing::warn!(error = %e, "cannot send the broker ACL probe");
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(ACL_PROBE_WAIT).await;
        let mut c = lock(&shared.acl_check);
        if *c == AclCheck::Pending {
            *c = AclCheck::Refused;
            tracing::info!(
                topic = %shared.acl_probe,
                "broker ACL: the station's publish on a device topic was refused, as it should be"
            );
        }
    });
}

/// The station's ACL probe came back: the broker let the station write a device's topic.
fn acl_probe_back(shared: &Shared) {
    {
        let mut c = lock(&shared.acl_check);
        if *c == AclCheck::Accepted {
            return;
        }
        *c = AclCheck::Accepted;
    }
    let text = format!(
        "the broker accepted this station's publish on a device topic ({}): its ACL does not \
         restrict who writes device topics, so any holder of these credentials can forge any \
         bed's readings (docs/broker-security.md)",
        shared.acl_probe
    );
    tracing::error!(target: "vigil::security", "BROKER ACL OPEN: {text}");
    shared.security.report(Occurrence::new(
        Kind::BrokerAuth,
        Source::peer(&shared.acl_probe),
        text,
        store::now_ms(),
    ));
    add_warning(
        shared,
        "the broker lets this station write any device's topic (ACL open): readings may be forged",
    );
}

/// Add a standing warning to the link state.
fn add_warning(shared: &Shared, warning: &str) {
    let mut sent = None;
    shared.link.send_if_modified(|cur| {
        if cur.warnings.iter().any(|w| w == warning) {
            return false;
        }
        cur.warnings.push(warning.to_string());
        sent = Some(cur.clone());
        true
    });
    if let Some(new) = sent {
        let _ = shared.live.send(LiveEvent::Link(new));
    }
}

/// A device over its budget: count the dropped message; on the first of an episode raise
/// the bed's DEVICE OVER BUDGET technical alarm and report a security event (the alarm is
/// resolved by `alarm_tick` once the device is back within its budget).
fn over_budget(shared: &Shared, bed: &BedId, device: &str, first: bool, now: i64) {
    let n = shared.counters.reject("over_budget");
    if !first {
        if n % 10_000 == 0 {
            tracing::warn!(%bed, device, dropped = n, "devices over budget: messages dropped");
        }
        return;
    }
    let budget = shared.policy.budget;
    let text = format!(
        "{device} sends more than its budget ({} messages/s, {} KiB/s): its excess is dropped",
        budget.msgs_per_s,
        budget.bytes_per_s / 1024
    );
    tracing::warn!(%bed, device, "DEVICE OVER BUDGET: {text}");
    shared.security.report(Occurrence::new(
        Kind::DeviceOverBudget,
        Source {
            bed: bed.key(),
            device: device.chars().take(64).collect(),
            ..Source::default()
        },
        text.clone(),
        now,
    ));
    // On the bed the registry gives the device; an unknown device (refused anyway when the
    // registry is enforced) raises nothing on a bed it merely names.
    let resolved =
        lock(&shared.registry).resolve(device, Some(bed), shared.policy.require_registered);
    let Ok(bed) = resolved else {
        return;
    };
    let events = {
        let mut st = lock(&shared.state);
        note_bed(shared, &mut st, &bed);
        let events = st.alarms.device_over_budget(&bed, device, true, &text, now);
        publish_alarms(shared, &mut st, &events, now);
        events
    };
    record_alarm_events(shared, events);
}

/// One lane: handle its messages in order, then acknowledge each (through the outbox, after
/// what handling it queued for the writer).
async fn run_lane(
    shared: Arc<Shared>,
    sink: StoreSink,
    lane: Lane,
    mut rx: mpsc::Receiver<Publish>,
) {
    while let Some(mut p) = rx.recv().await {
        handle_publish(&shared, &sink, lane, &p.topic, &p.payload).await;
        if p.qos != QoS::AtMostOnce {
            // Only the packet id and QoS are needed for the ack. The payload is a slice of
            // the network read buffer: kept, it would keep that whole buffer alive.
            p.payload = Default::default();
            p.topic = String::new();
            outbox_send(&shared, Outbox::Ack(p));
        }
    }
}

async fn run_loop(
    shared: Arc<Shared>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    filters: Vec<String>,
    sink: StoreSink,
    order: mpsc::UnboundedSender<AckOrder>,
    mut stop: watch::Receiver<bool>,
) {
    let (priority_tx, priority_rx) = mpsc::channel(FAST_LANE);
    let (bulk_tx, bulk_rx) = mpsc::channel(BULK_LANE);
    let lanes = [
        tokio::spawn(run_lane(
            Arc::clone(&shared),
            sink.clone(),
            Lane::Priority,
            priority_rx,
        )),
        tokio::spawn(run_lane(Arc::clone(&shared), sink, Lane::Bulk, bulk_rx)),
    ];
    let dispatch = Dispatch {
        priority: priority_tx,
        bulk: bulk_tx,
        order,
    };
    let mut backoff = MIN_BACKOFF;
    let mut was_connected = false;
    let mut acl_probe_sent = false;
    loop {
        let ev = tokio::select! {
            _ = stop.changed() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = MIN_BACKOFF;
                // A new connection: what the last one did not acknowledge comes again.
                let _ = dispatch.order.send(AckOrder::Reset);
                // Subscribe on every ConnAck: harmless when the session kept the subscription,
                // essential when it did not.
                let subs = filters
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(subs) {
                    tracing::error!(error = %e, "cannot queue subscription");
                }
                let down_since = shared.link.borrow().since_ms;
                set_link(&shared, true, false, None);
                if ack.session_present {
                    if was_connected {
                        // What devices sent meanwhile comes now, at network speed.
                        let now = store::now_ms();
                        lock(&shared.budgets).catch_up(now - down_since, now);
                    }
                    tracing::info!("connected to broker (session resumed)");
                } else if was_connected {
                    // The broker lost this station's session (restart without persistence,
                    // session expiry): what devices published while the station was away was
                    // not queued for it. Waveform chunk gaps show what is missing.
                    tracing::warn!(
                        down_since_ms = down_since,
                        "connected to broker, but it kept no session for this station: \
                         telemetry published while disconnected may be missing"
                    );
                } else {
                    tracing::info!("connected to broker (new session)");
                }
                was_connected = true;
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                set_link(&shared, true, true, None);
                tracing::info!(filter = %filters[0], "subscribed");
                if !acl_probe_sent && *lock(&shared.acl_check) == AclCheck::Pending {
                    acl_probe_sent = true;
                    send_acl_probe(&shared, &client);
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                // Acknowledged to the broker once handled and committed (QoS 1 only; see
                // `run_lane`, `ack_after_commit`), or at once when dropped over budget;
                // always in the order they arrived (MQTT 3.1.1 §4.6, which brokers enforce).
                if p.qos != QoS::AtMostOnce {
                    let _ = dispatch.order.send(AckOrder::Received(p.pkid));
                }
                dispatch.publish(&shared, p).await;
            }
            Ok(_) => {}
            Err(e) => {
                if *stop.borrow() {
                    break;
                }
                let msg = e.to_string();
                report_broker_failure(&shared, &e);
                // Log every new condition (not every retry of the same one).
                let (connected, same) = {
                    let l = shared.link.borrow();
                    (l.connected, l.last_error.as_deref() == Some(msg.as_str()))
                };
                if connected {
                    tracing::warn!(error = %msg, "broker connection lost; retrying");
                } else if !same {
                    tracing::warn!(
                        error = %msg, retry_in_ms = backoff.as_millis() as u64,
                        "cannot connect to broker; retrying"
                    );
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
    // Orderly goodbye: `Engine::shutdown` queued a DISCONNECT. Poll until it is sent, handling
    // what arrives meanwhile (it is stored; being unacknowledged, the broker sends it again in
    // the next session and the store drops the duplicate). What the broker sends after the
    // DISCONNECT stays queued in this station's session.
    if eventloop.network.is_some() {
        let drain = async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        dispatch.publish(&shared, p).await;
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(2), drain)
            .await
            .is_err()
        {
            tracing::warn!("the broker did not take the disconnect within 2 s");
        }
    }
    // The lanes finish what they hold, then stop.
    drop(dispatch);
    for lane in lanes {
        let _ = lane.await;
    }
}

/// MQTT options for the station: see [`BrokerSettings::mqtt_options`] (persistent session).
fn mqtt_options(cfg: &EngineConfig) -> Result<rumqttc::MqttOptions, ConfigError> {
    let mut opts = cfg.broker.mqtt_options(&cfg.client_id)?;
    opts.set_clean_session(false);
    // Acknowledge QoS 1 telemetry only after it is committed (`ack_after_commit`): a station
    // killed or powered off loses nothing the broker still holds for its session.
    opts.set_manual_acks(true);
    if cfg.broker.password_in_clear() {
        tracing::warn!(
            broker = %cfg.broker.url,
            "the broker password is sent without TLS; use mqtts://"
        );
    }
    Ok(opts)
}

fn set_link(shared: &Shared, connected: bool, subscribed: bool, last_error: Option<String>) {
    let mut sent = None;
    shared.link.send_if_modified(|cur| {
        if cur.connected == connected
            && cur.subscribed == subscribed
            && cur.last_error == last_error
        {
            return false;
        }
        let since_ms = if cur.connected == connected {
            cur.since_ms
        } else {
            store::now_ms()
        };
        *cur = LinkState {
            connected,
            subscribed,
            last_error: last_error.clone(),
            since_ms,
            warnings: std::mem::take(&mut cur.warnings),
        };
        sent = Some(cur.clone());
        true
    });
    if let Some(new) = sent {
        let _ = shared.live.send(LiveEvent::Link(new));
    }
}

async fn store_op(store: &mpsc::Sender<Op>, op: Op) {
    if store.send(op).await.is_err() {
        tracing::error!("store writer has stopped; data not stored");
    }
}

impl StoreSink {
    /// Queue an operation for the writer. While the writer is failing (disk full) its queue
    /// may fill up: then the operation is dropped and counted rather than waited for.
    async fn put(&self, op: Op) {
        if !self.stats.failing.load(Ordering::Relaxed) {
            return store_op(&self.tx, op).await;
        }
        match self.tx.try_send(op) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n % 10_000 == 0 {
                    tracing::error!(
                        dropped = n,
                        "database failing and its queue is full: data not stored"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("store writer has stopped; data not stored");
            }
        }
    }
}

/// Pass the outbox on to the writer in order (waiting for room there, which nothing that
/// queued into the outbox does), and acknowledgements on once what came before them is queued.
async fn forward_outbox(
    sink: StoreSink,
    acks: mpsc::UnboundedSender<Publish>,
    mut rx: mpsc::UnboundedReceiver<Outbox>,
    len: Arc<AtomicU64>,
) {
    while let Some(item) = rx.recv().await {
        len.fetch_sub(1, Ordering::Relaxed);
        match item {
            Outbox::Op(op) => sink.put(op).await,
            Outbox::Ack(p) => {
                let _ = acks.send(p);
            }
        }
    }
}

/// Queue a store operation without waiting (see [`Outbox`]).
fn outbox_op(shared: &Shared, op: Op) {
    let backlog = shared.outbox_len.load(Ordering::Relaxed);
    if matches!(op, Op::Reject { .. }) && backlog >= REJECT_BACKLOG {
        shared.counters.reject("reject_not_stored");
        return;
    }
    if !outbox_send(shared, Outbox::Op(op)) {
        tracing::error!("store writer has stopped; data not stored");
    }
}

/// Put `item` in the outbox; false if the engine has stopped.
fn outbox_send(shared: &Shared, item: Outbox) -> bool {
    shared.outbox_len.fetch_add(1, Ordering::Relaxed);
    let sent = shared.outbox.send(item).is_ok();
    if !sent {
        shared.outbox_len.fetch_sub(1, Ordering::Relaxed);
    }
    sent
}

/// Acknowledge handled QoS 1 messages to the broker once everything queued for the writer
/// before them is committed, in the order they arrived. A message not acknowledged (the
/// process is killed, the database cannot be written) stays with the broker, which sends it
/// again in the next session; the store drops what it already holds.
async fn ack_after_commit(
    order: mpsc::UnboundedSender<AckOrder>,
    store: mpsc::Sender<Op>,
    mut rx: mpsc::UnboundedReceiver<Publish>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        // Take whatever else is waiting: one commit covers it all.
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let (done_tx, done) = tokio::sync::oneshot::channel();
        if store.send(Op::Flush(done_tx)).await.is_err() || done.await.is_err() {
            return;
        }
        for p in batch.drain(..) {
            if order.send(AckOrder::Ready(p.pkid)).is_err() {
                return;
            }
        }
    }
}

/// What `ack_in_order` hears of a QoS 1 message: it arrived (in network order), or it may be
/// acknowledged (handled, and what it wrote committed, or dropped), or a new connection began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckOrder {
    Received(u16),
    Ready(u16),
    Reset,
}

/// Send the broker the acknowledgements of QoS 1 messages in the order the messages arrived,
/// each once it is ready. The lanes finish messages out of order (a vitals message overtakes
/// the waveform chunks before it), but MQTT 3.1.1 §4.6 requires PUBACKs in arrival order, and
/// brokers enforce it (the embedded rumqttd drops the connection on an out-of-order PUBACK).
/// A packet id is unique among a connection's unacknowledged messages; after a reconnect the
/// broker sends the unacknowledged again, so the order starts afresh.
async fn ack_in_order(client: AsyncClient, mut rx: mpsc::UnboundedReceiver<AckOrder>) {
    let mut order: std::collections::VecDeque<u16> = std::collections::VecDeque::new();
    let mut waiting: std::collections::HashSet<u16> = std::collections::HashSet::new();
    let mut ready: std::collections::HashSet<u16> = std::collections::HashSet::new();
    while let Some(m) = rx.recv().await {
        match m {
            AckOrder::Received(id) => {
                if waiting.insert(id) {
                    order.push_back(id);
                }
            }
            AckOrder::Ready(id) => {
                // Not waiting: a message of an earlier connection, which the broker sends again.
                if waiting.contains(&id) {
                    ready.insert(id);
                }
            }
            AckOrder::Reset => {
                order.clear();
                waiting.clear();
                ready.clear();
            }
        }
        while let Some(&front) = order.front() {
            if !ready.remove(&front) {
                break;
            }
            order.pop_front();
            waiting.remove(&front);
            let mut p = Publish::new("", QoS::AtLeastOnce, Vec::<u8>::new());
            p.pkid = front;
            if client.ack(&p).await.is_err() {
                return;
            }
        }
    }
}

/// Wait (bounded) until what was queued for the writer so far is committed.
async fn wait_committed(shared: &Shared) {
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let wait = async { outbox_send(shared, Outbox::Op(Op::Flush(done_tx))) && done.await.is_ok() };
    if !matches!(
        tokio::time::timeout(ACTION_COMMIT_WAIT, wait).await,
        Ok(true)
    ) {
        tracing::error!("the database did not confirm the record of an operator action");
    }
}

/// Log when this database last stored data: after a crash or power loss, what devices sent
/// since then is either sent again by the broker (persistent session) or missing.
fn report_last_stored(conn: &rusqlite::Connection) -> Option<i64> {
    let last = conn
        .query_row(
            "SELECT MAX(t) FROM (SELECT MAX(t0_ms) AS t FROM wave_chunks
               UNION ALL SELECT MAX(t_ms) FROM numerics)",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .ok()
        .flatten();
    if let Some(t) = last {
        let ago_s = (store::now_ms() - t) as f64 / 1000.0;
        tracing::info!(
            last_stored_ms = t,
            "history: last data stored {ago_s:.1} s before this start; what devices sent \
             since is redelivered by the broker (persistent session) or recorded as a gap"
        );
    }
    last
}

fn reject(shared: &Shared, topic: &str, e: &telemetry::DecodeError) {
    let n = shared.counters.reject(e.reason());
    let now = store::now_ms();
    let peer = topic.strip_prefix("mllp:").unwrap_or("");
    if let Some(o) = Occurrence::from_reject(e, topic, peer, now) {
        shared.security.report(o);
    }
    // Per-message warnings would flood the log: the first of each reason, then every 1000th;
    // the security events count every one.
    if n <= 1 || n % 1000 == 0 {
        tracing::warn!(reason = e.reason(), count = n, topic = %topic.chars().take(200).collect::<String>(), error = %e, "telemetry rejected");
    } else {
        tracing::debug!(reason = e.reason(), topic = %topic.chars().take(200).collect::<String>(), error = %e, "telemetry rejected");
    }
    outbox_op(
        shared,
        Op::Reject {
            reason: e.reason(),
            detail: format!("{}: {e}", topic.chars().take(200).collect::<String>()),
            t_ms: store::now_ms(),
        },
    );
}

async fn handle_publish(
    shared: &Shared,
    sink: &StoreSink,
    lane: Lane,
    topic: &str,
    payload: &[u8],
) {
    // Station-level topics (`vigil/v1/_station/...`): never telemetry (a ward never starts with
    // `_`). Checked by prefix first: this runs for every message.
    if topic
        .strip_prefix(telemetry::TOPIC_ROOT)
        .is_some_and(|r| r.starts_with("/_station/"))
    {
        if topic == audit_head_topic(&shared.alarm_io.station) {
            published_head(shared, payload).await;
        } else if let Some(station) = notice_station(topic) {
            station_notice(shared, station, payload);
        }
        return;
    }
    // Other stations' alarm state: never telemetry (device topics have no `_` levels).
    if alarm_sync::is_station_topic(topic) {
        return station_state(shared, topic, payload).await;
    }
    shared.counters.messages.fetch_add(1, Ordering::Relaxed);
    let msgs = match crate::decode::decode(topic, payload).and_then(|m| admit(shared, m)) {
        Ok(m) => m,
        // A QoS 1 redelivery of a message already handled: nothing new, not a reject.
        Err(e @ telemetry::DecodeError::Duplicate { .. }) => {
            shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(topic = %topic.chars().take(200).collect::<String>(), error = %e, "redelivery dropped");
            return;
        }
        Err(e) => return reject(shared, topic, &e),
    };
    for m in msgs {
        ingest(shared, sink, lane, topic, m).await;
    }
}

/// Store, alarm on and broadcast one admitted message. `source` names it in logs. On the
/// priority lane nothing waits for the database (its operations go through the outbox); on
/// the bulk lane waveform chunks wait for room in the writer's queue.
async fn ingest(shared: &Shared, sink: &StoreSink, lane: Lane, source: &str, msg: Message) {
    let bulk = move |op: Op| async move {
        match lane {
            Lane::Bulk => sink.put(op).await,
            Lane::Priority => outbox_op(shared, op),
        }
    };
    match msg {
        // Batches are expanded by `admit`; nothing of the kind reaches here.
        Message::Batch { .. } => {}
        Message::Vitals(mut v) => {
            for e in &v.rejected {
                reject(shared, source, e);
            }
            let now = store::now_ms();
            // Only readings newer than the device's last of the vital and taken within the
            // live window reach the alarms; the others are history, marked late.
            let c = lock(&shared.gate).classify(&mut v, &shared.policy, now);
            shared
                .counters
                .readings
                .fetch_add((v.readings.len() + v.late.len()) as u64, Ordering::Relaxed);
            if c.late > 0 {
                note_late(shared, source, &v, c);
            }
            let v = Arc::new(v);
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &v.bed);
                // Old readings alone say nothing about the device now.
                let mut events = if v.late.is_empty() || !v.readings.is_empty() {
                    st.alarms.device_seen(&v.bed, &v.device, now)
                } else {
                    Vec::new()
                };
                for r in &v.late {
                    st.snapshot
                        .late
                        .entry(v.bed.clone())
                        .or_default()
                        .insert(r.vital, *r);
                }
                for r in &v.readings {
                    let key = (v.bed.clone(), r.vital);
                    let last = st.evaluated.get(&key).cloned();
                    if crate::ingest::is_revision(r.status) {
                        if last.as_ref() == Some(&(v.device.clone(), r.t_ms)) {
                            // The source revises the reading the alarms reflect.
                            let ev = st.alarms.revise(&v.bed, &v.device, r, now);
                            tracing::warn!(
                                bed = %v.bed, device = %v.device, vital = r.vital.info().name,
                                status = r.status.as_str(), events = ev.len(),
                                "reading revised by its source; alarms re-evaluated"
                            );
                            events.extend(ev);
                            let latest = st.snapshot.latest.entry(v.bed.clone()).or_default();
                            if r.alarmable() {
                                latest.insert(r.vital, *r);
                            } else {
                                latest.remove(&r.vital);
                            }
                            continue;
                        }
                        if last.is_some_and(|(_, t)| r.t_ms <= t) {
                            // A revision of an earlier reading, or of another device's:
                            // history only.
                            continue;
                        }
                    }
                    events.extend(st.alarms.observe(&v.bed, r, now));
                    if r.alarmable() {
                        st.evaluated.insert(key, (v.device.clone(), r.t_ms));
                    }
                    st.snapshot
                        .latest
                        .entry(v.bed.clone())
                        .or_default()
                        .insert(r.vital, *r);
                }
                // A shown alarm's value moved with the numerics: send the list again so the
                // alarm text says what the tile shows.
                if st.alarms.take_shown_changed() && events.is_empty() {
                    let active = st.alarms.active(now);
                    st.snapshot.alarms = active.clone();
                    let _ = shared.live.send(LiveEvent::Alarms(Arc::new(active)));
                }
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            let _ = shared.live.send(LiveEvent::Vitals(Arc::clone(&v)));
            record_alarm_events(shared, events);
            outbox_op(shared, Op::Vitals(v));
        }
        Message::Wave(w) => {
            shared
                .counters
                .samples
                .fetch_add(w.data.len() as u64, Ordering::Relaxed);
            let now = store::now_ms();
            // A jump in the sequence is declared a gap only if the chunks are still missing
            // after the hold (`declare_gaps`); a late one inside a declared gap corrects it.
            let fill = lock(&shared.gaps).observe(&w, now);
            let w = Arc::new(w);
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &w.bed);
                let events = st.alarms.device_seen(&w.bed, &w.device, now);
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            if let Some(f) = fill {
                tracing::info!(
                    bed = %f.bed, device = %f.device, channel = f.channel, seq = f.seq,
                    "late waveform chunk: the recorded gap is corrected"
                );
                // Through the outbox, like the gap it corrects (which it must follow).
                outbox_op(shared, Op::GapFill(f));
            }
            record_alarm_events(shared, events);
            let _ = shared.live.send(LiveEvent::Wave(Arc::clone(&w)));
            bulk(Op::Wave(w)).await;
        }
        Message::Status(s) => {
            if !s.online {
                tracing::warn!(bed = %s.bed, device = %s.device, "device offline");
            }
            let now = store::now_ms();
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &s.bed);
                st.devices.insert(s.device.clone(), s.clone());
                let events = st.alarms.device_status(&s, now);
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            record_alarm_events(shared, events);
            let _ = shared.live.send(LiveEvent::Device(Arc::new(s.clone())));
            outbox_op(shared, Op::Status(s));
        }
    }
}

/// Count and log readings classified late (the first, then every 1000th).
fn note_late(shared: &Shared, source: &str, v: &Vitals, c: crate::ingest::Classified) {
    let before = shared.counters.late.fetch_add(c.late, Ordering::Relaxed);
    shared
        .counters
        .late_duplicates
        .fetch_add(c.duplicates, Ordering::Relaxed);
    if before == 0 || (before + c.late) / 1000 > before / 1000 {
        tracing::warn!(
            bed = %v.bed, device = %v.device, late = c.late, duplicates = c.duplicates,
            total = before + c.late, source = %source.chars().take(200).collect::<String>(),
            "late readings stored as history, not alarmed on"
        );
    }
}

/// Apply the ingest policy: the device must be allowed to feed the bed (registry), and times
/// must be near the station clock. Readings with bad times are moved to `rejected`. An
/// interoperability batch is checked against its topic's device and expanded into vitals and
/// waveform chunks.
fn admit(shared: &Shared, msg: Message) -> Result<Vec<Message>, telemetry::DecodeError> {
    let policy = &shared.policy;
    let now = store::now_ms();
    let resolve = |device: &str, bed: &BedId| {
        lock(&shared.registry).resolve(device, Some(bed), policy.require_registered)
    };
    Ok(match msg {
        Message::Vitals(mut v) => {
            v.bed = resolve(&v.device, &v.bed)?;
            drop_bad_times(policy, now, &mut v);
            // Before any alarm sees it: a replay is refused, a redelivery dropped.
            match lock(&shared.gate).check_seq(&v, policy, now)? {
                SeqCheck::Gap { missing } => tracing::debug!(
                    bed = %v.bed, device = %v.device, seq = v.seq, missing,
                    "vitals sequence gap"
                ),
                SeqCheck::Restart => tracing::info!(
                    bed = %v.bed, device = %v.device, seq = v.seq,
                    "vitals sequence restarted (device restart)"
                ),
                SeqCheck::GapFill => tracing::debug!(
                    bed = %v.bed, device = %v.device, seq = v.seq,
                    "late vitals message filling a sequence gap"
                ),
                SeqCheck::First | SeqCheck::Next => {}
            }
            vec![Message::Vitals(v)]
        }
        Message::Wave(mut w) => {
            w.bed = resolve(&w.device, &w.bed)?;
            policy.check_time(w.t0_ms, now)?;
            vec![Message::Wave(w)]
        }
        Message::Status(mut s) => {
            s.bed = resolve(&s.device, &s.bed)?;
            vec![Message::Status(s)]
        }
        Message::Batch { bed, device, batch } => {
            if let Some(d) = batch.device.as_deref().filter(|d| *d != device) {
                return Err(telemetry::DecodeError::DeviceMismatch {
                    topic: device,
                    payload: d.chars().take(64).collect(),
                });
            }
            let bed = resolve(&device, &bed)?;
            expand(bed, device, batch, policy, now)
        }
    })
}

/// Move readings stamped too far from the station clock to `rejected`.
fn drop_bad_times(policy: &IngestPolicy, now: i64, v: &mut Vitals) {
    let (good, bad): (Vec<Reading>, Vec<Reading>) = std::mem::take(&mut v.readings)
        .into_iter()
        .partition(|r| policy.check_time(r.t_ms, now).is_ok());
    v.rejected.extend(
        bad.iter()
            .filter_map(|r| policy.check_time(r.t_ms, now).err()),
    );
    v.readings = good;
}

/// Turn an interoperability batch from `device` on `bed` into vitals and waveform chunks.
fn expand(
    bed: BedId,
    device: String,
    batch: Batch,
    policy: &IngestPolicy,
    now: i64,
) -> Vec<Message> {
    let mut out = Vec::new();
    let mut rejected = batch.rejected;
    for s in batch.waves {
        if let Err(e) = policy.check_time(s.t0_ms, now) {
            rejected.push(e);
            continue;
        }
        // Interop waveforms carry no chunk sequence: seq 0 on every chunk never reads as a gap.
        out.push(Message::Wave(WaveChunk {
            bed: bed.clone(),
            device: device.clone(),
            channel: s.channel,
            unit: s.channel.unit,
            t0_ms: s.t0_ms,
            rate: s.rate,
            seq: 0,
            origin: s.origin,
            factor: s.factor,
            data: s.data,
        }));
    }
    let mut v = Vitals {
        bed,
        device,
        seq: 0,
        readings: batch.readings,
        rejected,
        late: Vec::new(),
    };
    drop_bad_times(policy, now, &mut v);
    if !v.readings.is_empty() || !v.rejected.is_empty() {
        out.insert(0, Message::Vitals(v));
    }
    out
}

/// Take HL7 v2 messages from the MLLP listener: the device (OBX-18 / MSH-3) must be one the
/// peer may speak for (with an allow-list) and be in the device registry, which names its bed.
/// Each message is answered once it is ingested; every refusal gets the same answer
/// ([`crate::interop::mllp::Refused`]) while its reason is logged, counted and reported.
async fn mllp_intake(
    shared: Arc<Shared>,
    sink: StoreSink,
    peers: Option<Arc<crate::interop::mllp::PeerList>>,
    mut rx: mpsc::Receiver<crate::interop::mllp::MllpMessage>,
) {
    use crate::interop::mllp::{peer_ip, Refused};
    while let Some(m) = rx.recv().await {
        shared.counters.messages.fetch_add(1, Ordering::Relaxed);
        let ip = peer_ip(&m.peer);
        let cert_devices = m.cert_devices;
        // Per address (not per port): one security event per peer however often it reconnects.
        let source = format!("mllp:{ip}");
        let admitted = m.batch.and_then(|batch| {
            let device = batch
                .device
                .clone()
                .ok_or_else(|| telemetry::DecodeError::UnknownDevice("(none in message)".into()))?;
            let registry = lock(&shared.registry);
            // The peer's address (allow-list) and its client certificate (TLS), when there are.
            let by_peer = peers.as_ref().is_none_or(|p| p.may_speak_for(ip, &device));
            let by_cert = cert_devices.as_ref().is_none_or(|d| d.contains(&device));
            if !(by_peer && by_cert) {
                let bed = registry.resolve(&device, None, true).ok();
                return Err(telemetry::DecodeError::ForeignDevice {
                    device,
                    peer: ip.to_string(),
                    bed: bed.map(|b| b.key()),
                });
            }
            let bed = registry.resolve(&device, None, true)?;
            drop(registry);
            Ok(expand(bed, device, batch, &shared.policy, store::now_ms()))
        });
        match admitted {
            Ok(msgs) => {
                for msg in msgs {
                    ingest(&shared, &sink, Lane::Priority, &source, msg).await;
                }
                let _ = m.reply.send(Ok(()));
            }
            Err(e) => {
                reject(&shared, &source, &e);
                let _ = m.reply.send(Err(Refused));
            }
        }
    }
}

/// Connections the MLLP listener refused or closed (not allowed, over a cap, a frame not
/// completed in time): security events of their peer.
async fn mllp_conn_events(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<crate::interop::mllp::ConnEvent>,
) {
    while let Some(ev) = rx.recv().await {
        let ip = crate::interop::mllp::peer_ip(&ev.peer);
        shared.counters.reject(ev.what.reason());
        shared.security.report(Occurrence::new(
            Kind::MllpRefused,
            Source::peer(&ip.to_string()),
            format!("{} ({})", ev.what.describe(), ev.what.reason()),
            store::now_ms(),
        ));
    }
}

/// Every second, ask the writer to delete a step of history past the retention limits (a step
/// is bounded, so pruning keeps pace with ingest without ever stalling it).
async fn prune_loop(
    retention: Retention,
    store: mpsc::Sender<Op>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = store::now_ms();
        let op = Op::Prune {
            waves_before_ms: now - (retention.waveform_hours * 3600 * 1000) as i64,
            trends_before_ms: now - (retention.trend_days * 24 * 3600 * 1000) as i64,
        };
        if store.send(op).await.is_err() {
            return;
        }
    }
}

/// After alarm events: refresh the snapshot's alarm list and send it to live watchers (under
/// the state lock, so watchers see lists in order).
fn publish_alarms(shared: &Shared, st: &mut WardState, events: &[AlarmEvent], now: i64) {
    if events.is_empty() {
        return;
    }
    let active = st.alarms.active(now);
    st.snapshot.alarms = active.clone();
    let _ = shared.live.send(LiveEvent::Alarms(Arc::new(active)));
}

/// Log, persist and notify alarm events (after `publish_alarms`). Never waits.
fn record_alarm_events(shared: &Shared, events: Vec<AlarmEvent>) {
    for e in events {
        log_alarm_event(&e);
        if let Some(n) = &shared.alarm_io.notifier {
            n.alarm(&e);
        }
        outbox_op(shared, Op::Alarm(e));
    }
}

/// Publish, log, persist and notify events from an operator action or the tick.
async fn emit_alarm_events(shared: &Shared, events: Vec<AlarmEvent>, now: i64) {
    if events.is_empty() {
        return;
    }
    {
        let mut st = lock(&shared.state);
        publish_alarms(shared, &mut st, &events, now);
    }
    record_alarm_events(shared, events);
}

fn log_alarm_event(e: &AlarmEvent) {
    let user = e.user.as_deref().unwrap_or("-");
    match e.kind {
        AlarmEventKind::Raise => tracing::warn!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, priority = e.priority.as_str(), audible = e.audible,
            "ALARM {} {}", e.priority.marker(), e.message
        ),
        AlarmEventKind::Escalate => tracing::warn!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, level = e.level, "ALARM ESCALATED {}", e.message
        ),
        AlarmEventKind::Resolve => tracing::info!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, "ALARM RESOLVED {}", e.message
        ),
        _ => tracing::info!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, kind = e.kind.as_str(), user, "{}", e.message
        ),
    }
}

/// Time-based alarm rules (condition delays, communication lost, pause expiry, escalation).
async fn alarm_tick(shared: Arc<Shared>, period: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = store::now_ms();
        let failing = shared.store_stats.failing.load(Ordering::Relaxed);
        let events = {
            let mut st = lock(&shared.state);
            let mut events = st.alarms.tick(now);
            events.extend(st.alarms.store_failing(
                failing,
                "the database cannot be written (disk full?): history is not being recorded",
                now,
            ));
            events
        };
        if !failing {
            let dropped = shared.store_dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::error!(dropped, "data not stored while the database was failing");
                outbox_op(
                    &shared,
                    Op::Reject {
                        reason: "not_stored",
                        detail: format!(
                            "{dropped} operations dropped while the database was failing"
                        ),
                        t_ms: now,
                    },
                );
            }
        }
        emit_alarm_events(&shared, events, now).await;
        declare_gaps(&shared, now).await;
        settle_budgets(&shared, now);
    }
}

/// Waveform chunks still missing after the hold ([`crate::ingest::GAP_HOLD_MS`]): record each
/// gap and raise its bed's DATA GAP alarm.
async fn declare_gaps(shared: &Shared, now: i64) {
    let gaps = lock(&shared.gaps).due(now);
    if gaps.is_empty() {
        return;
    }
    let mut events = Vec::new();
    {
        let mut st = lock(&shared.state);
        for g in &gaps {
            note_bed(shared, &mut st, &g.bed);
            events.extend(st.alarms.data_gap(&g.bed, &g.device, g.channel, now));
        }
    }
    for g in gaps {
        tracing::warn!(
            bed = %g.bed, device = %g.device, channel = g.channel,
            missing = g.last_seq - g.first_seq + 1, "waveform gap"
        );
        outbox_op(shared, Op::Gap(g));
    }
    emit_alarm_events(shared, events, now).await;
}

/// Devices back within their budget: resolve their DEVICE OVER BUDGET alarm and record how
/// much of them was dropped.
fn settle_budgets(shared: &Shared, now: i64) {
    let settled = lock(&shared.budgets).settle(now);
    for (topic_bed, device, dropped) in settled {
        let text = format!("{device} back within its budget; {dropped} messages were dropped");
        tracing::info!(bed = %topic_bed, device, dropped, "device back within its budget");
        outbox_op(
            shared,
            Op::Reject {
                reason: "over_budget",
                detail: format!("{topic_bed} {device}: {dropped} messages over budget dropped"),
                t_ms: now,
            },
        );
        let resolved = lock(&shared.registry).resolve(
            &device,
            Some(&topic_bed),
            shared.policy.require_registered,
        );
        let Ok(bed) = resolved else {
            continue;
        };
        let events = {
            let mut st = lock(&shared.state);
            let events = st
                .alarms
                .device_over_budget(&bed, &device, false, &text, now);
            publish_alarms(shared, &mut st, &events, now);
            events
        };
        record_alarm_events(shared, events);
    }
}

/// Share this station's acknowledgements and audio pauses of `beds` with the ward: retained,
/// QoS 1, one message per bed. Never waits (the client queues; a full queue is logged).
fn publish_bed_state(shared: &Shared, beds: &[BedId], now: i64) {
    let io = &shared.alarm_io;
    if !io.sync {
        return;
    }
    for bed in beds {
        let seq = io.sync_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let state = lock(&shared.state)
            .alarms
            .sync_state(bed, &io.station, seq, now);
        let topic = alarm_sync::topic(bed);
        let payload = match alarm_sync::seal(&topic, &state, &io.key) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode alarm state");
                continue;
            }
        };
        if let Err(e) = io
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, true, payload)
        {
            tracing::warn!(%topic, error = %e, "cannot share alarm state with the ward");
        }
    }
}

/// Another station's (or this station's earlier) alarm state of a bed: believed only once
/// [`Trust::admit`] has checked it (a refusal is a security event on the bed), then applied
/// within this station's own rules and audited with the remote station and user.
async fn station_state(shared: &Shared, topic: &str, payload: &[u8]) {
    let Some(bed) = alarm_sync::parse_topic(topic) else {
        return;
    };
    if payload.is_empty() {
        return;
    }
    let now = store::now_ms();
    let admitted = lock(&shared.trust).admit(topic, &bed, payload, now);
    let state = match admitted {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(refusal) => {
            refuse_station_state(shared, &bed, topic, &refusal, now);
            return;
        }
    };
    let own = &shared.alarm_io.station;
    let events = lock(&shared.state)
        .alarms
        .apply_remote(&bed, &state, own, now);
    let remote: Vec<&crate::alarms::AlarmEvent> =
        events.iter().filter(|e| e.station.is_some()).collect();
    if !remote.is_empty() {
        let mut audit = lock(&shared.remote_audit);
        for e in &remote {
            let station = e.station.as_deref().unwrap_or_default();
            let user = e.user.as_deref().unwrap_or_default();
            let action = match e.kind {
                AlarmEventKind::Acknowledge => crate::audit::actions::REMOTE_ALARM_ACKNOWLEDGE,
                _ => crate::audit::actions::REMOTE_AUDIO_PAUSE,
            };
            audit.push(RemoteAudit {
                actor: format!("station:{station}/{user}"),
                action,
                target: e.alarm_id.clone(),
                detail: format!(
                    "{} (state sent by station {} seq {})",
                    e.message, state.station, state.seq
                ),
                t_ms: now,
            });
        }
        let first = remote[0];
        shared.security.report(Occurrence::new(
            Kind::RemoteStationAction,
            Source {
                bed: bed.key(),
                peer: first.station.clone().unwrap_or_default(),
                user: first.user.clone().unwrap_or_default(),
                ..Source::default()
            },
            format!(
                "station {} changed alarm state of {bed}: {}",
                first.station.as_deref().unwrap_or_default(),
                remote
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            now,
        ));
    }
    emit_alarm_events(shared, events, now).await;
}

/// A refused station alarm state: counted, logged, and a security event on the bed.
fn refuse_station_state(shared: &Shared, bed: &BedId, topic: &str, r: &Refusal, now: i64) {
    shared.counters.reject(r.reason());
    tracing::warn!(target: "vigil::security", %topic, reason = r.reason(), "station alarm state refused: {r}");
    shared.security.report(Occurrence::new(
        Kind::StationStateRefused,
        Source {
            bed: bed.key(),
            peer: r.station().to_string(),
            ..Source::default()
        },
        format!("{topic}: {r}"),
        now,
    ));
}

fn note_bed(shared: &Shared, st: &mut WardState, bed: &BedId) {
    if let Err(pos) = st.snapshot.beds.binary_search(bed) {
        st.snapshot.beds.insert(pos, bed.clone());
        tracing::info!(%bed, "new bed");
        let _ = shared.live.send(LiveEvent::BedAdded(bed.clone()));
    }
}

// ---------------------------------------------------------------------------------------------
// Security monitoring (docs/security.md): events, their technical alarms, syslog, audit heads.

/// A refused or failed broker connection that is an authentication matter: the broker refused
/// the credentials, or the TLS handshake failed (certificate, trust).
fn report_broker_failure(shared: &Shared, e: &rumqttc::ConnectionError) {
    use rumqttc::{ConnectReturnCode as C, ConnectionError as E};
    let what = match e {
        E::ConnectionRefused(C::BadUserNamePassword) => "refused the user name or password",
        E::ConnectionRefused(C::NotAuthorized) => "refused: not authorised",
        E::Tls(_) => "TLS handshake failed",
        _ => return,
    };
    shared.security.report(Occurrence::new(
        Kind::BrokerAuth,
        Source::peer(&shared.alarm_io.station),
        format!("the broker {what}: {e}"),
        store::now_ms(),
    ));
}

/// The retained audit head of this station came back from the broker (at start, or our own
/// publication): the trail must still hold it.
async fn published_head(shared: &Shared, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    let head: crate::audit::AuditHead = match serde_json::from_slice(payload) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable audit head on the broker ignored");
            return;
        }
    };
    if head.station != shared.alarm_io.station {
        return;
    }
    let db = shared.db_path.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let conn = store::open_read_only(&db).map_err(|e| e.to_string())?;
        let key = crate::keys::get(&db).map_err(|e| e.to_string())?;
        if let Some(k) = &key {
            if !head.is_signed_by(k) {
                return Ok((head, None));
            }
        }
        let c = crate::audit::Audit::check_head(&conn, &head).map_err(|e| e.to_string())?;
        Ok::<_, String>((head, Some(c)))
    })
    .await;
    let now = store::now_ms();
    match checked {
        Ok(Ok((head, Some(crate::audit::HeadCheck::Extends)))) => {
            let mut p = lock(&shared.published_head);
            if p.as_ref().is_none_or(|old| old.id <= head.id) {
                *p = Some(head);
            }
        }
        Ok(Ok((head, Some(finding)))) => {
            tracing::error!(head = %head.short(), %finding, "AUDIT TRAIL does not hold its published head");
            shared.security.report(Occurrence::new(
                Kind::AuditTruncated,
                Source::default(),
                format!("published head {}: {finding}", head.short()),
                now,
            ));
        }
        Ok(Ok((head, None))) => {
            tracing::error!(head = %head.short(), "an audit head on the broker is not signed by this station's key");
            shared.security.report(
                Occurrence::new(
                    Kind::AuditVerifyFailed,
                    Source::default(),
                    format!(
                        "a forged audit head {} was found on the broker (its MAC is not this \
                         station's): someone else writes this station's topic",
                        head.short()
                    ),
                    now,
                )
                .severity(Severity::High),
            );
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot check the published audit head"),
        Err(e) => tracing::warn!(error = %e, "audit head check failed"),
    }
}

/// A notice from another station (break-glass taken there).
fn station_notice(shared: &Shared, station: &str, payload: &[u8]) {
    if station == station_level(&shared.alarm_io.station) || payload.is_empty() {
        return;
    }
    let n: StationNotice = match serde_json::from_slice(payload) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(%station, error = %e, "unreadable station notice ignored");
            return;
        }
    };
    if n.kind != "break_glass" {
        return;
    }
    let until = n
        .until_ms
        .map(crate::audit::format_time_utc)
        .unwrap_or_default();
    let user: String = n.user.chars().take(64).collect();
    let text = format!(
        "{user} took break-glass (charge-nurse) rights at station {station} until {until}; \
         reason: {}",
        n.detail.chars().take(300).collect::<String>()
    );
    tracing::warn!(%station, user, "break-glass at another station");
    shared.security.report(Occurrence::new(
        Kind::BreakGlass,
        Source {
            user,
            peer: station.to_string(),
            ..Source::default()
        },
        text.clone(),
        store::now_ms(),
    ));
    if let Some(notifier) = &shared.alarm_io.notifier {
        notifier.send(crate::notify::Note {
            summary: format!("Break-glass at station {station}"),
            body: text,
            priority: crate::alarms::Priority::Medium,
            // Its own notification (not an alarm's): one per station's break-glass.
            alarm_id: format!("break-glass@{station}"),
            withdraw: false,
        });
    }
}

/// The TLS certificates the engine relies on, to warn before they expire.
fn cert_files(broker: &BrokerSettings) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Some(p) = &broker.ca_file {
        out.push(("broker CA bundle".to_string(), p.clone()));
    }
    if let Some(p) = &broker.cert_file {
        out.push(("station client certificate".to_string(), p.clone()));
    }
    out
}

/// Certificates in `files` expiring within `warn_days` (or expired), as occurrences.
pub fn check_certificates(
    files: &[(String, PathBuf)],
    warn_days: u64,
    now_ms: i64,
) -> Vec<Occurrence> {
    let mut out = Vec::new();
    for (what, path) in files {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        for item in x509_parser::pem::Pem::iter_from_buffer(&pem).flatten() {
            let Ok(cert) = item.parse_x509() else {
                continue;
            };
            let not_after_ms = cert.validity().not_after.timestamp().saturating_mul(1000);
            let left_ms = not_after_ms - now_ms;
            let days = left_ms.div_euclid(86_400_000);
            if left_ms > (warn_days as i64).saturating_mul(86_400_000) {
                continue;
            }
            let severity = if days < 7 {
                Severity::High
            } else {
                Severity::Medium
            };
            let when = crate::audit::format_time_utc(not_after_ms);
            let detail = if left_ms <= 0 {
                format!(
                    "{what} {} ({}) EXPIRED at {when}",
                    path.display(),
                    cert.subject()
                )
            } else {
                format!(
                    "{what} {} ({}) expires at {when}, in {days} days",
                    path.display(),
                    cert.subject()
                )
            };
            out.push(
                Occurrence::new(
                    Kind::CertExpiry,
                    Source::peer(&path.display().to_string()),
                    detail,
                    now_ms,
                )
                .severity(severity),
            );
        }
    }
    out
}

/// One audit round: verify the whole trail, compare it with the last published head, and
/// return the new head to publish (with what went wrong, as occurrences).
fn audit_round(
    db: &std::path::Path,
    station: &str,
    published: Option<&crate::audit::AuditHead>,
    now_ms: i64,
) -> Result<(crate::audit::AuditHead, Vec<Occurrence>), String> {
    use crate::audit::{Audit, HeadCheck};
    let conn = store::open_read_only(db).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let r = Audit::verify(&conn).map_err(|e| e.to_string())?;
    if let Some(b) = &r.first_break {
        found.push(Occurrence::new(
            Kind::AuditVerifyFailed,
            Source::default(),
            format!("audit trail BROKEN at {b}"),
            now_ms,
        ));
    }
    for t in &r.trigger_findings {
        found.push(Occurrence::new(
            Kind::AuditVerifyFailed,
            Source::default(),
            format!("audit trail protection: {t}"),
            now_ms,
        ));
    }
    if let Some(p) = published {
        let c = Audit::check_head(&conn, p).map_err(|e| e.to_string())?;
        if c != HeadCheck::Extends {
            found.push(Occurrence::new(
                Kind::AuditTruncated,
                Source::default(),
                format!("published head {}: {c}", p.short()),
                now_ms,
            ));
        }
    }
    let head = Audit::head(&conn, station, now_ms).map_err(|e| e.to_string())?;
    Ok((head, found))
}

/// Every second: write new and changed security events, forward them to syslog, keep the
/// SECURITY technical alarms in step with the open high-severity events; every
/// `head_every`: verify the audit trail and publish its head; daily: certificate expiry.
/// How often the device registry is read again from the database, so that a device IT
/// registered or removed with `vigilctl device` while the station runs takes effect without a
/// restart (the window's own changes apply at once, `EngineHandle::set_registry`).
const REGISTRY_RELOAD: Duration = Duration::from_secs(5);

/// Read the registry again; replace the one in force if the database says otherwise.
async fn reload_registry(shared: &Arc<Shared>, conn: &Arc<Mutex<rusqlite::Connection>>) {
    let c = Arc::clone(conn);
    match tokio::task::spawn_blocking(move || Registry::load(&lock(&c))).await {
        Ok(Ok(stored)) => {
            let mut reg = lock(&shared.registry);
            if *reg != stored {
                tracing::info!(
                    devices = stored.len(),
                    "device registry changed outside this window: reloaded"
                );
                *reg = stored;
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "device registry not read again"),
        Err(e) => tracing::warn!(error = %e, "device registry reload failed"),
    }
}

async fn security_loop(
    shared: Arc<Shared>,
    opts: SecurityOptions,
    certs: Vec<(String, PathBuf)>,
    mut stop: watch::Receiver<bool>,
) {
    let db = shared.db_path.clone();
    let conn = match tokio::task::spawn_blocking(move || store::open(&db)).await {
        Ok(Ok(c)) => Arc::new(Mutex::new(c)),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "security events cannot be stored");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "security loop start failed");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first audit round soon after start (the retained head has arrived by then).
    let mut next_head = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut next_certs = tokio::time::Instant::now();
    let mut next_registry = tokio::time::Instant::now() + REGISTRY_RELOAD;
    let mut alarmed: std::collections::BTreeSet<Option<BedId>> = Default::default();
    let mut forwarded: std::collections::HashMap<i64, i64> = Default::default();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = store::now_ms();
        if tokio::time::Instant::now() >= next_certs {
            next_certs += Duration::from_secs(24 * 3600);
            for o in check_certificates(&certs, opts.cert_warn_days, now) {
                shared.security.report(o);
            }
        }
        if tokio::time::Instant::now() >= next_head {
            next_head = tokio::time::Instant::now() + opts.head_every.max(Duration::from_secs(1));
            publish_head(&shared).await;
        }
        if tokio::time::Instant::now() >= next_registry {
            next_registry = tokio::time::Instant::now() + REGISTRY_RELOAD;
            reload_registry(&shared, &conn).await;
        }
        // Other stations' actions applied here, into the audit trail.
        let pending = std::mem::take(&mut *lock(&shared.remote_audit));
        if !pending.is_empty() {
            let c = Arc::clone(&conn);
            let failed = tokio::task::spawn_blocking(move || {
                let conn = lock(&c);
                let mut failed = Vec::new();
                for a in pending {
                    if let Err(e) = crate::audit::Audit::append(
                        &conn, &a.actor, a.action, &a.target, &a.detail, a.t_ms,
                    ) {
                        tracing::error!(error = %e, "remote station action not audited yet; retrying");
                        failed.push(a);
                    }
                }
                failed
            })
            .await
            .unwrap_or_default();
            if !failed.is_empty() {
                let mut q = lock(&shared.remote_audit);
                let later = std::mem::take(&mut *q);
                *q = failed;
                q.extend(later);
            }
        }
        // Write what changed.
        let (m, c) = (Arc::clone(&shared.security), Arc::clone(&conn));
        let changed = match tokio::task::spawn_blocking(move || m.flush(&lock(&c), now)).await {
            Ok(Ok(ch)) => ch,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "writing security events failed; retrying");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(error = %e, "security flush task failed");
                Vec::new()
            }
        };
        for ch in changed {
            let e = &ch.event;
            if ch.new {
                tracing::warn!(
                    target: "vigil::security",
                    id = e.id, kind = e.kind.as_str(), severity = e.severity.as_str(),
                    source = %e.source.describe(), count = e.count,
                    "SECURITY EVENT {}: {}", e.headline(), e.detail
                );
            }
            let Some(sl) = &shared.syslog else {
                continue;
            };
            // New events at once; a growing one at most once a minute.
            let last = forwarded.get(&e.id).copied();
            if last.is_none_or(|t| now - t >= 60_000) {
                forwarded.insert(e.id, now);
                sl.send(event_message(e, if ch.new { "new" } else { "update" }, now));
            }
        }
        forwarded.retain(|_, t| now - *t < 3_600_000);
        // Technical alarms.
        let conds = shared.security.alarm_conditions(now);
        let events = {
            let mut st = lock(&shared.state);
            let mut events = Vec::new();
            let mut now_alarmed = std::collections::BTreeSet::new();
            for (bed, text) in &conds {
                events.extend(st.alarms.security(bed.as_ref(), true, text, now));
                now_alarmed.insert(bed.clone());
            }
            for bed in alarmed.difference(&now_alarmed) {
                events.extend(st.alarms.security(bed.as_ref(), false, "", now));
            }
            alarmed = now_alarmed;
            events
        };
        emit_alarm_events(&shared, events, now).await;
    }
}

/// A security event as a syslog message (facility security/authorization).
fn event_message(e: &crate::security::SecurityEvent, state: &str, now: i64) -> SyslogMessage {
    SyslogMessage {
        facility: crate::syslog::FACILITY_SECURITY,
        severity: e.severity.syslog(),
        msgid: "SECEVENT",
        t_ms: now,
        params: vec![
            ("id", e.id.to_string()),
            ("state", state.to_string()),
            ("kind", e.kind.as_str().to_string()),
            ("severity", e.severity.as_str().to_string()),
            ("count", e.count.to_string()),
            ("first", crate::audit::format_time_utc(e.first_ms)),
            ("last", crate::audit::format_time_utc(e.last_ms)),
            ("bed", e.source.bed.clone()),
            ("device", e.source.device.clone()),
            ("peer", e.source.peer.clone()),
            ("user", e.source.user.clone()),
        ],
        text: format!("{} - {}", e.headline(), e.detail),
    }
}

/// Verify the trail, compare it with the last published head, publish the new head (retained
/// on the broker, and to syslog).
async fn publish_head(shared: &Arc<Shared>) {
    let db = shared.db_path.clone();
    let station = shared.alarm_io.station.clone();
    let published = lock(&shared.published_head).clone();
    let now = store::now_ms();
    let round =
        tokio::task::spawn_blocking(move || audit_round(&db, &station, published.as_ref(), now))
            .await;
    let (head, found) = match round {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "audit round failed");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "audit round task failed");
            return;
        }
    };
    for o in found {
        tracing::error!(target: "vigil::security", "{}", o.detail);
        shared.security.report(o);
    }
    match serde_json::to_vec(&head) {
        Ok(payload) => {
            if let Err(e) = shared.alarm_io.client.try_publish(
                audit_head_topic(&head.station),
                QoS::AtLeastOnce,
                true,
                payload,
            ) {
                tracing::warn!(error = %e, "cannot publish the audit head");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode the audit head"),
    }
    if let Some(sl) = &shared.syslog {
        sl.send(SyslogMessage {
            facility: crate::syslog::FACILITY_AUDIT,
            severity: 6,
            msgid: "AUDITHEAD",
            t_ms: now,
            params: vec![
                ("station", head.station.clone()),
                ("id", head.id.to_string()),
                ("hash", head.hash.clone()),
                ("mac", head.mac.clone().unwrap_or_default()),
            ],
            text: format!("audit trail head {} {}", head.id, head.hash),
        });
    }
    let mut p = lock(&shared.published_head);
    if p.as_ref().is_none_or(|old| old.id <= head.id) {
        *p = Some(head);
    }
}
