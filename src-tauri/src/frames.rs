//! The wire format of live data sent to the web UI (read by `ui/src/frames.ts`; its JSON types
//! are generated into `ui/src/bindings`, see `bindings.rs`). Only this shell serialises for the
//! UI; the engine's types stay free of UI concerns.
//!
//! A frame goes over the `tauri::ipc::Channel` as one binary message ([`encode`]):
//!
//! ```text
//! "VGF1"            4 bytes, magic and version
//! json_len          u32 little-endian
//! json              UTF-8: the Frame, waveform chunks described without their samples (`n`)
//! padding           0–3 zero bytes, so the samples start 4-byte aligned
//! samples           i32 little-endian: every chunk's samples, in the order of `waves`
//! ```
//!
//! Waveforms are ~99% of the volume (ECG 2 × 500 Hz per bed); as binary they cost 4 bytes a
//! sample and no parsing, where JSON cost up to 12 characters and a number parse each.
//!
//! In the JSON, a field that is `None` is left out (declared optional: `field?: T`) in the
//! structs marked `skip_serializing_none`; `AlarmOut` sends `value` and `limit` as `null` and
//! marks the fields it leaves out one by one.

use serde::Serialize;
use std::collections::BTreeSet;

use vigil_core::alarms::{ActiveAlarm, PauseInfo, PauseScope};
use vigil_core::engine::{LinkState, WardSnapshot};
use vigil_core::telemetry::{BedId, DeviceStatus, Reading, WaveChunk};

/// One batch of live data; ~20 per second.
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Serialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct Frame {
    /// Station wall clock when the frame was sent, ms since the epoch.
    pub t: i64,
    /// Present when it changed (always in the first frame).
    pub engine: Option<EngineState>,
    /// The full bed list, present when it changed (always in the first frame).
    pub beds: Option<Vec<BedInfo>>,
    /// Waveform chunks received since the previous frame (may be empty).
    pub waves: Vec<WaveOut>,
    /// Numerics received since the previous frame (may be empty).
    pub vitals: Vec<VitalOut>,
    /// The FULL list of active alarms, present when it changed.
    pub alarms: Option<Vec<AlarmOut>>,
    /// The status of every known device (the full list), present when it changed.
    pub devices: Option<Vec<DeviceOut>>,
    /// NEWS2 of every bed with a score, present when it changed.
    pub news2: Option<Vec<News2Out>>,
    /// Audio pauses in force, present when they changed (and while one counts down).
    pub pauses: Option<Vec<PauseOut>>,
    /// Keys of the beds in standby (physiological alarms off), present when changed.
    pub standby: Option<Vec<String>>,
    /// The station's alarm sound, present when it changed.
    pub sound: Option<crate::sound::SoundOut>,
    /// How many remote patients' alerts and findings changed since the previous frame, present
    /// when some did (the remote worklist reads again).
    pub remote: Option<u32>,
}

/// Magic and version of the binary frame.
pub const MAGIC: &[u8; 4] = b"VGF1";

/// The frame as one binary message (layout in the module docs).
pub fn encode(f: &Frame) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(f)?;
    let samples: usize = f.waves.iter().map(|w| w.data.len()).sum();
    let head = 8 + json.len();
    let pad = (4 - head % 4) % 4;
    let mut out = Vec::with_capacity(head + pad + samples * 4);
    out.extend_from_slice(MAGIC);
    // A frame is a few hundred kB at most (50 ms of a ward); u32 is ample.
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize(head + pad, 0);
    for w in &f.waves {
        for v in &w.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct News2Out {
    pub bed: String,
    pub total: u8,
    /// `zero`, `low`, `low-medium`, `medium`, `high` ([`vigil_core::alarms::news2::Band::as_str`]).
    #[ts(as = "vigil_core::alarms::news2::Band")]
    pub band: &'static str,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
#[ts(optional_fields)]
pub struct PauseOut {
    /// The bed key, or `*` for the whole station.
    pub bed: String,
    /// Station clock, ms; the window counts down against the frame's `t`.
    pub until: i64,
    pub by: String,
    /// The station where the user paused, when another one ("paused by alice at station ST-2").
    pub station: Option<String>,
}

impl From<&PauseInfo> for PauseOut {
    fn from(p: &PauseInfo) -> Self {
        PauseOut {
            bed: match &p.scope {
                PauseScope::All => "*".to_string(),
                PauseScope::Bed(b) => b.key(),
            },
            until: p.until_ms,
            by: p.by.clone(),
            station: p.station.clone(),
        }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
#[ts(optional_fields)]
pub struct EngineState {
    pub ward: String,
    pub broker: String,
    pub connected: bool,
    /// `embedded` or `external`.
    pub mode: &'static str,
    /// The broker link's last error, if any (it may outlive a reconnect).
    pub error: Option<String>,
    /// Standing broker-trust warnings (`LinkState::warnings`): the window's banner.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<_>", optional)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ts_rs::TS)]
pub struct BedInfo {
    /// `ward/bed`.
    pub key: String,
    pub ward: String,
    pub bed: String,
    /// The bed as the ward names it ("Bed 03"); notifications use the same words.
    pub label: String,
    /// A remote patient's bed (home, mobile clinic): on the remote worklist, not a ward tile.
    pub remote: bool,
}

impl BedInfo {
    /// Every bed of the station, the remote patients' marked.
    pub fn list(beds: &[BedId], remote: &BTreeSet<BedId>) -> Vec<BedInfo> {
        beds.iter()
            .map(|b| BedInfo {
                remote: remote.contains(b),
                ..BedInfo::from(b)
            })
            .collect()
    }
}

impl From<&BedId> for BedInfo {
    fn from(b: &BedId) -> Self {
        BedInfo {
            key: b.key(),
            ward: b.ward.clone(),
            bed: b.bed.clone(),
            label: vigil_core::notify::bed_label(b),
            remote: false,
        }
    }
}

#[derive(Debug, Serialize, ts_rs::TS)]
pub struct WaveOut {
    /// [`BedInfo::key`].
    pub bed: String,
    /// `ECG_II`, `ECG_V5`, `PLETH`, `RESP`; the window ignores a channel it does not know.
    pub channel: &'static str,
    /// Samples per second (ECG 500, PLETH 125, RESP 62.5).
    pub rate: f64,
    /// Time of the first sample, ms since the epoch.
    pub t0: i64,
    /// Sequence number per channel (a jump means a missed chunk).
    pub seq: u64,
    /// Physical value = origin + factor × sample (FHIR SampledData); ECG in mV.
    pub origin: f64,
    pub factor: f64,
    /// Number of samples; the samples themselves follow the JSON part (see [`encode`]).
    pub n: usize,
    #[serde(skip)]
    pub data: Vec<i32>,
}

impl From<&WaveChunk> for WaveOut {
    fn from(w: &WaveChunk) -> Self {
        WaveOut {
            bed: w.bed.key(),
            channel: w.channel.name,
            rate: w.rate,
            t0: w.t0_ms,
            seq: w.seq,
            origin: w.origin,
            factor: w.factor,
            n: w.data.len(),
            data: w.data.clone(),
        }
    }
}

#[derive(Debug, Serialize, ts_rs::TS)]
pub struct VitalOut {
    pub bed: String,
    /// `HR`, `PR`, `SPO2`, `RR`, `NIBP_SYS`, ... (`vigil_core::codes`).
    pub code: &'static str,
    pub mdc: u32,
    /// UCUM unit (`/min`, `%`, `mm[Hg]`, `Cel`).
    pub unit: &'static str,
    /// `None`: no reading (sensor off, not measured), never shown as 0.
    pub value: Option<f64>,
    /// Time of the measurement, ms since the epoch.
    pub t: i64,
    /// A late reading (taken before the device's last one of the vital, or longer ago than
    /// the live window): history only, shown as late, never as the current value.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[ts(as = "Option<_>", optional)]
    pub late: bool,
}

impl VitalOut {
    pub fn new(bed: &BedId, r: &Reading) -> Self {
        let info = r.vital.info();
        VitalOut {
            bed: bed.key(),
            code: info.name,
            mdc: info.mdc,
            unit: info.unit,
            value: r.value,
            t: r.t_ms,
            late: false,
        }
    }

    /// A late reading (see [`VitalOut::late`]).
    pub fn late(bed: &BedId, r: &Reading) -> Self {
        VitalOut {
            late: true,
            ..VitalOut::new(bed, r)
        }
    }
}

/// A vitals message as the window gets it: its live readings, then its late ones marked late.
pub fn vitals_out(v: &vigil_core::telemetry::Vitals) -> impl Iterator<Item = VitalOut> + '_ {
    let live = v.readings.iter().map(|r| VitalOut::new(&v.bed, r));
    live.chain(v.late.iter().map(|r| VitalOut::late(&v.bed, r)))
}

#[derive(Debug, Serialize, ts_rs::TS)]
pub struct AlarmOut {
    pub id: String,
    pub bed: String,
    /// `SPO2_LOW`, `HR_HIGH`, ...
    pub code: String,
    /// `SpO2 LOW`, ...
    pub label: String,
    /// [`vigil_core::alarms::Priority::as_str`].
    #[ts(as = "vigil_core::alarms::Priority")]
    pub priority: &'static str,
    /// When it was raised, ms since the epoch.
    pub since: i64,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    /// `active`, `acknowledged`, `audio-paused`, `latched`, `unreviewed`
    /// ([`vigil_core::alarms::AlarmState::as_str`]).
    #[ts(as = "vigil_core::alarms::AlarmState")]
    pub state: &'static str,
    /// The unit of `value` and `limit` as shown ("/min", "%", "mmHg", "°C"), if a vital's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub unit: Option<&'static str>,
    /// When the condition cleared (latched or unreviewed alarms).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub cleared: Option<i64>,
    /// Whether it sounds now (not while acknowledged or paused, except communication lost).
    pub audible: bool,
    /// 0 until the alarm goes unacknowledged past its escalation time.
    pub escalation: u32,
    pub latched: bool,
    /// A technical alarm (communication lost, leads off, ...) rather than a physiological one.
    pub technical: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub ack_by: Option<String>,
    /// The station where it was acknowledged, when another one ("ACK alice at station ST-2").
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub ack_station: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub pause_remaining_ms: Option<i64>,
}

impl From<&ActiveAlarm> for AlarmOut {
    fn from(a: &ActiveAlarm) -> Self {
        AlarmOut {
            id: a.id.clone(),
            bed: a.bed.key(),
            code: a.code.clone(),
            label: a.label.clone(),
            priority: a.priority.as_str(),
            since: a.since_ms,
            value: a.value,
            limit: a.limit,
            state: a.state.as_str(),
            unit: alarm_unit(&a.code),
            cleared: a.cleared_ms,
            audible: a.audible,
            escalation: a.escalation,
            latched: a.latched,
            technical: a.technical,
            ack_by: a.ack_by.clone(),
            ack_station: a.ack_station.clone(),
            pause_remaining_ms: a.pause_remaining_ms,
        }
    }
}

/// The display unit of a limit alarm's code (`HR_LOW` → "/min"); none for other alarms.
fn alarm_unit(code: &str) -> Option<&'static str> {
    let (vital, dir) = code.rsplit_once('_')?;
    if dir != "LOW" && dir != "HIGH" {
        return None;
    }
    vigil_core::codes::Vital::from_name(vital).map(vigil_core::alarms::limits::display_unit)
}

#[derive(Debug, Serialize, ts_rs::TS)]
pub struct DeviceOut {
    pub bed: String,
    pub device: String,
    pub online: bool,
    pub conditions: Vec<String>,
    pub t: i64,
}

impl From<&DeviceStatus> for DeviceOut {
    fn from(d: &DeviceStatus) -> Self {
        DeviceOut {
            bed: d.bed.key(),
            device: d.device.clone(),
            online: d.online,
            conditions: d.conditions.clone(),
            t: d.t_ms.unwrap_or(0),
        }
    }
}

/// Fill a frame with the whole current state (first frame, or after the watcher lagged).
pub fn full_state(f: &mut Frame, snap: &WardSnapshot, remote: &BTreeSet<BedId>) {
    f.beds = Some(BedInfo::list(&snap.beds, remote));
    f.alarms = Some(snap.alarms.iter().map(AlarmOut::from).collect());
    f.devices = Some(snap.devices.iter().map(DeviceOut::from).collect());
    for (bed, readings) in &snap.latest {
        f.vitals
            .extend(readings.values().map(|r| VitalOut::new(bed, r)));
    }
}

pub fn engine_state(base: &EngineState, link: &LinkState) -> EngineState {
    EngineState {
        connected: link.connected && link.subscribed,
        error: link.last_error.clone(),
        warnings: link.warnings.clone(),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::alarms::{AlarmState, Priority};
    use vigil_core::codes::Vital;

    #[test]
    fn frame_json_shape_matches_the_ui_contract() {
        let bed = BedId::new("sim", "03");
        let mut snap = WardSnapshot {
            beds: vec![bed.clone()],
            ..Default::default()
        };
        snap.alarms.push(ActiveAlarm {
            id: "sim/03/SPO2_LOW".into(),
            bed: bed.clone(),
            code: "SPO2_LOW".into(),
            label: "SpO2 LOW".into(),
            priority: Priority::High,
            since_ms: 5,
            value: Some(84.0),
            limit: Some(90.0),
            state: AlarmState::Active,
            audible: true,
            escalation: 0,
            latched: false,
            cleared_ms: None,
            technical: false,
            ack_by: None,
            ack_station: None,
            pause_remaining_ms: None,
        });
        snap.latest
            .entry(bed.clone())
            .or_default()
            .insert(Vital::SpO2, Reading::new(Vital::SpO2, None, 7));
        let mut f = Frame {
            t: 9,
            ..Default::default()
        };
        full_state(&mut f, &snap, &BTreeSet::new());
        let v = serde_json::to_value(&f).expect("serialises");
        assert_eq!(v["beds"][0]["key"], "sim/03");
        assert_eq!(v["beds"][0]["label"], "Bed 03");
        assert_eq!(v["alarms"][0]["priority"], "high");
        assert_eq!(v["alarms"][0]["since"], 5);
        assert_eq!(v["alarms"][0]["state"], "active");
        assert_eq!(v["alarms"][0]["audible"], true);
        assert_eq!(v["alarms"][0]["unit"], "%");
        assert!(v["alarms"][0].get("cleared").is_none());
        assert_eq!(v["vitals"][0]["code"], "SPO2");
        assert!(v["vitals"][0]["value"].is_null(), "no reading stays null");
        assert_eq!(v["waves"], serde_json::json!([]));
        assert!(v.get("engine").is_none());
    }

    /// A vitals message with a late reading: the live one as usual, the late one marked late
    /// (the UI shows it as such and never as the current value); `late` is left out otherwise.
    #[test]
    fn late_readings_reach_the_window_marked_late() {
        let bed = BedId::new("sim", "03");
        let mut v = vigil_core::telemetry::Vitals {
            bed: bed.clone(),
            device: "mon-3".into(),
            seq: 1,
            readings: vec![Reading::new(Vital::Hr, Some(72.0), 2000)],
            late: vec![Reading::new(Vital::SpO2, Some(84.0), 1000)],
            rejected: Vec::new(),
        };
        let out: Vec<_> = vitals_out(&v).collect();
        let json = serde_json::to_value(&out).expect("serialises");
        assert_eq!(json[0]["code"], "HR");
        assert!(json[0].get("late").is_none(), "{json}");
        assert_eq!(json[1]["code"], "SPO2");
        assert_eq!(json[1]["late"], true);
        assert_eq!(json[1]["t"], 1000);
        v.late.clear();
        assert_eq!(vitals_out(&v).count(), 1);
    }

    /// The binary layout, checked byte for byte against the fixture the UI's decoder is tested
    /// on (`ui/test/frames.test.ts`), so the two sides cannot drift apart unnoticed. After a
    /// deliberate change of the format, rewrite it with `VIGIL_BLESS=1 cargo test -p vigil frames`.
    #[test]
    fn binary_frame_matches_the_ui_fixture() {
        let bed = BedId::new("sim", "03");
        let mut f = Frame {
            t: 1_800_000_000_123,
            ..Default::default()
        };
        for (channel, data) in [("ECG_II", vec![1, -2, 300_000]), ("PLETH", vec![-7])] {
            f.waves.push(WaveOut {
                bed: bed.key(),
                channel,
                rate: if channel == "PLETH" { 125.0 } else { 500.0 },
                t0: 1_800_000_000_000,
                seq: 42,
                origin: -0.5,
                factor: 0.001,
                n: data.len(),
                data,
            });
        }
        f.vitals.push(VitalOut::new(
            &bed,
            &Reading::new(Vital::Hr, Some(72.0), 1_800_000_000_100),
        ));
        f.news2 = Some(vec![News2Out {
            bed: bed.key(),
            total: 5,
            band: "medium",
        }]);
        f.pauses = Some(vec![PauseOut {
            bed: "*".into(),
            until: 1_800_000_120_000,
            by: "carl".into(),
            station: None,
        }]);
        let bytes = encode(&f).expect("encodes");
        assert_eq!(&bytes[..4], MAGIC);
        let json_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let v: serde_json::Value = serde_json::from_slice(&bytes[8..8 + json_len]).unwrap();
        assert_eq!(v["waves"][0]["n"], 3);
        assert!(
            v["waves"][0].get("data").is_none(),
            "samples are not in the JSON"
        );
        let start = (8 + json_len).div_ceil(4) * 4;
        assert_eq!(bytes.len(), start + 4 * 4);
        let samples: Vec<i32> = bytes[start..]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(samples, [1, -2, 300_000, -7]);

        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/test/fixtures/frame-v1.bin");
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::create_dir_all(fixture.parent().unwrap()).unwrap();
            std::fs::write(&fixture, &bytes).unwrap();
        }
        let expected = std::fs::read(&fixture).expect("ui/test/fixtures/frame-v1.bin");
        assert_eq!(
            bytes, expected,
            "the binary frame format changed; see the doc comment"
        );
    }
}
