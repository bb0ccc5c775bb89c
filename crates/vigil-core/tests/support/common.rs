//! Test helpers shared by the engine's test binaries and by vigilctl's (whose `tests/support`
//! includes this file by path): free loopback ports, programs on the PATH, Mosquitto's
//! configuration file, an engine of ward 4W on a broker or offline, and waiting.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_core::engine::{Engine, EngineConfig};
use vigil_core::ingest::IngestPolicy;

/// A free loopback port in `base..base + 10000`, below the ephemeral range, so that no client's
/// source port (and no other test's `bind(0)`) can take it between this choice and the bind.
/// Each crate's tests take their own range.
pub fn free_port_in(base: u16) -> u16 {
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for i in 0..5000u64 {
        let port = base + ((seed + i * 7) % 10000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {base}..{}", base + 10000)
}

/// A program on the PATH or in /usr/sbin, /usr/bin.
pub fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh to install it"))
}

/// Wait until something listens on loopback `port`.
pub fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on {port} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Write `dir/mosquitto.conf` for one listener on loopback `port`, logging to
/// `dir/mosquitto.log`: `global` lines come before the listener, `listener` lines after it (with
/// `per_listener_settings true`, the security settings there are the listener's).
pub fn mosquitto_conf(dir: &Path, port: u16, global: &str, listener: &str) -> PathBuf {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nuser root\n{global}log_dest file {log}\n\
             listener {port} 127.0.0.1\n{listener}",
            log = dir.join("mosquitto.log").display(),
        ),
    )
    .expect("write mosquitto.conf");
    conf
}

/// The configuration of an engine of ward 4W on the broker at `broker`, recording to `db`, with
/// the default limits and `policy`.
pub fn engine_config(
    broker: &str,
    client_id: &str,
    db: &Path,
    policy: IngestPolicy,
) -> EngineConfig {
    EngineConfig {
        broker: broker
            .parse::<vigil_core::config::BrokerUrl>()
            .expect("url")
            .into(),
        client_id: client_id.into(),
        ward: Some("4W".into()),
        db_path: db.to_path_buf(),
        limits: vigil_core::alarms::default_limits(),
        policy,
        mllp: None,
    }
}

/// An engine of ward 4W on the broker at `broker`, recording to `db`, with `policy`.
pub fn engine_on(broker: &str, client_id: &str, db: &Path, policy: IngestPolicy) -> Engine {
    Engine::start(engine_config(broker, client_id, db, policy)).expect("engine")
}

/// A station of ward 4W on `db` that starts offline (nothing listens on port 9): what it
/// reads from its database needs no broker.
pub fn offline_engine(client_id: &str, db: &Path) -> Engine {
    engine_on("mqtt://127.0.0.1:9", client_id, db, IngestPolicy::default())
}

/// Wait (10 s at most) until `engine` is subscribed.
pub async fn subscribed(engine: &Engine) {
    let mut link = engine.link();
    while !link.borrow_and_update().subscribed {
        tokio::time::timeout(Duration::from_secs(10), link.changed())
            .await
            .expect("subscribed in time")
            .expect("link");
    }
}

/// Poll `f` (every 100 ms) until it holds; fails naming `what` after `within`. Returns how long
/// it took.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.elapsed()
}

/// [`wait_until`] for async tests: sleeps on the runtime between polls (every 10 ms).
pub async fn wait_until_async(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> bool,
) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}
