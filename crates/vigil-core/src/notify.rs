//! Desktop notifications of alarms (freedesktop notifications over D-Bus, notify-rust).
//!
//! Best effort, never on the alarm path: the engine hands a note to [`Notifier::alarm`], which
//! only queues it (a full queue drops the note and logs). A worker thread shows each note on a
//! helper thread and waits at most `timeout`: a hung notification server cannot block anything
//! (notify-rust's `show()` then blocks forever), a missing bus is logged. While a `show()` is
//! stuck, further notes are skipped (and logged) rather than piling up threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use thiserror::Error;

use crate::alarms::{AlarmEvent, AlarmEventKind, Priority};

const QUEUE: usize = 256;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum NotifyError {
    /// No session bus, no notification service, or the service refused.
    #[error("desktop notification failed: {0}")]
    Failed(String),
    #[error("the notification service did not answer within {0:?}")]
    Timeout(Duration),
    #[error("a previous notification is still stuck in the notification service")]
    Busy,
}

/// One desktop notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    pub priority: Priority,
}

impl Note {
    /// The note for an alarm event worth a notification (raise, escalate).
    pub fn for_event(e: &AlarmEvent) -> Option<Note> {
        let what = match e.kind {
            AlarmEventKind::Raise => "ALARM",
            AlarmEventKind::Escalate => "ESCALATED",
            _ => return None,
        };
        Some(Note {
            summary: format!("{} {what} bed {}", e.priority.marker(), e.bed),
            body: e.message.clone(),
            priority: e.priority,
        })
    }
}

/// Show one notification now, waiting at most `timeout` (on a helper thread, which is left
/// behind if the server hangs). High priority uses critical urgency.
pub fn show_with_timeout(note: &Note, timeout: Duration) -> Result<(), NotifyError> {
    let busy = Arc::new(AtomicBool::new(false));
    show_guarded(note, timeout, &busy)
}

fn show_guarded(note: &Note, timeout: Duration, busy: &Arc<AtomicBool>) -> Result<(), NotifyError> {
    if busy.swap(true, Ordering::AcqRel) {
        return Err(NotifyError::Busy);
    }
    let (tx, rx) = mpsc::channel();
    let n = note.clone();
    let flag = Arc::clone(busy);
    let spawned = std::thread::Builder::new()
        .name("vigil-notify-show".into())
        .spawn(move || {
            let urgency = match n.priority {
                Priority::High => notify_rust::Urgency::Critical,
                Priority::Medium => notify_rust::Urgency::Normal,
                Priority::Low => notify_rust::Urgency::Low,
            };
            let r = notify_rust::Notification::new()
                .appname("Vigil")
                .summary(&n.summary)
                .body(&n.body)
                .urgency(urgency)
                .show()
                .map(|_| ())
                .map_err(|e| NotifyError::Failed(e.to_string()));
            flag.store(false, Ordering::Release);
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        busy.store(false, Ordering::Release);
        return Err(NotifyError::Failed(e.to_string()));
    }
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(NotifyError::Timeout(timeout)),
    }
}

/// Counters of a [`Notifier`].
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub shown: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Queue of desktop notifications with its worker.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::SyncSender<Note>,
    stats: Arc<NotifyStats>,
}

impl Notifier {
    /// Start the worker. `timeout` bounds each `show()`.
    pub fn spawn(timeout: Duration) -> Notifier {
        let (tx, rx) = mpsc::sync_channel::<Note>(QUEUE);
        let stats = Arc::new(NotifyStats::default());
        let st = Arc::clone(&stats);
        let worker = std::thread::Builder::new()
            .name("vigil-notify".into())
            .spawn(move || {
                let busy = Arc::new(AtomicBool::new(false));
                while let Ok(note) = rx.recv() {
                    match show_guarded(&note, timeout, &busy) {
                        Ok(()) => {
                            st.shown.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            st.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(target: "vigil::alarm", error = %e, summary = %note.summary,
                                "desktop notification not shown (the alarm itself is unaffected)");
                        }
                    }
                }
            });
        if let Err(e) = worker {
            tracing::error!(error = %e, "cannot start the notification worker");
        }
        Notifier { tx, stats }
    }

    /// Queue a notification for an alarm event (raise and escalate only). Never blocks.
    pub fn alarm(&self, e: &AlarmEvent) {
        if let Some(n) = Note::for_event(e) {
            self.send(n);
        }
    }

    /// Queue a note. Never blocks: a full queue or a stopped worker drops it (logged).
    pub fn send(&self, n: Note) {
        if let Err(e) = self.tx.try_send(n) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "vigil::alarm", error = %e, "desktop notification dropped");
        }
    }

    pub fn stats(&self) -> &NotifyStats {
        &self.stats
    }
}
