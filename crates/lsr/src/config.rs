//! `config.lua`, read by Lua itself (spec/alwayson.md §7.1).
//!
//! The file runs in a small sandbox with an empty `scripts` table; afterwards the
//! `scripts.*` keys are read: plain values are settings, tables with a `template` are
//! Edge Things. Values may be strings, numbers or booleans, as in ThingWorx's examples
//! (`scripts.rap_port = "8080"`, `scripts.script_resource_ssl = "true"`).

mod parse;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;

/// Default EMS port (`scripts.rap_port`).
pub const DEFAULT_RAP_PORT: u16 = 8000;
/// Default LSR listen port (`scripts.script_resource_port`).
pub const DEFAULT_RESOURCE_PORT: u16 = 8001;
/// Default LSR listen host (`scripts.script_resource_host`).
pub const DEFAULT_RESOURCE_HOST: &str = "localhost";
/// Default `scanRate` in ms.
pub const DEFAULT_SCAN_RATE: u64 = 60_000;
/// Default `taskRate` in ms.
pub const DEFAULT_TASK_RATE: u64 = 15_000;
/// Default `scanRateResolution` in ms.
pub const DEFAULT_SCAN_RATE_RESOLUTION: u64 = 500;
/// Default `keepAliveRate` in ms.
pub const DEFAULT_KEEP_ALIVE_RATE: u64 = 60_000;
/// Default `requestTimeout` in ms.
pub const DEFAULT_REQUEST_TIMEOUT: u64 = 15_000;
/// Default `registerRate` in ms (12 h).
pub const DEFAULT_REGISTER_RATE: u64 = 43_200_000;
/// Default delay before a failed registration is retried, in ms (ThingWorx: 5 s).
pub const DEFAULT_REGISTER_RETRY_RATE: u64 = 5_000;
/// Default `maxConcurrentPropertyUpdates`.
pub const DEFAULT_MAX_CONCURRENT_PROPERTY_UPDATES: usize = 100;
/// Default Lua instructions per call (`scripts.lua_instruction_limit`, Tether key).
pub const DEFAULT_INSTRUCTION_LIMIT: u64 = 50_000_000;
/// Default Lua memory per thing in bytes (`scripts.lua_memory_limit`, Tether key).
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Default wall-clock limit of one Lua call in ms (`scripts.lua_call_timeout`, Tether key).
pub const DEFAULT_CALL_TIMEOUT: u64 = 10_000;
/// Instruction budget for running `config.lua` itself.
const CONFIG_INSTRUCTION_LIMIT: u64 = 10_000_000;
/// Memory limit for running `config.lua` itself.
const CONFIG_MEMORY_LIMIT: usize = 16 * 1024 * 1024;

/// A password or other secret: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How the LSR reaches the EMS ("rap").
#[derive(Debug, Clone)]
pub struct RapConfig {
    /// `scripts.rap_host`.
    pub host: String,
    /// `scripts.rap_port`.
    pub port: u16,
    /// `scripts.rap_ssl` (default true).
    pub ssl: bool,
    /// `scripts.rap_userid` and `scripts.rap_password`: Basic auth to the EMS.
    pub credentials: Option<(String, Secret)>,
    /// `scripts.rap_validate` (default true): validate the EMS certificate.
    pub validate: bool,
    /// `scripts.rap_deny_selfsigned` (default true).
    pub deny_selfsigned: bool,
    /// `scripts.rap_cert_file`: extra CA certificate (PEM).
    pub cert_file: Option<PathBuf>,
}

impl RapConfig {
    /// Base URL of the EMS local REST, e.g. `http://127.0.0.1:8000`.
    pub fn base_url(&self) -> String {
        let scheme = if self.ssl { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// The LSR's own HTTP server.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// `scripts.script_resource_host` (default `localhost`).
    pub host: String,
    /// `scripts.script_resource_port` (default 8001).
    pub port: u16,
    /// `scripts.script_resource_userid`/`_password` when `_authenticate` is true.
    pub credentials: Option<(String, Secret)>,
    /// HTTPS when `scripts.script_resource_ssl` is true.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Limits applied to every Lua call.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Lua VM instructions per call.
    pub instructions: u64,
    /// Bytes of Lua memory per thing.
    pub memory: usize,
    /// Wall-clock time per call.
    pub call_timeout: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            instructions: DEFAULT_INSTRUCTION_LIMIT,
            memory: DEFAULT_MEMORY_LIMIT,
            call_timeout: Duration::from_millis(DEFAULT_CALL_TIMEOUT),
        }
    }
}

/// Push type of a property (`pushType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushType {
    /// Pushed at every scan and after every write.
    Always,
    /// Pushed when the value changed by more than the threshold.
    Value,
    /// Never pushed.
    Never,
}

impl PushType {
    /// Parses ThingWorx names; `ON`/`OFF` mean `VALUE` as in the ThingWorx LSR.
    pub fn parse(s: &str) -> Option<PushType> {
        match s.to_ascii_uppercase().as_str() {
            "ALWAYS" => Some(PushType::Always),
            "VALUE" | "ON" | "OFF" => Some(PushType::Value),
            "NEVER" => Some(PushType::Never),
            _ => None,
        }
    }

    /// The ThingWorx name.
    pub fn name(self) -> &'static str {
        match self {
            PushType::Always => "ALWAYS",
            PushType::Value => "VALUE",
            PushType::Never => "NEVER",
        }
    }
}

/// One Edge Thing: `scripts.<Name> = { file = "thing.lua", template = "...", ... }`.
#[derive(Debug, Clone)]
pub struct ThingConfig {
    /// The key under `scripts`.
    pub name: String,
    /// `template`: name of the template module.
    pub template: String,
    /// `scanRate` (ms).
    pub scan_rate: u64,
    /// `taskRate` (ms).
    pub task_rate: u64,
    /// `scanRateResolution` (ms).
    pub scan_rate_resolution: u64,
    /// `register`.
    pub register: bool,
    /// `keepAliveRate` (ms).
    pub keep_alive_rate: u64,
    /// `requestTimeout` (ms).
    pub request_timeout: u64,
    /// `registerRate` (ms).
    pub register_rate: u64,
    /// `registerRetryRate` (ms, Tether key).
    pub register_retry_rate: u64,
    /// `maxConcurrentPropertyUpdates`.
    pub max_concurrent_property_updates: usize,
    /// `getPropertySubscriptionsOnReconnect`.
    pub get_property_subscriptions_on_reconnect: bool,
    /// `identifier`: registered as `*identifier`.
    pub identifier: Option<String>,
    /// `useShapes`.
    pub use_shapes: bool,
    /// `defaultPushType`.
    pub default_push_type: PushType,
    /// Every key of the table as JSON, handed to the template as `p_data`.
    pub p_data: serde_json::Map<String, serde_json::Value>,
}

impl ThingConfig {
    /// The name registered with the EMS: the thing name or `*identifier`.
    pub fn registered_name(&self) -> String {
        match &self.identifier {
            Some(id) => format!("*{id}"),
            None => self.name.clone(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of `config.lua`.
    pub config_dir: PathBuf,
    /// `scripts.log_level` (default INFO).
    pub log_level: String,
    /// The EMS.
    pub rap: RapConfig,
    /// The LSR's HTTP server.
    pub resource: ResourceConfig,
    /// Directories searched for `<template>.lua`, in order.
    pub template_dirs: Vec<PathBuf>,
    /// Lua limits.
    pub limits: SandboxLimits,
    /// The Edge Things.
    pub things: Vec<ThingConfig>,
    /// `scripts.<name> = { file = ... }` entries without a template: not run by Tether.
    pub skipped_scripts: Vec<String>,
    /// Global string settings passed to templates in `p_data` (passwords left out).
    pub globals: serde_json::Map<String, serde_json::Value>,
}

impl Config {
    /// Reads and validates `config.lua`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Config::from_lua_source(&text, path, &dir)
    }

    /// Runs `source` as `config.lua` located in `dir` (`path` is only used in messages).
    pub fn from_lua_source(source: &str, path: &Path, dir: &Path) -> Result<Config, ConfigError> {
        let raw = parse::run_config_lua(source, path)?;
        parse::validate(raw, dir)
    }
}
