//! Forwarding to the hospital's log collector or SIEM: RFC 5424 syslog messages over UDP
//! (RFC 5426), TCP (RFC 6587, octet counting) or TLS (RFC 5425), as `[security] syslog` says.
//!
//! [`Syslog::send`] never blocks: messages go to a bounded queue that one task drains, connecting
//! (and reconnecting with back-off) as needed. A full queue drops the message and counts it; the
//! events stay in the station's database either way.
//!
//! Message layout (RFC 5424 section 6):
//!
//! ```text
//! <PRI>1 2026-12-06T10:00:00.000Z station-4w vigil 4242 SECEVENT [vigil@32473 id="12" ...] text
//! ```
//!
//! `PRI` = facility × 8 + severity: security events use facility 4 (security/authorization),
//! audit heads facility 13 (log audit). `32473` is the private enterprise number RFC 5424 itself
//! uses for examples: the structured-data id names Vigil's parameters, documented in
//! `docs/security.md`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::{rustls, TlsConnector};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::config::ConfigError;

/// The structured-data id of Vigil's parameters.
pub const SD_ID: &str = "vigil@32473";
/// Facility of security events: security/authorization messages.
pub const FACILITY_SECURITY: u8 = 4;
/// Facility of audit-trail heads: log audit.
pub const FACILITY_AUDIT: u8 = 13;
/// Messages queued before new ones are dropped.
const QUEUE: usize = 4096;

#[derive(Debug, Error)]
pub enum SyslogError {
    #[error("syslog URL {0:?}: {1}")]
    Url(String, &'static str),
    #[error(transparent)]
    Tls(#[from] ConfigError),
}

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per message (RFC 5426); default port 514.
    Udp,
    /// Octet-counted frames on a TCP connection (RFC 6587); default port 601.
    Tcp,
    /// Octet-counted frames over TLS (RFC 5425); default port 6514.
    Tls,
}

/// `udp://host[:port]`, `tcp://host[:port]` or `tls://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogUrl {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
}

impl FromStr for SyslogUrl {
    type Err = SyslogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| SyslogError::Url(s.to_string(), why);
        let (transport, rest, default) = if let Some(r) = s.strip_prefix("udp://") {
            (Transport::Udp, r, 514)
        } else if let Some(r) = s.strip_prefix("tcp://") {
            (Transport::Tcp, r, 601)
        } else if let Some(r) = s.strip_prefix("tls://") {
            (Transport::Tls, r, 6514)
        } else {
            return Err(err("must start with udp://, tcp:// or tls://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            return Err(err("only scheme://host[:port] is accepted"));
        }
        let (host, port) = if let Some(h) = rest.strip_prefix('[') {
            let (h, p) = h.split_once(']').ok_or_else(|| err("unclosed ["))?;
            match p.strip_prefix(':') {
                Some(p) => (h.to_string(), p.parse().map_err(|_| err("bad port"))?),
                None if p.is_empty() => (h.to_string(), default),
                None => return Err(err("bad port")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| err("bad port"))?),
                None => (rest.to_string(), default),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(err("missing host or port 0"));
        }
        Ok(SyslogUrl {
            transport,
            host,
            port,
        })
    }
}

impl fmt::Display for SyslogUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Where to forward and how this station names itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    pub url: SyslogUrl,
    /// CA bundle (PEM) of the collector's certificate; required for `tls://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) when the collector asks for one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// HOSTNAME field (default: this machine's host name).
    pub hostname: String,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    pub facility: u8,
    /// RFC 5424 severity 0–7.
    pub severity: u8,
    /// `SECEVENT`, `AUDITHEAD`.
    pub msgid: &'static str,
    pub t_ms: i64,
    /// Structured-data parameters of [`SD_ID`], in order.
    pub params: Vec<(&'static str, String)>,
    pub text: String,
}

/// Printable US-ASCII without spaces, at most `max` characters (`-` when empty), as the header
/// fields require.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v
    }
}

/// A structured-data parameter value: `"`, `\` and `]` escaped with `\` (RFC 5424 6.3.3),
/// control characters dropped.
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The RFC 5424 text of `m` from `hostname` (APP-NAME `vigil`, PROCID this process).
pub fn format(hostname: &str, m: &SyslogMessage) -> String {
    let pri = u32::from(m.facility.min(23)) * 8 + u32::from(m.severity.min(7));
    let ts = chrono::DateTime::from_timestamp_millis(m.t_ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".into());
    let mut sd = String::new();
    if !m.params.is_empty() {
        sd.push('[');
        sd.push_str(SD_ID);
        for (k, v) in &m.params {
            sd.push_str(&format!(" {k}=\"{}\"", sd_value(v)));
        }
        sd.push(']');
    } else {
        sd.push('-');
    }
    let text: String = m.text.chars().filter(|c| !c.is_control()).collect();
    format!(
        "<{pri}>1 {ts} {} vigil {} {} {sd} {text}",
        header_field(hostname, 255),
        std::process::id(),
        header_field(m.msgid, 32)
    )
}

/// This machine's host name (for the HOSTNAME field).
pub fn local_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "-".into())
}

/// Counters of the forwarder.
#[derive(Debug, Default)]
pub struct SyslogStats {
    pub sent: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Lost because the collector could not be reached (after one retry).
    pub failed: AtomicU64,
}

/// The forwarder: a queue and the task that drains it.
#[derive(Clone)]
pub struct Syslog {
    tx: mpsc::Sender<SyslogMessage>,
    stats: Arc<SyslogStats>,
}

impl Syslog {
    /// Check the settings (reading the TLS files) and start the forwarding task. Must be called
    /// inside a Tokio runtime.
    pub fn spawn(cfg: SyslogConfig) -> Result<Syslog, SyslogError> {
        let tls = match cfg.url.transport {
            Transport::Tls => {
                let ca = cfg.ca_file.as_deref().ok_or_else(|| {
                    SyslogError::Url(
                        cfg.url.to_string(),
                        "tls:// needs [security] syslog_ca_file",
                    )
                })?;
                Some(crate::config::tls_client_config(
                    ca,
                    cfg.cert_file.as_deref(),
                    cfg.key_file.as_deref(),
                )?)
            }
            _ => None,
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(SyslogStats::default());
        tokio::spawn(run(cfg, tls, rx, Arc::clone(&stats)));
        Ok(Syslog { tx, stats })
    }

    /// Queue a message; never blocks (a full queue drops it, counted and logged).
    pub fn send(&self, m: SyslogMessage) {
        if self.tx.try_send(m).is_err() {
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n % 1000 == 0 {
                tracing::warn!(dropped = n, "syslog queue full: messages dropped");
            }
        }
    }

    pub fn stats(&self) -> &SyslogStats {
        &self.stats
    }
}

enum Conn {
    Udp(tokio::net::UdpSocket),
    Tcp(tokio::net::TcpStream),
    Tls(Box<rumqttc::tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

async fn connect(
    cfg: &SyslogConfig,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> std::io::Result<Conn> {
    let addr = (cfg.url.host.as_str(), cfg.url.port);
    Ok(match cfg.url.transport {
        Transport::Udp => {
            let target = tokio::net::lookup_host(addr)
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other("no address"))?;
            let local = if target.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = tokio::net::UdpSocket::bind(local).await?;
            s.connect(target).await?;
            Conn::Udp(s)
        }
        Transport::Tcp => Conn::Tcp(tokio::net::TcpStream::connect(addr).await?),
        Transport::Tls => {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let cfg_tls = tls.ok_or_else(|| std::io::Error::other("no TLS settings"))?;
            let name = rustls::pki_types::ServerName::try_from(cfg.url.host.clone())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let s = TlsConnector::from(Arc::clone(cfg_tls))
                .connect(name, tcp)
                .await?;
            Conn::Tls(Box::new(s))
        }
    })
}

async fn write(conn: &mut Conn, line: &str) -> std::io::Result<()> {
    match conn {
        Conn::Udp(s) => {
            // RFC 5426: receivers must take 480 octets and should take 2048.
            let bytes = line.as_bytes();
            s.send(&bytes[..bytes.len().min(2048)]).await.map(|_| ())
        }
        Conn::Tcp(s) => {
            s.write_all(format!("{} {line}", line.len()).as_bytes())
                .await?;
            s.flush().await
        }
        Conn::Tls(s) => {
            s.write_all(format!("{} {line}", line.len()).as_bytes())
                .await?;
            s.flush().await
        }
    }
}

async fn run(
    cfg: SyslogConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut rx: mpsc::Receiver<SyslogMessage>,
    stats: Arc<SyslogStats>,
) {
    let mut conn: Option<Conn> = None;
    let mut backoff = Duration::from_millis(250);
    let mut last_error = String::new();
    while let Some(m) = rx.recv().await {
        let line = format(&cfg.hostname, &m);
        let mut sent = false;
        for _attempt in 0..2 {
            if conn.is_none() {
                match tokio::time::timeout(Duration::from_secs(5), connect(&cfg, tls.as_ref()))
                    .await
                {
                    Ok(Ok(c)) => {
                        conn = Some(c);
                        backoff = Duration::from_millis(250);
                    }
                    Ok(Err(e)) => note_error(&cfg, &mut last_error, e.to_string()),
                    Err(_) => note_error(&cfg, &mut last_error, "connect timed out".into()),
                }
            }
            let Some(c) = conn.as_mut() else {
                break;
            };
            match tokio::time::timeout(Duration::from_secs(5), write(c, &line)).await {
                Ok(Ok(())) => {
                    sent = true;
                    last_error.clear();
                    break;
                }
                Ok(Err(e)) => note_error(&cfg, &mut last_error, e.to_string()),
                Err(_) => note_error(&cfg, &mut last_error, "write timed out".into()),
            }
            conn = None;
        }
        if sent {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

fn note_error(cfg: &SyslogConfig, last: &mut String, e: String) {
    if *last != e {
        tracing::warn!(url = %cfg.url, error = %e, "syslog forwarding failed; retrying");
        *last = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> SyslogMessage {
        SyslogMessage {
            facility: FACILITY_SECURITY,
            severity: 3,
            msgid: "SECEVENT",
            t_ms: 1_765_000_000_123,
            params: vec![
                ("kind", "unknown_device".into()),
                ("detail", "a \"quoted\" ]bracket\\".into()),
            ],
            text: text.into(),
        }
    }

    #[test]
    fn rfc5424_layout() {
        let line = format("station 4w", &msg("Unknown device: bed 4W/01\n(3×)"));
        let pid = std::process::id();
        assert_eq!(
            line,
            format!(
                "<35>1 2025-12-06T05:46:40.123Z station4w vigil {pid} SECEVENT \
                 [vigil@32473 kind=\"unknown_device\" detail=\"a \\\"quoted\\\" \\]bracket\\\\\"] \
                 Unknown device: bed 4W/01(3×)"
            )
        );
        for (u, ok) in [
            ("udp://siem:514", true),
            ("tls://[::1]", true),
            ("tcp://10.0.0.1:601", true),
            ("http://x", false),
            ("udp://", false),
            ("tcp://h:0", false),
        ] {
            assert_eq!(u.parse::<SyslogUrl>().is_ok(), ok, "{u}");
        }
        assert_eq!("tls://[::1]".parse::<SyslogUrl>().expect("url").port, 6514);
    }

    fn cfg(url: String) -> SyslogConfig {
        SyslogConfig {
            url: url.parse().expect("url"),
            ca_file: None,
            cert_file: None,
            key_file: None,
            hostname: "st-1".into(),
        }
    }

    /// The result of `f`, which must come within 10 s and be a success (`what` names it).
    async fn in_time<T, E: std::fmt::Debug>(
        f: impl std::future::Future<Output = Result<T, E>>,
        what: &str,
    ) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("in time")
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
    }

    /// A sender to the listener at `addr` over `scheme`.
    fn syslog_to(scheme: &str, addr: std::io::Result<std::net::SocketAddr>) -> Syslog {
        let addr = addr.expect("addr");
        Syslog::spawn(cfg(format!("{scheme}://{addr}"))).expect("spawn")
    }

    #[tokio::test]
    async fn udp_and_tcp_reach_a_listener_on_loopback() {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let s = syslog_to("udp", udp.local_addr());
        s.send(msg("over udp"));
        let mut buf = vec![0u8; 4096];
        let n = in_time(udp.recv(&mut buf), "recv").await;
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            got.starts_with("<35>1 ") && got.ends_with("over udp"),
            "{got}"
        );

        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("tcp");
        let s = syslog_to("tcp", tcp.local_addr());
        s.send(msg("first"));
        s.send(msg("second"));
        let (mut sock, _) = in_time(tcp.accept(), "accept").await;
        let frames = read_frames(&mut sock, 2).await;
        assert!(
            frames[0].ends_with("first") && frames[1].ends_with("second"),
            "{frames:?}"
        );
    }

    /// Read `n` octet-counted frames (RFC 6587 / 5425).
    pub(crate) async fn read_frames<R: tokio::io::AsyncRead + Unpin>(
        r: &mut R,
        n: usize,
    ) -> Vec<String> {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while out.len() < n {
            let mut chunk = [0u8; 4096];
            let k = in_time(r.read(&mut chunk), "read").await;
            assert!(k > 0, "closed after {} frames", out.len());
            buf.extend_from_slice(&chunk[..k]);
            while let Some(sp) = buf.iter().position(|&b| b == b' ') {
                let len: usize = std::str::from_utf8(&buf[..sp])
                    .expect("ascii length")
                    .parse()
                    .expect("length");
                if buf.len() < sp + 1 + len {
                    break;
                }
                out.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).expect("utf8"));
                buf.drain(..sp + 1 + len);
            }
        }
        out
    }

    #[tokio::test]
    async fn tls_reaches_a_listener_that_checks_nothing_but_its_certificate() {
        use rumqttc::tokio_rustls::TlsAcceptor;
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let srv_key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let srv = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&srv_key, &issuer)
            .expect("server cert");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write ca");
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![srv.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(srv_key.serialize_der()).expect("key der"),
        )
        .expect("server config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut c = cfg(format!("tls://localhost:{port}"));
        c.ca_file = Some(ca_file);
        let s = Syslog::spawn(c).expect("spawn");
        s.send(msg("over tls"));
        let (sock, _) = in_time(listener.accept(), "accept").await;
        let mut tls = TlsAcceptor::from(Arc::new(server))
            .accept(sock)
            .await
            .expect("handshake");
        let frames = read_frames(&mut tls, 1).await;
        assert!(frames[0].ends_with("over tls"), "{frames:?}");
    }
}
