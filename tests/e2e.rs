//! The real desktop app, driven through WebDriver (tauri-driver → WebKitWebDriver) under an X
//! server. `scripts/test.sh` runs this under `xvfb-run` and `dbus-run-session`.
//!
//! The app starts with no broker configured, so it runs the embedded broker and the simulated
//! ward of 8 beds; its database goes to a temporary directory.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    js, screenshot, start_app, strings, text as text_of, tiles_live, wait_for, wait_js,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ward_overview_in_the_real_window() {
    let app = start_app("").await;
    let c = &app.c;

    // Eight live tiles with numbers in them; the numerics are live: within a few seconds,
    // several of them change.
    let (first, _) = tiles_live(c, Duration::from_secs(15)).await;
    assert!(
        strings(&first["hr"])
            .iter()
            .all(|h| h.parse::<f64>().is_ok_and(|x| x > 20.0)),
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

    // Waveforms are drawn: every ECG and pleth canvas has trace pixels on it.
    let ink_ok = |v: &Value, key: &str| {
        v[key]
            .as_array()
            .is_some_and(|a| a.len() == 8 && a.iter().all(|n| n.as_u64().unwrap_or(0) > 100))
    };
    let drawn = wait_for(c, Duration::from_secs(10), |v| {
        ink_ok(v, "ecgInk") && ink_ok(v, "plethInk")
    })
    .await;
    assert!(ink_ok(&drawn, "ecgInk"), "ECG traces drawn: {drawn}");
    assert!(ink_ok(&drawn, "plethInk"), "pleth traces drawn: {drawn}");

    // Bed 03 deteriorates in the simulation: its tile shows a high-priority alarm with text.
    let alarmed = wait_for(c, Duration::from_secs(20), |v| {
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
        text.contains("***") && text.contains("SpO2") && text.contains("% (limit 90)"),
        "alarm text: {text:?}"
    );
    // The station sounds it from start-up: nobody has clicked or typed in this window. The
    // backend's player has played bursts into the (test) audio sink.
    let sound = wait_js(
        c,
        Duration::from_secs(20),
        "const s = document.querySelector('#sound-state');
         return s.dataset.state === 'ready' && Number(s.dataset.bursts) > 0
           ? { text: s.textContent, bursts: Number(s.dataset.bursts) } : null;",
    )
    .await;
    assert!(
        sound["bursts"].as_u64().unwrap_or(0) > 0,
        "alarm tones played without a click: {sound}"
    );
    assert!(
        sound["text"].as_str().unwrap_or_default().contains("Sound"),
        "{sound}"
    );
    let conn = alarmed["conn"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        conn.starts_with("connected"),
        "engine state shown: {conn:?}"
    );

    screenshot(c, "overview.png").await;

    // The desaturation ends by itself (~25 s into the minute): the high-priority alarm stays
    // shown, latched, in the bar and on the tile, until someone reviews it.
    let latched = wait_js(
        c,
        Duration::from_secs(80),
        "const e = document.querySelector(\"#alarm-bar .alarm-item[data-bed='sim/03']\");
         const t = document.querySelector(\".bed-tile[data-bed='sim/03']\");
         return e && e.dataset.state === 'latched' && t.dataset.state === 'latched'
           ? { bar: e.textContent, tile: t.querySelector('.alarm-text').textContent } : null;",
    )
    .await;
    assert!(
        latched["bar"]
            .as_str()
            .unwrap_or_default()
            .contains("LATCHED"),
        "a self-clearing *** alarm leaves its mark: {latched}"
    );
    assert_ne!(text_of(c, "#alarm-count").await, "No alarms");
    screenshot(c, "alarm-latched.png").await;

    // Opening a bed keeps every other bed in view (a strip beside the detail).
    js(
        c,
        "document.querySelector(\".bed-tile[data-bed='sim/05']\").click(); return true;",
    )
    .await;
    let strip = wait_js(
        c,
        Duration::from_secs(10),
        "const d = document.querySelector('#bed-detail');
         const tiles = [...document.querySelectorAll('#ward-grid .bed-tile')]
           .filter(t => t.offsetParent !== null && t.getBoundingClientRect().width > 50);
         return d && !d.hidden && tiles.length === 8 ? tiles.length : 0;",
    )
    .await;
    assert_eq!(strip, 8, "the ward stays visible with a bed open");
    screenshot(c, "bed-open-ward-strip.png").await;
    app.close().await;
}
