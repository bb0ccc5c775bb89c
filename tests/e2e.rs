//! The real desktop app, driven through WebDriver (tauri-driver → WebKitWebDriver) under an X
//! server. `scripts/test.sh` runs this under `xvfb-run` and `dbus-run-session`.
//!
//! The app starts with no broker configured, so it runs the embedded broker and the simulated
//! ward of 8 beds; its database goes to a temporary directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

const APP: &str = env!("CARGO_BIN_EXE_vigil");

/// tauri-driver, stopped with SIGTERM (so WebKitWebDriver and the app go with it) when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn tauri_driver() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    std::env::split_paths(&path)
        .chain([home.join(".cargo/bin")])
        .map(|d| d.join("tauri-driver"))
        .find(|p| p.is_file())
        .expect("tauri-driver not found: run scripts/setup.sh")
}

/// Where screenshots go: `target/e2e/`.
fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}

fn start_driver(config: &Path) -> Driver {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "the end-to-end test needs an X display: run it through scripts/test.sh (xvfb-run)"
    );
    let port = free_port();
    let native = free_port();
    let child = Command::new(tauri_driver())
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        // The app inherits tauri-driver's environment.
        .env("VIGIL_CONFIG", config)
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("RUST_LOG", "info,rumqttd=off")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tauri-driver");
    Driver { child, port }
}

async fn connect(driver: &Driver) -> Client {
    let caps = json!({
        "browserName": "wry",
        "tauri:options": { "application": APP },
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!("literal object"),
    };
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut b = ClientBuilder::rustls().expect("rustls client");
        b.capabilities(caps.clone());
        match b.connect(&url).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for tauri-driver: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("cannot start a WebDriver session: {e}"),
        }
    }
}

/// The overview as the page shows it, read in one script.
async fn overview(c: &Client) -> Value {
    c.execute(
        r#"
        const tiles = [...document.querySelectorAll('.bed-tile')];
        const ink = (cv) => {
          if (!cv || !cv.width || !cv.height) return 0;
          const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] + d[i + 1] + d[i + 2]) > 150) n++;
          return n;
        };
        return {
          tiles: tiles.length,
          beds: tiles.map(t => t.dataset.bed),
          hr: tiles.map(t => (t.querySelector('.num-hr .value') || {}).textContent || ''),
          spo2: tiles.map(t => (t.querySelector('.num-spo2 .value') || {}).textContent || ''),
          rr: tiles.map(t => (t.querySelector('.num-rr .value') || {}).textContent || ''),
          alarm: tiles.map(t => t.dataset.alarm || ''),
          alarmText: tiles.map(t => (t.querySelector('.alarm-text') || {}).textContent || ''),
          ecgInk: tiles.map(t => ink(t.querySelector('canvas.wave-ecg'))),
          plethInk: tiles.map(t => ink(t.querySelector('canvas.wave-pleth'))),
          conn: (document.querySelector('#conn-state') || {}).textContent || '',
        };
        "#,
        vec![],
    )
    .await
    .expect("read the overview")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Poll the overview until `ok` holds or `within` passes; returns the last reading.
async fn wait_for(c: &Client, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = overview(c).await;
        if ok(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ward_overview_in_the_real_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!("[storage]\ndb = {:?}\n", dir.path().join("vigil.db")),
    )
    .expect("write config");
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

    let png = c.screenshot().await.expect("screenshot");
    let shot = shots_dir().join("overview.png");
    std::fs::write(&shot, png).expect("save screenshot");
    eprintln!("screenshot saved to {}", shot.display());
    c.close().await.expect("close session");
    drop(driver);
}
