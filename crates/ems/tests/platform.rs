//! tether-ems against the real Tether platform (crates/test-support's spawn_platform).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Ems, eventually};
use test_support::{PlatformOptions, spawn_platform};

#[tokio::test]
async fn binds_answers_and_pushes_through_the_real_platform() {
    let p = spawn_platform(PlatformOptions {
        things: vec!["EmsGateway".into(), "Pump1".into()],
        ..Default::default()
    })
    .await
    .unwrap();

    // Pump1 is answered by a script resource.
    let lsr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lsr_port = lsr.local_addr().unwrap().port();
    let app = Router::new().route(
        "/scripts/Thingworx/Things/Pump1/Properties/Temperature",
        get(|| async {
            r#"{"rows":[{"Temperature":24.5}],"dataShape":{"fieldDefinitions":{"Temperature":{"name":"Temperature","baseType":"NUMBER"}}}}"#
        }),
    );
    tokio::spawn(async move { axum::serve(lsr, app).await });

    let cfg = format!(
        r#"{{
  "ws_servers": [{{"host": "127.0.0.1", "port": {port}}}],
  "appKey": "{key}",
  "certificates": {{"pinned_sha256": ["{fp}"]}},
  "ws_connection": {{"ping_rate": 1000, "connect_retry_interval": 50}},
  "auto_bind": [
    {{"name": "EmsGateway", "gateway": true}},
    {{"name": "Pump1", "host": "127.0.0.1", "port": {lsr_port}, "path": "/scripts/Thingworx"}}
  ]
}}"#,
        port = p.addr.port(),
        key = p.app_key,
        fp = p.fingerprint,
    );
    let ems = Ems::start(&cfg).await;
    let pf = p.platform.clone();
    eventually("Pump1 and EmsGateway bound on the platform", || {
        let pf = pf.clone();
        async move {
            let r = pf.registry();
            (r.binding("Pump1").is_some() && r.binding("EmsGateway").is_some()).then_some(())
        }
    })
    .await;

    // Platform REST → AlwaysOn → EMS → HTTP → script resource, and back.
    let http = p.http_client().unwrap();
    let r = http
        .get(p.url("/Thingworx/Things/Pump1/Properties/Temperature"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["Temperature"], 24.5, "{v}");

    // A property push through the EMS's local REST is stored by the platform.
    let push = r#"{"dataShape":{"fieldDefinitions":{"values":{"name":"values","baseType":"INFOTABLE"}}},"rows":[{"values":{"dataShape":{"fieldDefinitions":{"name":{"name":"name","baseType":"STRING"},"value":{"name":"value","baseType":"VARIANT"},"time":{"name":"time","baseType":"DATETIME"},"quality":{"name":"quality","baseType":"STRING"}}},"rows":[{"name":"Temperature","value":{"baseType":"NUMBER","value":31.5},"time":1795240634000,"quality":"GOOD"}]}}]}"#;
    let r = reqwest::Client::new()
        .post(ems.url("/Thingworx/Things/Pump1/Services/UpdateSubscribedPropertyValues"))
        .body(push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-tether-offline").is_none(),
        "sent, not stored"
    );
    let platform = p.platform.clone();
    eventually("pushed value stored", || {
        let platform = platform.clone();
        async move {
            let t = platform
                .stored_table("Pump1", Some("Temperature"))
                .await
                .ok()??;
            let v = t.value("Temperature")?.as_f64()?;
            (v == 31.5).then_some(())
        }
    })
    .await;

    // Graceful shutdown unbinds.
    ems.stop().await;
    eventually("Pump1 unbound", || {
        let pf = pf.clone();
        async move { pf.registry().binding("Pump1").is_none().then_some(()) }
    })
    .await;
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
}
