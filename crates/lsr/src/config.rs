//! `config.lua`, read by Lua itself (spec/alwayson.md §7.1).
//!
//! The file runs in a small sandbox with an empty `scripts` table; afterwards the
//! `scripts.*` keys are read: plain values are settings, tables with a `template` are
//! Edge Things. Values may be strings, numbers or booleans, as in ThingWorx's examples
//! (`scripts.rap_port = "8080"`, `scripts.script_resource_ssl = "true"`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mlua::{Lua, LuaOptions, StdLib, Table, Value};

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
        let raw = run_config_lua(source, path)?;
        validate(raw, dir)
    }
}

/// A scalar read from config.lua.
#[derive(Debug, Clone)]
enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
    /// A nested table inside a thing's entry: passed to the template in `p_data`.
    Json(serde_json::Value),
}

impl Scalar {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Str(s) => serde_json::Value::String(s.clone()),
            Scalar::Num(n) => crate::json::number(*n),
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
            Scalar::Json(v) => v.clone(),
        }
    }
}

struct RawConfig {
    globals: BTreeMap<String, Scalar>,
    tables: Vec<(String, BTreeMap<String, Scalar>)>,
}

fn lua_err(path: &Path, e: mlua::Error) -> ConfigError {
    ConfigError::Lua {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn run_config_lua(source: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(|e| lua_err(path, e))?;
    lua.set_memory_limit(CONFIG_MEMORY_LIMIT)
        .map_err(|e| lua_err(path, e))?;
    let budget = crate::sandbox::Budget::new(CONFIG_INSTRUCTION_LIMIT, Duration::from_secs(5));
    budget.install(&lua);
    budget.start(&lua);
    let setup = || -> mlua::Result<()> {
        let g = lua.globals();
        g.set("scripts", lua.create_table()?)?;
        let os = lua.create_table()?;
        os.set(
            "time",
            lua.create_function(|_, ()| Ok(crate::json::now_ms() / 1000))?,
        )?;
        os.set(
            "getenv",
            lua.create_function(|_, name: String| Ok(std::env::var(name).ok()))?,
        )?;
        g.set("os", os)?;
        for name in ["dofile", "loadfile", "load", "require", "collectgarbage"] {
            g.set(name, Value::Nil)?;
        }
        let chunk_name = format!("@{}", path.display());
        lua.load(source).set_name(chunk_name).exec()
    };
    setup().map_err(|e| lua_err(path, e))?;

    let scripts: Table = lua
        .globals()
        .get("scripts")
        .map_err(|_| ConfigError::invalid("scripts", "must stay a table"))?;
    let mut raw = RawConfig {
        globals: BTreeMap::new(),
        tables: Vec::new(),
    };
    for pair in scripts.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| lua_err(path, e))?;
        let Value::String(k) = k else {
            return Err(ConfigError::invalid("scripts", "keys must be strings"));
        };
        let key = k.to_string_lossy();
        match v {
            Value::Table(t) => {
                let mut fields = BTreeMap::new();
                for pair in t.pairs::<Value, Value>() {
                    let (fk, fv) = pair.map_err(|e| lua_err(path, e))?;
                    let Value::String(fk) = fk else { continue };
                    let fk = fk.to_string_lossy();
                    match scalar(&fv) {
                        Some(s) => {
                            fields.insert(fk, s);
                        }
                        None if matches!(fv, Value::Table(_)) => {
                            let j = crate::json::from_lua(&fv).map_err(|e| {
                                ConfigError::invalid(format!("scripts.{key}.{fk}"), e.to_string())
                            })?;
                            fields.insert(fk, Scalar::Json(j));
                        }
                        None => {
                            return Err(ConfigError::invalid(
                                format!("scripts.{key}.{fk}"),
                                "must be a string, number, boolean or table",
                            ));
                        }
                    }
                }
                raw.tables.push((key, fields));
            }
            other => match scalar(&other) {
                Some(s) => {
                    raw.globals.insert(key, s);
                }
                None => {
                    return Err(ConfigError::invalid(
                        format!("scripts.{key}"),
                        "must be a string, number, boolean or table",
                    ));
                }
            },
        }
    }
    raw.tables.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(raw)
}

fn scalar(v: &Value) -> Option<Scalar> {
    match v {
        Value::String(s) => Some(Scalar::Str(s.to_string_lossy())),
        Value::Integer(i) => Some(Scalar::Num(*i as f64)),
        Value::Number(n) => Some(Scalar::Num(*n)),
        Value::Boolean(b) => Some(Scalar::Bool(*b)),
        _ => None,
    }
}

/// Typed access to a map of scalars, naming the full key in errors.
struct Fields<'a> {
    prefix: String,
    map: &'a BTreeMap<String, Scalar>,
}

impl Fields<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn string(&self, k: &str) -> Option<String> {
        match self.map.get(k)? {
            Scalar::Str(s) => Some(s.clone()),
            Scalar::Num(n) => Some(crate::json::number(*n).to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Json(v) => Some(v.to_string()),
        }
    }

    fn boolean(&self, k: &str, default: bool) -> Result<bool, ConfigError> {
        match self.map.get(k) {
            None => Ok(default),
            Some(Scalar::Bool(b)) => Ok(*b),
            Some(Scalar::Num(n)) => Ok(*n != 0.0),
            Some(Scalar::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" | "" => Ok(false),
                _ => Err(ConfigError::invalid(
                    self.key(k),
                    format!("expected true or false, got {s:?}"),
                )),
            },
            Some(Scalar::Json(_)) => Err(ConfigError::invalid(
                self.key(k),
                "expected true or false, got a table",
            )),
        }
    }

    fn unsigned(&self, k: &str, default: u64) -> Result<u64, ConfigError> {
        let n = match self.map.get(k) {
            None => return Ok(default),
            Some(Scalar::Num(n)) => *n,
            Some(Scalar::Str(s)) => s.trim().parse::<f64>().map_err(|_| {
                ConfigError::invalid(self.key(k), format!("expected a number, got {s:?}"))
            })?,
            Some(Scalar::Bool(_) | Scalar::Json(_)) => {
                return Err(ConfigError::invalid(self.key(k), "expected a number"));
            }
        };
        if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9.0e15) {
            return Err(ConfigError::invalid(
                self.key(k),
                format!("expected a whole number >= 0, got {n}"),
            ));
        }
        Ok(n as u64)
    }

    fn port(&self, k: &str, default: u16) -> Result<u16, ConfigError> {
        let p = self.unsigned(k, u64::from(default))?;
        u16::try_from(p)
            .map_err(|_| ConfigError::invalid(self.key(k), format!("{p} is not a TCP port")))
    }

    fn secret(&self, k: &str) -> Result<Option<Secret>, ConfigError> {
        match self.string(k) {
            None => Ok(None),
            Some(s) if s.starts_with("AES:") => Err(ConfigError::invalid(
                self.key(k),
                "AES-encrypted values are not supported yet; give the plain value",
            )),
            Some(s) => Ok(Some(Secret(s))),
        }
    }
}

fn validate(raw: RawConfig, dir: &Path) -> Result<Config, ConfigError> {
    let g = Fields {
        prefix: "scripts.".into(),
        map: &raw.globals,
    };
    let rap_credentials = match (g.string("rap_userid"), g.secret("rap_password")?) {
        (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
        (Some(u), None) if !u.is_empty() => {
            return Err(ConfigError::invalid(
                "scripts.rap_password",
                "missing while scripts.rap_userid is set",
            ));
        }
        _ => None,
    };
    let rap = RapConfig {
        host: g.string("rap_host").unwrap_or_else(|| "localhost".into()),
        port: g.port("rap_port", DEFAULT_RAP_PORT)?,
        ssl: g.boolean("rap_ssl", true)?,
        credentials: rap_credentials,
        validate: g.boolean("rap_validate", true)?,
        deny_selfsigned: g.boolean("rap_deny_selfsigned", true)?,
        cert_file: g
            .string("rap_cert_file")
            .filter(|s| !s.is_empty())
            .map(|s| dir.join(s)),
    };
    if rap.host.is_empty() {
        return Err(ConfigError::invalid("scripts.rap_host", "is empty"));
    }
    if let Some(cert) = &rap.cert_file {
        if rap.ssl && rap.validate && !cert.is_file() {
            return Err(ConfigError::invalid(
                "scripts.rap_cert_file",
                format!("{} is not a readable file", cert.display()),
            ));
        }
    }
    let resource_credentials = if g.boolean("script_resource_authenticate", false)? {
        match (
            g.string("script_resource_userid"),
            g.secret("script_resource_password")?,
        ) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
            _ => {
                return Err(ConfigError::invalid(
                    "scripts.script_resource_authenticate",
                    "true needs scripts.script_resource_userid and scripts.script_resource_password",
                ));
            }
        }
    } else {
        None
    };
    let resource_host = g
        .string("script_resource_host")
        .unwrap_or_else(|| DEFAULT_RESOURCE_HOST.into());
    let tls = if g.boolean("script_resource_ssl", false)? {
        let chain = g
            .string("script_resource_certificate_chain")
            .filter(|s| !s.is_empty());
        let key = g
            .string("script_resource_private_key")
            .filter(|s| !s.is_empty());
        let use_default = g.boolean("script_resource_use_default_certificate", false)?;
        Some(match (chain, key) {
            (Some(c), Some(k)) if !use_default => {
                crate::tls::from_files(&dir.join(c), &dir.join(k))?
            }
            (Some(_), None) if !use_default => {
                return Err(ConfigError::invalid(
                    "scripts.script_resource_private_key",
                    "missing while scripts.script_resource_certificate_chain is set",
                ));
            }
            (None, Some(_)) if !use_default => {
                return Err(ConfigError::invalid(
                    "scripts.script_resource_certificate_chain",
                    "missing while scripts.script_resource_private_key is set",
                ));
            }
            _ => crate::tls::self_signed(&resource_host)?,
        })
    } else {
        None
    };
    let resource = ResourceConfig {
        host: resource_host,
        port: g.port("script_resource_port", DEFAULT_RESOURCE_PORT)?,
        credentials: resource_credentials,
        tls,
    };
    let log_level = g.string("log_level").unwrap_or_else(|| "INFO".into());
    if !matches!(
        log_level.to_ascii_uppercase().as_str(),
        "FORCE" | "AUDIT" | "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE"
    ) {
        return Err(ConfigError::invalid(
            "scripts.log_level",
            format!("unknown level {log_level:?} (FORCE, ERROR, WARN, INFO, DEBUG, TRACE)"),
        ));
    }
    let limits = SandboxLimits {
        instructions: g.unsigned("lua_instruction_limit", DEFAULT_INSTRUCTION_LIMIT)?,
        memory: usize::try_from(g.unsigned("lua_memory_limit", DEFAULT_MEMORY_LIMIT as u64)?)
            .map_err(|_| ConfigError::invalid("scripts.lua_memory_limit", "too large"))?,
        call_timeout: Duration::from_millis(g.unsigned("lua_call_timeout", DEFAULT_CALL_TIMEOUT)?),
    };
    if limits.instructions < 1000 {
        return Err(ConfigError::invalid(
            "scripts.lua_instruction_limit",
            "must be at least 1000",
        ));
    }
    if limits.memory < 1024 * 1024 {
        return Err(ConfigError::invalid(
            "scripts.lua_memory_limit",
            "must be at least 1048576 (1 MiB)",
        ));
    }
    let mut template_dirs = Vec::new();
    if let Some(d) = g.string("template_dir").filter(|s| !s.is_empty()) {
        let d = dir.join(d);
        if !d.is_dir() {
            return Err(ConfigError::invalid(
                "scripts.template_dir",
                format!("{} is not a directory", d.display()),
            ));
        }
        template_dirs.push(d);
    }
    for sub in ["custom/templates", "templates", "."] {
        template_dirs.push(dir.join(sub));
    }

    let mut globals = serde_json::Map::new();
    for (k, v) in &raw.globals {
        if !k.contains("password") && !k.contains("passphrase") {
            globals.insert(k.clone(), v.to_json());
        }
    }

    let mut things = Vec::new();
    let mut skipped_scripts = Vec::new();
    for (name, fields) in &raw.tables {
        if !fields.contains_key("template") {
            skipped_scripts.push(name.clone());
            continue;
        }
        things.push(thing_config(name, fields)?);
    }
    if things.is_empty() {
        return Err(ConfigError::invalid(
            "scripts",
            "no Edge Thing configured (expected scripts.<Name> = { file = \"thing.lua\", template = \"...\" })",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for t in &things {
        if !seen.insert(t.registered_name()) {
            return Err(ConfigError::invalid(
                format!("scripts.{}.identifier", t.name),
                "registers the same name as another thing",
            ));
        }
    }
    Ok(Config {
        config_dir: dir.to_path_buf(),
        log_level,
        rap,
        resource,
        template_dirs,
        limits,
        things,
        skipped_scripts,
        globals,
    })
}

fn thing_config(name: &str, map: &BTreeMap<String, Scalar>) -> Result<ThingConfig, ConfigError> {
    let f = Fields {
        prefix: format!("scripts.{name}."),
        map,
    };
    if name.is_empty() || name.len() > 255 || name.contains('/') {
        return Err(ConfigError::invalid(
            format!("scripts.{name}"),
            "thing names must be 1-255 characters without '/'",
        ));
    }
    let template = f.string("template").unwrap_or_default();
    if template.is_empty()
        || !template
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(ConfigError::invalid(
            f.key("template"),
            format!("{template:?} is not a template name (letters, digits, _ - .)"),
        ));
    }
    let scan_rate = f.unsigned("scanRate", f.unsigned("updateRate", DEFAULT_SCAN_RATE)?)?;
    let task_rate = f.unsigned("taskRate", DEFAULT_TASK_RATE)?;
    let scan_rate_resolution = f.unsigned("scanRateResolution", DEFAULT_SCAN_RATE_RESOLUTION)?;
    if scan_rate_resolution == 0 {
        return Err(ConfigError::invalid(
            f.key("scanRateResolution"),
            "must be greater than 0",
        ));
    }
    if scan_rate <= scan_rate_resolution {
        return Err(ConfigError::invalid(
            f.key("scanRate"),
            format!("must be greater than scanRateResolution ({scan_rate_resolution})"),
        ));
    }
    if task_rate <= scan_rate_resolution {
        return Err(ConfigError::invalid(
            f.key("taskRate"),
            format!("must be greater than scanRateResolution ({scan_rate_resolution})"),
        ));
    }
    let default_push_type = match f.string("defaultPushType") {
        None => PushType::Value,
        Some(s) => PushType::parse(&s).ok_or_else(|| {
            ConfigError::invalid(
                f.key("defaultPushType"),
                format!("{s:?} is not ALWAYS, VALUE or NEVER"),
            )
        })?,
    };
    let positive = |k: &str, default: u64| -> Result<u64, ConfigError> {
        let v = f.unsigned(k, default)?;
        if v == 0 {
            return Err(ConfigError::invalid(f.key(k), "must be greater than 0"));
        }
        Ok(v)
    };
    let max_updates = positive(
        "maxConcurrentPropertyUpdates",
        DEFAULT_MAX_CONCURRENT_PROPERTY_UPDATES as u64,
    )?;
    let mut p_data = serde_json::Map::new();
    for (k, v) in map {
        p_data.insert(k.clone(), v.to_json());
    }
    Ok(ThingConfig {
        name: name.to_string(),
        template,
        scan_rate,
        task_rate,
        scan_rate_resolution,
        register: f.boolean("register", true)?,
        keep_alive_rate: positive("keepAliveRate", DEFAULT_KEEP_ALIVE_RATE)?,
        request_timeout: positive("requestTimeout", DEFAULT_REQUEST_TIMEOUT)?,
        register_rate: positive("registerRate", DEFAULT_REGISTER_RATE)?,
        register_retry_rate: positive("registerRetryRate", DEFAULT_REGISTER_RETRY_RATE)?,
        max_concurrent_property_updates: usize::try_from(max_updates.min(10_000))
            .unwrap_or(DEFAULT_MAX_CONCURRENT_PROPERTY_UPDATES),
        get_property_subscriptions_on_reconnect: f
            .boolean("getPropertySubscriptionsOnReconnect", false)?,
        identifier: f.string("identifier").filter(|s| !s.is_empty()),
        use_shapes: f.boolean("useShapes", true)?,
        default_push_type,
        p_data,
    })
}
