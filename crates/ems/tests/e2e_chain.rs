//! End to end on real sockets: platform REST ⇄ AlwaysOn (TLS) ⇄ tether-ems ⇄ HTTP ⇄
//! tether-lsr running the shipped example template (docs/examples/lsr).
//!
//! Every wait is a condition polled with a deadline (`eventually`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use alwayson::Primitive;
use common::chain::{
    Lsr, Restarted, THING, ems_config, push_body, start_platform, stored, wait_bound,
};
use common::{Ems, eventually};
use serde_json::{Value, json};

async fn get(http: &reqwest::Client, url: &str, key: &str) -> (u16, Value) {
    let r = http.get(url).header("appKey", key).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let r = http
        .request(method, url)
        .header("appKey", key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Seeds stored values for the Lua thing while it is not connected, so that the
/// platform subscribes to them (GetPropertySubscriptions lists stored properties).
async fn seed_subscriptions(p: &test_support::PlatformHandle) {
    let http = p.http_client().unwrap();
    let (status, body) = send(
        &http,
        reqwest::Method::PUT,
        &p.url(&format!("/Thingworx/Things/{THING}/Properties")),
        &p.app_key,
        &json!({"Temperature": 0.0, "Status": "seeded"}),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {body}");
}

fn as_f64(v: Option<Primitive>) -> Option<f64> {
    v?.as_f64()
}

fn as_string(v: Option<Primitive>) -> Option<String> {
    v?.as_str().map(str::to_owned)
}

#[tokio::test]
async fn platform_rest_reads_writes_and_calls_lua_and_task_changes_are_stored() {
    let p = start_platform().await;
    seed_subscriptions(&p).await;
    let ems = Ems::start(&ems_config(p.addr, &p.app_key, &p.fingerprint, "")).await;
    let lsr = Lsr::start(ems.rest.port(), "", "").await;
    wait_bound(&p.platform, THING, true).await;

    let http = p.http_client().unwrap();
    let prop = |name: &str| p.url(&format!("/Thingworx/Things/{THING}/Properties/{name}"));
    let service = |name: &str| p.url(&format!("/Thingworx/Things/{THING}/Services/{name}"));

    // Read a Lua property through the chain.
    let (status, v) = get(&http, &prop("Status"), &p.app_key).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["Status"], "idle", "{v}");

    // Write one, read it back from Lua.
    let (status, v) = send(
        &http,
        reqwest::Method::PUT,
        &prop("Status"),
        &p.app_key,
        &json!({"Status": "written by the platform"}),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {v}");
    let (_, v) = get(&http, &prop("Status"), &p.app_key).await;
    assert_eq!(v["rows"][0]["Status"], "written by the platform", "{v}");

    // Services with parameters and their results.
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &service("Add"),
        &p.app_key,
        &json!({"p1": 2.5, "p2": 4}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["result"], 6.5, "{v}");
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &service("Echo"),
        &p.app_key,
        &json!({"s": "héllo, wörld"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["result"], "héllo, wörld", "{v}");
    // A Lua error status (missing parameter) reaches the REST caller as an error.
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &service("Add"),
        &p.app_key,
        &json!({"p1": 1}),
    )
    .await;
    assert!(status >= 400, "{status} {v}");
    // A service that writes a property: the explicit write is pushed and stored.
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &service("SetStatus"),
        &p.app_key,
        &json!({"status": "busy"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["result"], "busy", "{v}");
    let pf = p.platform.clone();
    eventually("SetStatus pushed and stored on the platform", || {
        let pf = pf.clone();
        async move { (as_string(stored(&pf, THING, "Status").await)? == "busy").then_some(()) }
    })
    .await;

    // The Lua task raises Temperature by 0.5 from 21.5 every taskRate; each change is
    // pushed (VALUE subscription) and stored by the platform.
    let first = eventually("a task-changed Temperature stored", || {
        let pf = pf.clone();
        async move {
            let t = as_f64(stored(&pf, THING, "Temperature").await)?;
            (t > 21.5).then_some(t)
        }
    })
    .await;
    eventually("the next task change stored", || {
        let pf = pf.clone();
        async move {
            let t = as_f64(stored(&pf, THING, "Temperature").await)?;
            (t != first).then_some(())
        }
    })
    .await;

    lsr.stop().await;
    wait_bound(&p.platform, THING, false).await;
    ems.stop().await;
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn runaway_lua_loop_is_cut_off_and_the_next_call_works() {
    let p = start_platform().await;
    let ems = Ems::start(&ems_config(p.addr, &p.app_key, &p.fingerprint, "")).await;
    let lsr = Lsr::start(
        ems.rest.port(),
        "scripts.lua_instruction_limit = 5000000\nscripts.lua_call_timeout = 2000\n",
        r#"
serviceDefinitions.Spin(
  output { baseType = "NUMBER", description = "never returns" },
  description { "A runaway loop" }
)

services.Spin = function(me, headers, query, data)
  while true do end
end
"#,
    )
    .await;
    wait_bound(&p.platform, THING, true).await;
    let http = p.http_client().unwrap();
    let service = |name: &str| p.url(&format!("/Thingworx/Things/{THING}/Services/{name}"));

    let started = std::time::Instant::now();
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &service("Spin"),
        &p.app_key,
        &json!({}),
    )
    .await;
    let took = started.elapsed();
    assert!(status >= 500, "the runaway call fails: {status} {v}");
    assert!(
        v.to_string().contains("instruction budget exceeded"),
        "the sandbox's reason reaches the caller: {v}"
    );
    assert!(
        took < Duration::from_secs(5),
        "cut off by the sandbox, not by a request timeout: {took:?}"
    );

    // The thing's Lua state still answers.
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &service("Add"),
        &p.app_key,
        &json!({"p1": 1, "p2": 2}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["result"], 3.0, "{v}");
    let (status, v) = get(
        &http,
        &p.url(&format!("/Thingworx/Things/{THING}/Properties/Status")),
        &p.app_key,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["Status"], "idle", "{v}");

    lsr.stop().await;
    ems.stop().await;
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn platform_restart_rebinds_and_delivers_what_was_pushed_while_down() {
    let mut p = start_platform().await;
    seed_subscriptions(&p).await;
    let ems = Ems::start(&ems_config(p.addr, &p.app_key, &p.fingerprint, "")).await;
    let lsr = Lsr::start(ems.rest.port(), "", "").await;
    wait_bound(&p.platform, THING, true).await;
    wait_bound(&p.platform, common::chain::GATEWAY, true).await;
    let pf = p.platform.clone();
    eventually("the LSR's first Status push stored", || {
        let pf = pf.clone();
        async move { (as_string(stored(&pf, THING, "Status").await)? == "idle").then_some(()) }
    })
    .await;

    // Stop the platform (keeping its data directory and address).
    let addr = p.addr;
    let tempdir = p.take_tempdir().unwrap();
    let http = p.http_client().unwrap();
    let key = p.app_key.clone();
    drop(pf);
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
    let local = reqwest::Client::new();
    let connected = ems.url("/Thingworx/Things/LocalEms/Properties/isConnected");
    eventually("the EMS sees the platform gone", || {
        let (local, connected) = (local.clone(), connected.clone());
        async move {
            let v: Value = local.get(&connected).send().await.ok()?.json().await.ok()?;
            (v["rows"][0]["isConnected"] == false).then_some(())
        }
    })
    .await;

    // A Lua property write while the platform is down: the LSR pushes it right away,
    // the EMS keeps it in its offline store.
    let r = local
        .put(format!(
            "http://{}/scripts/Thingworx/Things/{THING}/Properties/Status",
            lsr.addr
        ))
        .header("content-type", "application/json")
        .body(
            json!({
                "rows": [{"Status": "written while the platform was down"}],
                "dataShape": {"fieldDefinitions": {"Status": {"name": "Status", "baseType": "STRING"}}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // A push straight to the EMS local REST is answered from the offline store.
    let r = local
        .post(ems.url(&format!(
            "/Thingworx/Things/{THING}/Services/UpdateSubscribedPropertyValues"
        )))
        .body(push_body(
            "OfflineNote",
            "STRING",
            &json!("stored offline"),
            1_795_240_634_000,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-tether-offline").is_some(),
        "kept in the offline store, not sent"
    );

    // The platform comes back on the same address and data: the EMS reconnects,
    // binds the gateway and the Lua thing again by itself, and flushes the store.
    let again = Restarted::start(addr, tempdir.path()).await;
    wait_bound(&again.platform, common::chain::GATEWAY, true).await;
    wait_bound(&again.platform, THING, true).await;
    let pf = again.platform.clone();
    eventually("the offline push stored after the restart", || {
        let pf = pf.clone();
        async move {
            (as_string(stored(&pf, THING, "Status").await)?
                == "written while the platform was down")
                .then_some(())
        }
    })
    .await;
    eventually("the direct offline push stored after the restart", || {
        let pf = pf.clone();
        async move {
            (as_string(stored(&pf, THING, "OfflineNote").await)? == "stored offline").then_some(())
        }
    })
    .await;
    // The REST path works again through the new listener (same app key, same pin).
    let url = format!("https://{addr}/Thingworx/Things/{THING}/Properties/Status");
    let v = eventually("a REST read through the restarted platform", || {
        let (http, url, key) = (http.clone(), url.clone(), key.clone());
        async move {
            let r = http.get(&url).header("appKey", &key).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            r.json::<Value>().await.ok()
        }
    })
    .await;
    assert_eq!(
        v["rows"][0]["Status"], "written while the platform was down",
        "{v}"
    );

    lsr.stop().await;
    ems.stop().await;
    again.shutdown().await;
    drop(tempdir);
}

#[tokio::test]
async fn ems_restart_makes_the_lsr_register_again() {
    let p = start_platform().await;
    let cfg = ems_config(p.addr, &p.app_key, &p.fingerprint, "");
    let ems = Ems::start(&cfg).await;
    let rest = ems.rest;
    let lsr = Lsr::start(rest.port(), "", "").await;
    wait_bound(&p.platform, THING, true).await;

    ems.stop().await;
    wait_bound(&p.platform, THING, false).await;
    wait_bound(&p.platform, common::chain::GATEWAY, false).await;

    // A new EMS on the same port knows nothing of the Lua thing: the LSR's
    // keep-alive (HasEdgeThing → false or refused) makes it register again.
    let ems = Ems::start_on(&cfg, rest).await;
    wait_bound(&p.platform, common::chain::GATEWAY, true).await;
    wait_bound(&p.platform, THING, true).await;
    let http = p.http_client().unwrap();
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        &p.url(&format!("/Thingworx/Things/{THING}/Services/Add")),
        &p.app_key,
        &json!({"p1": 40, "p2": 2}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["result"], 42.0, "{v}");

    lsr.stop().await;
    ems.stop().await;
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
}
