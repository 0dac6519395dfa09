//! The JSON InfoTable form of the EMS/LSR REST (§6.4, §12.10), both directions.
//!
//! `{"dataShape":{"fieldDefinitions":{"<f>":{"name","description","baseType","aspects"}}},
//! "rows":[{"<f>":value}]}`. Readers accept `dataShape` or `datashape`, rows before or after,
//! aspects as an object or an (empty) array, and rows without a DataShape (types inferred).
//! Cells map by declared type: VARIANT `{baseType, value}`, LOCATION `{latitude, longitude,
//! elevation}`, IMAGE/BLOB base64, DATETIME milliseconds, JSON/QUERY as parsed JSON.

use serde_json::{Map, Value, json};

use crate::basetype::BaseType;
use crate::error::DecodeError;
use crate::infotable::{DataShape, FieldDef, InfoTable};
use crate::limits::Limits;
use crate::primitive::Primitive;

pub(crate) fn bad(msg: impl Into<String>) -> DecodeError {
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

pub(crate) fn read_table(
    v: &Value,
    limits: &Limits,
    depth: usize,
) -> Result<InfoTable, DecodeError> {
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
                Some(v) => Primitive::from_json_at(f.base_type, v, limits, depth)?,
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

pub(crate) fn infer(v: &Value, limits: &Limits, depth: usize) -> Result<Primitive, DecodeError> {
    Primitive::from_json_at(infer_type(v), v, limits, depth)
}

pub(crate) fn check_len(len: usize, limits: &Limits) -> Result<(), DecodeError> {
    if len > limits.max_string {
        return Err(DecodeError::TooLarge {
            what: "string",
            len,
            max: limits.max_string,
        });
    }
    Ok(())
}
