//! Shared helpers of vigilctl's integration tests: child processes that clean up after
//! themselves (and keep their output), free loopback ports, Mosquitto on a free port,
//! `vigilctl record`, and reading back what a database holds.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_core::store::{self, Summary};

pub const VIGILCTL: &str = env!("CARGO_BIN_EXE_vigilctl");

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped, with its output lines.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    /// Every line of stdout and stderr so far.
    lines: Arc<Mutex<Vec<String>>>,
    /// stdout lines as they come.
    stdout: mpsc::Receiver<String>,
}

impl Proc {
    /// Start `cmd` with stdout and stderr captured (and echoed, prefixed with `name`).
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for (pipe, tx) in [
            (Box::new(out) as Box<dyn Read + Send>, Some(tx)),
            (Box::new(err), None),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    println!("{name}: {line}");
                    lines.lock().expect("lines").push(line.clone());
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            });
        }
        Proc {
            child,
            name,
            lines,
            stdout,
        }
    }

    pub fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Wait for the process to exit on its own.
    pub fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the reader threads catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {within:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until stdout has a line starting with `prefix`.
    pub fn wait_line(&self, prefix: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return,
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: no line {prefix:?} within {within:?} ({e}); output:\n{}",
                    self.name,
                    self.output()
                ),
            }
        }
    }

    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("stopping {}", self.name);
            self.terminate(Duration::from_secs(5));
        }
    }
}

/// A free loopback port below the ephemeral range, so that no client's source port (and no
/// other test's `bind(0)`) can take it.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for i in 0..5000u64 {
        let port = 20000 + ((seed + i * 7) % 10000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 20000..30000")
}

pub fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh to install it"))
}

pub fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mosquitto on a free loopback port with `extra` configuration lines (e.g. persistence);
/// returns the process and the port.
pub fn mosquitto_with(dir: &Path, port: u16, extra: &str) -> Proc {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nuser root\n{extra}\n\
             max_queued_messages 100000\nlog_dest file {log}\n\
             listener {port} 127.0.0.1\nallow_anonymous true\n",
            log = dir.join("mosquitto.log").display(),
        ),
    )
    .expect("write mosquitto.conf");
    let p = Proc::spawn(
        "mosquitto",
        Command::new(find_program("mosquitto")).arg("-c").arg(&conf),
    );
    wait_for_port(port, Duration::from_secs(10));
    p
}

/// Plain Mosquitto (no persistence) on a free loopback port.
pub fn mosquitto(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    (mosquitto_with(dir, port, "persistence false"), port)
}

/// Start `vigilctl record` accepting unregistered devices, and wait until it subscribed.
pub fn record(url: &str, db: &Path, client_id: &str) -> Proc {
    record_with(url, db, client_id, &["--allow-unregistered"])
}

/// Start `vigilctl record` with extra flags and wait until it reports its subscription. An
/// empty config file keeps a developer's own vigil.toml out of the test.
pub fn record_with(url: &str, db: &Path, client_id: &str, extra: &[&str]) -> Proc {
    record_config(url, db, client_id, extra, "")
}

/// [`record_with`] with this text as its config file.
pub fn record_config(url: &str, db: &Path, client_id: &str, extra: &[&str], toml: &str) -> Proc {
    let config = db.with_extension("toml");
    vigil_core::secure_fs::replace_private(&config, toml.as_bytes()).expect("write config");
    private_dir(db);
    let p = Proc::spawn(
        "record",
        Command::new(VIGILCTL)
            .args(["record", "--broker", url, "--client-id", client_id])
            .args(extra)
            .arg("--db")
            .arg(db)
            .env("VIGIL_CONFIG", &config)
            .env("RUST_LOG", "info,rumqttd=off"),
    );
    p.wait_line("subscribed", Duration::from_secs(20));
    p
}

pub fn counts(v: &Value) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for (bed, m) in v.as_object().expect("object") {
        for (k, n) in m.as_object().expect("object") {
            out.push((bed.clone(), k.clone(), n.as_u64().expect("count")));
        }
    }
    out
}

pub fn summary(db: &Path) -> Summary {
    store::open_read_only(db)
        .and_then(|c| Summary::read(&c))
        .unwrap_or_default()
}

/// Poll the database until `done` holds for its summary, or give up after `within` and return
/// the last summary (the caller's assertions then say what is missing).
pub fn wait_for_summary(db: &Path, within: Duration, done: impl Fn(&Summary) -> bool) -> Summary {
    let deadline = Instant::now() + within;
    loop {
        let s = summary(db);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Make the directory of `db` private (0700), as `vigilctl record` and the station require of
/// their data directory (a test's temporary directory is 0755).
pub fn private_dir(db: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let dir = db.parent().expect("a directory");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
}
