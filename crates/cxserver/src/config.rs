//! Configuration: the TOML file (raw, `deny_unknown_fields`, kebab-case keys) and its
//! validated runtime form. Every error names the key it is about.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ServerConfig};
use serde::Deserialize;

use crate::secret::Secret;

/// Default edge listen address (wss).
pub const DEFAULT_EDGE_LISTEN: &str = "0.0.0.0:9443";
/// Default health + metrics listen address (plain HTTP).
pub const DEFAULT_HEALTH_LISTEN: &str = "127.0.0.1:9090";
/// Default cap on open edge sockets (AlwaysOn and tunnels together).
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default deadline for TLS + websocket upgrade of a new edge socket.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for the first AlwaysOn message (AUTH) after the upgrade
/// (ThingWorx `cx-server.websockets.auth-request-timeout`).
pub const DEFAULT_AUTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default idle timeout of an edge websocket (ThingWorx `idle-timeout-ms`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default largest websocket message from an edge (C SDK `max_message_size` plus chunk slack).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 2 * 1024 * 1024;
/// Default per-connection websocket read buffer.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 2048;
/// Default number of upstream links to the platform.
pub const DEFAULT_LINKS: usize = 2;
/// Default deadline for connecting (and authenticating) an upstream link.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for the platform to answer a forwarded AUTH.
pub const DEFAULT_UPSTREAM_AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default first reconnect delay of an upstream link.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(500);
/// Default longest reconnect delay of an upstream link.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Default cap on concurrent tunnel relays.
pub const DEFAULT_MAX_TUNNELS: usize = 1_000;
/// Default grace period for draining at shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A configuration error: which key, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key or a wrong type (the message names the key).
    #[error("config: {0}")]
    Parse(String),
    /// A key has an unusable value.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// Dotted key, e.g. `edge.idle-timeout`.
        key: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    edge: RawEdge,
    platform: RawPlatform,
    #[serde(default)]
    health: RawHealth,
    /// Seconds.
    shutdown_grace: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEdge {
    listen: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    max_connections: Option<usize>,
    handshake_timeout: Option<f64>,
    auth_request_timeout: Option<f64>,
    idle_timeout_ms: Option<u64>,
    max_message_size: Option<usize>,
    read_buffer_size: Option<usize>,
    max_tunnels: Option<usize>,
    compression: Option<bool>,
    compression_context_takeover: Option<bool>,
    public_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlatform {
    url: String,
    app_key: Option<String>,
    app_key_file: Option<PathBuf>,
    links: Option<usize>,
    host_name_validation: Option<bool>,
    ca_file: Option<PathBuf>,
    pin: Option<Vec<String>>,
    connect_timeout: Option<f64>,
    auth_timeout: Option<f64>,
    reconnect_min: Option<f64>,
    reconnect_max: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHealth {
    listen: Option<String>,
}

/// Edge-facing settings.
#[derive(Clone, Debug)]
pub struct EdgeSettings {
    /// `edge.listen`.
    pub listen: SocketAddr,
    /// `edge.cert` (PEM chain, leaf first); `None` only in tests that pass a config directly.
    pub cert: Option<PathBuf>,
    /// `edge.key` (PEM private key).
    pub key: Option<PathBuf>,
    /// `edge.max-connections`.
    pub max_connections: usize,
    /// `edge.handshake-timeout` (seconds in the file).
    pub handshake_timeout: Duration,
    /// `edge.auth-request-timeout` (seconds in the file).
    pub auth_request_timeout: Duration,
    /// `edge.idle-timeout-ms`.
    pub idle_timeout: Duration,
    /// `edge.max-message-size` in bytes.
    pub max_message_size: usize,
    /// `edge.read-buffer-size` in bytes.
    pub read_buffer_size: usize,
    /// `edge.max-tunnels`.
    pub max_tunnels: usize,
    /// `edge.compression`: accept permessage-deflate when an AlwaysOn edge offers it (default
    /// on; an edge that offers nothing gets no extension either way).
    pub compression: bool,
    /// `edge.compression-context-takeover`: keep the server's deflate window across messages
    /// (better ratio, ~310 KiB per compressing edge); off answers `server_no_context_takeover`.
    pub compression_context_takeover: bool,
    /// `edge.public-url`: the `wss://host[:port]` base URL edges use to reach this connection
    /// server. When set, the origin of `StartTunnel` `server_url`s is replaced by it; when unset,
    /// by the `edge.listen` address unless that is unspecified (`0.0.0.0` / `::`).
    pub public_url: Option<url::Url>,
}

impl EdgeSettings {
    /// `host[:port]` of [`Self::public_url`] (port left out when it is 443).
    pub fn public_origin(&self) -> Option<String> {
        let url = self.public_url.as_ref()?;
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        })
    }
}

/// Parses and checks `edge.public-url`: `wss://`, a host, no credentials, path, query or
/// fragment.
fn public_url(v: Option<String>) -> Result<Option<url::Url>, ConfigError> {
    const KEY: &str = "edge.public-url";
    let Some(text) = v else {
        return Ok(None);
    };
    let url = url::Url::parse(&text).map_err(|err| invalid(KEY, format!("{text:?}: {err}")))?;
    let why = if url.scheme() != "wss" {
        Some("must start with wss://")
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("has no host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("must not carry credentials")
    } else if url.path() != "/" && !url.path().is_empty() {
        Some("must be a base URL without a path")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not carry a query or fragment")
    } else {
        None
    };
    match why {
        Some(why) => Err(invalid(KEY, format!("{text:?} {why}"))),
        None => Ok(Some(url)),
    }
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 9443)),
            cert: None,
            key: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            auth_request_timeout: DEFAULT_AUTH_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            max_tunnels: DEFAULT_MAX_TUNNELS,
            compression: true,
            compression_context_takeover: false,
            public_url: None,
        }
    }
}

/// How the upstream TLS certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamTrust {
    /// Web PKI roots plus an optional extra CA file, host name checked (the default).
    Validate {
        /// `platform.ca-file`.
        ca_file: Option<PathBuf>,
    },
    /// Only certificates with one of these SHA-256 fingerprints (`platform.pin`).
    Pinned(Vec<String>),
    /// `platform.host-name-validation = false` with no pin: any certificate (discouraged).
    Insecure,
}

/// Platform-facing settings.
#[derive(Clone, Debug)]
pub struct PlatformSettings {
    /// `platform.url`: `wss://host:port` (path `/Thingworx/WS` is used for links, tunnel paths
    /// are appended for tunnels).
    pub url: url::Url,
    /// `platform.app-key` or the content of `platform.app-key-file`.
    pub app_key: Secret,
    /// `platform.links`.
    pub links: usize,
    /// `platform.host-name-validation`, `platform.ca-file`, `platform.pin`.
    pub trust: UpstreamTrust,
    /// `platform.connect-timeout` (seconds).
    pub connect_timeout: Duration,
    /// `platform.auth-timeout` (seconds): deadline for the platform to answer an AUTH.
    pub auth_timeout: Duration,
    /// `platform.reconnect-min` (seconds).
    pub reconnect_min: Duration,
    /// `platform.reconnect-max` (seconds).
    pub reconnect_max: Duration,
}

impl PlatformSettings {
    /// Settings for `url` with `app_key` and every other key at its default.
    pub fn new(url: url::Url, app_key: Secret) -> Self {
        PlatformSettings {
            url,
            app_key,
            links: DEFAULT_LINKS,
            trust: UpstreamTrust::Validate { ca_file: None },
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            auth_timeout: DEFAULT_UPSTREAM_AUTH_TIMEOUT,
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[edge]`.
    pub edge: EdgeSettings,
    /// `[platform]`.
    pub platform: PlatformSettings,
    /// `health.listen`.
    pub health_listen: SocketAddr,
    /// `shutdown-grace` (seconds).
    pub shutdown_grace: Duration,
}

fn seconds(key: &'static str, v: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(invalid(
            key,
            format!("{s} is not a number of seconds in (0, 86400]"),
        )),
    }
}

fn addr(key: &'static str, v: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    let text = v.unwrap_or_else(|| default.to_owned());
    text.parse()
        .map_err(|e| invalid(key, format!("{text:?} is not an address:port ({e})")))
}

fn positive(
    key: &'static str,
    v: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    match v.unwrap_or(default) {
        0 => Err(invalid(key, "must be at least 1")),
        n if n > max => Err(invalid(key, format!("{n} is larger than {max}"))),
        n => Ok(n),
    }
}

impl Config {
    /// Reads and validates a TOML file (blocking: call at startup).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base)
    }

    /// Parses and validates TOML text; relative paths are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let e = raw.edge;
        let (cert, key) = match (e.cert, e.key) {
            (Some(c), Some(k)) => (Some(resolve(c)), Some(resolve(k))),
            (None, _) => {
                return Err(invalid(
                    "edge.cert",
                    "required (PEM certificate chain for edge TLS)",
                ));
            }
            (_, None) => {
                return Err(invalid(
                    "edge.key",
                    "required (PEM private key for edge TLS)",
                ));
            }
        };
        let idle_ms = e
            .idle_timeout_ms
            .unwrap_or(DEFAULT_IDLE_TIMEOUT.as_millis() as u64);
        if !(100..=86_400_000).contains(&idle_ms) {
            return Err(invalid(
                "edge.idle-timeout-ms",
                format!("{idle_ms} is outside [100, 86400000]"),
            ));
        }
        let read_buffer_size = e.read_buffer_size.unwrap_or(DEFAULT_READ_BUFFER_SIZE);
        if !(256..=1 << 20).contains(&read_buffer_size) {
            return Err(invalid(
                "edge.read-buffer-size",
                format!("{read_buffer_size} is outside [256, 1048576]"),
            ));
        }
        let edge = EdgeSettings {
            listen: addr("edge.listen", e.listen, DEFAULT_EDGE_LISTEN)?,
            cert,
            key,
            max_connections: positive(
                "edge.max-connections",
                e.max_connections,
                DEFAULT_MAX_CONNECTIONS,
                10_000_000,
            )?,
            handshake_timeout: seconds(
                "edge.handshake-timeout",
                e.handshake_timeout,
                DEFAULT_HANDSHAKE_TIMEOUT,
            )?,
            auth_request_timeout: seconds(
                "edge.auth-request-timeout",
                e.auth_request_timeout,
                DEFAULT_AUTH_REQUEST_TIMEOUT,
            )?,
            idle_timeout: Duration::from_millis(idle_ms),
            max_message_size: positive(
                "edge.max-message-size",
                e.max_message_size,
                DEFAULT_MAX_MESSAGE_SIZE,
                64 << 20,
            )?,
            read_buffer_size,
            max_tunnels: positive(
                "edge.max-tunnels",
                e.max_tunnels,
                DEFAULT_MAX_TUNNELS,
                1_000_000,
            )?,
            compression: e.compression.unwrap_or(true),
            compression_context_takeover: e.compression_context_takeover.unwrap_or(false),
            public_url: public_url(e.public_url)?,
        };
        let p = raw.platform;
        let url = url::Url::parse(&p.url)
            .map_err(|err| invalid("platform.url", format!("{:?}: {err}", p.url)))?;
        if !matches!(url.scheme(), "wss" | "ws") || url.host_str().is_none() {
            return Err(invalid(
                "platform.url",
                "must be wss://host[:port] (ws:// only for labs)",
            ));
        }
        let app_key = match (p.app_key, p.app_key_file) {
            (Some(k), None) => Secret::new(k),
            (None, Some(f)) => {
                let f = resolve(f);
                let text = std::fs::read_to_string(&f).map_err(|err| {
                    invalid(
                        "platform.app-key-file",
                        format!("cannot read {}: {err}", f.display()),
                    )
                })?;
                Secret::new(text.trim().to_owned())
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "platform.app-key",
                    "give app-key or app-key-file, not both",
                ));
            }
            (None, None) => return Err(invalid("platform.app-key", "required (or app-key-file)")),
        };
        if app_key.expose().is_empty() {
            return Err(invalid("platform.app-key", "is empty"));
        }
        let trust = match (p.pin, p.host_name_validation.unwrap_or(true)) {
            (Some(pins), _) => {
                if pins.is_empty() {
                    return Err(invalid(
                        "platform.pin",
                        "needs at least one SHA-256 fingerprint",
                    ));
                }
                net::Trust::pinned_from_strs(&pins)
                    .map_err(|err| invalid("platform.pin", err.to_string()))?;
                UpstreamTrust::Pinned(pins)
            }
            (None, true) => UpstreamTrust::Validate {
                ca_file: p.ca_file.map(resolve),
            },
            (None, false) => UpstreamTrust::Insecure,
        };
        let platform = PlatformSettings {
            url,
            app_key,
            links: positive("platform.links", p.links, DEFAULT_LINKS, 64)?,
            trust,
            connect_timeout: seconds(
                "platform.connect-timeout",
                p.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            auth_timeout: seconds(
                "platform.auth-timeout",
                p.auth_timeout,
                DEFAULT_UPSTREAM_AUTH_TIMEOUT,
            )?,
            reconnect_min: seconds(
                "platform.reconnect-min",
                p.reconnect_min,
                DEFAULT_RECONNECT_MIN,
            )?,
            reconnect_max: seconds(
                "platform.reconnect-max",
                p.reconnect_max,
                DEFAULT_RECONNECT_MAX,
            )?,
        };
        if platform.reconnect_max < platform.reconnect_min {
            return Err(invalid(
                "platform.reconnect-max",
                "must not be smaller than reconnect-min",
            ));
        }
        Ok(Config {
            edge,
            platform,
            health_listen: addr("health.listen", raw.health.listen, DEFAULT_HEALTH_LISTEN)?,
            shutdown_grace: seconds("shutdown-grace", raw.shutdown_grace, DEFAULT_SHUTDOWN_GRACE)?,
        })
    }

    /// The edge TLS server configuration from `edge.cert` / `edge.key` (blocking file reads).
    pub fn edge_tls(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        let (Some(cert), Some(key)) = (&self.edge.cert, &self.edge.key) else {
            return Err(invalid(
                "edge.cert",
                "required (PEM certificate chain for edge TLS)",
            ));
        };
        net::tls::server_config_from_files(cert, key, &[b"http/1.1"])
            .map_err(|e| invalid("edge.cert", e.to_string()))
    }

    /// The upstream TLS client configuration from `platform.*` trust keys (blocking file reads).
    pub fn upstream_tls(&self) -> Result<Arc<ClientConfig>, ConfigError> {
        let trust = match &self.platform.trust {
            UpstreamTrust::Validate { ca_file: None } => net::Trust::default(),
            UpstreamTrust::Validate { ca_file: Some(f) } => {
                let pem = std::fs::read_to_string(f).map_err(|e| {
                    invalid(
                        "platform.ca-file",
                        format!("cannot read {}: {e}", f.display()),
                    )
                })?;
                net::Trust::WebPki {
                    extra_roots_pem: vec![pem],
                }
            }
            UpstreamTrust::Pinned(pins) => net::Trust::pinned_from_strs(pins)
                .map_err(|e| invalid("platform.pin", e.to_string()))?,
            UpstreamTrust::Insecure => net::Trust::InsecureAllowSelfSigned,
        };
        net::tls::client_config(&trust, &[b"http/1.1"])
            .map_err(|e| invalid("platform", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
        [edge]
        cert = "c.pem"
        key = "k.pem"
        [platform]
        url = "wss://platform.example:8443"
        app-key = "k"
    "#;

    #[test]
    fn defaults_and_paths() {
        let c = Config::from_toml(MIN, Path::new("/etc/tether")).unwrap();
        assert_eq!(c.edge.auth_request_timeout, DEFAULT_AUTH_REQUEST_TIMEOUT);
        assert_eq!(c.edge.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.edge.cert.as_deref(), Some(Path::new("/etc/tether/c.pem")));
        assert_eq!(c.platform.links, 2);
        assert_eq!(c.platform.trust, UpstreamTrust::Validate { ca_file: None });
        assert_eq!(format!("{:?}", c.platform.app_key), "***");
        assert!(c.edge.compression, "deflate is negotiated by default");
        assert!(!c.edge.compression_context_takeover);
        assert!(EdgeSettings::default().compression);
        assert!(!EdgeSettings::default().compression_context_takeover);
        let on = MIN.replace(
            "[edge]",
            "[edge]\ncompression = false\ncompression-context-takeover = true",
        );
        let c = Config::from_toml(&on, Path::new(".")).unwrap();
        assert!(!c.edge.compression);
        assert!(c.edge.compression_context_takeover);
    }

    #[test]
    fn errors_name_the_key() {
        let unknown = format!("{MIN}\nbogus = 1\n");
        let e = Config::from_toml(&unknown, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let bad = MIN.replace("[edge]", "[edge]\nauth-request-timeout = -1");
        let e = Config::from_toml(&bad, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("edge.auth-request-timeout"), "{e}");
        let bad = MIN.replace("wss://platform.example:8443", "http://x");
        let e = Config::from_toml(&bad, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("platform.url"), "{e}");
        let bad = MIN.replace("app-key = \"k\"", "");
        let e = Config::from_toml(&bad, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("platform.app-key"), "{e}");
        let typo = MIN.replace("[edge]", "[edge]\nidle-timeout = 5");
        let e = Config::from_toml(&typo, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle-timeout"), "{e}");
    }

    #[test]
    fn public_url_gives_the_tunnel_origin_and_is_checked() {
        let c = Config::from_toml(MIN, Path::new(".")).unwrap();
        assert_eq!(c.edge.public_origin(), None);
        for (url, origin) in [
            ("wss://cx.example.com:9443", "cx.example.com:9443"),
            ("wss://cx.example.com/", "cx.example.com"),
            ("wss://cx.example.com:443", "cx.example.com"),
            ("wss://[2001:db8::7]:9443", "[2001:db8::7]:9443"),
            ("wss://10.0.0.9:9443", "10.0.0.9:9443"),
        ] {
            let text = MIN.replace("[edge]", &format!("[edge]\npublic-url = \"{url}\""));
            let c = Config::from_toml(&text, Path::new(".")).unwrap();
            assert_eq!(c.edge.public_origin().as_deref(), Some(origin), "{url}");
        }
        for (url, why) in [
            ("cx.example.com:9443", "edge.public-url"),
            ("https://cx.example.com", "must start with wss://"),
            ("wss://cx.example.com/base", "without a path"),
            ("wss://u:p@cx.example.com", "credentials"),
            ("wss://cx.example.com/?a=1", "query"),
            ("", "edge.public-url"),
        ] {
            let text = MIN.replace("[edge]", &format!("[edge]\npublic-url = \"{url}\""));
            let e = Config::from_toml(&text, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("edge.public-url") && e.contains(why),
                "{url}: {e}"
            );
        }
    }
}
