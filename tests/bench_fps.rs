//! Frame rate, CPU and publish → pixel latency of the ward overview in the real webview, with
//! 8, 16 and 32 live tiles. A benchmark, not a test: it is `#[ignore]`d and prints figures
//! (recorded in BENCHMARKS.md with this command):
//!
//! ```text
//! xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- \
//!   cargo test --release -p vigil --test app -- --ignored --nocapture bench_overview
//! ```
//!
//! Per bed count: the app starts with the embedded broker and a simulated ward of that size
//! (both inside the app process, so the CPU figure includes them), an administrator is created
//! so the ward gets the whole window, and after 5 s of warm-up the page's own counters
//! (`window.__vigil`, see `ui/src/main.ts`) and the CPU time of every process below
//! tauri-driver (app, WebKit web and network processes, WebKitWebDriver) are read over 20 s.
//! Publish → pixel = how old a chunk's newest sample is when the window receives it (station
//! clock; the simulator stamps samples as it publishes them) + how long it then waits in the
//! trace's ring buffer before the sweep draws it (buffered samples ÷ rate).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{connect, first_admin, js, start_driver, wait_for, write_config_with, WINDOW};

const WARM_UP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(20);

/// Clock ticks (utime + stime) of `root` and all its descendants.
fn tree_ticks(root: u32) -> u64 {
    let mut parent = HashMap::new();
    let mut ticks = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) in parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(ut), Some(st)) = (
            f.get(1).and_then(|x| x.parse::<u32>().ok()),
            f.get(11).and_then(|x| x.parse::<u64>().ok()),
            f.get(12).and_then(|x| x.parse::<u64>().ok()),
        ) else {
            continue;
        };
        parent.insert(pid, ppid);
        ticks.insert(pid, ut + st);
    }
    ticks
        .iter()
        .filter(|(pid, _)| {
            let mut p = **pid;
            for _ in 0..64 {
                if p == root {
                    return true;
                }
                match parent.get(&p) {
                    Some(&q) if q != 0 => p = q,
                    _ => return false,
                }
            }
            false
        })
        .map(|(_, t)| t)
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const READ: &str = "const d = window.__vigil;
  const ages = d.chunkAgeMs.splice(0);
  const ecg = d.traces().filter(t => t.channel === 'ECG_II');
  return { af: d.animationFrames, frames: d.framesReceived, bytes: d.bytesReceived, ages,
           buffered: ecg.map(t => t.buffered), dropped: ecg.reduce((a, t) => a + t.dropped, 0) };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures; run by hand (see the module docs)"]
async fn bench_overview_frame_rate() {
    let _one_window = WINDOW.lock().await;
    let hz = 100.0; // USER_HZ on Linux
    for beds in [8u32, 16, 32] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config_with(dir.path(), &format!("[simulator]\nbeds = {beds}"));
        let driver = start_driver(&config);
        let c = connect(&driver).await;
        first_admin(&c, "admin1", "bench harness 42 quietly").await;
        let up = wait_for(&c, Duration::from_secs(60), |v| v["tiles"] == beds).await;
        assert_eq!(up["tiles"], beds, "{up}");
        tokio::time::sleep(WARM_UP).await;

        let a: Value = js(&c, READ).await;
        let cpu0 = tree_ticks(driver.pid());
        let t0 = Instant::now();
        let mut ages: Vec<f64> = Vec::new();
        let mut wait_ms: Vec<f64> = Vec::new();
        while t0.elapsed() < MEASURE {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let v = js(&c, READ).await;
            ages.extend(
                v["ages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64),
            );
            wait_ms.extend(
                v["buffered"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64)
                    .map(|n| n / 500.0 * 1000.0),
            );
        }
        let b: Value = js(&c, READ).await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = (tree_ticks(driver.pid()) - cpu0) as f64 / hz / secs * 100.0;
        let num = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        let fps = (num(&b, "af") - num(&a, "af")) / secs;
        let fr = (num(&b, "frames") - num(&a, "frames")) / secs;
        let kbps = (num(&b, "bytes") - num(&a, "bytes")) / secs / 1024.0;
        ages.sort_by(f64::total_cmp);
        wait_ms.sort_by(f64::total_cmp);
        let buf = wait_ms.iter().sum::<f64>() / wait_ms.len().max(1) as f64;
        let p50 = percentile(&ages, 0.5);
        let p99 = percentile(&ages, 0.99);
        println!(
            "RESULT tiles={beds} fps={fps:.1} cpu_pct={cpu:.0} frames_per_s={fr:.1} kib_per_s={kbps:.0} \
             arrival_p50_ms={p50:.0} arrival_p99_ms={p99:.0} sweep_wait_ms={buf:.0} \
             pixel_p50_ms={:.0} pixel_p99_ms={:.0} dropped={}",
            p50 + buf,
            p99 + percentile(&wait_ms, 0.99),
            num(&b, "dropped")
        );
        c.close().await.expect("close session");
        drop(driver);
    }
}
