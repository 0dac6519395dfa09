//! ThingWorx base type names (spec/alwayson.md §3.1) as the LSR uses them: defaults for
//! uninitialised properties and checks on values written by the EMS.

use serde_json::{Value, json};

/// Base type names a property or service may use.
pub const BASE_TYPES: &[&str] = &[
    "NOTHING",
    "STRING",
    "NUMBER",
    "BOOLEAN",
    "DATETIME",
    "TIMESPAN",
    "INFOTABLE",
    "LOCATION",
    "XML",
    "JSON",
    "QUERY",
    "IMAGE",
    "HYPERLINK",
    "IMAGELINK",
    "PASSWORD",
    "HTML",
    "TEXT",
    "TAGS",
    "SCHEDULE",
    "VARIANT",
    "GUID",
    "BLOB",
    "INTEGER",
    "LONG",
    "PROPERTYNAME",
    "SERVICENAME",
    "EVENTNAME",
    "THINGNAME",
    "THINGSHAPENAME",
    "THINGTEMPLATENAME",
    "DATASHAPENAME",
    "MASHUPNAME",
    "MENUNAME",
    "BASETYPENAME",
    "USERNAME",
    "GROUPNAME",
    "CATEGORYNAME",
    "STATEDEFINITIONNAME",
    "STYLEDEFINITIONNAME",
    "MODELTAGVOCABULARYNAME",
    "DATATAGVOCABULARYNAME",
    "NETWORKNAME",
    "MEDIAENTITYNAME",
    "APPLICATIONKEYNAME",
    "LOCALIZATIONTABLENAME",
    "ORGANIZATIONNAME",
    "DASHBOARDNAME",
    "PERSISTENCEPROVIDERPACKAGENAME",
    "PERSISTENCEPROVIDERNAME",
    "PROJECTNAME",
    "NOTIFICATIONCONTENTNAME",
    "NOTIFICATIONDEFINITIONNAME",
    "THINGGROUPNAME",
];

/// The canonical (upper-case) name, or `None` when unknown.
pub fn canonical(name: &str) -> Option<&'static str> {
    let up = name.to_ascii_uppercase();
    BASE_TYPES.iter().copied().find(|b| *b == up)
}

fn is_numeric(bt: &str) -> bool {
    matches!(bt, "NUMBER" | "INTEGER" | "LONG" | "DATETIME" | "TIMESPAN")
}

/// The value a property starts with when the template gives none (ThingWorx LSR rules).
pub fn default_value(bt: &str) -> Value {
    match bt {
        "LOCATION" => json!({"latitude": 0, "longitude": 0, "elevation": 0}),
        "STRING" | "XML" | "TEXT" | "HTML" | "HYPERLINK" | "IMAGELINK" | "IMAGE" | "PASSWORD"
        | "GUID" => json!(""),
        "INFOTABLE" => json!({"dataShape": {"fieldDefinitions": {}}, "rows": []}),
        "JSON" | "QUERY" => json!({}),
        "BOOLEAN" => json!(false),
        bt if bt.ends_with("NAME") => json!(""),
        _ => json!(0),
    }
}

/// Reads a boolean the way ThingWorx's `toboolean` does.
pub fn to_boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Checks and converts a value written to a property of base type `bt`.
/// `None` means the value does not fit.
pub fn coerce(bt: &str, v: &Value) -> Option<Value> {
    if v.is_null() {
        return None;
    }
    match bt {
        "BOOLEAN" => to_boolean(v).map(Value::Bool),
        "INTEGER" | "LONG" => {
            let f = match v {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => s.trim().parse::<f64>().ok()?,
                _ => return None,
            };
            (f.is_finite() && f.fract() == 0.0).then(|| crate::json::number(f))
        }
        bt if is_numeric(bt) => match v {
            Value::Number(_) => Some(crate::json::normalize(v.clone())),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(crate::json::number),
            _ => None,
        },
        "LOCATION" => v.is_object().then(|| v.clone()),
        "INFOTABLE" => v.is_object().then(|| v.clone()),
        "JSON" | "QUERY" | "VARIANT" => Some(v.clone()),
        _ => match v {
            Value::String(_) => Some(v.clone()),
            Value::Number(_) | Value::Bool(_) => Some(Value::String(v.to_string())),
            _ => None,
        },
    }
}

/// Base type guessed from a value a script returned without a service definition.
pub fn infer(v: &Value) -> &'static str {
    match v {
        Value::Null => "NOTHING",
        Value::Bool(_) => "BOOLEAN",
        Value::Number(_) => "NUMBER",
        Value::String(_) => "STRING",
        Value::Object(o) if o.contains_key("rows") => "INFOTABLE",
        Value::Object(o) if o.contains_key("latitude") && o.contains_key("longitude") => "LOCATION",
        _ => "JSON",
    }
}

/// True when `new` differs from `old` by more than `threshold` (numbers) or at all (others).
pub fn changed_beyond(bt: &str, old: &Value, new: &Value, threshold: f64) -> bool {
    if is_numeric(bt) {
        if let (Some(a), Some(b)) = (old.as_f64(), new.as_f64()) {
            let d = (a - b).abs();
            return if threshold > 0.0 {
                d > threshold
            } else {
                d > 0.0
            };
        }
    }
    old != new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion() {
        assert_eq!(coerce("NUMBER", &json!(42.25)), Some(json!(42.25)));
        assert_eq!(coerce("NUMBER", &json!("7")), Some(json!(7)));
        assert_eq!(coerce("NUMBER", &json!({"a": 1})), None);
        assert_eq!(coerce("INTEGER", &json!(2.5)), None);
        assert_eq!(coerce("BOOLEAN", &json!("true")), Some(json!(true)));
        assert_eq!(coerce("STRING", &json!(5)), Some(json!("5")));
        assert_eq!(coerce("STRING", &json!(null)), None);
    }

    #[test]
    fn threshold() {
        assert!(!changed_beyond("NUMBER", &json!(10), &json!(12), 5.0));
        assert!(changed_beyond("NUMBER", &json!(10), &json!(16), 5.0));
        assert!(changed_beyond("NUMBER", &json!(10), &json!(10.5), 0.0));
        assert!(!changed_beyond("STRING", &json!("a"), &json!("a"), 0.0));
    }

    #[test]
    fn names() {
        assert_eq!(canonical("number"), Some("NUMBER"));
        assert_eq!(canonical("FLOAT"), None);
    }
}
