//! The MLLP (Minimal Lower Layer Protocol) server for HL7 v2 over TCP ([`serve`]): it reads
//! connections, finds the frames with the contract's pure [`FrameDecoder`] (re-exported here
//! with [`frame`]), decodes each message with [`hl7v2::decode`], hands it to the engine and
//! answers with an ACK.
//!
//! A frame is `0x0B` message `0x1C 0x0D`. The decoder copes with partial reads and several frames
//! per read, skips bytes outside frames (garbage before a start byte), restarts on a start byte
//! inside a frame (a sender that gave up on a frame and began again), and accepts a frame ended
//! by `0x1C` alone. A frame larger than [`MAX_FRAME_BYTES`] is dropped: the server answers AR
//! (addressed from the frame's MSH when its beginning holds one) and closes the connection.
//!
//! Server behaviour, for each frame:
//! - the bytes are taken as UTF-8, or as ISO 8859-1 when they are not valid UTF-8;
//! - an inbound ACK is never acknowledged (it is still passed to the engine as a decode error);
//! - the message and its decoding result go to the engine as an [`MllpMessage`];
//! - reply: **AR** (ERR 102) when the message could not be decoded at all — without waiting for
//!   the engine; **AA** when the engine answers `Ok`; **AE** (ERR 207, the engine's reason) when
//!   it answers `Err`, drops the reply, does not answer within the engine timeout, or is gone.
//!
//! Who may connect ([`MllpConfig`], `[ingest]` in the config file): on a loopback address any
//! local process may; on any other address only the peers of an allow-list ([`PeerList`], each
//! tied to the devices it may speak for) — a listener reachable from the network without one is
//! refused at start ([`MllpConfig::check`]). A peer missing from the list is closed at accept. The
//! engine refuses a message whose device is not one of its peer's with [`Refused`]: the sender
//! gets one AE ([`hl7v2::refusal`]) whatever the reason, so a prober learns nothing about which
//! devices exist; the typed reason stays in the logs, counters and security events.
//!
//! Bounds: at most [`ServeOptions::max_connections`] connections and
//! [`ServeOptions::max_per_peer`] from one address (more are closed at once), a deadline for a
//! whole frame from its first byte ([`ServeOptions::frame_timeout`]: a sender trickling a frame
//! byte by byte — a slow-loris — is closed however often it sends), an idle timeout between
//! frames, a write timeout, a frame size cap, and bounded waits on the engine. Connections
//! refused or closed for these reasons are reported on [`ServeOptions::events`]. Nothing here
//! panics on any input.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use thiserror::Error;

use rumqttc::tokio_rustls::{rustls, TlsAcceptor};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use super::hl7v2::{self, AckCode, Header};
use crate::telemetry::{Batch, DecodeError, DeviceId};

pub use vigil_contract::interop::mllp::*;

/// One message received over MLLP, for the engine. The engine answers on `reply`: `Ok(())`
/// when it took the message (the sender gets AA), `Err(Refused)` when it refused it (the one AE
/// of [`hl7v2::refusal`]). For a `batch` that is `Err` the sender has already been answered AR;
/// the reply is ignored.
#[derive(Debug)]
pub struct MllpMessage {
    pub peer: SocketAddr,
    pub batch: Result<Batch, DecodeError>,
    /// Over TLS: the devices the client certificate names (its CN and DNS names); the message's
    /// device must be one of them. `None`: plain TCP.
    pub cert_devices: Option<Arc<BTreeSet<String>>>,
    pub reply: oneshot::Sender<Result<(), Refused>>,
}

/// The devices a client certificate speaks for: its subject CN and its DNS subject alternative
/// names. A certificate that cannot be read names none.
pub fn cert_devices(der: &[u8]) -> BTreeSet<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let mut out = BTreeSet::new();
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return out;
    };
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            out.insert(s.trim().to_string());
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                out.insert(d.trim().to_string());
            }
        }
    }
    out.retain(|d| !d.is_empty());
    out
}

/// The engine refused a message. It carries nothing on purpose: the sender is told the same
/// whether the device is unknown, disabled or another peer's (the engine logs and counts why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// The address a peer is known by: IPv4-mapped IPv6 addresses (a dual-stack listener) as IPv4.
pub fn peer_ip(peer: &SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

/// The MLLP peers allowed to connect, each with the devices it may speak for
/// (`[ingest.mllp_peers]`: `"10.1.2.3" = ["mon-1", "mon-2"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerList(BTreeMap<IpAddr, BTreeSet<String>>);

impl PeerList {
    /// From the config file's table: keys are IP addresses, values device ids.
    pub fn parse(table: &BTreeMap<String, Vec<String>>) -> Result<PeerList, MllpConfigError> {
        let mut out = BTreeMap::new();
        for (key, devices) in table {
            let ip: IpAddr = key
                .trim()
                .parse()
                .map_err(|_| MllpConfigError::BadPeer(key.clone()))?;
            // Each device as the registry knows it (the one device-id parser): a device no
            // topic and no registration can name is a configuration error, not a silent refusal.
            let devices: BTreeSet<String> = devices
                .iter()
                .map(|d| d.trim())
                .filter(|d| !d.is_empty())
                .map(|d| {
                    DeviceId::parse(d)
                        .map(|d| d.as_str().to_string())
                        .map_err(|e| MllpConfigError::BadDevice(key.clone(), e))
                })
                .collect::<Result<_, _>>()?;
            if devices.is_empty() {
                return Err(MllpConfigError::NoDevices(key.clone()));
            }
            out.entry(ip.to_canonical())
                .or_insert_with(BTreeSet::new)
                .extend(devices);
        }
        Ok(PeerList(out))
    }

    /// Whether `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.contains_key(&ip.to_canonical())
    }

    /// Whether `ip` may speak for `device`.
    pub fn may_speak_for(&self, ip: IpAddr, device: &str) -> bool {
        self.0
            .get(&ip.to_canonical())
            .is_some_and(|d| d.contains(device))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Peers on the list.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The MLLP listener of an engine: where it listens and who may send what.
#[derive(Debug, Clone)]
pub struct MllpConfig {
    pub listen: SocketAddr,
    /// Allowed peers and their devices; `None`: any peer, any registered device — only on a
    /// loopback address ([`MllpConfig::check`]).
    pub peers: Option<Arc<PeerList>>,
    /// Connections at once from one address.
    pub max_per_peer: usize,
    /// Longest a frame may take from its first byte to its end.
    pub frame_timeout: Duration,
    /// TLS with client certificates ([`crate::config::tls_server_config`]); each certificate
    /// names the devices its holder may speak for.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl MllpConfig {
    /// A listener on `listen` with the default limits and no allow-list.
    pub fn new(listen: SocketAddr) -> MllpConfig {
        let d = ServeOptions::default();
        MllpConfig {
            listen,
            peers: None,
            max_per_peer: d.max_per_peer,
            frame_timeout: d.frame_timeout,
            tls: None,
        }
    }

    /// A listener reachable from the network needs an allow-list or TLS with client
    /// certificates; limits must be usable.
    pub fn check(&self) -> Result<(), MllpConfigError> {
        let has_peers = self.peers.as_ref().is_some_and(|p| !p.is_empty());
        if !self.listen.ip().is_loopback() && !has_peers && self.tls.is_none() {
            return Err(MllpConfigError::Exposed { addr: self.listen });
        }
        if self.max_per_peer == 0 {
            return Err(MllpConfigError::Limit(
                "mllp_max_per_peer must be at least 1",
            ));
        }
        if self.frame_timeout.is_zero() {
            return Err(MllpConfigError::Limit(
                "mllp_frame_seconds must be at least 1",
            ));
        }
        Ok(())
    }

    /// The server options of this listener.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            max_per_peer: self.max_per_peer,
            frame_timeout: self.frame_timeout,
            peers: self.peers.clone(),
            tls: self.tls.clone(),
            ..ServeOptions::default()
        }
    }
}

/// MLLP settings that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MllpConfigError {
    #[error(
        "refusing to listen for MLLP on {addr}: that address is reachable from the network and \
         no peer may be told from another. Listen on loopback (mllp_listen = \"127.0.0.1:{}\"), or \
         list each sending gateway with the devices it may speak for under [ingest.mllp_peers], \
         e.g. \"10.1.2.3\" = [\"mon-1\", \"mon-2\"], or require client certificates \
         (mllp_tls_cert_file, mllp_tls_key_file, mllp_tls_client_ca_file)",
        addr.port()
    )]
    Exposed { addr: SocketAddr },
    #[error("[ingest.mllp_peers]: {0:?} is not an IP address")]
    BadPeer(String),
    #[error("[ingest.mllp_peers]: peer {0} lists no device (list the devices it may speak for)")]
    NoDevices(String),
    #[error("[ingest.mllp_peers]: peer {0}: {1}")]
    BadDevice(String, crate::telemetry::IdError),
    #[error("[ingest] {0}")]
    Limit(&'static str),
}

/// Why the server refused or closed a connection (reported on [`ServeOptions::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    /// The address is not on the allow-list.
    NotAllowed,
    /// The address already has [`ServeOptions::max_per_peer`] connections.
    PeerCap,
    /// The server already has [`ServeOptions::max_connections`] connections.
    ServerCap,
    /// A frame was not completed within [`ServeOptions::frame_timeout`] of its first byte.
    FrameTimeout,
    /// A frame exceeded [`ServeOptions::max_frame_bytes`].
    FrameTooLarge,
    /// The TLS handshake failed: no client certificate, or one the CA did not sign.
    TlsHandshake,
    /// The TLS handshake did not end within [`ServeOptions::frame_timeout`].
    TlsHandshakeTimeout,
}

impl ConnRefusal {
    /// Stable short key for counters and logs.
    pub fn reason(self) -> &'static str {
        match self {
            ConnRefusal::NotAllowed => "mllp_peer_not_allowed",
            ConnRefusal::PeerCap => "mllp_peer_connection_cap",
            ConnRefusal::ServerCap => "mllp_connection_cap",
            ConnRefusal::FrameTimeout => "mllp_frame_timeout",
            ConnRefusal::FrameTooLarge => "mllp_frame_too_large",
            ConnRefusal::TlsHandshake => "mllp_tls_handshake",
            ConnRefusal::TlsHandshakeTimeout => "mllp_tls_handshake_timeout",
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            ConnRefusal::NotAllowed => "connection from an address not on the MLLP allow-list",
            ConnRefusal::PeerCap => "too many MLLP connections from this address",
            ConnRefusal::ServerCap => "too many MLLP connections",
            ConnRefusal::FrameTimeout => {
                "MLLP frame not completed in time (a slow or stalled sender); connection closed"
            }
            ConnRefusal::FrameTooLarge => "MLLP frame too large; connection closed",
            ConnRefusal::TlsHandshake => {
                "MLLP TLS handshake failed (no client certificate, or one not signed by the CA)"
            }
            ConnRefusal::TlsHandshakeTimeout => {
                "MLLP TLS handshake not completed in time (a stalled or probing client); \
                 connection closed"
            }
        }
    }
}

/// A connection refused or closed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnEvent {
    pub peer: SocketAddr,
    pub what: ConnRefusal,
}

/// Limits of the MLLP server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Connections served at once from one address; more are closed on accept.
    pub max_per_peer: usize,
    /// A connection silent this long between frames is closed.
    pub idle_timeout: Duration,
    /// A frame (or bytes outside a frame) not completed this long after its first byte closes
    /// the connection, however steadily its bytes trickle in.
    pub frame_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
    /// Longest wait for the engine to take a message and to answer it.
    pub engine_timeout: Duration,
    /// Longest wait to write an ACK.
    pub write_timeout: Duration,
    /// Only these peers may connect; `None`: any.
    pub peers: Option<Arc<PeerList>>,
    /// Refused and closed connections are reported here (best effort: never waits).
    pub events: Option<mpsc::Sender<ConnEvent>>,
    /// TLS with client certificates; `None`: plain TCP. The handshake must end within
    /// `frame_timeout`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refusals logged per address and reason (a prober must not flood the log).
    pub refusal_log: Arc<RefusalLog>,
}

/// How often a refusal of one address for one reason is logged: the first, then at most once
/// a minute with how many were not logged in between. Every refusal is still reported on
/// [`ServeOptions::events`] (security events count each one).
#[derive(Debug, Default)]
pub struct RefusalLog(Mutex<HashMap<RefusalKey, (std::time::Instant, u64)>>);

/// An address and a refusal reason.
type RefusalKey = (IpAddr, &'static str);

/// Addresses remembered by [`RefusalLog`]; beyond it, it starts afresh.
const REFUSAL_LOG_MEMORY: usize = 4096;
/// At most one log line per address and reason this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

impl RefusalLog {
    /// Whether to log this refusal now, and how many of its kind were not logged since the
    /// last one that was.
    pub fn note(&self, ip: IpAddr, reason: &'static str, now: std::time::Instant) -> Option<u64> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= REFUSAL_LOG_MEMORY && !m.contains_key(&(ip, reason)) {
            m.clear();
        }
        match m.get_mut(&(ip, reason)) {
            Some((last, skipped)) if now.duration_since(*last) < REFUSAL_LOG_EVERY => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                let n = *skipped;
                *last = now;
                *skipped = 0;
                Some(n)
            }
            None => {
                m.insert((ip, reason), (now, 0));
                Some(0)
            }
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 64,
            max_per_peer: 8,
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            max_frame_bytes: MAX_FRAME_BYTES,
            engine_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            peers: None,
            events: None,
            tls: None,
            refusal_log: Arc::default(),
        }
    }
}

impl ServeOptions {
    fn report(&self, peer: SocketAddr, what: ConnRefusal) {
        let now = std::time::Instant::now();
        if let Some(unlogged) = self.refusal_log.note(peer.ip(), what.reason(), now) {
            tracing::warn!(%peer, reason = what.reason(), unlogged, "{}", what.describe());
        }
        if let Some(tx) = &self.events {
            if tx.try_send(ConnEvent { peer, what }).is_err() {
                tracing::debug!(%peer, "MLLP connection event dropped (queue full)");
            }
        }
    }
}

/// Connections per address; a [`PeerSlot`] gives its place back when dropped.
#[derive(Debug, Default)]
struct PeerCounts(Mutex<HashMap<IpAddr, usize>>);

#[derive(Debug)]
struct PeerSlot {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

impl PeerCounts {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serve MLLP on `listener` with the default [`ServeOptions`] until `stop` turns true (or its
/// sender is dropped). Returns when the listener is closed and the connections have ended.
pub async fn serve(
    listener: TcpListener,
    sink: mpsc::Sender<MllpMessage>,
    stop: watch::Receiver<bool>,
) {
    serve_with(listener, sink, stop, ServeOptions::default()).await;
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    listener: TcpListener,
    sink: mpsc::Sender<MllpMessage>,
    mut stop: watch::Receiver<bool>,
    opts: ServeOptions,
) {
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let per_peer = Arc::new(PeerCounts::default());
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let conn_stop = stop.clone();
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let ip = peer_ip(&peer);
                    if opts.peers.as_ref().is_some_and(|p| !p.allows(ip)) {
                        opts.report(peer, ConnRefusal::NotAllowed);
                        drop(stream);
                        continue;
                    }
                    // The address's own cap first: one address cannot take the others' places.
                    let Some(peer_slot) = per_peer.take(ip, opts.max_per_peer) else {
                        opts.report(peer, ConnRefusal::PeerCap);
                        drop(stream);
                        continue;
                    };
                    match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let (sink, opts) = (sink.clone(), opts.clone());
                            conns.spawn(async move {
                                let _slots = (permit, peer_slot);
                                accepted_connection(stream, peer, sink, conn_stop, opts).await;
                            });
                        }
                        Err(_) => {
                            opts.report(peer, ConnRefusal::ServerCap);
                            drop(stream);
                        }
                    }
                }
                Err(e) => {
                    // E.g. out of file descriptors: do not spin.
                    tracing::warn!(error = %e, "MLLP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

/// Message bytes as text: UTF-8, else ISO 8859-1 (the usual HL7 v2 default character set).
fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Serve one accepted connection: plain, or after a TLS handshake that names its devices.
async fn accepted_connection(
    stream: TcpStream,
    peer: SocketAddr,
    sink: mpsc::Sender<MllpMessage>,
    stop: watch::Receiver<bool>,
    opts: ServeOptions,
) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = opts.tls.clone() else {
        return connection(stream, peer, None, sink, stop, opts).await;
    };
    match tokio::time::timeout(opts.frame_timeout, TlsAcceptor::from(tls).accept(stream)).await {
        Ok(Ok(s)) => {
            let devices = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| cert_devices(c.as_ref()))
                .unwrap_or_default();
            tracing::debug!(%peer, ?devices, "MLLP TLS client");
            connection(s, peer, Some(Arc::new(devices)), sink, stop, opts).await;
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "MLLP TLS handshake failed");
            opts.report(peer, ConnRefusal::TlsHandshake);
        }
        Err(_) => opts.report(peer, ConnRefusal::TlsHandshakeTimeout),
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    cert_devices: Option<Arc<BTreeSet<String>>>,
    sink: mpsc::Sender<MllpMessage>,
    mut stop: watch::Receiver<bool>,
    opts: ServeOptions,
) {
    use tokio::time::Instant;
    tracing::debug!(%peer, "MLLP connection opened");
    let mut decoder = FrameDecoder::new(opts.max_frame_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    // Set while a frame is under way: it must end by then, however its bytes trickle in.
    let mut frame_deadline: Option<Instant> = None;
    'conn: loop {
        if *stop.borrow() {
            break;
        }
        let idle = Instant::now() + opts.idle_timeout;
        let deadline = frame_deadline.map_or(idle, |f| f.min(idle));
        let n = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            r = tokio::time::timeout_at(deadline, stream.read(&mut buf)) => match r {
                Err(_) if frame_deadline.is_some_and(|f| f <= Instant::now()) => {
                    opts.report(peer, ConnRefusal::FrameTimeout);
                    break;
                }
                Err(_) => {
                    tracing::debug!(%peer, "MLLP connection idle; closing");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "MLLP read failed");
                    break;
                }
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => n,
            }
        };
        let events = decoder.push(&buf[..n]);
        let ended = !events.is_empty();
        for event in events {
            match event {
                FrameEvent::Frame(bytes) => {
                    let who = (peer, cert_devices.clone());
                    if let Some(reply) = handle_frame(who, &bytes, &sink, &opts).await {
                        if write_frame(&mut stream, &reply, &opts).await.is_err() {
                            break 'conn;
                        }
                    }
                }
                FrameEvent::TooLarge { prefix } => {
                    opts.report(peer, ConnRefusal::FrameTooLarge);
                    let h = hl7v2::header(&text_of(&prefix)).unwrap_or_default();
                    let why = format!("frame exceeds {} bytes", opts.max_frame_bytes);
                    let reply = hl7v2::ack_for(&h, AckCode::AR, Some(&why), Utc::now());
                    let _ = write_frame(&mut stream, &reply, &opts).await;
                    break 'conn;
                }
            }
        }
        // A frame under way must end by its deadline; a frame that ended (after the engine's
        // answer) gives the next one, if begun, a deadline of its own.
        if ended || !decoder.pending() {
            frame_deadline = None;
        }
        if decoder.pending() && frame_deadline.is_none() {
            frame_deadline = Some(Instant::now() + opts.frame_timeout);
        }
    }
    let _ = tokio::time::timeout(opts.write_timeout, stream.shutdown()).await;
    tracing::debug!(%peer, "MLLP connection closed");
}

async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &str,
    opts: &ServeOptions,
) -> std::io::Result<()> {
    let framed = frame(msg.as_bytes());
    let write = async {
        stream.write_all(&framed).await?;
        stream.flush().await
    };
    match tokio::time::timeout(opts.write_timeout, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "ACK write timed out",
        )),
    }
}

/// Decode one frame, give it to the engine and build the reply (`None`: no reply).
async fn handle_frame(
    (peer, cert_devices): (SocketAddr, Option<Arc<BTreeSet<String>>>),
    bytes: &[u8],
    sink: &mpsc::Sender<MllpMessage>,
    opts: &ServeOptions,
) -> Option<String> {
    let text = text_of(bytes);
    let header = hl7v2::header(&text);
    let batch = hl7v2::decode(&text);
    let is_ack = header.as_ref().is_some_and(|h| h.message_type == "ACK");
    let h: Header = header.unwrap_or_default();
    let decode_error = batch.as_ref().err().map(|e| (e.reason(), e.to_string()));
    let (reply, answer) = oneshot::channel();
    let sent = tokio::time::timeout(
        opts.engine_timeout,
        sink.send(MllpMessage {
            peer,
            batch,
            cert_devices,
            reply,
        }),
    )
    .await;
    if is_ack {
        tracing::debug!(%peer, "MLLP: an ACK received as a message; not acknowledged");
        return None;
    }
    if let Some((reason, why)) = decode_error {
        tracing::warn!(%peer, reason, error = %why, control_id = %h.control_id, "HL7 message rejected");
        return Some(hl7v2::ack_for(&h, AckCode::AR, Some(&why), Utc::now()));
    }
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            return Some(hl7v2::ack_for(
                &h,
                AckCode::AE,
                Some("the station is not accepting messages"),
                Utc::now(),
            ))
        }
        Err(_) => {
            return Some(hl7v2::ack_for(
                &h,
                AckCode::AE,
                Some("the station is busy; message not taken in time"),
                Utc::now(),
            ))
        }
    }
    let (code, why) = match tokio::time::timeout(opts.engine_timeout, answer).await {
        Ok(Ok(Ok(()))) => (AckCode::AA, None),
        Ok(Ok(Err(Refused))) => return Some(hl7v2::refusal(&h, Utc::now())),
        Ok(Err(_)) => (AckCode::AE, Some("the station dropped the message")),
        Err(_) => (AckCode::AE, Some("the station did not answer in time")),
    };
    Some(hl7v2::ack_for(&h, code, why, Utc::now()))
}

/// A minimal MLLP client exchange (for tests and tools): send `message` framed on `stream` and
/// read one reply frame, waiting at most `max_wait`.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    message: &str,
    max_wait: Duration,
) -> std::io::Result<String> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "no MLLP reply in time");
    let write = async {
        stream.write_all(&frame(message.as_bytes())).await?;
        stream.flush().await
    };
    tokio::time::timeout(max_wait, write)
        .await
        .map_err(|_| timed_out())??;
    read_reply(stream, max_wait).await
}

/// Read one frame from `stream` (for tests and tools).
pub async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_wait: Duration,
) -> std::io::Result<String> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "no MLLP reply in time");
    let mut decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + max_wait;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .map_err(|_| timed_out())??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a reply",
            ));
        }
        if let Some(FrameEvent::Frame(f)) = decoder.push(&buf[..n]).into_iter().next() {
            return Ok(text_of(&f).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn latin1_fallback() {
        assert_eq!(text_of(b"caf\xe9"), "café");
        assert_eq!(text_of("café".as_bytes()), "café");
    }

    const ORU: &str = "MSH|^~\\&|GW^0011223344556677^EUI-64|F|VIGIL|W|20261123100000+0000||ORU^R01^ORU_R01|M1|P|2.6\rOBR|1|||x|||20261123100000+0000\rOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1|72|/min|||||F\r";

    async fn start(
        opts: ServeOptions,
    ) -> (
        SocketAddr,
        mpsc::Receiver<MllpMessage>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve_with(listener, tx, stop_rx, opts));
        (addr, rx, stop_tx, task)
    }

    /// A prober refused again and again is logged once a minute per reason, with how many
    /// refusals were not logged meanwhile; another address or reason has its own line.
    #[test]
    fn refusals_are_logged_once_a_minute_per_address_and_reason() {
        let log = RefusalLog::default();
        let t0 = std::time::Instant::now();
        let a: IpAddr = [10, 0, 0, 7].into();
        let b: IpAddr = [10, 0, 0, 8].into();
        assert_eq!(log.note(a, "not_allowed", t0), Some(0));
        for i in 1..=500u64 {
            assert_eq!(
                log.note(a, "not_allowed", t0 + Duration::from_millis(i)),
                None
            );
        }
        assert_eq!(log.note(b, "not_allowed", t0), Some(0), "another address");
        assert_eq!(log.note(a, "per_peer_cap", t0), Some(0), "another reason");
        let later = t0 + REFUSAL_LOG_EVERY + Duration::from_millis(1);
        assert_eq!(log.note(a, "not_allowed", later), Some(500));
        assert_eq!(log.note(a, "not_allowed", later), None);
        // Memory stays bounded whatever the number of addresses.
        for i in 0..(REFUSAL_LOG_MEMORY as u32 + 10) {
            log.note(IpAddr::from(i.to_be_bytes()), "not_allowed", t0);
        }
        assert!(log.0.lock().expect("lock").len() <= REFUSAL_LOG_MEMORY);
    }

    #[tokio::test]
    async fn engine_timeout_idle_timeout_connection_cap_and_stop() {
        let opts = ServeOptions {
            max_connections: 1,
            idle_timeout: Duration::from_millis(300),
            engine_timeout: Duration::from_millis(200),
            ..ServeOptions::default()
        };
        let (addr, mut rx, stop, task) = start(opts).await;
        let wait = Duration::from_secs(5);
        let mut c1 = TcpStream::connect(addr).await.expect("connect");
        // The engine takes the message but never answers: AE after the engine timeout.
        let reply = exchange(&mut c1, ORU, wait).await.expect("reply");
        let held = rx.recv().await.expect("message");
        assert!(held.batch.is_ok());
        let info = hl7v2::parse_ack(&reply).expect("ack");
        assert_eq!((info.code.as_str(), info.control_id.as_str()), ("AE", "M1"));
        assert!(info.error.unwrap_or_default().contains("did not answer"));
        // A second connection while the first is open is closed at once.
        let mut c2 = TcpStream::connect(addr).await.expect("connect 2");
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(wait, c2.read(&mut b))
            .await
            .expect("closed in time");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        // The first connection is closed after the idle timeout.
        let n = tokio::time::timeout(wait, c1.read(&mut b))
            .await
            .expect("idle close");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        // Stop ends the server.
        stop.send(true).expect("stop");
        tokio::time::timeout(wait, task)
            .await
            .expect("server stopped")
            .expect("no panic");
        drop(held);
    }

    #[tokio::test]
    async fn oversize_frame_gets_ar_and_close() {
        let opts = ServeOptions {
            max_frame_bytes: 1024,
            ..ServeOptions::default()
        };
        let (addr, _rx, stop, task) = start(opts).await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let big = format!("{ORU}{}", "NTE|1||x\r".repeat(500));
        let reply = exchange(&mut c, &big, Duration::from_secs(5))
            .await
            .expect("reply");
        let info = hl7v2::parse_ack(&reply).expect("ack");
        assert_eq!(info.code, "AR");
        assert_eq!(
            info.control_id, "M1",
            "addressed from the frame's beginning"
        );
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
            .await
            .expect("closed");
        assert!(matches!(n, Ok(0) | Err(_)));
        stop.send(true).expect("stop");
        task.await.expect("no panic");
    }

    #[test]
    fn pending_covers_a_frame_under_way_and_noise_not_line_ends() {
        let mut d = FrameDecoder::new(1024);
        assert!(!d.pending());
        d.push(b"\r\n");
        assert!(!d.pending(), "line ends between frames are not pending");
        d.push(b"\x0bMSH|");
        assert!(d.pending());
        d.push(b"x\x1c");
        assert!(!d.pending(), "the frame ended");
        d.push(b"\r");
        assert!(!d.pending());
        d.push(b"junk");
        assert!(
            d.pending(),
            "bytes outside a frame count until a frame ends"
        );
        d.push(&frame(b"ok"));
        assert!(!d.pending());
    }

    #[test]
    fn peer_lists_and_exposed_listeners() {
        let table: BTreeMap<String, Vec<String>> = [
            (
                "10.1.2.3".to_string(),
                vec!["mon-1".to_string(), " mon-2 ".to_string()],
            ),
            ("::ffff:10.1.2.4".to_string(), vec!["mon-3".to_string()]),
        ]
        .into_iter()
        .collect();
        let p = PeerList::parse(&table).expect("valid");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(p.allows(ip("10.1.2.3")) && p.allows(ip("10.1.2.4")));
        assert!(
            p.allows(ip("::ffff:10.1.2.3")),
            "a dual-stack listener's peer"
        );
        assert!(!p.allows(ip("10.1.2.5")));
        assert!(p.may_speak_for(ip("10.1.2.3"), "mon-2"));
        assert!(!p.may_speak_for(ip("10.1.2.3"), "mon-3"));
        assert!(!p.may_speak_for(ip("10.9.9.9"), "mon-1"));
        let bad: BTreeMap<String, Vec<String>> =
            [("gateway-1".to_string(), vec!["mon-1".to_string()])]
                .into_iter()
                .collect();
        assert_eq!(
            PeerList::parse(&bad),
            Err(MllpConfigError::BadPeer("gateway-1".into()))
        );
        let empty: BTreeMap<String, Vec<String>> =
            [("10.1.2.3".to_string(), vec![" ".to_string()])]
                .into_iter()
                .collect();
        assert!(matches!(
            PeerList::parse(&empty),
            Err(MllpConfigError::NoDevices(_))
        ));
        // A device the registry could never hold (the contract refuses a leading '_', a ':'
        // or a space) is refused with the contract's words.
        for device in ["_station", "00:1A:2B", "mon 1"] {
            let odd: BTreeMap<String, Vec<String>> =
                [("10.1.2.3".to_string(), vec![device.to_string()])]
                    .into_iter()
                    .collect();
            let e = PeerList::parse(&odd).expect_err(device);
            assert!(
                matches!(e, MllpConfigError::BadDevice(..)),
                "{device}: {e:?}"
            );
            assert!(e.to_string().contains("not a device id"), "{e}");
        }

        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(MllpConfig::new(addr("127.0.0.1:2575")).check(), Ok(()));
        assert_eq!(MllpConfig::new(addr("[::1]:2575")).check(), Ok(()));
        for exposed in ["0.0.0.0:2575", "10.1.2.1:2575", "[::]:2575"] {
            let e = MllpConfig::new(addr(exposed)).check().expect_err(exposed);
            assert_eq!(
                e,
                MllpConfigError::Exposed {
                    addr: addr(exposed)
                }
            );
            let msg = e.to_string();
            assert!(
                msg.contains("[ingest.mllp_peers]") && msg.contains("127.0.0.1"),
                "{msg}"
            );
        }
        let mut m = MllpConfig::new(addr("0.0.0.0:2575"));
        m.peers = Some(Arc::new(p));
        assert_eq!(m.check(), Ok(()));
        m.peers = Some(Arc::new(PeerList::default()));
        assert!(
            m.check().is_err(),
            "an empty list allows nobody: still refused"
        );
        let mut m = MllpConfig::new(addr("127.0.0.1:2575"));
        m.max_per_peer = 0;
        assert!(matches!(m.check(), Err(MllpConfigError::Limit(_))));
    }

    /// A client connection from `from` (any 127.0.0.0/8 address is loopback on Linux).
    async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind(format!("{from}:0").parse().expect("addr"))
            .expect("bind source");
        s.connect(to).await.expect("connect")
    }

    /// The engine's part: answer every message AA.
    fn answer_all(mut rx: mpsc::Receiver<MllpMessage>) {
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let _ = m.reply.send(Ok(()));
            }
        });
    }

    async fn closed_within(c: &mut TcpStream, wait: Duration) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(wait, c.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_frame_trickled_byte_by_byte_is_closed_at_its_deadline() {
        let (events_tx, mut events) = mpsc::channel(16);
        let opts = ServeOptions {
            frame_timeout: Duration::from_millis(400),
            events: Some(events_tx),
            ..ServeOptions::default()
        };
        let (addr, rx, stop, task) = start(opts).await;
        answer_all(rx);
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"\x0bMSH|").await.expect("write");
        let began = tokio::time::Instant::now();
        // One byte every 50 ms: the idle timeout (60 s) never fires; the frame deadline does.
        let closed_after = loop {
            let mut b = [0u8; 16];
            tokio::select! {
                r = slow.read(&mut b) => {
                    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
                    break began.elapsed();
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    assert!(began.elapsed() < Duration::from_secs(10), "still open after 10 s");
                    if slow.write_all(b"x").await.is_err() {
                        break began.elapsed();
                    }
                }
            }
        };
        assert!(
            closed_after >= Duration::from_millis(400),
            "{closed_after:?}"
        );
        let ev = events.recv().await.expect("event");
        assert_eq!(ev.what, ConnRefusal::FrameTimeout);
        // A sender that completes its frames in time keeps its connection across frames.
        let mut ok = TcpStream::connect(addr).await.expect("connect");
        for _ in 0..3 {
            let r = exchange(&mut ok, ORU, Duration::from_secs(5))
                .await
                .expect("AA");
            assert_eq!(hl7v2::parse_ack(&r).expect("ack").code, "AA");
        }
        stop.send(true).expect("stop");
        task.await.expect("no panic");
    }

    #[tokio::test]
    async fn per_peer_cap_and_allow_list_at_accept() {
        let (events_tx, mut events) = mpsc::channel(16);
        let table: BTreeMap<String, Vec<String>> = [
            ("127.0.0.2".to_string(), vec!["mon-2".to_string()]),
            ("127.0.0.3".to_string(), vec!["mon-3".to_string()]),
        ]
        .into_iter()
        .collect();
        let opts = ServeOptions {
            max_per_peer: 2,
            peers: Some(Arc::new(PeerList::parse(&table).expect("peers"))),
            events: Some(events_tx),
            ..ServeOptions::default()
        };
        let (addr, rx, stop, task) = start(opts).await;
        answer_all(rx);
        let wait = Duration::from_secs(5);
        // Not on the list: closed at once, reported.
        let mut stranger = connect_from("127.0.0.4", addr).await;
        assert!(closed_within(&mut stranger, wait).await);
        let ev = events.recv().await.expect("event");
        assert_eq!(ev.what, ConnRefusal::NotAllowed);
        assert_eq!(ev.peer.ip().to_string(), "127.0.0.4");
        // Two from one address are served; the third is closed at once.
        let mut a = connect_from("127.0.0.2", addr).await;
        let mut b = connect_from("127.0.0.2", addr).await;
        for c in [&mut a, &mut b] {
            let r = exchange(c, ORU, wait).await.expect("reply");
            assert_eq!(hl7v2::parse_ack(&r).expect("ack").code, "AA");
        }
        let mut third = connect_from("127.0.0.2", addr).await;
        assert!(closed_within(&mut third, wait).await);
        let ev = events.recv().await.expect("event");
        assert_eq!(ev.what, ConnRefusal::PeerCap);
        // Another address is not held back by the first one's cap.
        let mut other = connect_from("127.0.0.3", addr).await;
        let r = exchange(&mut other, ORU, wait).await.expect("reply");
        assert_eq!(hl7v2::parse_ack(&r).expect("ack").code, "AA");
        // A place given back is free again.
        drop(a);
        let deadline = tokio::time::Instant::now() + wait;
        let r = loop {
            let mut again = connect_from("127.0.0.2", addr).await;
            if let Ok(r) = exchange(&mut again, ORU, wait).await {
                break r;
            }
            // The server may not have seen the close yet: that attempt was refused.
            let ev = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("place given back in time");
            assert_eq!(ev.expect("event").what, ConnRefusal::PeerCap);
        };
        assert_eq!(hl7v2::parse_ack(&r).expect("ack").code, "AA");
        stop.send(true).expect("stop");
        task.await.expect("no panic");
    }
}
