//! JSON shapes spoken with the EMS, byte-compatible with the ThingWorx LSR
//! (spec/captures/run2-http-ems-lsr.txt), and Lua <-> JSON conversion.
//!
//! Key order matters to nobody who parses correctly, but it is kept as captured
//! (`serde_json` is built with `preserve_order` in this workspace).

use serde_json::{Map, Value, json};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A number as the ThingWorx LSR writes it: whole values without a fraction (`22`, not `22.0`).
pub fn number(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// Rewrites whole floats as integers everywhere in `v`.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => match (n.is_f64(), n.as_f64()) {
            (true, Some(f)) => number(f),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

/// A field definition as the LSR writes it in replies: `aspects`, `baseType`, `name`, `description`.
fn reply_field(name: &str, base_type: &str, aspects: Value) -> Value {
    json!({"aspects": aspects, "baseType": base_type, "name": name, "description": ""})
}

/// Reply to a property read: `time` first, then the property (§12.4).
pub fn property_reply(name: &str, base_type: &str, value: &Value, time: i64) -> Value {
    let mut row = Map::new();
    row.insert("time".into(), Value::from(time));
    row.insert(name.into(), value.clone());
    let mut fields = Map::new();
    fields.insert("time".into(), reply_field("time", "DATETIME", json!([])));
    fields.insert(name.into(), reply_field(name, base_type, json!([])));
    json!({"rows": [Value::Object(row)], "dataShape": {"fieldDefinitions": Value::Object(fields)}})
}

/// Reply to a service call: field `result` with aspect `persist = false` (§12.5).
pub fn service_reply(base_type: &str, value: &Value) -> Value {
    json!({
        "rows": [{"result": value}],
        "dataShape": {"fieldDefinitions": {
            "result": reply_field("result", base_type, json!({"persist": false}))
        }}
    })
}

/// One property value pushed to the EMS.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedValue {
    /// Property name.
    pub name: String,
    /// Base type name.
    pub base_type: String,
    /// The value.
    pub value: Value,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// `GOOD`, `BAD`, `UNKNOWN`.
    pub quality: String,
}

/// Body of `UpdateSubscribedPropertyValues` exactly as the ThingWorx LSR sends it.
pub fn push_body(values: &[PushedValue]) -> Value {
    let rows: Vec<Value> = values
        .iter()
        .map(|p| {
            json!({
                "value": {"baseType": p.base_type, "value": p.value},
                "name": p.name,
                "time": p.time,
                "quality": p.quality,
            })
        })
        .collect();
    let field = |name: &str, bt: &str| json!({"aspects": [], "name": name, "baseType": bt});
    json!({
        "dataShape": {"fieldDefinitions": {"values": field("values", "INFOTABLE")}},
        "rows": [{"values": {
            "dataShape": {"fieldDefinitions": {
                "value": field("value", "VARIANT"),
                "time": field("time", "DATETIME"),
                "name": field("name", "STRING"),
                "quality": field("quality", "STRING"),
            }},
            "rows": rows,
        }}]
    })
}

/// The first row of a JSON InfoTable (`rows[1]` in ThingWorx's Lua), or the object itself
/// when it has no `rows`. `None` when the body is not a JSON object.
pub fn first_row(body: &Value) -> Option<Map<String, Value>> {
    let obj = body.as_object()?;
    match obj.get("rows") {
        Some(Value::Array(rows)) => match rows.first() {
            Some(Value::Object(r)) => Some(r.clone()),
            _ => Some(Map::new()),
        },
        _ => Some(obj.clone()),
    }
}

/// Converts a JSON value to Lua (null becomes nil, arrays become sequences).
pub fn to_lua(lua: &mlua::Lua, v: &Value) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => mlua::Value::Integer(i),
            None => mlua::Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, item) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
        Value::Object(o) => {
            let t = lua.create_table_with_capacity(0, o.len())?;
            for (k, item) in o {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
    })
}

/// Maximum nesting accepted when converting Lua tables to JSON (cycles end here too).
const MAX_DEPTH: usize = 64;

/// Converts a Lua value to JSON. Functions and userdata become null; a table whose keys
/// are exactly 1..n becomes an array; an empty table becomes `{}`.
pub fn from_lua(v: &mlua::Value) -> mlua::Result<Value> {
    from_lua_depth(v, 0)
}

fn from_lua_depth(v: &mlua::Value, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(
            "table nested too deeply (or cyclic) to convert to JSON",
        ));
    }
    Ok(match v {
        mlua::Value::Nil => Value::Null,
        mlua::Value::Boolean(b) => Value::Bool(*b),
        mlua::Value::Integer(i) => Value::from(*i),
        mlua::Value::Number(n) => number(*n),
        mlua::Value::String(s) => Value::String(s.to_string_lossy()),
        mlua::Value::Table(t) => {
            let len = t.raw_len();
            let mut count = 0usize;
            let mut all_int = true;
            for pair in t.clone().pairs::<mlua::Value, mlua::Value>() {
                let (k, _) = pair?;
                count += 1;
                if !matches!(k, mlua::Value::Integer(_)) {
                    all_int = false;
                }
            }
            if count > 0 && all_int && count == len {
                let mut a = Vec::with_capacity(len);
                for i in 1..=len {
                    let item: mlua::Value = t.raw_get(i)?;
                    a.push(from_lua_depth(&item, depth + 1)?);
                }
                Value::Array(a)
            } else {
                let mut o = Map::new();
                for pair in t.clone().pairs::<mlua::Value, mlua::Value>() {
                    let (k, item) = pair?;
                    let key = match &k {
                        mlua::Value::String(s) => s.to_string_lossy(),
                        mlua::Value::Integer(i) => i.to_string(),
                        mlua::Value::Number(n) => number(*n).to_string(),
                        mlua::Value::Boolean(b) => b.to_string(),
                        _ => continue,
                    };
                    if matches!(item, mlua::Value::Function(_)) {
                        continue;
                    }
                    o.insert(key, from_lua_depth(&item, depth + 1)?);
                }
                Value::Object(o)
            }
        }
        _ => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_floats_print_as_integers() {
        assert_eq!(number(22.0).to_string(), "22");
        assert_eq!(number(22.5).to_string(), "22.5");
        assert_eq!(
            normalize(json!({"a": [1.0, 2.25]})).to_string(),
            r#"{"a":[1,2.25]}"#
        );
    }

    #[test]
    fn push_body_matches_capture() {
        // spec/captures/run2-http-ems-lsr.txt, TCP stream 4
        let captured = r#"{"dataShape":{"fieldDefinitions":{"values":{"aspects":[],"name":"values","baseType":"INFOTABLE"}}},"rows":[{"values":{"dataShape":{"fieldDefinitions":{"value":{"aspects":[],"name":"value","baseType":"VARIANT"},"time":{"aspects":[],"name":"time","baseType":"DATETIME"},"name":{"aspects":[],"name":"name","baseType":"STRING"},"quality":{"aspects":[],"name":"quality","baseType":"STRING"}}},"rows":[{"value":{"baseType":"NUMBER","value":22},"name":"Temperature","time":1795240634000,"quality":"GOOD"}]}}]}"#;
        let body = push_body(&[PushedValue {
            name: "Temperature".into(),
            base_type: "NUMBER".into(),
            value: number(22.0),
            time: 1_795_240_634_000,
            quality: "GOOD".into(),
        }]);
        assert_eq!(body.to_string(), captured);
    }

    #[test]
    fn property_and_service_replies_match_capture() {
        // TCP streams 8 and 10
        let prop = r#"{"rows":[{"time":1795240634000,"Temperature":24}],"dataShape":{"fieldDefinitions":{"time":{"aspects":[],"baseType":"DATETIME","name":"time","description":""},"Temperature":{"aspects":[],"baseType":"NUMBER","name":"Temperature","description":""}}}}"#;
        assert_eq!(
            property_reply("Temperature", "NUMBER", &number(24.0), 1_795_240_634_000).to_string(),
            prop
        );
        let svc = r#"{"rows":[{"result":5.5}],"dataShape":{"fieldDefinitions":{"result":{"aspects":{"persist":false},"baseType":"NUMBER","name":"result","description":""}}}}"#;
        assert_eq!(service_reply("NUMBER", &number(5.5)).to_string(), svc);
    }

    #[test]
    fn first_row_takes_rows_1() {
        let body = json!({"rows":[{"p1":2,"p2":3.5}],"datashape":{}});
        assert_eq!(first_row(&body).unwrap()["p2"], json!(3.5));
        assert_eq!(first_row(&json!({"a":1})).unwrap()["a"], json!(1));
        assert!(first_row(&json!(3)).is_none());
    }
}
