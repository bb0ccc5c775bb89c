//! MLLP (Minimal Lower Layer Protocol) for HL7 v2 over TCP: framing ([`FrameDecoder`],
//! [`frame`]) and a bounded server ([`serve`]) that decodes each message with
//! [`hl7v2::decode`], hands it to the engine and answers with an ACK.
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
//! Bounds: at most [`ServeOptions::max_connections`] connections (more are closed at once), an
//! idle timeout per connection, a write timeout, a frame size cap, and bounded waits on the
//! engine. Nothing here panics on any input.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use super::hl7v2::{self, AckCode, Header};
use crate::telemetry::{Batch, DecodeError};

/// Start of a frame.
pub const START_BLOCK: u8 = 0x0B;
/// End of a frame (followed by [`CARRIAGE_RETURN`]).
pub const END_BLOCK: u8 = 0x1C;
/// Last byte of a frame.
pub const CARRIAGE_RETURN: u8 = 0x0D;
/// Largest frame accepted, in bytes.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// How much of an oversize frame is kept to address the AR.
const PREFIX_BYTES: usize = 4096;

/// Wrap a message in an MLLP frame.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 3);
    out.push(START_BLOCK);
    out.extend_from_slice(msg);
    out.push(END_BLOCK);
    out.push(CARRIAGE_RETURN);
    out
}

/// What the frame decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// A complete frame's content (without the framing bytes).
    Frame(Vec<u8>),
    /// A frame grew beyond the limit and is being dropped; `prefix` is its beginning.
    TooLarge { prefix: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a frame: bytes are skipped until a start byte.
    Idle,
    InFrame,
    /// Dropping the rest of an oversize frame until its end byte.
    Discarding,
}

/// Incremental MLLP frame decoder; memory is bounded by the frame limit.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    state: State,
    max: usize,
}

impl FrameDecoder {
    /// A decoder for frames of at most `max_frame` bytes of content.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            state: State::Idle,
            max: max_frame,
        }
    }

    /// Bytes of the current, incomplete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feed bytes as they arrive; returns the frames (and oversize events) they complete.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<FrameEvent> {
        let mut out = Vec::new();
        while !data.is_empty() {
            match self.state {
                State::Idle => match data.iter().position(|&b| b == START_BLOCK) {
                    Some(p) => {
                        data = &data[p + 1..];
                        self.buf.clear();
                        self.state = State::InFrame;
                    }
                    None => data = &[],
                },
                State::InFrame => {
                    let stop = data
                        .iter()
                        .position(|&b| b == END_BLOCK || b == START_BLOCK);
                    let take = stop.unwrap_or(data.len());
                    if self.buf.len() + take > self.max {
                        let mut prefix: Vec<u8> =
                            self.buf[..self.buf.len().min(PREFIX_BYTES)].to_vec();
                        let more = PREFIX_BYTES.saturating_sub(prefix.len()).min(take);
                        prefix.extend_from_slice(&data[..more]);
                        out.push(FrameEvent::TooLarge { prefix });
                        self.buf = Vec::new();
                        self.state = State::Discarding;
                        continue;
                    }
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if let Some((&b, rest)) = data.split_first() {
                        data = rest;
                        if b == END_BLOCK {
                            out.push(FrameEvent::Frame(std::mem::take(&mut self.buf)));
                            // The CR after the end byte is skipped as bytes outside a frame.
                            self.state = State::Idle;
                        } else {
                            // A start byte inside a frame: the sender started over.
                            self.buf.clear();
                        }
                    }
                }
                State::Discarding => match data.iter().position(|&b| b == END_BLOCK) {
                    Some(p) => {
                        data = &data[p + 1..];
                        self.state = State::Idle;
                    }
                    None => data = &[],
                },
            }
        }
        out
    }
}

/// One message received over MLLP, for the engine. The engine answers on `reply`: `Ok(())`
/// when it took the message (the sender gets AA), `Err(reason)` when it refused it (AE with the
/// reason). For a `batch` that is `Err` the sender has already been answered AR; the reply is
/// ignored.
#[derive(Debug)]
pub struct MllpMessage {
    pub peer: SocketAddr,
    pub batch: Result<Batch, DecodeError>,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// Limits of the MLLP server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
    /// Longest wait for the engine to take a message and to answer it.
    pub engine_timeout: Duration,
    /// Longest wait to write an ACK.
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 64,
            idle_timeout: Duration::from_secs(60),
            max_frame_bytes: MAX_FRAME_BYTES,
            engine_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
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
                Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (sink, opts) = (sink.clone(), opts.clone());
                        conns.spawn(async move {
                            let _permit = permit;
                            connection(stream, peer, sink, conn_stop, opts).await;
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, max = opts.max_connections, "MLLP connection refused: too many connections");
                        drop(stream);
                    }
                },
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

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    sink: mpsc::Sender<MllpMessage>,
    mut stop: watch::Receiver<bool>,
    opts: ServeOptions,
) {
    let _ = stream.set_nodelay(true);
    tracing::debug!(%peer, "MLLP connection opened");
    let mut decoder = FrameDecoder::new(opts.max_frame_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        if *stop.borrow() {
            break;
        }
        let n = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            r = tokio::time::timeout(opts.idle_timeout, stream.read(&mut buf)) => match r {
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
        for event in decoder.push(&buf[..n]) {
            match event {
                FrameEvent::Frame(bytes) => {
                    if let Some(reply) = handle_frame(peer, &bytes, &sink, &opts).await {
                        if write_frame(&mut stream, &reply, &opts).await.is_err() {
                            break 'conn;
                        }
                    }
                }
                FrameEvent::TooLarge { prefix } => {
                    tracing::warn!(%peer, max = opts.max_frame_bytes, "MLLP frame too large; answering AR and closing");
                    let h = hl7v2::header(&text_of(&prefix)).unwrap_or_default();
                    let why = format!("frame exceeds {} bytes", opts.max_frame_bytes);
                    let reply = hl7v2::ack_for(&h, AckCode::AR, Some(&why));
                    let _ = write_frame(&mut stream, &reply, &opts).await;
                    break 'conn;
                }
            }
        }
    }
    let _ = tokio::time::timeout(opts.write_timeout, stream.shutdown()).await;
    tracing::debug!(%peer, "MLLP connection closed");
}

async fn write_frame(
    stream: &mut TcpStream,
    msg: &str,
    opts: &ServeOptions,
) -> std::io::Result<()> {
    let framed = frame(msg.as_bytes());
    match tokio::time::timeout(opts.write_timeout, stream.write_all(&framed)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "ACK write timed out",
        )),
    }
}

/// Decode one frame, give it to the engine and build the reply (`None`: no reply).
async fn handle_frame(
    peer: SocketAddr,
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
        sink.send(MllpMessage { peer, batch, reply }),
    )
    .await;
    if is_ack {
        tracing::debug!(%peer, "MLLP: an ACK received as a message; not acknowledged");
        return None;
    }
    if let Some((reason, why)) = decode_error {
        tracing::warn!(%peer, reason, error = %why, control_id = %h.control_id, "HL7 message rejected");
        return Some(hl7v2::ack_for(&h, AckCode::AR, Some(&why)));
    }
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            return Some(hl7v2::ack_for(
                &h,
                AckCode::AE,
                Some("the station is not accepting messages"),
            ))
        }
        Err(_) => {
            return Some(hl7v2::ack_for(
                &h,
                AckCode::AE,
                Some("the station is busy; message not taken in time"),
            ))
        }
    }
    let (code, why) = match tokio::time::timeout(opts.engine_timeout, answer).await {
        Ok(Ok(Ok(()))) => (AckCode::AA, None),
        Ok(Ok(Err(reason))) => (AckCode::AE, Some(reason)),
        Ok(Err(_)) => (
            AckCode::AE,
            Some("the station dropped the message".to_string()),
        ),
        Err(_) => (
            AckCode::AE,
            Some("the station did not answer in time".to_string()),
        ),
    };
    Some(hl7v2::ack_for(&h, code, why.as_deref()))
}

/// A minimal MLLP client exchange (for tests and tools): send `message` framed on `stream` and
/// read one reply frame, waiting at most `max_wait`.
pub async fn exchange(
    stream: &mut TcpStream,
    message: &str,
    max_wait: Duration,
) -> std::io::Result<String> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "no MLLP reply in time");
    tokio::time::timeout(max_wait, stream.write_all(&frame(message.as_bytes())))
        .await
        .map_err(|_| timed_out())??;
    read_reply(stream, max_wait).await
}

/// Read one frame from `stream` (for tests and tools).
pub async fn read_reply(stream: &mut TcpStream, max_wait: Duration) -> std::io::Result<String> {
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

    fn frames(events: Vec<FrameEvent>) -> Vec<Vec<u8>> {
        events
            .into_iter()
            .map(|e| match e {
                FrameEvent::Frame(f) => f,
                FrameEvent::TooLarge { .. } => b"<too large>".to_vec(),
            })
            .collect()
    }

    #[test]
    fn partial_reads_byte_by_byte() {
        let mut d = FrameDecoder::new(1024);
        let wire = frame(b"MSH|one\rPID|1");
        let mut got = Vec::new();
        for b in &wire {
            got.extend(frames(d.push(std::slice::from_ref(b))));
        }
        assert_eq!(got, vec![b"MSH|one\rPID|1".to_vec()]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn several_frames_garbage_and_restarts() {
        let mut d = FrameDecoder::new(1024);
        let mut wire = b"garbage\r\n\x1c\r".to_vec();
        wire.extend(frame(b"A"));
        wire.extend(frame(b"B"));
        wire.extend(b"\x0bhalf-sent\x0bC\x1c"); // restart inside a frame; end without CR
        wire.extend(b"noise");
        wire.extend(frame(b""));
        wire.extend(b"\x0bpartial");
        assert_eq!(
            frames(d.push(&wire)),
            vec![b"A".to_vec(), b"B".to_vec(), b"C".to_vec(), Vec::new()]
        );
        assert_eq!(d.buffered(), 7);
        assert_eq!(frames(d.push(b" end\x1c\r")), vec![b"partial end".to_vec()]);
    }

    #[test]
    fn oversize_frame_dropped_then_recovers() {
        let mut d = FrameDecoder::new(16);
        let mut events = d.push(b"\x0bMSH|^~\\&|0123456789");
        events.extend(d.push(b"more and more"));
        assert_eq!(events.len(), 1);
        let FrameEvent::TooLarge { prefix } = &events[0] else {
            panic!("{events:?}")
        };
        assert!(prefix.starts_with(b"MSH|^~\\&|"));
        assert_eq!(d.buffered(), 0, "nothing kept while discarding");
        let events = d.push(b"tail\x1c\r\x0bok\x1c\r");
        assert_eq!(frames(events), vec![b"ok".to_vec()]);
        // Exactly at the limit is fine.
        assert_eq!(frames(d.push(&frame(&[b'x'; 16]))), vec![vec![b'x'; 16]]);
    }

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
}
