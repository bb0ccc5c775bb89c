//! Desktop notifications without a session bus: an error, quickly; the queue never blocks.

use std::time::{Duration, Instant};

use vigil_core::alarms::Priority;
use vigil_core::notify::{show_with_timeout, Note, Notifier};

#[test]
fn no_bus_fails_fast_and_never_blocks_the_caller() {
    // SAFETY: this test binary has a single test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/vigil-test-bus",
        );
    }
    let note = Note {
        summary: "*** ALARM Bed 01".into(),
        body: "SpO2 LOW 84 % (limit 90)".into(),
        priority: Priority::High,
        alarm_id: "4W/01/SPO2_LOW".into(),
        withdraw: false,
    };
    let t = Instant::now();
    let r = show_with_timeout(&note, Duration::from_secs(2));
    assert!(r.is_err(), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let n = Notifier::spawn(Duration::from_millis(500));
    let t = Instant::now();
    for _ in 0..1000 {
        n.send(note.clone());
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "queueing blocked: {:?}",
        t.elapsed()
    );
}
