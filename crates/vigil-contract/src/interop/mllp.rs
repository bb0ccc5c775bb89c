//! MLLP (Minimal Lower Layer Protocol) framing for HL7 v2 over a byte stream: [`frame`] wraps a
//! message, [`FrameDecoder`] finds the messages in what a connection delivers. No sockets: the
//! server that reads connections lives in the engine (`vigil_core::interop::mllp`).
//!
//! A frame is `0x0B` message `0x1C 0x0D`. The decoder copes with partial reads and several frames
//! per read, skips bytes outside frames (garbage before a start byte), restarts on a start byte
//! inside a frame (a sender that gave up on a frame and began again), and accepts a frame ended
//! by `0x1C` alone. A frame larger than its limit ([`MAX_FRAME_BYTES`] by default) is dropped and
//! reported as [`FrameEvent::TooLarge`] with the frame's beginning (to address the refusal).

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
    /// Bytes other than CR / LF were skipped outside a frame since the last frame ended.
    noise: bool,
}

impl FrameDecoder {
    /// A decoder for frames of at most `max_frame` bytes of content.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            state: State::Idle,
            max: max_frame,
            noise: false,
        }
    }

    /// Something was received that no frame has completed yet: part of a frame, or bytes
    /// other than line ends outside a frame. The server gives such a connection a deadline.
    pub fn pending(&self) -> bool {
        self.state != State::Idle || self.noise
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
                State::Idle => {
                    let p = data.iter().position(|&b| b == START_BLOCK);
                    let skipped = &data[..p.unwrap_or(data.len())];
                    if skipped.iter().any(|&b| b != b'\r' && b != b'\n') {
                        self.noise = true;
                    }
                    match p {
                        Some(p) => {
                            data = &data[p + 1..];
                            self.buf.clear();
                            self.state = State::InFrame;
                        }
                        None => data = &[],
                    }
                }
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
                            self.noise = false;
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
                        self.noise = false;
                    }
                    None => data = &[],
                },
            }
        }
        out
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
}
