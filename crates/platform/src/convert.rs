//! JSON ⇄ InfoTable helpers shared by the REST layer and the edge
//! dispatcher: a REST body is either a JSON InfoTable (`dataShape` +
//! `rows`) or a plain object of name → value whose types are inferred.

use alwayson::{BaseType, DecodeError, InfoTable, Limits, Primitive, TextKind};
use serde_json::Value;

/// The primitive for a plain JSON value: number → NUMBER (INTEGER when it is
/// a whole number that fits and `prefer` says so), bool → BOOLEAN,
/// string → STRING, object/array → JSON, null → NOTHING. `prefer` (a known
/// property type) wins when the value converts to it.
pub fn infer_primitive(v: &Value, prefer: Option<BaseType>, limits: &Limits) -> Primitive {
    if let Some(base) = prefer {
        if let Ok(p) = Primitive::from_json(base, v, limits) {
            return p;
        }
    }
    match v {
        Value::Null => Primitive::Nothing,
        Value::Bool(b) => Primitive::Boolean(*b),
        Value::Number(n) => Primitive::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Primitive::String(s.clone()),
        other => Primitive::Text(TextKind::JSON, other.to_string()),
    }
}

/// Whether `v` looks like a JSON InfoTable.
pub fn is_infotable_json(v: &Value) -> bool {
    v.get("rows").is_some() && (v.get("dataShape").is_some() || v.get("datashape").is_some())
}

/// Parameters from a REST body: a JSON InfoTable, or a plain object
/// (`{"a": 1, "b": "x"}`) as a one-row table. `None` for an empty body.
pub fn params_from_json(v: &Value, limits: &Limits) -> Result<Option<InfoTable>, DecodeError> {
    if is_infotable_json(v) {
        return InfoTable::from_json(v, limits).map(Some);
    }
    match v {
        Value::Null => Ok(None),
        Value::Object(map) if map.is_empty() => Ok(None),
        Value::Object(map) => {
            Ok(Some(InfoTable::single_row(map.iter().map(|(k, v)| {
                (k.clone(), infer_primitive(v, None, limits))
            }))))
        }
        _ => Err(DecodeError::Json(
            "expected a JSON object or an InfoTable".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_objects_become_one_row() {
        let l = Limits::default();
        let t = params_from_json(&json!({"a": 1.5, "b": "x", "c": true}), &l)
            .unwrap()
            .unwrap();
        assert_eq!(t.value("a"), Some(&Primitive::Number(1.5)));
        assert_eq!(t.value("b"), Some(&Primitive::String("x".into())));
        assert_eq!(t.value("c"), Some(&Primitive::Boolean(true)));
        assert!(params_from_json(&json!({}), &l).unwrap().is_none());
        assert!(params_from_json(&json!([1]), &l).is_err());
    }

    #[test]
    fn preferred_type_wins() {
        let l = Limits::default();
        assert_eq!(
            infer_primitive(&json!(3), Some(BaseType::Integer), &l),
            Primitive::Integer(3)
        );
        assert_eq!(
            infer_primitive(&json!("x"), Some(BaseType::Integer), &l),
            Primitive::String("x".into())
        );
    }
}
