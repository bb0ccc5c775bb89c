//! Checking the audit trail from the window.

use super::ActionError;
use crate::audit::{Audit, VerifyReport};
use crate::auth::{AuthService, Authorized, Permission};
use crate::security::{Kind, Occurrence, Source};

/// Verify the audit trail (chain, MACs, protective triggers: [`Audit::verify`]); one found
/// broken or tampered with is a security event (`audit_verify_failed`, its summary).
pub fn verify_trail(
    svc: &AuthService,
    auth: &Authorized,
    now_ms: i64,
) -> Result<VerifyReport, ActionError> {
    auth.require(Permission::ViewAuditLog)?;
    let r = Audit::verify(svc.connection())?;
    if !r.trustworthy() {
        svc.report_security(Occurrence::new(
            Kind::AuditVerifyFailed,
            Source::default(),
            r.summary(),
            now_ms,
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::security::{SecurityMonitor, Thresholds};
    use crate::usecase::testkit::{it, service};

    #[test]
    fn a_tampered_trail_is_a_security_event() {
        let (_dir, mut svc) = service();
        let monitor = Arc::new(SecurityMonitor::new(Thresholds::default()));
        svc.set_security(Arc::clone(&monitor));
        let auth = it(&svc, Permission::ViewAuditLog);
        let r = verify_trail(&svc, &auth, 1).expect("verified");
        assert!(r.trustworthy(), "{}", r.summary());
        assert!(monitor
            .flush(svc.connection(), 1)
            .expect("flush")
            .is_empty());
        svc.connection()
            .execute_batch("DROP TRIGGER audit_log_no_update")
            .expect("tamper");
        let r = verify_trail(&svc, &auth, 2).expect("verified");
        assert!(!r.trustworthy());
        assert!(r.summary().contains("not Vigil's"), "{}", r.summary());
        let events = monitor.flush(svc.connection(), 2).expect("flush");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event.kind, Kind::AuditVerifyFailed);
        // Another permission's proof: refused.
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            verify_trail(&svc, &wrong, 3),
            Err(ActionError::Auth(_))
        ));
    }
}
