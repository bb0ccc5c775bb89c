//! Identity does not rest on the broker alone (issue 11, item 5): a broker on the network
//! without TLS or authentication is refused unless `insecure = true` (then a standing warning),
//! and at start the station checks, through a real Mosquitto with passwords and an ACL, that
//! the broker refuses its publish on a device's topic, and warns loudly when it does not.

use crate::support;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{find, mosquitto_with, Mosq};
use vigil_core::alarms::default_limits;
use vigil_core::config::{BrokerSection, BrokerSettings, ConfigError, Secret};
use vigil_core::engine::{AclCheck, Engine, EngineConfig, EngineError};
use vigil_core::ingest::IngestPolicy;
use vigil_core::security::Kind;

const PW: &str = "station-secret-2026";

/// Mosquitto on loopback with a password file (users `station-ok` and `station-open`) and the
/// ACL of docs/broker-security.md for `station-ok`; `station-open` may write everything.
fn mosquitto(dir: &Path) -> (Mosq, u16) {
    let pw = dir.join("passwd");
    std::fs::write(&pw, "").expect("passwd");
    for user in ["station-ok", "station-open"] {
        let st = Command::new(find("mosquitto_passwd"))
            .args(["-b"])
            .arg(&pw)
            .args([user, PW])
            .status()
            .expect("mosquitto_passwd");
        assert!(st.success());
    }
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "user station-ok\ntopic read vigil/v1/#\ntopic readwrite vigil/v1/+/+/_station/#\n\n\
         user station-open\ntopic readwrite vigil/v1/#\n\n\
         pattern readwrite vigil/v1/_station/%c/audit/head\n\
         pattern write vigil/v1/+/+/%u/#\n",
    )
    .expect("acl");
    mosquitto_with(
        dir,
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\n",
            pw.display(),
            acl.display()
        ),
    )
}

fn config(broker: BrokerSettings, dir: &Path, name: &str) -> EngineConfig {
    EngineConfig {
        broker,
        client_id: name.into(),
        ward: Some("4W".into()),
        db_path: dir.join(format!("{name}.db")),
        limits: default_limits(),
        policy: IngestPolicy::default(),
        mllp: None,
    }
}

fn section(toml_text: &str) -> BrokerSettings {
    let s: BrokerSection = toml::from_str(toml_text).expect("toml");
    s.settings().expect("settings").expect("a broker")
}

#[tokio::test]
async fn a_broker_on_the_network_without_tls_or_authentication_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // TEST-NET-1: never reached (the refusal comes first, or the connection just fails).
    for (text, why) in [
        (
            "url = \"mqtt://192.0.2.10:1883\"\nusername = \"st\"\npassword = \"x\"",
            "without TLS",
        ),
        ("url = \"mqtt://192.0.2.10:1883\"", "anonymous"),
    ] {
        let err = Engine::start(config(section(text), dir.path(), "st-refused"))
            .err()
            .expect("refused");
        match err {
            EngineError::Config(ConfigError::Insecure { why: w, .. }) => {
                assert!(w.contains(why), "{w}");
            }
            other => panic!("{other}"),
        }
        assert!(err_text(text).contains("insecure = true"));
    }
    // Allowed in so many words: it starts, and says so for as long as it runs.
    let s = section("url = \"mqtt://192.0.2.10:1883\"\ninsecure = true");
    let engine = Engine::start(config(s, dir.path(), "st-insecure")).expect("starts");
    let warnings = engine.link().borrow().warnings.clone();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("without TLS")));
    assert!(warnings.iter().any(|w| w.contains("anonymous")));
    engine.shutdown().await;
    // Loopback (the embedded broker, test brokers): unchanged, no warning, no probe.
    let s = section("url = \"mqtt://127.0.0.1:1\"");
    let engine = Engine::start(config(s, dir.path(), "st-loop")).expect("starts");
    assert!(engine.link().borrow().warnings.is_empty());
    assert_eq!(engine.acl_check(), AclCheck::Skipped);
    engine.shutdown().await;
}

fn err_text(text: &str) -> String {
    let s = section(text);
    s.check_trust()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

async fn verdict(engine: &Engine) -> AclCheck {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = engine.acl_check();
        if c != AclCheck::Pending {
            return c;
        }
        assert!(Instant::now() < deadline, "no ACL verdict within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_station_checks_that_the_broker_refuses_its_publish_on_a_device_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_mosq, port) = mosquitto(dir.path());
    let settings = |user: &str| {
        let mut s: BrokerSettings = format!("mqtt://127.0.0.1:{port}")
            .parse::<vigil_core::config::BrokerUrl>()
            .expect("url")
            .into();
        s.username = Some(user.into());
        s.password = Some(Secret::new(PW));
        s
    };
    // The ACL of docs/broker-security.md: the probe is refused, nothing to warn about.
    let ok = Engine::start(config(settings("station-ok"), dir.path(), "station-ok")).expect("ok");
    assert_eq!(verdict(&ok).await, AclCheck::Refused);
    assert!(ok.link().borrow().warnings.is_empty());
    ok.shutdown().await;
    // A station allowed to write everything: the probe comes back, loudly.
    let open =
        Engine::start(config(settings("station-open"), dir.path(), "station-open")).expect("open");
    assert_eq!(verdict(&open).await, AclCheck::Accepted);
    let warnings = open.link().borrow().warnings.clone();
    assert!(
        warnings.iter().any(|w| w.contains("ACL open")),
        "{warnings:?}"
    );
    // A high-severity security event: the station's SECURITY technical alarm.
    let now = chrono::Utc::now().timestamp_millis();
    let conds = open.security().alarm_conditions(now);
    assert!(
        conds
            .iter()
            .any(|(bed, text)| bed.is_none() && text.contains(Kind::BrokerAuth.label())),
        "{conds:?}"
    );
    // The probe is not telemetry: nothing stored, no bed created.
    assert!(
        open.snapshot().beds.is_empty(),
        "{:?}",
        open.snapshot().beds
    );
    open.shutdown().await;
}
