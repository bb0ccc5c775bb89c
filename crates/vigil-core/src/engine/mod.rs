//! The engine: subscribes to ward telemetry over MQTT, decodes it, stores it, evaluates alarms,
//! and publishes live updates to whoever watches (the desktop window, `vigilctl record`).
//!
//! Data flow: MQTT event loop → [`crate::decode::decode`] → alarm evaluator (pure) → store writer
//! (one thread, batched transactions) and the live broadcast. Bad payloads are counted per
//! reason, logged and stored as rejects; they never stop the loop.
//!
//! This file holds the engine's public face (start and shutdown, the handle, the snapshot and
//! live events) and its shared state; each concern has its own module: `link` (the broker
//! connection, lanes and acknowledgements), `pipeline` (one message through the engine),
//! `admission` (registry and ingest policy), `storage` (the writer's queue, the outbox,
//! retention), `alarms` (the tick, gaps, alarm events), `sync` (what stations share),
//! `security` (the security loop, audit heads, certificates), `mllp` (HL7 v2 intake).

mod admission;
mod alarms;
mod clock;
mod link;
mod mllp;
mod pipeline;
mod remote;
mod reports;
mod security;
mod storage;
#[cfg(test)]
mod store_watch;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use self::clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use self::link::{AclCheck, LinkState};
pub use self::security::check_certificates;
pub use self::sync::{audit_head_topic, notice_topic, StationNotice};

use self::alarms::{alarm_tick, emit_alarm_events};
use self::link::{ack_after_commit, ack_in_order, mqtt_options, run_loop, ACL_PROBE_DEVICE};
use self::security::{cert_files, security_loop};
use self::storage::{
    forward_outbox, outbox_op, outbox_send, prune_loop, report_last_stored, wait_committed, Outbox,
    StoreSink,
};
use self::sync::publish_bed_state;
use crate::alarms::news2::{News2Manual, News2Score};
use crate::alarms::sync::Trust;
use crate::alarms::{
    ActiveAlarm, AlarmConfig, AlarmError, AlarmEvent, AlarmMachine, Limit, PauseInfo, PauseScope,
    WardProfile,
};
use crate::auth::{Authorized, Permission};
use crate::codes::Vital;
use crate::config::{BrokerSettings, ConfigError};
use crate::ingest::{DeviceBudgets, GapTracker, IngestPolicy, ReadingGate, Registry};
use crate::notify::Notifier;
use crate::security::{Kind, Occurrence, SecurityMonitor, Severity, Source, Thresholds};
use crate::settings::StationSettings;
use crate::store::{self, Op, StoreError, StoreWriter, WriterStats};
use crate::syslog::{Syslog, SyslogConfig};
use crate::telemetry::{self, BedId, DeviceStatus, Reading, Vitals, WaveChunk};

/// Live events buffered per watcher before it is told it lagged (and must re-read the snapshot).
const LIVE_CAPACITY: usize = 8192;

/// Alarms left unacknowledged this recently before a restart are shown again
/// (`AlarmMachine::restore_unfinished`); older ones stay history.
pub const UNFINISHED_WINDOW_MS: i64 = 24 * 3600 * 1000;

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
    /// The remote patients cannot be read.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
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
    /// The remote patients' watch: missed readings, silent devices ([`crate::remote::watch`]).
    pub remote: crate::remote::watch::WatchSettings,
    /// How often the remote patients' care plans are evaluated (10 s: an alert rises within
    /// seconds of a window's end; 10 000 patients cost ~0.6 s a tick, `vigilctl bench remote`).
    pub remote_tick: Duration,
    /// Save alarm strips automatically ([`crate::report::auto`]) with these settings; `None`
    /// saves none (the faces pass the station's `[reports]`, on by default there).
    pub strips: Option<crate::report::ReportSettings>,
}

impl Default for AlarmOptions {
    fn default() -> Self {
        AlarmOptions {
            config: AlarmConfig::default(),
            notifications: false,
            sync: true,
            tick: Duration::from_millis(250),
            remote: crate::remote::watch::WatchSettings::default(),
            remote_tick: Duration::from_secs(10),
            strips: None,
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
    /// Remote patients' alerts raised, escalated or resolved (missed readings, silent devices),
    /// and new findings to review.
    Remote(Arc<RemoteUpdate>),
}

/// What one pass of the remote patients' watch changed ([`LiveEvent::Remote`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteUpdate {
    pub alerts: Vec<crate::remote::watch::AlertChange>,
    pub findings: Vec<crate::remote::review::FindingRow>,
    /// The set of remote beds changed (an enrolment, a discharge): `EngineHandle::remote_beds`.
    pub beds_changed: bool,
}

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
    /// Dose events from dispensers (taken, late, missed), redeliveries included.
    pub doses: AtomicU64,
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
    /// Where the engine reads the time (the system clock unless started with another).
    clock: Arc<dyn Clock>,
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
    /// The writer's counters (is it failing, has it stopped, is it making progress?).
    store_stats: Arc<WriterStats>,
    /// The writer's queue, watched for work waiting while the writer makes no progress.
    store_queue: tokio::sync::mpsc::Sender<crate::store::Op>,
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
    /// The beds of the current remote stays (patients, not places): read at start and by
    /// every pass of the remote watch.
    remote_beds: Mutex<Arc<BTreeSet<BedId>>>,
    /// The topic filters the station subscribes to on every connection: its ward (or every
    /// ward), its station topics, and the wards of its remote patients outside its own.
    filters: Mutex<Vec<String>>,
    /// The one ward this station watches, if it is limited to one (`EngineConfig::ward`).
    ward: Option<String>,
    /// Remote patients' receipts of notices, heard by the link, for the remote loop to record.
    receipts: Mutex<Vec<(BedId, Vec<u8>)>>,
    /// Wakes the remote loop before its next tick (a message to send, a receipt to record).
    remote_wake: tokio::sync::Notify,
}

/// The filters a station limited to `ward` needs besides, for its remote patients' wards.
fn remote_ward_filters(ward: Option<&str>, remote: &BTreeSet<BedId>) -> Vec<String> {
    let Some(own) = ward else {
        return Vec::new(); // every ward already
    };
    let wards: BTreeSet<&str> = remote
        .iter()
        .map(|b| b.ward.as_str())
        .filter(|w| *w != own)
        .collect();
    wards
        .into_iter()
        .map(|w| telemetry::subscription_filter(Some(w)))
        .collect()
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

impl AlarmIo {
    /// Publish `message` as JSON on `topic` (QoS 1, `retain` or not) without waiting; what
    /// fails is logged as `failed` says: (cannot encode, cannot publish).
    fn publish_json(
        &self,
        topic: String,
        retain: bool,
        message: &impl serde::Serialize,
        failed: (&str, &str),
    ) {
        let (encode, publish) = failed;
        match serde_json::to_vec(message) {
            Ok(payload) => {
                if let Err(e) = self
                    .client
                    .try_publish(topic, QoS::AtLeastOnce, retain, payload)
                {
                    tracing::warn!(error = %e, "{publish}");
                }
            }
            Err(e) => tracing::error!(error = %e, "{encode}"),
        }
    }
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
        Engine::start_clocked(cfg, alarm, security, Arc::new(SystemClock))
    }

    /// A station on its database as IT last set it up: [`Engine::start_secured`] with the ward
    /// profile's default limits (in place of `cfg.limits`), the latching codes and high-alarm
    /// latching of the saved [`StationSettings`], and the beds left in standby (no patient)
    /// kept so. The one start of a station, the window's and `vigilctl record`'s. Returns the
    /// settings read too (the window takes its alarm volume and acknowledgement rule from them).
    pub fn start_station(
        mut cfg: EngineConfig,
        mut alarm: AlarmOptions,
        security: SecurityOptions,
    ) -> Result<(Engine, StationSettings), EngineError> {
        let settings = StationSettings::load(&store::open(&cfg.db_path)?)?;
        alarm.config.profile = settings.profile;
        alarm.config.latching = settings.latching.clone();
        alarm.config.latch_high = settings.latch_high;
        cfg.limits = settings.profile.limits();
        let engine = Engine::start_secured(cfg, alarm, security)?;
        engine.restore_standby(
            settings
                .standby
                .iter()
                .filter_map(|k| match BedId::parse(k) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!(error = %e, "saved standby of an unreadable bed ignored");
                        None
                    }
                }),
        );
        Ok((engine, settings))
    }

    /// [`Engine::start_secured`] reading the time from `clock` (tests, simulations) instead of
    /// the system clock. Timers (the alarm tick, retries, timeouts) still run in real time.
    pub fn start_clocked(
        cfg: EngineConfig,
        alarm: AlarmOptions,
        security: SecurityOptions,
        clock: Arc<dyn Clock>,
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
        let (registry, saved_limits, last_stored, enrolled, unfinished, remote_beds) = {
            let conn = store::open(&cfg.db_path)?;
            let last = report_last_stored(&conn, clock.now_ms());
            (
                Registry::load(&conn)?,
                crate::limits_db::load(&conn)?,
                last,
                crate::stations::load(&conn)?,
                crate::query::unfinished_alarms(&conn, clock.now_ms() - UNFINISHED_WINDOW_MS)?,
                crate::remote::current_beds(&conn)?,
            )
        };
        let mut budgets = DeviceBudgets::new(cfg.policy.budget);
        if let Some(t) = last_stored {
            // The broker redelivers what devices sent while the station was down.
            budgets.catch_up(clock.now_ms() - t, clock.now_ms());
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
        let now = clock.now_ms();
        // Remote patients' beds: their home devices are never expected continuously (no
        // device is tracked yet: nothing resolves here).
        for bed in &remote_beds {
            alarms.set_remote(bed, true, now);
        }
        // Alarms nobody acknowledged before the station stopped are shown again (latched, or
        // as "not yet reviewed"), never wiped by a restart.
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
        let sink = StoreSink::new(&writer);
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
            since_ms: clock.now_ms(),
            warnings: broker_warnings.clone(),
        });
        let shared = Arc::new(Shared {
            clock: Arc::clone(&clock),
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
            store_queue: writer.sender(),
            store_dropped: sink.dropped(),
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
            filters: Mutex::new(Vec::new()),
            ward: cfg.ward.clone(),
            receipts: Mutex::new(Vec::new()),
            remote_wake: tokio::sync::Notify::new(),
            remote_beds: Mutex::new(Arc::new(remote_beds)),
            alarm_io: AlarmIo {
                client: client.clone(),
                station: cfg.client_id.clone(),
                sync: alarm.sync,
                notifier: alarm
                    .notifications
                    .then(|| Notifier::spawn(Duration::from_secs(2))),
                key,
                sync_seq: AtomicU64::new(u64::try_from(clock.now_ms()).unwrap_or(0)),
            },
        });
        for w in &broker_warnings {
            tracing::warn!(target: "vigil::security", "INSECURE BROKER: {w}");
            shared.security.report(
                Occurrence::new(
                    Kind::BrokerAuth,
                    Source::peer(&cfg.broker.url.to_string()),
                    format!("broker accepted only because insecure = true: {w}"),
                    shared.clock.now_ms(),
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
        // Remote patients enrolled here whose ward is not this station's: their readings too.
        filters.extend(remote_ward_filters(
            cfg.ward.as_deref(),
            &lock(&shared.remote_beds),
        ));
        *lock(&shared.filters) = filters.clone();
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
            mllp::start(m, &shared, &sink, &stop)?;
        }
        tokio::spawn(alarm_tick(
            Arc::clone(&shared),
            alarm.tick.max(Duration::from_millis(10)),
            stop.subscribe(),
        ));
        tokio::spawn(remote::remote_loop(
            Arc::clone(&shared),
            alarm.remote,
            alarm.remote_tick.max(Duration::from_millis(10)),
            stop.subscribe(),
        ));
        if let Some(settings) = alarm.strips.clone() {
            tokio::spawn(reports::strip_loop(
                Arc::clone(&shared),
                settings,
                stop.subscribe(),
            ));
        }
        tokio::spawn(security_loop(
            Arc::clone(&shared),
            security,
            cert_files(&cfg.broker),
            stop.subscribe(),
        ));
        tokio::spawn(prune_loop(
            Arc::clone(&clock),
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
    /// Live events from now on. On `RecvError::Lagged`, re-read [`Self::snapshot`].
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.shared.live.subscribe()
    }

    /// The beds of the current remote stays (home and mobile-clinic patients): the window lists
    /// them on the remote worklist, not as tiles of the ward.
    pub fn remote_beds(&self) -> Arc<BTreeSet<BedId>> {
        Arc::clone(&lock(&self.shared.remote_beds))
    }

    /// A message to a remote patient was queued (`remote::engage::message`): send it now,
    /// not at the next pass of the remote watch.
    pub fn remote_wake(&self) {
        self.shared.remote_wake.notify_one();
    }

    /// The current state of the ward.
    pub fn snapshot(&self) -> WardSnapshot {
        let st = lock(&self.shared.state);
        let mut s = st.snapshot.clone();
        s.devices = st.devices.values().cloned().collect();
        s.link = Some(self.shared.link.borrow().clone());
        s.pauses = st.alarms.pauses(self.shared.clock.now_ms());
        s
    }

    /// Acknowledge an alarm shown now (silent until it re-triggers; a latched alarm whose
    /// condition cleared is resolved). Persisted, broadcast and shared with the ward.
    pub async fn acknowledge(&self, alarm_id: &str, auth: &Authorized) -> Result<(), EngineError> {
        let user = auth.require(Permission::AcknowledgeAlarm)?;
        let now = self.shared.clock.now_ms();
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
        self.pause_change(bed, auth, |m, scope, user, now| {
            m.audio_pause(scope, user, now)
        })
        .await
    }

    /// End an audio pause early: signals come back for conditions still present.
    pub async fn end_audio_pause(
        &self,
        bed: Option<BedId>,
        auth: &Authorized,
    ) -> Result<(), EngineError> {
        self.pause_change(bed, auth, |m, scope, user, now| {
            Ok(m.end_audio_pause(&scope, user, now))
        })
        .await
    }

    /// An audio-pause change of one bed (`Some`) or the whole station (`None`) by `auth`, then
    /// the state of the beds it touched published.
    async fn pause_change(
        &self,
        bed: Option<BedId>,
        auth: &Authorized,
        change: impl FnOnce(
            &mut AlarmMachine,
            PauseScope,
            &str,
            i64,
        ) -> Result<Vec<AlarmEvent>, AlarmError>,
    ) -> Result<(), EngineError> {
        let scope = bed.map_or(PauseScope::All, PauseScope::Bed);
        let change = |m: &mut AlarmMachine, user: &str, now| change(m, scope, user, now);
        let (beds, now) = self
            .user_change(auth, Permission::AudioPause, change)
            .await?;
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
        let now = self.shared.clock.now_ms();
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
        self.user_change(auth, Permission::ChangePatientLimits, change)
            .await
            .map(drop)
    }

    /// A user's change to the alarm machine (needs `permission`), made at the clock's now:
    /// its events published, logged and stored. Returns the beds of the events (not the
    /// station's own `*` ward) and the time of the change.
    async fn user_change(
        &self,
        auth: &Authorized,
        permission: Permission,
        change: impl FnOnce(&mut AlarmMachine, &str, i64) -> Result<Vec<AlarmEvent>, AlarmError>,
    ) -> Result<(Vec<BedId>, i64), EngineError> {
        let user = auth.require(permission)?;
        let now = self.shared.clock.now_ms();
        let events = change(&mut lock(&self.shared.state).alarms, user, now)?;
        let beds: Vec<BedId> = events
            .iter()
            .map(|e| e.bed.clone())
            .filter(|b| b.ward != "*")
            .collect();
        emit_alarm_events(&self.shared, events, now).await;
        Ok((beds, now))
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
        let now = self.shared.clock.now_ms();
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
        lock(&self.shared.state)
            .alarms
            .pauses(self.shared.clock.now_ms())
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
            t_ms: self.shared.clock.now_ms(),
        };
        io.publish_json(
            notice_topic(&io.station),
            false,
            &notice,
            (
                "cannot encode a station notice",
                "cannot tell the ward's stations about break-glass",
            ),
        );
    }
}

impl std::ops::Deref for Engine {
    type Target = EngineHandle;

    fn deref(&self) -> &EngineHandle {
        &self.handle
    }
}
