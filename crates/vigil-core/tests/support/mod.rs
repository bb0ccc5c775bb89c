//! Shared by the engine's test binaries: Mosquitto (from Debian) on a free loopback port, stopped
//! when dropped; an engine on it (or offline); waiting; the test data folder. Each binary uses its
//! own subset.
#![allow(dead_code)]

pub mod bus;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[allow(unused_imports)] // each binary uses its own subset
pub use common::{
    engine_config, find_program as find, offline_engine, subscribed, wait_until_async as wait_until,
};

/// A Mosquitto process, killed when dropped.
pub struct Mosq(Child);

impl Drop for Mosq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port in 30000..40000 (vigilctl's tests take 20000..30000).
pub fn free_port() -> u16 {
    common::free_port_in(30000)
}

/// Mosquitto on a free loopback port with `settings` (lines of mosquitto.conf besides the
/// listener, the log file and the user), its files in `dir`; returns once it listens.
pub fn mosquitto_with(dir: &Path, settings: &str) -> (Mosq, u16) {
    let port = free_port();
    let conf = common::mosquitto_conf(dir, port, "", settings);
    let child = Command::new(find("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    let mosq = Mosq(child);
    common::wait_for_port(port, Duration::from_secs(10));
    (mosq, port)
}

/// The configuration of an engine of ward 4W on the broker at loopback `port`, recording to
/// `db`, with `policy` (started with `Engine::start` or one of its variants).
pub fn config(
    port: u16,
    client_id: &str,
    db: &Path,
    policy: vigil_core::ingest::IngestPolicy,
) -> vigil_core::engine::EngineConfig {
    common::engine_config(&format!("mqtt://127.0.0.1:{port}"), client_id, db, policy)
}

/// The shared test data folder (`shared/data` beside the repository) with the subfolders the
/// tests read; these tests need it and do not skip, `why` says what for.
pub fn data_dir(why: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        dir.join("fhir_r4").is_dir() && dir.join("hl7v2").is_dir(),
        "test data folder {} is missing (expected shared/data beside the repository, with \
         fhir_r4/ and hl7v2/); {why} and these tests do not skip",
        dir.display()
    );
    dir
}

/// The files of `dir` (not its subfolders), sorted; there must be some.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no files in {}", dir.display());
    v
}

/// The bytes of a file, naming it if it cannot be read.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The kinds of `events`, in order.
pub fn event_kinds(
    events: &[vigil_core::alarms::AlarmEvent],
) -> Vec<vigil_core::alarms::AlarmEventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// Assert that `text` contains `want`, showing both when it does not.
#[track_caller]
pub fn assert_says(text: &str, want: &str) {
    assert!(text.contains(want), "{text:?} does not say {want:?}");
}

/// An engine for the remote patients' tests: on `clock`, watching `ward` (`None`: every ward),
/// its remote watch passing every `tick` (subscribed on return).
pub async fn remote_engine(
    port: u16,
    db: &Path,
    ward: Option<&str>,
    tick: Duration,
    clock: &std::sync::Arc<vigil_core::engine::ManualClock>,
) -> vigil_core::engine::Engine {
    use vigil_core::engine::{AlarmOptions, Clock, Engine, SecurityOptions};
    let mut cfg = config(port, "station-remote", db, Default::default());
    cfg.ward = ward.map(str::to_string);
    let engine = Engine::start_clocked(
        cfg,
        AlarmOptions {
            remote_tick: tick,
            ..AlarmOptions::default()
        },
        SecurityOptions::default(),
        std::sync::Arc::clone(clock) as std::sync::Arc<dyn Clock>,
    )
    .expect("engine");
    subscribed(&engine).await;
    engine
}

/// Poll `f` every 10 ms until it says it holds, at most `within`; fails naming `what` with the
/// last value it read.
pub async fn until<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> (bool, T),
) {
    let t = std::time::Instant::now();
    loop {
        let (ok, v) = f();
        if ok {
            return;
        }
        assert!(t.elapsed() < within, "{what}: {v:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
