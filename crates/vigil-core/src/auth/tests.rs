//! Unit tests of users, roles, sessions and their audit trail, on real SQLite files and a
//! simulated clock (every time below is `T0` plus an offset).

use super::*;
use crate::audit::{AuditFilter, GENESIS_HASH};

const T0: i64 = 1_760_000_000_000;
const MIN: i64 = 60_000;
const PW: &str = "ward4-kettle-moon";
const PW2: &str = "river-lamp-9-cedar";

fn service(cfg: AuthConfig) -> (tempfile::TempDir, AuthService) {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = AuthService::open(&dir.path().join("vigil.db"), cfg).expect("open");
    (dir, svc)
}

fn it() -> Actor<'static> {
    Actor::Local("cli:it".into())
}

/// A service with one user of each role: nina (nurse), carl (charge nurse), ada (admin).
fn ward() -> (tempfile::TempDir, AuthService) {
    let (d, mut s) = service(AuthConfig::default());
    for (name, role) in [
        ("nina", Role::Nurse),
        ("carl", Role::ChargeNurse),
        ("ada", Role::Admin),
    ] {
        s.create_user(&it(), name, role, PW, T0).expect("create");
    }
    (d, s)
}

fn trail(s: &AuthService) -> Vec<AuditEntry> {
    Audit::list(s.connection(), &AuditFilter::default()).expect("list")
}

/// The entries of the audit trail of `action`.
fn entries(s: &AuthService, action: &str) -> Vec<AuditEntry> {
    trail(s)
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

fn actions_of(s: &AuthService, user: &str) -> Vec<String> {
    trail(s)
        .into_iter()
        .filter(|e| e.actor == user || e.target == user)
        .map(|e| e.action)
        .collect()
}

fn assert_chain_intact(s: &AuthService) {
    let r = Audit::verify(s.connection()).expect("verify");
    assert!(r.is_intact(), "{:?}", r.first_break);
    assert!(r.triggers_present);
}

/// Position of each permission in `Permission::ALL`. The match is exhaustive, so a new permission
/// fails to compile here until it is added to `ALL` and to the expected matrix below.
fn ordinal(p: Permission) -> usize {
    match p {
        Permission::ViewWard => 0,
        Permission::ViewHistory => 1,
        Permission::AudioPause => 2,
        Permission::AcknowledgeAlarm => 3,
        Permission::ChangePatientLimits => 4,
        Permission::AdmitDischargeTransfer => 5,
        Permission::PrintReport => 6,
        Permission::ExportDeidentified => 7,
        Permission::ExportIdentified => 8,
        Permission::BreakGlass => 9,
        Permission::ChangeOwnPassword => 10,
        Permission::ManageUsers => 11,
        Permission::ManageDevices => 12,
        Permission::ManageWardProfiles => 13,
        Permission::BrokerSettings => 14,
        Permission::ViewAuditLog => 15,
        Permission::ExportAuditLog => 16,
    }
}

/// The permission matrix as documented in docs/security.md: (permission, nurse, charge, admin).
#[rustfmt::skip]
const EXPECTED: [(Permission, bool, bool, bool); 17] = [
    (Permission::ViewWard,               true,  true,  false),
    (Permission::ViewHistory,            true,  true,  false),
    (Permission::AudioPause,             true,  true,  false),
    (Permission::AcknowledgeAlarm,       false, true,  false),
    (Permission::ChangePatientLimits,    false, true,  false),
    (Permission::AdmitDischargeTransfer, false, true,  false),
    (Permission::PrintReport,            true,  true,  false),
    (Permission::ExportDeidentified,     true,  true,  false),
    (Permission::ExportIdentified,       false, true,  false),
    (Permission::BreakGlass,             true,  true,  false),
    (Permission::ChangeOwnPassword,      true,  true,  true),
    (Permission::ManageUsers,            false, false, true),
    (Permission::ManageDevices,          false, false, true),
    (Permission::ManageWardProfiles,     false, false, true),
    (Permission::BrokerSettings,         false, false, true),
    (Permission::ViewAuditLog,           false, false, true),
    (Permission::ExportAuditLog,         false, false, true),
];

#[test]
fn permission_matrix_every_role_and_permission() {
    for (i, p) in Permission::ALL.iter().enumerate() {
        assert_eq!(ordinal(*p), i, "{p} in Permission::ALL");
    }
    for (i, (p, nurse, charge, admin)) in EXPECTED.iter().enumerate() {
        assert_eq!(ordinal(*p), i, "{p} in EXPECTED");
        assert_eq!(allowed(Role::Nurse, *p), *nurse, "nurse × {p}");
        assert_eq!(
            allowed(Role::ChargeNurse, *p),
            *charge,
            "charge-nurse × {p}"
        );
        assert_eq!(allowed(Role::Admin, *p), *admin, "admin × {p}");
    }
    // Invariants: charge nurse ⊇ nurse; the admin has no clinical permission.
    for p in Permission::ALL {
        if allowed(Role::Nurse, p) {
            assert!(allowed(Role::ChargeNurse, p), "charge-nurse lacks {p}");
        }
    }
    // The clinical permissions: `ViewWard` to `BreakGlass`, the first ten of `Permission::ALL`
    // (their places pinned by `ordinal` above).
    for p in &Permission::ALL[..=ordinal(Permission::BreakGlass)] {
        assert!(!allowed(Role::Admin, *p), "admin has clinical {p}");
    }
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>(), Ok(r));
    }
    assert!("Admin".parse::<Role>().is_err());
    assert!("charge_nurse".parse::<Role>().is_err());
}

#[test]
fn authorize_walks_every_role_and_permission_with_real_sessions() {
    let (_d, mut s) = ward();
    for p in Permission::ALL {
        assert!(
            matches!(s.authorize(None, p, T0), Err(AuthError::NoSession)),
            "no session × {p}"
        );
    }
    for (name, role) in [
        ("nina", Role::Nurse),
        ("carl", Role::ChargeNurse),
        ("ada", Role::Admin),
    ] {
        let sess = s.login(name, PW, T0).expect("login");
        assert_eq!(sess.role(), role);
        for p in Permission::ALL {
            let got = s.authorize(Some(&sess), p, T0 + 1000);
            if allowed_by(role, p, &WardPolicy::default()) {
                assert!(got.is_ok(), "{role} × {p}: {got:?}");
            } else {
                assert!(
                    matches!(got, Err(AuthError::Forbidden { role: r, permission }) if r == role && permission == p),
                    "{role} × {p}: {got:?}"
                );
            }
        }
        s.logout(sess, T0 + 2000).expect("logout");
    }
}

#[test]
fn login_checks_the_argon2_hash_and_tokens_are_256_bit_hex() {
    let (_d, mut s) = ward();
    let stored: String = s
        .connection()
        .query_row(
            "SELECT password_hash FROM users WHERE name = 'nina'",
            [],
            |r| r.get(0),
        )
        .expect("hash");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PW));
    let a = s.login("nina", PW, T0).expect("login");
    let b = s.login("NINA", PW, T0).expect("names are case-insensitive");
    assert_eq!(a.token().len(), 64);
    assert!(a.token().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.token(), b.token());
    assert!(
        !format!("{a:?}").contains(a.token()),
        "Debug hides the token"
    );
    assert!(matches!(
        s.login("nina", "ward4-kettle-MOON", T0),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        s.login("nobody", PW, T0),
        Err(AuthError::InvalidCredentials)
    ));
    let failed = entries(&s, actions::LOGIN_FAILED);
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].actor, "nina");
    assert_eq!(failed[1].actor, "nobody");
    assert_eq!(failed[1].detail, "unknown user");
    assert!(trail(&s).iter().all(|e| !e.detail.contains(PW)));
    assert_chain_intact(&s);
}

#[test]
fn lockout_after_five_failures_then_auto_unlock_after_fifteen_minutes() {
    let (_d, mut s) = ward();
    for i in 0..4 {
        assert!(
            matches!(
                s.login("nina", "wrong-password-x", T0 + i * 1000),
                Err(AuthError::InvalidCredentials)
            ),
            "failure {i}"
        );
    }
    let until = T0 + 4000 + 15 * MIN;
    assert!(matches!(
        s.login("nina", "wrong-password-x", T0 + 4000),
        Err(AuthError::AccountLocked { until_ms }) if until_ms == until
    ));
    // Locked out: even the right password is refused, without being checked.
    assert!(matches!(
        s.login("nina", PW, T0 + 5000),
        Err(AuthError::AccountLocked { .. })
    ));
    assert!(matches!(
        s.login("nina", PW, until - 1),
        Err(AuthError::AccountLocked { .. })
    ));
    assert!(s
        .user("nina")
        .expect("user")
        .expect("nina")
        .is_locked_out(until - 1));
    // Other users are not affected.
    s.login("carl", PW, T0 + 5000).expect("carl");
    // Fifteen minutes later the lockout has ended by itself.
    let sess = s.login("nina", PW, until).expect("login after lockout");
    assert_eq!(sess.user(), "nina");
    let u = s.user("nina").expect("user").expect("nina");
    assert_eq!((u.failed_count, u.locked_until_ms), (0, None));
    let lockouts = entries(&s, actions::LOCKOUT);
    assert_eq!(lockouts.len(), 1);
    assert_eq!(lockouts[0].target, "nina");
    assert!(
        lockouts[0].detail.starts_with("5 failed log-ins"),
        "{}",
        lockouts[0].detail
    );
    assert_eq!(
        actions_of(&s, "nina"),
        [
            "user_create",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "lockout",
            "login_failed",
            "login_failed",
            "login"
        ]
    );
    assert_chain_intact(&s);
}

#[test]
fn lockout_is_configurable_and_success_resets_the_count() {
    let (_d, mut s) = service(AuthConfig {
        max_failed_logins: 3,
        lockout_ms: 2 * MIN,
        ..AuthConfig::default()
    });
    s.create_user(&it(), "nina", Role::Nurse, PW, T0)
        .expect("create");
    for _ in 0..2 {
        assert!(s.login("nina", "wrong-password-x", T0).is_err());
    }
    s.login("nina", PW, T0).expect("success resets the count");
    for _ in 0..2 {
        assert!(matches!(
            s.login("nina", "wrong-password-x", T0),
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(matches!(
        s.login("nina", "wrong-password-x", T0),
        Err(AuthError::AccountLocked { until_ms }) if until_ms == T0 + 2 * MIN
    ));
    s.login("nina", PW, T0 + 2 * MIN)
        .expect("unlocked after 2 min");
}

#[test]
fn admin_unlocks_a_locked_out_user() {
    let (_d, mut s) = ward();
    for _ in 0..5 {
        let _ = s.login("nina", "wrong-password-x", T0);
    }
    assert!(matches!(
        s.login("nina", PW, T0 + MIN),
        Err(AuthError::AccountLocked { .. })
    ));
    // A nurse or charge nurse may not unlock; an admin session may.
    let carl = s.login("carl", PW, T0 + MIN).expect("carl");
    assert!(matches!(
        s.unlock_user(&Actor::Session(&carl), "nina", T0 + MIN),
        Err(AuthError::Forbidden {
            permission: Permission::ManageUsers,
            ..
        })
    ));
    let ada = s.login("ada", PW, T0 + MIN).expect("ada");
    assert!(s
        .unlock_user(&Actor::Session(&ada), "nina", T0 + 2 * MIN)
        .expect("unlock"));
    s.login("nina", PW, T0 + 2 * MIN)
        .expect("login right after the unlock");
    let e = trail(&s)
        .into_iter()
        .find(|e| e.action == actions::USER_UNLOCK)
        .expect("audited");
    assert_eq!((e.actor.as_str(), e.target.as_str()), ("ada", "nina"));
    assert!(e.detail.contains("lockout until"), "{}", e.detail);
    // From the command line too.
    for _ in 0..5 {
        let _ = s.login("carl", "wrong-password-x", T0 + 3 * MIN);
    }
    assert!(s.unlock_user(&it(), "carl", T0 + 3 * MIN).expect("unlock"));
    s.login("carl", PW, T0 + 3 * MIN).expect("carl again");
    assert_chain_intact(&s);
}

#[test]
fn reset_forces_a_password_change_before_anything_else() {
    let (_d, mut s) = ward();
    let ada = s.login("ada", PW, T0).expect("ada");
    let temp = s
        .reset_password(&Actor::Session(&ada), "nina", None, T0)
        .expect("reset");
    assert_eq!(check_password("nina", &temp), Ok(()));
    assert!(matches!(
        s.login("nina", PW, T0 + 1),
        Err(AuthError::InvalidCredentials)
    ));
    let mut nina = s.login("nina", &temp, T0 + 2).expect("login with temp");
    assert!(nina.must_change_password());
    for p in Permission::ALL {
        let r = s.authorize(Some(&nina), p, T0 + 3);
        if p == Permission::ChangeOwnPassword {
            assert!(r.is_ok(), "{p}: {r:?}");
        } else {
            assert!(
                matches!(r, Err(AuthError::MustChangePassword)),
                "{p}: {r:?}"
            );
        }
    }
    let st = s.screen_state(Some(&nina), T0 + 3);
    assert!(st.must_change_password && !st.actions_enabled && st.mask_patient_identity);
    // The new password must pass the policy, differ from the temporary one, and the current
    // password must be right.
    assert!(matches!(
        s.change_password(&mut nina, &temp, "short", T0 + 4),
        Err(AuthError::Policy(PolicyError::TooShort { .. }))
    ));
    assert!(matches!(
        s.change_password(&mut nina, &temp, &temp, T0 + 4),
        Err(AuthError::Policy(PolicyError::SameAsCurrent))
    ));
    assert!(matches!(
        s.change_password(&mut nina, "not-the-temp-pw", PW2, T0 + 4),
        Err(AuthError::InvalidCredentials)
    ));
    s.change_password(&mut nina, &temp, PW2, T0 + 5)
        .expect("change");
    assert!(!nina.must_change_password());
    s.authorize(Some(&nina), Permission::ViewWard, T0 + 6)
        .expect("allowed after the change");
    s.logout(nina, T0 + 7).expect("logout");
    let again = s.login("nina", PW2, T0 + 8).expect("new password");
    assert!(!again.must_change_password());
    let reset = trail(&s)
        .into_iter()
        .find(|e| e.action == actions::USER_RESET_PASSWORD)
        .expect("audited");
    assert_eq!(
        (reset.actor.as_str(), reset.target.as_str()),
        ("ada", "nina")
    );
    assert!(trail(&s).iter().all(|e| !e.detail.contains(&temp)));
    assert!(actions_of(&s, "nina").contains(&actions::PASSWORD_CHANGE.to_string()));
    // A given temporary password must pass the policy too; a reset clears a lockout.
    assert!(matches!(
        s.reset_password(&it(), "carl", Some("carl-password"), T0),
        Err(AuthError::Policy(PolicyError::ContainsUserName))
    ));
    for _ in 0..5 {
        let _ = s.login("carl", "wrong-password-x", T0 + 9);
    }
    s.reset_password(&it(), "carl", Some("given-temp-pw-42"), T0 + 10)
        .expect("reset");
    assert!(s
        .login("carl", "given-temp-pw-42", T0 + 11)
        .expect("login")
        .must_change_password());
    assert_chain_intact(&s);
}

#[test]
fn idle_lock_after_ten_minutes_and_unlock_with_the_same_users_password() {
    let (_d, mut s) = ward();
    let mut nina = s.login("nina", PW, T0).expect("login");
    s.touch(&mut nina, T0 + 5 * MIN).expect("activity");
    // Ten minutes after the last activity the session counts as locked, even before the timer.
    let idle_at = T0 + 15 * MIN;
    s.authorize(Some(&nina), Permission::ViewWard, idle_at - 1)
        .expect("still active");
    assert!(!s.check_idle(&mut nina, idle_at - 1).expect("check"));
    assert!(matches!(
        s.authorize(Some(&nina), Permission::ViewWard, idle_at),
        Err(AuthError::Locked)
    ));
    assert!(s.check_idle(&mut nina, idle_at).expect("check"));
    assert!(nina.is_locked());
    assert!(matches!(
        s.touch(&mut nina, idle_at + 1),
        Err(AuthError::Locked)
    ));
    // Another user's password does not unlock; a wrong one counts as a failure.
    assert!(matches!(
        s.unlock(&mut nina, PW2, idle_at + 2),
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(s.user("nina").expect("user").expect("nina").failed_count, 1);
    assert!(nina.is_locked());
    s.unlock(&mut nina, PW, idle_at + 3).expect("unlock");
    assert!(!nina.is_locked());
    s.authorize(Some(&nina), Permission::AudioPause, idle_at + 4)
        .expect("usable again");
    // Locking by hand.
    s.lock(&mut nina, idle_at + 5).expect("lock");
    assert!(matches!(
        s.authorize(Some(&nina), Permission::AudioPause, idle_at + 6),
        Err(AuthError::Locked)
    ));
    s.unlock(&mut nina, PW, idle_at + 7).expect("unlock");
    let locks = entries(&s, actions::LOCK);
    assert_eq!(locks.len(), 2);
    assert!(locks[0].detail.starts_with("idle"), "{}", locks[0].detail);
    assert!(locks[1].detail.starts_with("by the user"));
    assert_eq!(
        actions_of(&s, "nina"),
        [
            "user_create",
            "login",
            "lock",
            "unlock_failed",
            "unlock",
            "lock",
            "unlock"
        ]
    );
    assert_chain_intact(&s);
}

#[test]
fn idle_timeout_is_configurable_and_touch_locks_an_idle_session() {
    let (_d, mut s) = service(AuthConfig {
        idle_lock_ms: 2 * MIN,
        ..AuthConfig::default()
    });
    s.create_user(&it(), "nina", Role::Nurse, PW, T0)
        .expect("create");
    let mut nina = s.login("nina", PW, T0).expect("login");
    s.touch(&mut nina, T0 + MIN).expect("touch");
    assert!(matches!(
        s.touch(&mut nina, T0 + 3 * MIN),
        Err(AuthError::Locked)
    ));
    assert!(nina.is_locked());
    assert_eq!(
        trail(&s).last().map(|e| e.action.clone()),
        Some("lock".to_string())
    );
}

#[test]
fn locked_screen_masks_and_disables_actions_but_alarms_keep_running() {
    use crate::alarms::{default_limits, AlarmEvaluator, AlarmEventKind};
    use crate::codes::Vital;
    use crate::telemetry::{BedId, Reading};

    let (_d, mut s) = ward();
    let none = s.screen_state(None, T0);
    assert!(none.mask_patient_identity && !none.actions_enabled && !none.locked);
    assert!(none.alarms_shown_and_sounding());

    let mut carl = s.login("carl", PW, T0).expect("login");
    let open = s.screen_state(Some(&carl), T0);
    assert!(!open.mask_patient_identity && open.actions_enabled && !open.locked);
    assert_eq!(open.effective_role, Some(Role::ChargeNurse));

    let later = T0 + 10 * MIN;
    s.check_idle(&mut carl, later).expect("idle lock");
    let locked = s.screen_state(Some(&carl), later);
    assert!(locked.locked);
    assert!(locked.mask_patient_identity, "patient names masked");
    assert!(!locked.actions_enabled, "no actions");
    assert!(locked.alarms_shown_and_sounding());
    assert_eq!(locked.user.as_deref(), Some("carl"));
    for p in Permission::ALL {
        assert!(matches!(
            s.authorize(Some(&carl), p, later),
            Err(AuthError::Locked)
        ));
    }
    // The alarm evaluator takes no session: a breach while locked is still raised.
    let mut eval = AlarmEvaluator::new(default_limits());
    let reading = Reading::new(Vital::Hr, Some(180.0), later + 1000);
    let events = eval.observe(&BedId::new("4W", "01"), &reading);
    assert!(
        events.iter().any(|e| e.kind == AlarmEventKind::Raise),
        "{events:?}"
    );
    assert_eq!(eval.active().len(), 1);

    // An admin sees the ward masked (no clinical access) but has actions.
    let ada = s.login("ada", PW, later).expect("ada");
    let admin = s.screen_state(Some(&ada), later);
    assert!(admin.mask_patient_identity && admin.actions_enabled && !admin.locked);
}

#[test]
fn break_glass_grants_charge_nurse_rights_until_expiry_and_is_audited() {
    let (_d, mut s) = ward();
    let mut nina = s.login("nina", PW, T0).expect("login");
    assert!(matches!(
        s.authorize(Some(&nina), Permission::ChangePatientLimits, T0),
        Err(AuthError::Forbidden {
            role: Role::Nurse,
            ..
        })
    ));
    assert!(matches!(
        s.break_glass(&mut nina, PW, "   too short  ", T0),
        Err(AuthError::BreakGlassReason)
    ));
    assert!(matches!(
        s.break_glass(&mut nina, PW, "", T0),
        Err(AuthError::BreakGlassReason)
    ));
    let until = s
        .break_glass(&mut nina, PW, "bed 3 arrest, charge nurse in theatre", T0)
        .expect("break glass");
    assert_eq!(until, T0 + 30 * MIN);
    assert_eq!(nina.effective_role(T0 + 1), Role::ChargeNurse);
    assert_eq!(nina.role(), Role::Nurse);
    for p in Permission::ALL {
        assert_eq!(
            s.authorize(Some(&nina), p, T0 + 1).is_ok(),
            allowed(Role::ChargeNurse, p),
            "{p} under break-glass"
        );
    }
    let flagged = s
        .audit(&nina, "alarm_ack", "4W/03", "HR high", T0 + 2)
        .expect("audit");
    assert_eq!(flagged.detail, "[break-glass] HR high");
    // Stay active (idle lock is 10 min) up to the expiry.
    for m in [8, 16, 24] {
        s.touch(&mut nina, T0 + m * MIN).expect("touch");
    }
    s.authorize(Some(&nina), Permission::ChangePatientLimits, until - 1)
        .expect("still in force");
    assert!(matches!(
        s.authorize(Some(&nina), Permission::ChangePatientLimits, until),
        Err(AuthError::Forbidden {
            role: Role::Nurse,
            ..
        })
    ));
    assert_eq!(nina.effective_role(until), Role::Nurse);
    s.touch(&mut nina, until).expect("touch");
    assert_eq!(nina.break_glass_until_ms(), None);
    let t = trail(&s);
    let bg = t
        .iter()
        .find(|e| e.action == actions::BREAK_GLASS)
        .expect("flagged");
    assert_eq!(bg.actor, "nina");
    assert!(
        bg.detail
            .contains("reason: bed 3 arrest, charge nurse in theatre"),
        "{}",
        bg.detail
    );
    let end = t
        .iter()
        .find(|e| e.action == actions::BREAK_GLASS_END)
        .expect("end recorded");
    assert_eq!(end.t_ms, until);
    let unflagged = s
        .audit(&nina, "audio_pause", "4W", "", until + 1)
        .expect("audit");
    assert_eq!(unflagged.detail, "");
    // Not for a charge nurse (already has the rights) nor for an admin (no clinical rights).
    let mut carl = s.login("carl", PW, T0).expect("carl");
    assert!(matches!(
        s.break_glass(&mut carl, PW, "long enough reason", T0),
        Err(AuthError::BreakGlassNotNeeded(Role::ChargeNurse))
    ));
    let mut ada = s.login("ada", PW, T0).expect("ada");
    assert!(matches!(
        s.break_glass(&mut ada, PW, "long enough reason", T0),
        Err(AuthError::Forbidden {
            role: Role::Admin,
            permission: Permission::BreakGlass
        })
    ));
    assert_chain_intact(&s);
}

#[test]
fn disabled_user_cannot_log_in_and_their_session_ends() {
    let (_d, mut s) = ward();
    let nina = s.login("nina", PW, T0).expect("login");
    assert!(s.disable_user(&it(), "nina", T0 + 1).expect("disable"));
    assert!(!s.disable_user(&it(), "nina", T0 + 1).expect("idempotent"));
    assert!(matches!(
        s.authorize(Some(&nina), Permission::ViewWard, T0 + 2),
        Err(AuthError::SessionEnded)
    ));
    assert!(matches!(
        s.login("nina", PW, T0 + 3),
        Err(AuthError::AccountDisabled)
    ));
    // A wrong password on a disabled account is just a wrong password.
    assert!(matches!(
        s.login("nina", "wrong-password-x", T0 + 3),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(s.enable_user(&it(), "nina", T0 + 4).expect("enable"));
    s.login("nina", PW, T0 + 5).expect("login again");
    assert_eq!(
        actions_of(&s, "nina"),
        [
            "user_create",
            "login",
            "user_disable",
            "login_failed",
            "login_failed",
            "user_enable",
            "login"
        ]
    );
    // Disabling from a session needs ManageUsers.
    let carl = s.login("carl", PW, T0).expect("carl");
    assert!(matches!(
        s.disable_user(&Actor::Session(&carl), "nina", T0 + 6),
        Err(AuthError::Forbidden { .. })
    ));
    assert_chain_intact(&s);
}

#[test]
fn sessions_end_on_logout_role_change_and_maximum_age() {
    let (_d, mut s) = ward();
    let carl = s.login("carl", PW, T0).expect("login");
    assert!(s
        .set_role(&it(), "carl", Role::Nurse, T0 + 1)
        .expect("role"));
    assert!(matches!(
        s.authorize(Some(&carl), Permission::ViewWard, T0 + 2),
        Err(AuthError::SessionEnded)
    ));
    let e = trail(&s)
        .into_iter()
        .find(|e| e.action == actions::USER_ROLE_CHANGE)
        .expect("audited");
    assert_eq!(e.detail, "charge-nurse -> nurse");
    let carl2 = s.login("carl", PW, T0 + 3).expect("login as nurse");
    assert_eq!(carl2.role(), Role::Nurse);
    s.logout(carl2, T0 + 4).expect("logout");

    let mut nina = s.login("nina", PW, T0).expect("login");
    let max = s.config().session_max_ms;
    for k in 1..(max / (9 * MIN)) {
        s.touch(&mut nina, T0 + k * 9 * MIN).expect("active");
    }
    assert!(matches!(
        s.authorize(Some(&nina), Permission::ViewWard, T0 + max),
        Err(AuthError::SessionExpired)
    ));
    assert!(matches!(
        s.touch(&mut nina, T0 + max),
        Err(AuthError::SessionExpired)
    ));
    s.logout(nina, T0 + max).expect("logout");
    let logouts = entries(&s, actions::LOGOUT);
    assert_eq!(logouts.len(), 2);
    assert_chain_intact(&s);
}

#[test]
fn user_administration_rules() {
    let (_d, mut s) = service(AuthConfig::default());
    assert!(s.needs_first_admin().expect("first run"));
    s.create_first_admin("ada", PW, T0).expect("first admin");
    assert!(!s.needs_first_admin().expect("not first run"));
    assert!(matches!(
        s.create_first_admin("eve", PW, T0),
        Err(AuthError::NotFirstRun)
    ));
    let ada = s.login("ada", PW, T0).expect("ada");
    let by = Actor::Session(&ada);
    let nina = s
        .create_user(&by, "nina", Role::Nurse, PW, T0)
        .expect("create");
    assert_eq!(
        (nina.role, nina.enabled, nina.must_change_password),
        (Role::Nurse, true, false)
    );
    assert!(matches!(
        s.create_user(&by, "NINA", Role::Admin, PW, T0),
        Err(AuthError::UserExists(_))
    ));
    for bad in ["", "has space", "cli:root", "-dash", &"x".repeat(65)] {
        assert!(
            matches!(
                s.create_user(&by, bad, Role::Nurse, PW, T0),
                Err(AuthError::InvalidUserName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        s.create_user(&by, "bob", Role::Nurse, "password1234", T0),
        Err(AuthError::Policy(PolicyError::Common))
    ));
    assert!(matches!(
        s.disable_user(&by, "ghost", T0),
        Err(AuthError::UnknownUser(_))
    ));
    // The last enabled admin can be neither disabled nor demoted.
    assert!(matches!(
        s.disable_user(&by, "ada", T0),
        Err(AuthError::LastAdmin)
    ));
    assert!(matches!(
        s.set_role(&by, "ada", Role::Nurse, T0),
        Err(AuthError::LastAdmin)
    ));
    let names: Vec<String> = s
        .list_users(&by, T0)
        .expect("list")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ada", "nina"]);
    let nina_s = s.login("nina", PW, T0).expect("nina");
    assert!(matches!(
        s.list_users(&Actor::Session(&nina_s), T0),
        Err(AuthError::Forbidden { .. })
    ));
    let t = trail(&s);
    assert_eq!(t[0].prev_hash, GENESIS_HASH);
    assert_eq!(
        (
            t[0].actor.as_str(),
            t[0].action.as_str(),
            t[0].target.as_str()
        ),
        ("setup", "user_create", "ada")
    );
    assert_eq!(
        (
            t[2].actor.as_str(),
            t[2].action.as_str(),
            t[2].detail.as_str()
        ),
        ("ada", "user_create", "role nurse")
    );
    assert!(matches!(Actor::cli(), Actor::Local(ref n) if n.starts_with("cli:")));
    assert!(Actor::cli().name().starts_with("cli:"));
    assert_eq!(Actor::Session(&ada).name(), "ada");
    assert_chain_intact(&s);
}

#[test]
fn nurses_acknowledge_by_ward_policy_and_emergency_access_takes_one_tap() {
    let (_d, mut s) = ward();
    let mut nina = s.login("nina", PW, T0).expect("login");
    // Default: nurses acknowledge; the ward may say no.
    s.authorize(Some(&nina), Permission::AcknowledgeAlarm, T0)
        .expect("nurses acknowledge by default");
    s.set_policy(WardPolicy {
        nurses_acknowledge: false,
    });
    assert!(matches!(
        s.authorize(Some(&nina), Permission::AcknowledgeAlarm, T0),
        Err(AuthError::Forbidden { .. })
    ));
    // Locked: nobody may act, but anyone may pause audio (the station's own proof).
    s.lock(&mut nina, T0 + 1).expect("lock");
    let p = s
        .authorize_unattended_pause(Some(&nina), T0 + 2)
        .expect("pause");
    assert_eq!(
        (p.user(), p.permission()),
        ("nina (locked screen)", Permission::AudioPause)
    );
    assert_eq!(
        s.authorize_unattended_pause(None, T0 + 2)
            .expect("pause")
            .user(),
        "station (not logged in)"
    );
    // Emergency access from the locked screen: unlocked, charge-nurse rights, reason owed.
    // Emergency access asks for nothing but the password: someone else at the screen gets no
    // rights (and the attempt counts towards the lockout).
    assert!(matches!(
        s.emergency_access(&mut nina, "guess-guess-guess", T0 + 3),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(nina.is_locked());
    let until = s.emergency_access(&mut nina, PW, T0 + 3).expect("one tap");
    // Not renewable while in force.
    assert!(matches!(
        s.emergency_access(&mut nina, PW, T0 + 4),
        Err(AuthError::BreakGlassActive { .. })
    ));
    assert_eq!(until, T0 + 3 + 30 * MIN);
    assert!(!nina.is_locked() && nina.reason_pending());
    s.authorize(Some(&nina), Permission::AcknowledgeAlarm, T0 + 4)
        .expect("charge-nurse rights");
    assert!(s.screen_state(Some(&nina), T0 + 4).reason_pending);
    assert!(matches!(
        s.emergency_reason(&mut nina, "short", T0 + 5),
        Err(AuthError::BreakGlassReason)
    ));
    s.emergency_reason(&mut nina, "bed 3 desaturating, no charge nurse", T0 + 6)
        .expect("reason");
    assert!(!nina.reason_pending());
    let t = trail(&s);
    assert!(t.iter().any(|e| e.action == actions::BREAK_GLASS
        && e.detail.contains("from the locked screen")
        && e.detail.contains("reason pending")));
    assert!(t
        .iter()
        .any(|e| e.action == actions::BREAK_GLASS_REASON && e.detail.contains("bed 3")));
}

#[test]
fn break_glass_asks_for_the_password_cannot_be_renewed_and_is_a_security_event() {
    let (dir, mut s) = ward();
    let monitor = std::sync::Arc::new(crate::security::SecurityMonitor::default());
    s.set_security(std::sync::Arc::clone(&monitor));
    let mut nina = s.login("nina", PW, T0).expect("login");
    // Someone else at nina's unlocked screen does not know her password.
    assert!(matches!(
        s.break_glass(
            &mut nina,
            "guess-guess-guess",
            "bed 3 arrest, charge nurse away",
            T0
        ),
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(nina.effective_role(T0), Role::Nurse);
    assert_eq!(
        s.user("nina").expect("user").expect("nina").failed_count,
        1,
        "a wrong password counts towards the lockout"
    );
    let until = s
        .break_glass(&mut nina, PW, "bed 3 arrest, charge nurse away", T0 + 1)
        .expect("break glass");
    // Renewing while in force is refused (and changes nothing).
    s.touch(&mut nina, T0 + 9 * MIN).expect("active");
    assert!(matches!(
        s.break_glass(&mut nina, PW, "still busy with bed 3 here", T0 + 15 * MIN),
        Err(AuthError::BreakGlassActive { until_ms }) if until_ms == until
    ));
    assert_eq!(nina.break_glass_until_ms(), Some(until));
    // Once it ended, a new decision may take it again.
    s.touch(&mut nina, T0 + 18 * MIN).expect("active");
    s.touch(&mut nina, T0 + 27 * MIN).expect("active");
    s.touch(&mut nina, until).expect("active");
    assert!(s
        .break_glass(
            &mut nina,
            PW,
            "bed 5 now, charge nurse still away",
            until + 1
        )
        .is_ok());
    let conn = crate::store::open(&dir.path().join("vigil.db")).expect("db");
    let events = monitor.flush(&conn, until + 2).expect("flush");
    let bg: Vec<_> = events
        .iter()
        .filter(|c| c.event.kind == crate::security::Kind::BreakGlass)
        .collect();
    assert_eq!(bg.len(), 1, "{events:?}");
    assert_eq!(bg[0].event.count, 2);
    assert_eq!(bg[0].event.source.user, "nina");
    assert!(events
        .iter()
        .all(|c| c.event.kind != crate::security::Kind::Lockout));
    assert_chain_intact(&s);
}

#[test]
fn failed_log_ins_and_lockouts_are_security_events() {
    let (dir, mut s) = ward();
    let monitor = std::sync::Arc::new(crate::security::SecurityMonitor::default());
    s.set_security(std::sync::Arc::clone(&monitor));
    for i in 0..5 {
        assert!(s.login("nina", "wrong password here", T0 + i).is_err());
    }
    let conn = crate::store::open(&dir.path().join("vigil.db")).expect("db");
    let events = monitor.flush(&conn, T0 + 10).expect("flush");
    let kinds: Vec<_> = events
        .iter()
        .map(|c| (c.event.kind, c.event.count))
        .collect();
    assert!(
        kinds.contains(&(crate::security::Kind::LoginFailed, 5)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(crate::security::Kind::Lockout, 1)),
        "{kinds:?}"
    );
}

#[test]
fn reads_of_patient_data_are_audited_per_run_without_flooding() {
    let (_d, mut s) = ward();
    let nina = s.login("nina", PW, T0).expect("login");
    let before = trail(&s).len();
    let read = |what: &'static str, from: i64| PhiRead {
        bed: "4W/03",
        what,
        from_ms: from,
        to_ms: from + 60 * MIN,
    };
    // 40 reads of one bed within a few minutes: one entry now ...
    for i in 0..40 {
        let what = if i % 2 == 0 {
            "trend HR"
        } else {
            "samples ECG_II"
        };
        s.audit_read(&nina, read(what, T0 - (i + 1) * 60 * MIN), T0 + i * 1000)
            .expect("read");
    }
    s.audit_read(
        &nina,
        PhiRead {
            bed: "4W/04",
            what: "alarm history",
            from_ms: T0 - MIN,
            to_ms: T0,
        },
        T0 + 41_000,
    )
    .expect("other bed");
    let t = trail(&s);
    let reads: Vec<_> = t[before..]
        .iter()
        .filter(|e| e.action == actions::PHI_READ)
        .collect();
    assert_eq!(reads.len(), 2, "one entry per bed, not per query");
    assert_eq!(
        (reads[0].actor.as_str(), reads[0].target.as_str()),
        ("nina", "4W/03")
    );
    assert!(
        reads[0].detail.starts_with("trend HR, data "),
        "{}",
        reads[0].detail
    );
    // ... and one summary when the run ends (quiet for 15 minutes: the idle timer's check).
    let mut nina = nina;
    s.touch(&mut nina, T0 + 5 * MIN).expect("active");
    s.check_idle(&mut nina, T0 + 5 * MIN + READ_RUN_GAP_MS)
        .expect("tick");
    let sums = entries(&s, actions::PHI_READ_SUMMARY);
    assert_eq!(sums.len(), 1, "the single read of 4W/04 needs no summary");
    assert!(
        sums[0]
            .detail
            .starts_with("40 reads (samples ECG_II, trend HR) between"),
        "{}",
        sums[0].detail
    );
    assert_eq!(sums[0].target, "4W/03");
    assert_chain_intact(&s);
}
