//! The raw shape of a ThingWorx `config.json`: groups and key names exactly as
//! the ThingWorx EMS 5.4 documents them (spec/alwayson.md §6.1), every leaf kept
//! as a JSON value so that `validate` can name the key of a bad value.
//! Keys nobody knows land in `unknown` and are reported as warnings.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Unknown keys of one group.
pub(crate) type Unknown = Map<String, Value>;

/// The whole file: groups stay JSON values until `validate` reads them, so that a
/// group of the wrong type is reported by its key.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    pub ws_servers: Option<Value>,
    pub resource: Option<Value>,
    #[serde(rename = "appKey")]
    pub app_key: Option<Value>,
    /// Tether: key file used to decrypt `enc:` secrets (see `tether-ems encrypt`).
    pub secrets_key_file: Option<Value>,
    pub logger: Option<Value>,
    pub http_server: Option<Value>,
    pub fips: Option<Value>,
    pub ws_connection: Option<Value>,
    pub proxy: Option<Value>,
    pub offline_msg_store: Option<Value>,
    pub certificates: Option<Value>,
    pub auto_bind: Option<Value>,
    pub tunnel: Option<Value>,
    pub file: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawServer {
    pub host: Option<Value>,
    pub port: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawLogger {
    pub level: Option<Value>,
    pub audit_target: Option<Value>,
    pub publish_directory: Option<Value>,
    pub publish_level: Option<Value>,
    pub max_file_storage: Option<Value>,
    pub auto_flush: Option<Value>,
    pub flush_chunk_size: Option<Value>,
    pub buffer_size: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawHttpServer {
    pub host: Option<Value>,
    pub port: Option<Value>,
    pub ssl: Option<Value>,
    pub certificate: Option<Value>,
    pub private_key: Option<Value>,
    pub passphrase: Option<Value>,
    pub authenticate: Option<Value>,
    pub user: Option<Value>,
    pub password: Option<Value>,
    pub content_read_timeout: Option<Value>,
    pub ports_to_try: Option<Value>,
    pub max_clients: Option<Value>,
    pub use_default_certificate: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawFips {
    pub enabled: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawWsConnection {
    pub encryption: Option<Value>,
    pub verbose: Option<Value>,
    pub binary_mode: Option<Value>,
    pub compression: Option<Value>,
    pub msg_timeout: Option<Value>,
    pub ping_rate: Option<Value>,
    pub pingpong_timeout: Option<Value>,
    pub connect_period: Option<Value>,
    pub duty_cycle: Option<Value>,
    pub message_idle_time: Option<Value>,
    pub max_msg_size: Option<Value>,
    pub message_chunk_size: Option<Value>,
    pub max_frame_size: Option<Value>,
    pub max_messages: Option<Value>,
    pub connect_on_demand: Option<Value>,
    pub connect_timeout: Option<Value>,
    pub connect_retry_interval: Option<Value>,
    pub max_threads: Option<Value>,
    pub max_connect_delay: Option<Value>,
    pub socket_read_timeout: Option<Value>,
    pub frame_read_timeout: Option<Value>,
    pub ssl_read_timeout: Option<Value>,
    pub connect_retries: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawProxy {
    pub host: Option<Value>,
    pub port: Option<Value>,
    pub user: Option<Value>,
    pub password: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawOfflineStore {
    pub enabled: Option<Value>,
    pub directory: Option<Value>,
    pub max_size: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCertificates {
    pub validate: Option<Value>,
    pub allow_self_signed: Option<Value>,
    pub cert_chain: Option<Value>,
    /// Tether: SHA-256 fingerprints (hex, colons allowed) of accepted server certificates.
    pub pinned_sha256: Option<Value>,
    pub client_cert: Option<Value>,
    pub key_file: Option<Value>,
    pub key_passphrase: Option<Value>,
    pub validation_criteria: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAutoBind {
    pub name: Option<Value>,
    pub host: Option<Value>,
    pub port: Option<Value>,
    pub path: Option<Value>,
    pub timeout: Option<Value>,
    pub protocol: Option<Value>,
    pub user: Option<Value>,
    pub password: Option<Value>,
    pub accept: Option<Value>,
    pub gateway: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawTunnel {
    pub tick_resolution: Option<Value>,
    pub buffer_size: Option<Value>,
    pub read_timeout: Option<Value>,
    pub idle_timeout: Option<Value>,
    pub max_concurrent: Option<Value>,
    /// Tether: the only `host:port` targets a tunnel may connect to.
    pub allowed_targets: Option<Value>,
    /// Tether: `auto`, `native` or `legacy` (which tunnel protocol to speak).
    pub mode: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawFile {
    pub buffer_size: Option<Value>,
    pub max_file_size: Option<Value>,
    pub virtual_dirs: Option<Value>,
    pub idle_timeout: Option<Value>,
    pub staging_dir: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
