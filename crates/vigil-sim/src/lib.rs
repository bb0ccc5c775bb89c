//! What stands in for the world outside the station when there is none: the simulated ward (this
//! module), the embedded MQTT broker ([`broker`]) and a device's MQTT client ([`device`], used by
//! `vigilctl replay` to publish recordings as a device would), and the simulated remote cohort:
//! its script ([`cohort`], pure) and its publisher ([`remote`]). The engine (`vigil-core`) never
//! depends on this crate: only the faces start a simulator or a broker.
//!
//! A simulated ward: one simulated bedside monitor per bed, each its own MQTT client publishing
//! contract v1 telemetry (with a retained status and an `offline` last will).
//!
//! Per bed: two ECG leads (II, V5) at 500 Hz with a P-QRS-T beat at the bed's heart rate, pleth
//! at 125 Hz, respiration at 62.5 Hz, numerics every second (HR, PR, SpO2, RR, temperature) and
//! NIBP every few minutes, with slow drift and noise. Beds listed as "breaching" periodically
//! deteriorate (desaturation and tachycardia) past the default alarm limits.
//!
//! Everything is generated from sample indices, not from timer ticks, so the number of samples
//! published is exact for the elapsed time and the sample rate.

pub mod broker;
pub mod cohort;
pub mod device;
pub mod remote;

use std::collections::{BTreeMap, VecDeque};
use std::f64::consts::TAU;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, Request,
};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;

use vigil_contract::codes::{self, Vital};
use vigil_contract::telemetry::{
    utc_from_ms, BedId, DeviceState, ObservationPayload, StatusPayload, Topic, VitalsPayload,
    WavePayload, CONTRACT_VERSION,
};
use vigil_core::config::{BrokerSettings, ConfigError};

/// How often each simulated monitor publishes a waveform chunk per channel.
pub const CHUNK_PERIOD: Duration = Duration::from_millis(250);
/// Breach cycle of a deteriorating bed: it deteriorates from `BREACH_START` to `BREACH_END`
/// seconds into every `BREACH_CYCLE` seconds.
const BREACH_CYCLE: f64 = 60.0;
const BREACH_START: f64 = 2.0;
const BREACH_END: f64 = 25.0;
/// Seconds between NIBP cuff measurements (the first comes 3 s after start).
const NIBP_PERIOD: f64 = 180.0;
/// Publishes each simulated monitor can queue while the broker is unreachable (about four
/// minutes of a bed's traffic); beyond that the monitor waits, and its next chunks are longer.
const QUEUE_CAPACITY: usize = 4096;
/// Reconnect delays of a simulated monitor: doubled after each failure, reset on ConnAck.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum SimError {
    #[error("simulator needs at least one bed")]
    NoBeds,
    #[error("invalid ward name {0:?}")]
    Ward(String),
    /// Broker settings or TLS files unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The station's database, for the simulated cohort's enrolment.
    #[error("simulated cohort: {0}")]
    Auth(#[from] vigil_core::auth::AuthError),
    /// The simulated cohort's enrolment was refused or failed.
    #[error(transparent)]
    Cohort(#[from] vigil_core::remote::cohort::CohortError),
    #[error("simulator task failed: {0}")]
    Task(String),
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Broker URL, TLS files, credentials (every simulated monitor uses the same).
    pub broker: BrokerSettings,
    pub ward: String,
    pub beds: usize,
    /// Seed for the noise and per-bed baselines: the same seed gives the same ward.
    pub seed: u64,
    /// 0-based indices of beds that periodically breach alarm limits.
    pub breaching: Vec<usize>,
}

impl SimConfig {
    /// A ward of `beds` beds; the third bed (or the last one, in smaller wards) deteriorates.
    pub fn new(broker: impl Into<BrokerSettings>, ward: impl Into<String>, beds: usize) -> Self {
        SimConfig {
            broker: broker.into(),
            ward: ward.into(),
            beds,
            seed: 1,
            breaching: vec![2.min(beds.saturating_sub(1))],
        }
    }

    fn bed(&self, i: usize) -> BedId {
        monitor(&self.ward, i).1
    }
}

/// The simulated monitor of the `i`-th (0-based) bed of `ward`: its device id and its bed
/// (`mon-{ward}-01` feeds `{ward}/01`). A station that refuses unregistered devices needs these
/// in its registry (`vigilctl device add-sim`).
pub fn monitor(ward: &str, i: usize) -> (String, BedId) {
    (
        format!("mon-{ward}-{:02}", i + 1),
        BedId::new(ward, format!("{:02}", i + 1)),
    )
}

/// What was published, for checking the receiving side.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct SimReport {
    /// Bed key → channel → samples published.
    pub samples: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bed key → channel → chunks published.
    pub chunks: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bed key → vital name → readings published.
    pub readings: BTreeMap<String, BTreeMap<String, u64>>,
    /// MQTT publishes sent and acknowledged by the broker (QoS 1).
    pub published: u64,
    pub acknowledged: u64,
}

/// Run the simulated ward until `stop` becomes true. On stop, each monitor publishes its
/// `offline` status and waits (up to 10 s) for the broker to acknowledge everything it sent.
pub async fn run(cfg: SimConfig, stop: watch::Receiver<bool>) -> Result<SimReport, SimError> {
    if cfg.beds == 0 {
        return Err(SimError::NoBeds);
    }
    if !vigil_contract::telemetry::valid_segment(&cfg.ward) {
        return Err(SimError::Ward(cfg.ward.clone()));
    }
    if cfg.broker.password_in_clear() {
        tracing::warn!(
            broker = %cfg.broker.url,
            "the broker password is sent without TLS; use mqtts://"
        );
    }
    // Every monitor's client options first (they read the TLS files): a bad file stops the
    // simulator before any monitor starts.
    let mut options = Vec::with_capacity(cfg.beds);
    for i in 0..cfg.beds {
        let (device, _) = monitor(&cfg.ward, i);
        options.push((cfg.broker.mqtt_options(&device)?, device));
    }
    let start_ms = chrono::Utc::now().timestamp_millis();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (opts, device)) in options.into_iter().enumerate() {
        let model = BedModel::new(cfg.seed, i, cfg.breaching.contains(&i));
        let monitor = Monitor {
            bed: cfg.bed(i),
            device,
            opts,
            model,
            start,
            start_ms,
            published: 0,
        };
        tasks.push(tokio::spawn(monitor.run(stop.clone())));
    }
    let mut report = SimReport::default();
    for t in tasks {
        match t.await {
            Ok(r) => merge(&mut report, r),
            Err(e) => tracing::error!(error = %e, "simulated monitor task failed"),
        }
    }
    Ok(report)
}

fn merge(into: &mut SimReport, r: SimReport) {
    into.samples.extend(r.samples);
    into.chunks.extend(r.chunks);
    into.readings.extend(r.readings);
    into.published += r.published;
    into.acknowledged += r.acknowledged;
}

/// One simulated bedside monitor.
struct Monitor {
    bed: BedId,
    device: String,
    /// Client options (client id = device id, persistent session, TLS, credentials).
    opts: MqttOptions,
    model: BedModel,
    start: Instant,
    start_ms: i64,
    /// Publishes queued so far.
    published: u64,
}

/// A channel's publishing state.
struct ChannelState {
    info: &'static codes::ChannelInfo,
    rate: f64,
    factor: f64,
    /// Samples published so far (index of the next sample).
    next: u64,
    seq: u64,
}

impl Monitor {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> SimReport {
        let mut opts = self.opts.clone();
        // Persistent session, like a real monitor: the broker keeps in-flight QoS 1 state
        // across a reconnect (see `network`).
        opts.set_clean_session(false);
        let offline = StatusPayload {
            v: CONTRACT_VERSION,
            device: self.device.clone(),
            state: DeviceState::Offline,
            t: None,
            conditions: vec![],
        };
        let status_topic = Topic::status(&self.bed, &self.device);
        opts.set_last_will(LastWill::new(
            status_topic.clone(),
            json(&offline),
            QoS::AtLeastOnce,
            true,
        ));
        let (client, eventloop) = AsyncClient::new(opts, QUEUE_CAPACITY);
        let acked = Arc::new(AtomicU64::new(0));
        let announced = Arc::new(AtomicU64::new(0));
        let mut net = tokio::spawn(network(
            eventloop,
            NetLink {
                device: self.device.clone(),
                status_topic: status_topic.clone(),
                acked: Arc::clone(&acked),
                announced: Arc::clone(&announced),
                stop: stop.clone(),
            },
        ));

        let mut report = SimReport::default();
        let key = self.bed.key();
        let online = StatusPayload {
            state: DeviceState::Online,
            t: Some(utc_from_ms(self.start_ms)),
            ..offline.clone()
        };
        self.publish(&client, &status_topic, json(&online), true)
            .await;

        let mk = |name: &str, rate: f64, factor: f64| ChannelState {
            info: codes::channel(name).unwrap_or(&codes::CHANNELS[0]),
            rate,
            factor,
            next: 0,
            seq: 0,
        };
        let mut channels = [
            mk("ECG_II", 500.0, 0.005),
            mk("ECG_V5", 500.0, 0.005),
            mk("PLETH", 125.0, 0.001),
            mk("RESP", 62.5, 0.001),
        ];
        let mut vitals_seq = 0u64;
        let mut next_vitals_s = 0u64;
        let mut next_nibp_s = 3.0;
        let mut tick = tokio::time::interval(CHUNK_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => {},
                _ = tick.tick() => {},
            }
            if *stop.borrow() {
                break;
            }
            let elapsed = self.start.elapsed().as_secs_f64();
            self.model.advance_to(elapsed);
            for ch in channels.iter_mut() {
                let due = (elapsed * ch.rate).floor() as u64;
                if due <= ch.next {
                    continue;
                }
                let data: Vec<i32> = (ch.next..due)
                    .map(|i| {
                        let t = i as f64 / ch.rate;
                        let v = self.model.sample(ch.info.name, t, ch.rate);
                        (v / ch.factor).round() as i32
                    })
                    .collect();
                let n = data.len() as u64;
                let payload = WavePayload {
                    v: CONTRACT_VERSION,
                    device: self.device.clone(),
                    channel: ch.info.name.to_string(),
                    unit: ch.info.unit.to_string(),
                    t0: utc_from_ms(self.start_ms + (ch.next as f64 * 1000.0 / ch.rate) as i64),
                    rate: ch.rate,
                    seq: ch.seq,
                    origin: 0.0,
                    factor: ch.factor,
                    data,
                };
                let topic = Topic::wave(&self.bed, &self.device, ch.info.name);
                self.publish(&client, &topic, json(&payload), false).await;
                *report
                    .samples
                    .entry(key.clone())
                    .or_default()
                    .entry(ch.info.name.into())
                    .or_default() += n;
                *report
                    .chunks
                    .entry(key.clone())
                    .or_default()
                    .entry(ch.info.name.into())
                    .or_default() += 1;
                ch.next = due;
                ch.seq += 1;
            }
            // Numerics once a second, stamped on the whole second since start.
            while (next_vitals_s as f64) <= elapsed {
                let t_s = next_vitals_s as f64;
                let mut obs = self.model.numerics();
                if t_s >= next_nibp_s {
                    obs.extend(self.model.nibp());
                    next_nibp_s += NIBP_PERIOD;
                }
                for (vital, _) in &obs {
                    *report
                        .readings
                        .entry(key.clone())
                        .or_default()
                        .entry(vital.name().into())
                        .or_default() += 1;
                }
                let payload = VitalsPayload {
                    v: CONTRACT_VERSION,
                    device: self.device.clone(),
                    t: utc_from_ms(self.start_ms + next_vitals_s as i64 * 1000),
                    seq: vitals_seq,
                    obs: obs
                        .into_iter()
                        .map(|(vital, value)| ObservationPayload {
                            mdc: vital.mdc(),
                            value: Some(value),
                            unit: vital.unit().into(),
                            t: None,
                            status: Default::default(),
                        })
                        .collect(),
                };
                let topic = Topic::vitals(&self.bed, &self.device);
                self.publish(&client, &topic, json(&payload), false).await;
                vitals_seq += 1;
                next_vitals_s += 1;
            }
        }

        // Orderly goodbye: retained offline status, wait for every acknowledgement, disconnect.
        let bye = StatusPayload {
            t: Some(chrono::Utc::now()),
            ..offline
        };
        self.publish(&client, &status_topic, json(&bye), true).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.load(Ordering::Relaxed) < self.published + announced.load(Ordering::Relaxed) {
            if Instant::now() > deadline {
                tracing::warn!(device = %self.device, "not every publish was acknowledged");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Never wait on a full queue here (broker still unreachable): the network task is
        // stopped either way.
        if client.try_disconnect().is_err()
            || tokio::time::timeout(Duration::from_secs(2), &mut net)
                .await
                .is_err()
        {
            tracing::warn!(device = %self.device, "no orderly disconnect from the broker");
            net.abort();
        }
        report.published = self.published + announced.load(Ordering::Relaxed);
        report.acknowledged = acked.load(Ordering::Relaxed);
        report
    }

    /// Queue a QoS 1 publish; every one queued is later acknowledged by exactly one PUBACK.
    async fn publish(&mut self, client: &AsyncClient, topic: &str, payload: Vec<u8>, retain: bool) {
        if let Err(e) = client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
        {
            tracing::error!(device = %self.device, error = %e, "simulated monitor cannot queue a publish");
        } else {
            self.published += 1;
        }
    }
}

/// A simulated monitor's MQTT network task: drives the event loop, counts PUBACKs, reconnects
/// with exponential backoff until the client disconnects.
///
/// No publish is dropped across a reconnect. rumqttc keeps unacknowledged QoS 1 publishes (and
/// requests still queued) when a connection breaks and sends them again first after the next
/// ConnAck, but it discards them when the broker answers without a session (restarted without
/// persistence, session expired). So they are taken out of the event loop while it is down and
/// put back after every ConnAck; without a session they go as new publishes (new packet ids).
/// The broker acknowledges each publish once, and stations drop redeliveries by their keys.
///
/// After a reconnect the monitor announces itself `online` again (retained): the broker may
/// have published its `offline` last will meanwhile (Mosquitto does when it shuts down).
async fn network(mut eventloop: EventLoop, link: NetLink) {
    let NetLink {
        device,
        status_topic,
        acked,
        announced,
        stop,
    } = link;
    let mut backoff = MIN_BACKOFF;
    let mut last_error: Option<String> = None;
    let mut unacked: VecDeque<Request> = VecDeque::new();
    let mut connected_before = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = MIN_BACKOFF;
                let n = unacked
                    .iter()
                    .filter(|r| matches!(r, Request::Publish(_)))
                    .count();
                if last_error.take().is_some() {
                    tracing::info!(
                        %device, resent = n, session_present = ack.session_present,
                        "simulated monitor: broker link back"
                    );
                }
                let mut resend: VecDeque<Request> = unacked
                    .drain(..)
                    .filter_map(|r| match r {
                        Request::Publish(mut p) if !ack.session_present => {
                            // A new session knows none of the old packet ids.
                            p.pkid = 0;
                            p.dup = false;
                            Some(Request::Publish(p))
                        }
                        Request::PubRel(_) if !ack.session_present => None,
                        r => Some(r),
                    })
                    .collect();
                resend.extend(eventloop.pending.drain(..));
                eventloop.pending = resend;
                // Not while stopping: the goodbye (`offline`) must stay the last word.
                if connected_before && !*stop.borrow() {
                    let online = StatusPayload {
                        v: CONTRACT_VERSION,
                        device: device.clone(),
                        state: DeviceState::Online,
                        t: Some(chrono::Utc::now()),
                        conditions: vec![],
                    };
                    let mut p = Publish::new(&status_topic, QoS::AtLeastOnce, json(&online));
                    p.retain = true;
                    eventloop.pending.push_back(Request::Publish(p));
                    announced.fetch_add(1, Ordering::Relaxed);
                }
                connected_before = true;
            }
            Ok(_) => {}
            Err(e) => {
                // Keep what rumqttc would resend; see above.
                unacked.extend(eventloop.pending.drain(..));
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(
                        %device, error = %msg, unacknowledged = unacked.len(),
                        "simulated monitor: broker link down; retrying"
                    );
                }
                last_error = Some(msg);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// What a monitor's network task shares with the monitor.
struct NetLink {
    device: String,
    status_topic: String,
    /// PUBACKs received.
    acked: Arc<AtomicU64>,
    /// `online` statuses the task published itself after reconnects.
    announced: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (no maps with non-string keys, no NaN).
    serde_json::to_vec(v).unwrap_or_default()
}

/// The physiology of one simulated patient.
struct BedModel {
    rng: SmallRng,
    breaching: bool,
    /// Per-bed baselines.
    hr0: f64,
    spo2_0: f64,
    rr0: f64,
    temp0: f64,
    sys0: f64,
    dia0: f64,
    /// Current (smoothed) values at `t`.
    t: f64,
    hr: f64,
    spo2: f64,
    rr: f64,
    temp: f64,
    /// Slow random walks added to the baselines.
    walk_hr: f64,
    walk_spo2: f64,
    phase: f64,
    /// R-peak times (s since start) around the current time, oldest first.
    beats: VecDeque<f64>,
    /// Respiration phase (cycles) and the time it was computed for.
    resp_phase: f64,
    resp_t: f64,
}

impl BedModel {
    fn new(seed: u64, index: usize, breaching: bool) -> Self {
        let mut rng =
            SmallRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
        let hr0 = rng.random_range(62.0..92.0);
        let spo2_0 = rng.random_range(95.5..98.5);
        let rr0 = rng.random_range(12.0..19.0);
        let temp0 = rng.random_range(36.4..37.3);
        let sys0 = rng.random_range(108.0..138.0);
        let dia0 = rng.random_range(62.0..84.0);
        let phase = rng.random_range(0.0..TAU);
        let first = rng.random_range(0.0..0.6);
        BedModel {
            rng,
            breaching,
            hr0,
            spo2_0,
            rr0,
            temp0,
            sys0,
            dia0,
            t: 0.0,
            hr: hr0,
            spo2: spo2_0,
            rr: rr0,
            temp: temp0,
            walk_hr: 0.0,
            walk_spo2: 0.0,
            phase,
            beats: VecDeque::from([first - 60.0 / hr0, first]),
            resp_phase: 0.0,
            resp_t: 0.0,
        }
    }

    fn gauss(&mut self) -> f64 {
        // Box–Muller.
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    /// Whether a breaching bed is in its deterioration window at time `t`.
    fn deteriorating(&self, t: f64) -> bool {
        let c = t % BREACH_CYCLE;
        self.breaching && (BREACH_START..BREACH_END).contains(&c)
    }

    /// Move the slow state (drift, deterioration, beat schedule) forward to `t` seconds.
    fn advance_to(&mut self, t: f64) {
        let dt = (t - self.t).max(0.0);
        if dt > 0.0 {
            let (hr_target, spo2_target) = if self.deteriorating(t) {
                (self.hr0 + 52.0, 84.0)
            } else {
                (self.hr0, self.spo2_0)
            };
            let step = dt.min(1.0);
            self.walk_hr = (self.walk_hr + 0.6 * step.sqrt() * self.gauss()).clamp(-6.0, 6.0);
            self.walk_spo2 = (self.walk_spo2 + 0.15 * step.sqrt() * self.gauss()).clamp(-1.0, 1.0);
            // First-order lag towards the target (time constant 2 s).
            let k = 1.0 - (-dt / 2.0).exp();
            let drift = 3.0 * (TAU * t / 300.0 + self.phase).sin();
            self.hr += (hr_target + drift + self.walk_hr - self.hr) * k;
            self.spo2 += (spo2_target + self.walk_spo2 - self.spo2) * k;
            self.rr += (self.rr0 + 1.5 * (TAU * t / 240.0 + self.phase).sin() - self.rr) * k;
            self.temp = self.temp0 + 0.2 * (TAU * t / 3600.0 + self.phase).sin();
            self.t = t;
        }
        // Keep R peaks scheduled one second past `t` (plus the current chunk), and drop the
        // ones too old to contribute to any sample still to come.
        while self.beats.back().is_some_and(|&b| b < t + 1.0) {
            let last = self.beats.back().copied().unwrap_or(t);
            let rr = 60.0 / self.hr.max(20.0) * (1.0 + 0.02 * self.gauss());
            self.beats.push_back(last + rr);
        }
        while self.beats.len() > 3 && self.beats[1] < t - 2.0 {
            self.beats.pop_front();
        }
    }

    /// One sample of `channel` at time `t` (seconds since start), in physical units.
    fn sample(&mut self, channel: &str, t: f64, rate: f64) -> f64 {
        let noise = self.gauss();
        match channel {
            "ECG_II" | "ECG_V5" => {
                let lead_v5 = channel == "ECG_V5";
                let beat: f64 = self.beats.iter().map(|&r| ecg_beat(t - r, lead_v5)).sum();
                let wander = 0.04 * (TAU * t * self.rr / 60.0).sin();
                beat + wander + 0.012 * noise
            }
            "PLETH" => {
                let pulse: f64 = self.beats.iter().map(|&r| pleth_beat(t - r)).sum();
                let resp_mod = 1.0 + 0.05 * (TAU * t * self.rr / 60.0).sin();
                let perfusion = if self.spo2 < 90.0 { 0.7 } else { 1.0 };
                0.15 + pulse * resp_mod * perfusion + 0.004 * noise
            }
            "RESP" => {
                // Integrate the respiration phase so a changing rate stays continuous.
                let dt = (t - self.resp_t).max(0.0).min(1.0 / rate * 4.0);
                self.resp_phase = (self.resp_phase + dt * self.rr / 60.0) % 1.0;
                self.resp_t = t;
                let p = self.resp_phase;
                // Inspiration faster than expiration.
                let shape = if p < 0.4 {
                    (std::f64::consts::PI * p / 0.4 - std::f64::consts::FRAC_PI_2).sin()
                } else {
                    (std::f64::consts::PI * (p - 0.4) / 0.6 + std::f64::consts::FRAC_PI_2).sin()
                };
                0.5 + 0.35 * shape + 0.005 * noise
            }
            _ => 0.0,
        }
    }

    /// The once-a-second numerics, rounded as a monitor displays them.
    fn numerics(&mut self) -> Vec<(Vital, f64)> {
        let hr = (self.hr + 0.7 * self.gauss()).round().clamp(20.0, 300.0);
        let pr = (hr + self.gauss()).round().clamp(20.0, 300.0);
        let spo2 = (self.spo2 + 0.4 * self.gauss()).round().clamp(50.0, 100.0);
        let rr = (self.rr + 0.5 * self.gauss()).round().clamp(4.0, 60.0);
        let temp = ((self.temp + 0.03 * self.gauss()) * 10.0).round() / 10.0;
        vec![
            (Vital::Hr, hr),
            (Vital::Pr, pr),
            (Vital::SpO2, spo2),
            (Vital::Rr, rr),
            (Vital::Temp, temp),
        ]
    }

    /// One NIBP cuff measurement.
    fn nibp(&mut self) -> Vec<(Vital, f64)> {
        let sys = (self.sys0 + 4.0 * self.gauss()).round();
        let dia = (self.dia0 + 3.0 * self.gauss()).round();
        let mean = ((sys + 2.0 * dia) / 3.0).round();
        vec![
            (Vital::NibpSys, sys),
            (Vital::NibpDia, dia),
            (Vital::NibpMean, mean),
        ]
    }
}

fn gaussian(x: f64, centre: f64, width: f64, amp: f64) -> f64 {
    let d = (x - centre) / width;
    amp * (-0.5 * d * d).exp()
}

/// ECG of one beat, `dt` seconds after its R peak (mV). P, Q, R, S, T as Gaussians.
fn ecg_beat(dt: f64, lead_v5: bool) -> f64 {
    if !(-0.35..0.6).contains(&dt) {
        return 0.0;
    }
    let (p, q, r, s, tw) = if lead_v5 {
        (0.10, -0.08, 1.55, -0.35, 0.38)
    } else {
        (0.15, -0.12, 1.20, -0.22, 0.30)
    };
    gaussian(dt, -0.17, 0.022, p)
        + gaussian(dt, -0.028, 0.010, q)
        + gaussian(dt, 0.0, 0.011, r)
        + gaussian(dt, 0.026, 0.011, s)
        + gaussian(dt, 0.28, 0.05, tw)
}

/// Plethysmogram of one beat, `dt` seconds after the R peak (arbitrary units, 0..~1).
fn pleth_beat(dt: f64) -> f64 {
    if !(0.0..1.2).contains(&dt) {
        return 0.0;
    }
    gaussian(dt, 0.30, 0.075, 0.85) + gaussian(dt, 0.52, 0.07, 0.28)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecg_has_r_peak_at_beat() {
        let at_r = ecg_beat(0.0, false);
        assert!((at_r - 1.2).abs() < 0.1, "{at_r}");
        assert!(ecg_beat(0.1, false).abs() < 0.1);
        assert_eq!(ecg_beat(1.0, false), 0.0);
        assert!(ecg_beat(0.0, true) > at_r, "V5 R wave is taller");
    }

    #[test]
    fn beat_rate_follows_heart_rate() {
        let mut m = BedModel::new(7, 0, false);
        let mut t = 0.0;
        while t < 60.0 {
            m.advance_to(t);
            t += 0.25;
        }
        let beats: Vec<f64> = m.beats.iter().copied().collect();
        let mean_rr = (beats[beats.len() - 1] - beats[0]) / (beats.len() - 1) as f64;
        let hr = 60.0 / mean_rr;
        assert!(
            (hr - m.hr).abs() < 12.0,
            "hr from beats {hr} vs model {}",
            m.hr
        );
    }

    #[test]
    fn breaching_bed_desaturates_and_recovers() {
        let mut m = BedModel::new(1, 2, true);
        let mut lowest: f64 = 100.0;
        for i in 0..(20 * 4) {
            m.advance_to(f64::from(i) * 0.25);
            lowest = lowest.min(m.spo2);
        }
        assert!(lowest < 88.0, "lowest SpO2 {lowest}");
        for i in (30 * 4)..(59 * 4) {
            m.advance_to(f64::from(i) * 0.25);
        }
        assert!(m.spo2 > 93.0, "recovered SpO2 {}", m.spo2);
        let mut steady = BedModel::new(1, 3, false);
        for i in 0..(60 * 4) {
            steady.advance_to(f64::from(i) * 0.25);
            assert!(steady.spo2 > 92.0 && steady.hr < 115.0 && steady.hr > 52.0);
        }
    }

    #[test]
    fn same_seed_same_ward() {
        let mut a = BedModel::new(5, 1, false);
        let mut b = BedModel::new(5, 1, false);
        a.advance_to(1.0);
        b.advance_to(1.0);
        let sa: Vec<f64> = (0..100)
            .map(|i| a.sample("ECG_II", f64::from(i) / 500.0, 500.0))
            .collect();
        let sb: Vec<f64> = (0..100)
            .map(|i| b.sample("ECG_II", f64::from(i) / 500.0, 500.0))
            .collect();
        assert_eq!(sa, sb);
    }
}
