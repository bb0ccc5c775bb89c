//! The network side of the engine: the MQTT event loop (connect, subscribe on every ConnAck,
//! reconnect with backoff), the dispatch of messages to the priority and bulk lanes, the
//! acknowledgements to the broker (after commit, in arrival order), the start-up ACL probe and
//! the link state.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};

use super::admission::over_budget;
use super::pipeline::handle_publish;
use super::storage::{outbox_send, Outbox, StoreSink};
use super::{lock, EngineConfig, LiveEvent, Shared};
use crate::config::ConfigError;
use crate::ingest::Admission;
use crate::security::{Kind, Occurrence, Source};
use crate::store::Op;
use crate::telemetry;

/// Reconnect delays: from `MIN_BACKOFF`, doubled after every failed attempt, at most
/// `MAX_BACKOFF`; back to `MIN_BACKOFF` on every ConnAck.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Messages waiting for the priority lane (vitals, device status, interop, station topics).
/// Nothing in that lane waits for the database, so it drains as fast as it decodes.
const FAST_LANE: usize = 16_384;

/// Waveform chunks waiting for the bulk lane. When the database cannot keep up and this is
/// full, further chunks are dropped (counted as `wave_backlog`, recorded as gaps) rather than
/// holding up the priority lane behind them.
const BULK_LANE: usize = 4_096;

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
pub(super) const ACL_PROBE_DEVICE: &str = "vigil-acl-probe";

/// Which lane a message is handled on: the priority lane never waits for the database; the
/// bulk lane (waveform chunks) may, without holding up the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
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
        let now = shared.clock.now_ms();
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
        shared.clock.now_ms(),
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

pub(super) async fn run_loop(
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
                // essential when it did not. The filters as they stand now (the remote watch
                // adds its patients' wards).
                let now_filters = lock(&shared.filters).clone();
                let subs = now_filters
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
                        let now = shared.clock.now_ms();
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

/// MQTT options for the station: see [`crate::config::BrokerSettings::mqtt_options`] (persistent session).
pub(super) fn mqtt_options(cfg: &EngineConfig) -> Result<rumqttc::MqttOptions, ConfigError> {
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
            shared.clock.now_ms()
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

/// Acknowledge handled QoS 1 messages to the broker once everything queued for the writer
/// before them is committed, in the order they arrived. A message not acknowledged (the
/// process is killed, the database cannot be written) stays with the broker, which sends it
/// again in the next session; the store drops what it already holds.
pub(super) async fn ack_after_commit(
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
pub(super) enum AckOrder {
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
pub(super) async fn ack_in_order(client: AsyncClient, mut rx: mpsc::UnboundedReceiver<AckOrder>) {
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
        shared.clock.now_ms(),
    ));
}
