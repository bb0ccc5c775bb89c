//! Alarms: a pure, deterministic state machine ([`AlarmMachine`]). It is fed readings, device
//! status, data gaps, operator actions and a periodic tick, each with the current time
//! (`now_ms`) given by the caller; it answers with [`AlarmEvent`]s. It does no I/O and reads no
//! clock, so every rule is unit-testable with simulated time.
//!
//! Semantics follow IEC 60601-1-8 as summarised in `shared/reference/clinical.md` §1:
//! - per-patient limits (initialised from a ward [`WardProfile`]), each with a priority, an
//!   optional condition delay and hysteresis ([`limits`]);
//! - states [`AlarmState`]: active, acknowledged, audio paused, latched awaiting
//!   acknowledgement, resolved; audio pause with countdown and break-through of a higher
//!   priority; latching per alarm code (admin setting);
//! - technical alarms: communication lost (always audible), device conditions, data gaps;
//! - escalation of unacknowledged alarms, repeatedly, until handled;
//! - NEWS2 bands as alarms ([`news2`]).
//!
//! A "no reading" (`None`) neither raises nor clears: an alarm is never silently dropped
//! because a sensor stopped reporting. Nor does a reading that is not alarmable
//! (preliminary, cancelled, entered in error).

pub mod limits;
pub mod news2;
pub mod shared;
pub mod state;

pub use limits::{default_limits, Direction, Limit, WardProfile};
pub use state::{
    AlarmConfig, AlarmError, AlarmMachine, Escalation, News2Config, PauseInfo, PauseScope,
    Unfinished,
};

use vigil_contract::{codes, telemetry};

use crate::telemetry::{BedId, Reading};

/// Alarm priority (IEC 60601-1-8). Ordered: `High > Medium > Low`. Serialised as
/// [`Priority::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// The IEC 60601-1-8 text marker.
    pub fn marker(self) -> &'static str {
        match self {
            Priority::Low => "*",
            Priority::Medium => "**",
            Priority::High => "***",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "low" => Some(Priority::Low),
            "medium" => Some(Priority::Medium),
            "high" => Some(Priority::High),
            _ => None,
        }
    }
}

/// Physiological (a patient's vital sign or score) or technical (the equipment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmClass {
    Physiological,
    Technical,
}

/// Where an alarm stands (IEC 60601-1-8 inactivation states, plus latching). Its TypeScript
/// declaration is the strings of [`AlarmState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "kebab-case"))]
pub enum AlarmState {
    /// The condition is present and sounding.
    Active,
    /// The condition is present; an operator acknowledged it: silent until it re-triggers.
    Acknowledged,
    /// The condition is present; an audio pause silences it for now (countdown).
    AudioPaused,
    /// The condition has cleared but the alarm latches: shown (and sounding) until acknowledged.
    #[cfg_attr(feature = "ts", ts(rename = "latched"))]
    LatchedAwaitingAck,
    /// The condition of a high-priority alarm that does not latch cleared before anyone
    /// acknowledged it: silent, but shown ("resolved, not yet reviewed") until a user reviews
    /// it (an acknowledgement), so that an alarm nobody saw never vanishes without a trace.
    Unreviewed,
    /// Over: the condition cleared (and, if latching, was acknowledged). Only in events.
    Resolved,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Active => "active",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::AudioPaused => "audio-paused",
            AlarmState::LatchedAwaitingAck => "latched",
            AlarmState::Unreviewed => "unreviewed",
            AlarmState::Resolved => "resolved",
        }
    }

    /// The state named by [`AlarmState::as_str`] (as stored in the alarm history).
    pub fn parse(s: &str) -> Option<AlarmState> {
        [
            AlarmState::Active,
            AlarmState::Acknowledged,
            AlarmState::AudioPaused,
            AlarmState::LatchedAwaitingAck,
            AlarmState::Unreviewed,
            AlarmState::Resolved,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmEventKind {
    /// An alarm condition persisted past its delay: the alarm is raised.
    Raise,
    /// Not acknowledged in time: escalated (level in the event) to the next responder.
    Escalate,
    /// An operator acknowledged the alarm (user in the event).
    Acknowledge,
    /// The condition cleared but the alarm latches until acknowledged.
    Latch,
    /// The alarm is over.
    Resolve,
    /// Audio paused (per bed, or station-wide) by a user.
    Pause,
    /// An audio pause ended (timed out or ended by a user): signals come back.
    PauseEnd,
    /// A user changed the bed's limits or NEWS2 inputs.
    Settings,
}

impl AlarmEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmEventKind::Raise => "raise",
            AlarmEventKind::Escalate => "escalate",
            AlarmEventKind::Acknowledge => "acknowledge",
            AlarmEventKind::Latch => "latch",
            AlarmEventKind::Resolve => "resolve",
            AlarmEventKind::Pause => "pause",
            AlarmEventKind::PauseEnd => "pause-end",
            AlarmEventKind::Settings => "settings",
        }
    }
}

/// Something that happened to an alarm; persisted as the alarm history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvent {
    pub t_ms: i64,
    pub bed: BedId,
    /// `ward/bed/CODE` (technical alarms of a device: `ward/bed/CODE@device`): stable for one
    /// alarm condition of one bed.
    pub alarm_id: String,
    pub code: String,
    pub kind: AlarmEventKind,
    pub priority: Priority,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub message: String,
    /// Who did it (acknowledge, pause, settings); `None` for the machine's own events.
    pub user: Option<String>,
    /// The station where the user did it, when it was another one (remote acknowledgement or
    /// audio pause); `None`: this station.
    pub station: Option<String>,
    /// The alarm's state after the event.
    pub state: AlarmState,
    /// Escalation level after the event (0 = not escalated).
    pub level: u32,
    /// Whether the alarm sounds after the event.
    pub audible: bool,
}

/// Whether an alarm code is about a vital sign or score (else: technical), as the stored
/// history names it.
pub fn is_physiological(code: &str) -> bool {
    crate::codes::Vital::ALL
        .iter()
        .any(|v| code.starts_with(&format!("{}_", v.name())))
        || code.starts_with("NEWS2")
}

/// An alarm shown now (condition present, or latched awaiting acknowledgement).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlarm {
    pub id: String,
    pub bed: BedId,
    pub code: String,
    pub label: String,
    pub priority: Priority,
    /// When the alarm was raised.
    pub since_ms: i64,
    /// The most recent value seen while the condition is present.
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub state: AlarmState,
    /// Whether its auditory signal sounds now.
    pub audible: bool,
    /// 0 = not escalated; n = escalated n times.
    pub escalation: u32,
    /// Whether this alarm latches (admin setting per code; high priority by default).
    pub latched: bool,
    /// When the condition cleared, for an alarm shown after its condition ended (latched or
    /// unreviewed).
    pub cleared_ms: Option<i64>,
    pub technical: bool,
    /// Who acknowledged it, if anyone.
    pub ack_by: Option<String>,
    /// The station where it was acknowledged, when it was another one.
    pub ack_station: Option<String>,
    /// Audio pause countdown covering this alarm's bed, if any.
    pub pause_remaining_ms: Option<i64>,
}

/// The basic evaluator kept for callers that feed readings only: an [`AlarmMachine`] whose
/// clock is the readings' own time stamps.
#[derive(Debug, Clone)]
pub struct AlarmEvaluator {
    machine: AlarmMachine,
    now: i64,
}

impl AlarmEvaluator {
    pub fn new(limits: Vec<Limit>) -> Self {
        AlarmEvaluator {
            machine: AlarmMachine::with_limits(AlarmConfig::default(), limits),
            now: 0,
        }
    }

    /// Evaluate one reading of one bed at its own time; returns the events it causes.
    pub fn observe(&mut self, bed: &BedId, reading: &Reading) -> Vec<AlarmEvent> {
        self.now = self.now.max(reading.t_ms);
        self.machine.observe(bed, reading, self.now)
    }

    /// Alarms shown now, highest priority first, then oldest first.
    pub fn active(&self) -> Vec<ActiveAlarm> {
        self.machine.active(self.now)
    }
}

pub(crate) fn fmt_value(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
