//! Desktop notifications end to end on a real D-Bus: each test starts its own private session bus
//! (`dbus-daemon` with a minimal config: no service directories, so nothing is bus-activated and
//! no X display is needed) and a stand-in `org.freedesktop.Notifications` server (zbus) on it,
//! points the notifier at that bus and raises alarms through [`Notifier::alarm`], the call the
//! engine makes.
//!
//! Its own test binary: `DBUS_SESSION_BUS_ADDRESS` is process-global, so the tests here take
//! `support::bus::ENV` for their whole run (`use_bus`).

use crate::support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::bus::{use_bus, Bus};

use vigil_core::alarms::{AlarmConfig, AlarmEvent, AlarmEventKind, AlarmMachine, Priority};
use vigil_core::codes::Vital;
use vigil_core::notify::{show_with_timeout, Note, Notifier, NotifyError};
use vigil_core::telemetry::{BedId, Reading};
use zbus::{OwnedVariant, Variant};

const T0: i64 = 1_700_000_000_000;
/// Freedesktop urgency hint values.
const NORMAL: u8 = 1;
const CRITICAL: u8 = 2;

// ---------------------------------------------------------------------------------------------
// A stand-in notification server.

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    app: String,
    summary: String,
    body: String,
    urgency: Option<u8>,
    /// The notification it replaces (0: a new one).
    replaces: u32,
}

struct Notifications {
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: Arc<Mutex<Vec<u32>>>,
    /// Never answer `Notify` (after recording it): a hung notification daemon.
    hang: bool,
    next_id: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let urgency = hints.get("urgency").and_then(|v| match &**v {
            Variant::U8(b) => Some(*b),
            _ => None,
        });
        self.seen.lock().unwrap().push(Seen {
            app: app_name,
            summary,
            body,
            urgency,
            replaces: replaces_id,
        });
        if self.hang {
            std::future::pending::<()>().await;
        }
        if replaces_id != 0 {
            return replaces_id;
        }
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    #[zbus(out_args("name", "vendor", "version", "spec_version"))]
    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "vigil-test".into(),
            "Vigil".into(),
            "0".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, id: u32) {
        self.closed.lock().unwrap().push(id);
    }
}

/// The server's connection (served by zbus's helper thread while held) and what it saw.
struct Server {
    _conn: zbus::Connection,
    seen: Arc<Mutex<Vec<Seen>>>,
    closed: Arc<Mutex<Vec<u32>>>,
}

impl Server {
    fn start(bus: &Bus, hang: bool) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let iface = Notifications {
            seen: Arc::clone(&seen),
            closed: Arc::clone(&closed),
            hang,
            next_id: AtomicU32::new(1),
        };
        let conn = zbus::block_on(
            zbus::connection::Builder::address(bus.address.as_str())
                .name("org.freedesktop.Notifications")
                .serve_at("/org/freedesktop/Notifications", iface)
                .build(),
        )
        .expect("notification server on the private bus");
        Server {
            _conn: conn,
            seen,
            closed,
        }
    }

    /// Wait (bounded) until the server has seen `n` notifications; returns them.
    fn wait_for(&self, n: usize, within: Duration) -> Vec<Seen> {
        settle(within, || self.seen.lock().unwrap().len() >= n);
        self.seen.lock().unwrap().clone()
    }
}

/// A private bus with the stand-in server on it (`hang`: one that never answers), this process's
/// session bus pointed at it, and a notifier with `timeout`; dropped in the reverse order.
struct Desktop {
    notifier: Notifier,
    server: Server,
    _env: std::sync::MutexGuard<'static, ()>,
    _bus: Bus,
}

fn desktop(hang: bool, timeout: Duration) -> Desktop {
    let bus = Bus::start();
    let env = use_bus(&bus);
    let server = Server::start(&bus, hang);
    Desktop {
        notifier: Notifier::spawn(timeout),
        server,
        _env: env,
        _bus: bus,
    }
}

/// Poll `done` every 10 ms until it holds or `within` has passed; the assertions that follow
/// say what is missing.
fn settle(within: Duration, done: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while !done() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The notifier's counters: (shown, failed, dropped).
fn counts(notifier: &Notifier) -> (u64, u64, u64) {
    let st = notifier.stats();
    (
        st.shown.load(Ordering::Relaxed),
        st.failed.load(Ordering::Relaxed),
        st.dropped.load(Ordering::Relaxed),
    )
}

// ---------------------------------------------------------------------------------------------
// Alarms from the real state machine.

fn machine() -> AlarmMachine {
    let mut c = AlarmConfig::default();
    c.news2.enabled = false;
    AlarmMachine::new(c)
}

fn bed() -> BedId {
    BedId::new("4W", "01")
}

/// SpO2 85 % for 10 s: the high-priority SPO2_LOW raise.
fn spo2_low_raise() -> AlarmEvent {
    let mut m = machine();
    m.observe(&bed(), &Reading::new(Vital::SpO2, Some(85.0), T0), T0);
    let ev = m.tick(T0 + 10_000);
    let e = ev
        .into_iter()
        .find(|e| e.kind == AlarmEventKind::Raise)
        .expect("SPO2_LOW raised");
    assert_eq!((e.code.as_str(), e.priority), ("SPO2_LOW", Priority::High));
    e
}

/// HR 130.5 /min: the medium-priority HR_HIGH raise (at once).
fn hr_high_raise() -> AlarmEvent {
    let mut m = machine();
    let ev = m.observe(&bed(), &Reading::new(Vital::Hr, Some(130.5), T0), T0);
    let e = ev
        .into_iter()
        .find(|e| e.kind == AlarmEventKind::Raise)
        .expect("HR_HIGH raised");
    assert_eq!((e.code.as_str(), e.priority), ("HR_HIGH", Priority::Medium));
    e
}

// ---------------------------------------------------------------------------------------------

#[test]
fn raised_alarms_reach_the_notification_server_with_their_urgency() {
    let d = desktop(false, Duration::from_secs(2));
    let (server, notifier) = (&d.server, &d.notifier);

    let high = spo2_low_raise();
    let t = Instant::now();
    notifier.alarm(&high);
    let seen = server.wait_for(1, Duration::from_secs(5));
    let latency = t.elapsed();
    assert_eq!(
        seen,
        [Seen {
            app: "Vigil".into(),
            summary: "*** ALARM Bed 01".into(),
            body: high.message.clone(),
            urgency: Some(CRITICAL),
            replaces: 0,
        }],
        "after {latency:?}"
    );
    assert!(high.message.starts_with("SpO2 LOW"), "{}", high.message);

    let medium = hr_high_raise();
    notifier.alarm(&medium);
    let seen = server.wait_for(2, Duration::from_secs(5));
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[1],
        Seen {
            app: "Vigil".into(),
            summary: "** ALARM Bed 01".into(),
            body: "HR HIGH 130.5 /min (limit 120)".into(),
            urgency: Some(NORMAL),
            replaces: 0,
        }
    );

    // A pause or a settings change changes no notification.
    let mut pause = medium.clone();
    pause.kind = AlarmEventKind::Pause;
    notifier.alarm(&pause);

    // Both shown, counted as such (the counter follows the server's reply).
    settle(Duration::from_secs(5), || {
        notifier.stats().shown.load(Ordering::Relaxed) >= 2
    });
    assert_eq!(counts(notifier), (2, 0, 0), "shown, failed, dropped");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.seen.lock().unwrap().len(), 2, "pause notified");
    eprintln!("first notification on the bus after {latency:?}");
}

#[test]
fn a_notification_follows_its_alarm_updated_then_withdrawn() {
    let d = desktop(false, Duration::from_secs(2));
    let (server, notifier) = (&d.server, &d.notifier);
    // The high-priority alarm clears by itself (latched by default), then is acknowledged.
    let mut m = machine();
    let b = bed();
    let mut events = Vec::new();
    events.extend(m.observe(&b, &Reading::new(Vital::SpO2, Some(84.0), T0), T0));
    events.extend(m.tick(T0 + 10_000));
    events.extend(m.observe(
        &b,
        &Reading::new(Vital::SpO2, Some(96.0), T0 + 23_000),
        T0 + 23_000,
    ));
    events.extend(
        m.acknowledge("4W/01/SPO2_LOW", "nina", T0 + 60_000)
            .expect("ack"),
    );
    for e in &events {
        notifier.alarm(e);
    }
    let seen = server.wait_for(2, Duration::from_secs(5));
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].summary, "*** ALARM Bed 01");
    assert_eq!(seen[0].replaces, 0);
    // Updated in place when it latched, never left saying it is still on.
    assert_eq!(seen[1].summary, "*** LATCHED Bed 01");
    assert_ne!(seen[1].replaces, 0, "replaces the first one");
    settle(Duration::from_secs(5), || {
        !server.closed.lock().unwrap().is_empty()
    });
    assert_eq!(
        *server.closed.lock().unwrap(),
        [seen[1].replaces],
        "withdrawn once acknowledged"
    );
    assert_eq!(notifier.stats().withdrawn.load(Ordering::Relaxed), 1);
}

#[test]
fn a_hung_notification_server_never_delays_the_caller() {
    let d = desktop(true, Duration::from_millis(500));
    let (server, notifier) = (&d.server, &d.notifier);

    // The engine's call returns at once, every time, while the server sits on the first Notify.
    let high = spo2_low_raise();
    for _ in 0..50 {
        let t = Instant::now();
        notifier.alarm(&high);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "Notifier::alarm blocked for {:?}",
            t.elapsed()
        );
    }
    // The server really got (and hung on) the notification: this is a hang, not a missing bus.
    let seen = server.wait_for(1, Duration::from_secs(5));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].urgency, Some(CRITICAL));

    // The worker gives up on it after its timeout and skips the rest while it is stuck, rather
    // than piling up threads or calls on the hung server.
    settle(Duration::from_secs(5), || {
        notifier.stats().failed.load(Ordering::Relaxed) >= 50
    });
    assert_eq!(counts(notifier), (0, 50, 0), "shown, failed, dropped");
    assert_eq!(server.seen.lock().unwrap().len(), 1);

    // A direct show is bounded by its timeout too.
    let note = Note::for_event(&high).expect("a raise is notified");
    let t = Instant::now();
    let r = show_with_timeout(&note, Duration::from_millis(300));
    assert_eq!(r, Err(NotifyError::Timeout(Duration::from_millis(300))));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}
