//! Station actions, one home each (the use-case layer). An action is one function taking typed
//! input that could only be built through its one parser ([`DeviceId`], [`BedId::parse`],
//! [`Label`]) and an [`Authorized`] proof for the action's permission; it runs one SQLite
//! transaction that holds the change and its audit entry, so that both are written or neither
//! is, then reports what IT must know (security events). The window's commands and `vigilctl`
//! are adapters over these: parse, call, format.
//!
//! Where a new station action goes: a function here (or in the module of its subject, like
//! `patients`), taking its validated input and `&Authorized`, writing through [`in_tx`].

use rusqlite::Connection;
use thiserror::Error;

use crate::audit::{actions, Audit, AuditError};
use crate::auth::{AuthError, AuthService, Authorized, Permission};
use crate::ingest::{self, Registry};
use crate::security::{Kind, Occurrence, Source};
use crate::store::StoreError;
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
}

impl From<rusqlite::Error> for ActionError {
    fn from(e: rusqlite::Error) -> Self {
        ActionError::Store(StoreError::from(e))
    }
}

/// Run `f` in one `BEGIN IMMEDIATE` transaction (an audit entry appended inside joins it, and
/// no other writer can append between reading the chain's head and inserting): committed if
/// `f` succeeds, rolled back otherwise.
pub fn in_tx<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(v) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
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
}
