//! JSON InfoTable helpers for the EMS's HTTP sides (spec §6.4, §12.7, §12.10).
//!
//! The EMS writes InfoTables rows first with the key `datashape` (lower-case s),
//! as the real EMS does; readers (alwayson) accept both spellings and orders.

use alwayson::{BaseType, FieldDef, InfoTable, Limits, Primitive, TextKind};
use serde_json::{Map, Value};

/// `{"rows": [...], "datashape": {...}}`.
pub fn to_rest_json(table: &InfoTable) -> Value {
    let v = table.to_json();
    let mut out = Map::new();
    out.insert(
        "rows".into(),
        v.get("rows").cloned().unwrap_or(Value::Array(Vec::new())),
    );
    let shape = v
        .get("dataShape")
        .or_else(|| v.get("datashape"))
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    out.insert("datashape".into(), shape);
    Value::Object(out)
}

/// Does this JSON value look like an InfoTable (an object with `rows`)?
pub fn is_infotable(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.contains_key("rows"))
}

/// The parameters of a service call as one JSON object: the `_content_` JSON, or the
/// first row of a typed table, or `{}`.
pub fn params_object(params: Option<&InfoTable>) -> Value {
    let Some(t) = params else {
        return Value::Object(Map::new());
    };
    if let Some(v) = t.content_json() {
        return v;
    }
    t.to_json()
        .get("rows")
        .and_then(|r| r.get(0))
        .cloned()
        .unwrap_or(Value::Object(Map::new()))
}

/// The body the EMS sends to a script resource for the request parameters:
/// a typed table as it is; the `_content_` form of an object as a one-row table
/// (types inferred), other `_content_` JSON as is.
pub fn params_for_resource(params: &InfoTable, limits: &Limits) -> Value {
    match params.content_json() {
        Some(v @ Value::Object(_)) if !is_infotable(&v) => {
            let wrapped = serde_json::json!({ "rows": [v.clone()] });
            match InfoTable::from_json(&wrapped, limits) {
                Ok(t) => to_rest_json(&t),
                Err(_) => v,
            }
        }
        Some(v) => v,
        None => to_rest_json(params),
    }
}

/// A one-row table `{name: value}`.
pub fn one(name: &str, value: Primitive) -> InfoTable {
    InfoTable::single_row([(name, value)])
}

/// `{result: JSON}` for JSON that is not an InfoTable (GetMetadata, property maps).
pub fn json_result(v: &Value) -> InfoTable {
    one("result", Primitive::Text(TextKind::JSON, v.to_string()))
}

/// `{error: STRING}`: the error form of §12.6.
pub fn error_table(message: &str) -> InfoTable {
    let mut t = InfoTable::new(vec![FieldDef::new("error", BaseType::String)]);
    t.rows.push(vec![Primitive::String(message.to_owned())]);
    t
}

/// The text of an `{error: STRING}` table, or the first string cell, for HTTP error bodies.
pub fn error_text(t: &InfoTable) -> Option<String> {
    t.value("error")
        .or_else(|| t.rows.first().and_then(|r| r.first()))
        .and_then(Primitive::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_first_with_lowercase_datashape() {
        let t = one("isConnected", Primitive::Boolean(true));
        let text = to_rest_json(&t).to_string();
        assert!(
            text.starts_with(
                r#"{"rows":[{"isConnected":true}],"datashape":{"fieldDefinitions":{"isConnected":"#
            ),
            "{text}"
        );
    }

    #[test]
    fn params_from_content_and_typed() {
        let c = InfoTable::content(&serde_json::json!({"name": "LsrThing"}));
        assert_eq!(params_object(Some(&c))["name"], "LsrThing");
        let typed = one("name", Primitive::String("X".into()));
        assert_eq!(params_object(Some(&typed))["name"], "X");
        assert_eq!(params_object(None), serde_json::json!({}));
        let body = params_for_resource(&c, &Limits::default());
        assert_eq!(body["rows"][0]["name"], "LsrThing");
        assert!(body.get("datashape").is_some());
    }
}
