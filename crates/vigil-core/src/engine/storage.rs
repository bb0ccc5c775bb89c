//! The engine's side of the store: the writer's queue as the ingest paths use it
//! (`StoreSink`: dropped and counted while the database fails), the outbox through which the
//! paths that never wait for the database queue their writes and acknowledgements, waiting for
//! a commit, and the retention loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::Publish;
use tokio::sync::{mpsc, watch};

use super::{Clock, Shared};
use crate::ingest::Retention;
use crate::store::{Op, StoreWriter, WriterStats};

/// Longest an operator action (acknowledge) waits for its record to be committed.
const ACTION_COMMIT_WAIT: Duration = Duration::from_secs(2);

/// Reject records (one per refused payload) are not queued beyond this outbox backlog: a flood
/// of refused payloads is counted, not stored row by row, and cannot grow memory without bound.
const REJECT_BACKLOG: u64 = 50_000;

/// What `forward_outbox` passes on, in order.
pub(super) enum Outbox {
    Op(Op),
    /// A QoS 1 message handled: acknowledge it once what came before is committed.
    Ack(Publish),
}

/// The writer's queue as the ingest paths use it: while the writer is failing (disk full) and
/// its queue is full, operations are dropped and counted rather than waited for.
#[derive(Clone)]
pub(super) struct StoreSink {
    tx: mpsc::Sender<Op>,
    stats: Arc<WriterStats>,
    dropped: Arc<AtomicU64>,
}

async fn store_op(store: &mpsc::Sender<Op>, op: Op) {
    if store.send(op).await.is_err() {
        tracing::error!("store writer has stopped; data not stored");
    }
}

impl StoreSink {
    /// The queue of `writer`, with a new count of the operations it drops.
    pub(super) fn new(writer: &StoreWriter) -> StoreSink {
        StoreSink {
            tx: writer.sender(),
            stats: writer.stats(),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Operations dropped so far (the alarm tick records how many, once the writer recovers).
    pub(super) fn dropped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Queue an operation for the writer. While the writer is failing (disk full) its queue
    /// may fill up: then the operation is dropped and counted rather than waited for.
    pub(super) async fn put(&self, op: Op) {
        if !self.stats.failing.load(Ordering::Relaxed) {
            return store_op(&self.tx, op).await;
        }
        match self.tx.try_send(op) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n % 10_000 == 0 {
                    tracing::error!(
                        dropped = n,
                        "database failing and its queue is full: data not stored"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("store writer has stopped; data not stored");
            }
        }
    }
}

/// Pass the outbox on to the writer in order (waiting for room there, which nothing that
/// queued into the outbox does), and acknowledgements on once what came before them is queued.
pub(super) async fn forward_outbox(
    sink: StoreSink,
    acks: mpsc::UnboundedSender<Publish>,
    mut rx: mpsc::UnboundedReceiver<Outbox>,
    len: Arc<AtomicU64>,
) {
    while let Some(item) = rx.recv().await {
        len.fetch_sub(1, Ordering::Relaxed);
        match item {
            Outbox::Op(op) => sink.put(op).await,
            Outbox::Ack(p) => {
                let _ = acks.send(p);
            }
        }
    }
}

/// Queue a store operation without waiting (see [`Outbox`]).
pub(super) fn outbox_op(shared: &Shared, op: Op) {
    let backlog = shared.outbox_len.load(Ordering::Relaxed);
    if matches!(op, Op::Reject { .. }) && backlog >= REJECT_BACKLOG {
        shared.counters.reject("reject_not_stored");
        return;
    }
    if !outbox_send(shared, Outbox::Op(op)) {
        tracing::error!("store writer has stopped; data not stored");
    }
}

/// Put `item` in the outbox; false if the engine has stopped.
pub(super) fn outbox_send(shared: &Shared, item: Outbox) -> bool {
    shared.outbox_len.fetch_add(1, Ordering::Relaxed);
    let sent = shared.outbox.send(item).is_ok();
    if !sent {
        shared.outbox_len.fetch_sub(1, Ordering::Relaxed);
    }
    sent
}

/// Wait (bounded) until what was queued for the writer so far is committed.
pub(super) async fn wait_committed(shared: &Shared) {
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let wait = async { outbox_send(shared, Outbox::Op(Op::Flush(done_tx))) && done.await.is_ok() };
    if !matches!(
        tokio::time::timeout(ACTION_COMMIT_WAIT, wait).await,
        Ok(true)
    ) {
        tracing::error!("the database did not confirm the record of an operator action");
    }
}

/// Log when this database last stored data: after a crash or power loss, what devices sent
/// since then is either sent again by the broker (persistent session) or missing.
pub(super) fn report_last_stored(conn: &rusqlite::Connection, now: i64) -> Option<i64> {
    let last = conn
        .query_row(
            "SELECT MAX(t) FROM (SELECT MAX(t0_ms) AS t FROM wave_chunks
               UNION ALL SELECT MAX(t_ms) FROM numerics)",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .ok()
        .flatten();
    if let Some(t) = last {
        let ago_s = (now - t) as f64 / 1000.0;
        tracing::info!(
            last_stored_ms = t,
            "history: last data stored {ago_s:.1} s before this start; what devices sent \
             since is redelivered by the broker (persistent session) or recorded as a gap"
        );
    }
    last
}

/// Every second, ask the writer to delete a step of history past the retention limits (a step
/// is bounded, so pruning keeps pace with ingest without ever stalling it).
pub(super) async fn prune_loop(
    clock: Arc<dyn Clock>,
    retention: Retention,
    store: mpsc::Sender<Op>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = clock.now_ms();
        let op = Op::Prune {
            waves_before_ms: now - (retention.waveform_hours * 3600 * 1000) as i64,
            trends_before_ms: now - (retention.trend_days * 24 * 3600 * 1000) as i64,
        };
        if store.send(op).await.is_err() {
            return;
        }
    }
}
