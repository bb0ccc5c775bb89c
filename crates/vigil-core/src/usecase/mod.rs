//! Station actions, one home each (the use-case layer). An action is one function taking typed
//! input built through its one parser ([`DeviceId`](crate::telemetry::DeviceId),
//! [`BedId::parse`](crate::telemetry::BedId::parse), [`Label`], [`LatchCode`],
//! [`WardProfile::parse`](crate::alarms::WardProfile::parse)) and an [`Authorized`] proof for
//! the action's permission. It runs one SQLite transaction that holds the change and its audit
//! entry ([`crate::store::in_tx`]); a change to the running station ([`Live`]: the engine, a
//! fake in tests) is applied inside it, before the commit, and undone if the commit fails
//! ([`commit_applied`]), so that what is stored, audited, shown and evaluated agree. Afterwards
//! it reports what IT must know (security events). The window's commands and `vigilctl` are
//! adapters over these: parse, call, format.
//!
//! The exception are the alarm actions ([`acknowledge_alarm`], [`audio_pause`] and its end):
//! the engine takes them first and their audit entry follows ([`Trail`]), so that a nurse can
//! always silence or acknowledge an alarm, even when the trail cannot be written.
//!
//! Where a new station action goes: a function here (or in the module of its subject, like
//! `patients` and `stations`), taking its validated input and `&Authorized`, writing through
//! [`crate::store::in_tx`] (a plain setting and its entry: [`setting_changed`]; with a change to
//! the running station: [`commit_applied`] with a [`Step`] per change).

mod adt;
mod alarms;
mod devices;
mod limits;
mod live;
mod station;
mod trail;

pub use adt::{admit_patient, discharge_patient, transfer_patient};
pub use alarms::{acknowledge_alarm, audio_pause, pause_target, Trail};
pub use devices::{register_device, remove_device, Label, RegisterDevice};
pub use limits::{replace_limits, set_bed_limits, set_standby, with_thresholds, ThresholdChange};
pub use station::{
    save_broker, set_alarm_volume, set_flag, set_latching, set_ward_profile, LatchCode,
};
pub use trail::verify_trail;

use rusqlite::Connection;
use thiserror::Error;

use crate::alarms::{Limit, WardProfile};
use crate::audit::{Audit, AuditError};
use crate::auth::{AuthError, AuthService, Authorized};
use crate::engine::EngineError;
use crate::patients::PatientError;
use crate::security::{Kind, Occurrence, Source};
use crate::store::StoreError;
use crate::telemetry::BedId;

#[derive(Debug, Error)]
pub enum ActionError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("no device {0:?} is registered")]
    UnknownDevice(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Limits(#[from] crate::limits_db::LimitsDbError),
    /// Refused by the patient register (bed occupied, no patient, MRN in use, bad input).
    #[error(transparent)]
    Patient(#[from] PatientError),
    /// Refused or failed by the running engine.
    #[error(transparent)]
    Engine(EngineError),
    /// The engine cannot be waited for here (no Tokio runtime on this thread).
    #[error("the engine is out of reach: {0}")]
    Unreachable(String),
    /// The config file cannot be written (`save_broker`: the file system, not the input).
    #[error("{0}")]
    ConfigFile(String),
}

impl From<rusqlite::Error> for ActionError {
    fn from(e: rusqlite::Error) -> Self {
        ActionError::Store(StoreError::from(e))
    }
}

impl From<EngineError> for ActionError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Auth(a) => ActionError::Auth(a),
            other => ActionError::Engine(other),
        }
    }
}

/// The running station as the station actions see it: the engine ([`EngineHandle`](crate::engine::EngineHandle)),
/// a fake in tests. Every change takes the proof again and applies at once. Called from a
/// blocking thread (the window's command pool), never from async code.
pub trait Live {
    /// Whether the bed is on the ward.
    fn has_bed(&self, bed: &BedId) -> bool;
    /// The bed's alarm limits now.
    fn limits(&self, bed: &BedId) -> Vec<Limit>;
    /// The limits of a bed without its own (a new patient's).
    fn default_limits(&self) -> Vec<Limit>;
    fn set_limits(
        &self,
        bed: &BedId,
        limits: Vec<Limit>,
        auth: &Authorized,
    ) -> Result<(), ActionError>;
    /// Beds in standby now.
    fn standby_beds(&self) -> Vec<BedId>;
    /// Standby (no patient: physiological alarms off) or monitoring.
    fn set_standby(&self, bed: &BedId, on: bool, auth: &Authorized) -> Result<(), ActionError>;
    /// Acknowledge an alarm shown now; returns once the acknowledgement is in the alarm log.
    fn acknowledge(&self, alarm_id: &str, auth: &Authorized) -> Result<(), ActionError>;
    /// Pause alarm audio for one bed (`Some`) or the whole station.
    fn audio_pause(&self, bed: Option<&BedId>, auth: &Authorized) -> Result<(), ActionError>;
    fn end_audio_pause(&self, bed: Option<&BedId>, auth: &Authorized) -> Result<(), ActionError>;
    fn set_ward_profile(&self, profile: WardProfile, auth: &Authorized) -> Result<(), ActionError>;
    fn set_latching(&self, code: &str, on: bool, auth: &Authorized) -> Result<(), ActionError>;
    fn set_latch_high(&self, on: bool, auth: &Authorized) -> Result<(), ActionError>;
}

/// One change to the running station (or to a file beside the database) and the way back.
pub struct Step<'a> {
    what: String,
    apply: Box<dyn Fn() -> Result<(), ActionError> + 'a>,
    undo: Box<dyn Fn() -> Result<(), ActionError> + 'a>,
}

impl<'a> Step<'a> {
    /// `what` names the change in the log when undoing it fails.
    pub fn new(
        what: impl Into<String>,
        apply: impl Fn() -> Result<(), ActionError> + 'a,
        undo: impl Fn() -> Result<(), ActionError> + 'a,
    ) -> Step<'a> {
        Step {
            what: what.into(),
            apply: Box::new(apply),
            undo: Box::new(undo),
        }
    }
}

/// The one shape of a station action that changes the running station: `write` makes the
/// change and appends its audit entries in one transaction; then `steps` are applied in order,
/// and only then does the transaction commit. A step refused: the steps before it are undone
/// and nothing is written. The commit fails: every step is undone. Call it on a connection
/// outside any transaction (the commit must be the real one).
pub fn commit_applied<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> Result<T, ActionError>,
    steps: &[Step<'_>],
) -> Result<T, ActionError> {
    let mut applied = 0;
    let done = crate::store::in_tx(conn, |c| {
        let v = write(c)?;
        for s in steps {
            (s.apply)()?;
            applied += 1;
        }
        Ok(v)
    });
    if done.is_err() {
        for s in steps[..applied].iter().rev() {
            if let Err(e) = (s.undo)() {
                tracing::error!(change = %s.what, error = %e, "undoing a change failed");
            }
        }
    }
    done
}

/// Put `item` in `set` (`on`) or take it out; returns whether it was in before.
pub(crate) fn set_member<T: Ord>(
    set: &mut std::collections::BTreeSet<T>,
    item: T,
    on: bool,
) -> bool {
    if on {
        !set.insert(item)
    } else {
        set.remove(&item)
    }
}

/// An audit entry of a station action: who did what to what.
pub struct Entry<'a> {
    pub user: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

impl Entry<'_> {
    /// Append it (inside the action's transaction).
    pub fn append(&self, conn: &Connection, now_ms: i64) -> Result<(), AuditError> {
        Audit::append(
            conn,
            self.user,
            self.action,
            self.target,
            self.detail,
            now_ms,
        )
        .map(drop)
    }
}

/// A setting (or registration) changed: `save` and its audit `entry` in one transaction, with
/// `steps` into the running station ([`commit_applied`]); then, given `report`, a configuration
/// change security event.
pub fn setting_changed(
    svc: &AuthService,
    entry: &Entry<'_>,
    save: impl FnOnce(&Connection) -> Result<(), ActionError>,
    steps: &[Step<'_>],
    report: Option<String>,
    now_ms: i64,
) -> Result<(), ActionError> {
    commit_applied(
        svc.connection(),
        |c| {
            save(c)?;
            entry.append(c, now_ms)?;
            Ok(())
        },
        steps,
    )?;
    if let Some(detail) = report {
        svc.report_security(Occurrence::new(
            Kind::ConfigChange,
            Source::user(entry.user),
            detail,
            now_ms,
        ));
    }
    Ok(())
}

#[cfg(any(test, feature = "testkit"))]
pub mod fake;
#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_step_undoes_the_ones_before_and_writes_nothing() {
        let (_dir, svc) = testkit::service();
        let log = std::cell::RefCell::new(Vec::new());
        let step = |name: &'static str, ok: bool| {
            let log = &log;
            Step::new(
                name,
                move || {
                    log.borrow_mut().push(format!("apply {name}"));
                    if ok {
                        Ok(())
                    } else {
                        Err(ActionError::Invalid("refused".into()))
                    }
                },
                move || {
                    log.borrow_mut().push(format!("undo {name}"));
                    Ok(())
                },
            )
        };
        let entry = Entry {
            user: "u",
            action: "test_action",
            target: "t",
            detail: "",
        };
        let r = commit_applied(
            svc.connection(),
            |c| Ok(entry.append(c, 1)?),
            &[step("a", true), step("b", false), step("c", true)],
        );
        assert!(matches!(r, Err(ActionError::Invalid(_))));
        assert_eq!(*log.borrow(), ["apply a", "apply b", "undo a"]);
        assert!(testkit::audit_actions(&svc).is_empty(), "nothing written");

        // The commit itself fails (a deferred constraint): every step is undone.
        log.borrow_mut().clear();
        svc.connection()
            .execute_batch(
                "PRAGMA foreign_keys = ON;
                 CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TEMP TABLE child (parent INTEGER
                   REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .expect("tables");
        let r = commit_applied(
            svc.connection(),
            |c| {
                entry.append(c, 2)?;
                c.execute("INSERT INTO child VALUES (99)", [])?;
                Ok(())
            },
            &[step("a", true), step("b", true)],
        );
        assert!(r.is_err(), "the commit fails");
        assert_eq!(*log.borrow(), ["apply a", "apply b", "undo b", "undo a"]);
        assert!(testkit::audit_actions(&svc).is_empty(), "nothing written");

        log.borrow_mut().clear();
        commit_applied(
            svc.connection(),
            |c| Ok(entry.append(c, 3)?),
            &[step("a", true)],
        )
        .expect("committed");
        assert_eq!(*log.borrow(), ["apply a"]);
        assert_eq!(testkit::audit_actions(&svc), ["test_action"]);
    }
}
