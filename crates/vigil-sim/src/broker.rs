//! The embedded MQTT broker (rumqttd) used when no hospital broker is configured. It listens on
//! loopback only and lives until the process exits (rumqttd has no shutdown API).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use thiserror::Error;

use vigil_core::config::BrokerUrl;

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot find a free loopback port: {0}")]
    Port(std::io::Error),
    #[error("embedded broker configuration: {0}")]
    Config(String),
    #[error("embedded broker did not accept connections on {0} within 10 s")]
    NotListening(SocketAddr),
    #[error("cannot start broker thread: {0}")]
    Thread(std::io::Error),
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    pub fn url(&self) -> BrokerUrl {
        BrokerUrl::plain(self.addr.ip().to_string(), self.addr.port())
    }
}

/// A loopback port that is free now.
pub fn free_loopback_port() -> Result<u16, BrokerError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(BrokerError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(BrokerError::Port)
}

/// Start the embedded broker on `127.0.0.1:port` (a free port when `None`) and wait until it
/// accepts connections.
pub fn start_embedded(port: Option<u16>) -> Result<EmbeddedBroker, BrokerError> {
    let port = match port {
        Some(p) => p,
        None => free_loopback_port()?,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // rumqttd is configured through its serde config; loopback only, payloads up to the
    // contract's limit, enough in-flight messages for a full-rate ward.
    let toml_cfg = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 1000
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "{addr}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {max}
    max_inflight_count = 1000
    dynamic_filters = true
"#,
        max = vigil_contract::telemetry::MAX_PAYLOAD_BYTES + 64 * 1024
    );
    let cfg: rumqttd::Config =
        toml::from_str(&toml_cfg).map_err(|e| BrokerError::Config(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(cfg);
    std::thread::Builder::new()
        .name("vigil-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(BrokerError::NotListening(addr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(%addr, "embedded MQTT broker listening");
    Ok(EmbeddedBroker { addr })
}
