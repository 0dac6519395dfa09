//! A thing's Lua thread: runs jobs one at a time (service calls, writes, tasks), each
//! under a fresh budget, then copies the property values into the shared model.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, MultiValue, Table, Value};
use serde_json::{Map, Value as Json};

use crate::basetype;
use crate::json::{from_lua, now_ms, to_lua};
use crate::model::{Model, ServiceDef};
use crate::sandbox::{self, Budget};
use crate::template::{get_num, get_str, read_services};
use crate::thing::{Job, Reply};

/// What a thing's Lua thread owns.
pub(crate) struct LuaThing {
    pub lua: Lua,
    pub budget: Budget,
    /// The template table (`me`).
    pub me: Table,
    pub model: Arc<Mutex<Model>>,
    /// Property names, in model order.
    pub names: Vec<String>,
    pub memory_limit: usize,
}

/// The Lua thread: runs jobs one by one until every sender is gone.
pub(crate) fn worker(t: LuaThing, rx: Receiver<Job>, thing: &str) {
    let LuaThing {
        lua,
        budget,
        me,
        model,
        names,
        memory_limit,
    } = t;
    let defs: Vec<ServiceDef> = read_services(&me).unwrap_or_default();
    while let Ok(job) = rx.recv() {
        budget.start(&lua);
        // A panic in host code must not end the thing: the job's reply is dropped
        // (the caller answers 500) and the next job runs.
        let run = std::panic::AssertUnwindSafe(|| {
            run_job(&lua, &budget, &me, &model, &names, &defs, job, thing)
        });
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!(thing, "a job panicked; the thing goes on");
        }
        // A full collection only when memory runs high (e.g. after a memory-limit error).
        if lua.used_memory() > memory_limit / 2 {
            let _ = lua.gc_collect();
        }
    }
    tracing::debug!(thing, "Lua thread stopped");
}

#[allow(clippy::too_many_arguments)]
fn run_job(
    lua: &Lua,
    budget: &Budget,
    me: &Table,
    model: &Mutex<Model>,
    names: &[String],
    defs: &[ServiceDef],
    job: Job,
    thing: &str,
) {
    {
        match job {
            Job::Service {
                name,
                headers,
                query,
                data,
                reply,
            } => {
                let out_bt = defs
                    .iter()
                    .find(|d| d.name == name)
                    .and_then(|d| d.output.as_ref())
                    .map(|o| o.base_type.clone());
                let r = call_service(lua, me, &name, &headers, &query, &data, out_bt);
                if let Reply::Text(500, msg) = &r {
                    tracing::warn!(thing, service = %name, error = %msg, "service failed");
                }
                budget.start(lua);
                sync(lua, me, model, names);
                let _ = reply.send(r);
            }
            Job::Write { values, reply } => {
                let r = write(lua, me, &values);
                budget.start(lua);
                sync(lua, me, model, names);
                let _ = reply.send(r);
            }
            Job::Tasks { reply } => {
                run_tasks(lua, budget, me, thing);
                budget.start(lua);
                sync(lua, me, model, names);
                let _ = reply.send(());
            }
        }
    }
}

fn pairs_table(lua: &Lua, pairs: &[(String, String)]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, v) in pairs {
        t.raw_set(k.as_str(), v.as_str())?;
    }
    Ok(t)
}

fn call_service(
    lua: &Lua,
    me: &Table,
    name: &str,
    headers: &[(String, String)],
    query: &[(String, String)],
    data: &Map<String, Json>,
    out_bt: Option<String>,
) -> Reply {
    let run = || -> mlua::Result<Option<MultiValue>> {
        let services: Table = me.get("services")?;
        let Value::Function(f) = services.get::<Value>(name)? else {
            return Ok(None);
        };
        let h = pairs_table(lua, headers)?;
        let q = pairs_table(lua, query)?;
        let d = to_lua(lua, &Json::Object(data.clone()))?;
        Ok(Some(f.call::<MultiValue>((me.clone(), h, q, d))?))
    };
    let values = match run() {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Text(404, format!("Service '{name}' not found")),
        Err(e) => {
            return Reply::Text(
                500,
                format!("Error in service '{name}': {}", sandbox::describe(&e)),
            );
        }
    };
    let mut vals: Vec<Value> = values.into_iter().collect();
    let status = match vals.first() {
        Some(Value::Integer(i)) if (100..=599).contains(i) => {
            let s = *i as u16;
            vals.remove(0);
            s
        }
        Some(Value::Number(n)) if (100.0..=599.0).contains(n) && n.fract() == 0.0 => {
            let s = *n as u16;
            vals.remove(0);
            s
        }
        _ => 200,
    };
    let body = vals.into_iter().next().unwrap_or(Value::Nil);
    let result = match from_lua(&body) {
        Ok(j) => j,
        Err(e) => {
            return Reply::Text(
                500,
                format!("Error in service '{name}': {}", sandbox::describe(&e)),
            );
        }
    };
    if !(200..300).contains(&status) {
        let msg = match result {
            Json::String(s) => s,
            Json::Null => String::new(),
            other => other.to_string(),
        };
        return Reply::Text(status, msg);
    }
    service_result(out_bt, result)
}

/// Wraps a service's return value as the ThingWorx LSR does.
fn service_result(out_bt: Option<String>, result: Json) -> Reply {
    let bt = out_bt.unwrap_or_else(|| basetype::infer(&result).to_string());
    if bt == "NOTHING" || result.is_null() {
        return Reply::Empty;
    }
    if bt == "INFOTABLE" {
        if let Json::Object(o) = &result {
            if o.contains_key("rows") {
                return Reply::Json(result);
            }
        }
    }
    let value = match (&*bt, &result) {
        ("JSON", Json::String(s)) => serde_json::from_str(s).unwrap_or(result),
        _ => basetype::coerce(&bt, &result).unwrap_or(result),
    };
    Reply::Json(crate::json::service_reply(&bt, &value))
}

fn write(lua: &Lua, me: &Table, values: &[(String, Json)]) -> Reply {
    let run = || -> mlua::Result<Option<String>> {
        let props: Table = me.get("properties")?;
        let dirty: Table = lua.globals().get("__tether_dirty")?;
        let now = now_ms();
        for (name, v) in values {
            let Value::Table(pt) = props.get::<Value>(name.as_str())? else {
                return Ok(Some(name.clone()));
            };
            pt.set("value", to_lua(lua, v)?)?;
            pt.set("time", now)?;
            dirty.set(name.as_str(), true)?;
        }
        Ok(None)
    };
    match run() {
        Ok(None) => Reply::Empty,
        Ok(Some(missing)) => Reply::Text(404, format!("Property '{missing}' not found")),
        Err(e) => Reply::Text(500, sandbox::describe(&e)),
    }
}

fn run_tasks(lua: &Lua, budget: &Budget, me: &Table, thing: &str) {
    let tasks = (|| -> mlua::Result<Vec<(String, Function)>> {
        let t: Table = me.get("tasks")?;
        let mut v = Vec::new();
        for pair in t.pairs::<Value, Value>() {
            let (k, f) = pair?;
            if let (Value::String(k), Value::Function(f)) = (k, f) {
                v.push((k.to_string_lossy(), f));
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    })();
    let tasks = match tasks {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(thing, error = %sandbox::describe(&e), "cannot list tasks");
            return;
        }
    };
    for (name, f) in tasks {
        budget.start(lua);
        if let Err(e) = f.call::<MultiValue>(me.clone()) {
            tracing::warn!(thing, task = %name, error = %sandbox::describe(&e), "task failed");
        }
    }
}

/// One property as read back from Lua: name, value, time, quality, explicitly set.
type LuaProperty = (String, Json, Option<i64>, Option<String>, bool);

/// Copies property values from Lua into the model after a call.
fn sync(lua: &Lua, me: &Table, model: &Mutex<Model>, names: &[String]) {
    let read = || -> mlua::Result<Vec<LuaProperty>> {
        let props: Table = me.get("properties")?;
        let dirty: Table = lua.globals().get("__tether_dirty")?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let Value::Table(pt) = props.get::<Value>(name.as_str())? else {
                continue;
            };
            let value = from_lua(&pt.get::<Value>("value")?)?;
            let time = get_num(&pt, "time").map(|t| t as i64);
            let quality = get_str(&pt, "quality");
            let explicit = matches!(dirty.get::<Value>(name.as_str())?, Value::Boolean(true));
            out.push((name.clone(), value, time, quality, explicit));
        }
        lua.globals().set("__tether_dirty", lua.create_table()?)?;
        Ok(out)
    };
    let values = match read() {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %sandbox::describe(&e), "cannot read properties from Lua");
            return;
        }
    };
    let now = now_ms();
    let mut time_fix = Vec::new();
    {
        let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
        for (name, value, time, quality, explicit) in values {
            let Some(p) = m.get_mut(&name) else { continue };
            let changed = p.value != value;
            let lua_time = time.unwrap_or(p.time);
            if changed || explicit {
                p.prev = Some((p.value.clone(), p.time, p.quality.clone()));
                p.update_time = now;
                if lua_time != p.time {
                    p.time = lua_time;
                } else if changed {
                    p.time = now;
                    time_fix.push(name.clone());
                }
                p.value = value;
            }
            if let Some(q) = quality {
                p.quality = q;
            }
            if explicit {
                p.pending_set = true;
                p.force_push = true;
            }
        }
    }
    if !time_fix.is_empty() {
        let fix = || -> mlua::Result<()> {
            let props: Table = me.get("properties")?;
            for name in &time_fix {
                if let Value::Table(pt) = props.get::<Value>(name.as_str())? {
                    pt.set("time", now)?;
                }
            }
            Ok(())
        };
        let _ = fix();
    }
}
