//! Station actions, one home each (the use-case layer). An action is one function taking typed
//! input that could only be built through its one parser ([`DeviceId`], [`BedId::parse`],
//! [`Label`]) and an [`Authorized`] proof for the action's permission; it runs one SQLite
//! transaction that holds the change and its audit entry, so that both are written or neither
//! is, then reports what IT must know (security events). The window's commands and `vigilctl`
//! are adapters over these: parse, call, format.
//!
//! Where a new station action goes: a function here (or in the module of its subject, like
//! `patients`), taking its validated input and `&Authorized`, writing through
//! [`crate::store::in_tx`].

use thiserror::Error;

use crate::alarms::limits::validate;
use crate::alarms::Limit;
use crate::audit::{actions, Audit, AuditError};
use crate::auth::{AuthError, AuthService, Authorized, Permission};
use crate::ingest::{self, Registry};
use crate::security::{Kind, Occurrence, Source};
use crate::store::{in_tx, StoreError};
use crate::telemetry::{BedId, DeviceId};

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
}

impl From<rusqlite::Error> for ActionError {
    fn from(e: rusqlite::Error) -> Self {
        ActionError::Store(StoreError::from(e))
    }
}

/// A device's label as IT gives it: trimmed, at most 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Label(String);

impl Label {
    pub fn parse(s: &str) -> Result<Label, ActionError> {
        let s = s.trim();
        if s.chars().count() > 100 {
            return Err(ActionError::Invalid(
                "label longer than 100 characters".into(),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ActionError::Invalid("label with control characters".into()));
        }
        Ok(Label(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Register a device to a bed (or move it there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterDevice {
    pub device: DeviceId,
    pub bed: BedId,
    pub label: Label,
}

/// Register `input.device` to its bed, audited in the same transaction; a configuration change
/// (security event). Returns the registry now in force, for the live engine.
pub fn register_device(
    svc: &AuthService,
    auth: &Authorized,
    input: &RegisterDevice,
    now_ms: i64,
) -> Result<Registry, ActionError> {
    let user = auth.require(Permission::ManageDevices)?;
    let conn = svc.connection();
    let device = input.device.as_str();
    in_tx(conn, |c| -> Result<(), ActionError> {
        ingest::register_device(c, device, &input.bed, input.label.as_str(), now_ms)?;
        Audit::append(
            c,
            user,
            actions::DEVICE_REGISTER,
            device,
            &format!("bed {}; label {:?}", input.bed, input.label.as_str()),
            now_ms,
        )?;
        Ok(())
    })?;
    svc.report_security(Occurrence::new(
        Kind::ConfigChange,
        Source::user(user),
        format!("device {device} registered to bed {}", input.bed),
        now_ms,
    ));
    Ok(Registry::load(conn)?)
}

/// Remove `device` from the registry, audited in the same transaction; a configuration change.
/// Returns the registry now in force.
pub fn remove_device(
    svc: &AuthService,
    auth: &Authorized,
    device: &DeviceId,
    now_ms: i64,
) -> Result<Registry, ActionError> {
    let user = auth.require(Permission::ManageDevices)?;
    let conn = svc.connection();
    in_tx(conn, |c| -> Result<(), ActionError> {
        if !ingest::unregister_device(c, device.as_str())? {
            return Err(ActionError::UnknownDevice(device.to_string()));
        }
        Audit::append(c, user, actions::DEVICE_REMOVE, device.as_str(), "", now_ms)?;
        Ok(())
    })?;
    svc.report_security(Occurrence::new(
        Kind::ConfigChange,
        Source::user(user),
        format!("device {device} removed"),
        now_ms,
    ));
    Ok(Registry::load(conn)?)
}

/// One threshold of a bed's limits to change, by its code (`HR_LOW`).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdChange {
    pub code: String,
    pub threshold: f64,
}

/// `current` with `changes` applied: each code at most once and one the bed has; only
/// thresholds change. The result passes the one limits validator. Returns the new limits and
/// the change in words ("HR_LOW 50 → 45"), empty when nothing changes.
pub fn with_thresholds(
    bed: &BedId,
    current: &[Limit],
    changes: &[ThresholdChange],
) -> Result<(Vec<Limit>, Vec<String>), ActionError> {
    if changes.is_empty() {
        return Err(ActionError::Invalid("no limit to change".into()));
    }
    let mut new = current.to_vec();
    let mut diff = Vec::new();
    let mut seen = Vec::new();
    for c in changes {
        if seen.contains(&c.code) {
            return Err(ActionError::Invalid(format!("{} given twice", c.code)));
        }
        seen.push(c.code.clone());
        let l = new
            .iter_mut()
            .find(|l| l.code() == c.code)
            .ok_or_else(|| ActionError::Invalid(format!("bed {bed} has no limit {}", c.code)))?;
        if l.threshold != c.threshold {
            diff.push(format!(
                "{} {} → {}",
                c.code,
                fmt_threshold(l.threshold),
                fmt_threshold(c.threshold)
            ));
            l.threshold = c.threshold;
        }
    }
    validate(&new).map_err(ActionError::Invalid)?;
    Ok((new, diff))
}

fn fmt_threshold(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// Save `new` as `bed`'s limits (`None`: forget them, the ward's `defaults` apply) with their
/// audit entry, in one transaction that commits only once `apply` has put them into the live
/// engine. If the commit fails, `apply` puts `old` back, so that what is shown, evaluated and
/// stored agree. `auth` must allow changing a patient's limits.
#[allow(clippy::too_many_arguments)]
pub fn replace_limits<E: From<ActionError>>(
    svc: &AuthService,
    auth: &Authorized,
    bed: &BedId,
    old: &[Limit],
    new: Option<&[Limit]>,
    defaults: &[Limit],
    detail: &str,
    apply: &dyn Fn(Vec<Limit>) -> Result<(), E>,
    now_ms: i64,
) -> Result<(), E> {
    let user = auth
        .require(Permission::ChangePatientLimits)
        .map_err(ActionError::from)?;
    let in_force = new.map_or_else(|| defaults.to_vec(), <[Limit]>::to_vec);
    validate(&in_force).map_err(ActionError::Invalid)?;
    let conn = svc.connection();
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(ActionError::from)?;
    let saved = match new {
        Some(l) => crate::limits_db::save(conn, bed, l, user, now_ms),
        None => crate::limits_db::clear(conn, bed),
    }
    .map_err(ActionError::from)
    .and_then(|()| {
        Audit::append(
            conn,
            user,
            actions::LIMITS_CHANGE,
            &bed.key(),
            detail,
            now_ms,
        )
        .map_err(ActionError::from)
    })
    .map_err(E::from)
    .and_then(|_| apply(in_force));
    if let Err(e) = saved {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        if apply(old.to_vec()).is_err() {
            tracing::error!(%bed, "restoring the previous limits failed");
        }
        return Err(ActionError::from(e).into());
    }
    tracing::info!(%bed, user, change = detail, "alarm limits changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Actor, AuthConfig};

    fn service() -> (tempfile::TempDir, AuthService) {
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = AuthService::open(&dir.path().join("v.db"), AuthConfig::default()).expect("db");
        (dir, svc)
    }

    fn it(svc: &AuthService, p: Permission) -> Authorized {
        svc.authorize_admin(&Actor::Local("cli:it".into()), p, 1)
            .expect("local admin")
    }

    fn audit_actions(svc: &AuthService) -> Vec<String> {
        Audit::list(svc.connection(), &Default::default())
            .expect("trail")
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    #[test]
    fn a_device_id_the_contract_refuses_cannot_be_registered() {
        // `_` leads the station's own topic levels: no device topic can ever carry it.
        for bad in [
            "_mon1",
            "",
            "mon 1",
            "mon/1",
            "mon+",
            "#",
            "é",
            &"x".repeat(65),
        ] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?}");
        }
        for ok in ["mon-3", "tele_12.a", "X", &"x".repeat(64)] {
            let id = DeviceId::parse(ok).expect("valid");
            let topic = format!("vigil/v1/4W/03/{id}/vitals");
            assert_eq!(
                crate::telemetry::Topic::parse(&topic)
                    .expect("topic")
                    .device,
                ok,
                "a registrable id is one a topic can name"
            );
        }
    }

    #[test]
    fn registration_and_its_audit_entry_are_one_transaction() {
        let (_dir, svc) = service();
        let auth = it(&svc, Permission::ManageDevices);
        let input = RegisterDevice {
            device: DeviceId::parse("mon-3").expect("id"),
            bed: BedId::parse("4W/03").expect("bed"),
            label: Label::parse("  bedside 3 ").expect("label"),
        };
        let reg = register_device(&svc, &auth, &input, 10).expect("registered");
        assert_eq!(
            reg.resolve("mon-3", None, true).ok(),
            Some(BedId::new("4W", "03"))
        );
        assert_eq!(audit_actions(&svc), [actions::DEVICE_REGISTER]);
        let e = &Audit::list(svc.connection(), &Default::default()).expect("trail")[0];
        assert_eq!(e.detail, "bed 4W/03; label \"bedside 3\"");

        // Another permission's proof is refused before anything is written.
        let wrong = it(&svc, Permission::ViewAuditLog);
        assert!(matches!(
            remove_device(&svc, &wrong, &input.device, 20),
            Err(ActionError::Auth(_))
        ));
        // The audit entry cannot be written: the registry change is rolled back with it.
        let other = RegisterDevice {
            device: DeviceId::parse("mon-4").expect("id"),
            ..input.clone()
        };
        svc.connection()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON audit_log
                 BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
            )
            .expect("trigger");
        assert!(register_device(&svc, &auth, &other, 30).is_err());
        assert_eq!(
            Registry::load(svc.connection())
                .expect("registry")
                .resolve("mon-4", None, true)
                .ok(),
            None,
            "no registration without its audit entry"
        );
        svc.connection()
            .execute_batch("DROP TRIGGER temp.refuse_audit")
            .expect("drop");

        let reg = remove_device(&svc, &auth, &input.device, 40).expect("removed");
        assert_eq!(reg.resolve("mon-3", None, true).ok(), None);
        assert!(matches!(
            remove_device(&svc, &auth, &input.device, 50),
            Err(ActionError::UnknownDevice(_))
        ));
        assert_eq!(
            audit_actions(&svc),
            [actions::DEVICE_REGISTER, actions::DEVICE_REMOVE]
        );
    }

    #[test]
    fn threshold_changes_are_checked_by_the_one_validator() {
        let bed = BedId::new("4W", "03");
        let current = crate::alarms::default_limits();
        let ch = |code: &str, t: f64| ThresholdChange {
            code: code.into(),
            threshold: t,
        };
        let (new, diff) = with_thresholds(&bed, &current, &[ch("HR_LOW", 45.0)]).expect("ok");
        assert_eq!(diff, ["HR_LOW 50 → 45"]);
        assert!(new
            .iter()
            .any(|l| l.code() == "HR_LOW" && l.threshold == 45.0));
        let (_, none) = with_thresholds(&bed, &current, &[ch("HR_LOW", 50.0)]).expect("ok");
        assert!(none.is_empty(), "nothing changes");
        for bad in [
            vec![],
            vec![ch("HR_LOW", 45.0), ch("HR_LOW", 46.0)],
            vec![ch("NO_SUCH", 1.0)],
            vec![ch("HR_LOW", 130.0)],
            vec![ch("HR_HIGH", 1200.0)],
        ] {
            assert!(
                matches!(
                    with_thresholds(&bed, &current, &bad),
                    Err(ActionError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_are_saved_audited_and_applied_together_or_not_at_all() {
        let (_dir, mut svc) = service();
        let now = 1_000;
        svc.create_user(
            &Actor::Local("t".into()),
            "carl",
            crate::auth::Role::ChargeNurse,
            "Ward4-limits-test-2026!",
            now,
        )
        .expect("user");
        let session = svc
            .login("carl", "Ward4-limits-test-2026!", now)
            .expect("login");
        let auth = svc
            .authorize(Some(&session), Permission::ChangePatientLimits, now)
            .expect("charge nurse");
        let bed = BedId::new("4W", "03");
        let old = crate::alarms::default_limits();
        let (new, _) = with_thresholds(
            &bed,
            &old,
            &[ThresholdChange {
                code: "SPO2_LOW".into(),
                threshold: 88.0,
            }],
        )
        .expect("new");
        let live = std::cell::RefCell::new(old.clone());
        let apply = |l: Vec<Limit>| -> Result<(), ActionError> {
            *live.borrow_mut() = l;
            Ok(())
        };
        let limits_entries = |svc: &AuthService| {
            Audit::list(svc.connection(), &Default::default())
                .expect("trail")
                .into_iter()
                .filter(|e| e.action == actions::LIMITS_CHANGE)
                .count()
        };
        replace_limits(
            &svc,
            &auth,
            &bed,
            &old,
            Some(&new),
            &old,
            "SPO2_LOW 90 → 88",
            &apply,
            now,
        )
        .expect("replaced");
        assert_eq!(*live.borrow(), new);
        assert_eq!(
            crate::limits_db::load(svc.connection())
                .expect("load")
                .get(&bed),
            Some(&new)
        );
        assert_eq!(limits_entries(&svc), 1);

        // The engine refuses: nothing saved, nothing audited, the engine unchanged.
        let refuse = |_: Vec<Limit>| -> Result<(), ActionError> {
            Err(ActionError::Invalid("engine refused".into()))
        };
        assert!(
            replace_limits(&svc, &auth, &bed, &new, None, &old, "defaults", &refuse, now).is_err()
        );
        assert_eq!(
            crate::limits_db::load(svc.connection())
                .expect("load")
                .get(&bed),
            Some(&new)
        );
        assert_eq!(limits_entries(&svc), 1);

        // Another permission's proof: refused before anything.
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            replace_limits(&svc, &wrong, &bed, &new, None, &old, "defaults", &apply, now),
            Err(ActionError::Auth(_))
        ));
        // Back to the defaults.
        replace_limits(&svc, &auth, &bed, &new, None, &old, "defaults", &apply, now)
            .expect("defaults");
        assert_eq!(*live.borrow(), old);
        assert_eq!(
            crate::limits_db::load(svc.connection())
                .expect("load")
                .get(&bed),
            None
        );
        assert_eq!(limits_entries(&svc), 2);
    }
}
