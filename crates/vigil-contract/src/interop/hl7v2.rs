//! HL7 v2.x ER7 messages: a small parser ([`parse`]), the ORU^R01 decoder of IHE PCD-01 and
//! Continua WAN observations ([`decode`]) and acknowledgements ([`ack`], [`ack_for`],
//! [`parse_ack`]).
//!
//! Parsing: segments end with CR (LF and CRLF are accepted too); the field separator and the
//! encoding characters come from MSH-1 and MSH-2; escape sequences `\F\ \S\ \T\ \R\ \E\` and
//! `\Xhh..\` are resolved after splitting. At most [`MAX_PAYLOAD_BYTES`] per message.
//!
//! Decoding (ORU^R01 only, any 2.x version):
//! - **OBX-3** `code^name^MDC` (numeric MDC code, see [`super::vital_from_mdc`] for aliases such
//!   as MDC_TEMP_ORAL) or `code^name^LN` (LOINC). The code decides, the name is not trusted.
//! - **OBX-2** `NM` for vitals; `NA` for waveforms; `MA` is refused. An OBX without value
//!   (containment: MDS/VMD/channel), device attributes (`MDC_ATTR_*`, MDC partitions 1, 3 and 8,
//!   code 0) and non-numeric OBX (CWE, ST, DTM, ...) whose code is no vital are skipped without a
//!   reject. A numeric OBX Vigil does not know is rejected (`UnknownCode`); a value without a
//!   value type, a vital in a non-`NM` type, or `NaN`/`Infinity`/exponents in an `NM` value are
//!   rejected (`Invalid`).
//! - **OBX-5**: a blank value is "no reading" (`None`). **A 0 is also "no reading" for HR,
//!   SpO2, RR, NIBP (sys/dia/mean) and temperature** ([`ZERO_IS_NO_READING`]): monitors and
//!   gateways send 0 when a parameter is not measured; PR and etCO2 keep 0; a 0 weight or
//!   glucose is outside its plausible range and rejected. The IEEE 11073 FLOAT
//!   special values NaN (8388607) and NRes (±8388608) are "no reading" too.
//! - **OBX-6** units: UCUM (`/min`, `%`, `mm[Hg]`, `Cel`, `[degF]`, `kg`, `[lb_av]`, `mg/dL`,
//!   `mmol/L`, ...) or MDC unit codes (`264864^MDC_DIM_BEAT_PER_MIN^MDC`,
//!   `266560^MDC_DIM_FAHR^MDC`, `264274^MDC_DIM_MILLI_G_PER_DL^MDC`, ...), converted to Vigil's
//!   unit (98.6 °F → 37.0 °C, pounds → kg, glucose mmol/L → mg/dL); an incompatible or missing
//!   unit rejects the OBX.
//! - **OBX-11**: F → final, C → corrected, P and R (results entered, not verified) →
//!   preliminary, X (cannot be obtained) → cancelled with value `None`, D and W →
//!   entered-in-error, anything else (also blank) → unknown. Only final and corrected alarm.
//! - **Time**: OBX-14, else OBX-19, else the nearest containing OBX (by OBX-4 containment id,
//!   e.g. `1.0.1` for `1.0.1.1`; digits and dots, at most 64 characters, 8 levels searched) with
//!   a time, else OBR-7 of the OBX's OBR, else MSH-7. HL7 TS
//!   `YYYY[MM[DD[HH[MM[SS[.S...]]]]]][±ZZZZ]`; a time without offset takes MSH-7's offset, else
//!   UTC. An unreadable or absurd time (year outside [`super::YEAR_RANGE`]) rejects the OBX (in
//!   MSH-7: the message).
//! - **Device**: the first non-empty OBX-18 (EI: the universal id, component 3, when present,
//!   else the entity id, component 1 — `0123456789ABCDEF^EUI-64` and
//!   `1305815835^123254BCD^0123456789ABCDEF^EUI-64` both give `0123456789ABCDEF`), else MSH-3
//!   (HD: the universal id, component 2, else the namespace id). A vital whose own or inherited
//!   OBX-18 names another device is rejected (`DeviceMismatch`).
//! - **Location**: PV1-3 point of care, room and bed joined with `/` (`3 WEST ICU/3001/1`).
//! - **Waveforms** (`NA`, channel by MDC code, e.g. pleth 150452): the sample rate must come from
//!   a child OBX following the wave (containment id of the wave + `.n`, as in IHE PCD WCM)
//!   `MDC_ATTR_SAMP_RATE` (code 0 allowed) in Hz or per second,
//!   or `MDC_ATTR_TIME_PD_SAMP` (67981) in s, ms or µs. Without it the waveform is rejected
//!   (rate is never guessed). Blank array entries are gaps (the samples are split around them);
//!   decimals are quantised exactly as for FHIR SampledData. `t0` is the OBX time. Waveforms
//!   with status X, D or W are rejected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    channel_from_mdc, chunk_samples, clean_device_id, conversion, convert_reading, parse_decimal,
    quantise, truncate, vital_from_loinc, vital_from_mdc, Target, UnitRef, YEAR_RANGE,
};
use crate::codes::{ChannelInfo, Vital};
use crate::telemetry::{Batch, DecodeError, ObsStatus, Reading, Samples, MAX_PAYLOAD_BYTES};

/// Vitals for which an HL7 NM value of 0 means "no reading" rather than a measurement.
pub const ZERO_IS_NO_READING: [Vital; 7] = [
    Vital::Hr,
    Vital::SpO2,
    Vital::Rr,
    Vital::NibpSys,
    Vital::NibpDia,
    Vital::NibpMean,
    Vital::Temp,
];

/// Most segments accepted in one message.
pub const MAX_SEGMENTS: usize = 10_000;
/// Most OBX segments accepted in one message.
pub const MAX_OBX: usize = 4096;

/// Containment ids longer than this are ignored (no inheritance through them).
const MAX_CONTAINMENT_ID: usize = 64;
/// Containment levels searched for an inherited time or device.
const MAX_CONTAINMENT_DEPTH: usize = 8;

/// MDC_ATTR_TIME_PD_SAMP: sample period of a waveform.
const MDC_ATTR_TIME_PD_SAMP: u32 = 67981;

// ---------------------------------------------------------------------------------------------
// Parsing

/// The separators of one message (MSH-1 and MSH-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    /// `None` when MSH-2 declares no escape character.
    pub escape: Option<char>,
    pub subcomponent: char,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: '|',
            component: '^',
            repetition: '~',
            escape: Some('\\'),
            subcomponent: '&',
        }
    }
}

impl Delimiters {
    /// Resolve escape sequences in one leaf value (after splitting).
    pub fn unescape(&self, s: &str) -> String {
        let Some(e) = self.escape else {
            return s.to_string();
        };
        if !s.contains(e) {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find(e) {
            out.push_str(&rest[..start]);
            let after = &rest[start + e.len_utf8()..];
            let Some(end) = after.find(e) else {
                out.push_str(&rest[start..]);
                return out;
            };
            let seq = &after[..end];
            match seq {
                "F" => out.push(self.field),
                "S" => out.push(self.component),
                "T" => out.push(self.subcomponent),
                "R" => out.push(self.repetition),
                "E" => out.push(e),
                "H" | "N" => {}
                ".br" => out.push('\n'),
                x if x.len() > 1 && (x.starts_with('X') || x.starts_with('x')) => {
                    match hex_bytes(&x[1..]) {
                        Some(bytes) => match String::from_utf8(bytes) {
                            Ok(t) => out.push_str(&t),
                            Err(e) => out.extend(e.into_bytes().into_iter().map(char::from)),
                        },
                        None => {
                            out.push(e);
                            out.push_str(seq);
                            out.push(e);
                        }
                    }
                }
                _ => {
                    out.push(e);
                    out.push_str(seq);
                    out.push(e);
                }
            }
            rest = &after[end + e.len_utf8()..];
        }
        out.push_str(rest);
        out
    }

    /// Escape a text for use as one leaf value; control characters (CR, LF, ...) become spaces.
    pub fn escape(&self, s: &str) -> String {
        let e = self.escape.unwrap_or('\\');
        let mut out = String::with_capacity(s.len());
        for ch in s.chars() {
            let code = if ch == self.field {
                Some('F')
            } else if ch == self.component {
                Some('S')
            } else if ch == self.subcomponent {
                Some('T')
            } else if ch == self.repetition {
                Some('R')
            } else if ch == e {
                Some('E')
            } else {
                None
            };
            match code {
                Some(c) => {
                    out.push(e);
                    out.push(c);
                    out.push(e);
                }
                None if ch.is_control() => out.push(' '),
                None => out.push(ch),
            }
        }
        out
    }
}

fn hex_bytes(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 || h.len() > 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect()
}

/// One segment: its id and raw (still escaped) fields, numbered as in HL7 (for MSH, field 1 is
/// the field separator and field 2 the encoding characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: String,
    fields: Vec<String>,
    delims: Delimiters,
}

impl Segment {
    /// Field `n` raw (escaped, with its repetitions and components); "" when absent.
    pub fn field(&self, n: usize) -> &str {
        self.fields.get(n).map_or("", String::as_str)
    }

    /// Components of the first repetition of field `n`, unescaped.
    pub fn components(&self, n: usize) -> Vec<String> {
        let d = &self.delims;
        let first = self.field(n).split(d.repetition).next().unwrap_or("");
        first.split(d.component).map(|c| d.unescape(c)).collect()
    }

    /// Component `c` (1-based) of the first repetition of field `n`, unescaped; "" when absent.
    pub fn component(&self, n: usize, c: usize) -> String {
        let d = &self.delims;
        let first = self.field(n).split(d.repetition).next().unwrap_or("");
        first
            .split(d.component)
            .nth(c.saturating_sub(1))
            .map(|v| d.unescape(v))
            .unwrap_or_default()
    }

    /// Whether field `n` has more than one repetition.
    pub fn is_repeated(&self, n: usize) -> bool {
        self.field(n).contains(self.delims.repetition)
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub delimiters: Delimiters,
    pub segments: Vec<Segment>,
}

impl Message {
    /// The first segment with this id.
    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id == id)
    }

    /// The message header (MSH), which [`parse`] guarantees is the first segment.
    pub fn header(&self) -> Header {
        self.segments
            .first()
            .map(Header::from_msh)
            .unwrap_or_default()
    }
}

fn invalid(field: &'static str, why: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        field,
        why: why.into(),
    }
}

/// Read MSH-1 and MSH-2 from the first line.
fn delimiters(line: &str) -> Result<Delimiters, DecodeError> {
    let rest = line
        .strip_prefix("MSH")
        .ok_or_else(|| invalid("MSH", "the message does not start with an MSH segment"))?;
    let mut chars = rest.chars();
    let field = chars
        .next()
        .ok_or_else(|| invalid("MSH-1", "no field separator"))?;
    let enc: Vec<char> = chars.take_while(|&c| c != field).collect();
    let ok_char = |c: char| !(c.is_alphanumeric() || c.is_whitespace() || c.is_control());
    if !ok_char(field) {
        return Err(invalid(
            "MSH-1",
            format!("{field:?} cannot be a field separator"),
        ));
    }
    if !(enc.len() == 4 || enc.len() == 5)
        || enc.iter().any(|&c| !ok_char(c) || c == field)
        || (1..enc.len()).any(|i| enc[..i].contains(&enc[i]))
    {
        return Err(invalid(
            "MSH-2",
            format!(
                "encoding characters {:?} are not 4 or 5 distinct separators",
                truncate(&enc.iter().collect::<String>(), 8)
            ),
        ));
    }
    Ok(Delimiters {
        field,
        component: enc[0],
        repetition: enc[1],
        escape: Some(enc[2]),
        subcomponent: enc[3],
    })
}

fn segment(line: &str, d: Delimiters, n: usize) -> Result<Segment, DecodeError> {
    let mut fields: Vec<String> = line.split(d.field).map(str::to_string).collect();
    let id = fields.first().cloned().unwrap_or_default();
    let b = id.as_bytes();
    let valid_id = b.len() == 3
        && b[0].is_ascii_uppercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !valid_id {
        return Err(invalid(
            "segment",
            format!(
                "segment {n} does not start with a segment id ({:?})",
                truncate(line, 12)
            ),
        ));
    }
    if id == "MSH" {
        fields.insert(1, d.field.to_string());
    }
    Ok(Segment {
        id,
        fields,
        delims: d,
    })
}

fn lines(msg: &str) -> impl Iterator<Item = &str> {
    msg.split(['\r', '\n']).filter(|l| !l.trim().is_empty())
}

/// Parse an ER7 message into segments. Fails when it does not start with a valid MSH, has a
/// line that is not a segment, or is too large.
pub fn parse(msg: &str) -> Result<Message, DecodeError> {
    if msg.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge(msg.len()));
    }
    let msg = msg.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let first = lines(msg)
        .next()
        .ok_or_else(|| invalid("MSH", "empty message"))?;
    let d = delimiters(first)?;
    let mut segments = Vec::new();
    for (i, line) in lines(msg).enumerate() {
        if i >= MAX_SEGMENTS {
            return Err(invalid(
                "segment",
                format!("more than {MAX_SEGMENTS} segments"),
            ));
        }
        segments.push(segment(line, d, i + 1)?);
    }
    Ok(Message {
        delimiters: d,
        segments,
    })
}

/// The parts of MSH that acknowledgements and logs need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// MSH-3 components (HD), unescaped.
    pub sending_application: Vec<String>,
    /// MSH-4 components.
    pub sending_facility: Vec<String>,
    /// MSH-5 components.
    pub receiving_application: Vec<String>,
    /// MSH-6 components.
    pub receiving_facility: Vec<String>,
    /// MSH-7 as sent.
    pub timestamp: String,
    /// MSH-9.1, e.g. `ORU`.
    pub message_type: String,
    /// MSH-9.2, e.g. `R01`.
    pub trigger_event: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-11.1 (`P`, `T`, `D`).
    pub processing_id: String,
    /// MSH-12.1, e.g. `2.6`.
    pub version: String,
}

impl Header {
    fn from_msh(s: &Segment) -> Header {
        Header {
            sending_application: s.components(3),
            sending_facility: s.components(4),
            receiving_application: s.components(5),
            receiving_facility: s.components(6),
            timestamp: s.component(7, 1).trim().to_string(),
            message_type: s.component(9, 1).trim().to_string(),
            trigger_event: s.component(9, 2).trim().to_string(),
            control_id: s.component(10, 1).trim().to_string(),
            processing_id: s.component(11, 1).trim().to_string(),
            version: s.component(12, 1).trim().to_string(),
        }
    }
}

/// Best-effort read of the MSH of a message that may be otherwise broken (to address an ACK).
pub fn header(msg: &str) -> Option<Header> {
    let msg = msg.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let first = lines(msg).next()?;
    let d = delimiters(first).ok()?;
    segment(first, d, 1).ok().map(|s| Header::from_msh(&s))
}

// ---------------------------------------------------------------------------------------------
// Times

/// Parse an HL7 TS/DTM (`YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`) into ms since the Unix
/// epoch. Without an offset in the value, `default_offset_min` (minutes east of UTC) applies,
/// else UTC.
pub fn parse_ts(s: &str, default_offset_min: Option<i32>) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 32 {
        return Err("not an HL7 timestamp".into());
    }
    let (body, offset) = match s.find(['+', '-']) {
        Some(i) => (&s[..i], Some(parse_offset(&s[i..])?)),
        None => (s, None),
    };
    let (digits, frac) = match body.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (body, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
    {
        return Err(format!("{:?} is not an HL7 timestamp", truncate(s, 32)));
    }
    let part = |from: usize, len: usize, default: u32| -> u32 {
        digits
            .get(from..from + len)
            .and_then(|p| p.parse().ok())
            .unwrap_or(default)
    };
    let year = part(0, 4, 0) as i32;
    let (mo, d, h, mi, sec) = (
        part(4, 2, 1),
        part(6, 2, 1),
        part(8, 2, 0),
        part(10, 2, 0),
        part(12, 2, 0),
    );
    let mut ms = 0u32;
    if let Some(f) = frac {
        if digits.len() != 14
            || f.is_empty()
            || f.len() > 4
            || !f.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!("{:?}: bad fraction of a second", truncate(s, 32)));
        }
        let padded = format!("{f:0<3}");
        ms = padded[..3]
            .parse()
            .map_err(|_| "bad fraction".to_string())?;
    }
    if !(YEAR_RANGE.0..=YEAR_RANGE.1).contains(&year) {
        return Err(format!(
            "year {year} is outside {}..={}",
            YEAR_RANGE.0, YEAR_RANGE.1
        ));
    }
    let local = NaiveDate::from_ymd_opt(year, mo, d)
        .and_then(|date| date.and_hms_milli_opt(h, mi, sec, ms))
        .ok_or_else(|| format!("{:?} is not a calendar date and time", truncate(s, 32)))?;
    let offset_min = offset.or(default_offset_min).unwrap_or(0);
    let utc = local.and_utc().timestamp_millis() - i64::from(offset_min) * 60_000;
    Ok(utc)
}

/// `+HHMM` / `-HHMM` → minutes east of UTC.
fn parse_offset(z: &str) -> Result<i32, String> {
    let (sign, hhmm) = match z.as_bytes().first() {
        Some(b'+') => (1, &z[1..]),
        Some(b'-') => (-1, &z[1..]),
        _ => return Err("bad time zone".into()),
    };
    if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("time zone {:?} is not ±HHMM", truncate(z, 8)));
    }
    let h: i32 = hhmm[..2].parse().map_err(|_| "bad time zone".to_string())?;
    let m: i32 = hhmm[2..].parse().map_err(|_| "bad time zone".to_string())?;
    if h > 14 || m > 59 {
        return Err(format!("time zone {:?} is out of range", truncate(z, 8)));
    }
    Ok(sign * (h * 60 + m))
}

/// The offset carried by a TS, if any.
fn ts_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    s.find(['+', '-']).and_then(|i| parse_offset(&s[i..]).ok())
}

// ---------------------------------------------------------------------------------------------
// ORU^R01 decoding

/// One OBX and its context.
struct Obx<'a> {
    seg: &'a Segment,
    /// Index of its OBR group (0 = before any OBR).
    group: usize,
    /// Containment id (OBX-4, raw; "" when absent or unusable).
    cid: &'a str,
}

/// Where a message's OBX inherit times and devices from.
struct Context<'a> {
    obx: Vec<Obx<'a>>,
    /// (group, containment id) → first OBX with it.
    by_cid: HashMap<(usize, &'a str), usize>,
    /// OBR-7 per group (group 0: none).
    obr_time: Vec<String>,
    msh_time: Option<i64>,
    default_offset: Option<i32>,
}

impl<'a> Context<'a> {
    /// OBX of the same group that contain `i` (by containment id), nearest first.
    fn ancestors<'s>(&'s self, i: usize) -> impl Iterator<Item = &'s Obx<'a>> + 's {
        let me = &self.obx[i];
        let group = me.group;
        let mut cid: &'a str = me.cid;
        std::iter::from_fn(move || {
            let cut = cid.rfind('.')?;
            cid = &cid[..cut];
            Some(cid)
        })
        .take(MAX_CONTAINMENT_DEPTH)
        .filter_map(move |c| self.by_cid.get(&(group, c)).map(|&j| &self.obx[j]))
    }

    fn time(&self, i: usize) -> Result<i64, DecodeError> {
        let own = obx_time(self.obx[i].seg);
        let inherited = || self.ancestors(i).find_map(|o| obx_time(o.seg));
        let raw = own.or_else(inherited).or_else(|| {
            self.obr_time
                .get(self.obx[i].group)
                .filter(|t| !t.is_empty())
                .cloned()
        });
        match raw {
            Some(t) => parse_ts(&t, self.default_offset).map_err(|why| invalid("OBX-14", why)),
            None => self
                .msh_time
                .ok_or_else(|| invalid("OBX-14", "no observation time in OBX, OBR or MSH")),
        }
    }

    fn device(&self, i: usize) -> Option<String> {
        obx_device(self.obx[i].seg).or_else(|| self.ancestors(i).find_map(|o| obx_device(o.seg)))
    }
}

/// OBX-4 as a containment id (`1.0.1.1`): digits and dots only, at most
/// [`MAX_CONTAINMENT_ID`] characters; anything else is no containment ("").
fn containment_id(seg: &Segment) -> &str {
    let raw = seg.field(4).trim();
    let ok = !raw.is_empty()
        && raw.len() <= MAX_CONTAINMENT_ID
        && raw.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if ok {
        raw
    } else {
        ""
    }
}

fn obx_time(seg: &Segment) -> Option<String> {
    [14, 19]
        .into_iter()
        .map(|n| seg.component(n, 1).trim().to_string())
        .find(|t| !t.is_empty())
}

/// OBX-18 (EI, first repetition): the universal id when present, else the entity id.
fn obx_device(seg: &Segment) -> Option<String> {
    let c = seg.components(18);
    let universal = c.get(2).map(|s| s.trim()).filter(|s| !s.is_empty());
    let entity = c.first().map(|s| s.trim()).filter(|s| !s.is_empty());
    universal.or(entity).map(str::to_string)
}

/// Decode an ORU^R01 message into a [`Batch`]. Never panics.
///
/// `Err` when the message as a whole is unusable (not HL7, not ORU^R01, too large, absurd
/// MSH-7); otherwise `Ok` with refused OBX in `rejected`.
pub fn decode(msg: &str) -> Result<Batch, DecodeError> {
    let m = parse(msg)?;
    let h = m.header();
    if h.message_type != "ORU" || h.trigger_event != "R01" {
        return Err(invalid(
            "MSH-9",
            format!(
                "{}^{} is not an ORU^R01 observation message",
                truncate(&h.message_type, 8),
                truncate(&h.trigger_event, 8)
            ),
        ));
    }
    if !h.version.starts_with("2.") {
        return Err(invalid(
            "MSH-12",
            format!("version {:?} is not HL7 v2.x", truncate(&h.version, 12)),
        ));
    }
    let default_offset = ts_offset(&h.timestamp);
    let msh_time = if h.timestamp.is_empty() {
        None
    } else {
        Some(parse_ts(&h.timestamp, None).map_err(|why| invalid("MSH-7", why))?)
    };

    let mut batch = Batch::default();
    let mut ctx = Context {
        obx: Vec::new(),
        by_cid: HashMap::new(),
        obr_time: vec![String::new()],
        msh_time,
        default_offset,
    };
    for seg in &m.segments {
        match seg.id.as_str() {
            "PV1" if batch.location.is_none() => batch.location = location(seg),
            "OBR" => ctx.obr_time.push(seg.component(7, 1).trim().to_string()),
            "OBX" => {
                if ctx.obx.len() >= MAX_OBX {
                    return Err(invalid("OBX", format!("more than {MAX_OBX} OBX segments")));
                }
                let group = ctx.obr_time.len() - 1;
                let cid = containment_id(seg);
                if !cid.is_empty() {
                    ctx.by_cid.entry((group, cid)).or_insert(ctx.obx.len());
                }
                ctx.obx.push(Obx { seg, group, cid });
            }
            _ => {}
        }
    }

    // Device: the first OBX-18, else MSH-3.
    let first_obx_device = ctx.obx.iter().find_map(|o| obx_device(o.seg));
    let msh3 = || {
        let c = &h.sending_application;
        let universal = c.get(1).map(|s| s.trim()).filter(|s| !s.is_empty());
        let ns = c.first().map(|s| s.trim()).filter(|s| !s.is_empty());
        universal.or(ns).map(str::to_string)
    };
    match first_obx_device.or_else(msh3).map(|d| clean_device_id(&d)) {
        Some(Ok(d)) => batch.device = d,
        Some(Err(e)) => batch.rejected.push(e),
        None => {}
    }

    for i in 0..ctx.obx.len() {
        match observation(&ctx, i, &batch.device) {
            Ok(Some(Decoded::Reading(r))) => batch.readings.push(r),
            Ok(Some(Decoded::Waves(w))) => batch.waves.extend(w),
            Ok(None) => {}
            Err(e) => batch.rejected.push(e),
        }
    }
    Ok(batch)
}

fn location(pv1: &Segment) -> Option<String> {
    let parts: Vec<String> = pv1
        .components(3)
        .into_iter()
        .take(3)
        .map(|p| {
            p.trim()
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
        })
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| truncate(&parts.join("/"), 128))
}

enum Decoded {
    Reading(Reading),
    Waves(Vec<Samples>),
}

/// Map OBX-11 to a result status.
pub fn status_from_obx11(s: &str) -> ObsStatus {
    match s.trim() {
        "F" => ObsStatus::Final,
        "C" => ObsStatus::Corrected,
        "P" => ObsStatus::Preliminary,
        // "Results entered, not verified": live device data in IHE PCD-01. It must alarm.
        "R" => ObsStatus::Unverified,
        "X" => ObsStatus::Cancelled,
        "D" | "W" => ObsStatus::EnteredInError,
        _ => ObsStatus::Unknown,
    }
}

/// Device attributes and infrastructure codes, which describe rather than measure: MDC
/// partitions 1 (object attributes, `MDC_ATTR_*`), 3 (events) and 8 (device specialisations),
/// code 0 (no code assigned, used with `MDC_ATTR_SAMP_RATE`), and any `MDC_ATTR_*` name.
fn is_descriptive(code: Option<u32>, name: &str) -> bool {
    name.starts_with("MDC_ATTR_")
        || matches!(code, Some(c) if c == 0 || matches!(c >> 16, 1 | 3 | 8))
}

fn observation(
    ctx: &Context,
    i: usize,
    batch_device: &Option<String>,
) -> Result<Option<Decoded>, DecodeError> {
    let seg = ctx.obx[i].seg;
    let set_id = truncate(seg.component(1, 1).trim(), 8);
    let vt = seg.component(2, 1).trim().to_string();
    let code_raw = seg.component(3, 1).trim().to_string();
    let name = seg.component(3, 2).trim().to_string();
    let system = seg.component(3, 3).trim().to_string();
    let value_present = !seg.field(5).trim().is_empty();

    if vt.is_empty() {
        if value_present {
            return Err(invalid(
                "OBX-2",
                format!(
                    "OBX {set_id} ({}): a value without a value type",
                    truncate(&code_raw, 16)
                ),
            ));
        }
        return Ok(None); // containment (MDS, VMD, channel) or header OBX
    }

    let code_num = code_raw.parse::<u32>().ok();
    let target = match system.as_str() {
        "MDC" | "" => code_num.and_then(|n| {
            vital_from_mdc(n)
                .map(Target::Vital)
                .or_else(|| channel_from_mdc(n).map(Target::Channel))
        }),
        "LN" => vital_from_loinc(&code_raw).map(Target::Vital),
        _ => None,
    };
    let unknown = || match (system.as_str(), code_num) {
        ("MDC" | "", Some(n)) => DecodeError::UnknownCode(n),
        _ => invalid(
            "OBX-3",
            format!(
                "OBX {set_id}: code {}^{}^{} is not one Vigil knows",
                truncate(&code_raw, 16),
                truncate(&name, 40),
                truncate(&system, 12)
            ),
        ),
    };
    let what = target.map_or("observation", |t| t.name());

    match (vt.as_str(), target) {
        ("NM", Some(Target::Vital(v))) => {
            numeric(ctx, i, v, batch_device).map(|r| Some(Decoded::Reading(r)))
        }
        ("NA", Some(Target::Channel(ch))) => waveform(ctx, i, ch).map(|w| Some(Decoded::Waves(w))),
        ("MA", Some(Target::Channel(ch))) => Err(invalid(
            "OBX-2",
            format!(
                "OBX {set_id}: {} as a multiplexed array (MA) is not supported",
                ch.name
            ),
        )),
        (_, Some(_)) => Err(invalid(
            "OBX-2",
            format!(
                "OBX {set_id}: value type {} is not supported for {what}",
                truncate(&vt, 8)
            ),
        )),
        ("NM" | "NA" | "MA", None) => {
            if is_descriptive(code_num, &name) {
                Ok(None)
            } else if vt == "NM" {
                Err(unknown())
            } else {
                Err(DecodeError::UnknownChannel(truncate(
                    &format!("{code_raw} {name}"),
                    64,
                )))
            }
        }
        // CWE, ST, DTM, ... that are no vital: context, not measurements.
        (_, None) => Ok(None),
    }
}

/// The 11073 FLOAT special values that mean "no value": NaN and NRes.
fn is_11073_no_value(v: f64) -> bool {
    v == 8_388_607.0 || v == 8_388_608.0 || v == -8_388_608.0
}

fn numeric(
    ctx: &Context,
    i: usize,
    vital: Vital,
    batch_device: &Option<String>,
) -> Result<Reading, DecodeError> {
    let seg = ctx.obx[i].seg;
    let set_id = truncate(seg.component(1, 1).trim(), 8);
    let status_raw = seg.component(11, 1);
    let status = status_from_obx11(&status_raw);
    if let (Some(mine), Some(batch)) = (ctx.device(i), batch_device) {
        if mine != *batch {
            return Err(DecodeError::DeviceMismatch {
                topic: batch.clone(),
                payload: truncate(&mine, 64),
            });
        }
    }
    let value = if status_raw.trim() == "X" {
        None
    } else {
        if seg.is_repeated(5) {
            return Err(invalid(
                "OBX-5",
                format!("OBX {set_id} {}: several values", vital.name()),
            ));
        }
        let raw = seg.component(5, 1);
        let whole = seg.field(5);
        let s = raw.trim();
        if whole.contains(seg.delims.component) {
            return Err(invalid(
                "OBX-5",
                format!(
                    "OBX {set_id} {}: an NM value has no components",
                    vital.name()
                ),
            ));
        }
        if s.is_empty() {
            None
        } else {
            let n = parse_decimal(s, false)
                .and_then(|_| s.parse::<f64>().ok())
                .filter(|n| n.is_finite())
                .ok_or_else(|| {
                    invalid(
                        "OBX-5",
                        format!(
                            "OBX {set_id} {}: {:?} is not an HL7 NM number",
                            vital.name(),
                            truncate(s, 24)
                        ),
                    )
                })?;
            if is_11073_no_value(n) || (n == 0.0 && ZERO_IS_NO_READING.contains(&vital)) {
                None
            } else {
                let (id, sys) = (seg.component(6, 1), seg.component(6, 3));
                Some(convert_reading(vital, n, unit_ref(&id, &sys))?)
            }
        }
    };
    Ok(Reading {
        vital,
        value,
        t_ms: ctx.time(i)?,
        status,
    })
}

/// OBX-6 (CWE `identifier^text^system`) as a unit: MDC when the system is `MDC` (or blank with a
/// numeric identifier), UCUM otherwise.
fn unit_ref<'a>(id: &'a str, system: &str) -> UnitRef<'a> {
    let id = id.trim();
    let system = system.trim();
    let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    if system == "MDC" || (system.is_empty() && numeric) {
        UnitRef::Mdc(id.parse().unwrap_or(0))
    } else {
        UnitRef::Ucum(id)
    }
}

/// The sample period (ms) of waveform OBX `i`, from its child attribute OBX.
fn sample_period_ms(ctx: &Context, i: usize) -> Result<Option<f64>, DecodeError> {
    let me = &ctx.obx[i];
    if me.cid.is_empty() {
        return Ok(None);
    }
    let prefix = format!("{}.", me.cid);
    // Attribute OBX follow their waveform; stop at the first OBX outside it.
    let children = ctx.obx[i + 1..]
        .iter()
        .take_while(|o| o.group == me.group && o.cid.starts_with(&prefix))
        .filter(|o| !o.cid[prefix.len()..].is_empty() && !o.cid[prefix.len()..].contains('.'));
    for o in children {
        let code = o.seg.component(3, 1).trim().parse::<u32>().ok();
        let name = o.seg.component(3, 2);
        let is_rate = name.trim() == "MDC_ATTR_SAMP_RATE";
        let is_period =
            code == Some(MDC_ATTR_TIME_PD_SAMP) || name.trim() == "MDC_ATTR_TIME_PD_SAMP";
        if !(is_rate || is_period) {
            continue;
        }
        let raw = o.seg.component(5, 1);
        let v = parse_decimal(&raw, false)
            .and_then(|_| raw.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                invalid(
                    "OBX-5",
                    format!(
                        "sample rate/period {:?} is not a positive number",
                        truncate(&raw, 24)
                    ),
                )
            })?;
        let unit = o.seg.component(6, 1);
        let unit = unit.trim();
        let period = match (is_rate, unit) {
            (true, "Hz" | "/s" | "264640" | "264608") => 1000.0 / v,
            (false, "s" | "264320") => v * 1000.0,
            (false, "ms" | "264338") => v,
            (false, "us" | "264339") => v / 1000.0,
            _ => {
                return Err(DecodeError::Unit {
                    what: "sample rate".into(),
                    got: truncate(unit, 32),
                    expected: if is_rate { "Hz" } else { "ms" },
                })
            }
        };
        return Ok(Some(period));
    }
    Ok(None)
}

fn waveform(
    ctx: &Context,
    i: usize,
    ch: &'static ChannelInfo,
) -> Result<Vec<Samples>, DecodeError> {
    let seg = ctx.obx[i].seg;
    let set_id = truncate(seg.component(1, 1).trim(), 8);
    let status = status_from_obx11(&seg.component(11, 1));
    if matches!(status, ObsStatus::Cancelled | ObsStatus::EnteredInError) {
        return Err(invalid(
            "OBX-11",
            format!(
                "OBX {set_id}: waveform {} with status {} is not displayed",
                ch.name,
                status.as_str()
            ),
        ));
    }
    if seg.is_repeated(5) {
        return Err(invalid("OBX-5", format!("OBX {set_id}: repeated NA value")));
    }
    let period = sample_period_ms(ctx, i)?.ok_or_else(|| {
        invalid(
            "OBX-5",
            format!(
                "OBX {set_id}: waveform {} has no sample rate (no MDC_ATTR_SAMP_RATE or \
                 MDC_ATTR_TIME_PD_SAMP child OBX); not decoded",
                ch.name
            ),
        )
    })?;
    let mut tokens = Vec::new();
    for c in seg.components(5) {
        let c = c.trim();
        tokens.push(if c.is_empty() {
            None
        } else {
            Some(parse_decimal(c, false).ok_or_else(|| {
                invalid(
                    "OBX-5",
                    format!(
                        "OBX {set_id}: sample {:?} is not an HL7 NM number",
                        truncate(c, 24)
                    ),
                )
            })?)
        });
    }
    if tokens.iter().all(Option::is_none) {
        return Err(invalid(
            "OBX-5",
            format!("OBX {set_id}: waveform without samples"),
        ));
    }
    let (id, sys) = (seg.component(6, 1), seg.component(6, 3));
    let conv = if id.trim().is_empty() {
        super::Conversion {
            scale: 1.0,
            offset: 0.0,
        }
    } else {
        conversion(unit_ref(&id, &sys), ch.unit, ch.name)?
    };
    let q = quantise(&tokens).map_err(|why| invalid("OBX-5", why))?;
    chunk_samples(ch, ctx.time(i)?, period, conv.offset, conv.scale, &q)
        .map_err(|why| invalid("OBX-5", why))
}

// ---------------------------------------------------------------------------------------------
// Acknowledgements

/// Acknowledgement code (MSA-1, original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Application accept: the message was stored.
    AA,
    /// Application error: understood but refused by the station (ERR says why).
    AE,
    /// Application reject: the message could not be parsed or is not supported.
    AR,
}

impl AckCode {
    /// The MSA-1 code.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
        }
    }
}

/// Sending application Vigil names in an ACK when the original named no receiver.
pub const VIGIL_APPLICATION: &str = "VIGIL";

static ACK_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A v2.6 ACK for a message of which only the control id is known (Vigil as sending application).
pub fn ack(msg_control_id: &str, code: AckCode, error: Option<&str>, now: DateTime<Utc>) -> String {
    ack_for(
        &Header {
            control_id: msg_control_id.to_string(),
            ..Header::default()
        },
        code,
        error,
        now,
    )
}

/// A v2.6 ACK answering `original`: MSH with the original's sending and receiving application
/// and facility swapped (Vigil's own name when the original named no receiver), a fresh control
/// id and the time `now` (the caller's clock); MSA with `code` and the original control id; for AE and AR an ERR
/// with HL7 table 0357 code 207 (application internal error: the station refused) or 102 (data
/// type error: the message could not be decoded), severity E, and `error` as the user message.
/// Segments end with CR.
pub fn ack_for(
    original: &Header,
    code: AckCode,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let d = Delimiters::default();
    let hd = |c: &[String]| {
        let s: Vec<String> = c.iter().map(|x| d.escape(&truncate(x, 64))).collect();
        let joined = s.join("^");
        joined.trim_end_matches('^').to_string()
    };
    let mut sending_app = hd(&original.receiving_application);
    if sending_app.is_empty() {
        sending_app = VIGIL_APPLICATION.to_string();
    }
    let n = ACK_COUNTER.fetch_add(1, Ordering::Relaxed) % 10_000;
    let control = format!("V{}{n:04}", now.format("%Y%m%d%H%M%S"));
    let trigger = &original.trigger_event;
    let msg_type = if !trigger.is_empty()
        && trigger.len() <= 3
        && trigger.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        format!("ACK^{trigger}^ACK")
    } else {
        "ACK".to_string()
    };
    let processing = match original.processing_id.as_str() {
        p @ ("P" | "T" | "D") => p,
        _ => "P",
    };
    let mut out = format!(
        "MSH|^~\\&|{sending_app}|{}|{}|{}|{}||{msg_type}|{control}|{processing}|2.6|||NE|NE\r",
        hd(&original.receiving_facility),
        hd(&original.sending_application),
        hd(&original.sending_facility),
        now.format("%Y%m%d%H%M%S%.3f+0000"),
    );
    out.push_str(&format!(
        "MSA|{}|{}\r",
        code.as_str(),
        d.escape(&truncate(&original.control_id, 199))
    ));
    let err = match code {
        AckCode::AA => None,
        AckCode::AE => Some("207^Application internal error^HL70357"),
        AckCode::AR => Some("102^Data type error^HL70357"),
    };
    if let Some(err) = err {
        let text = error.unwrap_or(match code {
            AckCode::AE => "refused by the station",
            _ => "message could not be decoded",
        });
        out.push_str(&format!(
            "ERR|||{err}|E||||{}\r",
            d.escape(&truncate(text, 250))
        ));
    }
    out
}

/// The text of every refusal by the station ([`refusal`]).
pub const REFUSAL_TEXT: &str = "message refused by the station";

/// The one reply to a message the station refuses (AE, ERR 207, [`REFUSAL_TEXT`]): the same
/// whatever the reason — unknown, disabled or another sender's device — so that it tells a
/// prober nothing about which devices exist. The reason is logged and counted, never sent.
pub fn refusal(original: &Header, now: DateTime<Utc>) -> String {
    ack_for(original, AckCode::AE, Some(REFUSAL_TEXT), now)
}

/// What an ACK says.
#[derive(Debug, Clone, PartialEq)]
pub struct AckInfo {
    /// MSA-1 (AA, AE, AR, CA, CE, CR).
    pub code: String,
    /// MSA-2: the control id of the acknowledged message.
    pub control_id: String,
    /// The error text: ERR-8, else ERR-7, else ERR-3 text or code, else MSA-3.
    pub error: Option<String>,
}

/// Read an ACK message.
pub fn parse_ack(msg: &str) -> Result<AckInfo, DecodeError> {
    let m = parse(msg)?;
    let h = m.header();
    if h.message_type != "ACK" {
        return Err(invalid(
            "MSH-9",
            format!("{} is not an ACK", truncate(&h.message_type, 8)),
        ));
    }
    let msa = m
        .segment("MSA")
        .ok_or_else(|| invalid("MSA", "ACK without MSA segment"))?;
    let err = m.segment("ERR");
    let nonempty = |s: String| {
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    let error = err
        .and_then(|e| {
            nonempty(e.component(8, 1))
                .or_else(|| nonempty(e.component(7, 1)))
                .or_else(|| nonempty(e.component(3, 2)))
                .or_else(|| nonempty(e.component(3, 1)))
        })
        .or_else(|| nonempty(msa.component(3, 1)));
    Ok(AckInfo {
        code: msa.component(1, 1).trim().to_string(),
        control_id: msa.component(2, 1).trim().to_string(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSH: &str = "MSH|^~\\&|GW^0011223344556677^EUI-64|FAC|RCV|RFAC|20261123100000+0100||ORU^R01^ORU_R01|C1|P|2.6";

    fn msg(obx: &[&str]) -> String {
        let mut s = format!("{MSH}\rPID|||1\rOBR|1|||x|||20261123100000+0100\r");
        for o in obx {
            s.push_str(o);
            s.push('\r');
        }
        s
    }

    fn dec(s: &str) -> Batch {
        decode(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// 2026-11-23T09:00:00Z
    const T: i64 = 1_795_424_400_000;

    #[test]
    fn parser_handles_delimiters_and_escapes() {
        let m =
            parse("MSH#*!$%#A*B#C\nPID#1#x$F$y$S$z$T$w$R$v$E$u$X41$#a*b!c*d\r\n").expect("parse");
        assert_eq!(m.delimiters.field, '#');
        assert_eq!(m.delimiters.component, '*');
        let msh = &m.segments[0];
        assert_eq!(msh.field(1), "#");
        assert_eq!(msh.field(2), "*!$%");
        assert_eq!(msh.component(3, 2), "B");
        let pid = m.segment("PID").expect("pid");
        assert_eq!(pid.component(2, 1), "x#y*z%w!v$uA");
        assert_eq!(pid.components(3), vec!["a", "b"]);
        assert!(pid.is_repeated(3));
        assert_eq!(pid.component(9, 1), "");
        let d = Delimiters::default();
        assert_eq!(d.unescape(r"a\F\b\S\c\T\d\R\e\E\f\H\g\N\"), "a|b^c&d~e\\fg");
        assert_eq!(d.unescape(r"broken\F"), r"broken\F");
        assert_eq!(d.unescape(r"\Zunknown\"), r"\Zunknown\");
        assert_eq!(d.unescape(r"\XC3A9\"), "é");
        assert_eq!(d.escape("a|b^c&d~e\\f\rg"), r"a\F\b\S\c\T\d\R\e\E\f g");
        for bad in [
            "",
            "   ",
            "PID|1",
            "MSH",
            "MSH|",
            "MSH|^~",
            "MSH|^^\\&|",
            "MSHA^~\\&",
            "MSH|^~\\&|\rpid|1",
            "MSH|^~\\&|\rP\u{0}D|1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_ts("20261123100000+0100", None), Ok(T));
        assert_eq!(parse_ts("20261123090000", None), Ok(T));
        assert_eq!(
            parse_ts("20261123100000", Some(60)),
            Ok(T),
            "MSH offset applies"
        );
        assert_eq!(parse_ts("20261123090000.25+0000", None), Ok(T + 250));
        assert_eq!(parse_ts("202611230900", None), Ok(T));
        assert_eq!(parse_ts("20261123", None), Ok(T - 9 * 3_600_000));
        assert_eq!(parse_ts("2026", None), Ok(1_767_225_600_000));
        assert_eq!(parse_ts("20261123043000-0430", None), Ok(T));
        for bad in [
            "",
            "2026112",
            "20261323",
            "20260230",
            "20261123250000",
            "00000101",
            "99991231",
            "2026112309000",
            "20261123090000+1",
            "20261123090000+2400",
            "20261123090000.12345",
            "2026.5",
            "NaN",
            "2026-11-23",
            "20261123090000.+0000",
        ] {
            assert!(parse_ts(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numerics_units_statuses_and_no_reading() {
        let b = dec(&msg(&[
            "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F",
            "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2|0|%|||||F",
            "OBX|3|NM|151562^MDC_RESP_RATE^MDC|1.3||/min|||||F",
            "OBX|4|NM|188424^MDC_TEMP_ORAL^MDC|1.4|98.6|266560^MDC_DIM_FAHR^MDC|||||C|||20261123090500+0000",
            "OBX|5|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.5|0|/min^/min^UCUM|||||P",
            "OBX|6|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.6|120|mm[Hg]|||||X",
            "OBX|7|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.7|80|mm[Hg]|||||W",
            "OBX|8|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.8|8388607|mm[Hg]|||||D",
            "OBX|9|NM|8867-4^Heart rate^LN|1.9|61|/min|||||I",
        ]));
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        assert_eq!(
            b.device.as_deref(),
            Some("0011223344556677"),
            "MSH-3 universal id"
        );
        let got: Vec<_> = b
            .readings
            .iter()
            .map(|r| (r.vital, r.value, r.status))
            .collect();
        assert_eq!(
            got,
            vec![
                (Vital::Hr, Some(72.0), ObsStatus::Final),
                (Vital::SpO2, None, ObsStatus::Final),
                (Vital::Rr, None, ObsStatus::Final),
                (Vital::Temp, Some(37.0), ObsStatus::Corrected),
                (Vital::Pr, Some(0.0), ObsStatus::Preliminary),
                (Vital::NibpSys, None, ObsStatus::Cancelled),
                (Vital::NibpDia, Some(80.0), ObsStatus::EnteredInError),
                (Vital::NibpMean, None, ObsStatus::EnteredInError),
                (Vital::Hr, Some(61.0), ObsStatus::Unknown),
            ]
        );
        assert_eq!(b.readings[0].t_ms, T, "OBR-7");
        assert_eq!(b.readings[3].t_ms, T + 300_000, "OBX-14");
        let alarmable: Vec<bool> = b.readings.iter().map(Reading::alarmable).collect();
        assert_eq!(
            alarmable,
            [true, false, false, true, false, false, false, false, false]
        );
    }

    #[test]
    fn home_scale_and_glucose_meter() {
        let b = dec(&msg(&[
            "OBX|1||528399^MDC_DEV_SPEC_PROFILE_SCALE^MDC|1|||||||X|||||||SCALE1^EUI-64",
            "OBX|2|NM|188736^MDC_MASS_BODY_ACTUAL^MDC|1.0.0.1|176.4|263904^MDC_DIM_LB^MDC|||||R|||20261123090000+0000",
            "OBX|3|NM|188736^MDC_MASS_BODY_ACTUAL^MDC|1.0.0.2|80.2|kg^kg^UCUM|||||F",
            "OBX|4|NM|188736^MDC_MASS_BODY_ACTUAL^MDC|1.0.0.3|0|kg|||||F",
            "OBX|5|NM|160184^MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD^MDC|1.0.0.4|5.5|266866^MDC_DIM_MILLI_MOLE_PER_L^MDC|||||F",
            "OBX|6|NM|160184^MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD^MDC|1.0.0.5|112|264274^MDC_DIM_MILLI_G_PER_DL^MDC|||||F",
            "OBX|7|NM|160184^MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD^MDC|1.0.0.6|112|kg|||||F",
        ]));
        let got: Vec<_> = b
            .readings
            .iter()
            .map(|r| (r.vital, r.value, r.status))
            .collect();
        assert_eq!(
            got,
            [
                (Vital::Weight, Some(80.013694), ObsStatus::Unverified),
                (Vital::Weight, Some(80.2), ObsStatus::Final),
                (Vital::Glucose, Some(99.088), ObsStatus::Final),
                (Vital::Glucose, Some(112.0), ObsStatus::Final),
            ]
        );
        assert_eq!(b.readings[0].t_ms, T, "OBX-14");
        assert_eq!(b.device.as_deref(), Some("SCALE1"));
        // A 0 kg weight is no reading Vigil can store as 0: refused and counted, never dropped.
        let reasons: Vec<_> = b.rejected.iter().map(DecodeError::reason).collect();
        assert_eq!(reasons, ["out_of_range", "bad_unit"]);
    }

    #[test]
    fn bad_obx_rejected_others_kept() {
        let b = dec(&msg(&[
            "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1|NaN|/min|||||F|||||||DEV1",
            "OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2|Infinity|/min|||||F",
            "OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|1.3|1e2|/min|||||F",
            "OBX|4|NM|147842^MDC_ECG_HEART_RATE^MDC|1.4|72|%|||||F",
            "OBX|5|NM|147842^MDC_ECG_HEART_RATE^MDC|1.5|72||||||F",
            "OBX|6|NM|147842^MDC_ECG_HEART_RATE^MDC|1.6|720|/min|||||F",
            "OBX|7|NM|160220^MDC_CONC_HBA1C^MDC|1.7|5|%|||||F",
            "OBX|8|ST|147842^MDC_ECG_HEART_RATE^MDC|1.8|72|/min|||||F",
            "OBX|9||147842^MDC_ECG_HEART_RATE^MDC|1.9|72|/min|||||F",
            "OBX|10|NM|147842^MDC_ECG_HEART_RATE^MDC|1.10|72~73|/min|||||F",
            "OBX|11|NM|147842^MDC_ECG_HEART_RATE^MDC|1.11|72|/min|||||F|||99991231",
            "OBX|12|NM|147842^MDC_ECG_HEART_RATE^MDC|1.12|72|/min|||||F|||||||OTHERDEVICE",
            "OBX|13|NM|147842^MDC_ECG_HEART_RATE^MDC|1.13|72^1|/min|||||F",
            "OBX|14|NM|X1^Local^L|1.14|72|/min|||||F",
            "OBX|15|CWE|68220^MDC_TIME_SYNC_PROTOCOL^MDC|0.0.0.1|532224^MDC_TIME_SYNC_NONE^MDC|||||R",
            "OBX|16|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.16.1|125|264640^MDC_DIM_HZ^MDC|||||R",
            "OBX|17|NM|147842^MDC_ECG_HEART_RATE^MDC|1.17|65|/min|||||F",
        ]));
        let reasons: Vec<_> = b.rejected.iter().map(DecodeError::reason).collect();
        assert_eq!(
            reasons,
            [
                "invalid_field",
                "invalid_field",
                "invalid_field",
                "bad_unit",
                "bad_unit",
                "out_of_range",
                "unknown_code",
                "invalid_field",
                "invalid_field",
                "invalid_field",
                "invalid_field",
                "device_mismatch",
                "invalid_field",
                "invalid_field",
            ]
        );
        assert_eq!(b.readings.len(), 1);
        assert_eq!(b.readings[0].value, Some(65.0));
        assert_eq!(
            b.device.as_deref(),
            Some("DEV1"),
            "the first OBX-18 names the device"
        );
    }

    #[test]
    fn waveform_needs_a_rate() {
        let with_rate = msg(&[
            "OBX|1|NA|150452^MDC_PULS_OXIM_PLETH^MDC|1.0.0.2|12^123^^24.5|262656^MDC_DIM_DIMLESS^MDC|||||R|||20261123090001+0000",
            "OBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.0.0.2.1|125|264640^MDC_DIM_HZ^MDC|||||R",
        ]);
        let b = dec(&with_rate);
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        assert_eq!(b.waves.len(), 2);
        assert_eq!(b.waves[0].channel.name, "PLETH");
        assert_eq!(b.waves[0].rate, 125.0);
        assert_eq!(b.waves[0].t0_ms, T + 1000);
        assert_eq!(b.waves[0].data, vec![120, 1230]);
        assert_eq!(b.waves[1].data, vec![245]);
        assert_eq!(b.waves[1].t0_ms, T + 1000 + 24, "3rd sample at 8 ms each");
        assert!((b.waves[0].factor - 0.1).abs() < 1e-15);
        let period = with_rate.replace(
            "0^MDC_ATTR_SAMP_RATE^MDC|1.0.0.2.1|125|264640^MDC_DIM_HZ^MDC",
            "67981^MDC_ATTR_TIME_PD_SAMP^MDC|1.0.0.2.1|2|264338^MDC_DIM_MILLI_SEC^MDC",
        );
        assert_eq!(dec(&period).waves[0].rate, 500.0);
        let bad_unit = with_rate.replace("264640^MDC_DIM_HZ^MDC", "/min");
        assert_eq!(dec(&bad_unit).rejected[0].reason(), "bad_unit");
        let no_rate = msg(&["OBX|1|NA|150452^MDC_PULS_OXIM_PLETH^MDC|1.0.0.2|1^2^3|262656^MDC_DIM_DIMLESS^MDC|||||R"]);
        let b = dec(&no_rate);
        assert!(b.waves.is_empty());
        assert!(
            b.rejected[0].to_string().contains("no sample rate"),
            "{}",
            b.rejected[0]
        );
        let ecg_mv = msg(&[
            "OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.1|0.1^-0.25|266418^MDC_DIM_MILLI_VOLT^MDC|||||F",
            "OBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.1.1|500|Hz|||||F",
            "OBX|3|MA|131329^MDC_ECG_ELEC_POTL_I^MDC|1.2|1^2~3^4|mV|||||F",
            "OBX|4|NA|999^MDC_SOMETHING^MDC|1.3|1^2|mV|||||F",
        ]);
        let b = dec(&ecg_mv);
        assert_eq!(b.waves[0].data, vec![10, -25]);
        let reasons: Vec<_> = b.rejected.iter().map(DecodeError::reason).collect();
        assert_eq!(reasons, ["invalid_field", "unknown_channel"]);
    }

    #[test]
    fn whole_message_errors() {
        for (m, field) in [
            ("MSH|^~\\&|A||||20261123||ADT^A01|1|P|2.6\r", "MSH-9"),
            ("MSH|^~\\&|A||||20261123||ORU^R01|1|P|3.0\r", "MSH-12"),
            ("MSH|^~\\&|A||||99991231||ORU^R01|1|P|2.6\r", "MSH-7"),
            ("garbage", "MSH"),
        ] {
            match decode(m) {
                Err(DecodeError::Invalid { field: f, .. }) => assert_eq!(f, field, "{m:?}"),
                other => panic!("{m:?}: {other:?}"),
            }
        }
        assert_eq!(
            decode(&"MSH|^~\\&|".repeat(30_000)).map_err(|e| e.reason()),
            Err("too_large")
        );
    }

    #[test]
    fn large_messages_stay_fast_and_bounded() {
        let deep = vec!["1"; 30].join(".");
        let obx = format!("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|{deep}|72|/min|||||F");
        let many: Vec<&str> = vec![obx.as_str(); 2000];
        let started = std::time::Instant::now();
        let b = dec(&msg(&many));
        assert_eq!(b.readings.len(), 2000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let tiny = "OBX|1|NM|1^X^MDC|1|1|/min";
        let e = decode(&msg(&vec![tiny; MAX_OBX + 1])).expect_err("too many OBX");
        assert!(e.to_string().contains("OBX segments"), "{e}");
    }

    #[test]
    fn ack_swaps_parties_and_escapes() {
        let h = header(MSH).expect("header");
        assert_eq!(h.control_id, "C1");
        let a = ack_for(&h, AckCode::AA, None, Utc::now());
        let segs: Vec<&str> = a.split('\r').filter(|s| !s.is_empty()).collect();
        assert_eq!(segs.len(), 2, "{a}");
        let f: Vec<&str> = segs[0].split('|').collect();
        assert_eq!(
            &f[2..6],
            ["RCV", "RFAC", "GW^0011223344556677^EUI-64", "FAC"]
        );
        assert_eq!(f[8], "ACK^R01^ACK");
        assert!(f[9].starts_with('V') && f[9].len() == 19, "{}", f[9]);
        assert_eq!(f[11], "2.6");
        assert_eq!(segs[1], "MSA|AA|C1");
        let a = ack_for(&h, AckCode::AE, Some("bed|unknown^\r"), Utc::now());
        let info = parse_ack(&a).expect("parse ack");
        assert_eq!(info.code, "AE");
        assert_eq!(info.control_id, "C1");
        assert_eq!(info.error.as_deref(), Some("bed|unknown^"));
        assert!(a.contains("ERR|||207^"));
        let a = ack("X9", AckCode::AR, None, Utc::now());
        assert!(a.starts_with("MSH|^~\\&|VIGIL|"), "{a}");
        assert!(a.contains("|ACK|"), "{a}");
        assert!(a.contains("MSA|AR|X9\r"));
        assert!(a.contains("ERR|||102^"));
        let b = ack_for(&h, AckCode::AA, None, Utc::now());
        assert_ne!(
            parse(&a).expect("a").header().control_id,
            parse(&b).expect("b").header().control_id,
            "fresh control ids"
        );
    }
}
