//! One device cannot starve the others (issue 11, item 4), through a real Mosquitto: a device
//! flooding waveform chunks at ten times its budget does not delay another bed's alarm beyond
//! a generous bound, raises no COMM LOST on that bed, and gets its own DEVICE OVER BUDGET
//! technical alarm, resolved once it is back within its budget.

use crate::support;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use support::{config, mosquitto_with, subscribed, wait_until, Mosq};
use vigil_core::codes::Vital;
use vigil_core::engine::{Engine, LiveEvent};
use vigil_core::ingest::{Budget, IngestPolicy};
use vigil_core::telemetry::{BedId, Topic, VitalsPayload, WavePayload};

/// Mosquitto configured as docs/broker-security.md recommends for the station's session
/// (large queue, large in-flight window).
fn mosquitto(dir: &Path) -> (Mosq, u16) {
    mosquitto_with(
        dir,
        "allow_anonymous true\npersistence false\nmax_queued_messages 100000\n\
         max_inflight_messages 20000\n",
    )
}

async fn client(port: u16, id: &str) -> AsyncClient {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (c, mut ev) = AsyncClient::new(o, 4096);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    c
}

fn vitals(device: &str, seq: u64, hr: f64) -> Vec<u8> {
    serde_json::to_vec(&VitalsPayload::single(
        device,
        seq,
        chrono::Utc::now(),
        Vital::Hr,
        hr,
    ))
    .expect("json")
}

/// A valid ECG chunk of `n` samples (about 7 bytes a sample in JSON).
fn chunk(device: &str, seq: u64, n: usize) -> Vec<u8> {
    serde_json::to_vec(&WavePayload::ecg_ii(
        device,
        seq,
        chrono::Utc::now(),
        (0..n).map(|i| (i % 2000) as i32 - 1000).collect(),
    ))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_does_not_starve_another_bed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    // A small budget, so that ten times it is a modest flood for a shared test machine.
    let budget = Budget {
        bytes_per_s: 100 * 1024,
        msgs_per_s: 50,
        burst_s: 1,
    };
    let policy = IngestPolicy {
        budget,
        ..IngestPolicy::default()
    };
    let db = dir.path().join("fair.db");
    let engine = Engine::start(config(port, "station-fair", &db, policy)).expect("engine");
    subscribed(&engine).await;
    // Every COMM LOST the station raises on the victim's bed, whenever it is raised (the
    // flooder's own bed gets one once it stops sending: that one is real).
    let comm_lost = Arc::new(AtomicBool::new(false));
    let mut live = engine.subscribe();
    let seen = Arc::clone(&comm_lost);
    let victim = BedId::new("4W", "01");
    let watcher = tokio::spawn(async move {
        loop {
            match live.recv().await {
                Ok(LiveEvent::Alarms(list)) => {
                    if list
                        .iter()
                        .any(|a| a.code == "COMM_LOST" && a.bed == victim)
                    {
                        seen.store(true, Ordering::SeqCst);
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });

    let victim_bed = BedId::new("4W", "01");
    let flood_bed = BedId::new("4W", "02");
    let victim = client(port, "victim-mon").await;
    let flooder = client(port, "flood-mon").await;
    let vitals_topic = Topic::vitals(&victim_bed, "mon-1");

    // The victim's monitor: a normal HR every 500 ms, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let (v, st) = (victim.clone(), Arc::clone(&stop));
    let (vt, hr_high) = (vitals_topic.clone(), Arc::new(AtomicBool::new(false)));
    let high = Arc::clone(&hr_high);
    let beat = tokio::spawn(async move {
        let mut seq = 0;
        while !st.load(Ordering::SeqCst) {
            seq += 1;
            let hr = if high.load(Ordering::SeqCst) {
                170.0
            } else {
                80.0
            };
            v.publish(&vt, QoS::AtLeastOnce, false, vitals("mon-1", seq, hr))
                .await
                .expect("publish");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    wait_until("victim seen", Duration::from_secs(10), || {
        engine.snapshot().latest.contains_key(&victim_bed)
    })
    .await;

    // The flood: ~10 KB chunks at ten times the byte budget (about 1 MB/s) for 4 s.
    let flood_topic = Topic::wave(&flood_bed, "flood-1", "ECG_II");
    let (f, st) = (flooder.clone(), Arc::clone(&stop));
    let flood = tokio::spawn(async move {
        let per_s = 10 * budget.bytes_per_s as usize;
        let one = chunk("flood-1", 0, 1400).len();
        let every = Duration::from_secs_f64(one as f64 / per_s as f64);
        let start = Instant::now();
        let mut seq = 0;
        while start.elapsed() < Duration::from_secs(4) && !st.load(Ordering::SeqCst) {
            seq += 1;
            f.publish(
                &flood_topic,
                QoS::AtLeastOnce,
                false,
                chunk("flood-1", seq, 1400),
            )
            .await
            .expect("publish");
            tokio::time::sleep_until((start + every * seq as u32).into()).await;
        }
        seq
    });
    // The flooder's bed gets its technical alarm, naming it.
    wait_until(
        "DEVICE OVER BUDGET on the flooder's bed",
        Duration::from_secs(10),
        || {
            engine.snapshot().alarms.iter().any(|a| {
                a.code == "DEVICE_OVER_BUDGET" && a.bed == flood_bed && a.label.contains("flood-1")
            })
        },
    )
    .await;
    // Mid-flood, the victim's HR goes high: the alarm comes well within a generous bound.
    hr_high.store(true, Ordering::SeqCst);
    let took = wait_until(
        "HR HIGH on the victim bed during the flood",
        Duration::from_secs(5),
        || {
            engine
                .snapshot()
                .alarms
                .iter()
                .any(|a| a.code == "HR_HIGH" && a.bed == victim_bed)
        },
    )
    .await;
    let sent = flood.await.expect("flood");
    assert!(sent > 100, "the flood ran ({sent} chunks)");
    let dropped = engine
        .counters()
        .rejects()
        .get("over_budget")
        .copied()
        .unwrap_or(0);
    assert!(
        dropped > sent / 2,
        "most of the flood dropped: {dropped} of {sent}"
    );
    // Back within budget: the alarm is resolved.
    wait_until(
        "DEVICE OVER BUDGET resolved",
        Duration::from_secs(15),
        || {
            !engine
                .snapshot()
                .alarms
                .iter()
                .any(|a| a.code == "DEVICE_OVER_BUDGET" && a.cleared_ms.is_none())
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    beat.await.expect("victim monitor");
    assert!(
        !comm_lost.load(Ordering::SeqCst),
        "no COMM LOST on the victim's bed while the flood ran"
    );
    assert!(
        !engine
            .snapshot()
            .alarms
            .iter()
            .any(|a| a.code == "DEVICE_OVER_BUDGET" && a.bed == victim_bed),
        "the victim's monitor is within its budget"
    );
    eprintln!("HR HIGH during the flood after {took:?}; {dropped} of {sent} chunks dropped");
    watcher.abort();
    engine.shutdown().await;
}
