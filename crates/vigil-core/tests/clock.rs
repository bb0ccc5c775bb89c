//! The engine reads the time from the clock it is started with (`Engine::start_clocked`), not
//! from the system: through a real Mosquitto, readings are admitted, refused and classified late
//! against the engine's clock.

use crate::support;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{config, mosquitto_with, subscribed};
use vigil_core::codes::Vital;
use vigil_core::engine::{AlarmOptions, Clock, Engine, ManualClock, SecurityOptions};
use vigil_core::ingest::IngestPolicy;
use vigil_core::telemetry::{utc_from_ms, BedId, Topic, VitalsPayload};

const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_are_judged_by_the_engine_clock_not_the_system_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto_with(dir.path(), "allow_anonymous true\npersistence false\n");
    // The engine lives three days ahead of the system clock.
    let real = chrono::Utc::now().timestamp_millis();
    let clock = Arc::new(ManualClock::new(real + 3 * DAY_MS));
    let engine = Engine::start_clocked(
        config(
            port,
            "station-clock",
            &dir.path().join("clock.db"),
            IngestPolicy::default(),
        ),
        AlarmOptions::default(),
        SecurityOptions::default(),
        Arc::clone(&clock) as Arc<dyn Clock>,
    )
    .expect("engine");
    subscribed(&engine).await;
    let (mon, mut ev) = AsyncClient::new(MqttOptions::new("mon-1", "127.0.0.1", port), 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let bed = BedId::new("4W", "01");
    let send = |seq: u64, t_ms: i64, hr: f64| {
        let payload = VitalsPayload::single("mon-1", seq, utc_from_ms(t_ms), Vital::Hr, hr);
        let mon = mon.clone();
        let topic = Topic::vitals(&bed, "mon-1");
        async move {
            mon.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&payload).expect("json"),
            )
            .await
            .expect("publish");
        }
    };

    // Stamped at the engine's now: live (the system clock would refuse it, 3 days ahead).
    send(1, clock.now_ms(), 80.0).await;
    // Stamped at the system's now: 3 days old to the engine, kept (within 7 days) but late.
    send(2, real, 90.0).await;
    // 8 days old to the engine: refused (the system clock would find it 5 days old and keep it).
    send(3, real - 5 * DAY_MS, 100.0).await;

    let c = engine.counters();
    let t = Instant::now();
    while c.readings.load(std::sync::atomic::Ordering::Relaxed) < 2
        || c.rejects().get("clock_skew").copied().unwrap_or(0) < 1
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "three messages not handled in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.rejects().get("clock_skew"),
        Some(&1),
        "only the 8-day-old reading refused"
    );
    assert_eq!(c.late.load(std::sync::atomic::Ordering::Relaxed), 1);
    let s = engine.snapshot();
    let live = s
        .latest
        .get(&bed)
        .and_then(|v| v.get(&Vital::Hr))
        .expect("live HR");
    assert_eq!((live.value, live.t_ms), (Some(80.0), clock.now_ms()));
    let late = s
        .late
        .get(&bed)
        .and_then(|v| v.get(&Vital::Hr))
        .expect("late HR");
    assert_eq!((late.value, late.t_ms), (Some(90.0), real));
    engine.shutdown().await;
}
