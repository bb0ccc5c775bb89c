//! A broker restart in the middle of a ward's stream loses nothing: Mosquitto (from Debian) with
//! persistence keeps the station's session and its queued QoS 1 messages across a restart; the
//! simulated monitors (persistent sessions too) send again what the broker had not acknowledged
//! and what they queued while it was down; the station drops redeliveries. At the end the
//! database holds exactly what the simulator published, and the recorder reported the outage.
//! Without broker persistence some loss is possible, and then it is recorded (gaps, warnings),
//! never silent. See `docs/broker-security.md` §5.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support;
use support::*;

/// Mosquitto on `port`; with `persistence`, sessions and queued QoS 1 messages are saved in
/// `dir` on SIGTERM and restored on start.
fn mosquitto(dir: &Path, port: u16, persistence: bool) -> Proc {
    let extra = if persistence {
        format!(
            "persistence true\npersistence_location {}/\npersistent_client_expiration 1d",
            dir.display()
        )
    } else {
        "persistence false".to_string()
    };
    mosquitto_with(dir, port, &extra)
}

/// What one restart scenario left behind.
struct Outcome {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    /// The simulator's summary: samples, chunks, readings per bed.
    published: Published,
    sim_out: String,
    rec_out: String,
}

/// `vigilctl record` and a four-bed `vigilctl sim` (12 s) through Mosquitto; the broker is
/// stopped (SIGTERM) at ~4 s and started again on the same port ~2 s later. Asserts that the
/// simulator had every publish acknowledged and that both sides saw the outage.
fn restart_scenario(persistence: bool) -> Outcome {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut broker = mosquitto(dir.path(), port, persistence);
    let url = format!("mqtt://127.0.0.1:{port}");
    let db = dir.path().join("ward.db");
    let mut rec = record(&url, &db, "restart-station");

    let published = dir.path().join("published.json");
    let mut sim = sim(&url, "sim", 4, 12.0, &published);
    std::thread::sleep(Duration::from_secs(4));
    broker.stops_cleanly();
    assert_eq!(
        dir.path().join("mosquitto.db").is_file(),
        persistence,
        "mosquitto saved its sessions (with persistence only)"
    );
    std::thread::sleep(Duration::from_secs(2));
    let _broker = mosquitto(dir.path(), port, persistence);

    // The simulated monitors: every publish acknowledged across the restart, none dropped.
    let st = sim.wait(Duration::from_secs(40));
    let sim_out = sim.output();
    assert!(
        st.success(),
        "every publish acknowledged across the restart: {st}\n{sim_out}"
    );
    assert!(sim_out.contains("broker link down"), "{sim_out}");
    assert!(sim_out.contains("broker link back"), "{sim_out}");
    let published = Published::read(&published);
    assert_eq!(published.samples.len(), 16, "4 beds x 4 channels");

    // Let the recorder catch up (queued messages, redeliveries), then stop it.
    let chunks = &published.chunks;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = summary(&db);
        let gaps = gaps(&db);
        let accounted = chunks.iter().all(|(b, c, n)| {
            let k = (b.clone(), c.clone());
            s.chunks.get(&k).copied().unwrap_or(0) + gaps.get(&k).copied().unwrap_or(0) >= *n
        });
        if accounted || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    rec.stops_cleanly();
    let rec_out = rec.output();
    assert!(
        rec_out.contains("broker connection lost; retrying"),
        "{rec_out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    Outcome {
        _dir: dir,
        db,
        published,
        sim_out,
        rec_out,
    }
}

/// Waveform chunks recorded as missing, per (bed key, channel).
fn gaps(db: &Path) -> std::collections::BTreeMap<(String, String), u64> {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Default::default();
    };
    let Ok(mut q) = c.prepare(
        "SELECT ward || '/' || bed, channel, SUM(last_seq - first_seq + 1) FROM gaps GROUP BY 1, 2",
    ) else {
        return Default::default();
    };
    q.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            r.get::<_, i64>(2)? as u64,
        ))
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// With a persistent broker: zero loss, no duplicates. The station's session (subscription and
/// queued messages) survives the restart; the monitors resend what was in flight.
#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let o = restart_scenario(true);
    let stored = summary(&o.db);
    o.published.assert_stored(&stored);
    assert_eq!(stored.samples.len(), 16, "nothing extra stored");
    assert!(
        stored.rejects.is_empty(),
        "no rejects: {:?}",
        stored.rejects
    );
    assert!(gaps(&o.db).is_empty(), "no gaps: {:?}", gaps(&o.db));
    assert!(o.sim_out.contains("session_present=true"), "{}", o.sim_out);
    assert!(
        o.rec_out.contains("connected to broker (session resumed)"),
        "{}",
        o.rec_out
    );
}

/// With a broker that forgets everything on restart, loss can happen (what devices publish
/// before the station has subscribed again goes to nobody), but never silently: the monitors
/// still have every publish acknowledged (unacknowledged ones are sent again in the new
/// session), the station warns that the broker kept no session, and every waveform chunk is
/// either stored or recorded as missing in a gap.
#[test]
fn broker_restart_without_persistence_records_what_is_lost() {
    let o = restart_scenario(false);
    let stored = summary(&o.db);
    let gaps = gaps(&o.db);
    for (bed, ch, n) in &o.published.chunks {
        let k = (bed.clone(), ch.clone());
        let got = stored.chunks.get(&k).copied().unwrap_or(0);
        let missing = gaps.get(&k).copied().unwrap_or(0);
        assert_eq!(
            got + missing,
            *n,
            "chunks {bed} {ch}: {got} stored + {missing} in gaps"
        );
    }
    assert!(o.sim_out.contains("session_present=false"), "{}", o.sim_out);
    assert!(
        o.rec_out.contains("it kept no session for this station"),
        "{}",
        o.rec_out
    );
}
