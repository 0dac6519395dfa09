//! `config.json`: ThingWorx EMS groups, keys and defaults (spec/alwayson.md §6.1)
//! plus a few Tether keys where ThingWorx has none.
//!
//! Loading is two steps: the text is parsed into [`raw`] (every leaf a JSON
//! value, unknown keys collected), then [`validate`] turns it into [`Config`],
//! the runtime type, naming the key of the first bad value. Unknown keys are
//! warnings, not errors, so a file written for a newer ThingWorx EMS still loads.

mod lenient;
mod raw;
mod validate;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;

pub use validate::parse;

/// Status a process exits with on a configuration error (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// ThingWorx defaults (spec/alwayson.md §5.1, §6.1).
pub mod defaults {
    /// `ws_servers[].host`
    pub const SERVER_HOST: &str = "localhost";
    /// `ws_servers[].port`
    pub const SERVER_PORT: u16 = 443;
    /// `resource`
    pub const RESOURCE: &str = "/Thingworx/WS";
    /// `logger.level`
    pub const LOG_LEVEL: &str = "WARN";
    /// `http_server.host`
    pub const HTTP_HOST: &str = "localhost";
    /// `http_server.port`
    pub const HTTP_PORT: u16 = 8000;
    /// `http_server.content_read_timeout` (ms)
    pub const CONTENT_READ_TIMEOUT_MS: u64 = 20_000;
    /// `http_server.ports_to_try`
    pub const PORTS_TO_TRY: u16 = 10;
    /// `http_server.max_clients`
    pub const MAX_CLIENTS: usize = 15;
    /// `ws_connection.msg_timeout` (ms)
    pub const MSG_TIMEOUT_MS: u64 = 5_000;
    /// `ws_connection.ping_rate` (ms)
    pub const PING_RATE_MS: u64 = 55_000;
    /// `ws_connection.pingpong_timeout` (ms)
    pub const PINGPONG_TIMEOUT_MS: u64 = 10_000;
    /// `ws_connection.connect_period` (ms)
    pub const CONNECT_PERIOD_MS: u64 = 60_000;
    /// `ws_connection.duty_cycle` (%)
    pub const DUTY_CYCLE: u8 = 100;
    /// `ws_connection.message_idle_time` (ms)
    pub const MESSAGE_IDLE_TIME_MS: u64 = 50;
    /// `ws_connection.max_msg_size` (bytes)
    pub const MAX_MSG_SIZE: usize = 1_048_576;
    /// `ws_connection.message_chunk_size` (bytes)
    pub const MESSAGE_CHUNK_SIZE: usize = 8_192;
    /// `ws_connection.max_frame_size` (bytes)
    pub const MAX_FRAME_SIZE: usize = 8_192;
    /// `ws_connection.max_messages`
    pub const MAX_MESSAGES: usize = 500;
    /// `ws_connection.connect_timeout` (ms)
    pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
    /// `ws_connection.connect_retry_interval` (ms)
    pub const CONNECT_RETRY_INTERVAL_MS: u64 = 10_000;
    /// `ws_connection.max_threads`
    pub const MAX_THREADS: usize = 4;
    /// `ws_connection.max_connect_delay` (ms)
    pub const MAX_CONNECT_DELAY_MS: u64 = 0;
    /// `proxy.port`
    pub const PROXY_PORT: u16 = 3128;
    /// `offline_msg_store.max_size` (bytes)
    pub const OFFLINE_MAX_SIZE: u64 = 65_535;
    /// `auto_bind[].host`
    pub const BIND_HOST: &str = "localhost";
    /// `auto_bind[].port`
    pub const BIND_PORT: u16 = 8001;
    /// `auto_bind[].path`
    pub const BIND_PATH: &str = "/";
    /// `auto_bind[].timeout` (ms)
    pub const BIND_TIMEOUT_MS: u64 = 30_000;
    /// `tunnel.tick_resolution` (ms)
    pub const TUNNEL_TICK_MS: u64 = 5;
    /// `tunnel.buffer_size` (bytes)
    pub const TUNNEL_BUFFER_SIZE: usize = 8_192;
    /// `tunnel.read_timeout` (ms)
    pub const TUNNEL_READ_TIMEOUT_MS: u64 = 10;
    /// `tunnel.idle_timeout` (ms)
    pub const TUNNEL_IDLE_TIMEOUT_MS: u64 = 300_000;
    /// `tunnel.max_concurrent`
    pub const TUNNEL_MAX_CONCURRENT: usize = 4;
    /// `file.buffer_size` (bytes)
    pub const FILE_BUFFER_SIZE: usize = 8_192;
    /// `file.max_file_size` (bytes)
    pub const FILE_MAX_SIZE: u64 = 8_000_000_000;
    /// gatewayType sent in BIND (observed from EMS 5.4, spec §12.3)
    pub const GATEWAY_TYPE: &str = "EMSGateway";
}

/// A configuration that stops start-up: the key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config: {key}: {reason}")]
pub struct ConfigError {
    /// Dotted key path, e.g. `ws_connection.ping_rate` or `auto_bind[1].port`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// A loaded configuration and the warnings found on the way (unknown keys,
/// keys parsed but not acted on).
#[derive(Debug)]
pub struct Loaded {
    /// The runtime configuration.
    pub config: Config,
    /// One line per warning, each naming its key.
    pub warnings: Vec<String>,
}

/// Reads and validates a `config.json` file. Relative paths in the file
/// (`secrets_key_file`, certificates, `offline_msg_store.directory`) are read
/// relative to the file's directory.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("<file>", format!("{}: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &base)
}

/// The runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ws_servers`: tried in order (fail-over).
    pub servers: Vec<ServerAddr>,
    /// `resource`
    pub resource: String,
    /// `appKey`, decrypted.
    pub app_key: Secret,
    /// `logger`
    pub logger: LoggerConfig,
    /// `http_server`
    pub http_server: HttpServerConfig,
    /// `ws_connection`
    pub connection: ConnectionConfig,
    /// `offline_msg_store`
    pub offline_store: OfflineStoreConfig,
    /// `certificates`
    pub certificates: CertificatesConfig,
    /// `auto_bind`, in file order.
    pub auto_bind: Vec<AutoBind>,
    /// `tunnel`
    pub tunnel: TunnelConfig,
    /// `file` (parsed and checked; file transfer is not implemented yet).
    pub file: FileConfig,
}

impl Config {
    /// The `gateway: true` auto_bind entry, which names the EMS itself.
    pub fn gateway_name(&self) -> Option<&str> {
        self.auto_bind
            .iter()
            .find(|b| b.gateway)
            .map(|b| b.name.as_str())
    }
}

/// One `ws_servers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// `host`
    pub host: String,
    /// `port`
    pub port: u16,
}

/// `logger`
#[derive(Debug, Clone)]
pub struct LoggerConfig {
    /// `level`, mapped onto tracing: AUDIT/ERROR → error, WARN → warn, INFO → info,
    /// DEBUG → debug, TRACE → trace.
    pub level: String,
}

impl LoggerConfig {
    /// The `tracing` filter directive for `level`.
    pub fn tracing_directive(&self) -> &'static str {
        match self.level.as_str() {
            "AUDIT" | "ERROR" => "error",
            "WARN" => "warn",
            "INFO" => "info",
            "DEBUG" => "debug",
            _ => "trace",
        }
    }
}

/// `http_server`: the local REST server.
#[derive(Debug, Clone)]
pub struct HttpServerConfig {
    /// `host`
    pub host: String,
    /// `port`
    pub port: u16,
    /// `ssl` with `certificate`, `private_key`, `passphrase`.
    pub tls: Option<HttpTls>,
    /// `authenticate` with `user`, `password`.
    pub basic_auth: Option<BasicAuth>,
    /// `content_read_timeout`
    pub content_read_timeout: Duration,
    /// `ports_to_try`
    pub ports_to_try: u16,
    /// `max_clients`
    pub max_clients: usize,
}

impl HttpServerConfig {
    /// Addresses to try binding, in order: `port`, then up to `ports_to_try` more.
    /// `localhost` means 127.0.0.1 (the ThingWorx note warns it may be IPv6).
    pub fn bind_candidates(&self) -> Vec<SocketAddr> {
        let host = if self.host == "localhost" {
            "127.0.0.1"
        } else {
            self.host.as_str()
        };
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return Vec::new();
        };
        (0..=self.ports_to_try)
            .filter_map(|i| self.port.checked_add(i))
            .map(|p| SocketAddr::new(ip, p))
            .collect()
    }
}

/// TLS for the local REST server.
#[derive(Debug, Clone)]
pub enum HttpTls {
    /// `certificate` (PEM chain) and `private_key` (PEM).
    Files {
        /// PEM certificate chain.
        certificate: PathBuf,
        /// PEM private key.
        private_key: PathBuf,
    },
    /// `use_default_certificate`: ThingWorx embeds one; Tether generates a
    /// self-signed certificate for `localhost` at start-up.
    SelfSigned,
}

/// Basic authentication of local REST callers.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    /// `user`
    pub user: String,
    /// `password`
    pub password: Secret,
}

/// `ws_connection`
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `encryption`: `ssl` (default) → wss, `none` → ws.
    pub tls: bool,
    /// `msg_timeout`: wait for the platform's answer to an edge request.
    pub msg_timeout: Duration,
    /// `ping_rate`
    pub ping_rate: Duration,
    /// `pingpong_timeout`
    pub pingpong_timeout: Duration,
    /// `connect_period` and `duty_cycle` (None when always on).
    pub duty_cycle: Option<DutyCycle>,
    /// `message_idle_time`
    pub message_idle_time: Duration,
    /// `max_msg_size`
    pub max_msg_size: usize,
    /// `message_chunk_size`
    pub message_chunk_size: usize,
    /// `max_frame_size`
    pub max_frame_size: usize,
    /// `max_messages`: requests waiting for an answer at once.
    pub max_messages: usize,
    /// `connect_timeout`
    pub connect_timeout: Duration,
    /// `connect_retry_interval`: first back-off step.
    pub connect_retry_interval: Duration,
    /// `max_threads`: platform requests handled at once.
    pub max_threads: usize,
    /// `max_connect_delay`: random delay before the first connect.
    pub max_connect_delay: Duration,
    /// `connect_retries`: `None` = forever (-1).
    pub connect_retries: Option<u32>,
}

/// Duty-cycled connection: on for `on`, off for `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyCycle {
    /// Connected time per period.
    pub on: Duration,
    /// Disconnected time per period.
    pub off: Duration,
}

/// `offline_msg_store`
#[derive(Debug, Clone)]
pub struct OfflineStoreConfig {
    /// `enabled`
    pub enabled: bool,
    /// `directory`: on disk when set, in memory otherwise.
    pub directory: Option<PathBuf>,
    /// `max_size`: bytes of stored messages (records included).
    pub max_size: u64,
}

/// `certificates`
#[derive(Debug, Clone)]
pub struct CertificatesConfig {
    /// `validate`
    pub validate: bool,
    /// `allow_self_signed`
    pub allow_self_signed: bool,
    /// `cert_chain`: PEM files of trusted CAs (or pinned certificates).
    pub cert_chain: Vec<PathBuf>,
    /// Tether `pinned_sha256`: SHA-256 of accepted server certificates (DER).
    pub pinned_sha256: Vec<[u8; 32]>,
    /// `client_cert`
    pub client_cert: Option<PathBuf>,
    /// `key_file`
    pub key_file: Option<PathBuf>,
}

/// One `auto_bind` entry.
#[derive(Debug, Clone)]
pub struct AutoBind {
    /// `name` (`*identifier` allowed).
    pub name: String,
    /// `gateway`: the EMS itself answers for this name.
    pub gateway: bool,
    /// Where requests for this thing are forwarded (None for the gateway).
    pub endpoint: Option<Endpoint>,
}

/// An HTTP endpoint that answers for a thing (an LSR or custom app).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `protocol`: https?
    pub https: bool,
    /// `host`
    pub host: String,
    /// `port`
    pub port: u16,
    /// `path`, prepended to the platform request's path.
    pub path: String,
    /// `timeout`
    pub timeout: Duration,
    /// `user`, `password`: basic authentication towards the endpoint.
    pub basic_auth: Option<(String, Secret)>,
}

/// `tunnel`
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// `tick_resolution`
    pub tick_resolution: Duration,
    /// `buffer_size`
    pub buffer_size: usize,
    /// `read_timeout`
    pub read_timeout: Duration,
    /// `idle_timeout`
    pub idle_timeout: Duration,
    /// `max_concurrent`
    pub max_concurrent: usize,
    /// Tether `allowed_targets`: the only targets a tunnel may reach. Empty = none.
    pub allowed_targets: Vec<TunnelTarget>,
    /// Tether `mode`: which tunnel protocol to speak.
    pub mode: TunnelMode,
}

/// `tunnel.mode`: which protocol a `StartTunnel` is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TunnelMode {
    /// `auto` (default): native when `StartTunnel` carries `server_url` and
    /// `server_token` (a Tether platform), the legacy ThingWorx tunnel
    /// otherwise (a ThingWorx platform).
    #[default]
    Auto,
    /// `native`: refuse `StartTunnel` without the native parameters.
    Native,
    /// `legacy`: always the legacy ThingWorx tunnel, even when the native
    /// parameters are present (compatibility testing, or a network that
    /// only lets `/Thingworx/*` through).
    Legacy,
}

/// One allowed tunnel target, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelTarget {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl TunnelConfig {
    /// Is `host:port` in the allow-list? Host names compare case-insensitively.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.allowed_targets
            .iter()
            .any(|t| t.port == port && t.host.eq_ignore_ascii_case(host))
    }
}

/// `file`
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// `buffer_size`
    pub buffer_size: usize,
    /// `max_file_size`
    pub max_file_size: u64,
    /// `virtual_dirs`: name → absolute path.
    pub virtual_dirs: Vec<(String, PathBuf)>,
}
