//! Typed readers of raw JSON values: each names its key in the error.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ConfigError, TunnelTarget};

/// Parses `host:port` or `[v6]:port`.
pub(super) fn parse_target(text: &str) -> Option<TunnelTarget> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        let (h, p) = text.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some(TunnelTarget {
        host: host.to_owned(),
        port,
    })
}

pub(super) fn group<T: DeserializeOwned + Default>(
    v: Option<Value>,
    key: &str,
) -> Result<T, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v @ Value::Object(_)) => {
            serde_json::from_value(v).map_err(|e| ConfigError::new(key, e.to_string()))
        }
        Some(_) => Err(ConfigError::new(key, "must be an object")),
    }
}

pub(super) fn opt_string(v: &Option<Value>, key: &str) -> Result<Option<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError::new(key, "must be a string")),
    }
}

pub(super) fn string(v: &Option<Value>, key: &str, default: &str) -> Result<String, ConfigError> {
    Ok(opt_string(v, key)?.unwrap_or_else(|| default.to_owned()))
}

pub(super) fn string_list(v: &Option<Value>, key: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ConfigError::new(format!("{key}[{i}]"), "must be a string"))
            })
            .collect(),
        Some(_) => Err(ConfigError::new(key, "must be a list of strings")),
    }
}

pub(super) fn boolean(v: &Option<Value>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ConfigError::new(key, "must be true or false")),
    }
}

/// A whole number, given as a JSON number or a string of digits.
pub(super) fn integer(v: &Option<Value>, key: &str, default: i64) -> Result<i64, ConfigError> {
    let bad = || ConfigError::new(key, "must be a whole number");
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(u) = n.as_u64() {
                i64::try_from(u).map_err(|_| bad())
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
                    _ => Err(bad()),
                }
            }
        }
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

pub(super) fn number(
    v: &Option<Value>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let n = match v {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        _ => {
            let i = integer(v, key, default as i64)?;
            u64::try_from(i)
                .map_err(|_| ConfigError::new(key, format!("must be between {min} and {max}")))?
        }
    };
    if n < min || n > max {
        return Err(ConfigError::new(
            key,
            format!("{n} is out of range {min}..={max}"),
        ));
    }
    Ok(n)
}

pub(super) fn millis(
    v: &Option<Value>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    number(v, key, default, min, max).map(Duration::from_millis)
}

pub(super) fn port(v: &Option<Value>, key: &str, default: u16) -> Result<u16, ConfigError> {
    number(v, key, u64::from(default), 1, 65_535).map(|p| p as u16)
}
