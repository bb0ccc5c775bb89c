//! File modes of what the station keeps on disk: the data directory is 0700; the database, its
//! write-ahead log and shared-memory index, the configuration file and key files are 0600 (or
//! stricter). Vigil creates them that way and refuses to start on looser modes, saying the
//! command that fixes them. The database holds password hashes, patient names and MRNs.
//!
//! Two levels: every opening of a database ([`prepare_db`], through `store::open`) refuses
//! database files others can read and a directory others can write (they could replace the
//! files); the station and `vigilctl record`, which keep a data directory for good, also refuse
//! one that others can list ([`require_private_dir`]: 0700).
//!
//! On systems without Unix modes (Windows) nothing is checked here: the installer's ACLs apply.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A file or directory that other users could read or write.
#[derive(Debug, Error)]
#[error(
    "{what} {path} has mode {mode:04o}: other users could read it (it holds password hashes and \
     patient data). Fix: {fix}"
)]
pub struct ModeError {
    pub what: &'static str,
    pub path: PathBuf,
    pub mode: u32,
    /// The command that fixes it, e.g. `chmod 600 /var/lib/vigil/vigil.db`.
    pub fix: String,
}

#[cfg(unix)]
fn mode_of(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `path` (a file) must not be readable or writable by group or others.
pub fn check_private_file(path: &Path) -> Result<(), ModeError> {
    check(path, "file", "600")
}

/// The station's data directory: 0700, nobody else may even list it.
pub fn require_private_dir(dir: &Path) -> Result<(), ModeError> {
    check(dir, "data directory", "700")
}

#[cfg(unix)]
fn check(path: &Path, what: &'static str, fix_mode: &str) -> Result<(), ModeError> {
    check_bits(path, what, fix_mode, 0o077)
}

#[cfg(not(unix))]
fn check(_path: &Path, _what: &'static str, _fix_mode: &str) -> Result<(), ModeError> {
    Ok(())
}

#[cfg(unix)]
fn check_bits(path: &Path, what: &'static str, fix_mode: &str, bits: u32) -> Result<(), ModeError> {
    match mode_of(path) {
        Ok(mode) if mode & bits != 0 => Err(ModeError {
            what,
            path: path.to_path_buf(),
            mode,
            fix: format!("chmod {fix_mode} {}", shell_quote(path)),
        }),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn check_bits(_: &Path, _: &'static str, _: &str, _: u32) -> Result<(), ModeError> {
    Ok(())
}

/// The directory of a database: created 0700 if missing, else nobody but its owner may write it
/// (no group or other write bit, sticky or not): they could delete or replace the files.
pub fn prepare_dir(dir: &Path) -> Result<(), PrepareError> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(|source| PrepareError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(check_bits(dir, "data directory", "700", 0o022)?)
}

/// The database file and, when present, its `-wal`, `-shm` and `-journal` files: a missing
/// database is created empty with mode 0600 (SQLite gives its log files the database's mode);
/// existing ones must be 0600 or stricter. The directory is prepared first ([`prepare_dir`]).
pub fn prepare_db(db: &Path) -> Result<(), PrepareError> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    prepare_dir(&dir)?;
    if !db.exists() {
        if let Err(source) = create_private(db) {
            if source.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(PrepareError::Create {
                    path: db.to_path_buf(),
                    source,
                });
            }
        }
    }
    check(db, "database", "600")?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        let p = PathBuf::from(name);
        if p.exists() {
            check(&p, "database file", "600")?;
        }
    }
    Ok(())
}

/// Why a data file could not be made ready.
#[derive(Debug, Error)]
pub enum PrepareError {
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Mode(#[from] ModeError),
}

/// A new file with mode 0600, open for writing (fails if it exists).
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Write a new file with mode 0600 (fails if it exists).
pub fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = create_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replace `path` atomically with `bytes`, mode 0600 (through `path.new`).
pub fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    write_private_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        mode_of(p).expect("mode") & 0o777
    }

    #[test]
    fn created_private_and_loose_modes_refused_with_the_fix() {
        let top = tempfile::tempdir().expect("tempdir");
        let data = top.path().join("data dir");
        let db = data.join("vigil.db");
        prepare_db(&db).expect("created");
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&db), 0o600);
        prepare_db(&db).expect("still fine");

        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = prepare_db(&db).expect_err("0644 refused").to_string();
        assert!(
            e.contains("mode 0644") && e.contains(&format!("chmod 600 '{}'", db.display())),
            "{e}"
        );
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod");

        let wal = data.join("vigil.db-wal");
        std::fs::write(&wal, b"").expect("wal");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = prepare_db(&db).expect_err("wal refused").to_string();
        assert!(e.contains("vigil.db-wal") && e.contains("chmod 600"), "{e}");
        std::fs::remove_file(&wal).expect("rm");

        // A directory others can write is refused when opening; one they can list only by the
        // station (require_private_dir).
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        let e = prepare_db(&db).expect_err("dir refused").to_string();
        assert!(
            e.contains("data directory") && e.contains("chmod 700"),
            "{e}"
        );
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        prepare_db(&db).expect("listable is opened");
        let e = require_private_dir(&data)
            .expect_err("not for the station")
            .to_string();
        assert!(e.contains("mode 0755") && e.contains("chmod 700"), "{e}");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        require_private_dir(&data).expect("private");
    }

    #[test]
    fn private_writes() {
        let top = tempfile::tempdir().expect("tempdir");
        let f = top.path().join("vigil.toml");
        replace_private(&f, b"a = 1\n").expect("write");
        assert_eq!(mode(&f), 0o600);
        replace_private(&f, b"a = 2\n").expect("rewrite");
        assert_eq!(std::fs::read_to_string(&f).expect("read"), "a = 2\n");
        assert!(write_private_new(&f, b"x").is_err(), "never overwrites");
    }
}
