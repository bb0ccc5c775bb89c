//! The process's log output, the same for the station's window and `vigilctl`: to standard
//! error, coloured only on a terminal, filtered by `RUST_LOG` or else [`DEFAULT_FILTER`].

use tracing_subscriber::EnvFilter;

/// Information and up; the embedded broker's chatter off, the MQTT client's warnings only.
pub const DEFAULT_FILTER: &str = "info,rumqttd=off,rumqttc=warn";

/// Install the log subscriber of this process. Call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
