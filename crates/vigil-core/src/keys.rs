//! The station's secret: one 32-byte key per database, kept outside it, from which the audit
//! trail's HMAC key (and the database encryption key) are derived.
//!
//! Where the key lives ([`KeyStore`]):
//! - the OS keyring (Secret Service on Linux, through the `keyring` crate), entry
//!   `service = "vigil"`, `user = <canonical database path>`, when IT chose it
//!   (`[security] key_store = "keyring"`) and a keyring answers;
//! - else a key file: `[security] key_file`, e.g. `/etc/vigil/station.key` owned by root (or the
//!   station's service account) with mode 0400 or 0600, or by default `<database>.key` beside the
//!   database in its 0700 data directory. A key file readable by anyone else is refused.
//!
//! The record kept there (a few lines of text) also says up to which audit entry the trail was
//! written before it was keyed (`legacy_until`): entries after that one must carry a valid MAC,
//! so stripping the MACs and recomputing the plain hash chain is detected
//! ([`crate::audit::Audit::verify`]). A key is created when a database is first opened
//! ([`ensure`], called by [`crate::store::open`]); an existing database whose key has gone
//! missing is refused rather than silently given a new key.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use hmac::{KeyInit, Mac};
use rand::RngCore;
use thiserror::Error;

use crate::secure_fs;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Keyring service name of the station keys.
pub const KEYRING_SERVICE: &str = "vigil";

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not a Vigil station key: {why}")]
    Format { path: PathBuf, why: &'static str },
    #[error(transparent)]
    Mode(#[from] secure_fs::ModeError),
    #[error(
        "the station key of {db} is missing ({looked}) but its audit trail is keyed: restore \
         the key (from the keyring backup or the key file) before starting; a new key would make \
         every keyed entry fail verification"
    )]
    Missing { db: PathBuf, looked: String },
    #[error("OS keyring: {0}")]
    Keyring(String),
}

/// Where a database's key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// `<database>.key` beside the database (the default).
    Beside,
    /// A key file IT placed (root-only), e.g. `/etc/vigil/station.key`.
    File(PathBuf),
    /// The OS keyring; falls back to [`KeyStore::Beside`] when no keyring answers (a headless
    /// service, CI), with a warning.
    Keyring,
}

/// A database's key record: the secret and how far the trail was unkeyed.
#[derive(Clone, PartialEq, Eq)]
pub struct StationKey {
    secret: [u8; 32],
    /// Audit entries up to this id were written before the trail was keyed (0: none).
    pub legacy_until: i64,
    /// The database is encrypted (SQLCipher) with [`StationKey::db_key_hex`].
    pub encrypted: bool,
}

impl fmt::Debug for StationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StationKey")
            .field("secret", &"<redacted>")
            .field("legacy_until", &self.legacy_until)
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

impl StationKey {
    /// A fresh random key.
    pub fn generate(legacy_until: i64) -> StationKey {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        StationKey {
            secret,
            legacy_until,
            encrypted: false,
        }
    }

    /// A key from known bytes (tests, and keys read back).
    pub fn from_secret(secret: [u8; 32], legacy_until: i64) -> StationKey {
        StationKey {
            secret,
            legacy_until,
            encrypted: false,
        }
    }

    fn derive(&self, purpose: &str) -> HmacSha256 {
        // One secret, one derived key per purpose (HMAC as a PRF, as in HKDF-Expand's first block).
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(purpose.as_bytes());
        let k = m.finalize().into_bytes();
        <HmacSha256 as KeyInit>::new_from_slice(&k)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// HMAC-SHA256 under the audit key of `parts` (each length-prefixed), lowercase hex.
    pub fn audit_mac(&self, parts: &[&str]) -> String {
        let mut m = self.derive("vigil-audit-hmac-v1");
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p.as_bytes());
        }
        crate::audit::to_hex(&m.finalize().into_bytes())
    }

    /// The station's Ed25519 signing key pair (station-to-station alarm state,
    /// [`crate::alarms::sync`]), derived from the secret: nothing more to keep or back up.
    fn signing_pair(&self) -> ring::signature::Ed25519KeyPair {
        let mut m = self.derive("vigil-station-sign-v1");
        m.update(b"ed25519");
        let seed = m.finalize().into_bytes();
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .unwrap_or_else(|_| unreachable!("any 32 bytes are an Ed25519 seed"))
    }

    /// The station's Ed25519 public key, which IT enrols at the ward's other stations
    /// (`vigilctl station key` prints it).
    pub fn public_key(&self) -> [u8; 32] {
        use ring::signature::KeyPair;
        let mut out = [0u8; 32];
        out.copy_from_slice(self.signing_pair().public_key().as_ref());
        out
    }

    /// An Ed25519 signature of `msg` by this station.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.signing_pair().sign(msg).as_ref());
        out
    }

    /// The database encryption key (SQLCipher raw key), 64 hex characters.
    pub fn db_key_hex(&self) -> String {
        let mut m = self.derive("vigil-sqlcipher-v1");
        m.update(b"db");
        crate::audit::to_hex(&m.finalize().into_bytes())
    }

    fn encode(&self) -> String {
        format!(
            "vigil-station-key v1\nsecret {}\nlegacy_until {}\nencrypted {}\n",
            crate::audit::to_hex(&self.secret),
            self.legacy_until,
            u8::from(self.encrypted)
        )
    }

    fn decode(text: &str) -> Result<StationKey, &'static str> {
        let mut lines = text.lines();
        if lines.next() != Some("vigil-station-key v1") {
            return Err("first line is not `vigil-station-key v1`");
        }
        let mut secret = None;
        let mut legacy = None;
        let mut encrypted = false;
        for l in lines {
            match l.split_once(' ') {
                Some(("secret", hex)) => secret = Some(from_hex32(hex).ok_or("bad secret")?),
                Some(("legacy_until", n)) => {
                    legacy = Some(n.parse::<i64>().map_err(|_| "bad legacy_until")?)
                }
                Some(("encrypted", v)) => encrypted = v.trim() == "1",
                _ if l.trim().is_empty() => {}
                _ => return Err("unknown line"),
            }
        }
        Ok(StationKey {
            secret: secret.ok_or("no secret")?,
            legacy_until: legacy.ok_or("no legacy_until")?,
            encrypted,
        })
    }
}

fn from_hex32(s: &str) -> Option<[u8; 32]> {
    from_hex::<32>(s)
}

/// Exactly `N` bytes from `2 N` hex digits (either case, surrounding blanks ignored).
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.trim().as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Whether `sig` is `public_key`'s Ed25519 signature of `msg`.
pub fn verify_signature(public_key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
        .verify(msg, sig)
        .is_ok()
}

struct Registry {
    /// Where each database's key is kept, as configured (canonical path → store).
    stores: HashMap<PathBuf, KeyStore>,
    /// Databases that must be encrypted (`[storage] encrypt = true`).
    encrypt: std::collections::HashSet<PathBuf>,
    /// Keys loaded in this process (canonical path → key).
    keys: HashMap<PathBuf, Arc<StationKey>>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        Mutex::new(Registry {
            stores: HashMap::new(),
            encrypt: Default::default(),
            keys: HashMap::new(),
        })
    })
}

fn reg() -> std::sync::MutexGuard<'static, Registry> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

/// The path under which a database's key is registered: canonical when the file exists.
fn canonical(db: &Path) -> PathBuf {
    std::fs::canonicalize(db).unwrap_or_else(|_| {
        // Not created yet: canonicalise the directory.
        match (db.parent(), db.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
            .map(|d| d.join(name))
            .unwrap_or_else(|_| db.to_path_buf()),
            _ => db.to_path_buf(),
        }
    })
}

/// Say where the key of `db` is kept (the station and `vigilctl` call this from `[security]`
/// before opening the database). Unconfigured databases use [`KeyStore::Beside`].
pub fn configure(db: &Path, store: KeyStore) {
    let c = canonical(db);
    let mut r = reg();
    r.keys.remove(&c);
    r.stores.insert(c, store);
}

/// Require (or not) that `db` be encrypted at rest: a new database is created encrypted, an
/// existing plaintext one is refused until migrated (`vigilctl db encrypt`).
pub fn require_encryption(db: &Path, on: bool) {
    let c = canonical(db);
    let mut r = reg();
    if on {
        r.encrypt.insert(c);
    } else {
        r.encrypt.remove(&c);
    }
}

/// Whether `db` must be encrypted ([`require_encryption`]).
pub fn encryption_required(db: &Path) -> bool {
    reg().encrypt.contains(&canonical(db))
}

/// Store a changed key record (after a migration to encryption) where the key lives.
pub fn update(db: &Path, key: &StationKey) -> Result<(), KeyError> {
    let c = canonical(db);
    let text = key.encode();
    let file = |p: &Path| {
        secure_fs::replace_private(p, text.as_bytes()).map_err(|source| KeyError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    match store_of(&c) {
        KeyStore::File(p) => file(&p)?,
        KeyStore::Beside => file(&beside(&c))?,
        KeyStore::Keyring => {
            let in_keyring = keyring_read(&c).ok().flatten().is_some();
            if in_keyring {
                keyring_entry(&c)?
                    .set_password(&text)
                    .map_err(|e| KeyError::Keyring(e.to_string()))?;
            } else {
                file(&beside(&c))?;
            }
        }
    }
    reg().keys.insert(c, Arc::new(key.clone()));
    Ok(())
}

/// Create the key of a new database that is to be encrypted (before SQLite writes anything).
pub fn create_encrypted(db: &Path) -> Result<Arc<StationKey>, KeyError> {
    let mut key = StationKey::generate(0);
    key.encrypted = true;
    let c = canonical(db);
    store_new(&c, &key)?;
    let key = Arc::new(key);
    reg().keys.insert(c, Arc::clone(&key));
    Ok(key)
}

/// Keep a new key where the database's key is configured to live (the keyring falls back to
/// the key file beside the database when none answers).
fn store_new(db_canonical: &Path, key: &StationKey) -> Result<(), KeyError> {
    match store_of(db_canonical) {
        KeyStore::File(p) => write_file(&p, key),
        KeyStore::Beside => write_file(&beside(db_canonical), key),
        KeyStore::Keyring => {
            let stored = keyring_entry(db_canonical).and_then(|e| {
                e.set_password(&key.encode())
                    .map_err(|e| KeyError::Keyring(e.to_string()))
            });
            match stored {
                Ok(()) => Ok(()),
                Err(e) => {
                    let p = beside(db_canonical);
                    tracing::warn!(error = %e, file = %p.display(), "no OS keyring: key kept in a file");
                    write_file(&p, key)
                }
            }
        }
    }
}

/// The default key file of a database: `<database>.key`.
pub fn beside(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".key");
    db.with_file_name(name)
}

fn store_of(db_canonical: &Path) -> KeyStore {
    reg()
        .stores
        .get(db_canonical)
        .cloned()
        .unwrap_or(KeyStore::Beside)
}

fn read_file(path: &Path) -> Result<Option<StationKey>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            secure_fs::check_private_file(path)?;
            StationKey::decode(&text)
                .map(Some)
                .map_err(|why| KeyError::Format {
                    path: path.to_path_buf(),
                    why,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_file(path: &Path, key: &StationKey) -> Result<(), KeyError> {
    secure_fs::write_private_new(path, key.encode().as_bytes()).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn keyring_entry(db: &Path) -> Result<keyring::Entry, KeyError> {
    keyring::Entry::new(KEYRING_SERVICE, &db.to_string_lossy())
        .map_err(|e| KeyError::Keyring(e.to_string()))
}

/// Read the key of `db` from the keyring: `Ok(None)` when there is none, `Err` when no keyring
/// answers.
fn keyring_read(db: &Path) -> Result<Option<StationKey>, KeyError> {
    match keyring_entry(db)?.get_password() {
        Ok(text) => StationKey::decode(&text)
            .map(Some)
            .map_err(|why| KeyError::Format {
                path: db.to_path_buf(),
                why,
            }),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(KeyError::Keyring(e.to_string())),
    }
}

/// Read the key of a database (canonical path) from where it is configured to live.
fn load(db: &Path) -> Result<(Option<StationKey>, String), KeyError> {
    match store_of(db) {
        KeyStore::File(p) => Ok((read_file(&p)?, p.display().to_string())),
        KeyStore::Beside => {
            let p = beside(db);
            Ok((read_file(&p)?, p.display().to_string()))
        }
        KeyStore::Keyring => match keyring_read(db) {
            Ok(k) => Ok((
                k,
                format!("OS keyring entry {KEYRING_SERVICE}/{}", db.display()),
            )),
            Err(e) => {
                let p = beside(db);
                tracing::warn!(error = %e, file = %p.display(), "no OS keyring: using the key file");
                Ok((read_file(&p)?, p.display().to_string()))
            }
        },
    }
}

/// The key of `db` if it has one (loaded once per process). Never creates a key.
pub fn get(db: &Path) -> Result<Option<Arc<StationKey>>, KeyError> {
    let c = canonical(db);
    if let Some(k) = reg().keys.get(&c) {
        return Ok(Some(Arc::clone(k)));
    }
    let (k, _) = load(&c)?;
    Ok(k.map(|k| {
        let k = Arc::new(k);
        reg().keys.insert(c, Arc::clone(&k));
        k
    }))
}

/// The key of `db`, created if the database has none yet. `max_audit_id` is the newest entry
/// of the trail as it is now: a new key keys every entry after it. Refuses (with
/// [`KeyError::Missing`]) a database that has keyed entries but no key.
pub fn ensure(
    db: &Path,
    max_audit_id: i64,
    has_keyed_entries: bool,
) -> Result<Arc<StationKey>, KeyError> {
    if let Some(k) = get(db)? {
        return Ok(k);
    }
    let c = canonical(db);
    let (_, looked) = load(&c)?;
    if has_keyed_entries {
        return Err(KeyError::Missing { db: c, looked });
    }
    let key = StationKey::generate(max_audit_id);
    store_new(&c, &key)?;
    tracing::info!(db = %c.display(), legacy_until = max_audit_id, "station key created; the audit trail is keyed from here on");
    // Another process may have created it at the same moment: the stored one wins.
    let stored = get(db)?.ok_or(KeyError::Missing {
        db: c.clone(),
        looked,
    })?;
    Ok(stored)
}

/// Forget the keys loaded in this process (tests that swap key files).
pub fn forget(db: &Path) {
    let c = canonical(db);
    reg().keys.remove(&c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_records_round_trip_and_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("k.db");
        std::fs::write(&db, b"").expect("db");
        let k = ensure(&db, 7, false).expect("created");
        assert_eq!(k.legacy_until, 7);
        let file = beside(&db);
        assert!(file.is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Same key again (process cache and file).
        forget(&db);
        let again = ensure(&db, 99, false).expect("loaded");
        assert_eq!(*again, *k);
        assert_eq!(k.audit_mac(&["a"]), again.audit_mac(&["a"]));
        assert_ne!(k.audit_mac(&["a"]), k.audit_mac(&["b"]));
        assert_ne!(k.db_key_hex(), k.audit_mac(&["db"]));
        // The signing key is the same after reading the key back; signatures verify only
        // for their message and key.
        assert_eq!(k.public_key(), again.public_key());
        let sig = k.sign(b"state");
        assert!(verify_signature(&k.public_key(), b"state", &sig));
        assert!(!verify_signature(&k.public_key(), b"other", &sig));
        let stranger = StationKey::generate(0);
        assert!(!verify_signature(&stranger.public_key(), b"state", &sig));
        assert!(!format!("{k:?}").contains(&to_hex_secret(&k)));
        // A readable key file is refused, with the fix.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            forget(&db);
            let e = get(&db).expect_err("0644 refused").to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
        // A missing key for a keyed trail is refused.
        std::fs::remove_file(&file).expect("rm");
        forget(&db);
        let e = ensure(&db, 3, true).expect_err("missing").to_string();
        assert!(e.contains("missing"), "{e}");
    }

    fn to_hex_secret(k: &StationKey) -> String {
        crate::audit::to_hex(&k.secret)
    }

    #[test]
    fn a_configured_key_file_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("c.db");
        let kf = dir.path().join("etc-station.key");
        configure(&db, KeyStore::File(kf.clone()));
        let k = ensure(&db, 0, false).expect("created");
        assert!(kf.is_file() && !beside(&db).exists());
        forget(&db);
        assert_eq!(*get(&db).expect("read").expect("some"), *k);
    }
}
