//! Station configuration: a TOML file (optional) plus command-line overrides.
//!
//! With no `[broker] url`, Vigil starts the embedded broker on loopback and a simulated ward;
//! with one, it connects there and simulates nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rumqttc::MqttOptions;
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("broker URL {0:?}: {1}")]
    BrokerUrl(String, &'static str),
    #[error("no platform data directory; set [storage] db in the config file or pass --db")]
    NoDataDir,
}

/// Where the MQTT broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
}

impl FromStr for BrokerUrl {
    type Err = ConfigError;

    /// `mqtt://host[:port]` (default port 1883).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ConfigError::BrokerUrl(s.to_string(), why);
        let rest = if let Some(r) = s.strip_prefix("mqtt://") {
            r
        } else if s.starts_with("mqtts://") {
            return Err(err(
                "TLS (mqtts://) is not supported by this version; use mqtt:// on a trusted network",
            ));
        } else {
            return Err(err("must start with mqtt://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            return Err(err("only mqtt://host[:port] is accepted"));
        }
        let (host, port) = if let Some(h) = rest.strip_prefix('[') {
            // [IPv6]:port
            let (h, p) = h.split_once(']').ok_or_else(|| err("unclosed ["))?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| err("bad port"))?,
                None if p.is_empty() => 1883,
                None => return Err(err("bad port")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| err("bad port"))?),
                None => (rest.to_string(), 1883),
            }
        };
        if host.is_empty() {
            return Err(err("missing host"));
        }
        if port == 0 {
            return Err(err("port 0"));
        }
        Ok(BrokerUrl { host, port })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

impl BrokerUrl {
    /// MQTT client options for this broker: keep-alive short enough to notice a dead link within
    /// seconds, packet limit above the largest payload the contract allows.
    pub fn mqtt_options(&self, client_id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(
            crate::telemetry::MAX_PAYLOAD_BYTES + 64 * 1024,
            crate::telemetry::MAX_PAYLOAD_BYTES + 64 * 1024,
        );
        o
    }
}

/// The TOML config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub broker: BrokerSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub simulator: SimulatorSection,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// `mqtt://host:port` of the hospital broker. Absent: embedded broker + simulated ward.
    pub url: Option<String>,
    /// MQTT client id of this station (persistent session); default derived from the host name.
    pub client_id: Option<String>,
    /// Only this ward's telemetry; default every ward on the broker.
    pub ward: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// SQLite database file; default `vigil.db` in the platform data directory.
    pub db: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    /// Beds in the simulated ward (embedded mode only); default 8.
    pub beds: Option<usize>,
}

impl FileConfig {
    /// Read a config file. `None`: the default file if it exists, else built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => match default_config_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(FileConfig::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path,
            source: Box::new(source),
        })
    }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Vigil", "vigil")
}

/// `vigil.toml` in the platform config directory (e.g. `~/.config/vigil/vigil.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("vigil.toml"))
}

/// `vigil.db` in the platform data directory (e.g. `~/.local/share/vigil/vigil.db`).
pub fn default_db_path() -> Result<PathBuf, ConfigError> {
    project_dirs()
        .map(|d| d.data_dir().join("vigil.db"))
        .ok_or(ConfigError::NoDataDir)
}

/// A client id for this station: stable across restarts so the broker keeps its session.
pub fn default_client_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "station".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("vigil-{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u: BrokerUrl = "mqtt://broker.ward4:8883".parse().expect("valid");
        assert_eq!((u.host.as_str(), u.port), ("broker.ward4", 8883));
        let u: BrokerUrl = "mqtt://10.0.0.5".parse().expect("valid");
        assert_eq!(u.port, 1883);
        let u: BrokerUrl = "mqtt://[::1]:1884/".parse().expect("valid");
        assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
        assert_eq!(u.to_string(), "mqtt://[::1]:1884");
        for bad in [
            "broker:1883",
            "http://x",
            "mqtt://",
            "mqtt://h:x",
            "mqtt://h:0",
            "mqtt://h:70000",
            "mqtt://u@h",
            "mqtts://h",
        ] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("vigil.toml");
        std::fs::write(
            &p,
            "[broker]\nurl = \"mqtt://127.0.0.1:1883\"\nward = \"4W\"\n[storage]\ndb = \"/tmp/x.db\"\n",
        )
        .expect("write");
        let c = FileConfig::load(Some(&p)).expect("loads");
        assert_eq!(c.broker.url.as_deref(), Some("mqtt://127.0.0.1:1883"));
        assert_eq!(c.broker.ward.as_deref(), Some("4W"));
        assert_eq!(c.storage.db, Some(PathBuf::from("/tmp/x.db")));
        std::fs::write(&p, "[broker]\nurll = 1\n").expect("write");
        let e = FileConfig::load(Some(&p)).expect_err("typo is an error");
        assert!(e.to_string().contains("urll"), "{e}");
        assert!(FileConfig::load(Some(&dir.path().join("missing.toml"))).is_err());
    }
}
