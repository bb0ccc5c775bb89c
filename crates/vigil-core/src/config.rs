//! Station configuration: a TOML file (optional) plus command-line overrides.
//!
//! With no `[broker] url`, Vigil starts the embedded broker on loopback and a simulated ward;
//! with one, it connects there and simulates nothing.
//!
//! The broker connection ([`BrokerSettings`]): `mqtt://` or `mqtts://` (TLS, rustls), a CA bundle,
//! an optional client certificate and key (mutual TLS; the broker maps the certificate's CN to
//! the MQTT user name), an optional user name and password. The password never appears in logs
//! or `Debug` output ([`Secret`]). See `docs/broker-security.md`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::rustls;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use thiserror::Error;

/// Environment variable with the broker password when the config names none
/// (`password` / `password_env`) and a user name is set.
pub const PASSWORD_ENV: &str = "VIGIL_MQTT_PASSWORD";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write config file {path}: {source}")]
    Write {
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
    /// A TLS file (CA bundle, client certificate, client key) cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A TLS file was read but holds no usable PEM content.
    #[error("{what} {path}: {reason}")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// Broker settings that do not fit together (e.g. a client certificate without its key).
    #[error("broker settings: {0}")]
    Broker(String),
    /// `password_env` names a variable that is not set.
    #[error("environment variable {0} (broker password_env) is not set or not valid UTF-8")]
    PasswordEnv(String),
    /// A broker on the network without TLS or without authentication, not allowed by
    /// `[broker] insecure = true`.
    #[error(
        "broker {url} is not on this machine and the connection would be {why}: refused. Use \
         mqtts:// with a client certificate or a user name (docs/broker-security.md), or set \
         [broker] insecure = true to accept the risk (the station then warns at all times)"
    )]
    Insecure { url: String, why: String },
    /// MLLP settings that would expose the listener, or are unusable (the message says the fix).
    #[error(transparent)]
    Mllp(#[from] crate::interop::mllp::MllpConfigError),
    /// TLS settings that do not fit together (other than the broker's).
    #[error("{0}")]
    Tls(String),
    /// The config file is readable by other users (the message says the fix).
    #[error(transparent)]
    Mode(#[from] crate::secure_fs::ModeError),
    /// The data directory cannot be created, or others can reach it.
    #[error(transparent)]
    DataDir(#[from] crate::secure_fs::PrepareError),
}

/// Where the MQTT broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS (rustls) to the broker.
    pub tls: bool,
}

impl BrokerUrl {
    /// A plain (`mqtt://`) broker address.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        BrokerUrl {
            host: host.into(),
            port,
            tls: false,
        }
    }
}

impl FromStr for BrokerUrl {
    type Err = ConfigError;

    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (TLS, default 8883).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ConfigError::BrokerUrl(s.to_string(), why);
        let (rest, tls, default_port) = if let Some(r) = s.strip_prefix("mqtt://") {
            (r, false, 1883)
        } else if let Some(r) = s.strip_prefix("mqtts://") {
            (r, true, 8883)
        } else {
            return Err(err("must start with mqtt:// or mqtts://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            return Err(err(
                "only mqtt[s]://host[:port] is accepted (credentials go in the config, not the URL)",
            ));
        }
        let (host, port) = if let Some(h) = rest.strip_prefix('[') {
            // [IPv6]:port
            let (h, p) = h.split_once(']').ok_or_else(|| err("unclosed ["))?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| err("bad port"))?,
                None if p.is_empty() => default_port,
                None => return Err(err("bad port")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| err("bad port"))?),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(err("missing host"));
        }
        if port == 0 {
            return Err(err("port 0"));
        }
        Ok(BrokerUrl { host, port, tls })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A password. Never printed: `Debug` shows `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to reach and authenticate to the broker: URL, TLS files, credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    pub url: BrokerUrl,
    /// CA bundle (PEM) that signed the broker's certificate; required for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM, leaf first) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, SEC1 or PKCS#1) of `cert_file`.
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `[broker] insecure = true`: a broker on the network without TLS or without
    /// authentication is accepted (see [`BrokerSettings::check_trust`]).
    pub insecure: bool,
}

impl From<BrokerUrl> for BrokerSettings {
    /// No TLS files, no credentials (the embedded broker, a plain test broker).
    fn from(url: BrokerUrl) -> Self {
        BrokerSettings {
            url,
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password: None,
            insecure: false,
        }
    }
}

impl fmt::Display for BrokerSettings {
    /// The URL, and how this client authenticates (never the password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)?;
        if self.cert_file.is_some() {
            f.write_str(" (client certificate)")?;
        }
        if let Some(u) = &self.username {
            write!(f, " (user {u})")?;
        }
        Ok(())
    }
}

impl BrokerSettings {
    /// Check that the settings fit together, without reading any file.
    pub fn check(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError::Broker(m.to_string()));
        let files = self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        if files && !self.url.tls {
            return err(&format!(
                "TLS files (ca_file, cert_file, key_file) are set but the URL {} is not TLS; use mqtts://",
                self.url
            ));
        }
        if self.url.tls && self.ca_file.is_none() {
            return err("mqtts:// needs the CA bundle that signed the broker's certificate ([broker] ca_file, --ca)");
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return err("a client certificate needs its key and the other way round (cert_file and key_file, --cert and --key)");
        }
        if self.password.is_some() && self.username.is_none() {
            return err("a password needs a user name ([broker] username, --username)");
        }
        if self.username.as_deref() == Some("") {
            return err("empty user name");
        }
        Ok(())
    }

    /// The rustls client configuration for `mqtts://` (`None` for `mqtt://`): the CA bundle as
    /// the only trust anchors, and the client certificate and key for mutual TLS. Every file is
    /// read and checked here, so a bad file is reported at start-up with its name, not as a
    /// handshake failure later.
    pub fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ConfigError> {
        self.check()?;
        if !self.url.tls {
            return Ok(None);
        }
        let Some(ca_file) = &self.ca_file else {
            return Err(ConfigError::Broker("mqtts:// needs a CA bundle".into()));
        };
        tls_client_config(ca_file, self.cert_file.as_deref(), self.key_file.as_deref()).map(Some)
    }

    /// MQTT client options for `client_id`: TLS and credentials as configured, a persistent
    /// session (clean session off: the broker keeps QoS 1 messages and subscriptions while the
    /// client is away), keep-alive short enough to notice a dead link within seconds, packet
    /// limit above the largest payload the contract allows. Reads the TLS files.
    pub fn mqtt_options(&self, client_id: &str) -> Result<MqttOptions, ConfigError> {
        if client_id.is_empty() || client_id.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ConfigError::Broker(format!(
                "MQTT client id {client_id:?} must be non-empty, without spaces"
            )));
        }
        let tls = self.tls_config()?;
        let mut o = MqttOptions::new(client_id, self.url.host.clone(), self.url.port);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_clean_session(false);
        o.set_max_packet_size(
            crate::telemetry::MAX_PAYLOAD_BYTES + 64 * 1024,
            crate::telemetry::MAX_PAYLOAD_BYTES + 64 * 1024,
        );
        if let Some(tls) = tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
        }
        if let Some(user) = &self.username {
            let password = self.password.as_ref().map(Secret::expose).unwrap_or("");
            o.set_credentials(user.clone(), password);
        }
        Ok(o)
    }

    /// A password would cross the network in clear text (no TLS).
    pub fn password_in_clear(&self) -> bool {
        self.password.is_some() && !self.url.tls
    }

    /// The broker is on this machine (a loopback address or `localhost`): nothing crosses a
    /// network (the embedded broker, test brokers).
    pub fn on_loopback(&self) -> bool {
        let h = self.url.host.as_str();
        h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The station authenticates itself (a user name or a client certificate).
    pub fn authenticated(&self) -> bool {
        self.username.is_some() || self.cert_file.is_some()
    }

    /// What makes this connection untrustworthy across a network: no TLS, no authentication.
    /// Empty for a broker on loopback.
    pub fn exposure(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.on_loopback() {
            return out;
        }
        if !self.url.tls {
            out.push("plain mqtt:// without TLS (readings and alarm state readable and forgeable on the network)");
        }
        if !self.authenticated() {
            out.push("anonymous (no user name or client certificate: any client may connect)");
        }
        out
    }

    /// Refuse a broker on the network without TLS or without authentication unless
    /// `insecure = true`; with it, the standing warnings to show.
    pub fn check_trust(&self) -> Result<Vec<String>, ConfigError> {
        let exposure = self.exposure();
        if exposure.is_empty() {
            return Ok(Vec::new());
        }
        if !self.insecure {
            return Err(ConfigError::Insecure {
                url: self.url.to_string(),
                why: exposure.join(" and "),
            });
        }
        Ok(exposure
            .iter()
            .map(|w| format!("{}: {w}; allowed by insecure = true", self.url))
            .collect())
    }
}

/// A rustls server configuration that requires a client certificate signed by
/// `client_ca_file` (MLLP over TLS). Every file is read and checked here, so a bad file is
/// reported with its name.
pub fn tls_server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: &Path,
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    const KEY: &str = "MLLP key";
    let roots = read_roots("client CA bundle", client_ca_file)?;
    let provider = crypto_provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| ConfigError::Tls(format!("MLLP client certificate check: {e}")))?;
    let certs = read_certs("MLLP certificate", cert_file)?;
    let key = read_key(KEY, key_file)?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(format!("TLS set-up: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError::BadPem {
            what: KEY,
            path: key_file.to_path_buf(),
            reason: format!("does not fit the certificate {}: {e}", cert_file.display()),
        })?;
    Ok(Arc::new(config))
}

/// A rustls client configuration: the CA bundle as the only trust anchors, and a client
/// certificate and key for mutual TLS. Every file is read and checked here, so a bad file is
/// reported with its name, not as a handshake failure later. Used for the broker and for
/// syslog over TLS.
pub fn tls_client_config(
    ca_file: &Path,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let roots = read_roots("CA bundle", ca_file)?;
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Broker(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots);
    let config = match (cert_file, key_file) {
        (Some(cert_file), Some(key_file)) => {
            const KEY: &str = "client key";
            let certs = read_certs("client certificate", cert_file)?;
            let key = read_key(KEY, key_file)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ConfigError::BadPem {
                    what: KEY,
                    path: key_file.to_path_buf(),
                    reason: format!(
                        "does not fit the client certificate {}: {e}",
                        cert_file.display()
                    ),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The process-wide rustls provider if one was installed, else rustls' default (aws-lc-rs, as
/// enabled by rumqttc): explicit, so two providers in the build cannot make it ambiguous.
fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The certificates of a CA bundle as the only trust anchors.
fn read_roots(what: &'static str, path: &Path) -> Result<rustls::RootCertStore, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in read_certs(what, path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| ConfigError::BadPem {
            what,
            path: path.to_path_buf(),
            reason: format!("certificate {} is not a usable CA certificate: {e}", i + 1),
        })?;
    }
    Ok(roots)
}

/// The private key of a PEM file (PKCS#8, EC or RSA).
fn read_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read_tls_file(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ConfigError::BadPem {
        what,
        path: path.to_path_buf(),
        reason: pem_reason(e, "PRIVATE KEY (PKCS#8), EC PRIVATE KEY or RSA PRIVATE KEY"),
    })
}

fn read_tls_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::TlsFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every `CERTIFICATE` block of a PEM file; at least one.
fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_tls_file(what, path)?;
    let bad = |reason: String| ConfigError::BadPem {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_reason(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(bad("no PEM CERTIFICATE block found".into()));
    }
    Ok(certs)
}

fn pem_reason(e: rustls::pki_types::pem::Error, expected: &str) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!("no PEM {expected} block found"),
        e => format!("not valid PEM: {e}"),
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
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub sound: SoundSection,
    #[serde(default)]
    pub security: SecuritySection,
    #[serde(default)]
    pub reports: ReportsSection,
}

/// `[reports]`: how the station prints (validated by `report::ReportSettings::from_section`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportsSection {
    /// IANA zone the documents' times are printed in; default: the workstation's.
    pub time_zone: Option<String>,
    /// How long before an alarm's onset its strip starts (default 10 s, at most 30).
    pub strip_before_s: Option<i64>,
    /// How long after the onset a strip runs; default: to the end of the alarm (at least 6 s
    /// after the onset, at most 60 s in all).
    pub strip_after_s: Option<i64>,
    /// Priorities of the physiological alarms whose strip is saved automatically (default
    /// `["high"]`; `[]` saves none).
    pub auto_strip: Option<Vec<String>>,
    /// Where automatic strips are saved; default `strips/` beside the database.
    pub strip_dir: Option<PathBuf>,
    /// ECG gain of strips, mm/mV: 5, 10 (default) or 20.
    pub gain_mm_mv: Option<f64>,
    /// Resolution of PNG documents (default 254 dpi: 10 pixels per millimetre).
    pub dpi: Option<f64>,
}

/// `[sound]`: the station's alarm sound.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SoundSection {
    /// Output device as the audio layer names it (`alsa:default`, `alsa:hw:1,0`); default:
    /// the system's default output. A device that cannot be opened is a technical alarm.
    pub device: Option<String>,
}

/// `[security]`: the station key, syslog forwarding, audit-head publication and the security
/// event thresholds (docs/security.md).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// `file` (default) or `keyring` (the OS keyring; a key file when none answers).
    pub key_store: Option<String>,
    /// Key file (root-only, mode 0400/0600), e.g. `/etc/vigil/station.key`; default
    /// `<database>.key` beside the database.
    pub key_file: Option<PathBuf>,
    /// Forward security events and audit heads to syslog: `udp://host:514`, `tcp://host:601`
    /// or `tls://host:6514` (RFC 5424).
    pub syslog: Option<String>,
    /// CA bundle of the syslog collector's certificate (for `tls://`).
    pub syslog_ca_file: Option<PathBuf>,
    /// Client certificate and key for the syslog collector, if it asks for one.
    pub syslog_cert_file: Option<PathBuf>,
    pub syslog_key_file: Option<PathBuf>,
    /// Publish the audit trail's head every this many seconds (default 300).
    pub audit_head_seconds: Option<u64>,
    /// Malformed payloads per minute from one source that make an event (default 15).
    pub malformed_per_minute: Option<u32>,
    /// Clock-skewed readings per minute from one device that make an event (default 15).
    pub clock_skew_per_minute: Option<u32>,
    /// Failed log-ins of one name in 10 minutes that make an event (default 5).
    pub failed_logins_per_10_minutes: Option<u32>,
    /// A high-severity event stays a technical alarm this long after its last occurrence
    /// unless acknowledged (default 10).
    pub alarm_hold_minutes: Option<u64>,
    /// Warn this many days before a TLS certificate expires (default 30).
    pub cert_warn_days: Option<u64>,
}

impl SecuritySection {
    /// The key store of the station's database.
    pub fn key_store(&self) -> Result<crate::keys::KeyStore, ConfigError> {
        match (self.key_store.as_deref(), &self.key_file) {
            (Some("keyring"), None) => Ok(crate::keys::KeyStore::Keyring),
            (Some("keyring"), Some(_)) => Err(ConfigError::Broker(
                "[security] key_store = \"keyring\" and key_file exclude each other".into(),
            )),
            (None | Some("file"), Some(p)) => Ok(crate::keys::KeyStore::File(p.clone())),
            (None | Some("file"), None) => Ok(crate::keys::KeyStore::Beside),
            (Some(other), _) => Err(ConfigError::Broker(format!(
                "[security] key_store = {other:?}: expected \"file\" or \"keyring\""
            ))),
        }
    }

    /// The security event thresholds.
    pub fn thresholds(&self) -> crate::security::Thresholds {
        let mut t = crate::security::Thresholds::default();
        if let Some(n) = self.malformed_per_minute {
            t.malformed.count = n.max(1);
        }
        if let Some(n) = self.clock_skew_per_minute {
            t.clock_skew.count = n.max(1);
        }
        if let Some(n) = self.failed_logins_per_10_minutes {
            t.login_failed.count = n.max(1);
        }
        if let Some(m) = self.alarm_hold_minutes {
            t.alarm_hold_ms = (m.max(1) * 60_000) as i64;
        }
        t
    }

    /// The syslog forwarding settings, if any.
    pub fn syslog(&self) -> Result<Option<crate::syslog::SyslogConfig>, ConfigError> {
        let Some(url) = &self.syslog else {
            return Ok(None);
        };
        let url = url
            .parse::<crate::syslog::SyslogUrl>()
            .map_err(|e| ConfigError::Broker(format!("[security] syslog: {e}")))?;
        Ok(Some(crate::syslog::SyslogConfig {
            url,
            ca_file: self.syslog_ca_file.clone(),
            cert_file: self.syslog_cert_file.clone(),
            key_file: self.syslog_key_file.clone(),
            hostname: crate::syslog::local_hostname(),
        }))
    }

    /// The engine's security options from this section.
    pub fn engine_options(&self) -> Result<crate::engine::SecurityOptions, ConfigError> {
        let d = crate::engine::SecurityOptions::default();
        Ok(crate::engine::SecurityOptions {
            thresholds: self.thresholds(),
            syslog: self.syslog()?,
            head_every: self
                .audit_head_seconds
                .map_or(d.head_every, |s| Duration::from_secs(s.max(1))),
            cert_warn_days: self.cert_warn_days.unwrap_or(d.cert_warn_days),
        })
    }

    fn resolve_paths(&mut self, dir: &Path) {
        for p in [
            &mut self.key_file,
            &mut self.syslog_ca_file,
            &mut self.syslog_cert_file,
            &mut self.syslog_key_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

/// `[auth]`: station sessions.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Inactivity after which the window's session locks, minutes (default 10).
    pub idle_lock_minutes: Option<u64>,
}

/// `[ingest]`: what the engine accepts and how long it keeps it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Reject devices missing from the device registry (default: on with a hospital broker,
    /// off for the embedded simulated ward).
    pub require_registered: Option<bool>,
    /// Largest accepted clock lead of a device, seconds (default 60).
    pub max_future_s: Option<u64>,
    /// Oldest accepted reading, hours (default 168).
    pub max_age_h: Option<u64>,
    /// Alarms evaluate only readings taken at most this long ago, seconds (default 30, kept
    /// within 5..=300: a window too small would make every reading late and silence every
    /// alarm); older ones are stored as history, marked late.
    pub live_window_s: Option<u64>,
    /// Full-disclosure waveform retention, hours (default 240).
    pub waveform_hours: Option<u64>,
    /// Trend (numerics) retention, days (default 30).
    pub trend_days: Option<u64>,
    /// Accept HL7 v2 (IHE PCD-01) over MLLP on this address, e.g. "127.0.0.1:2575". Any other
    /// than a loopback address needs `[ingest.mllp_peers]`.
    pub mllp_listen: Option<std::net::SocketAddr>,
    /// Payload bytes per second one device may send (default 1048576); beyond it the excess is
    /// dropped before decoding and the bed gets a DEVICE OVER BUDGET technical alarm.
    pub device_bytes_per_s: Option<std::num::NonZeroU64>,
    /// Messages per second one device may send (default 200).
    pub device_msgs_per_s: Option<std::num::NonZeroU64>,
    /// Seconds' worth of its budget a device may send at once (default 10).
    pub device_burst_s: Option<std::num::NonZeroU64>,
    /// The peers allowed to send over MLLP, each with the devices it may speak for:
    /// `"10.1.2.3" = ["mon-1", "mon-2"]`. Without it only a loopback listener is allowed.
    pub mllp_peers: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// MLLP connections at once from one address (default 8).
    pub mllp_max_per_peer: Option<usize>,
    /// Longest an MLLP frame may take from its first byte to its end, seconds (default 10).
    pub mllp_frame_seconds: Option<u64>,
    /// MLLP over TLS: the station's certificate (PEM) on the MLLP port ...
    pub mllp_tls_cert_file: Option<PathBuf>,
    /// ... its private key (PEM) ...
    pub mllp_tls_key_file: Option<PathBuf>,
    /// ... and the CA bundle (PEM) that signs the gateways' client certificates. A client
    /// certificate's CN and DNS names are the devices its holder may speak for.
    pub mllp_tls_client_ca_file: Option<PathBuf>,
}

impl IngestSection {
    /// The MLLP listener of this section on `listen` (the command line's address, else
    /// `mllp_listen`); `None` when neither is given. Checked like the engine checks it.
    pub fn mllp(
        &self,
        listen: Option<std::net::SocketAddr>,
    ) -> Result<Option<crate::interop::mllp::MllpConfig>, ConfigError> {
        use crate::interop::mllp::{MllpConfig, PeerList};
        let Some(listen) = listen.or(self.mllp_listen) else {
            return Ok(None);
        };
        let mut m = MllpConfig::new(listen);
        if let Some(table) = &self.mllp_peers {
            m.peers = Some(Arc::new(PeerList::parse(table)?));
        }
        if let Some(n) = self.mllp_max_per_peer {
            m.max_per_peer = n;
        }
        if let Some(s) = self.mllp_frame_seconds {
            m.frame_timeout = Duration::from_secs(s);
        }
        m.tls = match (
            &self.mllp_tls_cert_file,
            &self.mllp_tls_key_file,
            &self.mllp_tls_client_ca_file,
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => Some(tls_server_config(cert, key, ca)?),
            _ => {
                return Err(ConfigError::Tls(
                    "[ingest] MLLP over TLS needs mllp_tls_cert_file, mllp_tls_key_file and \
                     mllp_tls_client_ca_file together"
                        .into(),
                ))
            }
        };
        m.check()?;
        Ok(Some(m))
    }

    /// Make the TLS file paths relative to `dir` (the config file's directory) absolute.
    fn resolve_paths(&mut self, dir: &Path) {
        for p in [
            &mut self.mllp_tls_cert_file,
            &mut self.mllp_tls_key_file,
            &mut self.mllp_tls_client_ca_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    /// The ingest policy, with `require_registered` defaulting to `external_broker`.
    pub fn policy(&self, external_broker: bool) -> crate::ingest::IngestPolicy {
        let d = crate::ingest::IngestPolicy::default();
        crate::ingest::IngestPolicy {
            require_registered: self.require_registered.unwrap_or(external_broker),
            max_future_ms: self.max_future_s.map_or(d.max_future_ms, |s| ms(s, 1000)),
            max_age_ms: self.max_age_h.map_or(d.max_age_ms, |h| ms(h, 3_600_000)),
            live_window_ms: self.live_window_s.map_or(d.live_window_ms, |s| {
                let kept = s.clamp(LIVE_WINDOW_S.0, LIVE_WINDOW_S.1);
                if kept != s {
                    tracing::warn!(
                        configured = s,
                        used = kept,
                        "[ingest] live_window_s out of range {}..={} s: {kept} s used",
                        LIVE_WINDOW_S.0,
                        LIVE_WINDOW_S.1
                    );
                }
                ms(kept, 1000)
            }),
            retention: crate::ingest::Retention {
                waveform_hours: self.waveform_hours.unwrap_or(d.retention.waveform_hours),
                trend_days: self.trend_days.unwrap_or(d.retention.trend_days),
            },
            budget: crate::ingest::Budget {
                bytes_per_s: self
                    .device_bytes_per_s
                    .map_or(d.budget.bytes_per_s, |n| n.get()),
                msgs_per_s: self
                    .device_msgs_per_s
                    .map_or(d.budget.msgs_per_s, |n| n.get()),
                burst_s: self.device_burst_s.map_or(d.budget.burst_s, |n| n.get()),
            },
        }
    }
}

/// The range `[ingest] live_window_s` is kept in (seconds).
const LIVE_WINDOW_S: (u64, u64) = (5, 300);

/// `n` units of `unit_ms` in milliseconds, saturating (a huge setting must not overflow).
fn ms(n: u64, unit_ms: i64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX).saturating_mul(unit_ms)
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS) of the hospital broker. Absent: embedded
    /// broker + simulated ward.
    pub url: Option<String>,
    /// CA bundle (PEM) that signed the broker's certificate; required with `mqtts://`.
    /// Relative paths are relative to the config file.
    pub ca_file: Option<PathBuf>,
    /// This station's client certificate (PEM) for mutual TLS; its CN is the station identity.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// MQTT user name (not needed when the broker takes the identity from the certificate).
    pub username: Option<String>,
    /// MQTT password. Prefer `password_env` (keep secrets out of files).
    pub password: Option<Secret>,
    /// Name of the environment variable holding the password (default `VIGIL_MQTT_PASSWORD`
    /// when a user name is set).
    pub password_env: Option<String>,
    /// MQTT client id of this station (persistent session); default derived from the host name.
    pub client_id: Option<String>,
    /// Only this ward's telemetry; default every ward on the broker.
    pub ward: Option<String>,
    /// Accept a broker that is not on this machine without TLS (`mqtt://`) or without
    /// authentication. Off by default (such a station refuses to start); when on, the station
    /// warns at all times (`LinkState::warnings`).
    pub insecure: Option<bool>,
}

impl BrokerSection {
    /// The broker settings of this section, `None` without `url` (embedded mode). The password
    /// is `password`, else the variable named by `password_env`, else `VIGIL_MQTT_PASSWORD`
    /// when a user name is set.
    pub fn settings(&self) -> Result<Option<BrokerSettings>, ConfigError> {
        self.settings_with_env(|name| std::env::var(name).ok())
    }

    fn settings_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<BrokerSettings>, ConfigError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let password = match (&self.password, &self.password_env) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Broker(
                    "set either password or password_env, not both".into(),
                ))
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(var)) => Some(Secret::new(
                env(var).ok_or_else(|| ConfigError::PasswordEnv(var.clone()))?,
            )),
            (None, None) if self.username.is_some() => env(PASSWORD_ENV).map(Secret::new),
            (None, None) => None,
        };
        let s = BrokerSettings {
            url: url.parse()?,
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            username: self.username.clone(),
            password,
            insecure: self.insecure.unwrap_or(false),
        };
        s.check()?;
        Ok(Some(s))
    }

    /// The settings for the administrator's connection test of `url`: this section with `url`
    /// in place of its own. The credentials (user name, password, client certificate) are only
    /// kept when `url` is the configured broker (same host, port and scheme): typing another
    /// address must not send them there. Returns the settings and whether credentials were
    /// withheld.
    pub fn probe_settings(&self, url: &str) -> Result<(BrokerSettings, bool), ConfigError> {
        let typed: BrokerUrl = url.trim().parse()?;
        let configured = self
            .url
            .as_deref()
            .map(str::parse::<BrokerUrl>)
            .transpose()?;
        let mut s = self.clone();
        s.url = Some(typed.to_string());
        let has_credentials = self.username.is_some()
            || self.password.is_some()
            || self.password_env.is_some()
            || self.cert_file.is_some();
        let same = configured.as_ref() == Some(&typed);
        if !same {
            s.username = None;
            s.password = None;
            s.password_env = None;
            s.cert_file = None;
            s.key_file = None;
            if !typed.tls {
                s.ca_file = None;
            }
        }
        let settings = s
            .settings()?
            .ok_or_else(|| ConfigError::Broker("no broker URL given".into()))?;
        Ok((settings, has_credentials && !same))
    }

    /// Make the TLS file paths relative to `dir` (the config file's directory) absolute.
    fn resolve_paths(&mut self, dir: &Path) {
        for p in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// SQLite database file; default `vigil.db` in the platform data directory.
    pub db: Option<PathBuf>,
    /// Encrypt the database at rest (SQLCipher, key derived from the station key). A new
    /// database is created encrypted; an existing plaintext one is refused until migrated with
    /// `vigilctl db encrypt`.
    pub encrypt: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    /// Beds in the simulated ward (embedded mode only); default 8.
    pub beds: Option<usize>,
    /// The simulated remote cohort beside the ward (embedded mode only: twenty home patients
    /// in ward `home`, enrolled as `sim:cohort`, with 72 h of history); default on.
    pub remote_cohort: Option<bool>,
}

impl SimulatorSection {
    /// Whether the zero-config station simulates the remote cohort (`remote_cohort`, default
    /// on).
    pub fn remote_cohort(&self) -> bool {
        self.remote_cohort.unwrap_or(true)
    }
}

impl FileConfig {
    /// Make a station's data directory ready before its database `db` is first opened (the
    /// desktop station and `vigilctl record`): created 0700, refused if others can list it; the
    /// station key's place (`[security]`) and encryption (`[storage] encrypt`) registered.
    /// Returns the engine's security options.
    pub fn prepare_station(
        &self,
        db: &Path,
    ) -> Result<crate::engine::SecurityOptions, ConfigError> {
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::secure_fs::prepare_dir(dir)?;
        crate::secure_fs::require_private_dir(dir)?;
        crate::keys::configure(db, self.security.key_store()?);
        crate::keys::require_encryption(db, self.storage.encrypt.unwrap_or(false));
        self.security.engine_options()
    }

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
        // It may hold a broker password and names the key file: private, like the database.
        crate::secure_fs::check_private_file(&path)?;
        let mut cfg: FileConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.clone(),
            source: Box::new(source),
        })?;
        // The ward is a topic level of the subscription: a wildcard or a `/` there would
        // subscribe to other wards' telemetry.
        if let Some(w) = &cfg.broker.ward {
            crate::telemetry::parse_ward(w).map_err(|e| {
                ConfigError::Broker(format!("{}: [broker] ward: {e}", path.display()))
            })?;
        }
        if let Some(dir) = path.parent() {
            cfg.broker.resolve_paths(dir);
            cfg.security.resolve_paths(dir);
            cfg.ingest.resolve_paths(dir);
        }
        Ok(cfg)
    }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Vigil", "vigil")
}

/// Why a broker could not be reached by [`BrokerSettings::probe`].
#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Connection(String),
    #[error("no answer from the broker within {0:?}")]
    Timeout(std::time::Duration),
}

impl BrokerSettings {
    /// Connect once (clean session, a throw-away client id) and wait for the broker's CONNACK:
    /// a connection test for the administrator, which changes nothing on the broker.
    pub async fn probe(&self, timeout: std::time::Duration) -> Result<(), ProbeError> {
        let id = format!("vigil-probe-{}", std::process::id());
        let mut o = self.mqtt_options(&id)?;
        o.set_clean_session(true);
        let (client, mut ev) = rumqttc::AsyncClient::new(o, 4);
        let wait = async {
            loop {
                match ev.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => {
                        return if a.code == rumqttc::ConnectReturnCode::Success {
                            Ok(())
                        } else {
                            Err(ProbeError::Connection(format!(
                                "the broker refused the connection: {:?}",
                                a.code
                            )))
                        };
                    }
                    Ok(_) => {}
                    Err(e) => return Err(ProbeError::Connection(e.to_string())),
                }
            }
        };
        let r = match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout(timeout)),
        };
        let _ = client.try_disconnect();
        r
    }
}

/// Set (or, with `url` = `None`, remove: embedded broker and simulated ward) the broker URL and
/// ward of a config file, keeping everything else in it (comments, TLS settings) as it was.
/// The URL is checked first. Takes effect when the station restarts.
pub fn write_broker(path: &Path, url: Option<&str>, ward: Option<&str>) -> Result<(), ConfigError> {
    if let Some(u) = url {
        u.parse::<BrokerUrl>()?;
    }
    if let Some(w) = ward {
        crate::telemetry::parse_ward(w).map_err(|e| ConfigError::Broker(e.to_string()))?;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        ConfigError::Broker(format!("{}: {e}", path.display()))
    })?;
    if !doc.contains_table("broker") {
        doc["broker"] = toml_edit::table();
    }
    let b = &mut doc["broker"];
    match url {
        Some(u) => b["url"] = toml_edit::value(u),
        None => {
            if let Some(t) = b.as_table_mut() {
                t.remove("url");
            }
        }
    }
    match ward.filter(|w| !w.is_empty()) {
        Some(w) => b["ward"] = toml_edit::value(w),
        None => {
            if let Some(t) = b.as_table_mut() {
                t.remove("ward");
            }
        }
    }
    let out = doc.to_string();
    // The result must still be a valid Vigil config before it replaces the file.
    toml::from_str::<FileConfig>(&out).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ConfigError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // Written 0600 whatever the umask: the file may hold a password.
    crate::secure_fs::replace_private(path, out.as_bytes()).map_err(|source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    })
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
    #[test]
    fn only_a_broker_on_loopback_may_be_plain_and_anonymous() {
        let settings = |url: &str| -> super::BrokerSettings {
            url.parse::<super::BrokerUrl>().expect("url").into()
        };
        for url in [
            "mqtt://127.0.0.1:1883",
            "mqtt://localhost",
            "mqtt://[::1]:1883",
        ] {
            let s = settings(url);
            assert!(s.on_loopback(), "{url}");
            assert_eq!(s.check_trust().expect("loopback"), Vec::<String>::new());
        }
        let mut s = settings("mqtt://broker.ward4.example");
        assert_eq!(s.exposure().len(), 2);
        assert!(matches!(
            s.check_trust(),
            Err(super::ConfigError::Insecure { .. })
        ));
        s.username = Some("station-4w".into());
        assert_eq!(s.exposure().len(), 1, "still no TLS");
        s.insecure = true;
        assert_eq!(s.check_trust().expect("allowed").len(), 1);
    }

    #[test]
    fn write_broker_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(
            &path,
            "# Ward 4 station\n[storage]\ndb = \"/var/lib/vigil/vigil.db\"\n\n[broker]\n# the hospital CA\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        write_broker(
            &path,
            Some("mqtts://broker.ward4.example:8883"),
            Some("ward4"),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# Ward 4 station") && text.contains("# the hospital CA"),
            "{text}"
        );
        let cfg = FileConfig::load(Some(&path)).unwrap();
        assert_eq!(
            cfg.broker.url.as_deref(),
            Some("mqtts://broker.ward4.example:8883")
        );
        assert_eq!(cfg.broker.ward.as_deref(), Some("ward4"));
        assert_eq!(cfg.broker.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(
            cfg.storage.db,
            Some(PathBuf::from("/var/lib/vigil/vigil.db"))
        );

        // A bad URL changes nothing.
        assert!(write_broker(&path, Some("http://nope"), None).is_err());
        assert_eq!(
            FileConfig::load(Some(&path)).unwrap().broker.url.as_deref(),
            Some("mqtts://broker.ward4.example:8883")
        );
        // No URL: back to the embedded broker; the TLS file setting stays for later.
        write_broker(&path, None, None).unwrap();
        let cfg = FileConfig::load(Some(&path)).unwrap();
        assert_eq!(cfg.broker.url, None);
        assert_eq!(cfg.broker.ward, None);
        assert!(cfg.broker.ca_file.is_some());
        // A new file is created.
        let fresh = dir.path().join("sub/new.toml");
        write_broker(&fresh, Some("mqtt://127.0.0.1:1883"), None).unwrap();
        assert_eq!(
            FileConfig::load(Some(&fresh))
                .unwrap()
                .broker
                .url
                .as_deref(),
            Some("mqtt://127.0.0.1:1883")
        );
    }

    /// Write a config file as the station would (0600).
    fn write_private(p: &Path, text: &str) {
        let _ = std::fs::remove_file(p);
        crate::secure_fs::write_private_new(p, text.as_bytes()).unwrap();
    }

    #[test]
    fn a_config_file_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vigil.toml");
        std::fs::write(&p, "[broker]\npassword = \"pw\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = FileConfig::load(Some(&p)).unwrap_err().to_string();
            assert!(e.contains("chmod 600") && e.contains("0644"), "{e}");
        }
        // Written by the station: private.
        write_broker(&p, Some("mqtt://127.0.0.1:1883"), None).unwrap();
        FileConfig::load(Some(&p)).unwrap();
    }

    /// The bytes a client sends to a listener on loopback within `wait` (it never answers).
    async fn captured(
        settings: BrokerSettings,
        listener: tokio::net::TcpListener,
        wait: Duration,
    ) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let probe = tokio::spawn(async move { settings.probe(wait).await });
        let mut got = Vec::new();
        if let Ok(Ok((mut sock, _))) = tokio::time::timeout(wait, listener.accept()).await {
            let mut buf = [0u8; 1024];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(500), sock.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        probe.abort();
        got
    }

    #[tokio::test]
    async fn the_broker_test_sends_credentials_only_to_the_configured_broker() {
        let configured = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let section = BrokerSection {
            url: Some(format!(
                "mqtt://127.0.0.1:{}",
                configured.local_addr().unwrap().port()
            )),
            username: Some("station-4w".into()),
            password: Some(Secret::new("hunter2-secret")),
            ..BrokerSection::default()
        };
        let typed = format!(
            "mqtt://127.0.0.1:{}",
            elsewhere.local_addr().unwrap().port()
        );
        let (s, withheld) = section.probe_settings(&typed).unwrap();
        assert!(withheld);
        let sent = captured(s, elsewhere, Duration::from_secs(3)).await;
        assert!(!sent.is_empty(), "the probe reached the typed address");
        let text = String::from_utf8_lossy(&sent);
        assert!(
            !text.contains("hunter2-secret") && !text.contains("station-4w"),
            "credentials sent to an address the admin typed: {text:?}"
        );
        // To the configured broker they are sent (that is the point of the test).
        let (s, withheld) = section
            .probe_settings(section.url.as_deref().unwrap())
            .unwrap();
        assert!(!withheld);
        let sent = captured(s, configured, Duration::from_secs(3)).await;
        assert!(String::from_utf8_lossy(&sent).contains("hunter2-secret"));
    }

    use super::*;

    #[test]
    fn the_live_window_stays_in_its_range_and_huge_settings_do_not_overflow() {
        let policy = |section: IngestSection| section.policy(true);
        let zero = IngestSection {
            live_window_s: Some(0),
            ..IngestSection::default()
        };
        assert_eq!(
            policy(zero).live_window_ms,
            5_000,
            "0 s would silence every alarm"
        );
        let huge = IngestSection {
            live_window_s: Some(u64::MAX),
            max_future_s: Some(u64::MAX),
            max_age_h: Some(u64::MAX),
            ..IngestSection::default()
        };
        let p = policy(huge);
        assert_eq!(p.live_window_ms, 300_000);
        assert_eq!((p.max_future_ms, p.max_age_ms), (i64::MAX, i64::MAX));
    }

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
            "mqtts://u:pw@h",
            "ssl://h",
        ] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
        assert!(!u.tls);
        let u: BrokerUrl = "mqtts://broker.ward4".parse().expect("valid");
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("broker.ward4", 8883, true)
        );
        assert_eq!(u.to_string(), "mqtts://broker.ward4:8883");
        let u: BrokerUrl = "mqtts://[::1]".parse().expect("valid");
        assert_eq!(
            (u.port, u.to_string().as_str()),
            (8883, "mqtts://[::1]:8883")
        );
        assert_eq!(BrokerUrl::plain("h", 1).to_string(), "mqtt://h:1");
    }

    fn section(url: &str) -> BrokerSection {
        BrokerSection {
            url: Some(url.into()),
            ..BrokerSection::default()
        }
    }

    #[test]
    fn broker_credentials_and_their_sources() {
        let no_env = |_: &str| None;
        let env =
            |name: &str| (name == "WARD_PW" || name == PASSWORD_ENV).then(|| format!("pw-{name}"));
        assert_eq!(
            BrokerSection::default().settings_with_env(env).expect("ok"),
            None
        );

        // A user name: password from VIGIL_MQTT_PASSWORD, or none.
        let mut s = section("mqtts://b");
        s.ca_file = Some("ca.pem".into());
        s.username = Some("station-4w".into());
        let got = s.settings_with_env(env).expect("ok").expect("some");
        assert_eq!(got.password, Some(Secret::new("pw-VIGIL_MQTT_PASSWORD")));
        assert_eq!(
            s.settings_with_env(no_env)
                .expect("ok")
                .expect("some")
                .password,
            None
        );
        // password_env names the variable; unset is an error naming it.
        s.password_env = Some("WARD_PW".into());
        let got = s.settings_with_env(env).expect("ok").expect("some");
        assert_eq!(
            got.password.as_ref().map(Secret::expose),
            Some("pw-WARD_PW")
        );
        let e = s.settings_with_env(no_env).expect_err("unset variable");
        assert!(e.to_string().contains("WARD_PW"), "{e}");
        // Both sources: refused.
        s.password = Some(Secret::new("inline"));
        assert!(s.settings_with_env(env).is_err());
        s.password_env = None;
        let got = s.settings_with_env(no_env).expect("ok").expect("some");
        // Never printed.
        let shown = format!("{got:?} {got} {s:?}");
        assert!(
            !shown.contains("inline") && shown.contains("***"),
            "{shown}"
        );
        assert!(!got.password_in_clear());
        // A password without a user name is refused.
        let mut s = section("mqtt://b");
        s.password = Some(Secret::new("x"));
        assert!(s.settings_with_env(no_env).is_err());
        s.username = Some("u".into());
        assert!(s
            .settings_with_env(no_env)
            .expect("ok")
            .expect("some")
            .password_in_clear());
    }

    #[test]
    fn broker_tls_settings_must_fit_together() {
        let no_env = |_: &str| None;
        let check = |s: BrokerSection| s.settings_with_env(no_env).map(|_| ());
        // TLS files with a plain URL would silently not be used: refused.
        let mut s = section("mqtt://b");
        s.ca_file = Some("ca.pem".into());
        assert!(check(s)
            .expect_err("plain")
            .to_string()
            .contains("mqtts://"));
        // mqtts:// without a CA bundle.
        assert!(check(section("mqtts://b")).is_err());
        // A certificate without its key.
        let mut s = section("mqtts://b");
        s.ca_file = Some("ca.pem".into());
        s.cert_file = Some("c.pem".into());
        assert!(check(s.clone()).is_err());
        s.key_file = Some("c.key".into());
        assert!(check(s).is_ok());
    }

    #[test]
    fn unreadable_or_invalid_pem_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").expect("write");
        let bad_b64 = dir.path().join("bad.pem");
        std::fs::write(
            &bad_b64,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let not_ca = dir.path().join("notca.pem");
        std::fs::write(
            &not_ca,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let missing = dir.path().join("missing.pem");
        let mut s = BrokerSettings::from(BrokerUrl {
            tls: true,
            ..BrokerUrl::plain("b", 8883)
        });
        for (file, words) in [
            (&missing, "cannot read CA bundle"),
            (&garbage, "no PEM CERTIFICATE block"),
            (&bad_b64, "not valid PEM"),
            (&not_ca, "not a usable CA certificate"),
        ] {
            s.ca_file = Some(file.clone());
            let e = s.mqtt_options("vigil-test").expect_err("refused");
            let msg = e.to_string();
            assert!(
                msg.contains(words) && msg.contains(&*file.to_string_lossy()),
                "{msg}"
            );
        }
        // Key file: read after the certificates, named in its own errors.
        s.ca_file = Some(not_ca.clone());
        s.cert_file = Some(not_ca);
        s.key_file = Some(garbage.clone());
        let e = s.tls_config().expect_err("refused").to_string();
        assert!(e.contains("CA bundle"), "{e}");
        // A plain URL needs no file and yields a persistent session.
        let o = BrokerSettings::from(BrokerUrl::plain("b", 1883))
            .mqtt_options("vigil-test")
            .expect("plain options");
        assert!(!o.clean_session());
        assert!(BrokerSettings::from(BrokerUrl::plain("b", 1883))
            .mqtt_options("")
            .is_err());
    }

    #[test]
    fn config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("vigil.toml");
        write_private(
            &p,
            "[broker]\nurl = \"mqtt://127.0.0.1:1883\"\nward = \"4W\"\n[storage]\ndb = \"/tmp/x.db\"\n",
        );
        let c = FileConfig::load(Some(&p)).expect("loads");
        assert_eq!(c.broker.url.as_deref(), Some("mqtt://127.0.0.1:1883"));
        assert_eq!(c.broker.ca_file, None);
        assert_eq!(c.broker.ward.as_deref(), Some("4W"));
        assert_eq!(c.storage.db, Some(PathBuf::from("/tmp/x.db")));
        write_private(&p, "[broker]\nurll = 1\n");
        let e = FileConfig::load(Some(&p)).expect_err("typo is an error");
        assert!(e.to_string().contains("urll"), "{e}");
        assert!(FileConfig::load(Some(&dir.path().join("missing.toml"))).is_err());
        assert!(
            c.simulator.remote_cohort(),
            "the simulated cohort is on by default"
        );
        write_private(&p, "[simulator]\nbeds = 4\nremote_cohort = false\n");
        let c = FileConfig::load(Some(&p)).expect("loads");
        assert_eq!(
            (c.simulator.beds, c.simulator.remote_cohort()),
            (Some(4), false)
        );
    }

    #[test]
    fn config_file_broker_security_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("vigil.toml");
        write_private(
            &p,
            "[broker]\nurl = \"mqtts://broker.ward4\"\nca_file = \"pki/ca.pem\"\n\
             cert_file = \"/etc/vigil/station.pem\"\nkey_file = \"station.key\"\n\
             username = \"station-4w\"\npassword_env = \"WARD4_PW\"\nclient_id = \"vigil-4w-1\"\n",
        );
        let c = FileConfig::load(Some(&p)).expect("loads");
        let b = &c.broker;
        assert_eq!(
            b.ca_file,
            Some(dir.path().join("pki/ca.pem")),
            "relative to the file"
        );
        assert_eq!(b.cert_file, Some(PathBuf::from("/etc/vigil/station.pem")));
        assert_eq!(b.key_file, Some(dir.path().join("station.key")));
        assert_eq!(b.username.as_deref(), Some("station-4w"));
        assert_eq!(b.password_env.as_deref(), Some("WARD4_PW"));
        let s = b
            .settings_with_env(|v| (v == "WARD4_PW").then(|| "s3cret".to_string()))
            .expect("valid")
            .expect("external broker");
        assert!(s.url.tls && s.url.port == 8883);
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("s3cret"));
        write_private(&p, "[broker]\npassword = \"pw\"\npasword_env = \"X\"\n");
        let e = FileConfig::load(Some(&p)).expect_err("typo is an error");
        assert!(e.to_string().contains("pasword_env"), "{e}");
    }
}
