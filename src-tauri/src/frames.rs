//! The wire format of live data sent to the web UI (mirrored by `ui/src/frames.ts`). Only this
//! shell serialises for the UI; the engine's types stay free of UI concerns.

use serde::Serialize;
use vigil_core::alarms::ActiveAlarm;
use vigil_core::engine::{LinkState, WardSnapshot};
use vigil_core::telemetry::{BedId, DeviceStatus, Reading, WaveChunk};

/// One batch of live data; ~20 per second.
#[derive(Debug, Default, Serialize)]
pub struct Frame {
    pub t: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beds: Option<Vec<BedInfo>>,
    pub waves: Vec<WaveOut>,
    pub vitals: Vec<VitalOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarms: Option<Vec<AlarmOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceOut>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EngineState {
    pub ward: String,
    pub broker: String,
    pub connected: bool,
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BedInfo {
    pub key: String,
    pub ward: String,
    pub bed: String,
    pub label: String,
}

impl From<&BedId> for BedInfo {
    fn from(b: &BedId) -> Self {
        BedInfo {
            key: b.key(),
            ward: b.ward.clone(),
            bed: b.bed.clone(),
            label: format!("Bed {}", b.bed),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct WaveOut {
    pub bed: String,
    pub channel: &'static str,
    pub rate: f64,
    pub t0: i64,
    pub seq: u64,
    pub origin: f64,
    pub factor: f64,
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
            data: w.data.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VitalOut {
    pub bed: String,
    pub code: &'static str,
    pub mdc: u32,
    pub unit: &'static str,
    pub value: Option<f64>,
    pub t: i64,
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
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AlarmOut {
    pub id: String,
    pub bed: String,
    pub code: String,
    pub label: String,
    pub priority: &'static str,
    pub since: i64,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    /// `active`, `acknowledged`, `audio-paused`, `latched`.
    pub state: &'static str,
    pub audible: bool,
    pub escalation: u32,
    pub latched: bool,
    pub technical: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
            audible: a.audible,
            escalation: a.escalation,
            latched: a.latched,
            technical: a.technical,
            ack_by: a.ack_by.clone(),
            pause_remaining_ms: a.pause_remaining_ms,
        }
    }
}

#[derive(Debug, Serialize)]
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
pub fn full_state(f: &mut Frame, snap: &WardSnapshot) {
    f.beds = Some(snap.beds.iter().map(BedInfo::from).collect());
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
            technical: false,
            ack_by: None,
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
        full_state(&mut f, &snap);
        let v = serde_json::to_value(&f).expect("serialises");
        assert_eq!(v["beds"][0]["key"], "sim/03");
        assert_eq!(v["beds"][0]["label"], "Bed 03");
        assert_eq!(v["alarms"][0]["priority"], "high");
        assert_eq!(v["alarms"][0]["since"], 5);
        assert_eq!(v["alarms"][0]["state"], "active");
        assert_eq!(v["alarms"][0]["audible"], true);
        assert_eq!(v["vitals"][0]["code"], "SPO2");
        assert!(v["vitals"][0]["value"].is_null(), "no reading stays null");
        assert_eq!(v["waves"], serde_json::json!([]));
        assert!(v.get("engine").is_none());
    }
}
