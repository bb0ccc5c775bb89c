//! Admission of decoded messages against the device registry and the ingest policy: the
//! device must feed the bed it names, times must be near the station clock, vitals sequence
//! numbers must go up; interoperability batches are expanded. Refusals are counted, reported and
//! recorded (`reject`); devices over their budget are dropped before decoding (`over_budget`,
//! `settle_budgets`).

use super::alarms::{note_bed, publish_alarms, record_alarm_events};
use super::storage::outbox_op;
use super::{lock, Shared};
use crate::ingest::{IngestPolicy, ReadingGate, Registry, SeqCheck};
use crate::security::{Kind, Occurrence, Source};
use crate::store::Op;
use crate::telemetry::{self, Batch, BedId, Message, Reading, Vitals, WaveChunk};

/// [`admit`] by the engine's registry, reading gate, ingest policy and clock. Lock order:
/// the registry, then the gate (nothing takes them the other way round).
pub(super) fn admit_now(
    shared: &Shared,
    msg: Message,
) -> Result<Vec<Message>, telemetry::DecodeError> {
    let now = shared.clock.now_ms();
    let registry = lock(&shared.registry);
    admit(&registry, &mut lock(&shared.gate), &shared.policy, now, msg)
}

/// Apply the ingest policy at time `now`: the device must be allowed to feed the bed
/// (`registry`), and times must be near the station clock. Readings with bad times are moved
/// to `rejected`. A native vitals message's sequence number goes through `gate`, which
/// remembers it: a replay is refused, a redelivery is [`telemetry::DecodeError::Duplicate`].
/// An interoperability batch is checked against its topic's device and expanded into vitals
/// and waveform chunks.
pub(super) fn admit(
    registry: &Registry,
    gate: &mut ReadingGate,
    policy: &IngestPolicy,
    now: i64,
    msg: Message,
) -> Result<Vec<Message>, telemetry::DecodeError> {
    let resolve =
        |device: &str, bed: &BedId| registry.resolve(device, Some(bed), policy.require_registered);
    Ok(match msg {
        Message::Vitals(mut v) => {
            v.bed = resolve(&v.device, &v.bed)?;
            drop_bad_times(policy, now, &mut v);
            // Before any alarm sees it: a replay is refused, a redelivery dropped.
            match gate.check_seq(&v, policy, now)? {
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
        // A dispenser that was offline uploads its events with their own (older) times, like
        // a buffered upload of readings: accepted within the same age limit.
        Message::Dose(mut d) => {
            d.bed = resolve(&d.device, &d.bed)?;
            policy.check_time(d.t_ms, now)?;
            vec![Message::Dose(d)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{self, Vital};
    use crate::engine::{Clock, ManualClock};
    use crate::telemetry::{DecodeError, DeviceStatus, Samples};

    /// The engine's time in these tests: 2001-09-09, years from the system clock, so that a
    /// rule reading the system clock instead of the `now` it is given fails here.
    const T0: i64 = 1_000_000_000_000;

    fn bed(n: &str) -> BedId {
        BedId::new("4W", n)
    }

    /// mon-1 feeds 4W/01; mon-off is registered to 4W/02 but disabled.
    fn registry() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::store::open(&dir.path().join("r.db")).expect("open");
        crate::ingest::register_device(&conn, "mon-1", &bed("01"), "bedside 1", 0).expect("reg");
        crate::ingest::register_device(&conn, "mon-off", &bed("02"), "", 0).expect("reg");
        conn.execute(
            "UPDATE device_registry SET enabled = 0 WHERE device = 'mon-off'",
            [],
        )
        .expect("disable");
        Registry::load(&conn).expect("load")
    }

    fn enforced() -> IngestPolicy {
        IngestPolicy {
            require_registered: true,
            ..IngestPolicy::default()
        }
    }

    fn vitals(device: &str, bed: BedId, seq: u64, readings: Vec<Reading>) -> Message {
        Message::Vitals(Vitals {
            bed,
            device: device.into(),
            seq,
            readings,
            rejected: Vec::new(),
            late: Vec::new(),
        })
    }

    fn hr(t_ms: i64) -> Reading {
        Reading::new(Vital::Hr, Some(72.0), t_ms)
    }

    fn wave(device: &str, bed: BedId, t0_ms: i64) -> Message {
        let channel = codes::channel("ECG_II").expect("channel");
        Message::Wave(WaveChunk {
            bed,
            device: device.into(),
            channel,
            unit: channel.unit,
            t0_ms,
            rate: 500.0,
            seq: 7,
            origin: 0.0,
            factor: 0.001,
            data: vec![1, -2, 3],
        })
    }

    fn status(device: &str, bed: BedId) -> Message {
        Message::Status(DeviceStatus {
            bed,
            device: device.into(),
            online: true,
            t_ms: Some(T0),
            conditions: vec!["LEAD_OFF".into()],
        })
    }

    /// A vitals message, a waveform chunk and a status message from `device` on `bed`, all
    /// stamped a moment before `T0`.
    fn each_kind(device: &str, bed: BedId) -> [Message; 3] {
        [
            vitals(device, bed.clone(), 1, vec![hr(T0 - 1_000)]),
            wave(device, bed.clone(), T0 - 2_000),
            status(device, bed),
        ]
    }

    /// Why `msg` is refused at `T0` under `policy` (with a gate of its own).
    fn refusal(policy: &IngestPolicy, msg: Message) -> &'static str {
        let now = ManualClock::new(T0).now_ms();
        admit(&registry(), &mut ReadingGate::default(), policy, now, msg)
            .expect_err("refused")
            .reason()
    }

    fn clock_skews(errors: &[DecodeError]) -> Vec<i64> {
        errors
            .iter()
            .map(|e| match e {
                DecodeError::ClockSkew { t_ms, .. } => *t_ms,
                other => panic!("not a clock skew: {other}"),
            })
            .collect()
    }

    #[test]
    fn a_registered_device_on_its_bed_is_admitted_unchanged() {
        let clock = ManualClock::new(T0);
        let (reg, mut gate) = (registry(), ReadingGate::default());
        for msg in each_kind("mon-1", bed("01")) {
            let admitted = admit(&reg, &mut gate, &enforced(), clock.now_ms(), msg.clone());
            assert_eq!(admitted, Ok(vec![msg]));
        }
    }

    #[test]
    fn an_unknown_device_is_refused_when_the_registry_is_enforced_else_feeds_its_topic_bed() {
        let clock = ManualClock::new(T0);
        let mut gate = ReadingGate::default();
        for msg in each_kind("mon-x", bed("03")) {
            assert_eq!(refusal(&enforced(), msg.clone()), "unknown_device");
            let open = IngestPolicy::default();
            let admitted = admit(&registry(), &mut gate, &open, clock.now_ms(), msg.clone());
            assert_eq!(admitted, Ok(vec![msg]));
        }
    }

    #[test]
    fn a_disabled_device_or_one_naming_another_bed_is_refused_enforced_or_not() {
        let cases = [
            ("mon-off", bed("02"), "unknown_device"),
            ("mon-1", bed("02"), "bed_mismatch"),
        ];
        for (device, bed, reason) in cases {
            for msg in each_kind(device, bed.clone()) {
                for policy in [IngestPolicy::default(), enforced()] {
                    assert_eq!(refusal(&policy, msg.clone()), reason, "{device} on {bed}");
                }
            }
        }
    }

    #[test]
    fn readings_stamped_too_far_from_the_clock_are_moved_to_rejected_per_policy() {
        let policy = IngestPolicy {
            max_future_ms: 5_000,
            max_age_ms: 60_000,
            ..enforced()
        };
        let clock = ManualClock::new(T0);
        let (reg, mut gate) = (registry(), ReadingGate::default());
        let reading = |vital, t_ms| Reading::new(vital, Some(50.0), t_ms);
        let good = vec![
            reading(Vital::Hr, T0),
            reading(Vital::SpO2, T0 + 5_000),
            reading(Vital::Temp, T0 - 60_000),
        ];
        let mut all = good.clone();
        all.push(reading(Vital::Rr, T0 + 5_001));
        all.push(reading(Vital::NibpSys, T0 - 60_001));
        let msg = vitals("mon-1", bed("01"), 1, all);
        let admitted = admit(&reg, &mut gate, &policy, clock.now_ms(), msg).expect("admitted");
        let [Message::Vitals(v)] = admitted.as_slice() else {
            panic!("one vitals message: {admitted:?}");
        };
        assert_eq!(v.readings, good);
        assert_eq!(clock_skews(&v.rejected), [T0 + 5_001, T0 - 60_001]);

        // The same reading, a minute and a bit later by the clock: too old.
        clock.advance(60_001);
        let msg = vitals("mon-1", bed("01"), 2, vec![reading(Vital::Hr, T0)]);
        let admitted = admit(&reg, &mut gate, &policy, clock.now_ms(), msg).expect("admitted");
        let [Message::Vitals(v)] = admitted.as_slice() else {
            panic!("one vitals message: {admitted:?}");
        };
        assert_eq!(v.readings, []);
        assert_eq!(clock_skews(&v.rejected), [T0]);
    }

    #[test]
    fn a_waveform_chunk_stamped_too_far_from_the_clock_is_refused_whole() {
        let policy = enforced();
        for t0 in [T0 + policy.max_future_ms + 1, T0 - policy.max_age_ms - 1] {
            assert_eq!(refusal(&policy, wave("mon-1", bed("01"), t0)), "clock_skew");
        }
        let edge = wave("mon-1", bed("01"), T0 + policy.max_future_ms);
        let admitted = admit(
            &registry(),
            &mut ReadingGate::default(),
            &policy,
            T0,
            edge.clone(),
        );
        assert_eq!(admitted, Ok(vec![edge]));
    }

    #[test]
    fn a_vitals_message_again_is_a_duplicate_and_an_older_sequence_a_replay() {
        let clock = ManualClock::new(T0);
        let (reg, mut gate, policy) = (registry(), ReadingGate::default(), enforced());
        let mut admit = |msg: Message| admit(&reg, &mut gate, &policy, clock.now_ms(), msg);
        let m5 = vitals("mon-1", bed("01"), 5, vec![hr(T0 - 1_000)]);
        assert_eq!(admit(m5.clone()), Ok(vec![m5.clone()]));
        assert_eq!(
            admit(m5),
            Err(DecodeError::Duplicate {
                device: "mon-1".into(),
                seq: 5
            })
        );
        let m4 = vitals("mon-1", bed("01"), 4, vec![hr(T0 - 2_000)]);
        assert_eq!(
            admit(m4),
            Err(DecodeError::Replay {
                device: "mon-1".into(),
                seq: 4,
                last: 5
            })
        );
        let m6 = vitals("mon-1", bed("01"), 6, vec![hr(T0 - 500)]);
        assert_eq!(admit(m6.clone()), Ok(vec![m6]));
    }

    #[test]
    fn a_batch_is_expanded_into_vitals_and_waveform_chunks_on_the_registered_bed() {
        let policy = enforced();
        let clock = ManualClock::new(T0);
        let samples = |name, t0_ms| Samples {
            channel: codes::channel(name).expect("channel"),
            t0_ms,
            rate: 125.0,
            origin: 0.5,
            factor: 0.01,
            data: vec![10, 20],
        };
        let too_old = T0 - policy.max_age_ms - 1;
        let ahead = T0 + policy.max_future_ms + 1;
        let batch = Batch {
            device: Some("mon-1".into()),
            location: Some("4W^01".into()),
            readings: vec![hr(T0 - 1_000), Reading::new(Vital::SpO2, Some(97.0), ahead)],
            waves: vec![samples("ECG_II", T0 - 2_000), samples("PLETH", too_old)],
            rejected: vec![DecodeError::UnknownCode(4242)],
        };
        let msg = Message::Batch {
            bed: bed("01"),
            device: "mon-1".into(),
            batch,
        };
        let skew = |t| policy.check_time(t, T0).expect_err("skew");
        let ecg = codes::channel("ECG_II").expect("channel");
        let expected = vec![
            Message::Vitals(Vitals {
                bed: bed("01"),
                device: "mon-1".into(),
                seq: 0,
                readings: vec![hr(T0 - 1_000)],
                rejected: vec![DecodeError::UnknownCode(4242), skew(too_old), skew(ahead)],
                late: Vec::new(),
            }),
            Message::Wave(WaveChunk {
                bed: bed("01"),
                device: "mon-1".into(),
                channel: ecg,
                unit: ecg.unit,
                t0_ms: T0 - 2_000,
                rate: 125.0,
                seq: 0,
                origin: 0.5,
                factor: 0.01,
                data: vec![10, 20],
            }),
        ];
        let (reg, mut gate) = (registry(), ReadingGate::default());
        let admitted = admit(&reg, &mut gate, &policy, clock.now_ms(), msg.clone());
        assert_eq!(admitted, Ok(expected.clone()));
        // Interoperability messages carry no sequence: the same batch again is no replay.
        let again = admit(&reg, &mut gate, &policy, clock.now_ms(), msg);
        assert_eq!(again, Ok(expected));
    }

    #[test]
    fn a_batch_must_come_from_its_topics_device_on_that_devices_bed() {
        let batch = |device: Option<&str>| Batch {
            device: device.map(Into::into),
            readings: vec![hr(T0 - 1_000)],
            ..Batch::default()
        };
        let on = |bed: BedId, device: Option<&str>| Message::Batch {
            bed,
            device: "mon-1".into(),
            batch: batch(device),
        };
        let policy = enforced();
        assert_eq!(
            refusal(&policy, on(bed("01"), Some("mon-2"))),
            "device_mismatch"
        );
        assert_eq!(
            refusal(&policy, on(bed("02"), Some("mon-1"))),
            "bed_mismatch"
        );
        let unnamed = admit(
            &registry(),
            &mut ReadingGate::default(),
            &policy,
            T0,
            on(bed("01"), None),
        );
        assert_eq!(
            unnamed,
            Ok(vec![vitals("mon-1", bed("01"), 0, vec![hr(T0 - 1_000)])])
        );
    }

    #[test]
    fn a_batch_whose_readings_are_all_refused_still_carries_its_rejects() {
        let policy = enforced();
        let ahead = T0 + policy.max_future_ms + 1;
        let msg = |readings| Message::Batch {
            bed: bed("01"),
            device: "mon-1".into(),
            batch: Batch {
                readings,
                ..Batch::default()
            },
        };
        let (reg, mut gate) = (registry(), ReadingGate::default());
        let admitted = admit(&reg, &mut gate, &policy, T0, msg(vec![hr(ahead)])).expect("ok");
        let [Message::Vitals(v)] = admitted.as_slice() else {
            panic!("one vitals message: {admitted:?}");
        };
        assert_eq!(
            (v.readings.len(), clock_skews(&v.rejected)),
            (0, vec![ahead])
        );
        // Nothing at all: nothing to store.
        assert_eq!(
            admit(&reg, &mut gate, &policy, T0, msg(Vec::new())),
            Ok(vec![])
        );
    }
}
