//! What the use-case tests share: a station database, proofs, the trail, and a fake engine.

pub use super::fake::FakeLive;
use crate::audit::{Audit, AuditEntry};
use crate::auth::{Actor, AuthConfig, AuthService, Authorized, Permission, Role};

pub const PW: &str = "Ward4-usecase-test-2026!";

pub fn service() -> (tempfile::TempDir, AuthService) {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = AuthService::open(&dir.path().join("v.db"), AuthConfig::default()).expect("db");
    (dir, svc)
}

/// A command-line administrator's proof (`cli:it`).
pub fn it(svc: &AuthService, p: Permission) -> Authorized {
    svc.authorize_admin(&Actor::Local("cli:it".into()), p, 1)
        .expect("local admin")
}

/// Proofs for `permissions` of a user `name` with `role`, logged in at this station.
pub fn proofs(
    svc: &mut AuthService,
    name: &str,
    role: Role,
    permissions: &[Permission],
) -> Vec<Authorized> {
    svc.create_user(&Actor::Local("t".into()), name, role, PW, 1_000)
        .expect("user");
    let session = svc.login(name, PW, 1_000).expect("login");
    permissions
        .iter()
        .map(|&p| svc.authorize(Some(&session), p, 1_000).expect("allowed"))
        .collect()
}

/// A station with carl, a charge nurse, logged in: the database and his proofs for
/// `permissions`.
pub fn charge_nurse(
    permissions: &[Permission],
) -> (tempfile::TempDir, AuthService, Vec<Authorized>) {
    let (dir, mut svc) = service();
    let p = proofs(&mut svc, "carl", Role::ChargeNurse, permissions);
    (dir, svc, p)
}

/// The beds in standby as saved.
pub fn standby_saved(svc: &AuthService) -> std::collections::BTreeSet<String> {
    crate::settings::StationSettings::load(svc.connection())
        .expect("settings")
        .standby
}

pub fn entries(svc: &AuthService) -> Vec<AuditEntry> {
    Audit::list(svc.connection(), &Default::default()).expect("trail")
}

pub fn audit_actions(svc: &AuthService) -> Vec<String> {
    entries(svc).into_iter().map(|e| e.action).collect()
}

/// From now on every audit append fails (until [`allow_audit`]).
pub fn refuse_audit(svc: &AuthService) {
    svc.connection()
        .execute_batch(
            "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON audit_log
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
        )
        .expect("trigger");
}

pub fn allow_audit(svc: &AuthService) {
    svc.connection()
        .execute_batch("DROP TRIGGER temp.refuse_audit")
        .expect("drop");
}
