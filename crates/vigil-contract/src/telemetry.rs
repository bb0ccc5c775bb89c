//! Telemetry contract v1: MQTT topics and JSON payloads, decoding with typed errors, and the
//! encoders devices (and the simulator) use. The normative description is `docs/telemetry.md`;
//! keep the two in step.
//!
//! Topic tree: `vigil/v1/{ward}/{bed}/{device}/{stream}` where stream is `vitals`, `status`,
//! `wave/{channel}`, `fhir`, `hl7v2` or `dose` ([`crate::dose`]). Decoding never panics: every
//! failure is a [`DecodeError`] whose [`DecodeError::reason`] is a stable key for the reject
//! counters.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codes::{self, ChannelInfo, Vital};

/// Version carried in every payload (`"v": 1`) and in the topic root.
pub const CONTRACT_VERSION: u32 = 1;
/// First two topic levels of contract v1.
pub const TOPIC_ROOT: &str = "vigil/v1";
/// Largest payload accepted, in bytes. A 1 s chunk of 500 Hz ECG is about 4 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Most samples accepted in one waveform chunk.
pub const MAX_CHUNK_SAMPLES: usize = 20_000;
/// Most observations accepted in one vitals message.
pub const MAX_OBSERVATIONS: usize = 256;
/// Highest waveform sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: f64 = 10_000.0;

/// Why a payload (or one observation in it) was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DecodeError {
    #[error("topic {0:?} is not a contract v1 telemetry topic")]
    Topic(String),
    #[error("payload of {0} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")]
    TooLarge(usize),
    #[error("malformed JSON payload: {0}")]
    Json(String),
    #[error("unsupported contract version {0}")]
    Version(u32),
    #[error("payload device {payload:?} does not match topic device {topic:?}")]
    DeviceMismatch { topic: String, payload: String },
    #[error("unknown waveform channel {0:?}")]
    UnknownChannel(String),
    #[error("channel {payload:?} in payload does not match topic channel {topic:?}")]
    ChannelMismatch { topic: String, payload: String },
    #[error("unknown observation code MDC {0}")]
    UnknownCode(u32),
    #[error("unit {got:?} for {what} where {expected:?} is required")]
    Unit {
        what: String,
        got: String,
        expected: &'static str,
    },
    #[error("{what} = {value} is outside the plausible range {lo}..={hi}")]
    OutOfRange {
        what: String,
        value: f64,
        lo: f64,
        hi: f64,
    },
    #[error("invalid field {field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("device {0:?} is not in the device registry")]
    UnknownDevice(String),
    #[error("device {device:?} is registered to bed {registered}, not {topic}")]
    BedMismatch {
        device: String,
        registered: String,
        topic: String,
    },
    /// An MLLP peer sent a message as a device it may not speak for (`[ingest.mllp_peers]`).
    /// `bed`: the bed the device is registered to, if it is.
    #[error("MLLP peer {peer} may not speak for device {device:?}{}", bed.as_ref().map(|b| format!(" (registered to bed {b})")).unwrap_or_default())]
    ForeignDevice {
        device: String,
        peer: String,
        bed: Option<String>,
    },
    #[error("time {t_ms} is {skew_s:.0} s away from the station clock (limit {limit_s} s)")]
    ClockSkew {
        t_ms: i64,
        skew_s: f64,
        limit_s: i64,
    },
    /// The same message (sequence number and content) again: a redelivery, nothing new.
    #[error("message {seq} from device {device:?} already received")]
    Duplicate { device: String, seq: u64 },
    /// A sequence number repeated with other content, or gone back without a device restart.
    #[error("replayed message: sequence {seq} from device {device:?} after {last}")]
    Replay { device: String, seq: u64, last: u64 },
}

impl DecodeError {
    /// Stable short key for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Topic(_) => "bad_topic",
            DecodeError::TooLarge(_) => "too_large",
            DecodeError::Json(_) => "malformed",
            DecodeError::Version(_) => "bad_version",
            DecodeError::DeviceMismatch { .. } => "device_mismatch",
            DecodeError::UnknownChannel(_) => "unknown_channel",
            DecodeError::ChannelMismatch { .. } => "channel_mismatch",
            DecodeError::UnknownCode(_) => "unknown_code",
            DecodeError::Unit { .. } => "bad_unit",
            DecodeError::OutOfRange { .. } => "out_of_range",
            DecodeError::Invalid { .. } => "invalid_field",
            DecodeError::UnknownDevice(_) => "unknown_device",
            DecodeError::BedMismatch { .. } => "bed_mismatch",
            DecodeError::ForeignDevice { .. } => "foreign_device",
            DecodeError::ClockSkew { .. } => "clock_skew",
            DecodeError::Duplicate { .. } => "duplicate",
            DecodeError::Replay { .. } => "replay",
        }
    }
}

/// A bed on a ward: the unit of display and of alarm evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BedId {
    pub ward: String,
    pub bed: String,
}

impl BedId {
    pub fn new(ward: impl Into<String>, bed: impl Into<String>) -> Self {
        BedId {
            ward: ward.into(),
            bed: bed.into(),
        }
    }

    /// `ward/bed`, unique across the station.
    pub fn key(&self) -> String {
        format!("{}/{}", self.ward, self.bed)
    }

    /// The one parser of a bed key as users, the window and the command line give it
    /// (`ward/bed`): both levels must be valid topic levels ([`valid_segment`]), so a bed
    /// accepted here is one a device's topic can name.
    pub fn parse(key: &str) -> Result<BedId, IdError> {
        match key.split_once('/') {
            Some((ward, bed)) if valid_segment(ward) && valid_segment(bed) => {
                Ok(BedId::new(ward, bed))
            }
            _ => Err(IdError::Bed(truncate(key, 80))),
        }
    }
}

/// A ward, bed or device id that is not a valid telemetry topic level.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error(
        "not a bed: {0:?} (expected ward/bed, e.g. 4W/12; each 1–64 letters, digits, '.', '_', \
         '-', not starting with '_')"
    )]
    Bed(String),
    #[error(
        "not a device id: {0:?} (1–64 letters, digits, '.', '_', '-', not starting with '_': \
         the device level of its telemetry topics)"
    )]
    Device(String),
    #[error("not a ward: {0:?} (1–64 letters, digits, '.', '_', '-', not starting with '_')")]
    Ward(String),
}

/// A device id as the telemetry contract allows it (the device level of its topics): built
/// only by [`DeviceId::parse`], so a device registered under it can be matched by a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(id: &str) -> Result<DeviceId, IdError> {
        if valid_segment(id) {
            Ok(DeviceId(id.to_string()))
        } else {
            Err(IdError::Device(truncate(id, 80)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A ward name as IT configures it (the broker subscription's ward level).
pub fn parse_ward(ward: &str) -> Result<&str, IdError> {
    if valid_segment(ward) {
        Ok(ward)
    } else {
        Err(IdError::Ward(truncate(ward, 80)))
    }
}

impl std::fmt::Display for BedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ward, self.bed)
    }
}

/// The kind of data on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    Vitals,
    Status,
    Wave(String),
    /// HL7 FHIR R4 Observation (or Bundle) JSON from the device.
    Fhir,
    /// HL7 v2 ORU^R01 (IHE PCD-01) from the device.
    Hl7v2,
    /// A medication dispenser's dose event ([`crate::dose`]).
    Dose,
}

/// A parsed telemetry topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub bed: BedId,
    pub device: String,
    pub stream: Stream,
}

/// Topic levels (ward, bed, device, channel): 1–64 characters of `A-Z a-z 0-9 . _ -`,
/// never an MQTT wildcard, never starting with `_` (reserved for station topics).
pub fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

impl Topic {
    pub fn parse(topic: &str) -> Result<Topic, DecodeError> {
        let bad = || DecodeError::Topic(truncate(topic, 200));
        let rest = topic
            .strip_prefix(TOPIC_ROOT)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let stream = match parts.as_slice() {
            [_, _, _, "vitals"] => Stream::Vitals,
            [_, _, _, "status"] => Stream::Status,
            [_, _, _, "fhir"] => Stream::Fhir,
            [_, _, _, "hl7v2"] => Stream::Hl7v2,
            [_, _, _, "dose"] => Stream::Dose,
            [_, _, _, "wave", ch] if valid_segment(ch) => Stream::Wave((*ch).to_string()),
            _ => return Err(bad()),
        };
        let (ward, bed, device) = (parts[0], parts[1], parts[2]);
        if !(valid_segment(ward) && valid_segment(bed) && valid_segment(device)) {
            return Err(bad());
        }
        Ok(Topic {
            bed: BedId::new(ward, bed),
            device: device.to_string(),
            stream,
        })
    }

    pub fn vitals(bed: &BedId, device: &str) -> String {
        format!("{TOPIC_ROOT}/{}/{}/{device}/vitals", bed.ward, bed.bed)
    }

    pub fn status(bed: &BedId, device: &str) -> String {
        format!("{TOPIC_ROOT}/{}/{}/{device}/status", bed.ward, bed.bed)
    }

    pub fn fhir(bed: &BedId, device: &str) -> String {
        format!("{TOPIC_ROOT}/{}/{}/{device}/fhir", bed.ward, bed.bed)
    }

    pub fn hl7v2(bed: &BedId, device: &str) -> String {
        format!("{TOPIC_ROOT}/{}/{}/{device}/hl7v2", bed.ward, bed.bed)
    }

    pub fn dose(bed: &BedId, device: &str) -> String {
        format!("{TOPIC_ROOT}/{}/{}/{device}/dose", bed.ward, bed.bed)
    }

    pub fn wave(bed: &BedId, device: &str, channel: &str) -> String {
        format!(
            "{TOPIC_ROOT}/{}/{}/{device}/wave/{channel}",
            bed.ward, bed.bed
        )
    }
}

/// The subscription filter for one ward, or for every ward when `ward` is `None`.
pub fn subscription_filter(ward: Option<&str>) -> String {
    match ward {
        Some(w) => format!("{TOPIC_ROOT}/{w}/#"),
        None => format!("{TOPIC_ROOT}/#"),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire payloads (JSON). Unknown fields are ignored so that minor additions stay compatible.

/// `vitals` payload: numerics measured by one device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VitalsPayload {
    pub v: u32,
    pub device: String,
    /// Message time (RFC 3339); the time of each observation unless it has its own.
    pub t: DateTime<Utc>,
    /// Per-device message sequence number.
    pub seq: u64,
    pub obs: Vec<ObservationPayload>,
}

impl VitalsPayload {
    /// A contract-v1 message with one final reading of `vital` in its canonical unit (probes,
    /// tests and benchmarks).
    pub fn single(device: &str, seq: u64, t: DateTime<Utc>, vital: Vital, value: f64) -> Self {
        VitalsPayload {
            v: CONTRACT_VERSION,
            device: device.into(),
            t,
            seq,
            obs: vec![ObservationPayload {
                mdc: vital.mdc(),
                value: Some(value),
                unit: vital.info().unit.into(),
                t: None,
                status: ObsStatus::default(),
            }],
        }
    }
}

/// One numeric observation inside a [`VitalsPayload`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObservationPayload {
    /// IEEE 11073 MDC code (numeric form).
    pub mdc: u32,
    /// The value in `unit`; `null` means "no reading" (sensor off, not measured).
    pub value: Option<f64>,
    /// UCUM unit.
    pub unit: String,
    /// Measurement time when it differs from the message time (e.g. the last NIBP cuff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<DateTime<Utc>>,
    /// Result status; default `final`. Only final, amended and corrected readings alarm.
    #[serde(default, skip_serializing_if = "is_final")]
    pub status: ObsStatus,
}

fn is_final(s: &ObsStatus) -> bool {
    *s == ObsStatus::Final
}

/// `wave/{channel}` payload: a chunk of samples, modelled on FHIR SampledData.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WavePayload {
    pub v: u32,
    pub device: String,
    pub channel: String,
    pub unit: String,
    /// Time of the first sample.
    pub t0: DateTime<Utc>,
    /// Samples per second.
    pub rate: f64,
    /// Per-device, per-channel chunk sequence number; a jump is a gap.
    pub seq: u64,
    /// Physical value = origin + factor × data\[i\].
    #[serde(default)]
    pub origin: f64,
    pub factor: f64,
    pub data: Vec<i32>,
}

impl WavePayload {
    /// A contract-v1 ECG II chunk at 500 Hz, samples in µV (factor 0.001 mV, origin 0), its first
    /// sample at `t0` (probes, tests and benchmarks).
    pub fn ecg_ii(device: &str, seq: u64, t0: DateTime<Utc>, data: Vec<i32>) -> Self {
        WavePayload {
            v: CONTRACT_VERSION,
            device: device.into(),
            channel: "ECG_II".into(),
            unit: "mV".into(),
            t0,
            rate: 500.0,
            seq,
            origin: 0.0,
            factor: 0.001,
            data,
        }
    }
}

/// `status` payload: retained by the broker, and the device's MQTT last will (`offline`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusPayload {
    pub v: u32,
    pub device: String,
    pub state: DeviceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<DateTime<Utc>>,
    /// Technical conditions the device reports, e.g. `leads-off`, `sensor-off`, `low-battery`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Online,
    Offline,
}

// ---------------------------------------------------------------------------------------------
// Decoded domain messages.

/// A decoded telemetry message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Vitals(Vitals),
    Wave(WaveChunk),
    Status(DeviceStatus),
    /// An interoperability message (FHIR, HL7 v2) received on a device's topic; the engine
    /// checks the device and expands it into vitals and waveform chunks.
    Batch {
        bed: BedId,
        device: String,
        batch: Batch,
    },
    /// A dispenser's dose event.
    Dose(crate::dose::DoseEvent),
}

/// Numerics from one `vitals` message. Observations that failed validation are in `rejected`;
/// the good ones are kept. The engine moves readings too old to alarm on to `late` (stored as
/// history, shown as late, never evaluated by alarms: `ingest::ReadingGate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Vitals {
    pub bed: BedId,
    pub device: String,
    pub seq: u64,
    pub readings: Vec<Reading>,
    pub rejected: Vec<DecodeError>,
    pub late: Vec<Reading>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub vital: Vital,
    /// `None` = no reading.
    pub value: Option<f64>,
    /// Measurement time, ms since the Unix epoch.
    pub t_ms: i64,
    /// Result status as the source reported it (FHIR `status`, HL7 OBX-11).
    pub status: ObsStatus,
}

impl Reading {
    /// A final reading with a value (or none), the common case of live monitoring.
    pub fn new(vital: Vital, value: Option<f64>, t_ms: i64) -> Self {
        Reading {
            vital,
            value,
            t_ms,
            status: ObsStatus::Final,
        }
    }

    /// Whether alarms may be raised or cleared on this reading: it has a value and its status
    /// is final, amended or corrected. Preliminary, cancelled and entered-in-error results are
    /// stored but never alarmed on.
    pub fn alarmable(&self) -> bool {
        self.value.is_some() && self.status.alarmable()
    }
}

/// The status of a result (FHIR ObservationStatus; HL7 v2 OBX-11 maps onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ObsStatus {
    #[default]
    Final,
    Amended,
    Corrected,
    Preliminary,
    /// Device data not verified by a person (HL7 OBX-11 `R`): what bedside monitors and
    /// gateways send in real time (IHE PCD-01). Alarmable, or live device data would never alarm.
    Unverified,
    Registered,
    Cancelled,
    EnteredInError,
    Unknown,
}

impl ObsStatus {
    /// Every status, in declaration order.
    pub const ALL: [ObsStatus; 9] = [
        ObsStatus::Final,
        ObsStatus::Amended,
        ObsStatus::Corrected,
        ObsStatus::Preliminary,
        ObsStatus::Unverified,
        ObsStatus::Registered,
        ObsStatus::Cancelled,
        ObsStatus::EnteredInError,
        ObsStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObsStatus::Final => "final",
            ObsStatus::Amended => "amended",
            ObsStatus::Corrected => "corrected",
            ObsStatus::Preliminary => "preliminary",
            ObsStatus::Unverified => "unverified",
            ObsStatus::Registered => "registered",
            ObsStatus::Cancelled => "cancelled",
            ObsStatus::EnteredInError => "entered-in-error",
            ObsStatus::Unknown => "unknown",
        }
    }

    pub fn alarmable(self) -> bool {
        matches!(
            self,
            ObsStatus::Final | ObsStatus::Amended | ObsStatus::Corrected | ObsStatus::Unverified
        )
    }
}

/// What an interoperability decoder (FHIR R4, HL7 v2 / IHE PCD-01) produces: readings and
/// waveform samples keyed by the sending device, before the engine maps the device to a bed
/// (through the device registry) and validates it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Device identifier from the message (FHIR `Observation.device`, HL7 OBX-18 / MSH-3), if any.
    pub device: Option<String>,
    /// Location from the message (HL7 PV1-3), if any; informational.
    pub location: Option<String>,
    pub readings: Vec<Reading>,
    pub waves: Vec<Samples>,
    /// Parts of the message that were refused; the rest is kept.
    pub rejected: Vec<DecodeError>,
}

/// Waveform samples from an interoperability message (FHIR SampledData, HL7 NA/MA OBX).
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub channel: &'static ChannelInfo,
    pub t0_ms: i64,
    pub rate: f64,
    pub origin: f64,
    pub factor: f64,
    pub data: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WaveChunk {
    pub bed: BedId,
    pub device: String,
    pub channel: &'static ChannelInfo,
    /// UCUM unit of the physical values: the channel's unit, or "1" for normalised signals.
    pub unit: &'static str,
    /// Time of the first sample, ms since the Unix epoch.
    pub t0_ms: i64,
    pub rate: f64,
    pub seq: u64,
    pub origin: f64,
    pub factor: f64,
    pub data: Vec<i32>,
}

impl WaveChunk {
    /// Physical value of sample `i`.
    pub fn value(&self, i: usize) -> Option<f64> {
        self.data
            .get(i)
            .map(|&d| self.origin + self.factor * f64::from(d))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    pub bed: BedId,
    pub device: String,
    pub online: bool,
    pub t_ms: Option<i64>,
    pub conditions: Vec<String>,
}

pub(crate) fn parse_json<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError::Json(truncate(&e.to_string(), 200)))
}

pub(crate) fn check_header(
    version: u32,
    topic_device: &str,
    device: &str,
) -> Result<(), DecodeError> {
    if version != CONTRACT_VERSION {
        return Err(DecodeError::Version(version));
    }
    if device != topic_device {
        return Err(DecodeError::DeviceMismatch {
            topic: topic_device.to_string(),
            payload: truncate(device, 64),
        });
    }
    Ok(())
}

pub(crate) fn decode_vitals(
    bed: BedId,
    device: String,
    payload: &[u8],
) -> Result<Vitals, DecodeError> {
    let p: VitalsPayload = parse_json(payload)?;
    check_header(p.v, &device, &p.device)?;
    if p.obs.len() > MAX_OBSERVATIONS {
        return Err(DecodeError::Invalid {
            field: "obs",
            why: format!("{} observations, at most {MAX_OBSERVATIONS}", p.obs.len()),
        });
    }
    let t_msg = p.t.timestamp_millis();
    let mut readings = Vec::with_capacity(p.obs.len());
    let mut rejected = Vec::new();
    for o in &p.obs {
        match check_observation(o, t_msg) {
            Ok(r) => readings.push(r),
            Err(e) => rejected.push(e),
        }
    }
    Ok(Vitals {
        bed,
        device,
        seq: p.seq,
        readings,
        rejected,
        late: Vec::new(),
    })
}

fn check_observation(o: &ObservationPayload, t_msg: i64) -> Result<Reading, DecodeError> {
    let vital = Vital::from_mdc(o.mdc).ok_or(DecodeError::UnknownCode(o.mdc))?;
    let info = vital.info();
    if o.unit != info.unit {
        return Err(DecodeError::Unit {
            what: info.name.to_string(),
            got: truncate(&o.unit, 32),
            expected: info.unit,
        });
    }
    if let Some(v) = o.value {
        let (lo, hi) = info.plausible;
        if !(lo..=hi).contains(&v) {
            return Err(DecodeError::OutOfRange {
                what: info.name.to_string(),
                value: v,
                lo,
                hi,
            });
        }
    }
    Ok(Reading {
        vital,
        value: o.value,
        t_ms: o.t.map_or(t_msg, |t| t.timestamp_millis()),
        status: o.status,
    })
}

pub(crate) fn decode_wave(
    bed: BedId,
    device: &str,
    topic_channel: &str,
    payload: &[u8],
) -> Result<WaveChunk, DecodeError> {
    let p: WavePayload = parse_json(payload)?;
    check_header(p.v, device, &p.device)?;
    let channel = codes::channel(topic_channel)
        .ok_or_else(|| DecodeError::UnknownChannel(truncate(topic_channel, 64)))?;
    if p.channel != topic_channel {
        return Err(DecodeError::ChannelMismatch {
            topic: topic_channel.to_string(),
            payload: truncate(&p.channel, 64),
        });
    }
    let unit = if p.unit == channel.unit {
        channel.unit
    } else if p.unit == "1" {
        // A normalised (unitless) recording of the channel, e.g. research datasets.
        "1"
    } else {
        return Err(DecodeError::Unit {
            what: channel.name.to_string(),
            got: truncate(&p.unit, 32),
            expected: channel.unit,
        });
    };
    if !(p.rate.is_finite() && p.rate > 0.0 && p.rate <= MAX_SAMPLE_RATE) {
        return Err(DecodeError::Invalid {
            field: "rate",
            why: format!("{} Hz is not in (0, {MAX_SAMPLE_RATE}]", p.rate),
        });
    }
    if !(p.factor.is_finite() && p.factor != 0.0 && p.origin.is_finite()) {
        return Err(DecodeError::Invalid {
            field: "factor",
            why: "factor must be finite and non-zero, origin finite".into(),
        });
    }
    if p.data.is_empty() || p.data.len() > MAX_CHUNK_SAMPLES {
        return Err(DecodeError::Invalid {
            field: "data",
            why: format!(
                "{} samples, between 1 and {MAX_CHUNK_SAMPLES} required",
                p.data.len()
            ),
        });
    }
    // A finite factor can still scale a sample to infinity (factor 1e308, sample -2).
    if p.data
        .iter()
        .any(|&d| !(p.origin + p.factor * f64::from(d)).is_finite())
    {
        return Err(DecodeError::Invalid {
            field: "factor",
            why: "origin + factor × sample overflows to infinity".into(),
        });
    }
    Ok(WaveChunk {
        bed,
        device: device.to_string(),
        channel,
        unit,
        t0_ms: p.t0.timestamp_millis(),
        rate: p.rate,
        seq: p.seq,
        origin: p.origin,
        factor: p.factor,
        data: p.data,
    })
}

pub(crate) fn decode_status(
    bed: BedId,
    device: String,
    payload: &[u8],
) -> Result<DeviceStatus, DecodeError> {
    let p: StatusPayload = parse_json(payload)?;
    check_header(p.v, &device, &p.device)?;
    if p.conditions.len() > 32 || p.conditions.iter().any(|c| !valid_segment(c)) {
        return Err(DecodeError::Invalid {
            field: "conditions",
            why: "at most 32 conditions, each a short token".into(),
        });
    }
    Ok(DeviceStatus {
        bed,
        device,
        online: p.state == DeviceState::Online,
        t_ms: p.t.map(|t| t.timestamp_millis()),
        conditions: p.conditions,
    })
}

/// At most `max` bytes of `s` (on a character boundary), with an ellipsis when cut (the one
/// cut of every decoder's error text).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Milliseconds since the Unix epoch to a UTC time (clamped to the representable range).
pub fn utc_from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    /// `ObsStatus::ALL` is every status once, in order (the last variant closes the list).
    #[test]
    fn every_result_status_is_listed_once() {
        assert_eq!(ObsStatus::ALL.len(), ObsStatus::Unknown as usize + 1);
        for (i, s) in ObsStatus::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
        let alarmable: Vec<&str> = ObsStatus::ALL
            .into_iter()
            .filter(|s| s.alarmable())
            .map(ObsStatus::as_str)
            .collect();
        assert_eq!(alarmable, ["final", "amended", "corrected", "unverified"]);
    }

    /// One parser for bed keys and one for device ids: what they accept is exactly what a
    /// topic can carry.
    #[test]
    fn bed_and_device_ids_parse_as_topic_levels() {
        assert_eq!(BedId::parse("4W/03"), Ok(BedId::new("4W", "03")));
        for bad in [
            "", "4W", "/03", "4W/", "4W/03/x", "4W/_03", "_st/03", "4W/+", "#/03", "4W/0 3",
            "4W/\n",
        ] {
            assert!(matches!(BedId::parse(bad), Err(IdError::Bed(_))), "{bad:?}");
        }
        assert!(BedId::parse(&format!("4W/{}", "b".repeat(65))).is_err());
        for bad in ["_mon", "", "mon 1", "a/b", "+", "é"] {
            assert!(
                matches!(DeviceId::parse(bad), Err(IdError::Device(_))),
                "{bad:?}"
            );
        }
        let d = DeviceId::parse("mon-1.a_b").expect("valid");
        assert_eq!(d.as_str(), "mon-1.a_b");
        assert!(
            parse_ward("4W").is_ok() && parse_ward("+").is_err() && parse_ward("4W/1").is_err()
        );
    }

    const VITALS_OK: &str = r#"{"v":1,"device":"mon-1","t":"2026-11-23T10:00:00.250Z","seq":7,
        "obs":[{"mdc":147842,"value":72,"unit":"/min"},
               {"mdc":150456,"value":null,"unit":"%"},
               {"mdc":150021,"value":118,"unit":"mm[Hg]","t":"2026-11-23T09:58:00Z"}]}"#;

    fn wave_json(channel: &str, unit: &str, rate: f64, data: &str) -> String {
        format!(
            r#"{{"v":1,"device":"mon-1","channel":"{channel}","unit":"{unit}",
            "t0":"2026-11-23T10:00:00.000+01:00","rate":{rate},"seq":3,"origin":0.5,"factor":0.005,"data":{data}}}"#
        )
    }

    #[test]
    fn topic_round_trip() {
        let bed = BedId::new("4W", "12");
        for (t, stream) in [
            (Topic::vitals(&bed, "mon-1"), Stream::Vitals),
            (Topic::status(&bed, "mon-1"), Stream::Status),
            (
                Topic::wave(&bed, "mon-1", "ECG_II"),
                Stream::Wave("ECG_II".into()),
            ),
        ] {
            let p = Topic::parse(&t).expect("valid topic");
            assert_eq!(p.bed, bed);
            assert_eq!(p.device, "mon-1");
            assert_eq!(p.stream, stream);
        }
    }

    #[test]
    fn bad_topics_rejected() {
        for t in [
            "",
            "vigil/v1",
            "vigil/v2/4W/12/mon-1/vitals",
            "vigil/v1/4W/12/mon-1",
            "vigil/v1/4W/12/mon-1/vitals/extra",
            "vigil/v1/4W/+/mon-1/vitals",
            "vigil/v1/4W/12/_station/vitals",
            "vigil/v1/4W//mon-1/vitals",
            "vigil/v1/4W/12/mon-1/wave",
            "vigil/v1/4W/12/mon 1/vitals",
        ] {
            let e = Topic::parse(t).expect_err(t);
            assert_eq!(e.reason(), "bad_topic", "{t}");
        }
    }

    #[test]
    fn vitals_decoded_with_per_observation_time() {
        let m = decode("vigil/v1/4W/12/mon-1/vitals", VITALS_OK.as_bytes()).expect("decodes");
        let Message::Vitals(v) = m else {
            panic!("not vitals: {m:?}")
        };
        assert_eq!(v.bed.key(), "4W/12");
        assert_eq!(v.seq, 7);
        assert!(v.rejected.is_empty());
        assert_eq!(v.readings.len(), 3);
        assert_eq!(v.readings[0].vital, Vital::Hr);
        assert_eq!(v.readings[0].value, Some(72.0));
        assert_eq!(v.readings[0].t_ms, 1_795_428_000_250);
        assert_eq!(v.readings[1].value, None, "null is no reading");
        assert_eq!(v.readings[2].t_ms, 1_795_427_880_000);
    }

    #[test]
    fn bad_observations_rejected_good_ones_kept() {
        let p = r#"{"v":1,"device":"mon-1","t":"2026-11-23T10:00:00Z","seq":1,"obs":[
            {"mdc":147842,"value":72,"unit":"/min"},
            {"mdc":999999,"value":1,"unit":"/min"},
            {"mdc":150456,"value":140,"unit":"%"},
            {"mdc":150364,"value":98.6,"unit":"[degF]"}]}"#;
        let Ok(Message::Vitals(v)) = decode("vigil/v1/4W/12/mon-1/vitals", p.as_bytes()) else {
            panic!("message should decode")
        };
        assert_eq!(v.readings.len(), 1);
        let reasons: Vec<_> = v.rejected.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons, ["unknown_code", "out_of_range", "bad_unit"]);
    }

    #[test]
    fn wave_decoded_with_offset_time_and_scaling() {
        let p = wave_json("ECG_II", "mV", 500.0, "[0,200,-100]");
        let Ok(Message::Wave(w)) = decode("vigil/v1/4W/12/mon-1/wave/ECG_II", p.as_bytes()) else {
            panic!("wave should decode")
        };
        assert_eq!(w.channel.mdc, 131330);
        assert_eq!(w.t0_ms, 1_795_424_400_000, "+01:00 converted to UTC");
        assert_eq!(w.data, vec![0, 200, -100]);
        assert_eq!(w.value(1), Some(1.5));
        assert_eq!(w.value(3), None);
    }

    #[test]
    fn hostile_payloads_rejected_with_reasons() {
        let t = "vigil/v1/4W/12/mon-1/wave/ECG_II";
        let cases: Vec<(&str, String, &str)> = vec![
            (t, "".into(), "malformed"),
            (t, "{\"v\":1,".into(), "malformed"),
            (t, "[1,2,3]".into(), "malformed"),
            (t, "\u{0}\u{1}binary".into(), "malformed"),
            (t, wave_json("ECG_II", "mV", 500.0, "[1.5]"), "malformed"),
            (t, wave_json("ECG_II", "mV", 500.0, "[\"a\"]"), "malformed"),
            (t, wave_json("ECG_II", "mV", 500.0, "[]"), "invalid_field"),
            (t, wave_json("ECG_II", "mV", 0.0, "[1]"), "invalid_field"),
            (t, wave_json("ECG_II", "mV", 1e9, "[1]"), "invalid_field"),
            (t, wave_json("ECG_II", "uV", 500.0, "[1]"), "bad_unit"),
            (
                t,
                wave_json("ECG_V5", "mV", 500.0, "[1]"),
                "channel_mismatch",
            ),
            (
                "vigil/v1/4W/12/mon-1/wave/EEG",
                wave_json("EEG", "mV", 500.0, "[1]"),
                "unknown_channel",
            ),
            (
                t,
                wave_json("ECG_II", "mV", 500.0, "[1]").replace("\"v\":1", "\"v\":2"),
                "bad_version",
            ),
            (
                t,
                wave_json("ECG_II", "mV", 500.0, "[1]").replace("mon-1", "mon-2"),
                "device_mismatch",
            ),
            (t, "[".repeat(300_000), "too_large"),
            (
                t,
                format!("{}1{}", "[".repeat(5000), "]".repeat(5000)),
                "malformed",
            ),
            (t, "{\"v\":1,\"rate\":NaN}".into(), "malformed"),
            // Found by tests/fuzz.rs: finite scaling whose physical values are infinite.
            (
                t,
                wave_json("ECG_II", "mV", 500.0, "[1, -2]")
                    .replace("0.005", "1.7976931348623157e308"),
                "invalid_field",
            ),
        ];
        for (topic, payload, reason) in cases {
            let got = decode(topic, payload.as_bytes());
            match got {
                Err(e) => assert_eq!(e.reason(), reason, "payload {:.60}: {e}", payload),
                Ok(m) => panic!("accepted {payload:.60}: {m:?}"),
            }
        }
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            decode(t, &huge).map(|_| ()).map_err(|e| e.reason()),
            Err("too_large")
        );
    }

    #[test]
    fn status_and_last_will() {
        let t = "vigil/v1/4W/12/mon-1/status";
        let on = r#"{"v":1,"device":"mon-1","state":"online","t":"2026-11-23T10:00:00Z","conditions":["leads-off"]}"#;
        let Ok(Message::Status(s)) = decode(t, on.as_bytes()) else {
            panic!("status should decode")
        };
        assert!(s.online);
        assert_eq!(s.conditions, vec!["leads-off".to_string()]);
        let off = r#"{"v":1,"device":"mon-1","state":"offline"}"#;
        let Ok(Message::Status(s)) = decode(t, off.as_bytes()) else {
            panic!("will should decode")
        };
        assert!(!s.online);
        assert_eq!(s.t_ms, None);
        let bad = r#"{"v":1,"device":"mon-1","state":"sleeping"}"#;
        assert_eq!(decode(t, bad.as_bytes()).unwrap_err().reason(), "malformed");
    }

    #[test]
    fn encoders_produce_decodable_payloads() {
        let bed = BedId::new("sim", "03");
        let p = VitalsPayload {
            v: CONTRACT_VERSION,
            device: "sim-03".into(),
            t: utc_from_ms(1_795_428_000_000),
            seq: 1,
            obs: vec![ObservationPayload {
                mdc: Vital::SpO2.mdc(),
                value: Some(97.0),
                unit: "%".into(),
                t: None,
                status: ObsStatus::Final,
            }],
        };
        let bytes = serde_json::to_vec(&p).expect("serialises");
        let Ok(Message::Vitals(v)) = decode(&Topic::vitals(&bed, "sim-03"), &bytes) else {
            panic!("round trip failed")
        };
        assert_eq!(v.readings[0].value, Some(97.0));
        assert_eq!(v.readings[0].t_ms, 1_795_428_000_000);
    }
}
