//! Ingest policy applied to decoded telemetry before it is stored or alarmed on: the device
//! registry (which device feeds which bed), clock-skew limits, waveform gap tracking and
//! retention. Pure logic plus the registry's SQL; the engine calls it per message.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};

use crate::codes::Vital;
use crate::store::{Gap, StoreError};
use crate::telemetry::{BedId, DecodeError, ObsStatus, Vitals, WaveChunk};

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Full-disclosure waveforms, hours (default 240 h = 10 days).
    pub waveform_hours: u64,
    /// Numerics (trends), days (default 30).
    pub trend_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            waveform_hours: 240,
            trend_days: 30,
        }
    }
}

/// What the engine accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestPolicy {
    /// Reject data from devices missing from the registry. Off for the simulated ward; on by
    /// default for a hospital broker.
    pub require_registered: bool,
    /// Readings stamped further than this in the future are rejected (device clock ahead).
    pub max_future_ms: i64,
    /// Readings older than this are rejected (late delivery beyond any use, or a clock reset).
    pub max_age_ms: i64,
    /// Alarms evaluate only readings taken at most this long ago (and newer than the last one
    /// of the same device and vital); older ones are stored as history, marked late.
    pub live_window_ms: i64,
    pub retention: Retention,
    /// What one device may send (applied before decoding, see [`DeviceBudgets`]).
    pub budget: Budget,
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            require_registered: false,
            max_future_ms: 60_000,
            max_age_ms: 7 * 24 * 3600 * 1000,
            live_window_ms: 30_000,
            retention: Retention::default(),
            budget: Budget::default(),
        }
    }
}

impl IngestPolicy {
    /// Refuse a measurement time too far from the station clock.
    pub fn check_time(&self, t_ms: i64, now_ms: i64) -> Result<(), DecodeError> {
        let skew = t_ms - now_ms;
        let limit = if skew > 0 {
            self.max_future_ms
        } else {
            self.max_age_ms
        };
        if skew.abs() > limit {
            return Err(DecodeError::ClockSkew {
                t_ms,
                skew_s: skew as f64 / 1000.0,
                limit_s: limit / 1000,
            });
        }
        Ok(())
    }
}

/// The traffic one device (topic `ward/bed/device`) may send, all its streams together. A
/// simulated bed sends about 17 messages and 25 KB a second; a 12-lead monitor at 500 Hz about
/// 50 messages and 150 KB: the defaults leave several times that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Payload bytes per second (default 1 MiB/s).
    pub bytes_per_s: u64,
    /// Messages per second (default 200).
    pub msgs_per_s: u64,
    /// A device may send this many seconds' worth at once (reconnect backlog; default 10 s).
    pub burst_s: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            bytes_per_s: 1024 * 1024,
            msgs_per_s: 200,
            burst_s: 10,
        }
    }
}

/// A device back within its budget: no message of it was dropped for this long.
pub const BUDGET_CLEAR_MS: i64 = 5_000;

/// What [`DeviceBudgets::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Over budget: drop it. `first` = the first drop of a new episode (raise the alarm).
    Drop {
        first: bool,
    },
}

/// A device's token buckets (messages and bytes) and its current over-budget episode.
#[derive(Debug, Clone)]
struct Bucket {
    msgs: f64,
    bytes: f64,
    last_ms: i64,
    /// Messages dropped in the current episode, and when the last was.
    dropped: u64,
    last_drop_ms: Option<i64>,
}

/// Per-device rate and size budgets (token buckets), checked on the topic and the payload size
/// alone, before anything is decoded: a device sending more than its [`Budget`] has its excess
/// dropped. Pure: every call takes `now_ms`.
#[derive(Debug)]
pub struct DeviceBudgets {
    budget: Budget,
    buckets: HashMap<(BedId, String), Bucket>,
    /// Extra seconds' worth a device seen for the first time before `until` may send at once
    /// (the backlog a broker redelivers after the station was away), see
    /// [`DeviceBudgets::catch_up`].
    catch_up: Option<(f64, i64)>,
}

impl DeviceBudgets {
    pub fn new(budget: Budget) -> Self {
        DeviceBudgets {
            budget,
            buckets: HashMap::new(),
            catch_up: None,
        }
    }

    fn capacity(&self) -> (f64, f64) {
        let b = &self.budget;
        let s = b.burst_s.max(1) as f64;
        (b.msgs_per_s as f64 * s, b.bytes_per_s as f64 * s)
    }

    /// The station was away for `away_ms` (a restart, a lost connection with the session kept):
    /// the broker is about to redeliver what every device sent meanwhile, at network speed.
    /// Every device may send that much on top of its burst, once (at most an hour's worth).
    pub fn catch_up(&mut self, away_ms: i64, now_ms: i64) {
        let away_s = (away_ms.clamp(0, 3_600_000) as f64) / 1000.0;
        if away_s <= 0.0 {
            return;
        }
        let (m, b) = (
            self.budget.msgs_per_s as f64 * away_s,
            self.budget.bytes_per_s as f64 * away_s,
        );
        for bucket in self.buckets.values_mut() {
            bucket.msgs += m;
            bucket.bytes += b;
        }
        // Devices not seen yet get it when they first send, within the time the backlog
        // takes to arrive.
        let until = now_ms + (away_s * 1000.0) as i64 + self.budget.burst_s as i64 * 1000;
        self.catch_up = Some((away_s, until));
    }

    /// A message of `bytes` from `device` on `bed` (as its topic names them) at `now_ms`.
    pub fn admit(&mut self, bed: &BedId, device: &str, bytes: usize, now_ms: i64) -> Admission {
        let (cap_m, cap_b) = self.capacity();
        let (rate_m, rate_b) = (
            self.budget.msgs_per_s as f64,
            self.budget.bytes_per_s as f64,
        );
        let extra_s = match self.catch_up {
            Some((s, until)) if now_ms <= until => s,
            _ => 0.0,
        };
        // Looked up by reference first: this runs for every message.
        let key_missing = !self
            .buckets
            .contains_key(&(bed.clone(), device.to_string()));
        if key_missing {
            if self.buckets.len() >= MAX_TRACKED_DEVICES {
                self.forget_idle(now_ms);
            }
            self.buckets.insert(
                (bed.clone(), device.to_string()),
                Bucket {
                    msgs: cap_m + rate_m * extra_s,
                    bytes: cap_b + rate_b * extra_s,
                    last_ms: now_ms,
                    dropped: 0,
                    last_drop_ms: None,
                },
            );
        }
        let Some(b) = self.buckets.get_mut(&(bed.clone(), device.to_string())) else {
            return Admission::Admit;
        };
        let dt = ((now_ms - b.last_ms).max(0) as f64) / 1000.0;
        b.last_ms = b.last_ms.max(now_ms);
        // Refill up to the burst (never cutting a catch-up allowance above it).
        if b.msgs < cap_m {
            b.msgs = (b.msgs + rate_m * dt).min(cap_m);
        }
        if b.bytes < cap_b {
            b.bytes = (b.bytes + rate_b * dt).min(cap_b);
        }
        let size = bytes as f64;
        if b.msgs >= 1.0 && b.bytes >= size {
            b.msgs -= 1.0;
            b.bytes -= size;
            return Admission::Admit;
        }
        let first = b.dropped == 0;
        b.dropped += 1;
        b.last_drop_ms = Some(now_ms);
        Admission::Drop { first }
    }

    /// Devices whose over-budget episode ended (no drop for [`BUDGET_CLEAR_MS`]), with how many
    /// of their messages were dropped in it.
    pub fn settle(&mut self, now_ms: i64) -> Vec<(BedId, String, u64)> {
        let mut out = Vec::new();
        for ((bed, device), b) in self.buckets.iter_mut() {
            if let Some(t) = b.last_drop_ms {
                if now_ms - t >= BUDGET_CLEAR_MS {
                    out.push((bed.clone(), device.clone(), b.dropped));
                    b.dropped = 0;
                    b.last_drop_ms = None;
                }
            }
        }
        out.sort();
        out
    }

    /// Drop the state of devices quiet for a minute and not over budget (bounded memory when
    /// topics keep changing).
    fn forget_idle(&mut self, now_ms: i64) {
        self.buckets
            .retain(|_, b| b.last_drop_ms.is_some() || now_ms - b.last_ms < 60_000);
    }
}

/// Devices whose budgets are tracked before idle ones are forgotten.
const MAX_TRACKED_DEVICES: usize = 65_536;

/// A registered device.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredDevice {
    pub device: String,
    pub bed: BedId,
    pub label: String,
    pub enabled: bool,
}

/// The device registry: which device feeds which bed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    devices: BTreeMap<String, RegisteredDevice>,
}

impl Registry {
    pub fn load(conn: &Connection) -> Result<Registry, StoreError> {
        Ok(Registry {
            devices: list_devices(conn)?
                .into_iter()
                .map(|d| (d.device.clone(), d))
                .collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The bed `device` feeds. `topic_bed` is the bed named by the topic (native contract), if
    /// any; it must agree with the registry. With `require` off, an unregistered device feeds
    /// its topic's bed; with it on, it is refused. A disabled device is refused either way.
    pub fn resolve(
        &self,
        device: &str,
        topic_bed: Option<&BedId>,
        require: bool,
    ) -> Result<BedId, DecodeError> {
        match (self.devices.get(device), topic_bed) {
            (Some(d), _) if !d.enabled => Err(DecodeError::UnknownDevice(device.to_string())),
            (Some(d), Some(t)) if d.bed != *t => Err(DecodeError::BedMismatch {
                device: device.to_string(),
                registered: d.bed.key(),
                topic: t.key(),
            }),
            (Some(d), _) => Ok(d.bed.clone()),
            (None, Some(t)) if !require => Ok(t.clone()),
            (None, _) => Err(DecodeError::UnknownDevice(device.to_string())),
        }
    }
}

pub fn list_devices(conn: &Connection) -> Result<Vec<RegisteredDevice>, StoreError> {
    let mut q = conn
        .prepare("SELECT device, ward, bed, label, enabled FROM device_registry ORDER BY device")?;
    let rows = q.query_map([], |r| {
        Ok(RegisteredDevice {
            device: r.get(0)?,
            bed: BedId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            label: r.get(3)?,
            enabled: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Add or update a registry entry.
pub fn register_device(
    conn: &Connection,
    device: &str,
    bed: &BedId,
    label: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO device_registry (device, ward, bed, label, enabled, created_ms)
         VALUES (?1, ?2, ?3, ?4, 1, ?5)
         ON CONFLICT(device) DO UPDATE SET ward = excluded.ward, bed = excluded.bed,
           label = excluded.label, enabled = 1",
        params![device, bed.ward, bed.bed, label, now_ms],
    )?;
    Ok(())
}

/// Remove a registry entry; returns whether it existed.
pub fn unregister_device(conn: &Connection, device: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM device_registry WHERE device = ?1", [device])? > 0)
}

/// How long chunks missing from a channel's sequence are waited for before they are declared a
/// gap (recorded, DATA GAP alarm). MQTT orders a session's messages, but not across a
/// reconnect: a broker may deliver new messages before those it queued or restored from disk
/// (Mosquitto after a restart does), so a jump is often filled a moment later.
pub const GAP_HOLD_MS: i64 = 3_000;

/// Missing ranges remembered per channel. Beyond it, the oldest is forgotten (declared first,
/// if it was still waiting).
pub const MISSING_MEMORY: usize = 32;

/// How long a declared gap can still be filled by a late chunk (and its record corrected).
pub const FILL_HORIZON_MS: i64 = 10 * 60_000;

/// Chunks missing from a channel's sequence: waiting (within [`GAP_HOLD_MS`]) or declared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Missing {
    first_seq: u64,
    last_seq: u64,
    from_ms: i64,
    to_ms: i64,
    detected_ms: i64,
    declared: bool,
}

#[derive(Debug)]
struct ChannelSeq {
    bed: BedId,
    seq: u64,
    end_ms: i64,
    missing: Vec<Missing>,
}

/// A late chunk that arrived inside a declared gap: the gap's record loses that chunk (is
/// shortened, split in two, or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapFill {
    pub bed: BedId,
    pub device: String,
    pub channel: &'static str,
    pub seq: u64,
    /// The chunk's time span: the parts of the gap left either side end and start there.
    pub t0_ms: i64,
    pub end_ms: i64,
}

/// Tracks each device channel's chunk sequence numbers. A jump leaves a missing range, which
/// late chunks fill; what is still missing after [`GAP_HOLD_MS`] is declared a gap
/// ([`GapTracker::due`]). A late chunk inside a declared gap corrects its record
/// ([`GapFill`]). Memory per channel is bounded ([`MISSING_MEMORY`]).
#[derive(Debug, Default)]
pub struct GapTracker {
    channels: HashMap<(String, &'static str), ChannelSeq>,
}

impl GapTracker {
    /// Note a chunk. Returns the correction to a declared gap it falls into, if any.
    pub fn observe(&mut self, w: &WaveChunk, now_ms: i64) -> Option<GapFill> {
        // Saturating: a decodable chunk may have a tiny rate (a huge span) or seq u64::MAX.
        let span_ms = (w.data.len() as f64 * 1000.0 / w.rate).round() as i64;
        let end_ms = w.t0_ms.saturating_add(span_ms);
        let key = (w.device.clone(), w.channel.name);
        let Some(ch) = self.channels.get_mut(&key) else {
            self.channels.insert(
                key,
                ChannelSeq {
                    bed: w.bed.clone(),
                    seq: w.seq,
                    end_ms,
                    missing: Vec::new(),
                },
            );
            return None;
        };
        ch.bed = w.bed.clone();
        let next = ch.seq.saturating_add(1);
        if w.seq == next {
            ch.seq = w.seq;
            ch.end_ms = end_ms;
            return None;
        }
        if w.seq > next {
            if ch.missing.len() >= MISSING_MEMORY {
                if let Some(i) = ch.missing.iter().position(|m| m.declared) {
                    ch.missing.remove(i);
                } else if ch.missing.len() >= 2 * MISSING_MEMORY {
                    // Very many jumps within one hold: the two oldest waiting ranges become
                    // one, which overstates what is missing but never hides any of it.
                    let oldest = ch.missing.remove(0);
                    let m = &mut ch.missing[0];
                    m.first_seq = oldest.first_seq;
                    m.from_ms = oldest.from_ms;
                    m.detected_ms = oldest.detected_ms;
                }
            }
            ch.missing.push(Missing {
                first_seq: next,
                last_seq: w.seq - 1,
                from_ms: ch.end_ms,
                to_ms: w.t0_ms,
                detected_ms: now_ms,
                declared: false,
            });
            ch.seq = w.seq;
            ch.end_ms = end_ms;
            return None;
        }
        // Behind the newest: a late chunk filling a missing range, a redelivery, or a device
        // that restarted its counter. A fill must also lie within the range's time span.
        let hole = ch.missing.iter().position(|m| {
            (m.first_seq..=m.last_seq).contains(&w.seq) && w.t0_ms < m.to_ms && end_ms > m.from_ms
        });
        if let Some(i) = hole {
            let m = ch.missing.remove(i);
            if w.seq < m.last_seq {
                ch.missing.insert(
                    i,
                    Missing {
                        first_seq: w.seq + 1,
                        from_ms: end_ms,
                        ..m.clone()
                    },
                );
            }
            if w.seq > m.first_seq {
                ch.missing.insert(
                    i,
                    Missing {
                        last_seq: w.seq - 1,
                        to_ms: w.t0_ms,
                        ..m.clone()
                    },
                );
            }
            return m.declared.then(|| GapFill {
                bed: w.bed.clone(),
                device: w.device.clone(),
                channel: w.channel.name,
                seq: w.seq,
                t0_ms: w.t0_ms,
                end_ms,
            });
        }
        if w.t0_ms >= ch.end_ms {
            // Sequence went back but time went on: the device restarted its counter. What was
            // missing of the old counter stays missing.
            ch.seq = w.seq;
            ch.end_ms = end_ms;
        }
        // Otherwise a redelivery or a late duplicate: nothing new.
        None
    }

    /// Missing ranges that waited [`GAP_HOLD_MS`] (or are beyond [`MISSING_MEMORY`]): declared now,
    /// each once. Declared gaps older than [`FILL_HORIZON_MS`] are forgotten. `now_ms` of
    /// `i64::MAX` declares everything still waiting (the station is stopping).
    pub fn due(&mut self, now_ms: i64) -> Vec<Gap> {
        let mut out = Vec::new();
        for ((device, channel), ch) in &mut self.channels {
            let overflow = ch.missing.len().saturating_sub(MISSING_MEMORY);
            for (i, m) in ch.missing.iter_mut().enumerate() {
                if m.declared
                    || (i >= overflow && now_ms.saturating_sub(m.detected_ms) < GAP_HOLD_MS)
                {
                    continue;
                }
                m.declared = true;
                out.push(Gap {
                    bed: ch.bed.clone(),
                    device: device.clone(),
                    channel,
                    first_seq: m.first_seq,
                    last_seq: m.last_seq,
                    from_ms: m.from_ms,
                    to_ms: m.to_ms,
                    detected_ms: m.detected_ms,
                });
            }
            ch.missing
                .retain(|m| !m.declared || now_ms.saturating_sub(m.detected_ms) < FILL_HORIZON_MS);
            while ch.missing.len() > MISSING_MEMORY && ch.missing[0].declared {
                ch.missing.remove(0);
            }
        }
        out
    }
}

/// Accepted sequence numbers remembered per device (to tell a redelivery from a replay, and a
/// late message filling a gap from a replay).
const SEQ_MEMORY: usize = 256;

/// How a vitals message's sequence number relates to the device's earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// The first message seen from the device (since the station started).
    First,
    /// The next number.
    Next,
    /// Numbers were skipped: `missing` messages never arrived (yet).
    Gap { missing: u64 },
    /// A number skipped earlier, arriving late: its readings are history.
    GapFill,
    /// The number went back, but every reading is newer than anything accepted from the device
    /// and within the live window: the device restarted its counter.
    Restart,
}

#[derive(Debug, Default)]
struct DeviceSeq {
    last: u64,
    /// Newest reading time accepted from the device.
    newest_ms: i64,
    /// Recently accepted numbers with a fingerprint of their content.
    recent: BTreeMap<u64, u64>,
}

/// What [`ReadingGate::classify`] did to a message's readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classified {
    /// Readings moved to `late`: older than the device's last one of the same vital, or taken
    /// longer ago than the live window.
    pub late: u64,
    /// Of those, readings of the same time as the last one (a redelivered reading).
    pub duplicates: u64,
}

/// Admission of vitals by time and sequence, before any alarm sees them: per-device `seq` must
/// go up (a repeat or a regression is a replay, unless it is a redelivery of the same content,
/// a late message filling a gap, or a device restart), and only readings newer than the last
/// one of the same device and vital, taken within the live window, are live. Pure: every call
/// takes `now_ms`.
#[derive(Debug, Default)]
pub struct ReadingGate {
    seqs: HashMap<String, DeviceSeq>,
    last_live: HashMap<(String, Vital), i64>,
}

/// Statuses that revise an earlier result rather than report a new measurement.
pub fn is_revision(s: ObsStatus) -> bool {
    matches!(
        s,
        ObsStatus::Amended
            | ObsStatus::Corrected
            | ObsStatus::EnteredInError
            | ObsStatus::Cancelled
    )
}

fn fingerprint(v: &Vitals) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.seq.hash(&mut h);
    for r in v.readings.iter().chain(&v.late) {
        r.vital.mdc().hash(&mut h);
        r.value.map(f64::to_bits).hash(&mut h);
        r.t_ms.hash(&mut h);
        r.status.hash(&mut h);
    }
    h.finish()
}

impl ReadingGate {
    /// Check a native vitals message's sequence number and note it. A redelivery of a message
    /// already accepted (same number, same content) is [`DecodeError::Duplicate`]; a number
    /// repeated with other content, or gone back, is [`DecodeError::Replay`].
    pub fn check_seq(
        &mut self,
        v: &Vitals,
        policy: &IngestPolicy,
        now_ms: i64,
    ) -> Result<SeqCheck, DecodeError> {
        let fp = fingerprint(v);
        let newest = v.readings.iter().map(|r| r.t_ms).max();
        let Some(d) = self.seqs.get_mut(&v.device) else {
            let mut d = DeviceSeq {
                last: v.seq,
                newest_ms: newest.unwrap_or(i64::MIN),
                recent: BTreeMap::new(),
            };
            d.recent.insert(v.seq, fp);
            self.seqs.insert(v.device.clone(), d);
            return Ok(SeqCheck::First);
        };
        let remember = |d: &mut DeviceSeq| {
            d.recent.insert(v.seq, fp);
            while d.recent.len() > SEQ_MEMORY {
                d.recent.pop_first();
            }
        };
        if v.seq > d.last {
            let missing = v.seq - d.last - 1;
            d.last = v.seq;
            d.newest_ms = d.newest_ms.max(newest.unwrap_or(i64::MIN));
            remember(d);
            return Ok(if missing == 0 {
                SeqCheck::Next
            } else {
                SeqCheck::Gap { missing }
            });
        }
        if d.recent.get(&v.seq) == Some(&fp) {
            return Err(DecodeError::Duplicate {
                device: v.device.clone(),
                seq: v.seq,
            });
        }
        let restarted = !v.readings.is_empty()
            && v.readings
                .iter()
                .all(|r| r.t_ms > d.newest_ms && now_ms - r.t_ms <= policy.live_window_ms);
        if restarted {
            d.last = v.seq;
            d.newest_ms = newest.unwrap_or(d.newest_ms);
            d.recent.clear();
            remember(d);
            return Ok(SeqCheck::Restart);
        }
        let oldest = d.recent.first_key_value().map(|(k, _)| *k);
        if !d.recent.contains_key(&v.seq) && oldest.is_some_and(|o| v.seq > o) {
            remember(d);
            return Ok(SeqCheck::GapFill);
        }
        Err(DecodeError::Replay {
            device: v.device.clone(),
            seq: v.seq,
            last: d.last,
        })
    }

    /// Move the readings alarms must not evaluate to `v.late`: taken longer ago than the live
    /// window, or not newer than the last live reading of the same device and vital (a
    /// revision of that very reading, see [`is_revision`], stays: it is the source's word on
    /// what the alarms reflect). Readings kept are live; the alarmable ones become the new
    /// last reading of their vital.
    pub fn classify(&mut self, v: &mut Vitals, policy: &IngestPolicy, now_ms: i64) -> Classified {
        let mut c = Classified::default();
        let mut live = Vec::with_capacity(v.readings.len());
        for r in std::mem::take(&mut v.readings) {
            let key = (v.device.clone(), r.vital);
            let last = self.last_live.get(&key).copied();
            let stale = now_ms - r.t_ms > policy.live_window_ms;
            let verdict = match last {
                Some(l) if r.t_ms == l && is_revision(r.status) => Verdict::Live,
                Some(l) if r.t_ms == l => Verdict::Duplicate,
                Some(l) if r.t_ms < l => Verdict::Late,
                _ if stale => Verdict::Late,
                _ => Verdict::Live,
            };
            match verdict {
                Verdict::Live => {
                    if r.status.alarmable() && last.is_none_or(|l| r.t_ms > l) {
                        // Never later than now: a reading stamped ahead (a fast device clock,
                        // within `max_future_ms`) must not make the next correctly stamped
                        // readings late, which would keep them from the alarms.
                        self.last_live.insert(key, r.t_ms.min(now_ms));
                    }
                    live.push(r);
                }
                Verdict::Duplicate | Verdict::Late => {
                    c.late += 1;
                    c.duplicates += u64::from(verdict == Verdict::Duplicate);
                    v.late.push(r);
                }
            }
        }
        v.readings = live;
        c
    }

    /// The time of the last live reading of `vital` from `device`, if any.
    pub fn last_live(&self, device: &str, vital: Vital) -> Option<i64> {
        self.last_live.get(&(device.to_string(), vital)).copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Live,
    Duplicate,
    Late,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;
    use crate::telemetry::Reading;

    fn chunk(seq: u64, t0_ms: i64) -> WaveChunk {
        WaveChunk {
            bed: BedId::new("4W", "01"),
            device: "mon-1".into(),
            channel: codes::channel("PLETH").expect("channel"),
            unit: "1",
            t0_ms,
            rate: 125.0,
            seq,
            origin: 0.0,
            factor: 0.001,
            data: vec![0; 125],
        }
    }

    fn vitals(seq: u64, readings: &[(Vital, f64, i64)]) -> Vitals {
        Vitals {
            bed: BedId::new("4W", "01"),
            device: "mon-1".into(),
            seq,
            readings: readings
                .iter()
                .map(|&(v, x, t)| crate::telemetry::Reading::new(v, Some(x), t))
                .collect(),
            rejected: vec![],
            late: vec![],
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn sequence_numbers_must_go_up() {
        let p = IngestPolicy::default();
        let mut g = ReadingGate::default();
        let hr = |seq, t| vitals(seq, &[(Vital::Hr, 150.0, t)]);
        assert_eq!(
            g.check_seq(&hr(5, NOW - 9000), &p, NOW),
            Ok(SeqCheck::First)
        );
        assert_eq!(g.check_seq(&hr(6, NOW - 8000), &p, NOW), Ok(SeqCheck::Next));
        assert_eq!(
            g.check_seq(&hr(9, NOW - 5000), &p, NOW),
            Ok(SeqCheck::Gap { missing: 2 })
        );
        // The same message again: a redelivery.
        assert_eq!(
            g.check_seq(&hr(6, NOW - 8000), &p, NOW)
                .unwrap_err()
                .reason(),
            "duplicate"
        );
        // Number 6 again with other content, old: a replay.
        let e = g.check_seq(&hr(6, NOW - 7000), &p, NOW).unwrap_err();
        assert_eq!(e.reason(), "replay", "{e}");
        // A message skipped earlier arrives late: accepted (its readings will be late).
        assert_eq!(
            g.check_seq(&hr(7, NOW - 7000), &p, NOW),
            Ok(SeqCheck::GapFill)
        );
        assert_eq!(
            g.check_seq(&hr(7, NOW - 7000), &p, NOW)
                .unwrap_err()
                .reason(),
            "duplicate"
        );
        // Before anything remembered: a replay.
        assert_eq!(
            g.check_seq(&hr(1, NOW - 60_000), &p, NOW)
                .unwrap_err()
                .reason(),
            "replay"
        );
        // An hour-old message with a new number is not a replay (it is late, see classify).
        assert_eq!(
            g.check_seq(&hr(10, NOW - 3_600_000), &p, NOW),
            Ok(SeqCheck::Next)
        );
    }

    #[test]
    fn a_device_restart_is_not_a_replay() {
        let p = IngestPolicy::default();
        let mut g = ReadingGate::default();
        for seq in 0..50 {
            let v = vitals(seq, &[(Vital::Hr, 70.0, NOW - 60_000 + seq as i64 * 1000)]);
            g.check_seq(&v, &p, NOW).expect("in order");
        }
        // The device restarts its counter; its readings are newer than all before and live.
        let v = vitals(0, &[(Vital::Hr, 71.0, NOW - 500)]);
        assert_eq!(g.check_seq(&v, &p, NOW), Ok(SeqCheck::Restart));
        assert_eq!(
            g.check_seq(&vitals(1, &[(Vital::Hr, 71.0, NOW)]), &p, NOW),
            Ok(SeqCheck::Next)
        );
        // Not a restart: a low number with a reading older than the newest accepted, or one
        // taken longer ago than the live window.
        let old = vitals(
            0,
            &[(Vital::Hr, 71.0, NOW - 1000), (Vital::SpO2, 97.0, NOW)],
        );
        assert_eq!(g.check_seq(&old, &p, NOW).unwrap_err().reason(), "replay");
        let mut g = ReadingGate::default();
        g.check_seq(&vitals(9, &[(Vital::Hr, 70.0, NOW - 90_000)]), &p, NOW)
            .expect("first");
        let stale = vitals(0, &[(Vital::Hr, 71.0, NOW - 40_000)]);
        assert_eq!(g.check_seq(&stale, &p, NOW).unwrap_err().reason(), "replay");
        let empty = vitals(0, &[]);
        assert_eq!(g.check_seq(&empty, &p, NOW).unwrap_err().reason(), "replay");
    }

    #[test]
    fn a_reading_stamped_ahead_does_not_make_the_next_ones_late() {
        let p = IngestPolicy::default();
        let mut g = ReadingGate::default();
        // A fast device clock: 50 s ahead (within max_future_ms, so accepted).
        let mut ahead = vitals(1, &[(Vital::Hr, 150.0, NOW + 50_000)]);
        assert_eq!(g.classify(&mut ahead, &p, NOW).late, 0);
        // A second later, a correctly stamped reading still reaches the alarms.
        let mut next = vitals(2, &[(Vital::Hr, 160.0, NOW + 1000)]);
        assert_eq!(g.classify(&mut next, &p, NOW + 1000).late, 0);
        assert_eq!(next.readings.len(), 1);
    }

    #[test]
    fn only_new_readings_within_the_live_window_are_live() {
        let p = IngestPolicy::default();
        let mut g = ReadingGate::default();
        let mut v = vitals(
            1,
            &[
                (Vital::Hr, 150.0, NOW - 1000),
                (Vital::SpO2, 97.0, NOW - 3_600_000),
            ],
        );
        let c = g.classify(&mut v, &p, NOW);
        assert_eq!((c.late, c.duplicates), (1, 0));
        assert_eq!(v.readings.len(), 1);
        assert_eq!(v.readings[0].vital, Vital::Hr);
        assert_eq!(v.late[0].vital, Vital::SpO2, "an hour old: history");
        // Older than the last HR (even within the window), or the same time again: late.
        let mut v = vitals(
            2,
            &[(Vital::Hr, 70.0, NOW - 2000), (Vital::Hr, 70.0, NOW - 1000)],
        );
        let c = g.classify(&mut v, &p, NOW);
        assert_eq!((c.late, c.duplicates), (2, 1));
        assert!(v.readings.is_empty());
        assert_eq!(g.last_live("mon-1", Vital::Hr), Some(NOW - 1000));
        // A revision of the last live reading stays (the source's word on it); a revision of an
        // older one is history.
        let mut v = vitals(3, &[]);
        v.readings.push(Reading {
            vital: Vital::Hr,
            value: None,
            t_ms: NOW - 1000,
            status: ObsStatus::EnteredInError,
        });
        v.readings.push(Reading {
            vital: Vital::Hr,
            value: Some(80.0),
            t_ms: NOW - 5000,
            status: ObsStatus::Corrected,
        });
        let c = g.classify(&mut v, &p, NOW);
        assert_eq!(c.late, 1);
        assert_eq!(v.readings[0].status, ObsStatus::EnteredInError);
        // Another device's readings have their own baseline; the window is a setting.
        let mut other = vitals(1, &[(Vital::Hr, 60.0, NOW - 20_000)]);
        other.device = "mon-2".into();
        let narrow = IngestPolicy {
            live_window_ms: 10_000,
            ..IngestPolicy::default()
        };
        assert_eq!(g.classify(&mut other.clone(), &p, NOW).late, 0);
        assert_eq!(
            ReadingGate::default()
                .classify(&mut other, &narrow, NOW)
                .late,
            1
        );
    }

    #[test]
    fn gaps_are_declared_once_after_the_hold_with_their_time_span() {
        let mut g = GapTracker::default();
        assert_eq!(g.observe(&chunk(0, 0), 9), None);
        assert_eq!(g.observe(&chunk(1, 1000), 9), None);
        assert_eq!(g.observe(&chunk(1, 1000), 9), None, "redelivery");
        assert_eq!(g.observe(&chunk(4, 4000), 10), None);
        assert_eq!(g.due(10 + GAP_HOLD_MS - 1), [], "still waiting");
        let gaps = g.due(10 + GAP_HOLD_MS);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!((gaps[0].first_seq, gaps[0].last_seq), (2, 3));
        assert_eq!((gaps[0].from_ms, gaps[0].to_ms), (2000, 4000));
        assert_eq!(gaps[0].detected_ms, 10);
        assert_eq!(g.due(i64::MAX), [], "declared once");
        assert_eq!(g.observe(&chunk(5, 5000), 9), None);
        assert_eq!(g.observe(&chunk(0, 90_000), 9), None, "device restart");
        assert_eq!(g.observe(&chunk(1, 91_000), 9), None);
        assert_eq!(g.due(i64::MAX), []);
    }

    /// Brokers may deliver a session's queued messages after newer ones around a reconnect:
    /// chunks arriving within the hold fill the jump, and no gap is declared.
    #[test]
    fn chunks_arriving_out_of_order_within_the_hold_are_no_gap() {
        let mut g = GapTracker::default();
        g.observe(&chunk(0, 0), 0);
        g.observe(&chunk(3, 3000), 100);
        g.observe(&chunk(4, 4000), 100);
        assert_eq!(g.observe(&chunk(2, 2000), 200), None);
        assert_eq!(g.observe(&chunk(1, 1000), 300), None);
        assert_eq!(g.observe(&chunk(1, 1000), 300), None, "redelivered again");
        assert_eq!(g.due(i64::MAX), []);
        // Partly filled: only what is still missing is declared, in its own time span.
        g.observe(&chunk(9, 9000), 1000);
        g.observe(&chunk(7, 7000), 1500);
        let gaps = g.due(1000 + GAP_HOLD_MS);
        let spans: Vec<_> = gaps
            .iter()
            .map(|x| (x.first_seq, x.last_seq, x.from_ms, x.to_ms))
            .collect();
        assert_eq!(spans, [(5, 6, 5000, 7000), (8, 8, 8000, 9000)]);
    }

    /// A chunk arriving after its gap was declared corrects the record: the gap is shortened
    /// or split around it; a chunk of another time (a restarted counter) fills nothing.
    #[test]
    fn a_late_chunk_corrects_a_declared_gap() {
        let mut g = GapTracker::default();
        g.observe(&chunk(0, 0), 0);
        g.observe(&chunk(5, 5000), 0);
        assert_eq!(g.due(GAP_HOLD_MS).len(), 1);
        let fill = g.observe(&chunk(3, 3000), GAP_HOLD_MS + 1).expect("fill");
        assert_eq!((fill.seq, fill.t0_ms, fill.end_ms), (3, 3000, 4000));
        assert_eq!(fill.channel, "PLETH");
        assert_eq!(g.observe(&chunk(3, 3000), GAP_HOLD_MS + 2), None, "once");
        assert_eq!(
            g.observe(&chunk(2, -60_000), GAP_HOLD_MS + 2),
            None,
            "same number, another time: not this gap's chunk"
        );
        assert!(g.observe(&chunk(1, 1000), GAP_HOLD_MS + 3).is_some());
        assert!(g.observe(&chunk(2, 2000), GAP_HOLD_MS + 3).is_some());
        assert!(g.observe(&chunk(4, 4000), GAP_HOLD_MS + 3).is_some());
        assert_eq!(
            g.observe(&chunk(4, 4000), GAP_HOLD_MS + 3),
            None,
            "all filled"
        );
        // Past the fill horizon a declared gap is forgotten: a very late chunk changes nothing.
        g.observe(&chunk(8, 8000), 10);
        g.due(10 + GAP_HOLD_MS);
        g.due(10 + FILL_HORIZON_MS);
        assert_eq!(g.observe(&chunk(6, 6000), 10 + FILL_HORIZON_MS), None);
    }

    /// However many jumps a channel makes, memory stays bounded and every missing chunk is
    /// declared (none dropped from the record).
    #[test]
    fn missing_ranges_are_bounded_and_never_hidden() {
        let mut g = GapTracker::default();
        let mut seq = 0;
        g.observe(&chunk(0, 0), 0);
        for _ in 0..500 {
            seq += 2;
            g.observe(&chunk(seq, seq as i64 * 1000), 0);
        }
        let ch = g.channels.values().next().expect("channel");
        assert!(
            ch.missing.len() <= 2 * MISSING_MEMORY,
            "{}",
            ch.missing.len()
        );
        let gaps = g.due(i64::MAX);
        let missing: u64 = gaps.iter().map(|x| x.last_seq - x.first_seq + 1).sum();
        assert!(missing >= 500, "every skipped chunk declared: {missing}");
        assert_eq!(gaps.first().map(|x| x.first_seq), Some(1));
        assert_eq!(gaps.last().map(|x| x.last_seq), Some(seq - 1));
    }

    /// Found by tests/fuzz.rs: `t0 + span` and `seq + 1` overflowed (a panic in debug builds)
    /// for chunks the decoder accepts: a rate of 1e-300 Hz, a sequence number of u64::MAX.
    #[test]
    fn extreme_chunks_do_not_overflow() {
        let mut g = GapTracker::default();
        let mut c = chunk(u64::MAX, 0);
        c.rate = f64::MIN_POSITIVE;
        assert_eq!(g.observe(&c, 9), None);
        assert_eq!(
            g.observe(&c, 9),
            None,
            "the same last possible seq again: no gap"
        );
        g.observe(&chunk(u64::MAX, i64::MAX), 9);
        assert_eq!(g.due(i64::MAX), [], "same seq, not a gap");
        let mut g = GapTracker::default();
        g.observe(&chunk(u64::MAX - 2, 0), 9);
        g.observe(&chunk(u64::MAX, 2000), 9);
        let gaps = g.due(i64::MAX);
        assert_eq!(
            gaps.iter()
                .map(|x| (x.first_seq, x.last_seq))
                .collect::<Vec<_>>(),
            [(u64::MAX - 1, u64::MAX - 1)]
        );
    }

    #[test]
    fn registry_resolution() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::store::open(&dir.path().join("r.db")).expect("open");
        let b1 = BedId::new("4W", "01");
        let b2 = BedId::new("4W", "02");
        register_device(&conn, "mon-1", &b1, "bedside 1", 0).expect("register");
        register_device(&conn, "mon-off", &b2, "", 0).expect("register");
        conn.execute(
            "UPDATE device_registry SET enabled = 0 WHERE device = 'mon-off'",
            [],
        )
        .expect("disable");
        let r = Registry::load(&conn).expect("load");
        assert_eq!(r.len(), 2);
        assert_eq!(r.resolve("mon-1", Some(&b1), true), Ok(b1.clone()));
        assert_eq!(r.resolve("mon-1", None, true), Ok(b1.clone()));
        let e = r.resolve("mon-1", Some(&b2), false).unwrap_err();
        assert_eq!(e.reason(), "bed_mismatch");
        assert_eq!(r.resolve("mon-x", Some(&b2), false), Ok(b2.clone()));
        let e = r.resolve("mon-x", Some(&b2), true).unwrap_err();
        assert_eq!(e.reason(), "unknown_device");
        assert_eq!(
            r.resolve("mon-x", None, false).unwrap_err().reason(),
            "unknown_device"
        );
        assert_eq!(
            r.resolve("mon-off", Some(&b2), false).unwrap_err().reason(),
            "unknown_device"
        );
        assert!(unregister_device(&conn, "mon-1").expect("remove"));
        assert!(!unregister_device(&conn, "mon-1").expect("remove"));
    }

    /// Device budgets of `bytes_per_s` and 10 messages a second, with a burst of one second.
    fn budgets(bytes_per_s: u64) -> DeviceBudgets {
        DeviceBudgets::new(Budget {
            bytes_per_s,
            msgs_per_s: 10,
            burst_s: 1,
        })
    }

    #[test]
    fn budgets_drop_the_excess_of_one_device_only() {
        let mut b = budgets(10_000);
        let (bed, other) = (BedId::new("4W", "01"), BedId::new("4W", "02"));
        let t = 1_000_000;
        // A burst of its budget passes, the next message is dropped (first of an episode).
        for _ in 0..10 {
            assert_eq!(b.admit(&bed, "flood", 100, t), Admission::Admit);
        }
        assert_eq!(
            b.admit(&bed, "flood", 100, t),
            Admission::Drop { first: true }
        );
        assert_eq!(
            b.admit(&bed, "flood", 100, t),
            Admission::Drop { first: false }
        );
        // Another device on the same bed, and a device on another bed, are not affected.
        assert_eq!(b.admit(&bed, "spo2", 100, t), Admission::Admit);
        assert_eq!(b.admit(&other, "flood", 100, t), Admission::Admit);
        // Bytes count too: one message larger than what is left is dropped.
        let mut b2 = budgets(10_000);
        assert_eq!(b2.admit(&bed, "big", 9_000, t), Admission::Admit);
        assert_eq!(
            b2.admit(&bed, "big", 2_000, t),
            Admission::Drop { first: true }
        );
        // Tokens come back with time: a tenth of a second later, one more message.
        assert_eq!(b.admit(&bed, "flood", 100, t + 100), Admission::Admit);
        assert!(matches!(
            b.admit(&bed, "flood", 100, t + 100),
            Admission::Drop { .. }
        ));
        // Not settled while drops go on; settled BUDGET_CLEAR_MS after the last one.
        assert!(b.settle(t + 100 + BUDGET_CLEAR_MS - 1).is_empty());
        let settled = b.settle(t + 100 + BUDGET_CLEAR_MS);
        assert_eq!(settled, vec![(bed.clone(), "flood".to_string(), 3)]);
        assert!(b.settle(t + 100 + 2 * BUDGET_CLEAR_MS).is_empty(), "once");
        // A new episode is a new first drop.
        let t2 = t + 60_000;
        for _ in 0..10 {
            assert_eq!(b.admit(&bed, "flood", 100, t2), Admission::Admit);
        }
        assert_eq!(
            b.admit(&bed, "flood", 100, t2),
            Admission::Drop { first: true }
        );
    }

    #[test]
    fn a_station_away_may_take_the_backlog_once() {
        let mut b = budgets(1_000_000);
        let bed = BedId::new("4W", "01");
        let t = 1_000_000;
        assert_eq!(b.admit(&bed, "known", 10, t), Admission::Admit);
        // Away 5 s: a known device and a new one may each send 5 s' worth on top of the burst.
        b.catch_up(5_000, t);
        for dev in ["known", "new"] {
            let n = (0..100)
                .take_while(|_| b.admit(&bed, dev, 10, t) == Admission::Admit)
                .count();
            let expect = if dev == "known" { 59 } else { 60 };
            assert_eq!(n, expect, "{dev}");
        }
        // After that, the plain budget again.
        let later = t + 60_000;
        let n = (0..100)
            .take_while(|_| b.admit(&bed, "late", 10, later) == Admission::Admit)
            .count();
        assert_eq!(n, 10);
    }

    #[test]
    fn clock_skew_limits() {
        let p = IngestPolicy::default();
        let now = 1_000_000_000_000;
        assert!(p.check_time(now, now).is_ok());
        assert!(p.check_time(now + 59_000, now).is_ok());
        assert_eq!(
            p.check_time(now + 61_000, now).unwrap_err().reason(),
            "clock_skew"
        );
        assert!(p.check_time(now - 6 * 24 * 3600 * 1000, now).is_ok());
        assert!(p.check_time(now - 8 * 24 * 3600 * 1000, now).is_err());
    }
}
