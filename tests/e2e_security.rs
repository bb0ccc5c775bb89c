//! Security monitoring in the real window: a spoofing attempt on a bed (telemetry from a device
//! that is not registered, on that bed's topic, through a real Mosquitto) raises a SECURITY
//! technical alarm on that bed, tile and alarm bar, and one security event that grows with the
//! flood; IT finds it on the Security screen, acknowledges it with a note (the alarm ends) and
//! exports the list. The station forwards the event and its audit-trail head to syslog (a UDP
//! listener on loopback here).

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_core::codes::Vital;
use vigil_core::telemetry::BedId;

use crate::support::{
    click, fill, first_admin, free_port, js, screenshot, text, wait_js, wait_text, wait_true,
    wait_visible, write_config_with, App, WINDOW,
};

const ADMIN_PW: &str = "copper lantern 77 tide";

/// A child process killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto(port: u16) -> Kill {
    let child = Command::new("mosquitto")
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto (scripts/setup.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Kill(child)
}

/// `mosquitto_pub -l`: every line written to its standard input is one QoS 1 message.
fn publisher(port: u16, topic: &str) -> Kill {
    Kill(
        Command::new("mosquitto_pub")
            .args(["-p", &port.to_string(), "-q", "1", "-l", "-t", topic])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mosquitto_pub"),
    )
}

fn vitals_line(device: &str, seq: u64, hr: f64) -> String {
    let now = vigil_core::store::now_ms();
    format!(
        "{{\"v\":1,\"device\":\"{device}\",\"t\":\"{}\",\"seq\":{seq},\"obs\":[{{\"mdc\":{},\"value\":{hr},\"unit\":\"/min\"}}]}}\n",
        vigil_core::audit::format_time_utc(now),
        Vital::Hr.mdc()
    )
}

/// Syslog lines received so far (non-blocking reads).
fn drain(sock: &UdpSocket, into: &mut Vec<String>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = sock.recv(&mut buf) {
        into.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_device_raises_a_security_alarm_on_its_bed_and_an_event_for_it() {
    let window = WINDOW.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _broker = mosquitto(port);
    let syslog = UdpSocket::bind("127.0.0.1:0").expect("udp");
    syslog.set_nonblocking(true).expect("nonblocking");
    let config = write_config_with(
        dir.path(),
        &format!(
            "[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"vigil-e2e-security\"\n\
             [ingest]\nrequire_registered = true\n\
             [security]\nsyslog = \"udp://{}\"\naudit_head_seconds = 2\n",
            syslog.local_addr().expect("addr")
        ),
    );
    // The bed's real monitor is registered (as IT does in the Devices tab).
    {
        let conn = vigil_core::store::open(&dir.path().join("vigil.db")).expect("db");
        vigil_core::ingest::register_device(
            &conn,
            "mon-01",
            &BedId::new("4W", "01"),
            "bedside monitor",
            vigil_core::store::now_ms(),
        )
        .expect("register");
    }
    let app = App::open(window, dir, config).await;
    let c = &app.c;
    first_admin(c, "it-admin", ADMIN_PW).await;

    // The real monitor feeds bed 4W/01 once a second, all along.
    let mut real = publisher(port, "vigil/v1/4W/01/mon-01/vitals");
    let mut stdin = real.0.stdin.take().expect("stdin");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let feeder = std::thread::spawn(move || {
        let mut seq = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            seq += 1;
            if stdin
                .write_all(vitals_line("mon-01", seq, 72.0).as_bytes())
                .is_err()
            {
                break;
            }
            let _ = stdin.flush();
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let tile = ".bed-tile[data-bed='4W/01']";
    wait_visible(c, tile, "the tile of bed 4W/01").await;
    wait_text(c, &format!("{tile} .num-hr .value"), "72").await;

    // Someone publishes as bed 4W/01 with a device of their own: 30 messages.
    let mut spoof = publisher(port, "vigil/v1/4W/01/evil-9/vitals");
    {
        let mut s = spoof.0.stdin.take().expect("stdin");
        for i in 0..30 {
            s.write_all(vitals_line("evil-9", i + 1, 150.0).as_bytes())
                .expect("spoof");
        }
    }
    let _ = spoof.0.wait();

    // The nurse sees it on the bed: a SECURITY technical alarm, tile and bar.
    let bar_item = "#alarm-bar .alarm-item[data-bed='4W/01'][data-alarm$='SECURITY']";
    wait_visible(
        c,
        bar_item,
        "the SECURITY alarm of bed 4W/01 in the alarm bar",
    )
    .await;
    let bar = text(c, bar_item).await;
    assert!(bar.contains("SECURITY: DATA MAY BE FORGED"), "{bar}");
    let tile_text = wait_js(
        c,
        Duration::from_secs(20),
        &format!(
            "const t = document.querySelector(\"{tile}\");
             const s = t ? t.textContent : '';
             return s.includes('SECURITY') ? s : '';"
        ),
    )
    .await;
    assert!(
        tile_text.as_str().is_some_and(|s| s.contains("SECURITY")),
        "the tile shows the security alarm: {tile_text}"
    );
    // The spoofed readings were refused: the tile still shows the real monitor's 72.
    assert_eq!(
        text(c, &format!("{tile} .num-hr .value")).await.trim(),
        "72"
    );
    screenshot(c, "e2e-security-alarm.png").await;

    // IT: one event for the whole flood, on the Security screen.
    click(c, "#btn-admin").await;
    click(c, "#tab-security").await;
    let row = "#security-table tr[data-kind='unknown_device']";
    wait_visible(c, row, "the unknown-device event").await;
    let rows: Value = js(
        c,
        "return [...document.querySelectorAll(\"#security-table tr[data-kind='unknown_device']\")]
           .map(r => r.textContent);",
    )
    .await;
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "one event, not one per message: {rows:?}");
    let row_text = rows[0].as_str().unwrap_or_default().to_string();
    assert!(
        row_text.contains("bed 4W/01") && row_text.contains("30×") && row_text.contains("HIGH"),
        "{row_text}"
    );
    screenshot(c, "e2e-security-screen.png").await;

    // Acknowledged with a note: stored, audited, and the bed's alarm ends.
    fill(
        c,
        &format!("{row} .ack-note"),
        "rogue laptop on port 12 unplugged",
    )
    .await;
    click(c, &format!("{row} .act-ack")).await;
    wait_text(c, "#admin-msg", "acknowledged").await;
    wait_text(c, row, "rogue laptop on port 12 unplugged").await;
    wait_true(
        c,
        Duration::from_secs(20),
        &format!("return !document.querySelector(\"{bar_item}\");"),
        "the SECURITY alarm ended",
    )
    .await;
    click(c, "#sf-export").await;
    wait_visible(c, "#security-csv-link", "the export link").await;

    // The SIEM got the event and the audit-trail head (RFC 5424 over UDP).
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        drain(&syslog, &mut lines);
        let event = lines.iter().any(|l| {
            l.contains(" SECEVENT ")
                && l.contains("kind=\"unknown_device\"")
                && l.contains("bed=\"4W/01\"")
        });
        let head = lines
            .iter()
            .any(|l| l.contains(" AUDITHEAD ") && l.contains("station=\"vigil-e2e-security\""));
        if (event && head) || Instant::now() > deadline {
            assert!(event && head, "syslog lines: {lines:#?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('<') && l.contains(">1 ")),
        "{lines:#?}"
    );

    // End the session: the driver then closes the window, whose station would otherwise go
    // on running (and logging) after the test, beside the tests that follow.
    app.close().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(real);
    let _ = feeder.join();
}
