//! The JSON InfoTable form of the EMS/LSR REST (§6.4, §12.10), both directions.
//!
//! `{"dataShape":{"fieldDefinitions":{"<f>":{"name","description","baseType","aspects"}}},
//! "rows":[{"<f>":value}]}`. Readers accept `dataShape` or `datashape`, rows before or after,
//! aspects as an object or an (empty) array, and rows without a DataShape (types inferred).
//! Cells map by declared type: VARIANT `{baseType, value}`, LOCATION `{latitude, longitude,
//! elevation}`, IMAGE/BLOB base64, DATETIME milliseconds, JSON/QUERY as parsed JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::basetype::{BaseType, TextKind};
use crate::error::DecodeError;
use crate::infotable::{DataShape, FieldDef, InfoTable};
use crate::limits::Limits;
use crate::primitive::{Location, Primitive, check_depth};

fn bad(msg: impl Into<String>) -> DecodeError {
    DecodeError::Json(msg.into())
}

impl InfoTable {
    /// Parses JSON text into an InfoTable.
    pub fn from_json_slice(input: &[u8], limits: &Limits) -> Result<InfoTable, DecodeError> {
        if input.len() > limits.max_message_size {
            let max = limits.max_message_size;
            return Err(DecodeError::TooLarge {
                what: "JSON InfoTable",
                len: input.len(),
                max,
            });
        }
        let v: Value = serde_json::from_slice(input).map_err(|e| bad(e.to_string()))?;
        Self::from_json(&v, limits)
    }

    /// Converts a parsed JSON InfoTable.
    pub fn from_json(v: &Value, limits: &Limits) -> Result<InfoTable, DecodeError> {
        read_table(v, limits, 0)
    }

    /// The JSON form (`dataShape` first, then `rows`; NOTHING cells are left out).
    pub fn to_json(&self) -> Value {
        let mut defs = Map::new();
        for f in &self.shape.fields {
            let aspects: Map<String, Value> = f
                .aspects
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect();
            let def = json!({
                "name": f.name,
                "description": f.description,
                "baseType": f.base_type.name(),
                "aspects": aspects,
            });
            defs.insert(f.name.clone(), def);
        }
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut o = Map::new();
                for (f, cell) in self.shape.fields.iter().zip(row) {
                    if !matches!(cell, Primitive::Nothing) {
                        o.insert(f.name.clone(), cell.to_json());
                    }
                }
                Value::Object(o)
            })
            .collect();
        json!({ "dataShape": { "fieldDefinitions": defs }, "rows": rows })
    }
}

fn read_table(v: &Value, limits: &Limits, depth: usize) -> Result<InfoTable, DecodeError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("InfoTable is not an object"))?;
    let rows_v = match obj.get("rows") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(bad("rows is not an array")),
    };
    if rows_v.len() > limits.max_rows {
        return Err(DecodeError::TooLarge {
            what: "rows",
            len: rows_v.len(),
            max: limits.max_rows,
        });
    }
    let shape = match obj.get("dataShape").or_else(|| obj.get("datashape")) {
        Some(s) => read_shape(s, limits, depth)?,
        None => infer_shape(rows_v.first(), limits)?,
    };
    let mut rows = Vec::with_capacity(rows_v.len());
    for row in rows_v {
        let row = row.as_object().ok_or_else(|| bad("row is not an object"))?;
        let mut cells = Vec::with_capacity(shape.fields.len());
        for f in &shape.fields {
            cells.push(match row.get(&f.name) {
                Some(v) => Primitive::from_json(f.base_type, v, limits, depth)?,
                None => Primitive::Nothing,
            });
        }
        rows.push(cells);
    }
    Ok(InfoTable { shape, rows })
}

fn read_shape(v: &Value, limits: &Limits, depth: usize) -> Result<DataShape, DecodeError> {
    let defs = match v.get("fieldDefinitions") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => return Ok(DataShape::default()),
        Some(_) => return Err(bad("fieldDefinitions is not an object")),
    };
    if defs.len() > limits.max_fields {
        return Err(DecodeError::TooLarge {
            what: "fields",
            len: defs.len(),
            max: limits.max_fields,
        });
    }
    let mut fields = Vec::with_capacity(defs.len());
    for (key, def) in defs {
        let name = def.get("name").and_then(Value::as_str).unwrap_or(key);
        let description = def.get("description").and_then(Value::as_str).unwrap_or("");
        let base_type = match def.get("baseType").and_then(Value::as_str) {
            Some(t) => BaseType::from_name(t)?,
            None => BaseType::String,
        };
        let mut aspects = Vec::new();
        if let Some(Value::Object(a)) = def.get("aspects") {
            if a.len() > limits.max_fields {
                return Err(DecodeError::TooLarge {
                    what: "aspects",
                    len: a.len(),
                    max: limits.max_fields,
                });
            }
            for (k, v) in a {
                check_len(k.len(), limits)?;
                aspects.push((k.clone(), infer(v, limits, depth)?));
            }
        }
        check_len(name.len().max(description.len()), limits)?;
        fields.push(FieldDef {
            name: name.to_owned(),
            description: description.to_owned(),
            base_type,
            aspects,
        });
    }
    Ok(DataShape { fields })
}

fn infer_shape(first: Option<&Value>, limits: &Limits) -> Result<DataShape, DecodeError> {
    let Some(Value::Object(row)) = first else {
        return Ok(DataShape::default());
    };
    if row.len() > limits.max_fields {
        return Err(DecodeError::TooLarge {
            what: "fields",
            len: row.len(),
            max: limits.max_fields,
        });
    }
    let mut fields = Vec::with_capacity(row.len());
    for (k, v) in row {
        check_len(k.len(), limits)?;
        fields.push(FieldDef::new(k.clone(), infer_type(v)));
    }
    Ok(DataShape { fields })
}

fn infer_type(v: &Value) -> BaseType {
    match v {
        Value::Bool(_) => BaseType::Boolean,
        Value::Number(_) => BaseType::Number,
        Value::String(_) | Value::Null => BaseType::String,
        Value::Object(o) if o.contains_key("rows") => BaseType::InfoTable,
        _ => BaseType::Json,
    }
}

fn infer(v: &Value, limits: &Limits, depth: usize) -> Result<Primitive, DecodeError> {
    Primitive::from_json(infer_type(v), v, limits, depth)
}

fn check_len(len: usize, limits: &Limits) -> Result<(), DecodeError> {
    if len > limits.max_string {
        return Err(DecodeError::TooLarge {
            what: "string",
            len,
            max: limits.max_string,
        });
    }
    Ok(())
}

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
    pub fn from_json(
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
                        Primitive::from_json(BaseType::from_name(t)?, val, limits, depth + 1)?
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
