//! Shared by the engine's test binaries that need a real broker: Mosquitto (from Debian) on a
//! free loopback port, stopped when dropped.

#[allow(dead_code)] // only the binaries that need a session bus use it
pub mod bus;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Mosquitto process, killed when dropped.
pub struct Mosq(Child);

impl Drop for Mosq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port below the ephemeral range, so that no client's source port (and no
/// other test's `bind(0)`) can take it between this choice and the broker's bind.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64 * 7919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for i in 0..5000u64 {
        let port = 30000 + ((seed + i * 7) % 10000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 30000..40000")
}

/// A program on the PATH or in /usr/sbin, /usr/bin.
pub fn find(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh"))
}

/// Mosquitto on a free loopback port with `settings` (lines of mosquitto.conf besides the
/// listener, the log file and the user), its files in `dir`; returns once it listens.
pub fn mosquitto_with(dir: &Path, settings: &str) -> (Mosq, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nlistener {port} 127.0.0.1\n{settings}\
             log_dest file {}\nuser root\n",
            dir.join("mosquitto.log").display()
        ),
    )
    .expect("conf");
    let child = Command::new(find("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Mosq(child), port)
}

/// An engine of ward 4W on the broker at loopback `port`, recording to `db`, with `policy`.
#[allow(dead_code)] // not every test binary starts an engine
pub fn engine(
    port: u16,
    client_id: &str,
    db: &Path,
    policy: vigil_core::ingest::IngestPolicy,
) -> vigil_core::engine::Engine {
    vigil_core::engine::Engine::start(config(port, client_id, db, policy)).expect("engine")
}

/// The configuration of [`engine`].
#[allow(dead_code)] // not every test binary starts an engine
pub fn config(
    port: u16,
    client_id: &str,
    db: &Path,
    policy: vigil_core::ingest::IngestPolicy,
) -> vigil_core::engine::EngineConfig {
    vigil_core::engine::EngineConfig {
        broker: format!("mqtt://127.0.0.1:{port}")
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

/// Wait (10 s at most) until `engine` is subscribed.
#[allow(dead_code)] // not every test binary starts an engine
pub async fn subscribed(engine: &vigil_core::engine::Engine) {
    let mut link = engine.link();
    while !link.borrow_and_update().subscribed {
        tokio::time::timeout(Duration::from_secs(10), link.changed())
            .await
            .expect("subscribed in time")
            .expect("link");
    }
}
