//! The Lua sandbox: budgets, memory limit, forbidden API. Errors become HTTP 500 for
//! that call only; the thing keeps answering.

mod common;

use std::time::{Duration, Instant};

use common::{FakeEms, Lsr, subscriptions};
use serde_json::{Value, json};

const TEMPLATE: &str = r#"
module ("templates.sandbox", thingworx.template.extend)

properties.Count = { baseType = "NUMBER", pushType = "NEVER", value = 0 }

services.Spin = function(me) while true do end end
services.SpinInPcall = function(me)
  while true do pcall(function() while true do end end) end
end
services.Bomb = function(me)
  local t, i = {}, 0
  while true do i = i + 1; t[i] = string.rep("x", 65536) .. i end
end
services.BigRep = function(me) return 200, string.rep("x", 1024 * 1024 * 1024) end
services.Exec = function(me) os.execute("touch /tmp/tether-lsr-escaped") return 200, "ran" end
services.Boom = function(me) error("boom") end
services.Inc = function(me)
  properties.Count.value = properties.Count.value + 1
  return 200, properties.Count.value
end
services.Probe = function(me)
  local ok_require = pcall(require, "os")
  return 200, json.encode({
    os_execute = type(os.execute), os_exit = type(os.exit), os_remove = type(os.remove),
    os_getenv = type(os.getenv), io = type(io), debug = type(debug), load = type(load),
    loadfile = type(loadfile), dofile = type(dofile), package_loadlib = type(package.loadlib),
    collectgarbage = type(collectgarbage), coroutine = type(coroutine),
    string_dump = type(string.dump), require_os = ok_require,
    os_time = type(os.time),
  })
end

-- a task that never ends by itself: cut off every run, the thing keeps answering
tasks.spin = function(me) while true do end end
"#;

const EXTRA: &str = r#"
scripts.LsrThing.register = false
scripts.PlainThing.register = false
scripts.SandboxThing = { file = "thing.lua", template = "sandbox", register = false, taskRate = 1000 }
scripts.lua_instruction_limit = 2000000
scripts.lua_memory_limit = 16777216
"#;

async fn start() -> (FakeEms, Lsr) {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), EXTRA, &[("sandbox.lua", TEMPLATE)]).await;
    (ems, lsr)
}

async fn inc_works(lsr: &Lsr) {
    let (s, body) = lsr.post("SandboxThing/Services/Inc", "").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with(r#"{"rows":[{"result":"#), "{body}");
}

#[tokio::test]
async fn runaway_loop_is_cut_off_and_the_next_call_works() {
    let (_ems, lsr) = start().await;
    for svc in ["Spin", "SpinInPcall"] {
        let t = Instant::now();
        let (s, body) = lsr.post(&format!("SandboxThing/Services/{svc}"), "").await;
        assert_eq!(s, 500, "{svc}: {body}");
        assert!(
            body.contains("instruction budget exceeded"),
            "{svc}: {body}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{svc} took {:?}",
            t.elapsed()
        );
        inc_works(&lsr).await;
    }
    lsr.shutdown().await;
}

#[tokio::test]
async fn memory_bomb_is_cut_off_and_the_next_call_works() {
    let (_ems, lsr) = start().await;
    for svc in ["Bomb", "BigRep"] {
        let (s, body) = lsr.post(&format!("SandboxThing/Services/{svc}"), "").await;
        assert_eq!(s, 500, "{svc}: {body}");
        assert!(body.contains("memory limit exceeded"), "{svc}: {body}");
        inc_works(&lsr).await;
    }
    lsr.shutdown().await;
}

#[tokio::test]
async fn forbidden_api_is_not_there() {
    let (_ems, lsr) = start().await;
    let (s, body) = lsr.post("SandboxThing/Services/Probe", "").await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let r: Value = serde_json::from_str(v["rows"][0]["result"].as_str().unwrap()).unwrap();
    for k in [
        "os_execute",
        "os_exit",
        "os_remove",
        "os_getenv",
        "io",
        "debug",
        "load",
        "loadfile",
        "dofile",
        "package_loadlib",
        "collectgarbage",
        "coroutine",
        "string_dump",
    ] {
        assert_eq!(r[k], json!("nil"), "{k} is reachable: {r}");
    }
    assert_eq!(r["require_os"], json!(false));
    assert_eq!(r["os_time"], json!("function"));

    let (s, body) = lsr.post("SandboxThing/Services/Exec", "").await;
    assert_eq!(s, 500);
    assert!(body.contains("attempt to call a nil value"), "{body}");
    assert!(!std::path::Path::new("/tmp/tether-lsr-escaped").exists());

    let (s, body) = lsr.post("SandboxThing/Services/Boom", "").await;
    assert_eq!(s, 500);
    assert!(body.contains("boom"), "{body}");
    inc_works(&lsr).await;
    lsr.shutdown().await;
}

#[tokio::test]
async fn reads_are_served_while_a_script_runs_and_time_is_limited() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let extra = r#"
scripts.LsrThing.register = false
scripts.PlainThing.register = false
scripts.SandboxThing = { file = "thing.lua", template = "sandbox", register = false, taskRate = 600000 }
scripts.lua_instruction_limit = 100000000000
scripts.lua_call_timeout = 1500
"#;
    let lsr = Lsr::start(ems.addr.port(), extra, &[("sandbox.lua", TEMPLATE)]).await;
    let url = format!("{}/SandboxThing/Services/Spin", lsr.base);
    let http = lsr.http.clone();
    let spin = tokio::spawn(async move {
        let r = http.post(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    // property reads do not enter Lua: they answer while Spin holds the Lua thread
    for _ in 0..20 {
        let (s, body) = lsr.get("SandboxThing/Properties/Count").await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, body) = spin.await.unwrap();
    assert_eq!(s, 500);
    assert!(body.contains("time limit exceeded (1500 ms)"), "{body}");
    inc_works(&lsr).await;
    lsr.shutdown().await;
}
