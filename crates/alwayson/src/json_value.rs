//! JSON form of single values (cells and aspects) by declared base type (§6.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::basetype::{BaseType, TextKind};
use crate::error::DecodeError;
use crate::json::{bad, check_len, infer, read_table};
use crate::limits::Limits;
use crate::primitive::{Location, Primitive, check_depth};

fn text_of(v: &Value, limits: &Limits) -> Result<String, DecodeError> {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    check_len(s.len(), limits)?;
    Ok(s)
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn num_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Primitive {
    /// Converts a JSON cell whose declared type is `base`. `null` gives NOTHING.
    pub fn from_json(base: BaseType, v: &Value, limits: &Limits) -> Result<Primitive, DecodeError> {
        Self::from_json_at(base, v, limits, 0)
    }

    /// As [`Primitive::from_json`], `depth` levels deep in nested values.
    pub(crate) fn from_json_at(
        base: BaseType,
        v: &Value,
        limits: &Limits,
        depth: usize,
    ) -> Result<Primitive, DecodeError> {
        let wrong = || bad(format!("{} is not a valid {}", short(v), base.name()));
        if v.is_null() {
            return Ok(Primitive::Nothing);
        }
        Ok(match base {
            BaseType::Nothing => Primitive::Nothing,
            BaseType::String => Primitive::String(text_of(v, limits)?),
            BaseType::Number => Primitive::Number(num_of(v).ok_or_else(wrong)?),
            BaseType::Boolean => Primitive::Boolean(match v {
                Value::Bool(b) => *b,
                Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                _ => return Err(wrong()),
            }),
            BaseType::DateTime => Primitive::DateTime(int_of(v).ok_or_else(wrong)?),
            BaseType::Integer => Primitive::Integer(
                int_of(v)
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(wrong)?,
            ),
            BaseType::Long => Primitive::Long(int_of(v).ok_or_else(wrong)?),
            BaseType::InfoTable => {
                check_depth(depth, limits)?;
                let inner = match v {
                    Value::String(s) => {
                        let parsed: Value = serde_json::from_str(s).map_err(|_| wrong())?;
                        read_table(&parsed, limits, depth + 1)?
                    }
                    _ => read_table(v, limits, depth + 1)?,
                };
                Primitive::InfoTable(Box::new(inner))
            }
            BaseType::Location => {
                let f = |k: &str| v.get(k).and_then(num_of);
                Primitive::Location(Location {
                    longitude: f("longitude").ok_or_else(wrong)?,
                    latitude: f("latitude").ok_or_else(wrong)?,
                    elevation: f("elevation").unwrap_or(0.0),
                })
            }
            BaseType::Image | BaseType::Blob => {
                let s = v.as_str().ok_or_else(wrong)?;
                check_len(s.len() / 4 * 3, limits)?;
                let b = STANDARD.decode(s.trim()).map_err(|_| wrong())?;
                if base == BaseType::Image {
                    Primitive::Image(b)
                } else {
                    Primitive::Blob(b)
                }
            }
            BaseType::Variant => {
                check_depth(depth, limits)?;
                let inner = match (v.get("baseType").and_then(Value::as_str), v.get("value")) {
                    (Some(t), Some(val)) => {
                        Primitive::from_json_at(BaseType::from_name(t)?, val, limits, depth + 1)?
                    }
                    _ => infer(v, limits, depth + 1)?,
                };
                Primitive::variant(inner)
            }
            other => match TextKind::new(other) {
                Some(k) => Primitive::Text(k, text_of(v, limits)?),
                None => return Err(DecodeError::UnsupportedTypeName(other.name().to_owned())),
            },
        })
    }

    /// The JSON form of this value as a cell of its own type.
    pub fn to_json(&self) -> Value {
        match self {
            Primitive::Nothing => Value::Null,
            Primitive::String(s) => Value::String(s.clone()),
            Primitive::Text(k, s)
                if k.base_type() == BaseType::Json || k.base_type() == BaseType::Query =>
            {
                serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
            }
            Primitive::Text(_, s) => Value::String(s.clone()),
            Primitive::Number(n) => {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
            Primitive::Boolean(b) => Value::Bool(*b),
            Primitive::DateTime(ms) | Primitive::Long(ms) => json!(ms),
            Primitive::Integer(i) => json!(i),
            Primitive::InfoTable(t) => t.to_json(),
            Primitive::Location(l) => {
                json!({"latitude": l.latitude, "longitude": l.longitude, "elevation": l.elevation})
            }
            Primitive::Image(b) | Primitive::Blob(b) => Value::String(STANDARD.encode(b)),
            Primitive::Variant(inner) => {
                json!({"baseType": inner.base_type().name(), "value": inner.to_json()})
            }
        }
    }
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 40 {
        let mut cut = 40;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
