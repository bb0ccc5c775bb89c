//! Admission of decoded messages against the device registry and the ingest policy: the
//! device must feed the bed it names, times must be near the station clock, vitals sequence
//! numbers must go up; interoperability batches are expanded. Refusals are counted, reported and
//! recorded (`reject`); devices over their budget are dropped before decoding (`over_budget`,
//! `settle_budgets`).

use super::alarms::{note_bed, publish_alarms, record_alarm_events};
use super::storage::outbox_op;
use super::{lock, Shared};
use crate::ingest::{IngestPolicy, SeqCheck};
use crate::security::{Kind, Occurrence, Source};
use crate::store::Op;
use crate::telemetry::{self, Batch, BedId, Message, Reading, Vitals, WaveChunk};

/// Apply the ingest policy: the device must be allowed to feed the bed (registry), and times
/// must be near the station clock. Readings with bad times are moved to `rejected`. An
/// interoperability batch is checked against its topic's device and expanded into vitals and
/// waveform chunks.
pub(super) fn admit(shared: &Shared, msg: Message) -> Result<Vec<Message>, telemetry::DecodeError> {
    let policy = &shared.policy;
    let now = shared.clock.now_ms();
    let resolve = |device: &str, bed: &BedId| {
        lock(&shared.registry).resolve(device, Some(bed), policy.require_registered)
    };
    Ok(match msg {
        Message::Vitals(mut v) => {
            v.bed = resolve(&v.device, &v.bed)?;
            drop_bad_times(policy, now, &mut v);
            // Before any alarm sees it: a replay is refused, a redelivery dropped.
            match lock(&shared.gate).check_seq(&v, policy, now)? {
                SeqCheck::Gap { missing } => tracing::debug!(
                    bed = %v.bed, device = %v.device, seq = v.seq, missing,
                    "vitals sequence gap"
                ),
                SeqCheck::Restart => tracing::info!(
                    bed = %v.bed, device = %v.device, seq = v.seq,
                    "vitals sequence restarted (device restart)"
                ),
                SeqCheck::GapFill => tracing::debug!(
                    bed = %v.bed, device = %v.device, seq = v.seq,
                    "late vitals message filling a sequence gap"
                ),
                SeqCheck::First | SeqCheck::Next => {}
            }
            vec![Message::Vitals(v)]
        }
        Message::Wave(mut w) => {
            w.bed = resolve(&w.device, &w.bed)?;
            policy.check_time(w.t0_ms, now)?;
            vec![Message::Wave(w)]
        }
        Message::Status(mut s) => {
            s.bed = resolve(&s.device, &s.bed)?;
            vec![Message::Status(s)]
        }
        Message::Batch { bed, device, batch } => {
            if let Some(d) = batch.device.as_deref().filter(|d| *d != device) {
                return Err(telemetry::DecodeError::DeviceMismatch {
                    topic: device,
                    payload: d.chars().take(64).collect(),
                });
            }
            let bed = resolve(&device, &bed)?;
            expand(bed, device, batch, policy, now)
        }
    })
}

/// Move readings stamped too far from the station clock to `rejected`.
fn drop_bad_times(policy: &IngestPolicy, now: i64, v: &mut Vitals) {
    let (good, bad): (Vec<Reading>, Vec<Reading>) = std::mem::take(&mut v.readings)
        .into_iter()
        .partition(|r| policy.check_time(r.t_ms, now).is_ok());
    v.rejected.extend(
        bad.iter()
            .filter_map(|r| policy.check_time(r.t_ms, now).err()),
    );
    v.readings = good;
}

/// Turn an interoperability batch from `device` on `bed` into vitals and waveform chunks.
pub(super) fn expand(
    bed: BedId,
    device: String,
    batch: Batch,
    policy: &IngestPolicy,
    now: i64,
) -> Vec<Message> {
    let mut out = Vec::new();
    let mut rejected = batch.rejected;
    for s in batch.waves {
        if let Err(e) = policy.check_time(s.t0_ms, now) {
            rejected.push(e);
            continue;
        }
        // Interop waveforms carry no chunk sequence: seq 0 on every chunk never reads as a gap.
        out.push(Message::Wave(WaveChunk {
            bed: bed.clone(),
            device: device.clone(),
            channel: s.channel,
            unit: s.channel.unit,
            t0_ms: s.t0_ms,
            rate: s.rate,
            seq: 0,
            origin: s.origin,
            factor: s.factor,
            data: s.data,
        }));
    }
    let mut v = Vitals {
        bed,
        device,
        seq: 0,
        readings: batch.readings,
        rejected,
        late: Vec::new(),
    };
    drop_bad_times(policy, now, &mut v);
    if !v.readings.is_empty() || !v.rejected.is_empty() {
        out.insert(0, Message::Vitals(v));
    }
    out
}

/// A payload refused (by its decoder, or by admission): counted per reason, reported when it is
/// a security matter, logged (the first of a reason, then every 1000th) and recorded.
pub(super) fn reject(shared: &Shared, topic: &str, e: &telemetry::DecodeError) {
    let n = shared.counters.reject(e.reason());
    let now = shared.clock.now_ms();
    let peer = topic.strip_prefix("mllp:").unwrap_or("");
    if let Some(o) = Occurrence::from_reject(e, topic, peer, now) {
        shared.security.report(o);
    }
    // Per-message warnings would flood the log: the first of each reason, then every 1000th;
    // the security events count every one.
    if n <= 1 || n % 1000 == 0 {
        tracing::warn!(reason = e.reason(), count = n, topic = %topic.chars().take(200).collect::<String>(), error = %e, "telemetry rejected");
    } else {
        tracing::debug!(reason = e.reason(), topic = %topic.chars().take(200).collect::<String>(), error = %e, "telemetry rejected");
    }
    outbox_op(
        shared,
        Op::Reject {
            reason: e.reason(),
            detail: format!("{}: {e}", topic.chars().take(200).collect::<String>()),
            t_ms: shared.clock.now_ms(),
        },
    );
}

/// A device over its budget: count the dropped message; on the first of an episode raise
/// the bed's DEVICE OVER BUDGET technical alarm and report a security event (the alarm is
/// resolved by `alarm_tick` once the device is back within its budget).
pub(super) fn over_budget(shared: &Shared, bed: &BedId, device: &str, first: bool, now: i64) {
    let n = shared.counters.reject("over_budget");
    if !first {
        if n % 10_000 == 0 {
            tracing::warn!(%bed, device, dropped = n, "devices over budget: messages dropped");
        }
        return;
    }
    let budget = shared.policy.budget;
    let text = format!(
        "{device} sends more than its budget ({} messages/s, {} KiB/s): its excess is dropped",
        budget.msgs_per_s,
        budget.bytes_per_s / 1024
    );
    tracing::warn!(%bed, device, "DEVICE OVER BUDGET: {text}");
    shared.security.report(Occurrence::new(
        Kind::DeviceOverBudget,
        Source {
            bed: bed.key(),
            device: device.chars().take(64).collect(),
            ..Source::default()
        },
        text.clone(),
        now,
    ));
    // On the bed the registry gives the device; an unknown device (refused anyway when the
    // registry is enforced) raises nothing on a bed it merely names.
    let resolved =
        lock(&shared.registry).resolve(device, Some(bed), shared.policy.require_registered);
    let Ok(bed) = resolved else {
        return;
    };
    let events = {
        let mut st = lock(&shared.state);
        note_bed(shared, &mut st, &bed);
        let events = st.alarms.device_over_budget(&bed, device, true, &text, now);
        publish_alarms(shared, &mut st, &events, now);
        events
    };
    record_alarm_events(shared, events);
}

/// Devices back within their budget: resolve their DEVICE OVER BUDGET alarm and record how
/// much of them was dropped.
pub(super) fn settle_budgets(shared: &Shared, now: i64) {
    let settled = lock(&shared.budgets).settle(now);
    for (topic_bed, device, dropped) in settled {
        let text = format!("{device} back within its budget; {dropped} messages were dropped");
        tracing::info!(bed = %topic_bed, device, dropped, "device back within its budget");
        outbox_op(
            shared,
            Op::Reject {
                reason: "over_budget",
                detail: format!("{topic_bed} {device}: {dropped} messages over budget dropped"),
                t_ms: now,
            },
        );
        let resolved = lock(&shared.registry).resolve(
            &device,
            Some(&topic_bed),
            shared.policy.require_registered,
        );
        let Ok(bed) = resolved else {
            continue;
        };
        let events = {
            let mut st = lock(&shared.state);
            let events = st
                .alarms
                .device_over_budget(&bed, &device, false, &text, now);
            publish_alarms(shared, &mut st, &events, now);
            events
        };
        record_alarm_events(shared, events);
    }
}
