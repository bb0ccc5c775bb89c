//! The alarm state machine. Pure and deterministic: every input carries `now_ms` (the station
//! clock, ms since the epoch), nothing reads a clock, nothing does I/O.
//!
//! Every alarm condition of a bed has a slot (`ward/bed/CODE`, or `ward/bed/CODE@device` for a
//! device's technical alarms). A condition that becomes present starts pending; once it has
//! persisted for its delay the alarm is raised. A raised alarm stays shown until its condition
//! clears and, if its code latches, until a user acknowledges it. Audibility is derived from
//! the acknowledgement, the audio pauses and the alarm's class, so ending a pause (or its
//! timing out) brings signals back for every condition still present.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::codes::Vital;
use crate::telemetry::{BedId, DeviceStatus, ObsStatus, Reading};

use super::limits::{Limit, WardProfile};
use super::news2::{self, Band, News2Input, News2Manual, News2Score};
use super::shared::{AckEntry, BedAlarmState, PauseEntry};
use super::{fmt_value, ActiveAlarm, AlarmClass, AlarmEvent, AlarmEventKind, AlarmState, Priority};

/// Code of the communication-lost technical alarm (always audible).
pub const COMM_LOST: &str = "COMM_LOST";
/// Code of the recorded-data-gap technical alarm.
pub const DATA_GAP: &str = "DATA_GAP";
/// Code of the station's storage technical alarm: the database cannot be written (disk full).
pub const STORE_FAILED: &str = "STORE_FAILED";
/// Code of the station's sound technical alarm: alarm signals cannot be produced (no audio
/// device, a failing device).
pub const AUDIO_FAILED: &str = "AUDIO_FAILED";
/// Code of the security technical alarm: a high-severity security event (a spoofing attempt on
/// a bed, the audit trail found altered), see `vigil_core::security`.
pub const SECURITY: &str = "SECURITY";
/// Code of the over-budget technical alarm: a device sends more than its ingest budget
/// (`vigil_core::ingest::Budget`) and the excess is being dropped.
pub const DEVICE_OVER_BUDGET: &str = "DEVICE_OVER_BUDGET";
/// Code of a remote patient's care-plan technical alarm: an urgent care-plan alert stands on
/// the bed (a reading or dose missed past its urgent delay, the patient's devices silent).
pub const CARE_PLAN: &str = "CARE_PLAN";
/// A [`CARE_PLAN`] alarm is raised once its urgent alert has stood this long (its condition
/// delay). The alert has already waited its item's urgent delay; this keeps a station that is
/// catching up on data (the broker's queue after a restart, a clinic's upload on its way) from
/// sounding for a slot the next seconds show was met.
pub const CARE_PLAN_DELAY_MS: i64 = 120_000;
/// Two stations' clocks and arrival times may differ this much for one alarm instance.
const SYNC_TOLERANCE_MS: i64 = 2_000;
/// A remote acknowledgement received before this station raised the alarm applies to it only if
/// the alarm is raised this soon after (the two stations evaluated the same readings).
const EARLY_ACK_MS: i64 = 2_000;
/// Two stations' clocks may differ this much when telling whether an acknowledgement was made
/// after the alarm began.
const ACK_CLOCK_SLACK_MS: i64 = 250;
/// Acknowledgements kept for ward-wide sync.
const ACK_MEMORY_MS: i64 = 24 * 3600 * 1000;
/// The ECG heart rate counts as valid this long after its last alarmable reading: while it is,
/// the pulse rate (PR, from the oximeter) raises no alarm of its own, so one condition (the
/// heart rate) sounds once. Without a valid ECG rate (leads off, no ECG) PR alarms as usual.
pub const HR_VALID_MS: i64 = 5_000;

#[derive(Debug, Error, PartialEq)]
pub enum AlarmError {
    #[error("no alarm {0} is shown")]
    UnknownAlarm(String),
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    #[error("a user name is required")]
    NoUser,
}

/// Escalation of unacknowledged alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// First escalation after this long unacknowledged, per priority (low, medium, high).
    pub after_ms: [i64; 3],
    /// Then again every `repeat_ms` until handled.
    pub repeat_ms: i64,
    /// Who is notified.
    pub target: String,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            after_ms: [300_000, 120_000, 60_000],
            repeat_ms: 60_000,
            target: "charge nurse".into(),
        }
    }
}

impl Escalation {
    fn first(&self, p: Priority) -> i64 {
        self.after_ms[p as usize].max(1)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct News2Config {
    pub enabled: bool,
    /// The lowest band that raises an alarm.
    pub min_band: Band,
    /// A band must persist this long before its alarm is raised.
    pub delay_ms: i64,
}

impl Default for News2Config {
    fn default() -> Self {
        News2Config {
            enabled: true,
            // The low band (total 1–4) asks for a ward assessment, not an alarm: raising it at
            // the central station would add to alarm fatigue. The score is shown either way.
            min_band: Band::LowMedium,
            delay_ms: 30_000,
        }
    }
}

/// The responsible organisation's alarm settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmConfig {
    /// Default limits of new patients.
    pub profile: WardProfile,
    /// Length of an audio pause (default 2 min).
    pub audio_pause_ms: i64,
    /// No data from a device for this long = communication lost (default 5 s).
    pub comm_timeout_ms: i64,
    pub comm_lost_priority: Priority,
    /// Alarm codes that latch (admin setting), besides the high-priority ones below.
    pub latching: BTreeSet<String>,
    /// High-priority alarms latch whatever their code (default: yes; IT may turn it off). A
    /// high-priority alarm that does not latch and clears unacknowledged still leaves an
    /// "unreviewed" mark ([`AlarmState::Unreviewed`]).
    pub latch_high: bool,
    pub escalation: Escalation,
    /// How long a recorded data gap stays shown (unless it latches).
    pub gap_display_ms: i64,
    pub news2: News2Config,
}

impl AlarmConfig {
    /// Whether an alarm of `code` and `priority` latches.
    pub fn latches(&self, code: &str, priority: Priority) -> bool {
        self.latching.contains(code) || (self.latch_high && priority == Priority::High)
    }
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            profile: WardProfile::Adult,
            audio_pause_ms: 120_000,
            comm_timeout_ms: 5_000,
            comm_lost_priority: Priority::Medium,
            latching: BTreeSet::new(),
            latch_high: true,
            escalation: Escalation::default(),
            gap_display_ms: 60_000,
            news2: News2Config::default(),
        }
    }
}

/// Which alarms an audio pause covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PauseScope {
    /// Every bed of the station.
    All,
    Bed(BedId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pause {
    start_ms: i64,
    until_ms: i64,
    by: String,
    /// Only alarms raised during the pause with a priority above this break through.
    ceiling: Priority,
    /// The station where the user paused (`None`: this one).
    station: Option<String>,
}

/// An audio pause in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseInfo {
    pub scope: PauseScope,
    pub start_ms: i64,
    pub until_ms: i64,
    pub remaining_ms: i64,
    pub by: String,
    pub ceiling: Priority,
    /// The station where the user paused, when it was another one.
    pub station: Option<String>,
}

/// What a source says about one condition (and, in its [`Slot`], what the machine keeps of it).
#[derive(Debug, Clone)]
struct Spec {
    bed: BedId,
    code: String,
    label: String,
    class: AlarmClass,
    priority: Priority,
    delay_ms: i64,
    value: Option<f64>,
    limit: Option<f64>,
    message: String,
}

impl Spec {
    /// A technical condition of `bed`: no delay, no value, no limit.
    fn technical(
        bed: BedId,
        code: impl Into<String>,
        label: String,
        priority: Priority,
        message: String,
    ) -> Spec {
        Spec {
            bed,
            code: code.into(),
            label,
            class: AlarmClass::Technical,
            priority,
            delay_ms: 0,
            value: None,
            limit: None,
            message,
        }
    }
}

/// An alarm shown, unacknowledged, when the station last stopped: its last event in the
/// history (see [`AlarmMachine::restore_unfinished`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    /// `ward/bed/CODE`.
    pub alarm_id: String,
    pub bed: BedId,
    pub code: String,
    pub priority: Priority,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    /// When it was raised.
    pub since_ms: i64,
    /// When its condition cleared, or (still present when the station stopped) the time of its
    /// last event.
    pub cleared_ms: i64,
    /// Its state after its last event.
    pub state: AlarmState,
}

#[derive(Debug, Clone)]
struct Inst {
    /// Random id of this instance (128 bits, hex): what acknowledgements name across stations.
    instance: String,
    since_ms: i64,
    onset_ms: i64,
    /// The condition is present (else: latched awaiting acknowledgement).
    condition: bool,
    ack: Option<(String, i64)>,
    /// The station where the acknowledgement was made, when it was another one.
    ack_station: Option<String>,
    level: u32,
    next_escalation_ms: i64,
    /// The condition cleared, unacknowledged, without latching: a silent mark until reviewed.
    unreviewed: bool,
    /// When the condition cleared (latched or unreviewed).
    cleared_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct Slot {
    /// The condition as last said (its code and label as first said; its value the last one
    /// seen; its message the last one while present).
    spec: Spec,
    /// The condition is present (pending or raised) since.
    pending_since: Option<i64>,
    /// The condition has been absent since (while `pending_since` is remembered): a pending
    /// condition ends only once it has been absent for its whole delay, so a normal reading
    /// between abnormal ones does not restart the delay.
    absent_since: Option<i64>,
    alarm: Option<Inst>,
}

impl Slot {
    /// A condition not seen present yet, with no alarm.
    fn new(spec: Spec) -> Slot {
        Slot {
            spec,
            pending_since: None,
            absent_since: None,
            alarm: None,
        }
    }
}

#[derive(Debug, Clone)]
struct DeviceTrack {
    last_seen_ms: i64,
    online: bool,
    conditions: BTreeSet<String>,
}

/// The alarm state of a station's ward.
#[derive(Debug, Clone)]
pub struct AlarmMachine {
    cfg: AlarmConfig,
    default_limits: Vec<Limit>,
    limits: BTreeMap<BedId, Vec<Limit>>,
    slots: BTreeMap<String, Slot>,
    /// Latest alarmable value per bed and vital.
    last: BTreeMap<BedId, BTreeMap<Vital, f64>>,
    /// When each bed was first seen.
    beds: BTreeMap<BedId, i64>,
    devices: BTreeMap<(BedId, String), DeviceTrack>,
    /// Remote patients' beds: their devices report a few times a day, never checked for
    /// [`COMM_LOST`] ([`AlarmMachine::set_remote`]).
    remote: BTreeSet<BedId>,
    gaps: BTreeMap<(BedId, String), (i64, String)>,
    pauses: BTreeMap<PauseScope, Pause>,
    /// Pauses a user ended early, with `until_ms` at the end: published to the ward's other
    /// stations (`sync_state`) so that their pause ends too. Forgotten once the pause would
    /// have run out anyway.
    ended_pauses: BTreeMap<PauseScope, Pause>,
    manual: BTreeMap<BedId, News2Manual>,
    /// Last acknowledgement per alarm id (this station's and others'), with when it arrived.
    acks: BTreeMap<String, KnownAck>,
    /// Other stations' alarm instance ids → the instance here they were matched to (once
    /// matched, never to another: an acknowledgement of an instance that ended does not
    /// acknowledge the next one).
    linked: BTreeMap<String, String>,
    /// Time of the latest alarmable ECG heart rate per bed ([`HR_VALID_MS`]).
    hr_seen: BTreeMap<BedId, i64>,
    /// Beds in standby (no patient): physiological alarms off.
    standby: BTreeSet<BedId>,
    /// A shown alarm's value changed without an event (the list is worth sending again).
    shown_changed: bool,
}

#[derive(Debug, Clone)]
struct KnownAck {
    entry: AckEntry,
    /// When it reached this station.
    received_ms: i64,
}

/// A user or station name from another station's state, as this one keeps it: no control
/// characters, at most 64 characters.
fn remote_name(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// A fresh alarm instance id: 128 random bits from the thread's CSPRNG, in hex.
fn new_instance_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn audible(pauses: &BTreeMap<PauseScope, Pause>, s: &Slot, i: &Inst, now: i64) -> bool {
    if (i.condition && i.ack.is_some()) || i.unreviewed {
        return false;
    }
    if s.spec.code == COMM_LOST {
        return true;
    }
    let bed = PauseScope::Bed(s.spec.bed.clone());
    for scope in [&PauseScope::All, &bed] {
        if let Some(p) = pauses.get(scope).filter(|p| now < p.until_ms) {
            let breaks_through = i.since_ms >= p.start_ms && s.spec.priority > p.ceiling;
            if !breaks_through {
                return false;
            }
        }
    }
    true
}

fn state_of(pauses: &BTreeMap<PauseScope, Pause>, s: &Slot, i: &Inst, now: i64) -> AlarmState {
    if i.unreviewed {
        AlarmState::Unreviewed
    } else if !i.condition {
        AlarmState::LatchedAwaitingAck
    } else if i.ack.is_some() {
        AlarmState::Acknowledged
    } else if !audible(pauses, s, i, now) {
        AlarmState::AudioPaused
    } else {
        AlarmState::Active
    }
}

struct EvArgs<'a> {
    kind: AlarmEventKind,
    now: i64,
    user: Option<&'a str>,
    message: String,
}

fn event(
    pauses: &BTreeMap<PauseScope, Pause>,
    id: &str,
    s: &Slot,
    inst: Option<&Inst>,
    a: EvArgs<'_>,
) -> AlarmEvent {
    let (state, level, aud) = match inst {
        Some(i) => (
            state_of(pauses, s, i, a.now),
            i.level,
            audible(pauses, s, i, a.now),
        ),
        None => (AlarmState::Resolved, 0, false),
    };
    AlarmEvent {
        t_ms: a.now,
        bed: s.spec.bed.clone(),
        alarm_id: id.to_string(),
        code: s.spec.code.clone(),
        kind: a.kind,
        priority: s.spec.priority,
        value: s.spec.value,
        limit: s.spec.limit,
        message: a.message,
        user: a.user.map(str::to_string),
        station: None,
        state,
        level,
        audible: aud,
    }
}

/// Whether another station's acknowledgement `a` of an instance not matched yet may be matched
/// to the instance `i` here, of a bed first seen at `bed_first_ms`: same onset (within
/// tolerance), or the condition began before this station watched the bed and has been present
/// since it did; and the acknowledgement was made after the alarm began here (an
/// acknowledgement cannot be made in advance of an alarm).
fn ack_matches(a: &AckEntry, i: &Inst, bed_first_ms: i64) -> bool {
    let same = i.onset_ms.saturating_sub(a.onset_ms).saturating_abs() <= SYNC_TOLERANCE_MS
        && i.onset_ms <= a.t_ms.saturating_add(ACK_CLOCK_SLACK_MS);
    let before_watched = a.onset_ms < bed_first_ms
        && a.onset_ms <= a.t_ms
        && i.onset_ms <= bed_first_ms + SYNC_TOLERANCE_MS;
    same || before_watched
}

/// What limit `l` of `bed` says, with the value seen (none: the condition is not present).
fn limit_spec(bed: &BedId, l: &Limit, value: Option<f64>) -> Spec {
    Spec {
        bed: bed.clone(),
        code: l.code(),
        label: l.label(),
        class: AlarmClass::Physiological,
        priority: l.priority,
        delay_ms: l.delay_ms,
        value,
        limit: Some(l.threshold),
        message: value.map(|v| l.message(v)).unwrap_or_default(),
    }
}

fn device_condition(raw: &str) -> (String, String, Priority) {
    let code: String = raw
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let (label, p) = match code.as_str() {
        "LEADS_OFF" => ("LEADS OFF", Priority::Medium),
        "SENSOR_OFF" => ("SENSOR OFF", Priority::Medium),
        "LOW_BATTERY" => ("LOW BATTERY", Priority::Low),
        other => (other, Priority::Low),
    };
    (code.clone(), label.to_string(), p)
}

impl AlarmMachine {
    /// A machine with the profile's default limits.
    pub fn new(cfg: AlarmConfig) -> Self {
        let limits = cfg.profile.limits();
        AlarmMachine::with_limits(cfg, limits)
    }

    /// A machine whose new patients get `limits`.
    pub fn with_limits(cfg: AlarmConfig, limits: Vec<Limit>) -> Self {
        AlarmMachine {
            cfg,
            default_limits: limits,
            limits: BTreeMap::new(),
            slots: BTreeMap::new(),
            last: BTreeMap::new(),
            beds: BTreeMap::new(),
            devices: BTreeMap::new(),
            remote: BTreeSet::new(),
            gaps: BTreeMap::new(),
            pauses: BTreeMap::new(),
            ended_pauses: BTreeMap::new(),
            manual: BTreeMap::new(),
            acks: BTreeMap::new(),
            linked: BTreeMap::new(),
            hr_seen: BTreeMap::new(),
            standby: BTreeSet::new(),
            shown_changed: false,
        }
    }

    pub fn config(&self) -> &AlarmConfig {
        &self.cfg
    }

    /// The limits of a bed without its own (the ward profile's).
    pub fn default_limits(&self) -> &[Limit] {
        &self.default_limits
    }

    /// The limits of a bed (its own, else the defaults).
    pub fn limits(&self, bed: &BedId) -> Vec<Limit> {
        self.limits.get(bed).unwrap_or(&self.default_limits).clone()
    }

    /// Admin setting: the ward profile, whose limits new patients (beds without limits of
    /// their own) get from now on. Beds with their own limits keep them.
    pub fn set_profile(&mut self, profile: WardProfile) {
        self.cfg.profile = profile;
        self.default_limits = profile.limits();
    }

    /// Put back a bed's limits saved before a restart (no event: nothing changed). Checked like
    /// [`AlarmMachine::set_limits`] ([`super::limits::validate`]).
    pub fn restore_limits(&mut self, bed: BedId, limits: Vec<Limit>) -> Result<(), AlarmError> {
        super::limits::validate(&limits).map_err(AlarmError::InvalidLimit)?;
        self.limits.insert(bed, limits);
        Ok(())
    }

    /// Admin setting: whether every high-priority alarm latches ([`AlarmConfig::latch_high`]).
    pub fn set_latch_high(&mut self, on: bool) {
        self.cfg.latch_high = on;
    }

    /// Whether a shown alarm's value changed since the last call without an event of its own
    /// (the engine then sends the alarm list again, so alarm text stays in step with the
    /// numerics). Clears the flag.
    pub fn take_shown_changed(&mut self) -> bool {
        std::mem::take(&mut self.shown_changed)
    }

    /// Admin setting: whether alarms with `code` latch.
    pub fn set_latching(&mut self, code: &str, latching: bool) {
        if latching {
            self.cfg.latching.insert(code.to_string());
        } else {
            self.cfg.latching.remove(code);
        }
    }

    /// A user acts on `bed`: the user must be named; the bed is noted.
    fn user_action(&mut self, bed: &BedId, user: &str, now: i64) -> Result<(), AlarmError> {
        if user.trim().is_empty() {
            return Err(AlarmError::NoUser);
        }
        self.note_bed(bed, now);
        Ok(())
    }

    fn note_bed(&mut self, bed: &BedId, now: i64) {
        if !self.beds.contains_key(bed) {
            self.beds.insert(bed.clone(), now);
        }
    }

    /// [`AlarmMachine::update`] of one condition alone: its events.
    fn condition(&mut self, id: &str, spec: Spec, present: bool, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        self.update(id, spec, present, now, &mut out);
        out
    }

    /// Update one condition; raise, latch or resolve as needed.
    fn update(&mut self, id: &str, spec: Spec, present: bool, now: i64, out: &mut Vec<AlarmEvent>) {
        if !present && !self.slots.contains_key(id) {
            return;
        }
        let latching = self.cfg.latches(&spec.code, spec.priority);
        // A new slot takes the whole spec (it is present: see above); an existing one keeps
        // its code and label.
        let slot = self
            .slots
            .entry(id.to_string())
            .or_insert_with(|| Slot::new(spec.clone()));
        slot.spec.class = spec.class;
        slot.spec.priority = spec.priority;
        slot.spec.delay_ms = spec.delay_ms;
        slot.spec.limit = spec.limit;
        if spec.value.is_some() {
            if slot.spec.value != spec.value && slot.alarm.as_ref().is_some_and(|i| i.condition) {
                self.shown_changed = true;
            }
            slot.spec.value = spec.value;
        }
        if present {
            slot.spec.message = spec.message;
            slot.absent_since = None;
            let since = *slot.pending_since.get_or_insert(now);
            match slot.alarm.as_mut() {
                // No alarm, or only the mark of one that cleared unseen: raise once due (the
                // new alarm replaces the mark).
                None => {
                    if now - since >= slot.spec.delay_ms {
                        self.raise(id, now, out);
                    }
                }
                Some(i) if i.unreviewed => {
                    if now - since >= slot.spec.delay_ms {
                        self.raise(id, now, out);
                    }
                }
                // A latched alarm whose condition came back: shown as present again (it was
                // never acknowledged, so nothing to reset).
                Some(i) if !i.condition => {
                    i.condition = true;
                    i.cleared_ms = None;
                }
                Some(_) => {}
            }
        } else {
            // The onset is forgotten only after the condition has been absent for its whole
            // delay: a normal reading now and then (an artefact, or a forged one) between
            // abnormal ones cannot hold an alarm off, and a condition that comes back at once
            // is raised again without a new delay.
            let absent = *slot.absent_since.get_or_insert(now);
            if now - absent >= slot.spec.delay_ms {
                slot.pending_since = None;
                slot.absent_since = None;
            }
            let resolve_msg = match slot.spec.value {
                Some(v) => format!("{} resolved at {}", slot.spec.label, fmt_value(v)),
                None => format!("{} resolved", slot.spec.label),
            };
            let mut remove = slot.alarm.is_none() && slot.pending_since.is_none();
            let shown = slot
                .alarm
                .as_ref()
                .filter(|i| i.condition)
                .map(|i| i.ack.is_some());
            if let Some(acked) = shown {
                if let Some(i) = slot.alarm.as_mut() {
                    i.condition = false;
                    i.cleared_ms = Some(now);
                }
                let (kind, message) = if !acked && !latching && slot.spec.priority == Priority::High
                {
                    // Cleared before anyone saw it: resolved as a condition, but kept on
                    // screen, silent, until reviewed.
                    if let Some(i) = slot.alarm.as_mut() {
                        i.unreviewed = true;
                    }
                    (
                        AlarmEventKind::Resolve,
                        format!("{resolve_msg}; not yet reviewed"),
                    )
                } else if acked || !latching {
                    // Over: a new onset starts a new instance (with its own delay).
                    slot.alarm = None;
                    slot.pending_since = None;
                    slot.absent_since = None;
                    remove = true;
                    (AlarmEventKind::Resolve, resolve_msg)
                } else {
                    (
                        AlarmEventKind::Latch,
                        format!("{} cleared; latched until acknowledged", slot.spec.label),
                    )
                };
                let snap = slot.alarm.clone();
                out.push(event(
                    &self.pauses,
                    id,
                    slot,
                    snap.as_ref(),
                    EvArgs {
                        kind,
                        now,
                        user: None,
                        message,
                    },
                ));
            }
            if remove {
                self.slots.remove(id);
            }
        }
    }

    fn raise(&mut self, id: &str, now: i64, out: &mut Vec<AlarmEvent>) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        let onset = slot.pending_since.unwrap_or(now);
        let mut inst = Inst {
            instance: new_instance_id(),
            since_ms: now,
            onset_ms: onset,
            condition: true,
            ack: None,
            ack_station: None,
            level: 0,
            next_escalation_ms: now + self.cfg.escalation.first(slot.spec.priority),
            unreviewed: false,
            cleared_ms: None,
        };
        out.push(event(
            &self.pauses,
            id,
            slot,
            Some(&inst),
            EvArgs {
                kind: AlarmEventKind::Raise,
                now,
                user: None,
                message: slot.spec.message.clone(),
            },
        ));
        // Acknowledged at another station just before this one raised it (same readings), or
        // before this station watched the bed: an instance of another station not matched yet.
        let first = self.beds.get(&slot.spec.bed).copied().unwrap_or(now);
        let early = self.acks.get(id).filter(|k| {
            let a = &k.entry;
            let recent = now - k.received_ms <= EARLY_ACK_MS || a.onset_ms < first;
            recent
                && a.instance != inst.instance
                && !self.linked.contains_key(&a.instance)
                && ack_matches(a, &inst, first)
        });
        if let Some(k) = early {
            let a = k.entry.clone();
            self.linked
                .insert(a.instance.clone(), inst.instance.clone());
            inst.ack = Some((a.user.clone(), a.t_ms));
            inst.ack_station = Some(a.station.clone());
            let msg = format!(
                "{} acknowledged by {} at station {}",
                slot.spec.label, a.user, a.station
            );
            let mut ev = event(
                &self.pauses,
                id,
                slot,
                Some(&inst),
                EvArgs {
                    kind: AlarmEventKind::Acknowledge,
                    now,
                    user: Some(&a.user),
                    message: msg,
                },
            );
            ev.station = Some(a.station);
            out.push(ev);
        }
        slot.alarm = Some(inst);
    }

    /// One reading of one bed.
    pub fn observe(&mut self, bed: &BedId, reading: &Reading, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        let Some(value) = reading
            .value
            .filter(|v| reading.alarmable() && v.is_finite())
        else {
            return out;
        };
        self.note_bed(bed, now);
        self.last
            .entry(bed.clone())
            .or_default()
            .insert(reading.vital, value);
        if reading.vital == Vital::Hr {
            self.hr_seen.insert(bed.clone(), now);
        }
        // A bed in standby (no patient) raises no physiological alarm.
        if self.standby.contains(bed) {
            return out;
        }
        // One condition, one alarm: with a valid ECG heart rate the pulse rate does not alarm.
        let pr_covered = reading.vital == Vital::Pr && self.hr_valid(bed, now);
        for l in self.limits_of(bed, reading.vital) {
            if pr_covered {
                self.clear_limit(bed, &l, now, &mut out);
            } else {
                self.eval_limit(bed, &l, value, now, &mut out);
            }
        }
        if matches!(
            reading.vital,
            Vital::Rr | Vital::SpO2 | Vital::NibpSys | Vital::Hr | Vital::Pr | Vital::Temp
        ) {
            self.eval_news2(bed, now, &mut out);
        }
        out
    }

    /// The source revised the reading of `vital` that the alarms of `bed` evaluated last (the
    /// engine checks that it is that very reading, from the device that sent it): a corrected
    /// or amended result is evaluated in its place; an entered-in-error or cancelled one
    /// withdraws it, so the conditions it set end (resolved, or latched until acknowledged when
    /// the alarm latches) and its onset is forgotten. Every event says why.
    pub fn revise(
        &mut self,
        bed: &BedId,
        device: &str,
        reading: &Reading,
        now: i64,
    ) -> Vec<AlarmEvent> {
        let why = match reading.status {
            ObsStatus::EnteredInError => "entered in error",
            ObsStatus::Cancelled => "cancelled",
            ObsStatus::Corrected => "corrected",
            _ => "amended",
        };
        let why = format!("{} reading from {device} {why}", reading.vital.info().name);
        let mut out = if reading.alarmable() {
            self.observe(bed, reading, now)
        } else {
            let mut out = Vec::new();
            if let Some(m) = self.last.get_mut(bed) {
                m.remove(&reading.vital);
            }
            if reading.vital == Vital::Hr {
                self.hr_seen.remove(bed);
            }
            for l in self.limits_of(bed, reading.vital) {
                self.clear_limit(bed, &l, now, &mut out);
                let id = format!("{}/{}", bed.key(), l.code());
                if let Some(s) = self.slots.get_mut(&id) {
                    s.pending_since = None;
                    s.absent_since = None;
                    if s.alarm.is_none() {
                        self.slots.remove(&id);
                    }
                }
            }
            out
        };
        for e in &mut out {
            e.message = format!("{why}: {}", e.message);
        }
        out
    }

    /// Whether `bed` has a valid ECG heart rate now: an alarmable HR within [`HR_VALID_MS`] and
    /// no device of the bed reporting its leads off.
    pub fn hr_valid(&self, bed: &BedId, now: i64) -> bool {
        let recent = self
            .hr_seen
            .get(bed)
            .is_some_and(|&t| now - t <= HR_VALID_MS);
        let leads_off = self
            .devices
            .iter()
            .any(|((b, _), t)| b == bed && t.online && t.conditions.contains("LEADS_OFF"));
        recent && !leads_off
    }

    /// The condition of limit `l` is not present (the limit was switched off, or another
    /// alarm covers it).
    /// The limits in force for one vital of a bed (its own, else the ward's defaults).
    fn limits_of(&self, bed: &BedId, vital: Vital) -> Vec<Limit> {
        self.limits
            .get(bed)
            .unwrap_or(&self.default_limits)
            .iter()
            .filter(|l| l.vital == vital)
            .copied()
            .collect()
    }

    fn clear_limit(&mut self, bed: &BedId, l: &Limit, now: i64, out: &mut Vec<AlarmEvent>) {
        let id = format!("{}/{}", bed.key(), l.code());
        self.update(&id, limit_spec(bed, l, None), false, now, out);
    }

    /// Standby (no patient in the bed, or a nurse paused monitoring): physiological alarms
    /// are off and those shown end. Technical alarms go on. Leaving standby evaluates the
    /// latest values again.
    pub fn set_standby(
        &mut self,
        bed: &BedId,
        on: bool,
        user: &str,
        now: i64,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        self.user_action(bed, user, now)?;
        let changed = if on {
            self.standby.insert(bed.clone())
        } else {
            self.standby.remove(bed)
        };
        if !changed {
            return Ok(Vec::new());
        }
        let mut out = vec![self.settings_event(
            bed,
            "STANDBY",
            user,
            now,
            if on {
                "standby: physiological alarms off".into()
            } else {
                "monitoring resumed: physiological alarms on".into()
            },
        )];
        if on {
            let ids: Vec<String> = self
                .slots
                .iter()
                .filter(|(_, s)| &s.spec.bed == bed && s.spec.class == AlarmClass::Physiological)
                .map(|(k, _)| k.clone())
                .collect();
            for id in ids {
                // Ended on purpose by a user: no latch and no unreviewed mark is left.
                if let Some(s) = self.slots.remove(&id) {
                    if s.alarm.is_some() {
                        out.push(event(
                            &self.pauses,
                            &id,
                            &s,
                            None,
                            EvArgs {
                                kind: AlarmEventKind::Resolve,
                                now,
                                user: Some(user),
                                message: format!("{} ended: bed in standby", s.spec.label),
                            },
                        ));
                    }
                }
            }
        } else {
            let last = self.last.get(bed).cloned().unwrap_or_default();
            for l in self.limits(bed) {
                if let Some(&v) = last.get(&l.vital) {
                    if l.vital == Vital::Pr && self.hr_valid(bed, now) {
                        continue;
                    }
                    self.eval_limit(bed, &l, v, now, &mut out);
                }
            }
            self.eval_news2(bed, now, &mut out);
        }
        Ok(out)
    }

    /// Put back an alarm the station showed, unacknowledged, when it stopped (read from the
    /// alarm history by `query::unfinished_alarms`), so that a restart never wipes an alarm
    /// nobody has seen. Only physiological alarms of a bed's limits and NEWS2 bands come back
    /// (technical ones are detected again from the devices). Their condition is taken as over:
    /// one that latches comes back latched (sounding until acknowledged), a high-priority one
    /// that does not comes back as a silent "not yet reviewed" mark; anything else is not put
    /// back (a condition still present is raised again by the next readings). Returns the
    /// state it was put back in. No event: the history already holds it.
    pub fn restore_unfinished(&mut self, u: &Unfinished, now: i64) -> Option<AlarmState> {
        if self.standby.contains(&u.bed)
            || self.slots.contains_key(&u.alarm_id)
            || u.alarm_id != format!("{}/{}", u.bed.key(), u.code)
        {
            return None;
        }
        let (label, delay_ms) = match self.limits(&u.bed).iter().find(|l| l.code() == u.code) {
            Some(l) => (l.label(), l.delay_ms),
            None => {
                let band = Band::ALARMING.into_iter().find(|b| b.code() == u.code)?;
                (
                    format!("NEWS2 {}", band.as_str().to_ascii_uppercase()),
                    self.cfg.news2.delay_ms,
                )
            }
        };
        let latching = self.cfg.latches(&u.code, u.priority);
        let state = match u.state {
            AlarmState::Active | AlarmState::AudioPaused | AlarmState::LatchedAwaitingAck
                if latching =>
            {
                AlarmState::LatchedAwaitingAck
            }
            AlarmState::Active
            | AlarmState::AudioPaused
            | AlarmState::LatchedAwaitingAck
            | AlarmState::Unreviewed
                if u.priority == Priority::High =>
            {
                AlarmState::Unreviewed
            }
            _ => return None,
        };
        let inst = Inst {
            instance: new_instance_id(),
            since_ms: u.since_ms,
            onset_ms: u.since_ms,
            condition: false,
            ack: None,
            ack_station: None,
            level: 0,
            next_escalation_ms: now + self.cfg.escalation.first(u.priority),
            unreviewed: state == AlarmState::Unreviewed,
            cleared_ms: Some(u.cleared_ms),
        };
        self.slots.insert(
            u.alarm_id.clone(),
            Slot {
                alarm: Some(inst),
                ..Slot::new(Spec {
                    bed: u.bed.clone(),
                    code: u.code.clone(),
                    label,
                    class: AlarmClass::Physiological,
                    priority: u.priority,
                    delay_ms,
                    value: u.value,
                    limit: u.limit,
                    message: String::new(),
                })
            },
        );
        Some(state)
    }

    /// Put back a bed's standby saved before a restart (no event: nothing changed).
    pub fn restore_standby(&mut self, bed: BedId) {
        self.standby.insert(bed);
    }

    /// Whether `bed` is in standby.
    pub fn is_standby(&self, bed: &BedId) -> bool {
        self.standby.contains(bed)
    }

    /// Beds in standby.
    pub fn standby_beds(&self) -> Vec<BedId> {
        self.standby.iter().cloned().collect()
    }

    fn eval_limit(
        &mut self,
        bed: &BedId,
        l: &Limit,
        value: f64,
        now: i64,
        out: &mut Vec<AlarmEvent>,
    ) {
        let id = format!("{}/{}", bed.key(), l.code());
        let was = self
            .slots
            .get(&id)
            .is_some_and(|s| s.pending_since.is_some() && s.absent_since.is_none());
        let present = l.breached(value, was);
        self.update(&id, limit_spec(bed, l, Some(value)), present, now, out);
    }

    /// The NEWS2 of a bed from its latest vitals and manual entries (`None` until RR, SpO2,
    /// systolic pressure, pulse (HR, else PR) and temperature have all been seen).
    pub fn news2(&self, bed: &BedId) -> Option<News2Score> {
        let last = self.last.get(bed)?;
        let m = self.manual.get(bed).copied().unwrap_or_default();
        let input = News2Input {
            rr: *last.get(&Vital::Rr)?,
            spo2: *last.get(&Vital::SpO2)?,
            scale2: m.scale2,
            oxygen: m.oxygen,
            sbp: *last.get(&Vital::NibpSys)?,
            pulse: *last.get(&Vital::Hr).or_else(|| last.get(&Vital::Pr))?,
            consciousness: m.consciousness,
            temp: *last.get(&Vital::Temp)?,
        };
        Some(news2::score(&input))
    }

    fn eval_news2(&mut self, bed: &BedId, now: i64, out: &mut Vec<AlarmEvent>) {
        if !self.cfg.news2.enabled || self.standby.contains(bed) {
            return;
        }
        // Incomplete inputs change nothing: a missing value never clears an alarm.
        let Some(score) = self.news2(bed) else {
            return;
        };
        for band in Band::ALARMING {
            let present = score.band == band && band >= self.cfg.news2.min_band;
            let Some(priority) = band.priority() else {
                continue;
            };
            let spec = Spec {
                bed: bed.clone(),
                code: band.code().to_string(),
                label: format!("NEWS2 {}", band.as_str().to_ascii_uppercase()),
                class: AlarmClass::Physiological,
                priority,
                delay_ms: self.cfg.news2.delay_ms,
                value: Some(f64::from(score.total)),
                limit: None,
                message: format!("NEWS2 {} ({} risk)", score.total, band.as_str()),
            };
            let id = format!("{}/{}", bed.key(), band.code());
            self.update(&id, spec, present, now, out);
        }
    }

    /// NEWS2 inputs entered by a nurse for a bed.
    pub fn set_news2_manual(
        &mut self,
        bed: &BedId,
        manual: News2Manual,
        user: &str,
        now: i64,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        self.user_action(bed, user, now)?;
        self.manual.insert(bed.clone(), manual);
        let mut out = vec![self.settings_event(
            bed,
            "NEWS2_INPUT",
            user,
            now,
            format!(
                "NEWS2 inputs: consciousness {}, {}, scale {}",
                manual.consciousness.letter(),
                if manual.oxygen { "oxygen" } else { "air" },
                if manual.scale2 { 2 } else { 1 }
            ),
        )];
        self.eval_news2(bed, now, &mut out);
        Ok(out)
    }

    fn settings_event(
        &self,
        bed: &BedId,
        code: &str,
        user: &str,
        now: i64,
        message: String,
    ) -> AlarmEvent {
        AlarmEvent {
            t_ms: now,
            bed: bed.clone(),
            alarm_id: format!("{}/{code}", bed.key()),
            code: code.to_string(),
            kind: AlarmEventKind::Settings,
            priority: Priority::Low,
            value: None,
            limit: None,
            message,
            user: Some(user.to_string()),
            station: None,
            state: AlarmState::Resolved,
            level: 0,
            audible: false,
        }
    }

    /// Replace a bed's limits; re-evaluates them against the latest values.
    pub fn set_limits(
        &mut self,
        bed: &BedId,
        limits: Vec<Limit>,
        user: &str,
        now: i64,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        if user.trim().is_empty() {
            return Err(AlarmError::NoUser);
        }
        super::limits::validate(&limits).map_err(AlarmError::InvalidLimit)?;
        self.note_bed(bed, now);
        let text: Vec<String> = limits
            .iter()
            .map(|l| format!("{} {}", l.code(), fmt_value(l.threshold)))
            .collect();
        let mut out = vec![self.settings_event(
            bed,
            "LIMITS",
            user,
            now,
            format!("limits set: {}", text.join(", ")),
        )];
        let new_codes: BTreeSet<String> = limits.iter().map(Limit::code).collect();
        let old = self.limits(bed);
        self.limits.insert(bed.clone(), limits.clone());
        // A limit switched off: its condition is no longer present.
        for l in old.iter().filter(|l| !new_codes.contains(&l.code())) {
            self.clear_limit(bed, l, now, &mut out);
        }
        let last = self.last.get(bed).cloned().unwrap_or_default();
        for l in &limits {
            if self.standby.contains(bed) || (l.vital == Vital::Pr && self.hr_valid(bed, now)) {
                continue;
            }
            if let Some(&v) = last.get(&l.vital) {
                self.eval_limit(bed, l, v, now, &mut out);
            }
        }
        Ok(out)
    }

    /// Data (any message) from a device: communication is up.
    pub fn device_seen(&mut self, bed: &BedId, device: &str, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        self.note_bed(bed, now);
        let key = (bed.clone(), device.to_string());
        match self.devices.get_mut(&key) {
            Some(t) => {
                t.last_seen_ms = t.last_seen_ms.max(now);
                t.online = true;
            }
            None => {
                self.devices.insert(
                    key,
                    DeviceTrack {
                        last_seen_ms: now,
                        online: true,
                        conditions: BTreeSet::new(),
                    },
                );
            }
        }
        let id = format!("{}/{COMM_LOST}@{device}", bed.key());
        if self.slots.contains_key(&id) {
            let spec = self.comm_spec(bed, device, "data received again".into());
            self.update(&id, spec, false, now, &mut out);
        }
        out
    }

    /// Mark `bed` a remote patient's (`remote`) or a ward bed again. A remote patient's home
    /// devices report a few times a day and keep no connection: their silence, or an offline
    /// status, is the care plan's business (its `device_silent` alert), never [`COMM_LOST`],
    /// so a standing communication-lost alarm of theirs resolves and none is raised while the
    /// bed is remote. Their data and conditions are tracked as any device's. Made a ward bed
    /// again (a discharge), the bed forgets them: a device is expected only once it sends again.
    pub fn set_remote(&mut self, bed: &BedId, remote: bool, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        if !remote {
            // A discharged patient's home devices are not the bed's from now on: forgotten,
            // tracked again (and expected) only if they send again.
            if self.remote.remove(bed) {
                self.devices.retain(|(b, _), _| b != bed);
            }
            return out;
        }
        if !self.remote.insert(bed.clone()) {
            return out;
        }
        let devices: Vec<String> = self
            .devices
            .keys()
            .filter(|(b, _)| b == bed)
            .map(|(_, d)| d.clone())
            .collect();
        for device in devices {
            let id = format!("{}/{COMM_LOST}@{device}", bed.key());
            if self.slots.contains_key(&id) {
                let spec = self.comm_spec(bed, &device, "a remote patient's device".into());
                self.update(&id, spec, false, now, &mut out);
            }
        }
        out
    }

    fn comm_spec(&self, bed: &BedId, device: &str, message: String) -> Spec {
        Spec::technical(
            bed.clone(),
            COMM_LOST,
            format!("COMM LOST {device}"),
            self.cfg.comm_lost_priority,
            message,
        )
    }

    /// A device's status: online / offline (offline = communication lost at once) and its
    /// technical conditions (leads off, sensor off, low battery, ...).
    pub fn device_status(&mut self, s: &DeviceStatus, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        self.note_bed(&s.bed, now);
        let key = (s.bed.clone(), s.device.clone());
        let new: BTreeSet<String> = s.conditions.iter().cloned().collect();
        let old = self
            .devices
            .get(&key)
            .map(|t| t.conditions.clone())
            .unwrap_or_default();
        self.devices.insert(
            key,
            DeviceTrack {
                last_seen_ms: now,
                online: s.online,
                conditions: new.clone(),
            },
        );
        let id = format!("{}/{COMM_LOST}@{}", s.bed.key(), s.device);
        let spec = self.comm_spec(&s.bed, &s.device, format!("{} reports offline", s.device));
        let offline = !s.online && !self.remote.contains(&s.bed);
        self.update(&id, spec, offline, now, &mut out);
        for raw in old.union(&new) {
            let (code, label, priority) = device_condition(raw);
            let spec = Spec::technical(
                s.bed.clone(),
                code.clone(),
                format!("{label} {}", s.device),
                priority,
                format!("{label} ({})", s.device),
            );
            let id = format!("{}/{code}@{}", s.bed.key(), s.device);
            self.update(&id, spec, new.contains(raw), now, &mut out);
        }
        out
    }

    /// A recorded data gap (missing waveform chunks) of a device.
    pub fn data_gap(
        &mut self,
        bed: &BedId,
        device: &str,
        channel: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        self.note_bed(bed, now);
        let until = now + self.cfg.gap_display_ms;
        self.gaps.insert(
            (bed.clone(), device.to_string()),
            (until, channel.to_string()),
        );
        let spec = Self::gap_spec(bed, device, channel);
        let id = format!("{}/{DATA_GAP}@{device}", bed.key());
        self.condition(&id, spec, true, now)
    }

    /// The bed that station-wide technical alarms (not tied to a patient) are raised on.
    pub fn station_bed() -> BedId {
        BedId::new("*", "station")
    }

    /// The station's own database cannot be written (`failing`) or writes again: raises or
    /// resolves the [`STORE_FAILED`] technical alarm (medium priority, no delay) on
    /// [`AlarmMachine::station_bed`]. Monitoring and the other alarms go on either way.
    pub fn store_failing(&mut self, failing: bool, message: &str, now: i64) -> Vec<AlarmEvent> {
        self.station_technical(STORE_FAILED, "STORAGE FAILED", failing, message, now)
    }

    /// A technical condition of the station itself (not of a bed): raised or resolved on
    /// [`AlarmMachine::station_bed`] with medium priority and no delay (e.g. [`STORE_FAILED`],
    /// [`AUDIO_FAILED`]). Nothing happens while the state does not change.
    pub fn station_technical(
        &mut self,
        code: &str,
        label: &str,
        present: bool,
        message: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        let bed = Self::station_bed();
        let id = format!("{}/{code}", bed.key());
        if present == self.slots.contains_key(&id) {
            return Vec::new();
        }
        self.simple_technical(bed, code, label, present, message, now)
    }

    /// A medium-priority technical alarm without delay (`code` on `bed`), raised while
    /// `present`.
    fn simple_technical(
        &mut self,
        bed: BedId,
        code: &str,
        label: &str,
        present: bool,
        message: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        let id = format!("{}/{code}", bed.key());
        let spec = Spec::technical(
            bed,
            code,
            label.into(),
            Priority::Medium,
            message.to_string(),
        );
        self.condition(&id, spec, present, now)
    }

    /// Raise (`present`) or resolve the [`SECURITY`] technical alarm (medium priority, no
    /// delay) of `bed`, or of the station for `None`: a high-severity security event is open.
    /// On a bed it says that bed's readings may be forged (someone else publishes as it).
    pub fn security(
        &mut self,
        bed: Option<&BedId>,
        present: bool,
        message: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        // On a bed the label itself says what it means for the nurse (the bar shows labels).
        let label = if bed.is_some() {
            "SECURITY: DATA MAY BE FORGED"
        } else {
            "SECURITY EVENT"
        };
        let bed = bed.cloned().unwrap_or_else(Self::station_bed);
        self.simple_technical(bed, SECURITY, label, present, message, now)
    }

    /// Raise (`present`) or resolve the [`CARE_PLAN`] technical alarm of a remote patient's
    /// `bed` (medium priority, raised after [`CARE_PLAN_DELAY_MS`]): an urgent care-plan alert
    /// stands on it (`message` says which). Call it on every evaluation: the delay runs from the
    /// first call with `present`. Warnings stay off the alarm bar (the remote worklist and a desktop
    /// notification show them); an urgent one sounds, is acknowledged and escalates like any
    /// other alarm, and apart from the bed's physiological alarms: acknowledging one never
    /// silences the other.
    pub fn care_plan(
        &mut self,
        bed: &BedId,
        present: bool,
        message: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        if present {
            self.note_bed(bed, now);
        }
        let id = format!("{}/{CARE_PLAN}", bed.key());
        let mut spec = Spec::technical(
            bed.clone(),
            CARE_PLAN,
            "CARE PLAN: URGENT".into(),
            Priority::Medium,
            message.to_string(),
        );
        spec.delay_ms = CARE_PLAN_DELAY_MS;
        self.condition(&id, spec, present, now)
    }

    /// Raise (`present`) or resolve the [`DEVICE_OVER_BUDGET`] technical alarm of `device` on
    /// `bed` (medium priority, no delay): the device sends more than its budget, its excess is
    /// dropped (the bed's data from it is incomplete; it may be faulty or an attacker).
    pub fn device_over_budget(
        &mut self,
        bed: &BedId,
        device: &str,
        present: bool,
        message: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        let id = format!("{}/{DEVICE_OVER_BUDGET}@{device}", bed.key());
        if present {
            self.note_bed(bed, now);
        }
        let spec = Spec::technical(
            bed.clone(),
            DEVICE_OVER_BUDGET,
            format!("DEVICE FLOODING {device}"),
            Priority::Medium,
            message.to_string(),
        );
        self.condition(&id, spec, present, now)
    }

    fn gap_spec(bed: &BedId, device: &str, channel: &str) -> Spec {
        Spec::technical(
            bed.clone(),
            DATA_GAP,
            format!("DATA GAP {device}"),
            Priority::Low,
            format!("data missing from {device} ({channel})"),
        )
    }

    /// Time-based rules: condition delays, communication lost, pause expiry, gap display,
    /// escalation. Call at least every second.
    pub fn tick(&mut self, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        // Pauses that ended: their alarms sound again.
        let ended: Vec<PauseScope> = self
            .pauses
            .iter()
            .filter(|(_, p)| now >= p.until_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for scope in ended {
            self.pauses.remove(&scope);
            self.pause_events(&scope, AlarmEventKind::PauseEnd, None, now, &mut out);
        }
        let pause_ms = self.cfg.audio_pause_ms.max(0);
        self.ended_pauses
            .retain(|_, p| p.start_ms.saturating_add(pause_ms) > now);
        // Communication lost.
        let timeout = self.cfg.comm_timeout_ms;
        let lost: Vec<(BedId, String, i64, bool)> = self
            .devices
            .iter()
            .map(|((b, d), t)| (b.clone(), d.clone(), now - t.last_seen_ms, t.online))
            .collect();
        for (bed, device, silent_ms, online) in lost {
            let present = !self.remote.contains(&bed) && (!online || silent_ms >= timeout);
            let id = format!("{}/{COMM_LOST}@{device}", bed.key());
            if present == self.slots.contains_key(&id) {
                continue;
            }
            let msg = if online {
                format!("no data from {device} for {} s", silent_ms / 1000)
            } else {
                format!("{device} reports offline")
            };
            let spec = self.comm_spec(&bed, &device, msg);
            self.update(&id, spec, present, now, &mut out);
        }
        // Data gaps shown long enough.
        let over: Vec<((BedId, String), String)> = self
            .gaps
            .iter()
            .filter(|(_, (until, _))| now >= *until)
            .map(|(k, (_, ch))| (k.clone(), ch.clone()))
            .collect();
        for ((bed, device), channel) in over {
            self.gaps.remove(&(bed.clone(), device.clone()));
            let id = format!("{}/{DATA_GAP}@{device}", bed.key());
            self.update(
                &id,
                Self::gap_spec(&bed, &device, &channel),
                false,
                now,
                &mut out,
            );
        }
        // Conditions absent for their whole delay: their onset is forgotten.
        let over: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.absent_since.is_some_and(|a| now - a >= s.spec.delay_ms))
            .map(|(k, _)| k.clone())
            .collect();
        for id in over {
            if let Some(s) = self.slots.get_mut(&id) {
                s.pending_since = None;
                s.absent_since = None;
                if s.alarm.is_none() {
                    self.slots.remove(&id);
                }
            }
        }
        // Condition delays that elapsed (for conditions present now).
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.alarm.as_ref().is_none_or(|i| i.unreviewed)
                    && s.absent_since.is_none()
                    && s.pending_since.is_some_and(|p| now - p >= s.spec.delay_ms)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            self.raise(&id, now, &mut out);
        }
        // Escalation of unacknowledged alarms.
        let repeat = self.cfg.escalation.repeat_ms.max(1_000);
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.alarm.as_ref().is_some_and(|i| {
                    i.ack.is_none() && !i.unreviewed && now >= i.next_escalation_ms
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            let Some(s) = self.slots.get_mut(&id) else {
                continue;
            };
            // Every step due is taken, and said once with the level reached: a clock that
            // jumped (a resumed workstation, a compressed demonstration) gives one escalation
            // event, never a burst of them.
            let i = {
                let Some(i) = s.alarm.as_mut() else {
                    continue;
                };
                while now >= i.next_escalation_ms {
                    i.level += 1;
                    i.next_escalation_ms += repeat;
                }
                i.clone()
            };
            let msg = format!(
                "{} not acknowledged for {} s: escalated to {} (level {})",
                s.spec.label,
                (now - i.since_ms) / 1000,
                self.cfg.escalation.target,
                i.level
            );
            out.push(event(
                &self.pauses,
                &id,
                s,
                Some(&i),
                EvArgs {
                    kind: AlarmEventKind::Escalate,
                    now,
                    user: None,
                    message: msg,
                },
            ));
        }
        out
    }

    /// A user acknowledges an alarm: silent until its condition re-triggers; a latched alarm
    /// whose condition has cleared is resolved.
    pub fn acknowledge(
        &mut self,
        id: &str,
        user: &str,
        now: i64,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        self.acknowledge_from(id, user, None, now)
    }

    /// Acknowledge at this station (`remote` = `None`) or apply an acknowledgement made at
    /// another station (`remote`: the entry as received; its station is named in the events).
    fn acknowledge_from(
        &mut self,
        id: &str,
        user: &str,
        remote: Option<&AckEntry>,
        now: i64,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        if user.trim().is_empty() {
            return Err(AlarmError::NoUser);
        }
        let mut out = Vec::new();
        let Some(s) = self.slots.get_mut(id) else {
            return Err(AlarmError::UnknownAlarm(id.to_string()));
        };
        let Some(i) = s.alarm.as_mut() else {
            return Err(AlarmError::UnknownAlarm(id.to_string()));
        };
        if i.condition && i.ack.is_some() {
            return Ok(out);
        }
        let review = i.unreviewed;
        i.ack = Some((user.to_string(), now));
        i.ack_station = remote.map(|a| a.station.clone());
        let i = i.clone();
        let entry = match remote {
            Some(a) => a.clone(),
            None => AckEntry {
                alarm_id: id.to_string(),
                instance: i.instance.clone(),
                onset_ms: i.onset_ms,
                t_ms: now,
                user: user.to_string(),
                station: String::new(),
            },
        };
        self.acks.insert(
            id.to_string(),
            KnownAck {
                entry,
                received_ms: now,
            },
        );
        let verb = if review { "reviewed" } else { "acknowledged" };
        let msg = match remote {
            None => format!("{} {verb} by {user}", s.spec.label),
            Some(a) => format!("{} {verb} by {user} at station {}", s.spec.label, a.station),
        };
        let mut ev = event(
            &self.pauses,
            id,
            s,
            Some(&i),
            EvArgs {
                kind: AlarmEventKind::Acknowledge,
                now,
                user: Some(user),
                message: msg,
            },
        );
        ev.station = remote.map(|a| a.station.clone());
        out.push(ev);
        if !i.condition {
            s.alarm = None;
            let msg = if review {
                format!("{} reviewed after it resolved", s.spec.label)
            } else {
                format!("{} resolved (latched, acknowledged)", s.spec.label)
            };
            out.push(event(
                &self.pauses,
                id,
                s,
                None,
                EvArgs {
                    kind: AlarmEventKind::Resolve,
                    now,
                    user: Some(user),
                    message: msg,
                },
            ));
            if s.pending_since.is_none() {
                self.slots.remove(id);
            }
        }
        Ok(out)
    }

    fn beds_in(&self, scope: &PauseScope) -> Vec<BedId> {
        match scope {
            PauseScope::All => self.beds.keys().cloned().collect(),
            PauseScope::Bed(b) => vec![b.clone()],
        }
    }

    fn pause_events(
        &self,
        scope: &PauseScope,
        kind: AlarmEventKind,
        user: Option<&str>,
        now: i64,
        out: &mut Vec<AlarmEvent>,
    ) {
        let mut beds = self.beds_in(scope);
        if beds.is_empty() {
            beds.push(BedId::new("*", "*"));
        }
        let what = match scope {
            PauseScope::All => "station",
            PauseScope::Bed(_) => "bed",
        };
        for bed in beds {
            let pause = self.pauses.get(scope);
            let at = pause
                .and_then(|p| p.station.as_deref())
                .map(|s| format!(" at station {s}"))
                .unwrap_or_default();
            let message = match (kind, pause) {
                (AlarmEventKind::Pause, Some(p)) => format!(
                    "audio paused ({what}) for {} s by {}{at}; only alarms above {} break through",
                    (p.until_ms - now) / 1000,
                    p.by,
                    p.ceiling.as_str()
                ),
                _ => format!("audio pause ({what}) ended"),
            };
            out.push(AlarmEvent {
                t_ms: now,
                alarm_id: format!("{}/AUDIO_PAUSE", bed.key()),
                bed,
                code: "AUDIO_PAUSE".into(),
                kind,
                priority: self.pauses.get(scope).map_or(Priority::Low, |p| p.ceiling),
                value: None,
                limit: None,
                message,
                user: user.map(str::to_string),
                station: pause.and_then(|p| p.station.clone()),
                state: if kind == AlarmEventKind::Pause {
                    AlarmState::AudioPaused
                } else {
                    AlarmState::Resolved
                },
                level: 0,
                audible: false,
            });
        }
    }

    /// Pause audio for a bed or the whole station for the configured time. Alarms shown now
    /// fall silent (except communication lost); during the pause only a new alarm of a higher
    /// priority than the highest one shown at pause time sounds.
    pub fn audio_pause(
        &mut self,
        scope: PauseScope,
        user: &str,
        now: i64,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        if user.trim().is_empty() {
            return Err(AlarmError::NoUser);
        }
        let ceiling = self.pause_ceiling(&scope);
        self.ended_pauses.remove(&scope);
        self.pauses.insert(
            scope.clone(),
            Pause {
                start_ms: now,
                until_ms: now + self.cfg.audio_pause_ms.max(0),
                by: user.to_string(),
                ceiling,
                station: None,
            },
        );
        let mut out = Vec::new();
        self.pause_events(&scope, AlarmEventKind::Pause, Some(user), now, &mut out);
        Ok(out)
    }

    /// The break-through rule of a pause of `scope` starting now (this station's own, for its
    /// own pauses and other stations' alike): only alarms above the highest priority shown now
    /// break through.
    fn pause_ceiling(&self, scope: &PauseScope) -> Priority {
        self.slots
            .values()
            .filter(|s| s.alarm.is_some())
            .filter(|s| match scope {
                PauseScope::All => true,
                PauseScope::Bed(b) => &s.spec.bed == b,
            })
            .map(|s| s.spec.priority)
            .max()
            .unwrap_or(Priority::Low)
    }

    /// End an audio pause early: signals come back for conditions still present.
    pub fn end_audio_pause(&mut self, scope: &PauseScope, user: &str, now: i64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        if let Some(mut p) = self.pauses.remove(scope) {
            self.pause_events(scope, AlarmEventKind::PauseEnd, Some(user), now, &mut out);
            p.until_ms = p.until_ms.min(now);
            self.ended_pauses.insert(scope.clone(), p);
        }
        out
    }

    /// Milliseconds left of the audio pause covering `bed` (`None`: the station-wide pause
    /// only), if any.
    pub fn pause_remaining_ms(&self, bed: Option<&BedId>, now: i64) -> Option<i64> {
        let all = self.pauses.get(&PauseScope::All);
        let own = bed.and_then(|b| self.pauses.get(&PauseScope::Bed(b.clone())));
        [all, own]
            .into_iter()
            .flatten()
            .map(|p| p.until_ms - now)
            .filter(|&r| r > 0)
            .max()
    }

    /// Audio pauses in force.
    pub fn pauses(&self, now: i64) -> Vec<PauseInfo> {
        self.pauses
            .iter()
            .filter(|(_, p)| p.until_ms > now)
            .map(|(scope, p)| PauseInfo {
                scope: scope.clone(),
                start_ms: p.start_ms,
                until_ms: p.until_ms,
                remaining_ms: p.until_ms - now,
                by: p.by.clone(),
                ceiling: p.ceiling,
                station: p.station.clone(),
            })
            .collect()
    }

    /// Alarms shown now: highest priority first, then oldest first.
    pub fn active(&self, now: i64) -> Vec<ActiveAlarm> {
        let mut v: Vec<ActiveAlarm> = self
            .slots
            .iter()
            .filter_map(|(id, s)| {
                let i = s.alarm.as_ref()?;
                Some(ActiveAlarm {
                    id: id.clone(),
                    bed: s.spec.bed.clone(),
                    code: s.spec.code.clone(),
                    label: s.spec.label.clone(),
                    priority: s.spec.priority,
                    since_ms: i.since_ms,
                    value: s.spec.value,
                    limit: s.spec.limit,
                    state: state_of(&self.pauses, s, i, now),
                    audible: audible(&self.pauses, s, i, now),
                    escalation: i.level,
                    latched: self.cfg.latches(&s.spec.code, s.spec.priority),
                    cleared_ms: i.cleared_ms,
                    technical: s.spec.class == AlarmClass::Technical,
                    ack_by: i.ack.as_ref().map(|(u, _)| u.clone()),
                    ack_station: i.ack_station.clone(),
                    pause_remaining_ms: self.pause_remaining_ms(Some(&s.spec.bed), now),
                })
            })
            .collect();
        v.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.since_ms.cmp(&b.since_ms))
                .then(a.id.cmp(&b.id))
        });
        v
    }

    /// Whether any alarm shown is sounding now.
    pub fn any_audible(&self, now: i64) -> bool {
        self.slots.values().any(|s| {
            s.alarm
                .as_ref()
                .is_some_and(|i| audible(&self.pauses, s, i, now))
        })
    }

    // ---- ward-wide sync --------------------------------------------------------------------

    /// This station's view of a bed's acknowledgements and audio pause, to publish as station
    /// `station` with sequence `seq`.
    pub fn sync_state(&self, bed: &BedId, station: &str, seq: u64, now: i64) -> BedAlarmState {
        let prefix = format!("{}/", bed.key());
        let acks = self
            .acks
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, a)| now - a.entry.t_ms <= ACK_MEMORY_MS)
            // Only acknowledgements of alarms still shown here: one of an episode that ended
            // must never reach a station that starts (or joins) later, where it could be
            // matched to a new alarm raised as it begins watching the bed.
            .filter(|(id, a)| {
                let shown = self
                    .slots
                    .get(id.as_str())
                    .and_then(|s| s.alarm.as_ref())
                    .map(|i| &i.instance);
                shown.is_some_and(|inst| {
                    *inst == a.entry.instance || self.linked.get(&a.entry.instance) == Some(inst)
                })
            })
            .map(|(_, a)| {
                let mut a = a.entry.clone();
                if a.station.is_empty() {
                    a.station = station.to_string();
                }
                a
            })
            .collect();
        // The latest pause of the bed or the station, in force or ended early (then with its
        // end, so that the other stations end theirs too).
        let pause = [PauseScope::Bed(bed.clone()), PauseScope::All]
            .iter()
            .flat_map(|s| [self.pauses.get(s), self.ended_pauses.get(s)])
            .flatten()
            .max_by_key(|p| p.start_ms)
            .map(|p| PauseEntry {
                start_ms: p.start_ms,
                until_ms: p.until_ms,
                by: p.by.clone(),
                station: p.station.clone().unwrap_or_else(|| station.to_string()),
            });
        BedAlarmState {
            v: super::shared::VERSION,
            station: station.to_string(),
            seq,
            t_ms: now,
            acks,
            pause,
        }
    }

    /// Apply a bed's alarm state as another station (or this one, `own`, earlier) published it,
    /// once the engine (`vigil_core::alarms::sync::Trust::admit`) has checked who sent it. This station's rules bound
    /// what it may do:
    /// - an acknowledgement applies to the alarm instance it names: the instance here matched to
    ///   the other station's instance id (matched once, by onset, while both are shown; never to
    ///   a later instance), and only if it was made after that alarm began;
    /// - an audio pause starts no later than now, lasts at most this station's pause length,
    ///   and lets through what this station's own rule lets through (the sender's ceiling is
    ///   not taken).
    pub fn apply_remote(
        &mut self,
        bed: &BedId,
        st: &BedAlarmState,
        own: &str,
        now: i64,
    ) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        let prefix = format!("{}/", bed.key());
        let first = self.beds.get(bed).copied().unwrap_or(now);
        for a in st.acks.iter().filter(|a| a.alarm_id.starts_with(&prefix)) {
            if a.instance.is_empty() || a.user.trim().is_empty() {
                continue;
            }
            let mut a = a.clone();
            a.t_ms = a.t_ms.min(now);
            a.user = remote_name(&a.user);
            a.station = remote_name(&a.station);
            let known = self.acks.get(&a.alarm_id).map(|k| &k.entry);
            if known.is_some_and(|b| b.instance == a.instance && b.t_ms >= a.t_ms) {
                continue;
            }
            let Some(inst) = self.slots.get(&a.alarm_id).and_then(|s| s.alarm.as_ref()) else {
                // Not shown here (yet): kept for an alarm raised in a moment (`raise`).
                if !self.linked.contains_key(&a.instance) {
                    self.acks.insert(
                        a.alarm_id.clone(),
                        KnownAck {
                            entry: a,
                            received_ms: now,
                        },
                    );
                }
                continue;
            };
            // This station's own acknowledgement back from the broker names its own instance
            // (nothing to do); one from before a restart is matched like any other.
            if a.instance == inst.instance {
                continue;
            }
            let target = match self.linked.get(&a.instance) {
                Some(local) => *local == inst.instance,
                None => ack_matches(&a, inst, first),
            };
            if !target {
                tracing::debug!(alarm = %a.alarm_id, instance = %a.instance, "remote acknowledgement of another alarm instance ignored");
                continue;
            }
            self.linked
                .insert(a.instance.clone(), inst.instance.clone());
            if inst.ack.is_none() || !inst.condition {
                let id = a.alarm_id.clone();
                let user = a.user.clone();
                // This station's own acknowledgement from before a restart (its retained
                // state): made here, so shown and recorded as this station's, never as a
                // remote station's action.
                let remote = (a.station != own).then_some(&a);
                if let Ok(ev) = self.acknowledge_from(&id, &user, remote, now) {
                    out.extend(ev);
                }
            }
        }
        // This station's own pause back from the broker (its station-wide pause is published
        // per bed) is not another station's: taken as one, it would pause each bed again and
        // outlast an early "resume" here. After a restart, too, a pause of this station is not
        // taken up again: alarms sound, the safe side.
        if let Some(p) = st.pause.as_ref().filter(|p| p.station != own) {
            let scope = PauseScope::Bed(bed.clone());
            let start = p.start_ms.min(now);
            let until = p
                .until_ms
                .min(start.saturating_add(self.cfg.audio_pause_ms.max(0)));
            let newer = self
                .pauses
                .get(&scope)
                .is_none_or(|l| l.start_ms < start || (l.start_ms == start && l.until_ms != until));
            let by = remote_name(&p.by);
            let station = remote_name(&p.station);
            if newer && !by.trim().is_empty() {
                if until > now {
                    self.note_bed(bed, now);
                    let ceiling = self.pause_ceiling(&scope);
                    self.pauses.insert(
                        scope.clone(),
                        Pause {
                            start_ms: start,
                            until_ms: until,
                            by: by.clone(),
                            ceiling,
                            station: (station != own).then_some(station),
                        },
                    );
                    self.pause_events(&scope, AlarmEventKind::Pause, Some(&by), now, &mut out);
                } else if let Some(l) = self.pauses.get(&scope) {
                    let mut l = l.clone();
                    l.station = (station != own).then_some(station);
                    self.pauses.insert(scope.clone(), l);
                    self.pause_events(&scope, AlarmEventKind::PauseEnd, Some(&by), now, &mut out);
                    self.pauses.remove(&scope);
                }
            }
        }
        out
    }
}
