//! The real desktop app, driven through WebDriver (tauri-driver → WebKitWebDriver) under an X
//! server. `scripts/test.sh` runs this under `xvfb-run` and `dbus-run-session`.
//!
//! The app starts with no broker configured, so it runs the embedded broker and the simulated
//! ward of 8 beds; its database goes to a temporary directory.

use std::time::Duration;

use serde_json::Value;

use crate::support::{connect, screenshot, start_driver, strings, wait_for, write_config, WINDOW};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ward_overview_in_the_real_window() {
    let _one_window = WINDOW.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let driver = start_driver(&config);
    let c = connect(&driver).await;

    // Eight live tiles with numbers in them.
    let first = wait_for(&c, Duration::from_secs(30), |v| {
        v["tiles"] == 8 && strings(&v["hr"]).iter().all(|h| h.parse::<f64>().is_ok())
    })
    .await;
    assert_eq!(first["tiles"], 8, "eight bed tiles: {first}");
    let hr0 = strings(&first["hr"]);
    assert!(
        hr0.iter().all(|h| h.parse::<f64>().is_ok_and(|x| x > 20.0)),
        "every tile shows a heart rate: {first}"
    );
    assert!(
        strings(&first["spo2"])
            .iter()
            .all(|s| s.parse::<f64>().is_ok()),
        "every tile shows SpO2: {first}"
    );
    assert!(
        strings(&first["rr"])
            .iter()
            .all(|s| s.parse::<f64>().is_ok()),
        "every tile shows RR: {first}"
    );

    // The numerics are live: within a few seconds, several of them change.
    let later = wait_for(&c, Duration::from_secs(15), |v| {
        strings(&v["hr"])
            .iter()
            .zip(&hr0)
            .filter(|(a, b)| a != b)
            .count()
            >= 2
    })
    .await;
    let changed = strings(&later["hr"])
        .iter()
        .zip(&hr0)
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        changed >= 2,
        "heart rates should change: {hr0:?} then {later}"
    );

    // Waveforms are drawn: every ECG and pleth canvas has trace pixels on it.
    let ink_ok = |v: &Value, key: &str| {
        v[key]
            .as_array()
            .is_some_and(|a| a.len() == 8 && a.iter().all(|n| n.as_u64().unwrap_or(0) > 100))
    };
    let drawn = wait_for(&c, Duration::from_secs(10), |v| {
        ink_ok(v, "ecgInk") && ink_ok(v, "plethInk")
    })
    .await;
    assert!(ink_ok(&drawn, "ecgInk"), "ECG traces drawn: {drawn}");
    assert!(ink_ok(&drawn, "plethInk"), "pleth traces drawn: {drawn}");

    // Bed 03 deteriorates in the simulation: its tile shows a high-priority alarm with text.
    let alarmed = wait_for(&c, Duration::from_secs(20), |v| {
        strings(&v["alarm"]).get(2).is_some_and(|a| a == "high")
    })
    .await;
    let beds = strings(&alarmed["beds"]);
    let i = beds
        .iter()
        .position(|b| b == "sim/03")
        .expect("bed 03 tile");
    assert_eq!(strings(&alarmed["alarm"])[i], "high", "{alarmed}");
    let text = &strings(&alarmed["alarmText"])[i];
    assert!(
        text.contains("***") && text.contains("SpO2"),
        "alarm text: {text:?}"
    );
    let conn = alarmed["conn"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        conn.starts_with("connected"),
        "engine state shown: {conn:?}"
    );

    screenshot(&c, "overview.png").await;
    c.close().await.expect("close session");
    drop(driver);
}
