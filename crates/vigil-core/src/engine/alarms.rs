//! The engine's side of the alarms: the tick of the time-based rules (and the station's
//! `STORE_FAILED`), waveform gaps declared after their hold, and every alarm event published to
//! the snapshot and live watchers, logged, stored and notified.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::admission::settle_budgets;
use super::storage::outbox_op;
use super::{lock, LiveEvent, Shared, WardState};
use crate::alarms::{AlarmEvent, AlarmEventKind};
use crate::store::Op;
use crate::telemetry::BedId;

/// After alarm events: refresh the snapshot's alarm list and send it to live watchers (under
/// the state lock, so watchers see lists in order).
pub(super) fn publish_alarms(shared: &Shared, st: &mut WardState, events: &[AlarmEvent], now: i64) {
    if events.is_empty() {
        return;
    }
    let active = st.alarms.active(now);
    st.snapshot.alarms = active.clone();
    let _ = shared.live.send(LiveEvent::Alarms(Arc::new(active)));
}

/// Log, persist and notify alarm events (after `publish_alarms`). Never waits.
pub(super) fn record_alarm_events(shared: &Shared, events: Vec<AlarmEvent>) {
    for e in events {
        log_alarm_event(&e);
        if let Some(n) = &shared.alarm_io.notifier {
            n.alarm(&e);
        }
        outbox_op(shared, Op::Alarm(e));
    }
}

/// Publish, log, persist and notify events from an operator action or the tick.
pub(super) async fn emit_alarm_events(shared: &Shared, events: Vec<AlarmEvent>, now: i64) {
    if events.is_empty() {
        return;
    }
    {
        let mut st = lock(&shared.state);
        publish_alarms(shared, &mut st, &events, now);
    }
    record_alarm_events(shared, events);
}

fn log_alarm_event(e: &AlarmEvent) {
    let user = e.user.as_deref().unwrap_or("-");
    match e.kind {
        AlarmEventKind::Raise => tracing::warn!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, priority = e.priority.as_str(), audible = e.audible,
            "ALARM {} {}", e.priority.marker(), e.message
        ),
        AlarmEventKind::Escalate => tracing::warn!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, level = e.level, "ALARM ESCALATED {}", e.message
        ),
        AlarmEventKind::Resolve => tracing::info!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, "ALARM RESOLVED {}", e.message
        ),
        _ => tracing::info!(
            target: "vigil::alarm",
            bed = %e.bed, code = %e.code, kind = e.kind.as_str(), user, "{}", e.message
        ),
    }
}

/// Whether the store writer makes progress: work waiting in its queue and no batch finished
/// for [`STALL_MS`](crate::store::STALL_MS) (wall time: a hung disk does not follow the
/// engine's clock).
#[derive(Debug, Default)]
pub(super) struct StoreProgress {
    batches: u64,
    /// Since when work has waited with no batch finished.
    waiting_since: Option<std::time::Instant>,
}

impl StoreProgress {
    pub(super) fn stalled(&mut self, batches: u64, waiting: bool, now: std::time::Instant) -> bool {
        if batches != self.batches || !waiting {
            // Progress (or nothing to do): any wait starts now.
            self.batches = batches;
            self.waiting_since = waiting.then_some(now);
            return false;
        }
        let since = *self.waiting_since.get_or_insert(now);
        now.duration_since(since) >= Duration::from_millis(crate::store::STALL_MS)
    }
}

/// Why the station's history is not being recorded, if it is not: what STORE_FAILED says.
fn store_condition(stats: &crate::store::WriterStats, stalled: bool) -> Option<&'static str> {
    if stats.stopped.load(Ordering::SeqCst) {
        Some("the store writer stopped: history is not being recorded")
    } else if stats.failing.load(Ordering::Relaxed) {
        Some("the database cannot be written (disk full?): history is not being recorded")
    } else if stalled {
        Some("the database makes no progress: history is not being recorded")
    } else {
        None
    }
}

/// Time-based alarm rules (condition delays, communication lost, pause expiry, escalation).
pub(super) async fn alarm_tick(
    shared: Arc<Shared>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut progress = StoreProgress::default();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = shared.clock.now_ms();
        let waiting = shared.store_queue.capacity() < shared.store_queue.max_capacity();
        let batches = shared.store_stats.batches.load(Ordering::Relaxed);
        let condition = store_condition(
            &shared.store_stats,
            progress.stalled(batches, waiting, std::time::Instant::now()),
        );
        let failing = condition.is_some();
        let events = {
            let mut st = lock(&shared.state);
            let mut events = st.alarms.tick(now);
            events.extend(
                st.alarms
                    .store_failing(failing, condition.unwrap_or_default(), now),
            );
            events
        };
        if !failing {
            let dropped = shared.store_dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::error!(dropped, "data not stored while the database was failing");
                outbox_op(
                    &shared,
                    Op::Reject {
                        reason: "not_stored",
                        detail: format!(
                            "{dropped} operations dropped while the database was failing"
                        ),
                        t_ms: now,
                    },
                );
            }
        }
        emit_alarm_events(&shared, events, now).await;
        declare_gaps(&shared, now).await;
        settle_budgets(&shared, now);
    }
}

/// Waveform chunks still missing after the hold ([`crate::ingest::GAP_HOLD_MS`]): record each
/// gap and raise its bed's DATA GAP alarm.
async fn declare_gaps(shared: &Shared, now: i64) {
    let gaps = lock(&shared.gaps).due(now);
    if gaps.is_empty() {
        return;
    }
    let mut events = Vec::new();
    {
        let mut st = lock(&shared.state);
        for g in &gaps {
            note_bed(shared, &mut st, &g.bed);
            events.extend(st.alarms.data_gap(&g.bed, &g.device, g.channel, now));
        }
    }
    for g in gaps {
        tracing::warn!(
            bed = %g.bed, device = %g.device, channel = g.channel,
            missing = g.last_seq - g.first_seq + 1, "waveform gap"
        );
        outbox_op(shared, Op::Gap(g));
    }
    emit_alarm_events(shared, events, now).await;
}

/// A bed seen for the first time joins the snapshot and is announced to live watchers.
pub(super) fn note_bed(shared: &Shared, st: &mut WardState, bed: &BedId) {
    if let Err(pos) = st.snapshot.beds.binary_search(bed) {
        st.snapshot.beds.insert(pos, bed.clone());
        tracing::info!(%bed, "new bed");
        let _ = shared.live.send(LiveEvent::BedAdded(bed.clone()));
    }
}
