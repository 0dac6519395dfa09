//! Platform configuration: a TOML file (`deny_unknown_fields`) parsed into
//! `RawConfig`, then `validate()`d into `Config`, the runtime type. Every
//! default is a named constant; every error names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::store::Database;

/// Default listen address (https + wss).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default time an edge has to send AUTH after the upgrade.
pub const DEFAULT_AUTH_TIMEOUT_MS: u64 = 15_000;
/// Default idle time after which an edge socket is closed.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default time a platform→edge request waits for its answer.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default maximum AlwaysOn message (after multipart reassembly).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1_048_576;
/// Default multipart chunk size (§2.6).
pub const DEFAULT_CHUNK_SIZE: usize = 8192;
/// Default cap on concurrent edge sockets.
pub const DEFAULT_MAX_EDGE_CONNECTIONS: usize = 10_000;
/// Default cap on requests in flight per edge socket.
pub const DEFAULT_MAX_PENDING_REQUESTS: usize = 1000;
/// Default number of failed AUTHs allowed per client address per window.
pub const DEFAULT_AUTH_FAILURES_PER_WINDOW: u32 = 10;
/// Default length of the AUTH failure window.
pub const DEFAULT_AUTH_FAILURE_WINDOW_MS: u64 = 60_000;
/// Default maximum HTTP request body.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1_048_576;
/// Default lifetime of a web login session.
pub const DEFAULT_SESSION_TTL_MS: u64 = 8 * 3600 * 1000;
/// Default grace period for shutdown.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 5_000;

/// A configuration error; `key` names the offending setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML did not parse (unknown key, wrong type…); the message names the key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range or inconsistent.
    #[error("invalid `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The file format, as written by the operator.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory holding the database, generated certificate and key.
    pub data_dir: Option<PathBuf>,
    /// `host:port` to listen on.
    pub listen: Option<String>,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub alwayson: RawAlwaysOn,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub remote_access: RawRemoteAccess,
    /// The platform's URL as browsers and edges reach it (behind a proxy, or
    /// when listening on 0.0.0.0): used in session launch links and in the
    /// `server_url` sent to edges in StartTunnel. Default: `https://<listen>`.
    pub public_url: Option<String>,
    /// Grace period for shutdown, ms.
    pub shutdown_grace_ms: Option<u64>,
}

/// `[database]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// `sqlite:PATH` or `postgres://user:password@host:port/database`.
    /// Default: `tether.db` in the data directory.
    pub url: Option<String>,
    /// PostgreSQL pool size (default 10).
    pub max_connections: Option<u32>,
}

/// `[remote_access]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteAccess {
    /// `num_connects` in a legacy StartTunnel (default 16, 1..=1000).
    pub legacy_num_connects: Option<u32>,
}

/// Remote-access settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAccessConfig {
    /// TCP connections, one after the other, a legacy edge opens for one
    /// session (`connection.num_connects` in StartTunnel).
    pub legacy_num_connects: u32,
}

impl Default for RemoteAccessConfig {
    fn default() -> Self {
        RemoteAccessConfig {
            legacy_num_connects: broker::DEFAULT_LEGACY_NUM_CONNECTS,
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain; with `key`. When both are absent a self-signed
    /// certificate is generated in the data directory.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Extra DNS names / IPs for the generated certificate.
    #[serde(default)]
    pub self_signed_names: Vec<String>,
}

/// `[alwayson]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlwaysOn {
    pub auth_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub max_message_size: Option<usize>,
    pub chunk_size: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_pending_requests: Option<usize>,
    pub auth_failures_per_window: Option<u32>,
    pub auth_failure_window_ms: Option<u64>,
}

/// `[http]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub max_body_size: Option<usize>,
    pub session_ttl_ms: Option<u64>,
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Operator-supplied PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// Generated once and kept in the data directory (`tls/cert.pem`, `tls/key.pem`).
    SelfSigned { extra_names: Vec<String> },
}

/// AlwaysOn endpoint settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlwaysOnConfig {
    pub auth_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_message_size: usize,
    pub chunk_size: usize,
    pub max_connections: usize,
    pub max_pending_requests: usize,
    pub auth_failures_per_window: u32,
    pub auth_failure_window: Duration,
}

impl Default for AlwaysOnConfig {
    fn default() -> Self {
        AlwaysOnConfig {
            auth_timeout: Duration::from_millis(DEFAULT_AUTH_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_connections: DEFAULT_MAX_EDGE_CONNECTIONS,
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            auth_failures_per_window: DEFAULT_AUTH_FAILURES_PER_WINDOW,
            auth_failure_window: Duration::from_millis(DEFAULT_AUTH_FAILURE_WINDOW_MS),
        }
    }
}

/// HTTP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub max_body_size: usize,
    pub session_ttl: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            session_ttl: Duration::from_millis(DEFAULT_SESSION_TTL_MS),
        }
    }
}

/// The validated runtime configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub alwayson: AlwaysOnConfig,
    pub http: HttpConfig,
    /// Where the entity store lives.
    pub database: Database,
    pub remote_access: RemoteAccessConfig,
    /// The public base URL (`None`: derived from the listen address).
    pub public_url: Option<url::Url>,
    pub shutdown_grace: Duration,
}

impl Config {
    /// A config with defaults for `data_dir` (used by quickstart and tests).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            database: Database::sqlite_in(&data_dir),
            public_url: None,
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls: TlsSource::SelfSigned {
                extra_names: Vec::new(),
            },
            alwayson: AlwaysOnConfig::default(),
            http: HttpConfig::default(),
            remote_access: RemoteAccessConfig::default(),
            shutdown_grace: Duration::from_millis(DEFAULT_SHUTDOWN_GRACE_MS),
        }
    }
}

impl RawConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text; the error message names the key.
    pub fn parse(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Checks every value and fills in defaults.
    pub fn validate(self) -> Result<Config, ConfigError> {
        fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                reason: reason.into(),
            }
        }
        fn ms(
            key: &'static str,
            v: Option<u64>,
            default: u64,
            min: u64,
            max: u64,
        ) -> Result<Duration, ConfigError> {
            let v = v.unwrap_or(default);
            if v < min || v > max {
                return Err(invalid(key, format!("{v} is outside {min}..={max} ms")));
            }
            Ok(Duration::from_millis(v))
        }
        const DAY_MS: u64 = 24 * 3600 * 1000;

        let data_dir = self
            .data_dir
            .ok_or_else(|| invalid("data_dir", "is required"))?;
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "is empty"));
        }
        let listen_text = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|e| {
            invalid(
                "listen",
                format!("`{listen_text}`: {e} (want host:port, e.g. {DEFAULT_LISTEN})"),
            )
        })?;
        let tls = match (self.tls.cert, self.tls.key) {
            (Some(cert), Some(key)) => {
                if !self.tls.self_signed_names.is_empty() {
                    return Err(invalid(
                        "tls.self_signed_names",
                        "only applies without tls.cert/tls.key",
                    ));
                }
                TlsSource::Files { cert, key }
            }
            (None, None) => TlsSource::SelfSigned {
                extra_names: self.tls.self_signed_names,
            },
            (Some(_), None) => return Err(invalid("tls.key", "is required when tls.cert is set")),
            (None, Some(_)) => return Err(invalid("tls.cert", "is required when tls.key is set")),
        };
        let a = self.alwayson;
        let max_message_size = a.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE);
        if !(1024..=64 * 1024 * 1024).contains(&max_message_size) {
            return Err(invalid(
                "alwayson.max_message_size",
                format!("{max_message_size} is outside 1024..=67108864"),
            ));
        }
        let chunk_size = a.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE);
        if !(256..=65_535).contains(&chunk_size) || chunk_size > max_message_size {
            return Err(invalid(
                "alwayson.chunk_size",
                format!(
                    "{chunk_size} must be in 256..=65535 and not above alwayson.max_message_size"
                ),
            ));
        }
        let max_connections = a.max_connections.unwrap_or(DEFAULT_MAX_EDGE_CONNECTIONS);
        if max_connections == 0 {
            return Err(invalid("alwayson.max_connections", "must be at least 1"));
        }
        let max_pending_requests = a
            .max_pending_requests
            .unwrap_or(DEFAULT_MAX_PENDING_REQUESTS);
        if max_pending_requests == 0 {
            return Err(invalid(
                "alwayson.max_pending_requests",
                "must be at least 1",
            ));
        }
        let auth_failures_per_window = a
            .auth_failures_per_window
            .unwrap_or(DEFAULT_AUTH_FAILURES_PER_WINDOW);
        if auth_failures_per_window == 0 {
            return Err(invalid(
                "alwayson.auth_failures_per_window",
                "must be at least 1",
            ));
        }
        let alwayson = AlwaysOnConfig {
            auth_timeout: ms(
                "alwayson.auth_timeout_ms",
                a.auth_timeout_ms,
                DEFAULT_AUTH_TIMEOUT_MS,
                10,
                600_000,
            )?,
            idle_timeout: ms(
                "alwayson.idle_timeout_ms",
                a.idle_timeout_ms,
                DEFAULT_IDLE_TIMEOUT_MS,
                10,
                DAY_MS,
            )?,
            request_timeout: ms(
                "alwayson.request_timeout_ms",
                a.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT_MS,
                10,
                3_600_000,
            )?,
            max_message_size,
            chunk_size,
            max_connections,
            max_pending_requests,
            auth_failures_per_window,
            auth_failure_window: ms(
                "alwayson.auth_failure_window_ms",
                a.auth_failure_window_ms,
                DEFAULT_AUTH_FAILURE_WINDOW_MS,
                10,
                DAY_MS,
            )?,
        };
        let max_body_size = self.http.max_body_size.unwrap_or(DEFAULT_MAX_BODY_SIZE);
        if !(1024..=64 * 1024 * 1024).contains(&max_body_size) {
            return Err(invalid(
                "http.max_body_size",
                format!("{max_body_size} is outside 1024..=67108864"),
            ));
        }
        let http = HttpConfig {
            max_body_size,
            session_ttl: ms(
                "http.session_ttl_ms",
                self.http.session_ttl_ms,
                DEFAULT_SESSION_TTL_MS,
                1000,
                30 * DAY_MS,
            )?,
        };
        let database = match self.database.url {
            Some(url) => Database::from_url(&url, self.database.max_connections)
                .map_err(|reason| invalid("database.url", reason))?,
            None => {
                if self.database.max_connections.is_some() {
                    return Err(invalid(
                        "database.max_connections",
                        "applies to PostgreSQL only; set database.url",
                    ));
                }
                Database::sqlite_in(&data_dir)
            }
        };
        let legacy_num_connects = self
            .remote_access
            .legacy_num_connects
            .unwrap_or(broker::DEFAULT_LEGACY_NUM_CONNECTS);
        if !(1..=broker::MAX_LEGACY_NUM_CONNECTS).contains(&legacy_num_connects) {
            return Err(invalid(
                "remote_access.legacy_num_connects",
                format!(
                    "{legacy_num_connects} is outside 1..={}",
                    broker::MAX_LEGACY_NUM_CONNECTS
                ),
            ));
        }
        let remote_access = RemoteAccessConfig {
            legacy_num_connects,
        };
        let public_url = self
            .public_url
            .map(|text| parse_public_url(&text).map_err(|reason| invalid("public_url", reason)))
            .transpose()?;
        let shutdown_grace = ms(
            "shutdown_grace_ms",
            self.shutdown_grace_ms,
            DEFAULT_SHUTDOWN_GRACE_MS,
            0,
            600_000,
        )?;
        Ok(Config {
            data_dir,
            listen,
            tls,
            alwayson,
            http,
            database,
            remote_access,
            public_url,
            shutdown_grace,
        })
    }
}

/// Checks a `public_url`: http or https, with a host, no query or fragment.
fn parse_public_url(text: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(text.trim()).map_err(|e| format!("`{text}`: {e}"))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(format!("`{text}`: want an https:// (or http://) URL"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}`: has no host"));
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(format!(
            "`{text}`: no user, query or fragment, just scheme://host[:port][/path]"
        ));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = RawConfig::parse("data_dir = \"/tmp/x\"")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.alwayson, AlwaysOnConfig::default());
        assert!(matches!(c.tls, TlsSource::SelfSigned { .. }));
    }

    #[test]
    fn database_and_public_url() {
        let c = RawConfig::parse("data_dir = \"/tmp/x\"")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.database, Database::sqlite_in(Path::new("/tmp/x")));
        assert_eq!(c.public_url, None);
        let c = RawConfig::parse(
            "data_dir = \"/tmp/x\"\npublic_url = \"https://tether.example.com:9443/base\"\n\
             [database]\nurl = \"postgres://tether:s3cret@db.example.com:5432/tether\"\nmax_connections = 20\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        match &c.database {
            Database::Postgres {
                url,
                max_connections,
            } => {
                assert_eq!(*max_connections, 20);
                assert!(url.contains("s3cret"));
            }
            other => panic!("{other:?}"),
        }
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "password in Debug: {debug}");
        assert_eq!(
            c.public_url.unwrap().as_str(),
            "https://tether.example.com:9443/base"
        );
        let c = RawConfig::parse("data_dir = \"/x\"\n[database]\nurl = \"sqlite:/var/lib/t.db\"")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(
            c.database,
            Database::Sqlite {
                path: "/var/lib/t.db".into()
            }
        );
    }

    #[test]
    fn legacy_num_connects_defaults_to_16_and_is_read() {
        let c = RawConfig::parse("data_dir = \"/x\"")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.remote_access.legacy_num_connects, 16);
        let c = RawConfig::parse("data_dir = \"/x\"\n[remote_access]\nlegacy_num_connects = 3\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.remote_access.legacy_num_connects, 3);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = RawConfig::parse("data_dir = \"/x\"\n[alwayson]\nidle_timeout = 5\n").unwrap_err();
        assert!(e.contains("idle_timeout"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("listen = \"nope\"", "listen"),
            (
                "[alwayson]\nidle_timeout_ms = 0",
                "alwayson.idle_timeout_ms",
            ),
            ("[alwayson]\nchunk_size = 10", "alwayson.chunk_size"),
            ("[tls]\ncert = \"/c.pem\"", "tls.key"),
            ("[http]\nmax_body_size = 1", "http.max_body_size"),
            ("[database]\nurl = \"mysql://x\"", "database.url"),
            (
                "[database]\nurl = \"postgres://u@h:notaport/db\"",
                "database.url",
            ),
            ("[database]\nurl = \"sqlite::memory:\"", "database.url"),
            (
                "[database]\nurl = \"postgres://u@h/db\"\nmax_connections = 0",
                "database.url",
            ),
            (
                "[database]\nmax_connections = 5",
                "database.max_connections",
            ),
            (
                "[remote_access]\nlegacy_num_connects = 0",
                "remote_access.legacy_num_connects",
            ),
            (
                "[remote_access]\nlegacy_num_connects = 1001",
                "remote_access.legacy_num_connects",
            ),
            ("public_url = \"ftp://example.com\"", "public_url"),
            ("public_url = \"not a url\"", "public_url"),
            ("public_url = \"https://example.com/?a=1\"", "public_url"),
        ];
        for (body, key) in cases {
            let text = format!("data_dir = \"/x\"\n{body}\n");
            match RawConfig::parse(&text).unwrap().validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            RawConfig::parse("").unwrap().validate(),
            Err(ConfigError::Invalid {
                key: "data_dir",
                ..
            })
        ));
    }
}
