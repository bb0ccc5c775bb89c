//! Shared helpers of vigilctl's integration tests: child processes that clean up after
//! themselves, free loopback ports, a Mosquitto on a free port, `vigilctl record`.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil_core::store::{self, Summary};

pub const VIGILCTL: &str = env!("CARGO_BIN_EXE_vigilctl");

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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

/// Start Mosquitto on a free loopback port; returns the process and the port.
pub fn mosquitto(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
             persistence false\nmax_queued_messages 100000\nlog_dest file {}\nuser root\n",
            dir.join("mosquitto.log").display()
        ),
    )
    .expect("write mosquitto.conf");
    let child = Command::new(find_program("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let p = Proc {
        child,
        name: "mosquitto",
    };
    wait_for_port(port, Duration::from_secs(10));
    (p, port)
}

/// Start `vigilctl record` accepting unregistered devices, and wait until it subscribed.
pub fn record(url: &str, db: &Path, client_id: &str) -> Proc {
    record_with(url, db, client_id, &["--allow-unregistered"])
}

/// Start `vigilctl record` with extra flags and wait until it reports its subscription.
pub fn record_with(url: &str, db: &Path, client_id: &str, extra: &[&str]) -> Proc {
    // An empty config file, so that a developer's own vigil.toml cannot change the test.
    let config = db.with_extension("toml");
    std::fs::write(&config, "").expect("write config");
    let mut child = Command::new(VIGILCTL)
        .args(["record", "--broker", url, "--client-id", client_id])
        .args(extra)
        .arg("--db")
        .arg(db)
        .env("VIGIL_CONFIG", &config)
        .env("RUST_LOG", "info,rumqttd=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vigilctl record");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("record: {line}");
            let _ = tx.send(line);
        }
    });
    let proc = Proc {
        child,
        name: "vigilctl record",
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with("subscribed") => break,
            Ok(_) => {}
            Err(e) => panic!("record did not subscribe within 20 s: {e}"),
        }
    }
    proc
}

/// Poll the database until `done` holds for its summary, or fail after `within`.
pub fn wait_for_summary(db: &Path, within: Duration, done: impl Fn(&Summary) -> bool) -> Summary {
    let deadline = Instant::now() + within;
    loop {
        let s = store::open_read_only(db)
            .and_then(|c| Summary::read(&c))
            .unwrap_or_default();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
