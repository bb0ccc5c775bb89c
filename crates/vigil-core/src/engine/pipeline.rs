//! One message through the engine: station topics to their handlers; telemetry decoded,
//! admitted (`admission`), passed through the reading gate, alarmed on, stored and broadcast.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::admission::{admit_now, reject};
use super::alarms::{note_bed, publish_alarms, record_alarm_events};
use super::link::Lane;
use super::security::published_head;
use super::storage::{outbox_op, StoreSink};
use super::sync::{audit_head_topic, notice_station, station_notice, station_state};
use super::{lock, LiveEvent, Shared};
use crate::alarms::sync as alarm_sync;
use crate::store::Op;
use crate::telemetry::{self, Message, Vitals};

/// A message taken from a lane: a station topic goes to its handler; telemetry is decoded,
/// admitted and ingested, or counted and recorded as a reject.
pub(super) async fn handle_publish(
    shared: &Shared,
    sink: &StoreSink,
    lane: Lane,
    topic: &str,
    payload: &[u8],
) {
    // Station-level topics (`vigil/v1/_station/...`): never telemetry (a ward never starts with
    // `_`). Checked by prefix first: this runs for every message.
    if topic
        .strip_prefix(telemetry::TOPIC_ROOT)
        .is_some_and(|r| r.starts_with("/_station/"))
    {
        if topic == audit_head_topic(&shared.alarm_io.station) {
            published_head(shared, payload).await;
        } else if let Some(station) = notice_station(topic) {
            station_notice(shared, station, payload);
        }
        return;
    }
    // A remote patient's own topics: receipts of the station's notices (recorded by the remote
    // loop), and the station's notices heard back (nothing to do). Never telemetry.
    if let Some(receipt) = crate::remote::engage::patient_topic(topic) {
        if let Some(bed) = receipt {
            use crate::remote::engage::{MAX_PENDING_RECEIPTS, MAX_RECEIPT_BYTES};
            let mut pending = lock(&shared.receipts);
            // Receipts skip the devices' budgets (no device sends them): bounded here, so a
            // flood costs a count, never memory or the remote loop's time.
            if payload.len() > MAX_RECEIPT_BYTES || pending.len() >= MAX_PENDING_RECEIPTS {
                drop(pending);
                let n = shared.counters.reject("bad_receipt");
                if n <= 1 || n % 1000 == 0 {
                    tracing::warn!(%bed, count = n, bytes = payload.len(),
                        "patient receipt refused: too large, or too many waiting");
                }
            } else {
                pending.push((bed, payload.to_vec()));
                drop(pending);
                shared.remote_wake.notify_one();
            }
        }
        return;
    }
    // Other stations' alarm state: never telemetry (device topics have no `_` levels).
    if alarm_sync::is_station_topic(topic) {
        return station_state(shared, topic, payload).await;
    }
    shared.counters.messages.fetch_add(1, Ordering::Relaxed);
    let msgs = match crate::decode::decode(topic, payload).and_then(|m| admit_now(shared, m)) {
        Ok(m) => m,
        // A QoS 1 redelivery of a message already handled: nothing new, not a reject.
        Err(e @ telemetry::DecodeError::Duplicate { .. }) => {
            shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(topic = %topic.chars().take(200).collect::<String>(), error = %e, "redelivery dropped");
            return;
        }
        Err(e) => return reject(shared, topic, &e),
    };
    for m in msgs {
        ingest(shared, sink, lane, topic, m).await;
    }
}

/// Store, alarm on and broadcast one admitted message. `source` names it in logs. On the
/// priority lane nothing waits for the database (its operations go through the outbox); on
/// the bulk lane waveform chunks wait for room in the writer's queue.
pub(super) async fn ingest(
    shared: &Shared,
    sink: &StoreSink,
    lane: Lane,
    source: &str,
    msg: Message,
) {
    let bulk = move |op: Op| async move {
        match lane {
            Lane::Bulk => sink.put(op).await,
            Lane::Priority => outbox_op(shared, op),
        }
    };
    match msg {
        // Batches are expanded by `admit`; nothing of the kind reaches here.
        Message::Batch { .. } => {}
        Message::Vitals(mut v) => {
            for e in &v.rejected {
                reject(shared, source, e);
            }
            let now = shared.clock.now_ms();
            // Only readings newer than the device's last of the vital and taken within the
            // live window reach the alarms; the others are history, marked late.
            let c = lock(&shared.gate).classify(&mut v, &shared.policy, now);
            shared
                .counters
                .readings
                .fetch_add((v.readings.len() + v.late.len()) as u64, Ordering::Relaxed);
            if c.late > 0 {
                note_late(shared, source, &v, c);
            }
            let v = Arc::new(v);
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &v.bed);
                // Old readings alone say nothing about the device now.
                let mut events = if v.late.is_empty() || !v.readings.is_empty() {
                    st.alarms.device_seen(&v.bed, &v.device, now)
                } else {
                    Vec::new()
                };
                for r in &v.late {
                    st.snapshot
                        .late
                        .entry(v.bed.clone())
                        .or_default()
                        .insert(r.vital, *r);
                }
                for r in &v.readings {
                    let key = (v.bed.clone(), r.vital);
                    let last = st.evaluated.get(&key).cloned();
                    if crate::ingest::is_revision(r.status) {
                        if last.as_ref() == Some(&(v.device.clone(), r.t_ms)) {
                            // The source revises the reading the alarms reflect.
                            let ev = st.alarms.revise(&v.bed, &v.device, r, now);
                            tracing::warn!(
                                bed = %v.bed, device = %v.device, vital = r.vital.info().name,
                                status = r.status.as_str(), events = ev.len(),
                                "reading revised by its source; alarms re-evaluated"
                            );
                            events.extend(ev);
                            let latest = st.snapshot.latest.entry(v.bed.clone()).or_default();
                            if r.alarmable() {
                                latest.insert(r.vital, *r);
                            } else {
                                latest.remove(&r.vital);
                            }
                            continue;
                        }
                        if last.is_some_and(|(_, t)| r.t_ms <= t) {
                            // A revision of an earlier reading, or of another device's:
                            // history only.
                            continue;
                        }
                    }
                    events.extend(st.alarms.observe(&v.bed, r, now));
                    if r.alarmable() {
                        st.evaluated.insert(key, (v.device.clone(), r.t_ms));
                    }
                    st.snapshot
                        .latest
                        .entry(v.bed.clone())
                        .or_default()
                        .insert(r.vital, *r);
                }
                // A shown alarm's value moved with the numerics: send the list again so the
                // alarm text says what the tile shows.
                if st.alarms.take_shown_changed() && events.is_empty() {
                    let active = st.alarms.active(now);
                    st.snapshot.alarms = active.clone();
                    let _ = shared.live.send(LiveEvent::Alarms(Arc::new(active)));
                }
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            let _ = shared.live.send(LiveEvent::Vitals(Arc::clone(&v)));
            record_alarm_events(shared, events);
            outbox_op(shared, Op::Vitals(v, now));
        }
        Message::Wave(w) => {
            shared
                .counters
                .samples
                .fetch_add(w.data.len() as u64, Ordering::Relaxed);
            let now = shared.clock.now_ms();
            // A jump in the sequence is declared a gap only if the chunks are still missing
            // after the hold (`declare_gaps`); a late one inside a declared gap corrects it.
            let fill = lock(&shared.gaps).observe(&w, now);
            let w = Arc::new(w);
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &w.bed);
                let events = st.alarms.device_seen(&w.bed, &w.device, now);
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            if let Some(f) = fill {
                tracing::info!(
                    bed = %f.bed, device = %f.device, channel = f.channel, seq = f.seq,
                    "late waveform chunk: the recorded gap is corrected"
                );
                // Through the outbox, like the gap it corrects (which it must follow).
                outbox_op(shared, Op::GapFill(f));
            }
            record_alarm_events(shared, events);
            let _ = shared.live.send(LiveEvent::Wave(Arc::clone(&w)));
            bulk(Op::Wave(w)).await;
        }
        Message::Status(s) => {
            if !s.online {
                tracing::warn!(bed = %s.bed, device = %s.device, "device offline");
            }
            let now = shared.clock.now_ms();
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &s.bed);
                st.devices.insert(s.device.clone(), s.clone());
                let events = st.alarms.device_status(&s, now);
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            record_alarm_events(shared, events);
            let _ = shared.live.send(LiveEvent::Device(Arc::new(s.clone())));
            outbox_op(shared, Op::Status(s));
        }
        Message::Dose(d) => {
            shared.counters.doses.fetch_add(1, Ordering::Relaxed);
            let now = shared.clock.now_ms();
            tracing::debug!(
                bed = %d.bed, device = %d.device, medication = %d.medication,
                event = d.kind.as_str(), t_ms = d.t_ms, "dose event"
            );
            let events = {
                let mut st = lock(&shared.state);
                note_bed(shared, &mut st, &d.bed);
                let events = st.alarms.device_seen(&d.bed, &d.device, now);
                publish_alarms(shared, &mut st, &events, now);
                events
            };
            record_alarm_events(shared, events);
            // The care-plan watch reads doses from the database: stored through the outbox
            // (acknowledged after commit), then the remote loop is woken to look.
            outbox_op(shared, Op::Dose(d, now));
            shared.remote_wake.notify_one();
        }
    }
}

/// Count and log readings classified late (the first, then every 1000th).
fn note_late(shared: &Shared, source: &str, v: &Vitals, c: crate::ingest::Classified) {
    let before = shared.counters.late.fetch_add(c.late, Ordering::Relaxed);
    shared
        .counters
        .late_duplicates
        .fetch_add(c.duplicates, Ordering::Relaxed);
    if before == 0 || (before + c.late) / 1000 > before / 1000 {
        tracing::warn!(
            bed = %v.bed, device = %v.device, late = c.late, duplicates = c.duplicates,
            total = before + c.late, source = %source.chars().take(200).collect::<String>(),
            "late readings stored as history, not alarmed on"
        );
    }
}
