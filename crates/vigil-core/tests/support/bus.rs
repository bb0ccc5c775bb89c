//! A private D-Bus session bus for the test binaries that need one (desktop notifications,
//! the OS keyring): `dbus-daemon` with a minimal config (no service directories, so nothing is
//! bus-activated and no X display is needed). `DBUS_SESSION_BUS_ADDRESS` is process-global: a
//! test points the process at its bus with [`use_bus`], which holds [`ENV`] meanwhile. Needs
//! `dbus-daemon` (Debian package `dbus`, see scripts/setup.sh).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

/// Serialises the tests of a binary: each sets `DBUS_SESSION_BUS_ADDRESS` for its own bus.
pub static ENV: Mutex<()> = Mutex::new(());

/// A `dbus-daemon` of the test's own; killed (and reaped) on drop, its socket directory removed.
pub struct Bus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    pub fn start() -> Bus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("session.conf");
        // No <servicedir>: no bus activation (a desktop's dunst is never started behind our
        // back). Everyone may own and call anything: this bus only has the test on it.
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .expect("write bus config");
        // Its log (as root: a harmless "Failed to set fd limit") goes to a file, shown on failure.
        let log = dir.path().join("dbus-daemon.log");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("bus log"))
            .spawn()
            .expect("cannot run dbus-daemon (Debian package `dbus`, see scripts/setup.sh)");
        // The daemon prints its address once it listens; read it off a thread, bounded.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(r);
        });
        let address = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(line)) if !line.trim().is_empty() => line.trim().to_owned(),
            other => {
                let _ = child.kill();
                let status = child.wait();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("dbus-daemon gave no address: {other:?}, exit {status:?}\n{log}");
            }
        };
        Bus {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Takes [`ENV`] and points this process's session bus at `bus` until the guard is dropped.
pub fn use_bus(bus: &Bus) -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the others still run on their own bus.
    let guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: every test of this binary sets the variable only while holding ENV, and nothing
    // else in the process writes the environment.
    unsafe {
        std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    }
    guard
}
