//! Waveform gaps through a real Mosquitto and the engine. MQTT orders a session's messages but
//! not across a reconnect (Mosquitto restarted with persistence delivers new messages before
//! those it restored): chunks arriving out of order within the hold are no gap and raise no
//! DATA GAP alarm; chunks still missing after the hold are a recorded gap with its alarm; a chunk
//! arriving after that corrects the record instead of leaving a false gap in the history.

use crate::support;
use std::path::Path;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{config, mosquitto_with, subscribed};
use vigil_core::engine::Engine;
use vigil_core::ingest::{IngestPolicy, GAP_HOLD_MS};
use vigil_core::telemetry::{BedId, Topic, WavePayload};

/// One second of ECG (500 samples at 500 Hz), chunk `seq` of a stream that began at `t0`.
fn chunk(seq: u64, t0: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    serde_json::to_vec(&WavePayload::ecg_ii(
        "mon-1",
        seq,
        t0 + chrono::Duration::seconds(seq as i64),
        (0..500).map(|i| (i % 200) - 100).collect(),
    ))
    .expect("json")
}

/// Recorded gaps of the bed's ECG_II: (first_seq, last_seq, from_ms, to_ms).
fn gaps(db: &Path) -> Vec<(i64, i64, i64, i64)> {
    let c = vigil_core::store::open_read_only(db).expect("open");
    let mut q = c
        .prepare(
            "SELECT first_seq, last_seq, from_ms, to_ms FROM gaps
             WHERE channel = 'ECG_II' ORDER BY first_seq",
        )
        .expect("query");
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows");
    rows.collect::<Result<_, _>>().expect("gaps")
}

fn chunks_stored(db: &Path) -> i64 {
    let c = vigil_core::store::open_read_only(db).expect("open");
    c.query_row("SELECT COUNT(*) FROM wave_chunks", [], |r| r.get(0))
        .expect("count")
}

fn data_gap_raised(db: &Path) -> i64 {
    let c = vigil_core::store::open_read_only(db).expect("open");
    c.query_row(
        "SELECT COUNT(*) FROM alarm_events WHERE code = 'DATA_GAP' AND kind = 'raise'",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

async fn publish(c: &AsyncClient, topic: &str, seqs: &[u64], t0: chrono::DateTime<chrono::Utc>) {
    for &s in seqs {
        c.publish(topic, QoS::AtLeastOnce, false, chunk(s, t0))
            .await
            .expect("publish");
    }
}

/// Until `f` holds (flushing the engine's writes first each time), within `within`.
async fn eventually(engine: &Engine, what: &str, within: Duration, f: impl Fn() -> bool) {
    let t = Instant::now();
    loop {
        engine.flush().await.expect("flush");
        if f() {
            return;
        }
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_chunks_are_no_gap_and_late_chunks_correct_a_recorded_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    let db = dir.path().join("gaps.db");
    let engine =
        Engine::start(config(port, "station-gaps", &db, IngestPolicy::default())).expect("engine");
    subscribed(&engine).await;
    let mut o = MqttOptions::new("mon-1", "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (mon, mut ev) = AsyncClient::new(o, 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let topic = Topic::wave(&BedId::new("4W", "01"), "mon-1", "ECG_II");
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(20);
    let ms = |seq: i64| t0.timestamp_millis() + seq * 1000;
    let hold = Duration::from_millis(GAP_HOLD_MS as u64);

    // Out of order, as a broker may deliver around a reconnect: 3 before 1 and 2.
    publish(&mon, &topic, &[0, 3, 1, 2], t0).await;
    eventually(&engine, "4 chunks stored", Duration::from_secs(10), || {
        chunks_stored(&db) == 4
    })
    .await;
    // Past the hold (and an alarm tick): still no gap, no alarm.
    tokio::time::sleep(hold + Duration::from_millis(1500)).await;
    engine.flush().await.expect("flush");
    assert_eq!(gaps(&db), [], "chunks 1 and 2 came late, within the hold");
    assert_eq!(data_gap_raised(&db), 0, "no DATA GAP alarm");

    // Chunks 4 and 5 never come (yet): after the hold, one gap and its alarm.
    let jumped = Instant::now();
    publish(&mon, &topic, &[6], t0).await;
    eventually(&engine, "gap 4..5 recorded", hold * 4, || {
        gaps(&db) == [(4, 5, ms(4), ms(6))]
    })
    .await;
    assert!(
        jumped.elapsed() >= hold,
        "declared only after the hold: {:?}",
        jumped.elapsed()
    );
    assert_eq!(data_gap_raised(&db), 1, "one DATA GAP alarm");
    assert!(engine
        .snapshot()
        .alarms
        .iter()
        .any(|a| a.code == "DATA_GAP"));

    // Chunk 4 arrives after all: the record keeps only chunk 5 missing, then nothing.
    publish(&mon, &topic, &[4], t0).await;
    eventually(
        &engine,
        "gap shortened to 5",
        Duration::from_secs(10),
        || gaps(&db) == [(5, 5, ms(5), ms(6))],
    )
    .await;
    publish(&mon, &topic, &[5, 5], t0).await;
    eventually(&engine, "gap removed", Duration::from_secs(10), || {
        gaps(&db).is_empty()
    })
    .await;
    assert_eq!(chunks_stored(&db), 7, "every chunk once");
    assert_eq!(data_gap_raised(&db), 1, "no further alarm");
    engine.shutdown().await;
}
