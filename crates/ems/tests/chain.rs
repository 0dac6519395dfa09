//! The whole edge chain: real platform ⇄ tether-ems ⇄ tether-lsr (the shipped LSR example).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::chain::{copy_dir, example_dir};
use common::{Ems, eventually};
use test_support::{PlatformOptions, spawn_platform};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn platform_ems_and_lsr_work_together() {
    let p = spawn_platform(PlatformOptions {
        things: vec!["EmsGateway".into(), "LsrThing".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let cfg = format!(
        r#"{{
  "ws_servers": [{{"host": "127.0.0.1", "port": {port}}}],
  "appKey": "{key}",
  "certificates": {{"pinned_sha256": ["{fp}"]}},
  "ws_connection": {{"connect_retry_interval": 50}},
  "auto_bind": [{{"name": "EmsGateway", "gateway": true}}]
}}"#,
        port = p.addr.port(),
        key = p.app_key,
        fp = p.fingerprint,
    );
    let ems = Ems::start(&cfg).await;

    // The shipped LSR example, pointed at this EMS, with fast keep-alive.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example_dir(), dir.path());
    let cfg_path = dir.path().join("config.lua");
    let mut lua = std::fs::read_to_string(&cfg_path).unwrap();
    lua.push_str(&format!(
        "\nscripts.rap_port = \"{}\"\nscripts.LsrThing.keepAliveRate = 200\nscripts.LsrThing.registerRetryRate = 100\nscripts.PlainThing.register = false\n",
        ems.rest.port()
    ));
    std::fs::write(&cfg_path, lua).unwrap();
    let lsr_config = lsr::Config::load(&cfg_path).unwrap();
    let lsr_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lsr_stop = CancellationToken::new();
    let lsr_task = tokio::spawn(lsr::run(lsr_config, lsr_listener, lsr_stop.clone()));

    let pf = p.platform.clone();
    eventually("LsrThing bound on the platform through the EMS", || {
        let pf = pf.clone();
        async move { pf.registry().binding("LsrThing").is_some().then_some(()) }
    })
    .await;

    // Platform REST → EMS → LSR (Lua) and back, read and write.
    let http = p.http_client().unwrap();
    let url = p.url("/Thingworx/Things/LsrThing/Properties/Temperature");
    let r = http
        .get(&url)
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["rows"][0]["Temperature"].is_number(), "{v}");
    let r = http
        .put(&url)
        .header("appKey", &p.app_key)
        .header("content-type", "application/json")
        .body(r#"{"Temperature": 42.25}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = http
        .get(&url)
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["Temperature"], 42.25, "{v}");

    // The LSR goes away: the EMS's keep-alive unbinds its thing on the platform.
    lsr_stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), lsr_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    eventually("LsrThing unbound after the LSR stopped", || {
        let pf = pf.clone();
        async move { pf.registry().binding("LsrThing").is_none().then_some(()) }
    })
    .await;
    ems.stop().await;
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
}
