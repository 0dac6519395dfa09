//! Running config.lua and turning its `scripts` table into a validated [`Config`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mlua::{Lua, LuaOptions, StdLib, Table, Value};

use super::*;
use crate::error::ConfigError;

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

pub(super) struct RawConfig {
    globals: BTreeMap<String, Scalar>,
    tables: Vec<(String, BTreeMap<String, Scalar>)>,
}

fn lua_err(path: &Path, e: mlua::Error) -> ConfigError {
    ConfigError::Lua {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

pub(super) fn run_config_lua(source: &str, path: &Path) -> Result<RawConfig, ConfigError> {
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

pub(super) fn validate(raw: RawConfig, dir: &Path) -> Result<Config, ConfigError> {
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
