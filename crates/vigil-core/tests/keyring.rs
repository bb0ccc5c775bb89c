//! The station key in the OS keyring (issue 13), end to end on a real Secret Service:
//! GNOME Keyring (`gnome-keyring-daemon`, Debian package `gnome-keyring`, see scripts/setup.sh)
//! on a private session bus, its keyring files in a temporary home. With
//! `key_store = "keyring"` the key of a new database goes to the keyring, not to a file; the
//! audit trail keyed with it verifies after the key is read back; an encrypted database opens
//! with it; and a database whose key has gone from the keyring is refused, never given a new one.
//!
//! Its own test binary: it points the process's session bus at its own.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::bus::{use_bus, Bus};
use vigil_core::audit::Audit;
use vigil_core::auth::{Actor, AuthConfig, AuthService, Role};
use vigil_core::keys::{self, KeyStore, KEYRING_SERVICE};

/// A GNOME Keyring daemon (Secret Service only) on `bus`, its login keyring created and
/// unlocked with a password in `home`; killed on drop.
struct Keyring(Child);

impl Keyring {
    fn start(bus: &Bus, home: &Path) -> Keyring {
        let run = home.join("run");
        std::fs::create_dir_all(&run).expect("runtime dir");
        let mut child = Command::new(support::find("gnome-keyring-daemon"))
            .args(["--foreground", "--components=secrets", "--unlock"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &run)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.join("keyring.log")).expect("log"))
            .spawn()
            .expect("gnome-keyring-daemon (run scripts/setup.sh)");
        // The login keyring's password, then end of input.
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"station-keyring-pw").expect("password");
        drop(stdin);
        Keyring(child)
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait (10 s at most) until the Secret Service answers on the process's bus.
fn wait_for_secret_service(home: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = keyring::Entry::new("vigil-test-probe", "probe").expect("entry");
        match probe.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => return,
            Err(e) => {
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(home.join("keyring.log")).unwrap_or_default();
                    panic!("no Secret Service on the test bus: {e}\n{log}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn entry(db: &Path) -> keyring::Entry {
    let canonical = std::fs::canonicalize(db).expect("database exists");
    keyring::Entry::new(KEYRING_SERVICE, &canonical.to_string_lossy()).expect("entry")
}

/// A keyed audit entry: an admin creates a user.
fn audited_change(db: &Path, name: &str) {
    let mut svc = AuthService::open(db, AuthConfig::default()).expect("auth");
    svc.create_user(
        &Actor::Local("cli:it".into()),
        name,
        Role::Nurse,
        "Ward4-keyring-test-2026!",
        chrono::Utc::now().timestamp_millis(),
    )
    .expect("user");
}

#[test]
fn the_station_key_lives_in_the_os_keyring_and_a_lost_one_is_refused() {
    let bus = Bus::start();
    let _env = use_bus(&bus);
    let home = tempfile::tempdir().expect("home");
    let _keyring = Keyring::start(&bus, home.path());
    wait_for_secret_service(home.path());

    let dir = tempfile::tempdir().expect("data dir");
    let db = dir.path().join("vigil.db");
    keys::configure(&db, KeyStore::Keyring);
    drop(vigil_core::store::open(&db).expect("new database"));
    // In the keyring, and in no file.
    assert!(
        !keys::beside(&db).exists(),
        "a key file was written: the keyring was not used"
    );
    let record = entry(&db).get_password().expect("key in the keyring");
    assert!(!record.is_empty());
    let key = keys::get(&db).expect("key").expect("present");

    // The trail keyed with it verifies once the key is read back from the keyring.
    audited_change(&db, "nina");
    keys::forget(&db);
    let conn = vigil_core::store::open(&db).expect("reopen");
    let report = Audit::verify(&conn).expect("verify");
    assert!(
        report.first_break.is_none() && report.triggers_present,
        "{report:?}"
    );
    assert_eq!(
        keys::get(&db).expect("key").expect("present").public_key(),
        key.public_key(),
        "the same key, from the keyring"
    );
    drop(conn);

    // An encrypted database, its key in the keyring.
    if vigil_core::store::has_cipher() {
        let enc = dir.path().join("encrypted.db");
        keys::configure(&enc, KeyStore::Keyring);
        keys::require_encryption(&enc, true);
        drop(vigil_core::store::open(&enc).expect("new encrypted database"));
        assert!(!vigil_core::store::is_plaintext(&enc), "encrypted at rest");
        assert!(!keys::beside(&enc).exists());
        audited_change(&enc, "omar");
        keys::forget(&enc);
        let conn = vigil_core::store::open(&enc).expect("reopen encrypted");
        assert!(Audit::verify(&conn).expect("verify").first_break.is_none());
    }

    // The key is gone from the keyring: the database is refused, not given a new key.
    entry(&db).delete_credential().expect("delete");
    keys::forget(&db);
    let err = vigil_core::store::open(&db).expect_err("refused without its key");
    let msg = err.to_string();
    assert!(msg.contains("missing"), "{msg}");
    assert!(msg.contains("keyring"), "says where it looked: {msg}");
    assert!(!keys::beside(&db).exists(), "no new key file");
}
