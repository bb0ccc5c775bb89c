//! Helpers shared by the real-window tests (`e2e`, `e2e_auth`): tauri-driver, the WebDriver
//! session, reading the overview, waiting, screenshots.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// One app window at a time: the tests share two cores and one X server.
pub static WINDOW: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const APP: &str = env!("CARGO_BIN_EXE_vigil");

/// tauri-driver, stopped with SIGTERM (so WebKitWebDriver and the app go with it) when dropped.
pub struct Driver {
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

impl Driver {
    /// tauri-driver's process id (the app and its web processes run below it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn tauri_driver() -> PathBuf {
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
pub fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}

pub fn start_driver(config: &Path) -> Driver {
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

/// One test's app in the real window: the window taken, its data directory and config file,
/// tauri-driver and the WebDriver session.
pub struct App {
    pub c: Client,
    pub driver: Driver,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
    _window: tokio::sync::MutexGuard<'static, ()>,
}

/// Take the window, write a config in a fresh directory (embedded broker, simulated ward, then
/// `extra`, see [`write_config_with`]), start the app and open a session.
pub async fn start_app(extra: &str) -> App {
    let window = WINDOW.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config_with(dir.path(), extra);
    App::open(window, dir, config).await
}

impl App {
    /// Start the app on `config` (in `dir`) and open a session, holding `window` meanwhile.
    pub async fn open(
        window: tokio::sync::MutexGuard<'static, ()>,
        dir: tempfile::TempDir,
        config: PathBuf,
    ) -> App {
        let driver = start_driver(&config);
        let c = connect(&driver).await;
        App {
            c,
            driver,
            config,
            dir,
            _window: window,
        }
    }

    /// Close the session and stop the app, then start it again on the same config and database.
    pub async fn restart(self) -> App {
        let App {
            c,
            driver,
            config,
            dir,
            _window,
        } = self;
        c.close().await.expect("close session");
        drop(driver);
        App::open(_window, dir, config).await
    }

    /// Close the session; the app stops, then the window is free for the next test.
    pub async fn close(self) {
        self.c.close().await.expect("close session");
    }
}

/// Every tile shows a heart rate (8 tiles within 30 s), and at least two change within
/// `within`; returns the first overview and the later one.
pub async fn tiles_live(c: &Client, within: Duration) -> (Value, Value) {
    let first = wait_for(c, Duration::from_secs(30), |v| {
        v["tiles"] == 8 && strings(&v["hr"]).iter().all(|h| h.parse::<f64>().is_ok())
    })
    .await;
    assert_eq!(first["tiles"], 8, "eight bed tiles: {first}");
    let hr0 = strings(&first["hr"]);
    assert!(
        hr0.iter().all(|h| h.parse::<f64>().is_ok()),
        "every tile shows a heart rate: {first}"
    );
    let later = wait_for(c, within, |v| {
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
    (first, later)
}

pub async fn connect(driver: &Driver) -> Client {
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
pub async fn overview(c: &Client) -> Value {
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

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Poll the overview until `ok` holds or `within` passes; returns the last reading.
pub async fn wait_for(c: &Client, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = overview(c).await;
        if ok(&v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A config file in `dir`: embedded broker and simulated ward, database in `dir`, and `extra`
/// TOML appended (e.g. `[simulator]\nbeds = 32`). The simulated remote cohort is off unless
/// `extra` sets `remote_cohort` (the ward tests count the ward's alarms and sounds; a home
/// patient's live alarm would join them).
pub fn write_config_with(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("vigil.toml");
    let extra = if extra.contains("remote_cohort") {
        extra.to_string()
    } else if extra.contains("[simulator]") {
        extra.replacen("[simulator]", "[simulator]\nremote_cohort = false", 1)
    } else {
        format!("{extra}\n[simulator]\nremote_cohort = false")
    };
    // Private, as the station requires of its data directory and config file.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .expect("private data directory");
    }
    vigil_core::secure_fs::replace_private(
        &config,
        format!("[storage]\ndb = {:?}\n{extra}\n", dir.join("vigil.db")).as_bytes(),
    )
    .expect("write config");
    config
}

/// Call a command straight from the page, as a tampered UI would; `{ok}` or `{err}`.
pub async fn invoke(c: &Client, command: &str) -> Value {
    invoke_with(c, command, json!({})).await
}

/// [`invoke`] with arguments.
pub async fn invoke_with(c: &Client, command: &str, args: Value) -> Value {
    c.execute_async(
        &format!(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke({command:?}, arguments[0])
               .then((ok) => done({{ ok }}), (err) => done({{ err }}));"
        ),
        vec![args],
    )
    .await
    .expect("invoke from the page")
}

/// In the open admin panel, create a user and wait for its row.
pub async fn create_user(c: &Client, name: &str, role: &str, pw: &str) {
    fill(c, "#nu-name", name).await;
    js(
        c,
        &format!("document.querySelector('#nu-role').value = {role:?}; return true;"),
    )
    .await;
    fill(c, "#nu-pw", pw).await;
    fill(c, "#nu-pw2", pw).await;
    click(c, "#nu-submit").await;
    wait_visible(c, &format!("tr[data-user={name:?}]"), "new user row").await;
    wait_text(c, "#admin-msg", &format!("User {name}")).await;
}

/// As an administrator, open the admin panel on its users table.
pub async fn open_admin(c: &Client) {
    wait_visible(c, "#btn-admin", "Admin button").await;
    click(c, "#btn-admin").await;
    wait_visible(c, "#users-table", "users table").await;
}

/// First run: create the administrator `name` (logged in afterwards).
pub async fn first_admin(c: &Client, name: &str, pw: &str) {
    wait_visible(c, "#first-run", "first-run dialog").await;
    submit_first_run(c, name, pw).await;
    wait_text(c, "#auth-user", &format!("{name} · Admin")).await;
}

/// Fill in the first-run dialog for the administrator `name` with `pw` (twice) and submit it.
pub async fn submit_first_run(c: &Client, name: &str, pw: &str) {
    fill(c, "#fr-name", name).await;
    fill(c, "#fr-pw", pw).await;
    fill(c, "#fr-pw2", pw).await;
    click(c, "#fr-submit").await;
}

/// Log out whoever is logged in, then log in as `name`; waits for the header to show `shown`.
pub async fn login_as(c: &Client, name: &str, pw: &str, shown: &str) {
    if visible(c, "#btn-logout").await {
        log_out(c).await;
    }
    log_in(c, name, pw, shown).await;
}

/// Log out; the header says nobody is logged in.
pub async fn log_out(c: &Client) {
    click(c, "#btn-logout").await;
    wait_text(c, "#auth-user", "Not logged in").await;
}

/// Log in as `name` from the log-in dialog; waits for the header to show `shown`.
pub async fn log_in(c: &Client, name: &str, pw: &str, shown: &str) {
    click(c, "#btn-login").await;
    wait_visible(c, "#login", "log-in dialog").await;
    fill(c, "#login-name", name).await;
    fill(c, "#login-pw", pw).await;
    click(c, "#login-submit").await;
    wait_text(c, "#auth-user", shown).await;
}

/// Run a script in the page and return its value.
pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Poll `script` until it returns something truthy (not false, null, 0 or "") or `within`
/// passes; returns the last value.
pub async fn wait_js(c: &Client, within: Duration, script: &str) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = js(c, script).await;
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether an element exists and is rendered.
pub async fn visible(c: &Client, css: &str) -> bool {
    js(
        c,
        &format!(
            "const e = document.querySelector({css:?}); return !!e && e.offsetParent !== null;"
        ),
    )
    .await
        == Value::Bool(true)
}

/// Poll `script` until it returns `true` (see [`wait_js`]); fails saying `what` after `within`.
pub async fn wait_true(c: &Client, within: Duration, script: &str, what: &str) {
    let v = wait_js(c, within, script).await;
    assert_eq!(v, Value::Bool(true), "{what}");
}

/// Wait until `css` is visible; panics with `what` otherwise.
pub async fn wait_visible(c: &Client, css: &str, what: &str) {
    let script = format!(
        "const e = document.querySelector({css:?}); return !!e && e.offsetParent !== null;"
    );
    wait_true(
        c,
        Duration::from_secs(20),
        &script,
        &format!("{what}: {css} not visible"),
    )
    .await;
}

/// The text of an element ("" if absent).
pub async fn text(c: &Client, css: &str) -> String {
    js(
        c,
        &format!("const e = document.querySelector({css:?}); return e ? e.textContent : '';"),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Wait until the text of `css` contains `want`; returns the last text.
pub async fn wait_text(c: &Client, css: &str, want: &str) -> String {
    let v = wait_js(
        c,
        Duration::from_secs(20),
        &format!(
            "const e = document.querySelector({css:?}); \
             return e && e.textContent.includes({want:?}) ? e.textContent : '';"
        ),
    )
    .await;
    let got = v.as_str().unwrap_or_default().to_string();
    assert!(
        got.contains(want),
        "{css} should contain {want:?}, has {:?}",
        text(c, css).await
    );
    got
}

/// Choose `value` in the select element `css`, as a user does (a change event follows).
pub async fn choose(c: &Client, css: &str, value: &str) {
    let done = js(
        c,
        &format!(
            "const s = document.querySelector({css:?}); if (!s) return false; s.value = {value:?};
             s.dispatchEvent(new Event('change')); return true;"
        ),
    )
    .await;
    assert_eq!(done, Value::Bool(true), "{css} to choose {value:?} in");
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e:?}"));
}

/// Type into an input, replacing what it held.
pub async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"));
    e.clear()
        .await
        .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    e.send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

/// Save a screenshot of the window as `target/e2e/NAME`.
pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let shot = shots_dir().join(name);
    std::fs::write(&shot, png).expect("save screenshot");
    eprintln!("screenshot saved to {}", shot.display());
}
