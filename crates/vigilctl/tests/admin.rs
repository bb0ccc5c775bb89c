//! `vigilctl user …` and `vigilctl audit …` as IT would run them: the real binary on a temporary
//! database, passwords on standard input. Then the database file is tampered with, as an attacker
//! with write access would do it (drop the trigger, change or delete a row), and `audit verify`
//! must fail naming the broken entry.

use std::path::{Path, PathBuf};

use vigil_core::audit::{Audit, AuditFilter};
use vigil_core::auth::{AuthConfig, AuthService, Role};

use crate::support;
use support::{run_vigilctl, Run};

/// Run vigilctl with `args`, `stdin` as standard input, as OS user "itdesk".
fn vigilctl(args: &[&str], stdin: &str) -> Run {
    run_vigilctl(args, stdin, None)
}

fn db_arg(db: &Path) -> String {
    db.to_string_lossy().into_owned()
}

/// A database with three users made through the CLI, and its path.
fn station(dir: &tempfile::TempDir) -> PathBuf {
    let db = dir.path().join("station.db");
    let d = db_arg(&db);
    for (name, role, pw) in [
        ("nina", "nurse", "ward4-kettle-moon\n"),
        ("carl", "charge-nurse", "river-lamp-9-cedar\r\n"),
        ("ada", "admin", "amber-quill-72-fjord"),
    ] {
        let r = vigilctl(&["user", "add", name, "--role", role, "--db", &d], pw);
        assert!(r.ok(), "user add {name}: {r:?}");
        assert!(
            r.stdout.contains(&format!("created user {name} ({role})")),
            "{r:?}"
        );
    }
    db
}

#[test]
fn users_are_managed_from_the_command_line_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = station(&dir);
    let d = db_arg(&db);

    // The passwords given on stdin work (line ends are not part of them).
    {
        let mut svc = AuthService::open(&db, AuthConfig::default()).expect("open");
        let now = 1_800_000_000_000;
        assert_eq!(
            svc.login("nina", "ward4-kettle-moon", now)
                .expect("nina")
                .role(),
            Role::Nurse
        );
        assert_eq!(
            svc.login("carl", "river-lamp-9-cedar", now)
                .expect("carl")
                .role(),
            Role::ChargeNurse
        );
        assert_eq!(
            svc.login("ada", "amber-quill-72-fjord", now)
                .expect("ada")
                .role(),
            Role::Admin
        );
    }

    // Weak passwords are refused with a clear message and a non-zero exit.
    for (pw, why) in [
        ("short\n", "at least 12 characters"),
        ("Password2024!\n", "commonly used password"),
        ("bob-the-builder-1\n", "user name"),
        ("\n", "no password on standard input"),
    ] {
        let r = vigilctl(&["user", "add", "bob", "--role", "nurse", "--db", &d], pw);
        assert!(!r.ok(), "{pw:?} accepted: {r:?}");
        assert!(r.stderr.contains(why), "{pw:?}: {r:?}");
    }
    let r = vigilctl(
        &["user", "add", "nina", "--role", "admin", "--db", &d],
        "another-good-pw-1",
    );
    assert!(!r.ok() && r.stderr.contains("already exists"), "{r:?}");
    let r = vigilctl(
        &["user", "add", "bob", "--role", "doctor", "--db", &d],
        "another-good-pw-1",
    );
    assert!(!r.ok() && r.stderr.contains("doctor"), "{r:?}");

    // list
    let r = vigilctl(&["user", "list", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:?}");
    assert!(lines[0].starts_with("NAME"), "{r:?}");
    for (line, (name, role)) in lines[1..].iter().zip([
        ("ada", "admin"),
        ("carl", "charge-nurse"),
        ("nina", "nurse"),
    ]) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols, [name, role, "yes", "no", "no"], "{r:?}");
    }

    // disable, enable
    let r = vigilctl(&["user", "disable", "nina", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("disabled nina"), "{r:?}");
    let r = vigilctl(&["user", "list", "--db", &d], "");
    let nina: Vec<&str> = r.line("nina").split_whitespace().collect();
    assert_eq!(nina, ["nina", "nurse", "no", "no", "no"], "{r:?}");
    {
        let mut svc = AuthService::open(&db, AuthConfig::default()).expect("open");
        assert!(svc
            .login("nina", "ward4-kettle-moon", 1_800_000_000_000)
            .is_err());
    }
    let r = vigilctl(&["user", "enable", "nina", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("enabled nina"), "{r:?}");
    // The last admin cannot be disabled.
    let r = vigilctl(&["user", "disable", "ada", "--db", &d], "");
    assert!(!r.ok() && r.stderr.contains("no enabled admin"), "{r:?}");

    // reset-password: generated (printed) and given on stdin; both force a change.
    let r = vigilctl(&["user", "reset-password", "carl", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    let temp = r.after("temporary password for carl: ");
    assert_eq!(temp.len(), 19, "{temp}");
    let r = vigilctl(
        &[
            "user",
            "reset-password",
            "nina",
            "--password-stdin",
            "--db",
            &d,
        ],
        "given-temp-pw-42\n",
    );
    assert!(r.ok(), "{r:?}");
    assert!(!r.stdout.contains("given-temp-pw-42"));
    let r = vigilctl(&["user", "list", "--db", &d], "");
    for name in ["carl", "nina"] {
        let cols: Vec<&str> = r.line(name).split_whitespace().collect();
        assert_eq!(cols[4], "yes", "{name} must change: {r:?}");
    }
    {
        let mut svc = AuthService::open(&db, AuthConfig::default()).expect("open");
        let now = 1_800_000_000_000;
        assert!(svc
            .login("carl", &temp, now)
            .expect("temp")
            .must_change_password());
        assert!(svc
            .login("nina", "given-temp-pw-42", now)
            .expect("given")
            .must_change_password());
        // Lock ada out, then unlock her from the command line.
        for _ in 0..5 {
            let _ = svc.login("ada", "wrong-password-x", now);
        }
    }
    let r = vigilctl(&["user", "list", "--db", &d], "");
    assert!(r.line("ada").contains("until"), "{r:?}");
    let r = vigilctl(&["user", "unlock", "ada", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("unlocked ada"), "{r:?}");
    let r = vigilctl(
        &[
            "user",
            "set-role",
            "nina",
            "--role",
            "charge-nurse",
            "--db",
            &d,
        ],
        "",
    );
    assert!(
        r.ok() && r.stdout.contains("nina is now charge-nurse"),
        "{r:?}"
    );

    // Every CLI action is in the trail as cli:itdesk, and the chain is intact.
    let r = vigilctl(&["audit", "verify", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    assert!(r.stdout.contains("audit trail intact: "), "{r:?}");
    let r = vigilctl(&["audit", "list", "--db", &d, "--actor", "cli:itdesk"], "");
    assert!(r.ok(), "{r:?}");
    let actions: Vec<&str> = r
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).expect("action column"))
        .collect();
    assert_eq!(
        actions,
        [
            "user_create",
            "user_create",
            "user_create",
            "user_disable",
            "user_enable",
            "user_reset_password",
            "user_reset_password",
            "user_unlock",
            "user_role_change"
        ],
        "{r:?}"
    );
    let r = vigilctl(&["audit", "list", "--db", &d, "--action", "lockout"], "");
    assert!(r.ok() && r.stdout.lines().count() == 2, "{r:?}");
    assert!(r.stdout.contains("ada"), "{r:?}");
    let r = vigilctl(&["audit", "list", "--db", &d, "--from", "2100-01-01"], "");
    assert!(
        r.ok() && r.stdout.lines().count() == 1,
        "header only: {r:?}"
    );

    // CSV export, itself audited.
    let r = vigilctl(&["audit", "list", "--db", &d, "--csv", "--limit", "3"], "");
    assert!(r.ok(), "{r:?}");
    let rows: Vec<&str> = r.stdout.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 4, "{r:?}");
    assert!(rows[0].starts_with("id,t_ms,time_utc,actor,action"));
    let conn = vigil_core::store::open(&db).expect("open");
    let last = Audit::list(
        &conn,
        &AuditFilter {
            limit: Some(1),
            ..Default::default()
        },
    )
    .expect("list");
    assert_eq!(
        (last[0].actor.as_str(), last[0].action.as_str()),
        ("cli:itdesk", "audit_export")
    );
    let r = vigilctl(&["audit", "verify", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
}

/// A copy of the database file (consistent, with the WAL folded in).
/// A copy of the database as an attacker with the file would make it, kept private (0600) and
/// with the station key beside it, so that `audit verify` checks it as it would the original.
fn copy_db(from: &Path, to: &Path) {
    let c = rusqlite::Connection::open(from).expect("open");
    c.execute("VACUUM INTO ?1", [to.to_string_lossy()])
        .expect("vacuum into");
    set_mode(to, 0o600);
    std::fs::copy(vigil_core::keys::beside(from), vigil_core::keys::beside(to))
        .expect("copy the station key");
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn entry_count(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open");
    c.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn audit_verify_catches_an_altered_and_a_deleted_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = station(&dir);
    let d = db_arg(&db);
    for args in [
        ["user", "disable", "nina"],
        ["user", "enable", "nina"],
        ["user", "unlock", "carl"],
    ] {
        let r = vigilctl(&[&args[..], &["--db", &d]].concat(), "");
        assert!(r.ok(), "{args:?}: {r:?}");
    }
    let r = vigilctl(&["audit", "verify", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    assert!(r.stdout.contains("audit trail intact: 6 entries"), "{r:?}");
    assert_eq!(entry_count(&db), 6);

    // Altered: hide that nina was disabled (entry 4).
    let altered = dir.path().join("altered.db");
    copy_db(&db, &altered);
    {
        let c = rusqlite::Connection::open(&altered).expect("open");
        // The trigger refuses the change until the attacker drops it.
        assert!(c
            .execute(
                "UPDATE audit_log SET action = 'user_enable' WHERE id = 4",
                []
            )
            .is_err());
        c.execute_batch(
            "DROP TRIGGER audit_log_no_update;
             UPDATE audit_log SET action = 'user_enable' WHERE id = 4;",
        )
        .expect("tamper");
    }
    let r = vigilctl(&["audit", "verify", "--db", &db_arg(&altered)], "");
    assert!(!r.ok(), "tampering not detected: {r:?}");
    assert!(r.stderr.contains("BROKEN at entry 4"), "{r:?}");
    assert!(r.stderr.contains("altered"), "{r:?}");

    // Deleted: remove entry 5 (triggers dropped first).
    let deleted = dir.path().join("deleted.db");
    copy_db(&db, &deleted);
    {
        let c = rusqlite::Connection::open(&deleted).expect("open");
        assert!(c.execute("DELETE FROM audit_log WHERE id = 5", []).is_err());
        c.execute_batch(
            "DROP TRIGGER audit_log_no_delete;
             DELETE FROM audit_log WHERE id = 5;",
        )
        .expect("tamper");
    }
    let r = vigilctl(&["audit", "verify", "--db", &db_arg(&deleted)], "");
    assert!(!r.ok(), "deletion not detected: {r:?}");
    assert!(r.stderr.contains("entry 5 is missing"), "{r:?}");

    // Triggers dropped but nothing changed (yet): still refused.
    let bare = dir.path().join("bare.db");
    copy_db(&db, &bare);
    rusqlite::Connection::open(&bare)
        .expect("open")
        .execute_batch("DROP TRIGGER audit_log_no_delete")
        .expect("drop");
    let r = vigilctl(&["audit", "verify", "--db", &db_arg(&bare)], "");
    assert!(
        !r.ok() && r.stderr.contains("trigger audit_log_no_delete is missing"),
        "{r:?}"
    );

    // The original is untouched and verifying did not change it.
    let r = vigilctl(&["audit", "verify", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    assert_eq!(entry_count(&db), 6);

    let r = vigilctl(
        &[
            "audit",
            "verify",
            "--db",
            &db_arg(&dir.path().join("none.db")),
        ],
        "",
    );
    assert!(!r.ok() && r.stderr.contains("no database"), "{r:?}");
}

/// What the chain alone did not catch (issue 13): a chain forged and recomputed end to end, a
/// trigger replaced by a no-op of the same name, and the newest entries deleted.
#[test]
fn audit_verify_catches_a_recomputed_chain_a_no_op_trigger_and_a_truncated_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = station(&dir);
    let d = db_arg(&db);
    for args in [["user", "disable", "nina"], ["user", "enable", "nina"]] {
        assert!(vigilctl(&[&args[..], &["--db", &d]].concat(), "").ok());
    }
    let r = vigilctl(&["audit", "verify", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.contains("MACs checked with the station key"),
        "{r:?}"
    );
    let head = r.after("head (for --head): ");
    assert!(head.starts_with("5:"), "{head}");

    // Forged: entry 4 (nina disabled) rewritten and every hash after it recomputed. The
    // plain chain is intact again; the MACs (the key is not in the database) are not.
    let forged = dir.path().join("forged.db");
    copy_db(&db, &forged);
    {
        let c = rusqlite::Connection::open(&forged).expect("open");
        c.execute_batch("DROP TRIGGER audit_log_no_update")
            .expect("drop");
        // Every entry, in order (the attacker reads them as the station does).
        let rows = Audit::list(&c, &AuditFilter::default()).expect("read");
        let mut prev = vigil_core::audit::GENESIS_HASH.to_string();
        for e in rows {
            let (id, t) = (e.id, e.t_ms);
            let action = if id == 4 {
                "user_enable".to_string()
            } else {
                e.action
            };
            let h = vigil_core::audit::entry_hash(
                &prev, id, t, &e.actor, &action, &e.target, &e.detail,
            );
            c.execute(
                "UPDATE audit_log SET action = ?1, prev_hash = ?2, hash = ?3 WHERE id = ?4",
                rusqlite::params![action, prev, h, id],
            )
            .expect("rewrite");
            prev = h;
        }
        c.execute_batch(&vigil_core::audit::trigger_sql("audit_log_no_update").expect("sql"))
            .expect("put the trigger back");
    }
    let r = vigilctl(&["audit", "verify", "--db", &db_arg(&forged)], "");
    assert!(!r.ok(), "forged chain not detected: {r:?}");
    assert!(
        r.stderr.contains("BROKEN at entry 4") && r.stderr.contains("MAC"),
        "{r:?}"
    );

    // A no-op trigger of the same name.
    let noop = dir.path().join("noop.db");
    copy_db(&db, &noop);
    rusqlite::Connection::open(&noop)
        .expect("open")
        .execute_batch(
            "DROP TRIGGER audit_log_no_delete;
             CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END;",
        )
        .expect("replace");
    let r = vigilctl(&["audit", "verify", "--db", &db_arg(&noop)], "");
    assert!(!r.ok(), "no-op trigger not detected: {r:?}");
    assert!(
        r.stderr.contains("audit_log_no_delete was replaced"),
        "{r:?}"
    );

    // The two newest entries deleted: an intact shorter chain, but not the published head.
    let cut = dir.path().join("truncated.db");
    copy_db(&db, &cut);
    rusqlite::Connection::open(&cut)
        .expect("open")
        .execute_batch(&format!(
            "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE id >= 4; {};",
            vigil_core::audit::trigger_sql("audit_log_no_delete").expect("sql")
        ))
        .expect("truncate");
    let r = vigilctl(&["audit", "verify", "--db", &db_arg(&cut)], "");
    assert!(r.ok(), "without the head the cut is invisible: {r:?}");
    let r = vigilctl(
        &["audit", "verify", "--db", &db_arg(&cut), "--head", &head],
        "",
    );
    assert!(!r.ok(), "truncation not detected: {r:?}");
    assert!(r.stderr.contains("TRUNCATED"), "{r:?}");
    // The original holds its head.
    let r = vigilctl(&["audit", "verify", "--db", &d, "--head", &head], "");
    assert!(r.ok(), "{r:?}");
}

/// The database, its directory and the recorder's data directory must be private; looser
/// modes are refused with the command that fixes them.
#[test]
fn a_database_others_can_read_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = station(&dir);
    let d = db_arg(&db);
    assert!(vigilctl(&["user", "list", "--db", &d], "").ok());
    set_mode(&db, 0o644);
    for args in [["user", "list"], ["audit", "verify"]] {
        let r = vigilctl(&[&args[..], &["--db", &d]].concat(), "");
        assert!(!r.ok(), "{args:?} on a 0644 database: {r:?}");
        assert!(
            r.stderr.contains("mode 0644") && r.stderr.contains(&format!("chmod 600 {d}")),
            "{r:?}"
        );
    }
    set_mode(&db, 0o600);
    // The recorder keeps a data directory: it must be 0700 (a temporary directory is 0755).
    let r = vigilctl(&["record", "--db", &d, "--duration", "0"], "");
    assert!(!r.ok(), "{r:?}");
    assert!(r.stderr.contains("chmod 700"), "{r:?}");
}

/// The migration of an existing database to encryption at rest, from the command line.
#[test]
fn db_encrypt_migrates_a_database_that_stays_verifiable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = station(&dir);
    let d = db_arg(&db);
    let before = std::fs::read(&db).expect("read");
    assert!(before.starts_with(b"SQLite format 3\0"));
    let r = vigilctl(&["db", "encrypt", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("encrypted"), "{r:?}");
    let after = std::fs::read(&db).expect("read");
    assert!(!after.starts_with(b"SQLite format 3\0"), "still plaintext");
    assert!(
        !after.windows(4).any(|w| w == b"nina"),
        "a user name is readable in the encrypted file"
    );
    // Everything still works with the station key, and the trail is intact.
    let r = vigilctl(&["user", "list", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("nina"), "{r:?}");
    let r = vigilctl(&["audit", "verify", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("intact"), "{r:?}");
    let r = vigilctl(&["db", "encrypt", "--db", &d], "");
    assert!(r.ok() && r.stdout.contains("encrypted already"), "{r:?}");
}

/// `vigilctl station …` (issue 11): IT takes a station's public key and enrols it at another
/// station for its wards; bad input is refused; every change is audited under the CLI user.
#[test]
fn stations_are_enrolled_listed_and_removed_from_the_command_line_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("st-2.db");
    let key = vigilctl(&["station", "key", "--db", &db_arg(&other)], "");
    assert!(key.ok(), "{key:?}");
    let pk = key.stdout.trim().to_string();
    assert_eq!(pk.len(), 64, "{key:?}");
    assert!(pk.bytes().all(|b| b.is_ascii_hexdigit()));
    // The same key every time (derived from that station's key).
    let again = vigilctl(&["station", "key", "--db", &db_arg(&other)], "");
    assert_eq!(again.stdout.trim(), pk);

    let db = station(&dir);
    let d = db_arg(&db);
    for (id, k, wards) in [
        ("ST 2", pk.as_str(), "4W"),
        ("ST-2", "00ff", "4W"),
        ("ST-2", pk.as_str(), ","),
    ] {
        let r = vigilctl(
            &[
                "station", "enrol", id, "--key", k, "--wards", wards, "--db", &d,
            ],
            "",
        );
        assert!(!r.ok(), "{id} {k} {wards} accepted: {r:?}");
    }
    let r = vigilctl(
        &[
            "station",
            "enrol",
            "ST-2",
            "--key",
            &pk,
            "--wards",
            "4W,5E",
            "--label",
            "north desk, \"B\" wing",
            "--db",
            &d,
        ],
        "",
    );
    assert!(r.ok(), "{r:?}");
    assert!(r.stdout.contains(&pk[..16]), "{r:?}");
    let list = vigilctl(&["station", "list", "--db", &d], "");
    assert!(list.ok(), "{list:?}");
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("ST-2,"))
        .unwrap_or_else(|| panic!("ST-2 listed: {list:?}"));
    assert!(
        line.starts_with(&format!(
            "ST-2,4W;5E,{},\"north desk, \"\"B\"\" wing\",",
            &pk[..16]
        )),
        "{line}"
    );
    assert!(line.ends_with(",cli:itdesk"), "{line}");
    let r = vigilctl(&["station", "remove", "ST-2", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    let r = vigilctl(&["station", "remove", "ST-2", "--db", &d], "");
    assert!(!r.ok() && r.stderr.contains("not enrolled"), "{r:?}");
    let list = vigilctl(&["station", "list", "--db", &d], "");
    assert!(!list.stdout.contains("ST-2"), "{list:?}");

    let conn = vigil_core::store::open(&db).expect("db");
    let trail = Audit::list(&conn, &AuditFilter::default()).expect("trail");
    let station_entries: Vec<_> = trail
        .iter()
        .filter(|e| e.action.starts_with("station_"))
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        station_entries,
        [
            ("station_enrol", "cli:itdesk", "ST-2"),
            ("station_remove", "cli:itdesk", "ST-2")
        ]
    );
    assert!(Audit::verify(&conn).expect("verify").is_intact());
}

/// `vigilctl device` is an adapter over the engine's one device action: the id is the one the
/// telemetry contract allows (a leading `_`, which no device topic can carry, is refused), and
/// a registration is one audited transaction and a configuration-change security event.
#[test]
fn devices_are_registered_through_the_one_audited_action() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("station.db");
    let d = db_arg(&db);
    for (device, bed) in [("_mon1", "4W/01"), ("mon 1", "4W/01"), ("mon-1", "4W/+")] {
        let r = vigilctl(&["device", "add", device, "--bed", bed, "--db", &d], "");
        assert!(!r.ok(), "{device} {bed}: {r:?}");
        assert!(r.stderr.contains("not a"), "says what is wrong: {r:?}");
    }
    let r = vigilctl(
        &[
            "device",
            "add",
            "mon-1",
            "--bed",
            "4W/01",
            "--label",
            "bedside 1",
            "--db",
            &d,
        ],
        "",
    );
    assert!(r.ok(), "{r:?}");
    assert!(r.stdout.contains("device mon-1 feeds bed 4W/01"), "{r:?}");
    let r = vigilctl(&["device", "remove", "mon-1", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    let r = vigilctl(&["device", "remove", "mon-1", "--db", &d], "");
    assert!(!r.ok() && r.stderr.contains("no device"), "{r:?}");

    let svc = AuthService::open(&db, AuthConfig::default()).expect("db");
    let trail: Vec<(String, String, String)> =
        Audit::list(svc.connection(), &AuditFilter::default())
            .expect("trail")
            .into_iter()
            .map(|e| (e.actor, e.action, e.detail))
            .collect();
    assert_eq!(
        trail,
        [
            (
                "cli:itdesk".to_string(),
                "device_register".to_string(),
                "bed 4W/01; label \"bedside 1\"".to_string()
            ),
            ("cli:itdesk".into(), "device_remove".into(), String::new()),
        ]
    );
    let events = vigil_core::security::list(svc.connection(), &Default::default()).expect("events");
    let changes: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == vigil_core::security::Kind::ConfigChange)
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        changes
            .iter()
            .any(|d| d.contains("device mon-1 registered to bed 4W/01"))
            && changes.iter().any(|d| d.contains("device mon-1 removed")),
        "{events:?}"
    );
}

/// IT registers a device with `vigilctl device add` while the station runs: the running engine
/// takes it up within seconds (it reads the registry again), no restart needed; a removal
/// likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registered_from_the_command_line_reaches_the_running_station() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("station.db");
    let d = db_arg(&db);
    // The station, offline (nothing listens on port 9): the registry is read from its database.
    let engine = support::offline_engine("station-registry", &db);
    let known = |e: &vigil_core::engine::Engine| e.registry().resolve("mon-9", None, true).ok();
    assert_eq!(known(&engine), None);
    let wait = |want: Option<vigil_core::telemetry::BedId>| {
        let engine = &engine;
        async move {
            let t = std::time::Instant::now();
            while known(engine) != want {
                assert!(
                    t.elapsed() < std::time::Duration::from_secs(15),
                    "not taken up: {want:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            t.elapsed()
        }
    };
    let r = vigilctl(
        &["device", "add", "mon-9", "--bed", "4W/09", "--db", &d],
        "",
    );
    assert!(r.ok(), "{r:?}");
    let took = wait(Some(vigil_core::telemetry::BedId::new("4W", "09"))).await;
    eprintln!("registration taken up in {took:?}");
    let r = vigilctl(&["device", "remove", "mon-9", "--db", &d], "");
    assert!(r.ok(), "{r:?}");
    wait(None).await;
    engine.shutdown().await;
}
