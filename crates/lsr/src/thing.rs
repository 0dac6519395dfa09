//! One Edge Thing: its Lua state lives on a dedicated thread that runs one job at a time
//! (service call, property write, tasks); the async side talks to it through a bounded
//! queue and reads property values from the shared [`Model`] without entering Lua.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mlua::{Function, Lua, MultiValue, Table, Value};
use serde_json::{Map, Value as Json};
use tokio::sync::{Notify, oneshot};

use crate::basetype;
use crate::config::{Config, PushType, ThingConfig};
use crate::error::{ConfigError, Error};
use crate::json::{from_lua, now_ms, to_lua};
use crate::model::{Field, Model, Property, ServiceDef};
use crate::sandbox::{self, Budget};

/// Jobs waiting for a thing's Lua thread; more are refused with 503.
const JOB_QUEUE: usize = 64;

/// A reply produced by a Lua call.
#[derive(Debug)]
pub(crate) enum Reply {
    /// 200 with an empty body (content type JSON).
    Empty,
    /// 200 with a JSON body.
    Json(Json),
    /// A status with a plain message body (what the ThingWorx LSR sends on errors).
    Text(u16, String),
}

enum Job {
    Service {
        name: String,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
        data: Map<String, Json>,
        reply: oneshot::Sender<Reply>,
    },
    Write {
        values: Vec<(String, Json)>,
        reply: oneshot::Sender<Reply>,
    },
    Tasks {
        reply: oneshot::Sender<()>,
    },
}

/// Handle on a running thing.
pub(crate) struct Thing {
    pub config: ThingConfig,
    pub services: Vec<ServiceDef>,
    model: Arc<Mutex<Model>>,
    jobs: SyncSender<Job>,
    /// Woken when the driver should act before its next tick (NotifyPropertyUpdate).
    pub wake: Notify,
    reply_timeout: Duration,
}

impl Thing {
    /// Starts the Lua thread, loads the template and waits until it is ready.
    pub async fn start(
        config: &Config,
        tc: ThingConfig,
        events: Option<sandbox::EventSink>,
    ) -> Result<Arc<Thing>, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(JOB_QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let limits = config.limits;
        let dirs = config.template_dirs.clone();
        let mut p_data = config.globals.clone();
        p_data.extend(tc.p_data.clone());
        for (k, v) in [
            ("scanRate", tc.scan_rate),
            ("taskRate", tc.task_rate),
            ("scanRateResolution", tc.scan_rate_resolution),
            ("keepAliveRate", tc.keep_alive_rate),
            ("requestTimeout", tc.request_timeout),
            ("registerRate", tc.register_rate),
        ] {
            p_data.insert(k.into(), Json::from(v));
        }
        p_data.insert(
            "maxConcurrentPropertyUpdates".into(),
            Json::from(tc.max_concurrent_property_updates),
        );
        p_data.insert("register".into(), Json::Bool(tc.register));
        p_data.insert("useShapes".into(), Json::Bool(tc.use_shapes));
        p_data.insert(
            "defaultPushType".into(),
            Json::from(tc.default_push_type.name()),
        );
        let tc2 = tc.clone();
        std::thread::Builder::new()
            .name(format!("lua-{}", tc.name))
            .spawn(move || {
                let loaded = load(&limits, &p_data, &dirs, &tc2, events);
                match loaded {
                    Ok((lua, budget, me, model, services, names)) => {
                        let model = Arc::new(Mutex::new(model));
                        let _ = ready_tx.send(Ok((model.clone(), services)));
                        worker(lua, budget, me, model, names, rx, &tc2.name);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| Error::Thing {
                thing: tc.name.clone(),
                reason: format!("cannot start Lua thread: {e}"),
            })?;
        let (model, services) = ready_rx.await.map_err(|_| Error::Thing {
            thing: tc.name.clone(),
            reason: "Lua thread ended while loading".into(),
        })??;
        let reply_timeout = Duration::from_millis(tc.request_timeout);
        Ok(Arc::new(Thing {
            config: tc,
            services,
            model,
            jobs: tx,
            wake: Notify::new(),
            reply_timeout,
        }))
    }

    /// Locks the model (never held across an await).
    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&self, job: Job) -> Result<(), Reply> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Reply::Text(503, "Script is busy, try again later".into()),
            TrySendError::Disconnected(_) => Reply::Text(503, "Script is not running".into()),
        })
    }

    async fn wait(&self, rx: oneshot::Receiver<Reply>) -> Reply {
        match tokio::time::timeout(self.reply_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Reply::Text(500, "Script ended without answering".into()),
            Err(_) => Reply::Text(504, "Script did not answer in time".into()),
        }
    }

    /// Calls a service defined in Lua.
    pub async fn call_service(
        &self,
        name: String,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
        data: Map<String, Json>,
    ) -> Reply {
        let (reply, rx) = oneshot::channel();
        if let Err(r) = self.submit(Job::Service {
            name,
            headers,
            query,
            data,
            reply,
        }) {
            return r;
        }
        self.wait(rx).await
    }

    /// Writes property values (already checked against their base types).
    pub async fn write(&self, values: Vec<(String, Json)>) -> Reply {
        let (reply, rx) = oneshot::channel();
        if let Err(r) = self.submit(Job::Write { values, reply }) {
            return r;
        }
        self.wait(rx).await
    }

    /// Runs every task once; returns when done (or after the reply timeout).
    pub async fn run_tasks(&self) {
        let (reply, rx) = oneshot::channel();
        if self.jobs.try_send(Job::Tasks { reply }).is_err() {
            tracing::warn!(thing = %self.config.name, "task run skipped: script busy");
            return;
        }
        if tokio::time::timeout(self.reply_timeout, rx).await.is_err() {
            tracing::warn!(thing = %self.config.name, "tasks did not finish in time");
        }
    }

    /// The service definition of `name`, if the template declared one.
    pub fn service_def(&self, name: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.name == name)
    }
}

type Loaded = (Lua, Budget, Table, Model, Vec<ServiceDef>, Vec<String>);

fn template_error(tc: &ThingConfig, reason: String) -> Error {
    Error::Config(ConfigError::invalid(
        format!("scripts.{}.template", tc.name),
        reason,
    ))
}

fn load(
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

fn get_str(t: &Table, k: &str) -> Option<String> {
    match t.raw_get::<Value>(k).ok()? {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(crate::json::number(n).to_string()),
        _ => None,
    }
}

fn get_num(t: &Table, k: &str) -> Option<f64> {
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
fn read_services(me: &Table) -> Result<Vec<ServiceDef>, String> {
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

/// The Lua thread: runs jobs one by one until every sender is gone.
fn worker(
    lua: Lua,
    budget: Budget,
    me: Table,
    model: Arc<Mutex<Model>>,
    names: Vec<String>,
    rx: Receiver<Job>,
    thing: &str,
) {
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
        let _ = lua.gc_collect();
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
