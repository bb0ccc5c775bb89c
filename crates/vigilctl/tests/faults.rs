//! Faults under load, each against real parts (Mosquitto, `vigilctl record` and `vigilctl sim`
//! as processes, SQLite files): the engine killed with SIGKILL and restarted, a 30 s broker
//! outage, the database volume full (a tmpfs), a flood of malformed payloads beside normal
//! traffic, and device clocks far from the station's. Each test is bounded in time and asserts
//! what was stored, what was counted and what was raised. `docs/operations.md` is the table of
//! what happens when; BENCHMARKS.md has the figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_core::store::Summary;
use vigil_core::telemetry::{BedId, Topic};

use crate::support;
use support::*;

/// Wait (`within` at most) for `sim` to end with every publish acknowledged; returns what it
/// published.
fn published_by(sim: &mut Proc, within: Duration, summary: &Path) -> Published {
    sim.succeeds(within, "(every publish acknowledged)");
    Published::read(summary)
}

/// Wait (`within` at most, failing with `what`) until `db` holds everything `p` says was
/// published and `more` holds; then `record` must stop cleanly, and the database hold exactly
/// what was published on the beds of `ward` (no loss, no duplicates, no other stream).
fn stored_exactly(
    rec: &mut Proc,
    db: &Path,
    p: &Published,
    ward: &str,
    what: &str,
    within: Duration,
    more: impl Fn(&Summary) -> bool,
) {
    wait_until(what, within, || {
        let s = summary(db);
        p.all_in(&s) && more(&s)
    });
    rec.stops_cleanly();
    let s = summary(db);
    p.assert_stored(&s);
    p.assert_nothing_extra(&s, ward);
}

/// What [`stored_exactly`] waits for once the simulator has ended.
const ALL_STORED: &str = "everything published stored";

fn integrity_ok(db: &Path) {
    let c = rusqlite::Connection::open(db).expect("open db");
    let r: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(r, "ok", "integrity_check");
}

/// Alarm events persisted: (t_ms, bed key, code, kind).
fn alarm_rows(db: &Path) -> Vec<(i64, String, String, String)> {
    summary(db)
        .alarms
        .into_iter()
        .map(|a| (a.t_ms, a.bed.key(), a.code, a.kind))
        .collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// SIGKILL of the engine under load, then a restart on the same database and MQTT session:
/// the database is intact, what was committed before the kill (alarm events, the audit trail)
/// is still there, the restarted engine reports how long ago it last stored data, and nothing
/// is lost: the station acknowledges QoS 1 messages only after committing them, so the broker
/// sends again whatever the killed engine had received but not committed.
#[test]
fn engine_killed_under_load_loses_nothing() {
    let started = Instant::now();
    let (dir, _broker, port, url) = fresh_broker();
    let db = dir.path().join("ward.db");

    // An audit entry confirmed to the administrator before the engine runs.
    let mut add = Command::new(VIGILCTL)
        .args(["user", "add", "nurse-kill", "--role", "nurse", "--db"])
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("user add");
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().expect("stdin");
        // A refused command may close stdin first; its exit status says so below.
        let _ = stdin.write_all(b"Kill-test-password-2026!\n");
    }
    let out = add.wait_with_output().expect("user add runs");
    assert!(out.status.success(), "user add: {out:?}");

    let mut rec = record(&url, &db, "kill-station");
    let summary_path = dir.path().join("published.json");
    let mut sim = sim(&url, "kw", 6, 14.0, &summary_path);
    // Under load, with data and an alarm committed: a probe monitor's HR 200 raises HR HIGH.
    wait_until("data stored", Duration::from_secs(20), || {
        summary(&db).chunks.values().sum::<u64>() > 200
    });
    let probe = Publisher::new(port, "kill-probe");
    probe.send(
        Topic::vitals(&BedId::new("kp", "01"), "probe"),
        hr_payload("probe", 0, chrono::Utc::now(), 200.0),
    );
    wait_until("HR HIGH stored", Duration::from_secs(10), || {
        alarm_rows(&db)
            .iter()
            .any(|(_, b, c, k)| b == "kp/01" && c == "HR_HIGH" && k == "raise")
    });
    let alarms_before = alarm_rows(&db);
    let st = Command::new("kill")
        .args(["-KILL", &rec.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let st = rec.wait(Duration::from_secs(10));
    assert!(!st.success(), "killed: {st}");
    integrity_ok(&db);
    std::thread::sleep(Duration::from_secs(1));

    let mut rec = record(&url, &db, "kill-station");
    let p = published_by(&mut sim, Duration::from_secs(40), &summary_path);
    let within = Duration::from_secs(30);
    stored_exactly(&mut rec, &db, &p, "kw/", ALL_STORED, within, |_| true);
    let out = rec.output();
    assert!(
        out.contains("history: last data stored"),
        "the restarted engine reports its loss window:\n{out}"
    );

    integrity_ok(&db);
    let after = alarm_rows(&db);
    for a in &alarms_before {
        assert!(after.contains(a), "alarm event kept: {a:?}");
    }
    let verify = Command::new(VIGILCTL)
        .args(["audit", "verify", "--db"])
        .arg(&db)
        .output()
        .expect("audit verify");
    assert!(verify.status.success(), "audit chain intact: {verify:?}");
    let users = Command::new(VIGILCTL)
        .args(["user", "list", "--db"])
        .arg(&db)
        .output()
        .expect("user list");
    assert!(
        String::from_utf8_lossy(&users.stdout).contains("nurse-kill"),
        "{users:?}"
    );
    eprintln!("kill -9 test took {:?}", started.elapsed());
}

/// Mosquitto with persistence, so that a stop and start keeps the sessions and their queues.
fn persistent_mosquitto(dir: &Path, port: u16) -> Proc {
    mosquitto_with(
        dir,
        port,
        &format!(
            "persistence true\npersistence_location {}/\npersistent_client_expiration 1d",
            dir.display()
        ),
    )
}

/// A 30 s broker outage under load: devices cannot publish and the station receives nothing.
/// Communication-lost alarms are raised within their configured time (5 s) of the outage and
/// resolved when data flows again; after recovery the database holds exactly what the devices
/// published (QoS 1, persistent sessions on both sides, broker persistence).
#[test]
fn broker_outage_of_30_s_raises_comm_lost_and_loses_nothing() {
    const OUTAGE: Duration = Duration::from_secs(30);
    const COMM_TIMEOUT_MS: i64 = 5_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut broker = persistent_mosquitto(dir.path(), port);
    let url = format!("mqtt://127.0.0.1:{port}");
    let db = dir.path().join("ward.db");
    let mut rec = record(&url, &db, "outage-station");
    let summary_path = dir.path().join("published.json");
    let mut sim = sim(&url, "ow", 4, 42.0, &summary_path);
    wait_until("data flowing", Duration::from_secs(20), || {
        summary(&db).chunks.values().sum::<u64>() > 50
    });
    std::thread::sleep(Duration::from_secs(2));
    let down_ms = now_ms();
    broker.stops_cleanly();
    std::thread::sleep(OUTAGE);
    let up_ms = now_ms();
    let _broker = persistent_mosquitto(dir.path(), port);

    let p = published_by(&mut sim, Duration::from_secs(60), &summary_path);
    let within = Duration::from_secs(40);
    stored_exactly(&mut rec, &db, &p, "ow/", ALL_STORED, within, |_| true);
    integrity_ok(&db);

    // Communication lost: every bed's monitor, raised within 5 s (+ a tick and scheduling
    // slack) of the outage's start (at once if the broker delivered the monitor's "offline"
    // will as it stopped), resolved after it ended.
    let alarms = alarm_rows(&db);
    for bed in 1..=4 {
        let key = format!("ow/{bed:02}");
        let first = alarms
            .iter()
            .filter(|(t, b, c, k)| {
                *b == key && c == "COMM_LOST" && k == "raise" && *t >= down_ms && *t < up_ms
            })
            .map(|(t, ..)| *t)
            .min();
        let after = first.map(|t| t - down_ms);
        assert!(
            after.is_some_and(|a| a <= COMM_TIMEOUT_MS + 2_000),
            "{key}: COMM_LOST raised {after:?} ms into the outage: {alarms:?}"
        );
        assert!(
            alarms
                .iter()
                .any(|(t, b, c, k)| *b == key && c == "COMM_LOST" && k == "resolve" && *t >= up_ms),
            "{key}: COMM_LOST resolved after recovery: {alarms:?}"
        );
    }
    let out = rec.output();
    assert!(out.contains("broker connection lost; retrying"), "{out}");
    assert!(
        out.contains("connected to broker (session resumed)"),
        "{out}"
    );
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).expect("mount point");
        let st = Command::new("mount")
            // Mode 0700: the station refuses a data directory others can read.
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mounting a tmpfs for the disk-full test failed ({st}): the test needs root"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system holding `path` (a filler file next to it) until it has no room left.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let mut written = 0u64;
    for block in [65_536usize, 4096, 512, 1] {
        let buf = vec![0u8; block];
        while f.write_all(&buf).is_ok() {
            written += block as u64;
        }
    }
    let _ = f.sync_all();
    written
}

/// The database volume fills up under load: the engine does not crash or corrupt the
/// database, logs it and raises the STORE_FAILED technical alarm, keeps what it could not
/// write (bounded) and, when space returns, writes it, resolves the alarm and loses nothing.
#[test]
fn disk_full_raises_a_technical_alarm_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vol = Tmpfs::mount(dir.path().join("vol"), "16m");
    let (_broker, port) = mosquitto(dir.path());
    let url = format!("mqtt://127.0.0.1:{port}");
    let db = vol.0.join("ward.db");
    let mut rec = record(&url, &db, "full-station");
    let summary_path = dir.path().join("published.json");
    let mut sim = sim(&url, "dw", 3, 16.0, &summary_path);
    wait_until("data flowing", Duration::from_secs(20), || {
        summary(&db).chunks.values().sum::<u64>() > 30
    });

    let filler = vol.0.join("filler");
    let filled = fill(&filler);
    eprintln!("filled the volume with {filled} bytes");
    let full_at = Instant::now();
    wait_until("STORE_FAILED raised", Duration::from_secs(15), || {
        let o = rec.output();
        o.contains("STORE FAILED: cannot write the database") && o.contains("code=STORE_FAILED")
    });
    eprintln!(
        "STORE_FAILED raised {:?} after the volume filled",
        full_at.elapsed()
    );
    // The engine keeps running (alarms evaluated, live data) while the disk is full.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        rec.child.try_wait().expect("try_wait").is_none(),
        "engine still running"
    );

    std::fs::remove_file(&filler).expect("free the space");
    wait_until("STORE_FAILED resolved", Duration::from_secs(15), || {
        rec.output()
            .lines()
            .any(|l| l.contains("ALARM RESOLVED") && l.contains("code=STORE_FAILED"))
    });
    let p = published_by(&mut sim, Duration::from_secs(40), &summary_path);
    let within = Duration::from_secs(30);
    stored_exactly(&mut rec, &db, &p, "dw/", ALL_STORED, within, |_| true);
    integrity_ok(&db);
    let alarms = alarm_rows(&db);
    for kind in ["raise", "resolve"] {
        assert!(
            alarms
                .iter()
                .any(|(_, b, c, k)| b == "*/station" && c == "STORE_FAILED" && k == kind),
            "STORE_FAILED {kind} persisted: {alarms:?}"
        );
    }
    drop(vol);
}

/// A flood of malformed payloads beside a normal ward: every normal bed's data is stored in
/// full, and every bad payload is counted once, by reason.
#[test]
fn malformed_flood_beside_normal_traffic() {
    let (dir, _broker, port, url) = fresh_broker();
    let db = dir.path().join("ward.db");
    // Every payload of the flood is to reach the decoder here: a budget far above it (the
    // budgets, which drop such a flood before decoding, are tests/fairness.rs in vigil-core).
    let mut rec = support::record_config(
        &url,
        &db,
        "flood-station",
        &["--allow-unregistered"],
        "[ingest]\ndevice_msgs_per_s = 1000000\n",
    );
    let summary_path = dir.path().join("published.json");
    let mut sim = sim(&url, "nw", 4, 10.0, &summary_path);
    wait_until("data flowing", Duration::from_secs(20), || {
        summary(&db).chunks.values().sum::<u64>() > 20
    });

    // 2 000 of each kind: not JSON, wrong contract version, device differing from the topic.
    const EACH: u64 = 2_000;
    let c = Publisher::new(port, "flooder");
    let bed = BedId::new("fw", "01");
    for i in 0..EACH {
        let topic = Topic::vitals(&bed, "bad-dev");
        c.send(&topic, b"{not json".to_vec());
        let v2 = String::from_utf8(hr_payload("bad-dev", i, chrono::Utc::now(), 70.0))
            .expect("utf8")
            .replacen("\"v\":1", "\"v\":99", 1);
        c.send(&topic, v2);
        c.send(&topic, hr_payload("other-dev", i, chrono::Utc::now(), 70.0));
    }
    c.disconnect();

    let p = published_by(&mut sim, Duration::from_secs(40), &summary_path);
    let want = |s: &Summary| {
        ["malformed", "bad_version", "device_mismatch"]
            .iter()
            .all(|r| s.rejects.get(*r) == Some(&EACH))
    };
    let within = Duration::from_secs(30);
    stored_exactly(
        &mut rec,
        &db,
        &p,
        "nw/",
        "everything stored and counted",
        within,
        want,
    );
    let s = summary(&db);
    assert_eq!(
        s.rejects.len(),
        3,
        "only the flood's reasons: {:?}",
        s.rejects
    );
    assert!(want(&s), "{:?}", s.rejects);
    assert!(
        !s.readings.keys().any(|(b, _)| b.starts_with("fw/")),
        "nothing of the flood stored"
    );
    let out = rec.output();
    assert!(
        out.contains(&format!("rejected {EACH} (malformed)")),
        "{out}"
    );
}

/// Device clocks off from the station's: a reading stamped within the tolerance (60 s ahead,
/// 7 days behind) is stored at the device's time; one beyond it is rejected and counted with
/// the reason `clock_skew`.
#[test]
fn clock_skew_readings_placed_or_rejected_with_a_reason() {
    let mut w = Recording::start("skew-station");
    let (db, c) = (w.db.clone(), Publisher::new(w.port, "skewed-monitor"));
    let bed = BedId::new("sk", "01");
    let topic = Topic::vitals(&bed, "skew-dev");
    // Whole milliseconds, as stored.
    let now = chrono::DateTime::from_timestamp_millis(now_ms()).expect("now");
    let offsets_s: [(i64, bool); 6] = [
        (30, true),           // ahead, within 60 s
        (-3600, true),        // an hour late (stored backlog)
        (-6 * 86_400, true),  // 6 days late
        (600, false),         // 10 min ahead: device clock wrong
        (86_400, false),      // a day ahead
        (-8 * 86_400, false), // 8 days old: clock reset
    ];
    for (i, (off, _)) in offsets_s.iter().enumerate() {
        let t = now + chrono::Duration::seconds(*off);
        c.send(&topic, hr_payload("skew-dev", i as u64, t, 200.0));
    }
    c.disconnect();
    let rejected = offsets_s.iter().filter(|(_, ok)| !ok).count() as u64;
    wait_until(
        "readings stored and rejects counted",
        Duration::from_secs(20),
        || {
            let s = summary(&db);
            s.readings.get(&("sk/01".into(), "HR".into())) == Some(&3)
                && s.rejects.get("clock_skew") == Some(&rejected)
        },
    );
    w.rec.stops_cleanly();
    let conn = rusqlite::Connection::open(&db).expect("db");
    let mut q = conn
        .prepare("SELECT t_ms FROM numerics WHERE ward = 'sk' ORDER BY t_ms")
        .expect("query");
    let stored: Vec<i64> = q
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    let mut want: Vec<i64> = offsets_s
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(off, _)| (now + chrono::Duration::seconds(*off)).timestamp_millis())
        .collect();
    want.sort_unstable();
    assert_eq!(stored, want, "stored at the device's own times");
    let detail: String = conn
        .query_row(
            "SELECT last_detail FROM rejects WHERE reason = 'clock_skew'",
            [],
            |r| r.get(0),
        )
        .expect("reject detail");
    assert!(detail.contains("sk/01/skew-dev"), "{detail}");
    let out = w.rec.output();
    assert!(out.contains("clock_skew"), "{out}");
    assert!(
        out.contains(&format!("rejected {rejected} (clock_skew)")),
        "{out}"
    );
}
