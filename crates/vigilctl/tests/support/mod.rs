//! Shared helpers of vigilctl's integration tests: child processes that clean up after
//! themselves (and keep their output), free loopback ports, Mosquitto on a free port,
//! `vigilctl record` and `vigilctl sim`, test publishes, and reading back what a database holds
//! (and checking it against what the simulator published).
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_core::store::{self, Summary};

/// Shared with the engine's own tests (ports, programs, Mosquitto's configuration, engines).
#[path = "../../../vigil-core/tests/support/common.rs"]
mod common;
#[allow(unused_imports)] // each test binary uses its own subset
pub use common::{find_program, offline_engine, wait_for_port, wait_until};

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

    /// Wait (`within` at most) for the process to exit: it must succeed (`what` says what it
    /// did, after its name).
    pub fn succeeds(&mut self, within: Duration, what: &str) {
        let st = self.wait(within);
        assert!(
            st.success(),
            "{} {what} failed: {st}\n{}",
            self.name,
            self.output()
        );
    }

    /// Wait (`within` at most) for the process to exit: it must fail (`why` says why it must).
    /// Returns its output.
    pub fn fails(&mut self, within: Duration, why: &str) -> String {
        let st = self.wait(within);
        let out = self.output();
        assert!(!st.success(), "{why}:\n{out}");
        out
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

    /// Stop it with SIGTERM; it must exit successfully within 10 s.
    pub fn stops_cleanly(&mut self) {
        let st = self.terminate(Duration::from_secs(10));
        assert!(
            st.is_some_and(|s| s.success()),
            "{} stops cleanly on SIGTERM: {st:?}",
            self.name
        );
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

/// A free loopback port in 20000..30000 (the engine's tests take 30000..40000).
pub fn free_port() -> u16 {
    common::free_port_in(20000)
}

/// Mosquitto on loopback `port` with `extra` configuration lines (e.g. persistence).
pub fn mosquitto_with(dir: &Path, port: u16, extra: &str) -> Proc {
    mosquitto_conf(
        dir,
        port,
        &format!("{extra}\nmax_queued_messages 100000\n"),
        "allow_anonymous true\n",
    )
}

/// Mosquitto with the configuration of [`common::mosquitto_conf`]; returns once it listens.
pub fn mosquitto_conf(dir: &Path, port: u16, global: &str, listener: &str) -> Proc {
    let conf = common::mosquitto_conf(dir, port, global, listener);
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

/// A test's temporary directory with plain Mosquitto (see [`mosquitto`]) for it: the
/// directory, the broker, its port and its `mqtt://` URL.
pub fn fresh_broker() -> (tempfile::TempDir, Proc, u16, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (broker, port) = mosquitto(dir.path());
    (dir, broker, port, format!("mqtt://127.0.0.1:{port}"))
}

/// A test's Mosquitto (see [`fresh_broker`]) with `vigilctl record` on it, accepting
/// unregistered devices and storing to `ward.db` in the test's directory. Dropped in field order:
/// the recorder, then the broker, then the directory.
pub struct Recording {
    pub rec: Proc,
    pub db: PathBuf,
    pub port: u16,
    _broker: Proc,
    _dir: tempfile::TempDir,
}

impl Recording {
    /// Start it; `vigilctl record` connects as `client_id` and has subscribed on return.
    pub fn start(client_id: &str) -> Recording {
        let (dir, broker, port, url) = fresh_broker();
        let db = dir.path().join("ward.db");
        let rec = record(&url, &db, client_id);
        Recording {
            rec,
            db,
            port,
            _broker: broker,
            _dir: dir,
        }
    }
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
    let p = Proc::spawn("record", &mut record_cmd(url, db, client_id, extra, toml));
    p.wait_line("subscribed", Duration::from_secs(20));
    p
}

/// The command of `vigilctl record` with `extra` flags and this text as its config file (in a
/// private data directory, as the recorder requires).
pub fn record_cmd<S: AsRef<std::ffi::OsStr>>(
    url: &str,
    db: &Path,
    client_id: &str,
    extra: &[S],
    toml: &str,
) -> Command {
    let config = db.with_extension("toml");
    vigil_core::secure_fs::replace_private(&config, toml.as_bytes()).expect("write config");
    private_dir(db);
    let mut c = Command::new(VIGILCTL);
    c.args(["record", "--broker", url, "--client-id", client_id])
        .args(extra)
        .arg("--db")
        .arg(db)
        .env("VIGIL_CONFIG", &config)
        .env("RUST_LOG", "info,rumqttd=off");
    c
}

/// The command of `vigilctl sim`: `beds` beds of `ward` for `seconds`, with `extra` flags,
/// writing a summary of what it published to `summary`.
pub fn sim_cmd<S: AsRef<std::ffi::OsStr>>(
    url: &str,
    ward: &str,
    beds: usize,
    seconds: f64,
    summary: &Path,
    extra: &[S],
) -> Command {
    let mut c = Command::new(VIGILCTL);
    c.args(["sim", "--broker", url, "--ward", ward])
        .args(["--beds", &beds.to_string()])
        .args(["--duration", &seconds.to_string()])
        .args(extra)
        .arg("--summary")
        .arg(summary)
        .env("RUST_LOG", "info");
    c
}

/// `mosquitto_pub` to `host`:`port` at QoS 1 (the caller adds the topic, the message and the
/// rest).
pub fn mosquitto_pub(host: &str, port: u16) -> Command {
    let mut c = Command::new(find_program("mosquitto_pub"));
    c.args(["-h", host, "-p", &port.to_string(), "-q", "1"]);
    c
}

/// A synchronous MQTT client for a test's own publishes (QoS 1, not retained); its event loop
/// runs on a thread.
pub struct Publisher(rumqttc::Client);

impl Publisher {
    /// Connect to Mosquitto on loopback `port` as `id`.
    pub fn new(port: u16, id: &str) -> Publisher {
        let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (c, mut conn) = rumqttc::Client::new(opts, 1024);
        std::thread::spawn(move || for _ in conn.iter().take_while(Result::is_ok) {});
        Publisher(c)
    }

    pub fn send(&self, topic: impl Into<String>, payload: impl Into<Vec<u8>>) {
        let topic = topic.into();
        self.0
            .publish(topic.as_str(), rumqttc::QoS::AtLeastOnce, false, payload)
            .unwrap_or_else(|e| panic!("publish on {topic}: {e}"));
    }

    pub fn disconnect(&self) {
        let _ = self.0.disconnect();
    }
}

/// A vitals payload of one reading of `vital` from `device`, taken at `t`.
pub fn vitals(
    device: &str,
    seq: u64,
    t: chrono::DateTime<chrono::Utc>,
    vital: vigil_core::codes::Vital,
    value: f64,
) -> Vec<u8> {
    let p = vigil_core::telemetry::VitalsPayload::single(device, seq, t, vital, value);
    serde_json::to_vec(&p).expect("json")
}

/// A vitals payload of one heart rate from `device`, taken at `t`.
pub fn hr_payload(device: &str, seq: u64, t: chrono::DateTime<chrono::Utc>, hr: f64) -> Vec<u8> {
    vitals(device, seq, t, vigil_core::codes::Vital::Hr, hr)
}

/// `vigilctl sim` (see [`sim_cmd`]) with no more flags, started.
pub fn sim(url: &str, ward: &str, beds: usize, seconds: f64, summary: &Path) -> Proc {
    let no_flags: &[&str] = &[];
    Proc::spawn(
        "sim",
        &mut sim_cmd(url, ward, beds, seconds, summary, no_flags),
    )
}

/// A file of the shared test data (`shared/data` beside the project), which must be there.
pub fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    assert!(
        p.exists(),
        "test data {} is missing: the shared/ folder must sit beside the project",
        p.display()
    );
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

/// What `vigilctl sim --summary` says it published: (bed, channel or vital, count) of samples,
/// chunks and readings.
#[derive(Debug)]
pub struct Published {
    pub samples: Vec<(String, String, u64)>,
    pub chunks: Vec<(String, String, u64)>,
    pub readings: Vec<(String, String, u64)>,
}

impl Published {
    pub fn read(summary: &Path) -> Published {
        let v: Value =
            serde_json::from_slice(&std::fs::read(summary).expect("sim summary written"))
                .expect("json");
        Published {
            samples: counts(&v["samples"]),
            chunks: counts(&v["chunks"]),
            readings: counts(&v["readings"]),
        }
    }

    /// Each kind: its name, what was published, what `s` holds.
    #[allow(clippy::type_complexity)]
    fn kinds<'a>(
        &'a self,
        s: &'a Summary,
    ) -> [(
        &'static str,
        &'a [(String, String, u64)],
        &'a std::collections::BTreeMap<(String, String), u64>,
    ); 3] {
        [
            ("samples", &self.samples, &s.samples),
            ("chunks", &self.chunks, &s.chunks),
            ("readings", &self.readings, &s.readings),
        ]
    }

    /// Whether `s` holds every sample, chunk and reading published, as many times as published.
    pub fn all_in(&self, s: &Summary) -> bool {
        self.kinds(s).iter().all(|(_, published, stored)| {
            published
                .iter()
                .all(|(b, c, n)| stored.get(&(b.clone(), c.clone())) == Some(n))
        })
    }

    /// Assert that `s` holds exactly what was published (no loss, no duplicates), naming the
    /// bed and channel (or vital) of what is not.
    pub fn assert_stored(&self, s: &Summary) {
        for (what, published, stored) in self.kinds(s) {
            for (bed, ch, n) in published {
                assert_eq!(
                    stored.get(&(bed.clone(), ch.clone())),
                    Some(n),
                    "{what} of {bed} {ch}"
                );
            }
        }
    }

    /// Assert that `s` has no sample or chunk stream on the beds whose key starts with `prefix`
    /// besides the published ones.
    pub fn assert_nothing_extra(&self, s: &Summary, prefix: &str) {
        for (what, published, stored) in &self.kinds(s)[..2] {
            let ours = stored.keys().filter(|(b, _)| b.starts_with(prefix)).count();
            assert_eq!(ours, published.len(), "no extra {what} streams: {stored:?}");
        }
    }

    /// Wait (`within` at most) until `db` holds exactly what was published and nothing else,
    /// then assert it.
    pub fn assert_stored_in(&self, db: &Path, within: Duration) {
        let stored = wait_for_summary(db, within, |s| self.all_in(s));
        self.assert_stored(&stored);
        self.assert_nothing_extra(&stored, "");
    }
}

/// What a run of vigilctl gave: exit code, standard output and error.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The first line of standard output that starts with `start`.
    pub fn line(&self, start: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting with {start:?}: {self:?}"))
    }

    /// The rest of the first line of standard output that starts with `prefix`.
    pub fn after(&self, prefix: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?}: {self:?}"))
            .to_string()
    }

    /// Standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run vigilctl to the end with `args`, `stdin` as standard input, as OS user "itdesk", with
/// $VIGIL_PASSWORD set to `password_env` (else unset).
pub fn run_vigilctl(args: &[&str], stdin: &str, password_env: Option<&str>) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(VIGILCTL);
    cmd.args(args)
        .env("USER", "itdesk")
        .env("RUST_LOG", "warn")
        .env_remove("VIGIL_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pw) = password_env {
        cmd.env("VIGIL_PASSWORD", pw);
    }
    let mut child = cmd.spawn().expect("spawn vigilctl");
    if let Some(mut input) = child.stdin.take() {
        // A command refused at argument parsing exits without reading its input: the pipe is
        // then closed under us, which is not a failure of the test.
        match input.write_all(stdin.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("write stdin: {e}"),
        }
    }
    let out = child.wait_with_output().expect("wait vigilctl");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
