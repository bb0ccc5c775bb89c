//! SQLite history: schema and migrations, the single batching writer, and read queries.
//!
//! One thread owns the write connection ([`StoreWriter`]); everything else sends it [`Op`]s. It
//! groups whatever is queued into one transaction (bounded by [`BATCH_MAX_OPS`] and
//! [`BATCH_MAX_DELAY`]), so ingest never waits on an fsync per message. WAL checkpoints run on
//! a second thread with its own connection (`checkpointer_loop`), so that copying pages into a
//! large database file never holds a commit (and the broker acknowledgements waiting for it).
//! Readers open their own connections (WAL lets them run beside the writer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::alarms::AlarmEvent;
use crate::telemetry::{DeviceStatus, Vitals, WaveChunk};

/// Most operations committed in one transaction.
pub const BATCH_MAX_OPS: usize = 4096;
/// Longest an operation waits in an open batch before the batch is committed. The writer
/// commits as soon as its queue is empty, so under light load a batch is what arrived while
/// the last one was written. The broker's acknowledgements wait for the commit: a longer wait
/// would fill brokers' in-flight windows (Mosquitto's default is 20 messages, the embedded
/// rumqttd's a fixed 100) and stop their deliveries, alarms included.
pub const BATCH_MAX_DELAY: Duration = Duration::from_millis(200);
/// How often the checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Log frames (pages) past which the checkpointer makes the log start over: after copying
/// beside the writer, it holds the writer between two transactions for one last small copy
/// (16 MiB at 4 KiB pages).
const RESTART_FRAMES: i64 = 4096;
/// Log frames past which a RESTART checkpoint waits for readers too (256 MiB at 4 KiB): only
/// when a reader keeps an old snapshot open for long.
const WAL_MAX_FRAMES: i64 = 65_536;
/// A commit slower than this is logged (a slow or failing disk).
const SLOW_COMMIT: Duration = Duration::from_secs(1);
/// Operations queued for the writer before senders wait (back-pressure instead of unbounded RAM).
const QUEUE_DEPTH: usize = 65_536;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot create directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store writer has stopped")]
    Closed,
    /// The data directory or a database file is readable by others (the message says the fix),
    /// or cannot be created.
    #[error(transparent)]
    Files(#[from] crate::secure_fs::PrepareError),
    /// The station key of the database cannot be read or created.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// Encryption is required but the database is still in plain text.
    #[error(
        "{path} is not encrypted but [storage] encrypt = true: migrate it first with \
         `vigilctl db encrypt --db {}` (stop the station while it runs)",
        path.display()
    )]
    NotEncrypted { path: PathBuf },
    /// This build's SQLite has no SQLCipher: encryption cannot be honoured.
    #[error("this build of Vigil has no SQLCipher: the encrypted database {0} cannot be opened")]
    NoCipher(PathBuf),
}

/// Give an encrypted database its key (SQLCipher raw key) before anything is read, and check
/// that SQLCipher is really there (plain SQLite ignores `PRAGMA key`).
fn apply_key(
    conn: &Connection,
    path: &Path,
    key: &crate::keys::StationKey,
) -> Result<(), StoreError> {
    let version: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .ok();
    if version.is_none_or(|v| v.is_empty()) {
        return Err(StoreError::NoCipher(path.to_path_buf()));
    }
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", key.db_key_hex()))?;
    Ok(())
}

/// The file starts with the plain SQLite header (an encrypted one starts with random bytes).
pub fn is_plaintext(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// Whether this build can encrypt databases (SQLCipher).
pub fn has_cipher() -> bool {
    Connection::open_in_memory()
        .ok()
        .and_then(|c| {
            c.query_row("PRAGMA cipher_version", [], |r| r.get::<_, String>(0))
                .ok()
        })
        .is_some_and(|v| !v.is_empty())
}

/// Key a freshly opened connection if its database is encrypted; refuse a plaintext one that
/// must be encrypted.
fn key_connection(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let key = match crate::keys::get(path)? {
        Some(k) => Some(k),
        None if crate::keys::encryption_required(path)
            && std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 =>
        {
            if !has_cipher() {
                return Err(StoreError::NoCipher(path.to_path_buf()));
            }
            Some(crate::keys::create_encrypted(path)?)
        }
        None => None,
    };
    match key {
        Some(k) if k.encrypted && is_plaintext(path) => Err(StoreError::NotEncrypted {
            // An interrupted migration: the record says encrypted, the file is not (yet).
            path: path.to_path_buf(),
        }),
        Some(k) if k.encrypted => apply_key(conn, path, &k),
        _ if crate::keys::encryption_required(path) => Err(StoreError::NotEncrypted {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Encrypt a plaintext database in place (the migration `vigilctl db encrypt` runs, station
/// stopped): its contents are exported into an encrypted copy (`sqlcipher_export`) keyed with
/// the database's station key, the key record is marked encrypted, and the copy replaces the
/// original. Returns false if it was encrypted already.
pub fn encrypt_in_place(path: &Path) -> Result<bool, StoreError> {
    if !has_cipher() {
        return Err(StoreError::NoCipher(path.to_path_buf()));
    }
    let was_required = crate::keys::encryption_required(path);
    crate::keys::require_encryption(path, false);
    if let Some(k) = crate::keys::get(path)? {
        if k.encrypted && is_plaintext(path) {
            // An interrupted migration: open it as the plaintext it still is, and redo it.
            let mut plain = (*k).clone();
            plain.encrypted = false;
            crate::keys::update(path, &plain)?;
        }
    }
    let opened = open(path);
    crate::keys::require_encryption(path, was_required);
    let conn = opened?;
    let key = crate::keys::get(path)?.ok_or_else(|| {
        StoreError::Key(crate::keys::KeyError::Missing {
            db: path.to_path_buf(),
            looked: "after opening".into(),
        })
    })?;
    if key.encrypted {
        return Ok(false);
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".encrypting");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    crate::secure_fs::write_private_new(&tmp, b"").map_err(|source| StoreError::Dir {
        path: tmp.clone(),
        source,
    })?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    conn.execute(
        &format!(
            "ATTACH DATABASE ?1 AS encrypted KEY \"x'{}'\"",
            key.db_key_hex()
        ),
        [tmp.to_string_lossy()],
    )?;
    conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    conn.execute_batch(&format!(
        "PRAGMA encrypted.user_version = {version}; DETACH DATABASE encrypted;"
    ))?;
    drop(conn);
    // The record first: should the rename not happen, opening says so (the file is still
    // plain) and running the migration again finishes it.
    let mut k = (*key).clone();
    k.encrypted = true;
    crate::keys::update(path, &k)?;
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::rename(&tmp, path).map_err(|source| StoreError::Dir {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(true)
}

/// Schema migrations, in order; the database's `user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/001_initial.sql"),
    include_str!("schema/002_ingest.sql"),
    include_str!("schema/003_auth_audit.sql"),
    include_str!("schema/004_alarms.sql"),
    include_str!("schema/005_bed_limits.sql"),
    include_str!("schema/006_patients.sql"),
    include_str!("schema/007_station_settings.sql"),
    include_str!("schema/008_patient_details.sql"),
    include_str!("schema/009_security.sql"),
    include_str!("schema/010_stations.sql"),
    include_str!("schema/011_remote_patients.sql"),
    include_str!("schema/012_remote_alerts.sql"),
    include_str!("schema/013_remote_review.sql"),
    include_str!("schema/014_remote_messages.sql"),
    include_str!("schema/015_doses.sql"),
    include_str!("schema/016_alarm_strips.sql"),
];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Open (creating if needed) a database file with Vigil's pragmas, migrated to the latest schema.
///
/// The data directory is created 0700 and the file 0600; looser modes are refused with the fix
/// in the message ([`crate::secure_fs`]). The database's station key is loaded, or created for
/// a database that has none ([`crate::keys::ensure`]): audit entries are keyed from then on.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    crate::secure_fs::prepare_db(path)?;
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    key_connection(&conn, path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    migrations().to_latest(&mut conn)?;
    let (max_id, keyed): (i64, bool) = conn.query_row(
        "SELECT COALESCE(MAX(id), 0), EXISTS(SELECT 1 FROM audit_log WHERE mac IS NOT NULL)
         FROM audit_log",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    crate::keys::ensure(path, max_id, keyed)?;
    Ok(conn)
}

/// Open an existing database read-only (queries, status). Its files must be private
/// ([`crate::secure_fs`]), as for [`open`].
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if path.exists() {
        crate::secure_fs::prepare_db(path)?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    key_connection(&conn, path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// What the writer is asked to do.
#[derive(Debug)]
pub enum Op {
    /// Readings, and when the station received them (its clock, ms): stored with each reading,
    /// so a care plan's slot can tell a buffered upload from a reading sent on time.
    Vitals(Arc<Vitals>, i64),
    Wave(Arc<WaveChunk>),
    Status(DeviceStatus),
    /// A dispenser's dose event, and when the station received it (its clock, ms).
    Dose(crate::dose::DoseEvent, i64),
    Alarm(AlarmEvent),
    /// Waveform chunks that never arrived.
    Gap(Gap),
    /// A chunk of a recorded gap arrived late after all: the gap no longer includes it.
    GapFill(crate::ingest::GapFill),
    /// Delete history older than the retention limits (ms since the epoch), in small steps.
    Prune {
        waves_before_ms: i64,
        trends_before_ms: i64,
    },
    /// A refused payload or observation, counted per reason.
    Reject {
        reason: &'static str,
        detail: String,
        t_ms: i64,
    },
    /// Commit everything queued before this, then answer.
    Flush(oneshot::Sender<()>),
    /// Commit everything queued before this and stop the writer (see [`StoreWriter::close`]).
    Close,
    /// Tests only: the writer panics, as a bug would make it.
    #[cfg(test)]
    Crash,
}

/// A run of missing waveform chunks of one device channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub bed: crate::telemetry::BedId,
    pub device: String,
    pub channel: &'static str,
    pub first_seq: u64,
    pub last_seq: u64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub detected_ms: i64,
}

/// Rows deleted per prune statement, so that pruning never holds the writer for long.
const PRUNE_STEP: i64 = 10_000;

/// Counters kept by the writer, readable while it runs.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub committed_ops: AtomicU64,
    pub transactions: AtomicU64,
    /// Rows not inserted because the same reading or chunk was already stored (QoS 1 redelivery).
    pub duplicates: AtomicU64,
    /// Transactions that failed; their operations are lost and logged.
    pub failures: AtomicU64,
    /// Rows deleted by retention.
    pub pruned: AtomicU64,
    /// The slowest commit so far, in milliseconds (a slow disk shows here first).
    pub slowest_commit_ms: AtomicU64,
    /// WAL checkpoints run by the checkpointer thread.
    pub checkpoints: AtomicU64,
    /// The slowest checkpoint so far, in milliseconds.
    pub slowest_checkpoint_ms: AtomicU64,
    /// The longest the checkpointer held the writer (between two transactions), in ms.
    pub slowest_hold_ms: AtomicU64,
    /// Pages written to the write-ahead log, as seen by the checkpointer (disk wear).
    pub wal_frames: AtomicU64,
    /// The last transaction failed for want of space or I/O and is being retried (disk full,
    /// volume gone): nothing is being committed. The engine raises a technical alarm on it.
    pub failing: AtomicBool,
    /// The writer thread has ended without being closed (a panic: a bug): nothing is written
    /// from then on. The engine raises the same technical alarm on it, at once.
    pub stopped: AtomicBool,
    /// Batches the writer has finished (committed, or dropped after a failure): its progress.
    /// The engine watches it against the queue: work waiting and no batch finished for
    /// [`STALL_MS`] is a writer that makes no progress (a hung disk).
    pub batches: AtomicU64,
}

/// How long the writer may go without finishing a batch while work waits for it before the
/// engine says it makes no progress (the slowest healthy commit seen under load is well under a
/// second; a checkpoint holds it for less).
pub const STALL_MS: u64 = 10_000;

/// How long the writer waits before it retries a transaction that failed for want of space.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// A failure that may go away by itself (disk full, I/O error, lock): the batch is kept and
/// retried. Anything else (a constraint, a bug) would fail again: that batch is dropped.
fn retryable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen
                | C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
        )
    )
}

/// Handle to the writer thread.
pub struct StoreWriter {
    tx: mpsc::Sender<Op>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WriterStats>,
}

impl StoreWriter {
    /// Open the database and start the writer thread (and its checkpointer).
    pub fn spawn(path: &Path) -> Result<StoreWriter, StoreError> {
        let mut conn = open(path)?;
        // Checkpoints are the checkpointer's job, never a committing transaction's.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the log starts over, cut a file that grew large back to this size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let ckpt_conn = open(path)?;
        ckpt_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(WriterStats::default());
        let st = Arc::clone(&stats);
        let thread_err = |source| StoreError::Dir {
            path: path.to_path_buf(),
            source,
        };
        let (stop_ckpt, ckpt_rx) = std::sync::mpsc::channel::<()>();
        let ckpt_stats = Arc::clone(&stats);
        // Held by the writer for each transaction, by the checkpointer for its last copy.
        let gate = Arc::new(Mutex::new(()));
        let ckpt_gate = Arc::clone(&gate);
        let checkpointer = std::thread::Builder::new()
            .name("vigil-checkpoint".into())
            .spawn(move || checkpointer_loop(ckpt_conn, &ckpt_gate, ckpt_rx, &ckpt_stats))
            .map_err(thread_err)?;
        let thread = std::thread::Builder::new()
            .name("vigil-store".into())
            .spawn(move || {
                // A panic (a bug) must not end the writer silently: it is said, and the engine
                // raises STORE_FAILED on `stopped`.
                let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    writer_loop(&mut conn, &gate, rx, &st)
                }));
                if !matches!(ended, Ok(true)) {
                    st.stopped.store(true, Ordering::SeqCst);
                    tracing::error!(
                        "STORE FAILED: the store writer stopped; history is not being recorded"
                    );
                }
                // Stop the checkpointer first: closing the last connection checkpoints the
                // whole log and removes it.
                drop(stop_ckpt);
                if checkpointer.join().is_err() {
                    tracing::error!("checkpointer thread panicked");
                }
                drop(conn);
                tracing::debug!("store writer stopped");
            })
            .map_err(thread_err)?;
        Ok(StoreWriter {
            tx,
            thread: Some(thread),
            stats,
        })
    }

    /// A cloneable sender for producers.
    pub fn sender(&self) -> mpsc::Sender<Op> {
        self.tx.clone()
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// Wait until everything sent before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Op::Flush(ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)
    }

    /// Commit what is queued and stop the thread. Blocking: call it off the async runtime
    /// (e.g. in `spawn_blocking`). Senders still held elsewhere get an error afterwards.
    pub fn close(mut self) {
        let StoreWriter { tx, thread, .. } = &mut self;
        if tx.blocking_send(Op::Close).is_err() {
            tracing::debug!("store writer already stopped");
        }
        if let Some(t) = thread.take() {
            if t.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

/// The writer: batches of operations, each in one transaction. Returns whether it was closed
/// (`Op::Close`), rather than left by every sender.
fn writer_loop(
    conn: &mut Connection,
    gate: &Mutex<()>,
    mut rx: mpsc::Receiver<Op>,
    stats: &WriterStats,
) -> bool {
    let mut batch: Vec<Op> = Vec::with_capacity(BATCH_MAX_OPS);
    let mut closing = false;
    while let Some(first) = rx.blocking_recv() {
        match first {
            Op::Close => closing = true,
            #[cfg(test)]
            Op::Crash => panic!("the store writer killed by a test"),
            op => batch.push(op),
        }
        let deadline = Instant::now() + BATCH_MAX_DELAY;
        // Take whatever else is already queued, up to the batch limits.
        while !closing && batch.len() < BATCH_MAX_OPS && Instant::now() < deadline {
            match rx.try_recv() {
                Ok(Op::Close) => closing = true,
                #[cfg(test)]
                Ok(Op::Crash) => panic!("the store writer killed by a test"),
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        // Commit, retrying while the failure is one that can go away (disk full): the batch
        // stays in memory and later operations queue (bounded) behind it.
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let written = {
                let _gate = gate.lock().unwrap_or_else(|e| e.into_inner());
                write_batch(conn, &batch, stats)
            };
            match written {
                Ok(()) => {
                    let took = started.elapsed();
                    let ms = took.as_millis() as u64;
                    if stats.slowest_commit_ms.fetch_max(ms, Ordering::Relaxed) < ms
                        && took >= SLOW_COMMIT
                    {
                        tracing::warn!(ms, ops = n, "slow database commit (slowest so far)");
                    }
                    stats.committed_ops.fetch_add(n, Ordering::Relaxed);
                    stats.transactions.fetch_add(1, Ordering::Relaxed);
                    if stats.failing.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            ops = n,
                            attempts = attempt + 1,
                            "store writes again: the held batch is committed"
                        );
                    }
                    break;
                }
                Err(e) if retryable(&e) && !(closing && attempt >= 2) => {
                    if !stats.failing.swap(true, Ordering::Relaxed) || attempt % 60 == 0 {
                        tracing::error!(
                            error = %e, ops = n,
                            "STORE FAILED: cannot write the database (disk full?); \
                             holding the batch and retrying"
                        );
                    }
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    std::thread::sleep(RETRY_DELAY);
                }
                Err(e) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, ops = n, "store transaction failed; batch lost");
                    break;
                }
            }
        }
        for op in batch.drain(..) {
            if let Op::Flush(ack) = op {
                let _ = ack.send(());
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        if closing {
            return true;
        }
    }
    false
}

/// Copy the write-ahead log into the database file beside the writer, every
/// [`CHECKPOINT_EVERY`]. A PASSIVE checkpoint neither waits for the writer nor makes it wait,
/// but while the writer keeps committing it never copies the whole log, and the log only
/// starts over when the writer begins a transaction with all of it copied. So once the log is
/// past [`RESTART_FRAMES`], the bulk is copied beside the writer and the last few commits'
/// worth with the writer held between two transactions (`gate`): the writer's next
/// transaction starts the log over. Should a reader keep an old snapshot and the log still
/// grow past [`WAL_MAX_FRAMES`], one RESTART checkpoint waits for it. Stops when `stop` is
/// dropped.
fn checkpointer_loop(
    conn: Connection,
    gate: &Mutex<()>,
    stop: std::sync::mpsc::Receiver<()>,
    stats: &WriterStats,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut failing = false;
    // Frames in the log at the last look: the log grew by the difference, or started over.
    let mut seen: i64 = 0;
    let mut count = |log: i64| {
        let grown = if log >= seen { log - seen } else { log };
        stats
            .wal_frames
            .fetch_add(grown.max(0) as u64, Ordering::Relaxed);
        seen = log;
    };
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let started = Instant::now();
        let result = (|| -> Result<(), rusqlite::Error> {
            let (log, _) = checkpoint(&conn, "PASSIVE")?;
            count(log);
            if log > WAL_MAX_FRAMES {
                tracing::warn!(frames = log, "write-ahead log large; restarting it");
                checkpoint(&conn, "RESTART")?;
            } else if log > RESTART_FRAMES {
                // What was committed during the bulk copy, still beside the writer ...
                checkpoint(&conn, "PASSIVE")?;
                // ... and the rest between two of its transactions.
                let held = Instant::now();
                let _gate = gate.lock().unwrap_or_else(|e| e.into_inner());
                let (log, _) = checkpoint(&conn, "PASSIVE")?;
                count(log);
                let ms = held.elapsed().as_millis() as u64;
                stats.slowest_hold_ms.fetch_max(ms, Ordering::Relaxed);
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                failing = false;
                stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                let ms = started.elapsed().as_millis() as u64;
                stats.slowest_checkpoint_ms.fetch_max(ms, Ordering::Relaxed);
            }
            // A full disk fails the writer too (and raises STORE_FAILED there); say it once.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "checkpoint failed; retrying");
            }
            Err(_) => {}
        }
    }
}

/// One `PRAGMA wal_checkpoint(mode)`: (frames in the log, frames copied).
fn checkpoint(conn: &Connection, mode: &str) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

fn write_batch(
    conn: &mut Connection,
    batch: &[Op],
    stats: &WriterStats,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    let mut dups = 0u64;
    {
        let mut ins_num = tx.prepare_cached(
            "INSERT OR IGNORE INTO numerics
               (ward, bed, device, t_ms, mdc, code, value, unit, status, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut ins_gap = tx.prepare_cached(
            "INSERT INTO gaps (ward, bed, device, channel, first_seq, last_seq, from_ms, to_ms, detected_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut ins_wave = tx.prepare_cached(
            "INSERT OR IGNORE INTO wave_chunks
               (ward, bed, device, channel, mdc, unit, t0_ms, rate, seq, origin, factor, n, enc, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut upsert_dev = tx.prepare_cached(
            "INSERT INTO devices (device, ward, bed, online, conditions, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(device) DO UPDATE SET ward = excluded.ward, bed = excluded.bed,
               online = excluded.online, conditions = excluded.conditions,
               updated_ms = excluded.updated_ms",
        )?;
        let mut ins_dose = tx.prepare_cached(
            "INSERT OR IGNORE INTO doses (ward, bed, device, medication, event, t_ms, due_ms,
               received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut ins_alarm = tx.prepare_cached(
            "INSERT INTO alarm_events (t_ms, ward, bed, alarm_id, code, kind, priority, value,
               limit_value, message, user_name, state, level, audible)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut upsert_reject = tx.prepare_cached(
            "INSERT INTO rejects (reason, count, last_ms, last_detail) VALUES (?1, 1, ?2, ?3)
             ON CONFLICT(reason) DO UPDATE SET count = count + 1, last_ms = excluded.last_ms,
               last_detail = excluded.last_detail",
        )?;
        for op in batch {
            match op {
                Op::Vitals(v, received_ms) => {
                    // Late readings are history like the others: stored the same way.
                    for r in v.readings.iter().chain(&v.late) {
                        let info = r.vital.info();
                        let n = ins_num.execute(params![
                            v.bed.ward,
                            v.bed.bed,
                            v.device,
                            r.t_ms,
                            info.mdc,
                            info.name,
                            r.value,
                            info.unit,
                            r.status.as_str(),
                            received_ms
                        ])?;
                        dups += u64::from(n == 0);
                    }
                }
                Op::Wave(w) => {
                    let (enc, blob) = crate::codec::encode(&w.data);
                    let n = ins_wave.execute(params![
                        w.bed.ward,
                        w.bed.bed,
                        w.device,
                        w.channel.name,
                        w.channel.mdc,
                        w.unit,
                        w.t0_ms,
                        w.rate,
                        w.seq as i64,
                        w.origin,
                        w.factor,
                        w.data.len() as i64,
                        enc,
                        blob
                    ])?;
                    dups += u64::from(n == 0);
                }
                Op::Status(s) => {
                    upsert_dev.execute(params![
                        s.device,
                        s.bed.ward,
                        s.bed.bed,
                        s.online,
                        s.conditions.join(","),
                        s.t_ms.unwrap_or_else(now_ms)
                    ])?;
                }
                Op::Dose(d, received_ms) => {
                    let n = ins_dose.execute(params![
                        d.bed.ward,
                        d.bed.bed,
                        d.device,
                        d.medication,
                        d.kind.as_str(),
                        d.t_ms,
                        d.due_ms,
                        received_ms
                    ])?;
                    dups += u64::from(n == 0);
                }
                Op::Alarm(a) => {
                    ins_alarm.execute(params![
                        a.t_ms,
                        a.bed.ward,
                        a.bed.bed,
                        a.alarm_id,
                        a.code,
                        a.kind.as_str(),
                        a.priority.as_str(),
                        a.value,
                        a.limit,
                        a.message,
                        a.user,
                        a.state.as_str(),
                        a.level,
                        a.audible
                    ])?;
                }
                Op::GapFill(f) => fill_gap(&tx, &mut ins_gap, f)?,
                Op::Gap(g) => {
                    ins_gap.execute(params![
                        g.bed.ward,
                        g.bed.bed,
                        g.device,
                        g.channel,
                        g.first_seq as i64,
                        g.last_seq as i64,
                        g.from_ms,
                        g.to_ms,
                        g.detected_ms
                    ])?;
                }
                &Op::Prune {
                    waves_before_ms,
                    trends_before_ms,
                } => {
                    let mut n = tx.execute(
                        "DELETE FROM wave_chunks WHERE id IN
                           (SELECT id FROM wave_chunks WHERE t0_ms < ?1 LIMIT ?2)",
                        params![waves_before_ms, PRUNE_STEP],
                    )?;
                    n += tx.execute(
                        "DELETE FROM gaps WHERE id IN
                           (SELECT id FROM gaps WHERE to_ms < ?1 LIMIT ?2)",
                        params![waves_before_ms, PRUNE_STEP],
                    )?;
                    n += tx.execute(
                        "DELETE FROM numerics WHERE id IN
                           (SELECT id FROM numerics WHERE t_ms < ?1 LIMIT ?2)",
                        params![trends_before_ms, PRUNE_STEP],
                    )?;
                    // Dose history is kept as long as the trends.
                    n += tx.execute(
                        "DELETE FROM doses WHERE id IN
                           (SELECT id FROM doses WHERE t_ms < ?1 LIMIT ?2)",
                        params![trends_before_ms, PRUNE_STEP],
                    )?;
                    stats.pruned.fetch_add(n as u64, Ordering::Relaxed);
                }
                &Op::Reject {
                    reason,
                    ref detail,
                    t_ms,
                } => {
                    upsert_reject.execute(params![reason, t_ms, detail])?;
                }
                // Answered by the writer loop once the batch is committed.
                Op::Flush(_) => {}
                // Handled by the writer loop before a batch is written.
                Op::Close => {}
                #[cfg(test)]
                Op::Crash => {}
            }
        }
    }
    tx.commit()?;
    stats.duplicates.fetch_add(dups, Ordering::Relaxed);
    Ok(())
}

/// Take a late chunk out of the recorded gap that holds it: the gap is shortened, split in two
/// around the chunk, or removed. A gap not recorded (pruned, another database) is left alone.
fn fill_gap(
    tx: &Connection,
    ins_gap: &mut rusqlite::CachedStatement<'_>,
    f: &crate::ingest::GapFill,
) -> Result<(), rusqlite::Error> {
    use rusqlite::OptionalExtension;
    let seq = f.seq as i64;
    let row = tx
        .query_row(
            "SELECT id, first_seq, last_seq, from_ms, to_ms, detected_ms FROM gaps
             WHERE ward = ?1 AND bed = ?2 AND channel = ?3 AND device = ?4
               AND first_seq <= ?5 AND last_seq >= ?5
             ORDER BY id DESC LIMIT 1",
            params![f.bed.ward, f.bed.bed, f.channel, f.device, seq],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((id, first, last, from_ms, to_ms, detected_ms)) = row else {
        return Ok(());
    };
    tx.execute("DELETE FROM gaps WHERE id = ?1", [id])?;
    let parts = [
        (first < seq).then(|| (first, seq - 1, from_ms, f.t0_ms)),
        (seq < last).then(|| (seq + 1, last, f.end_ms, to_ms)),
    ];
    for (a, b, from, to) in parts.into_iter().flatten() {
        ins_gap.execute(params![
            f.bed.ward,
            f.bed.bed,
            f.device,
            f.channel,
            a,
            b,
            from,
            to,
            detected_ms
        ])?;
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Run `f` in one transaction: committed if `f` succeeds, rolled back otherwise. On a connection
/// outside any transaction it is a `BEGIN IMMEDIATE` one (no other connection can write between
/// what `f` reads and what it writes: an audit entry appended inside reads the chain's head);
/// inside the caller's transaction it is a savepoint, so that `f`'s writes are undone if `f`
/// fails and otherwise commit (or roll back) with the caller's.
pub fn in_tx<T, E: From<rusqlite::Error>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let (begin, commit, rollback) = if conn.is_autocommit() {
        ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
    } else {
        (
            "SAVEPOINT in_tx",
            "RELEASE in_tx",
            "ROLLBACK TO in_tx; RELEASE in_tx",
        )
    };
    conn.execute_batch(begin)?;
    let done = f(conn).and_then(|v| conn.execute_batch(commit).map(|()| v).map_err(E::from));
    if done.is_err() {
        let _ = conn.execute_batch(rollback);
    }
    done
}

/// What a database holds, per bed and stream.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// (bed key, channel) → samples stored.
    pub samples: BTreeMap<(String, String), u64>,
    /// (bed key, channel) → chunks stored.
    pub chunks: BTreeMap<(String, String), u64>,
    /// (bed key, vital name) → readings stored (including "no reading" rows).
    pub readings: BTreeMap<(String, String), u64>,
    /// reason → count.
    pub rejects: BTreeMap<String, u64>,
    /// Every alarm event, in the order written.
    pub alarms: Vec<crate::query::AlarmRow>,
}

impl Summary {
    /// The counts of [`crate::query::status`] (the one reading of what a database holds),
    /// keyed for checks, and every alarm event in the order written.
    pub fn read(conn: &Connection) -> Result<Summary, StoreError> {
        let status = crate::query::status(conn)?;
        let mut s = Summary {
            rejects: status.rejects,
            ..Summary::default()
        };
        for (bed, streams) in status.beds {
            for (stream, counts) in streams {
                if let Some(code) = stream.strip_prefix(crate::query::NUMERICS_PREFIX) {
                    s.readings
                        .insert((bed.clone(), code.to_string()), counts.samples);
                } else if counts.chunks > 0 {
                    // A stream with recorded gaps but no chunk stored holds no samples.
                    s.samples
                        .insert((bed.clone(), stream.clone()), counts.samples);
                    s.chunks.insert((bed.clone(), stream), counts.chunks);
                }
            }
        }
        s.alarms = crate::query::alarms_as_written(conn)?;
        Ok(s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alarms::{AlarmEventKind, AlarmState, Priority};
    use crate::codes::{self, Vital};
    use crate::telemetry::{BedId, Reading};

    /// The single number that `sql` (a `SELECT COUNT(*) …`) returns.
    pub(crate) fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn vitals(seq: u64, t_ms: i64, hr: Option<f64>) -> Vitals {
        Vitals {
            bed: BedId::new("4W", "01"),
            device: "mon-1".into(),
            seq,
            readings: vec![Reading::new(Vital::Hr, hr, t_ms)],
            rejected: vec![],
            late: vec![],
        }
    }

    fn chunk(seq: u64, t0_ms: i64, data: Vec<i32>) -> WaveChunk {
        WaveChunk {
            bed: BedId::new("4W", "01"),
            device: "mon-1".into(),
            channel: codes::channel("ECG_II").expect("known channel"),
            unit: "mV",
            t0_ms,
            rate: 500.0,
            seq,
            origin: 0.0,
            factor: 0.005,
            data,
        }
    }

    #[test]
    fn prune_removes_only_old_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.db");
        let mut conn = open(&path).expect("open");
        let stats = WriterStats::default();
        let mut batch: Vec<Op> = (0..10)
            .flat_map(|i| {
                [
                    Op::Vitals(
                        Arc::new(vitals(i, i as i64 * 1000, Some(60.0))),
                        i as i64 * 1000,
                    ),
                    Op::Wave(Arc::new(chunk(i, i as i64 * 1000, vec![1, 2, 3]))),
                ]
            })
            .collect();
        batch.push(Op::Prune {
            waves_before_ms: 5000,
            trends_before_ms: 2000,
        });
        write_batch(&mut conn, &batch, &stats).expect("batch");
        let s = Summary::read(&conn).expect("summary");
        let key = ("4W/01".to_string(), "ECG_II".to_string());
        assert_eq!(s.chunks.get(&key), Some(&5), "chunks from 5 s on kept");
        assert_eq!(s.readings.get(&("4W/01".into(), "HR".into())), Some(&8));
        assert_eq!(stats.pruned.load(Ordering::Relaxed), 7);
    }

    /// The writer never checkpoints; the checkpointer copies the log into the database file
    /// beside it, so that the writer's next transaction starts the log over (it does not grow
    /// with the database).
    #[tokio::test]
    async fn checkpointer_copies_the_log_and_it_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let wal = dir.path().join("vigil.db-wal");
        let w = StoreWriter::spawn(&path).expect("spawn");
        let tx = w.sender();
        let stats = w.stats();
        // Noise, so that the chunks do not compress to nothing.
        let mut x: u32 = 12345;
        let mut noise = move || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 12) as i32
        };
        let mut round = |from: u64| {
            (from..from + 1500)
                .map(|i| {
                    let data = (0..125).map(|_| noise()).collect();
                    Op::Wave(Arc::new(chunk(i, 1000 + i as i64 * 250, data)))
                })
                .collect::<Vec<_>>()
        };
        let wait_checkpoints = |n: u64| {
            let stats = Arc::clone(&stats);
            async move {
                let target = stats.checkpoints.load(Ordering::Relaxed) + n;
                let deadline = Instant::now() + Duration::from_secs(20);
                while stats.checkpoints.load(Ordering::Relaxed) < target {
                    assert!(Instant::now() < deadline, "no checkpoint within 20 s");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let db_size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

        let before = db_size();
        for op in round(0) {
            tx.send(op).await.expect("send");
        }
        w.flush().await.expect("flush");
        let wal_after_first = wal_size();
        assert!(wal_after_first > 500_000, "the log holds the first round");
        // Two rounds of the checkpointer: the second started after the flush.
        wait_checkpoints(2).await;
        assert!(
            db_size() > before + 500_000,
            "the checkpointer copied the log into the database file"
        );
        for op in round(1500) {
            tx.send(op).await.expect("send");
        }
        w.flush().await.expect("flush");
        // Started over: the second round overwrote the first instead of being appended.
        assert!(
            wal_size() < wal_after_first * 3 / 2,
            "log {} after the second round, {wal_after_first} after the first",
            wal_size()
        );
        assert_eq!(stats.failures.load(Ordering::Relaxed), 0);
        drop(tx);
        tokio::task::spawn_blocking(move || w.close())
            .await
            .expect("close");
        assert!(!wal.exists(), "the log is removed on a clean close");
        let conn = open_read_only(&path).expect("reopen");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM wave_chunks"), 3000);
    }

    #[tokio::test]
    async fn writer_stores_batches_and_drops_redeliveries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/vigil.db");
        let w = StoreWriter::spawn(&path).expect("spawn");
        let tx = w.sender();
        for i in 0..10 {
            tx.send(Op::Vitals(
                Arc::new(vitals(i, 1000 + i as i64 * 1000, Some(70.0))),
                1050 + i as i64 * 1000,
            ))
            .await
            .expect("send");
            tx.send(Op::Wave(Arc::new(chunk(
                i,
                1000 + i as i64 * 250,
                vec![1; 125],
            ))))
            .await
            .expect("send");
        }
        // QoS 1 redelivery of the same reading and chunk, and a "no reading".
        tx.send(Op::Vitals(Arc::new(vitals(3, 4000, Some(70.0))), 99_000))
            .await
            .expect("send");
        tx.send(Op::Wave(Arc::new(chunk(3, 1750, vec![1; 125]))))
            .await
            .expect("send");
        tx.send(Op::Vitals(Arc::new(vitals(10, 11_000, None)), 11_050))
            .await
            .expect("send");
        tx.send(Op::Alarm(AlarmEvent {
            t_ms: 5000,
            bed: BedId::new("4W", "01"),
            alarm_id: "4W/01/HR_HIGH".into(),
            code: "HR_HIGH".into(),
            kind: AlarmEventKind::Raise,
            priority: Priority::Medium,
            value: Some(131.0),
            limit: Some(120.0),
            message: "HR HIGH 131 > 120".into(),
            user: None,
            station: None,
            state: AlarmState::Active,
            level: 0,
            audible: true,
        }))
        .await
        .expect("send");
        for (detail, t_ms) in [("x", 1), ("y", 2)] {
            tx.send(Op::Reject {
                reason: "malformed",
                detail: detail.into(),
                t_ms,
            })
            .await
            .expect("send");
        }
        w.flush().await.expect("flush");
        let stats = w.stats();
        assert_eq!(stats.duplicates.load(Ordering::Relaxed), 2);
        drop(tx);
        tokio::task::spawn_blocking(move || w.close())
            .await
            .expect("close");

        let conn = open_read_only(&path).expect("reopen");
        let s = Summary::read(&conn).expect("summary");
        let key = ("4W/01".to_string(), "ECG_II".to_string());
        assert_eq!(s.samples.get(&key), Some(&1250));
        assert_eq!(s.chunks.get(&key), Some(&10));
        assert_eq!(s.readings.get(&("4W/01".into(), "HR".into())), Some(&11));
        assert_eq!(s.rejects.get("malformed"), Some(&2));
        assert_eq!(s.alarms.len(), 1);
        assert_eq!(s.alarms[0].priority, "medium");
        let null_rows = count(&conn, "SELECT COUNT(*) FROM numerics WHERE value IS NULL");
        assert_eq!(null_rows, 1, "no reading is stored as NULL, never 0");
        let received = count(&conn, "SELECT received_ms FROM numerics WHERE t_ms = 4000");
        assert_eq!(
            received, 4050,
            "a redelivery keeps when the reading was first received"
        );
        let (enc, blob): (String, Vec<u8>) = conn
            .query_row("SELECT enc, data FROM wave_chunks WHERE seq = 2", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("chunk");
        assert_eq!(crate::codec::decode(&enc, &blob, 125), Ok(vec![1; 125]));
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.db");
        {
            let conn = open(&path).expect("open");
            conn.execute(
                "INSERT INTO numerics (ward, bed, device, t_ms, mdc, code, value, unit)
                 VALUES ('w','b','d',1,147842,'HR',60,'/min')",
                [],
            )
            .expect("insert");
        }
        let conn = open(&path).expect("reopen");
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM numerics"), 1);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(v as usize, MIGRATIONS.len());
    }

    /// A secret that must not be readable in the file: a patient name in the audit trail.
    const SECRET: &str = "Jane Q. Sensitive-Doe";

    fn contains(path: &Path, needle: &str) -> bool {
        let bytes = std::fs::read(path).expect("read");
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn an_encrypted_database_reads_back_and_hides_its_contents() {
        assert!(
            has_cipher(),
            "this build must have SQLCipher (rusqlite bundled-sqlcipher)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("enc.db");
        crate::keys::require_encryption(&db, true);
        {
            let conn = open(&db).expect("open");
            crate::audit::Audit::append(&conn, "ada", "note", "", SECRET, 1).expect("append");
            conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
                .expect("checkpoint");
        }
        assert!(!is_plaintext(&db), "no SQLite header in the clear");
        assert!(!contains(&db, SECRET), "the text is not in the file");
        // Vigil reads it back with the station key ...
        let conn = open(&db).expect("reopen");
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE detail = ?1",
                [SECRET],
                |r| r.get(0),
            )
            .expect("read");
        assert_eq!(n, 1);
        assert!(crate::audit::Audit::verify(&conn)
            .expect("verify")
            .is_intact());
        // ... and without it the file is not a database.
        let raw = Connection::open(&db).expect("raw open");
        assert!(raw
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r
                .get::<_, i64>(0))
            .is_err());
        crate::keys::require_encryption(&db, false);
    }

    #[test]
    fn a_plaintext_database_is_refused_then_migrated_with_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("plain.db");
        {
            let conn = open(&db).expect("open");
            crate::audit::Audit::append(&conn, "ada", "note", "", SECRET, 1).expect("append");
        }
        assert!(contains(&db, SECRET) || contains(&wal_of(&db), SECRET));
        crate::keys::require_encryption(&db, true);
        let e = open(&db).expect_err("refused").to_string();
        assert!(e.contains("vigilctl db encrypt"), "{e}");
        assert!(encrypt_in_place(&db).expect("migrate"));
        assert!(!encrypt_in_place(&db).expect("again"), "once is enough");
        assert!(!is_plaintext(&db) && !contains(&db, SECRET));
        let conn = open(&db).expect("open encrypted");
        let (n, version): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM audit_log WHERE detail = ?1),
                        (SELECT user_version FROM pragma_user_version)",
                [SECRET],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("read");
        assert_eq!((n, version), (1, MIGRATIONS.len() as i64));
        assert!(crate::audit::Audit::verify(&conn)
            .expect("verify")
            .is_intact());
        crate::keys::require_encryption(&db, false);
    }

    #[test]
    fn in_tx_commits_or_rolls_back_and_nests_as_a_savepoint() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch("CREATE TABLE t (v INTEGER)")
            .expect("table");
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .expect("count")
        };
        let put = |c: &Connection, v: i64| c.execute("INSERT INTO t VALUES (?1)", [v]).map(drop);
        in_tx(&conn, |c| put(c, 1)).expect("committed");
        let failed: Result<(), rusqlite::Error> = in_tx(&conn, |c| {
            put(c, 2)?;
            Err(rusqlite::Error::InvalidQuery)
        });
        assert!(failed.is_err());
        assert_eq!(count(&conn), 1, "rolled back");
        // Inside a transaction: the inner failure is undone, the outer work commits.
        in_tx(&conn, |c| {
            put(c, 3)?;
            let inner: Result<(), rusqlite::Error> = in_tx(c, |c| {
                put(c, 4)?;
                Err(rusqlite::Error::InvalidQuery)
            });
            assert!(inner.is_err());
            in_tx(c, |c| put(c, 5))
        })
        .expect("outer committed");
        assert!(conn.is_autocommit());
        let got: Vec<i64> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .expect("query")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("values");
        assert_eq!(got, [1, 3, 5]);
    }

    fn wal_of(db: &Path) -> PathBuf {
        let mut p = db.as_os_str().to_os_string();
        p.push("-wal");
        PathBuf::from(p)
    }
}
