//! The store writer watched by the engine (issue 17, "a writer that cannot die silently"): a
//! writer that stops (a panic) raises STORE_FAILED at the next alarm tick; one that makes no
//! progress while work waits raises it after [`crate::store::STALL_MS`].

use std::time::{Duration, Instant};

use super::alarms::StoreProgress;
use super::{AlarmOptions, Engine, EngineConfig};
use crate::alarms::state::STORE_FAILED;
use crate::store::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_writer_that_dies_raises_store_failed_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        // Offline: nothing listens on port 9; the store and the alarms work all the same.
        broker: "mqtt://127.0.0.1:9"
            .parse::<crate::config::BrokerUrl>()
            .expect("url")
            .into(),
        client_id: "store-watch".into(),
        ward: Some("4W".into()),
        db_path: dir.path().join("vigil.db"),
        limits: crate::alarms::default_limits(),
        policy: Default::default(),
        mllp: None,
    };
    let engine = Engine::start_with(
        cfg,
        AlarmOptions {
            tick: Duration::from_millis(50),
            ..AlarmOptions::default()
        },
    )
    .expect("engine");
    let raised = |e: &Engine| {
        e.handle()
            .snapshot()
            .alarms
            .iter()
            .any(|a| a.code == STORE_FAILED)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.flush().await.expect("the writer commits");
    assert!(!raised(&engine), "a healthy writer raises nothing");

    // The writer panics, as a bug would make it.
    let shared = std::sync::Arc::clone(&engine.handle().shared);
    shared.store_queue.send(Op::Crash).await.expect("queued");
    let t = Instant::now();
    while !raised(&engine) {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "STORE_FAILED within a few ticks of the writer's death"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(shared
        .store_stats
        .stopped
        .load(std::sync::atomic::Ordering::SeqCst));
    let alarm = engine
        .handle()
        .snapshot()
        .alarms
        .into_iter()
        .find(|a| a.code == STORE_FAILED)
        .expect("the alarm");
    assert_eq!(alarm.bed, crate::alarms::AlarmMachine::station_bed());
    // It stays: a dead writer does not come back by itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        raised(&engine),
        "STORE_FAILED stays while the writer is dead"
    );
    engine.shutdown().await;
}

#[test]
fn work_waiting_without_progress_is_a_stall_and_progress_clears_it() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let stall = crate::store::STALL_MS;
    let mut p = StoreProgress::default();
    // Idle: nothing waits, never a stall however long.
    assert!(!p.stalled(0, false, at(0)));
    assert!(!p.stalled(0, false, at(10 * stall)));
    // Work waits and no batch finishes: a stall once STALL_MS has passed, not before.
    assert!(!p.stalled(0, true, at(10 * stall)));
    assert!(!p.stalled(0, true, at(11 * stall - 1)));
    assert!(p.stalled(0, true, at(11 * stall)));
    // A batch finishes: no stall, and the wait starts over.
    assert!(!p.stalled(1, true, at(11 * stall + 1)));
    assert!(!p.stalled(1, true, at(12 * stall)));
    assert!(p.stalled(1, true, at(12 * stall + 1)));
    // The queue drains: no stall.
    assert!(!p.stalled(1, false, at(13 * stall)));
}
