//! Desktop notifications of alarms (freedesktop notifications over D-Bus, notify-rust).
//!
//! One notification per alarm, kept in step with it: raised → shown; escalated, latched or
//! resolved-unreviewed → the same notification updated (replaced in place); acknowledged or
//! over → withdrawn (closed). The bed is named as the ward knows it ([`bed_label`]).
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
use crate::telemetry::BedId;

/// A bed as the ward names it: "Bed 03" (the window's tiles, the alarm bar and the desktop
/// notifications all use these words, never the internal key `ward/03`).
pub fn bed_label(bed: &BedId) -> String {
    if bed.ward == "*" {
        return "Station".into();
    }
    format!("Bed {}", bed.bed)
}

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
    /// The alarm it is about (`ward/bed/CODE`): its later notes update or withdraw this one.
    pub alarm_id: String,
    /// Withdraw the alarm's notification rather than show one.
    pub withdraw: bool,
}

impl Note {
    /// What an alarm event does to the alarm's notification: show (raise), update (escalate,
    /// latch, resolved but not reviewed), withdraw (acknowledged, over). Other events
    /// (pauses, settings) change nothing.
    pub fn for_event(e: &AlarmEvent) -> Option<Note> {
        use crate::alarms::AlarmState;
        let what = match (e.kind, e.state) {
            (AlarmEventKind::Raise, _) => "ALARM",
            (AlarmEventKind::Escalate, _) => "ESCALATED",
            (AlarmEventKind::Latch, _) => "LATCHED",
            (AlarmEventKind::Resolve, AlarmState::Unreviewed) => "RESOLVED, NOT REVIEWED",
            (AlarmEventKind::Resolve, _) | (AlarmEventKind::Acknowledge, _) => {
                return Some(Note {
                    summary: String::new(),
                    body: String::new(),
                    priority: e.priority,
                    alarm_id: e.alarm_id.clone(),
                    withdraw: true,
                })
            }
            _ => return None,
        };
        Some(Note {
            summary: format!("{} {what} {}", e.priority.marker(), bed_label(&e.bed)),
            body: e.message.clone(),
            priority: e.priority,
            alarm_id: e.alarm_id.clone(),
            withdraw: false,
        })
    }
}

impl Note {
    /// What a remote patient's alert change does to its notification: raised → shown,
    /// escalated → updated, resolved → withdrawn. A warning is low priority and urgent medium: a
    /// missed reading or silent devices call for a call to the patient, not a run to a bedside.
    pub fn for_remote(c: &crate::remote::watch::AlertChange) -> Note {
        use crate::remote::watch::{AlertKind, Change};
        use vigil_schedule::Level;
        let alarm_id = format!("remote/{}", c.id);
        let level = match c.change {
            Change::Raised(level) => level,
            Change::Escalated => Level::Urgent,
            Change::Resolved(_) => {
                return Note {
                    summary: String::new(),
                    body: String::new(),
                    priority: Priority::Low,
                    alarm_id,
                    withdraw: true,
                }
            }
        };
        let priority = match level {
            Level::Warning => Priority::Low,
            Level::Urgent => Priority::Medium,
        };
        let (what, body) = match c.kind {
            AlertKind::MissedReading => (
                "MISSED READING",
                format!("{}: nothing taken in its window of {}", c.item, c.slot_date),
            ),
            AlertKind::MissedDose => (
                "MISSED DOSE",
                format!("{}: not taken in its window of {}", c.item, c.slot_date),
            ),
            AlertKind::DeviceSilent => (
                "DEVICES SILENT",
                format!(
                    "no reading from the patient's devices since {}",
                    c.slot_date
                ),
            ),
        };
        let urgent = if level == Level::Urgent {
            " URGENT"
        } else {
            ""
        };
        Note {
            summary: format!("{} {what}{urgent} Remote {}", priority.marker(), c.bed.bed),
            body,
            priority,
            alarm_id,
            withdraw: false,
        }
    }
}

/// Show one notification now, waiting at most `timeout` (on a helper thread, which is left
/// behind if the server hangs). High priority uses critical urgency.
pub fn show_with_timeout(note: &Note, timeout: Duration) -> Result<(), NotifyError> {
    let busy = Arc::new(AtomicBool::new(false));
    show_guarded(note, None, timeout, &busy).map(drop)
}

type Handle = notify_rust::NotificationHandle;

/// Show `note`, replacing the notification `replaces` (its id) if given; returns the handle.
fn show_guarded(
    note: &Note,
    replaces: Option<u32>,
    timeout: Duration,
    busy: &Arc<AtomicBool>,
) -> Result<Handle, NotifyError> {
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
            let mut notification = notify_rust::Notification::new();
            notification
                .appname("Vigil")
                .summary(&n.summary)
                .body(&n.body)
                .urgency(urgency);
            if let Some(id) = replaces {
                notification.id(id);
            }
            let r = notification
                .show()
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

/// Close a notification on a helper thread, waiting at most `timeout` (a hung server cannot
/// block the worker; a failure is logged).
fn close_guarded(h: Handle, timeout: Duration) {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("vigil-notify-close".into())
        .spawn(move || {
            h.close();
            let _ = tx.send(());
        });
    if spawned.is_err() || rx.recv_timeout(timeout).is_err() {
        tracing::warn!(target: "vigil::alarm", "withdrawing a desktop notification did not finish");
    }
}

/// Counters of a [`Notifier`].
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub shown: AtomicU64,
    /// Notifications withdrawn because their alarm was acknowledged or ended.
    pub withdrawn: AtomicU64,
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
                // The notification shown for each alarm, to update or withdraw it.
                let mut shown: std::collections::HashMap<String, u32> = Default::default();
                let mut handles: std::collections::HashMap<String, Handle> = Default::default();
                while let Ok(note) = rx.recv() {
                    if note.withdraw {
                        shown.remove(&note.alarm_id);
                        if let Some(h) = handles.remove(&note.alarm_id) {
                            close_guarded(h, timeout);
                            st.withdrawn.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let replaces = shown.get(&note.alarm_id).copied();
                    match show_guarded(&note, replaces, timeout, &busy) {
                        Ok(h) => {
                            st.shown.fetch_add(1, Ordering::Relaxed);
                            shown.insert(note.alarm_id.clone(), h.id());
                            handles.insert(note.alarm_id.clone(), h);
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

    /// Queue what an alarm event does to its notification ([`Note::for_event`]). Never blocks.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::watch::{AlertChange, AlertKind, Change, Resolution};
    use vigil_schedule::Level;

    fn change(kind: AlertKind, change: Change) -> AlertChange {
        AlertChange {
            id: 7,
            stay: 1,
            bed: BedId::new("home", "p-01"),
            kind,
            item: "bp".into(),
            slot_date: "2026-06-01".into(),
            from_ms: 0,
            to_ms: 1,
            change,
        }
    }

    #[test]
    fn a_remote_alert_is_shown_updated_when_urgent_and_withdrawn_when_resolved() {
        let raised = Note::for_remote(&change(
            AlertKind::MissedReading,
            Change::Raised(Level::Warning),
        ));
        assert_eq!(
            (
                raised.summary.as_str(),
                raised.body.as_str(),
                raised.priority
            ),
            (
                "* MISSED READING Remote p-01",
                "bp: nothing taken in its window of 2026-06-01",
                Priority::Low
            )
        );
        assert!(!raised.withdraw);
        let urgent = Note::for_remote(&change(AlertKind::MissedReading, Change::Escalated));
        assert_eq!(urgent.summary, "** MISSED READING URGENT Remote p-01");
        assert_eq!(urgent.priority, Priority::Medium);
        assert_eq!(
            urgent.alarm_id, raised.alarm_id,
            "the same notification, updated"
        );
        let silent = Note::for_remote(&change(
            AlertKind::DeviceSilent,
            Change::Raised(Level::Urgent),
        ));
        assert!(
            silent.summary.contains("DEVICES SILENT URGENT"),
            "{silent:?}"
        );
        let over = Note::for_remote(&change(
            AlertKind::MissedReading,
            Change::Resolved(Resolution::ReceivedLate),
        ));
        assert!(over.withdraw);
        assert_eq!(over.alarm_id, "remote/7");
    }
}
