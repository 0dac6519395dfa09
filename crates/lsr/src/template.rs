//! Loading a thing's template: run the file in the sandbox, then read and normalise its
//! `properties` (defaults written back into Lua) and `serviceDefinitions`.

use mlua::{Function, Lua, Table, Value};
use serde_json::{Map, Value as Json};

use crate::basetype;
use crate::config::{PushType, ThingConfig};
use crate::error::{ConfigError, Error};
use crate::json::{from_lua, now_ms, to_lua};
use crate::model::{Field, Model, Property, ServiceDef};
use crate::sandbox::{self, Budget};

pub(crate) type Loaded = (Lua, Budget, Table, Model, Vec<ServiceDef>, Vec<String>);

fn template_error(tc: &ThingConfig, reason: String) -> Error {
    Error::Config(ConfigError::invalid(
        format!("scripts.{}.template", tc.name),
        reason,
    ))
}

pub(crate) fn load(
    limits: &crate::config::SandboxLimits,
    p_data: &Map<String, Json>,
    dirs: &[std::path::PathBuf],
    tc: &ThingConfig,
    events: Option<sandbox::EventSink>,
) -> Result<Loaded, Error> {
    let path = dirs
        .iter()
        .map(|d| d.join(format!("{}.lua", tc.template)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            template_error(
                tc,
                format!(
                    "{}.lua not found in {}",
                    tc.template,
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    let (lua, budget) =
        sandbox::new_state(limits, p_data, dirs, &tc.name, events).map_err(|e| Error::Thing {
            thing: tc.name.clone(),
            reason: sandbox::describe(&e),
        })?;
    budget.start(&lua);
    let me = (|| -> mlua::Result<Table> {
        let v = sandbox::run_file(&lua, &path)?;
        let Value::Table(me) = v else {
            return Err(mlua::Error::runtime("template did not produce a table"));
        };
        let extend: Function = lua.globals().get("__tether_extend")?;
        extend.call::<()>(me.clone())?;
        Ok(me)
    })()
    .map_err(|e| template_error(tc, format!("{}: {}", path.display(), sandbox::describe(&e))))?;
    let (model, names) = read_properties(&lua, &me, tc)
        .map_err(|e| template_error(tc, format!("{}: {e}", path.display())))?;
    let services =
        read_services(&me).map_err(|e| template_error(tc, format!("{}: {e}", path.display())))?;
    tracing::info!(
        thing = %tc.name,
        template = %path.display(),
        properties = names.len(),
        services = services.len(),
        "template loaded"
    );
    Ok((lua, budget, me, model, services, names))
}

pub(crate) fn get_str(t: &Table, k: &str) -> Option<String> {
    match t.raw_get::<Value>(k).ok()? {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(crate::json::number(n).to_string()),
        _ => None,
    }
}

pub(crate) fn get_num(t: &Table, k: &str) -> Option<f64> {
    match t.raw_get::<Value>(k).ok()? {
        Value::Integer(i) => Some(i as f64),
        Value::Number(n) => Some(n),
        Value::String(s) => s.to_string_lossy().trim().parse().ok(),
        _ => None,
    }
}

/// Reads and normalises `properties`, writing the defaults back into the Lua tables.
fn read_properties(
    lua: &Lua,
    me: &Table,
    tc: &ThingConfig,
) -> Result<(Model, Vec<String>), String> {
    let props: Table = me
        .get("properties")
        .map_err(|e| format!("properties: {}", sandbox::describe(&e)))?;
    let now = now_ms();
    let mut list = Vec::new();
    for pair in props.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| sandbox::describe(&e))?;
        let Value::String(k) = k else { continue };
        let name = k.to_string_lossy();
        let Value::Table(pt) = v else {
            return Err(format!("property {name}: must be a table"));
        };
        list.push((name, pt));
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut model = Model {
        up_to_date: true,
        ..Model::default()
    };
    let mut names = Vec::new();
    for (name, pt) in list {
        let bt_raw = get_str(&pt, "baseType")
            .or_else(|| get_str(&pt, "basetype"))
            .ok_or_else(|| format!("property {name}: baseType is required"))?;
        let base_type = basetype::canonical(&bt_raw)
            .ok_or_else(|| format!("property {name}: unknown baseType {bt_raw:?}"))?;
        let push_raw = get_str(&pt, "pushType").or_else(|| get_str(&pt, "dataChangeType"));
        let template_push = match push_raw {
            None => tc.default_push_type,
            Some(s) => PushType::parse(&s)
                .ok_or_else(|| format!("property {name}: unknown pushType {s:?}"))?,
        };
        let template_threshold = get_num(&pt, "pushThreshold")
            .or_else(|| get_num(&pt, "threshold"))
            .unwrap_or(0.0);
        let scan_rate = get_num(&pt, "scanRate")
            .filter(|r| *r > 0.0)
            .map_or(tc.scan_rate, |r| r as u64);
        let raw_value: Value = pt.raw_get("value").map_err(|e| sandbox::describe(&e))?;
        let value = if raw_value.is_nil() {
            basetype::default_value(base_type)
        } else {
            from_lua(&raw_value).map_err(|e| sandbox::describe(&e))?
        };
        let time = get_num(&pt, "time").map_or(now, |t| t as i64);
        let quality = get_str(&pt, "quality").unwrap_or_else(|| "GOOD".into());
        let data_change_type = get_str(&pt, "dataChangeType").unwrap_or_else(|| "VALUE".into());
        let data_change_threshold = get_num(&pt, "dataChangeThreshold").unwrap_or(0.0);
        let cache_time = get_num(&pt, "cacheTime").map_or(
            if template_push == PushType::Never {
                -1
            } else {
                0
            },
            |c| c as i64,
        );
        if let Some(h) = get_str(&pt, "handler").filter(|h| h != "inmemory") {
            tracing::warn!(
                thing = %tc.name,
                property = %name,
                handler = %h,
                "property handler not supported: the value is kept in memory"
            );
        }
        let private = matches!(pt.raw_get::<Value>("private"), Ok(Value::Boolean(true)));
        let description = get_str(&pt, "description").unwrap_or_default();
        let fill = || -> mlua::Result<()> {
            pt.raw_set("name", name.as_str())?;
            pt.raw_set("baseType", base_type)?;
            pt.raw_set("basetype", base_type)?;
            pt.raw_set("pushType", template_push.name())?;
            pt.raw_set("pushThreshold", template_threshold)?;
            pt.raw_set("scanRate", scan_rate)?;
            pt.raw_set("time", time)?;
            pt.raw_set("quality", quality.as_str())?;
            if raw_value.is_nil() {
                pt.raw_set("value", to_lua(lua, &value)?)?;
            }
            Ok(())
        };
        fill().map_err(|e| sandbox::describe(&e))?;
        let init = serde_json::json!({
            "name": name, "baseType": base_type, "value": value, "time": time,
            "quality": quality, "pushType": template_push.name(),
            "pushThreshold": crate::json::number(template_threshold), "scanRate": scan_rate,
        });
        names.push(name.clone());
        model.props.push(Property {
            name,
            base_type,
            description,
            template_push,
            template_threshold,
            subscription: None,
            scan_rate,
            private,
            data_change_type,
            data_change_threshold,
            cache_time,
            value,
            time,
            quality,
            init,
            prev: None,
            update_time: now,
            last_pushed: None,
            pending_set: false,
            force_push: false,
            next_scan: now,
        });
    }
    Ok((model, names))
}

fn field(t: &Table, default_name: &str) -> Result<Field, String> {
    let name = get_str(t, "name").unwrap_or_else(|| default_name.to_string());
    let bt_raw = get_str(t, "baseType").unwrap_or_else(|| "NOTHING".into());
    let base_type = basetype::canonical(&bt_raw)
        .ok_or_else(|| format!("field {name}: unknown baseType {bt_raw:?}"))?;
    let aspects = match t.raw_get::<Value>("aspects") {
        Ok(v @ Value::Table(_)) => from_lua(&v).map_err(|e| sandbox::describe(&e))?,
        _ => Json::Object(Map::new()),
    };
    Ok(Field {
        name,
        base_type: base_type.to_string(),
        description: get_str(t, "description").unwrap_or_default(),
        aspects,
    })
}

/// Reads `serviceDefinitions` (both the `S(input{}, output{})` form and plain tables).
pub(crate) fn read_services(me: &Table) -> Result<Vec<ServiceDef>, String> {
    let defs: Table = me
        .get("serviceDefinitions")
        .map_err(|e| format!("serviceDefinitions: {}", sandbox::describe(&e)))?;
    let mut out = Vec::new();
    for pair in defs.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| sandbox::describe(&e))?;
        let (Value::String(k), Value::Table(d)) = (k, v) else {
            continue;
        };
        let name = k.to_string_lossy();
        let mut inputs = Vec::new();
        for key in ["inputs", "input"] {
            if let Ok(Value::Table(list)) = d.raw_get::<Value>(key) {
                for item in list.sequence_values::<Table>() {
                    let item = item.map_err(|e| format!("service {name}: {e}"))?;
                    inputs.push(field(&item, "").map_err(|e| format!("service {name}: {e}"))?);
                }
            }
        }
        let output = match d.raw_get::<Value>("output") {
            Ok(Value::Table(o)) => {
                Some(field(&o, "result").map_err(|e| format!("service {name}: {e}"))?)
            }
            _ => None,
        };
        out.push(ServiceDef {
            name,
            inputs,
            output,
            description: get_str(&d, "description").unwrap_or_default(),
            private: matches!(d.raw_get::<Value>("private"), Ok(Value::Boolean(true))),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
