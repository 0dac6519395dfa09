//! The Lua sandbox: a whitelisted host API, an instruction and time budget per call and a
//! memory limit per state.
//!
//! Available to scripts: the `string`, `table`, `math` and `utf8` libraries, the safe base
//! functions (`pairs`, `pcall`, `tostring`, `setmetatable`, ...), `os.time/clock/date/difftime`,
//! `log.*`, `json.encode/decode`, `print` (to the log) and `require` of `.lua` files found in
//! the template directories. Not available: `io`, `os.execute` and the rest of `os`, `debug`,
//! `load`, `loadfile`, `dofile`, `package.loadlib`, `collectgarbage`, coroutines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

use crate::config::SandboxLimits;

/// How often (in VM instructions) the budget hook runs.
const HOOK_EVERY: u32 = 1000;
/// Longest module name `require` accepts.
const MAX_MODULE_NAME: usize = 128;
/// Largest Lua file `require` or a template may be.
pub(crate) const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;

/// Instruction and wall-clock budget of the current call, checked by a VM hook.
#[derive(Clone)]
pub(crate) struct Budget(Arc<BudgetInner>);

struct BudgetInner {
    limit: u64,
    timeout: Duration,
    used: AtomicU64,
    started: std::sync::Mutex<Instant>,
    /// Set once the budget is spent: the hook then runs at every instruction, so a script
    /// that catches the error with `pcall` is stopped again at its next instruction.
    tripped: AtomicBool,
    /// Why it tripped.
    reason: std::sync::Mutex<String>,
}

impl Budget {
    pub(crate) fn new(limit: u64, timeout: Duration) -> Budget {
        Budget(Arc::new(BudgetInner {
            limit,
            timeout,
            used: AtomicU64::new(0),
            started: std::sync::Mutex::new(Instant::now()),
            tripped: AtomicBool::new(false),
            reason: std::sync::Mutex::new(String::new()),
        }))
    }

    /// Installs the hook on `lua` (threads created later inherit it).
    pub(crate) fn install(&self, lua: &Lua) {
        self.set_hook(lua, HOOK_EVERY);
    }

    fn set_hook(&self, lua: &Lua, every: u32) {
        let b = self.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(every),
            move |lua, _debug| b.check(lua),
        );
    }

    /// Starts a new call on `lua`: resets the counters (and the hook after a trip).
    pub(crate) fn start(&self, lua: &Lua) {
        self.0.used.store(0, Ordering::Relaxed);
        if let Ok(mut s) = self.0.started.lock() {
            *s = Instant::now();
        }
        if self.0.tripped.swap(false, Ordering::Relaxed) {
            self.set_hook(lua, HOOK_EVERY);
        }
    }

    fn trip(&self, lua: &Lua, reason: String) -> mlua::Error {
        if let Ok(mut r) = self.0.reason.lock() {
            r.clone_from(&reason);
        }
        if !self.0.tripped.swap(true, Ordering::Relaxed) {
            self.set_hook(lua, 1);
        }
        mlua::Error::runtime(reason)
    }

    fn check(&self, lua: &Lua) -> mlua::Result<VmState> {
        if self.0.tripped.load(Ordering::Relaxed) {
            let reason = self.0.reason.lock().map(|r| r.clone()).unwrap_or_default();
            return Err(mlua::Error::runtime(reason));
        }
        let used = self
            .0
            .used
            .fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed)
            + u64::from(HOOK_EVERY);
        if used > self.0.limit {
            return Err(self.trip(
                lua,
                format!(
                    "instruction budget exceeded ({} instructions)",
                    self.0.limit
                ),
            ));
        }
        let elapsed = self
            .0
            .started
            .lock()
            .map(|s| s.elapsed())
            .unwrap_or_default();
        if elapsed > self.0.timeout {
            return Err(self.trip(
                lua,
                format!("time limit exceeded ({} ms)", self.0.timeout.as_millis()),
            ));
        }
        Ok(VmState::Continue)
    }
}

/// A short, single-line description of a Lua error for logs and HTTP replies.
pub(crate) fn describe(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::MemoryError(_) => "memory limit exceeded".to_string(),
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => {
            let first = m.lines().next().unwrap_or_default();
            if first.contains("not enough memory") {
                "memory limit exceeded".to_string()
            } else {
                first.to_string()
            }
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// A call from a script to the EMS on behalf of its thing.
#[derive(Debug)]
pub(crate) enum RapCall {
    /// `server.fireEvent(name, infotable)`: `POST <thing>/Events/<name>`.
    Event(String, serde_json::Value),
    /// `server.invoke(service, params)`: `POST <thing>/Services/<service>`.
    Service(String, serde_json::Value),
}

/// Performs a [`RapCall`]; returns the HTTP status and the reply body.
pub(crate) type EventSink = Arc<dyn Fn(RapCall) -> (u16, String) + Send + Sync>;

/// Creates a sandboxed state for one thing. `p_data` becomes the global `p_data`.
pub(crate) fn new_state(
    limits: &SandboxLimits,
    p_data: &serde_json::Map<String, serde_json::Value>,
    template_dirs: &[PathBuf],
    thing: &str,
    events: Option<EventSink>,
) -> mlua::Result<(Lua, Budget)> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::OS,
        LuaOptions::default(),
    )?;
    let budget = Budget::new(limits.instructions, limits.call_timeout);
    budget.install(&lua);
    budget.start(&lua);
    let g = lua.globals();

    // os: only the clock functions.
    let full_os: Table = g.get("os")?;
    let os = lua.create_table()?;
    for name in ["time", "clock", "date", "difftime"] {
        os.set(name, full_os.get::<Value>(name)?)?;
    }
    g.set("os", os)?;
    // string.dump yields bytecode: useless without load, and not for scripts.
    let string: Table = g.get("string")?;
    string.set("dump", Value::Nil)?;
    for name in [
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "require",
        "collectgarbage",
        "debug",
        "io",
        "package",
        "coroutine",
    ] {
        g.set(name, Value::Nil)?;
    }

    let tag = thing.to_string();
    g.set(
        "__tether_log",
        lua.create_function(move |_, (level, t, msg): (String, String, String)| {
            match level.as_str() {
                "TRACE" => tracing::trace!(thing = %tag, tag = %t, "{msg}"),
                "DEBUG" => tracing::debug!(thing = %tag, tag = %t, "{msg}"),
                "WARN" => tracing::warn!(thing = %tag, tag = %t, "{msg}"),
                "ERROR" => tracing::error!(thing = %tag, tag = %t, "{msg}"),
                _ => tracing::info!(thing = %tag, tag = %t, "{msg}"),
            }
            Ok(())
        })?,
    )?;
    g.set(
        "__tether_now_ms",
        lua.create_function(|_, ()| Ok(crate::json::now_ms()))?,
    )?;
    g.set("__tether_dirty", lua.create_table()?)?;
    if let Some(sink) = events {
        let s = sink.clone();
        g.set(
            "__tether_fire_event",
            lua.create_function(move |_, (name, data): (String, Value)| {
                let json = crate::json::from_lua(&data)?;
                Ok(s(RapCall::Event(name, json)))
            })?,
        )?;
        g.set(
            "__tether_invoke",
            lua.create_function(move |_, (name, data): (String, Value)| {
                let json = match crate::json::from_lua(&data)? {
                    serde_json::Value::Null => serde_json::json!({}),
                    j => j,
                };
                Ok(sink(RapCall::Service(name, json)))
            })?,
        )?;
    }
    g.set("__tether_loaded", lua.create_table()?)?;

    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.create_function(|_, v: Value| {
            let j = crate::json::from_lua(&v)?;
            Ok(j.to_string())
        })?,
    )?;
    json.set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let v: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("json.decode: {e}")))?;
            crate::json::to_lua(lua, &v)
        })?,
    )?;
    g.set("json", json)?;

    let mut p = p_data.clone();
    p.insert("name".into(), serde_json::Value::String(thing.to_string()));
    g.set(
        "p_data",
        crate::json::to_lua(&lua, &serde_json::Value::Object(p))?,
    )?;

    lua.load(include_str!("prelude.lua"))
        .set_name("=tether-prelude")
        .exec()?;

    let dirs = template_dirs.to_vec();
    g.set(
        "require",
        lua.create_function(move |lua, name: String| require(lua, &dirs, &name))?,
    )?;

    lua.set_memory_limit(limits.memory)?;
    Ok((lua, budget))
}

/// Names of ThingWorx's own modules that templates may `require`: their content is built in.
const BUILTIN_MODULES: &[&str] = &[
    "core",
    "utils",
    "server",
    "handler",
    "shape",
    "template",
    "types.datashape",
    "thingworx.shapes.metadata",
    "thingworx.shapes.propsubscribe",
    "json",
    "log",
];

fn require(lua: &Lua, dirs: &[PathBuf], name: &str) -> mlua::Result<Value> {
    let loaded: Table = lua.globals().get("__tether_loaded")?;
    let cached: Value = loaded.get(name)?;
    if !cached.is_nil() {
        return Ok(cached);
    }
    if BUILTIN_MODULES.contains(&name) {
        let t = lua.create_table()?;
        loaded.set(name, t.clone())?;
        return Ok(Value::Table(t));
    }
    if name.is_empty()
        || name.len() > MAX_MODULE_NAME
        || name.contains("..")
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
    {
        return Err(mlua::Error::runtime(format!(
            "require: bad module name {name:?}"
        )));
    }
    let rel = format!("{}.lua", name.replace('.', "/"));
    let short = name.rsplit('.').next().unwrap_or(name);
    let candidates = dirs.iter().flat_map(|d| {
        [
            d.join(&rel),
            d.join(format!("{short}.lua")),
            d.join("../shapes").join(format!("{short}.lua")),
        ]
    });
    for path in candidates {
        if path.is_file() {
            let v = run_file(lua, &path)?;
            loaded.set(name, v.clone())?;
            return Ok(v);
        }
    }
    Err(mlua::Error::runtime(format!(
        "require: module '{name}' not found in the template directories"
    )))
}

/// Runs a Lua file in a fresh environment; returns what it returned, or the environment.
pub(crate) fn run_file(lua: &Lua, path: &Path) -> mlua::Result<Value> {
    let size = std::fs::metadata(path)
        .map_err(|e| mlua::Error::runtime(format!("{}: {e}", path.display())))?
        .len();
    if size > MAX_SOURCE_BYTES {
        return Err(mlua::Error::runtime(format!(
            "{}: larger than {MAX_SOURCE_BYTES} bytes",
            path.display()
        )));
    }
    let src = std::fs::read(path)
        .map_err(|e| mlua::Error::runtime(format!("{}: {e}", path.display())))?;
    let new_env: mlua::Function = lua.globals().get("__tether_new_env")?;
    let env: Table = new_env.call(())?;
    let ret: Value = lua
        .load(src)
        .set_name(format!("@{}", path.display()))
        .set_environment(env.clone())
        .call(())?;
    Ok(match ret {
        Value::Table(t) => Value::Table(t),
        _ => Value::Table(env),
    })
}
