//! The engine's broker connection test ("Test connection" in the window, `vigilctl broker
//! test`) against a real broker, the embedded one, and against a port where none listens.

use std::time::Duration;

use vigil_core::config::{BrokerSettings, BrokerUrl, ProbeError};
use vigil_sim::broker;

#[tokio::test]
async fn probe_reaches_a_broker_and_reports_one_that_is_not_there() {
    let b = broker::start_embedded(None).unwrap();
    let ok: BrokerSettings = b.url().into();
    ok.probe(Duration::from_secs(10)).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone: BrokerSettings = BrokerUrl::plain("127.0.0.1", port).into();
    let e = gone.probe(Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(e, ProbeError::Connection(_)), "{e}");
}
