//! The device registry: which device feeds which bed (IT, in the window and `vigilctl device`).

use super::{setting_changed, ActionError, Entry};
use crate::audit::actions;
use crate::auth::{AuthService, Authorized, Permission};
use crate::ingest::{self, Registry};
use crate::telemetry::{BedId, DeviceId};

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
    let device = input.device.as_str();
    let entry = Entry {
        user,
        action: actions::DEVICE_REGISTER,
        target: device,
        detail: &format!("bed {}; label {:?}", input.bed, input.label.as_str()),
    };
    let save = |c: &_| {
        ingest::register_device(c, device, &input.bed, input.label.as_str(), now_ms)?;
        Ok(())
    };
    let report = format!("device {device} registered to bed {}", input.bed);
    setting_changed(svc, &entry, save, &[], Some(report), now_ms)?;
    Ok(Registry::load(svc.connection())?)
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
    let entry = Entry {
        user,
        action: actions::DEVICE_REMOVE,
        target: device.as_str(),
        detail: "",
    };
    let save = |c: &_| match ingest::unregister_device(c, device.as_str())? {
        true => Ok(()),
        false => Err(ActionError::UnknownDevice(device.to_string())),
    };
    let report = format!("device {device} removed");
    setting_changed(svc, &entry, save, &[], Some(report), now_ms)?;
    Ok(Registry::load(svc.connection())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;
    use crate::usecase::testkit::{audit_actions, it, service};

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
