//! REST forwarding and management API tests over real HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alwayson::{Code, InfoTable, Primitive, PropertyValue};
use platform::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{PlatformOptions, TestEdge, spawn_platform, wait_for};

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn rest_reads_and_services_are_answered_by_the_edge() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    e.set_handler(|code, req| match (code, req.target.as_str()) {
        (Code::GET, "Temp") => (
            Code::SUCCESS,
            Some(InfoTable::single_row([("Temp", Primitive::Number(22.5))])),
        ),
        (Code::POST, "Add") => {
            let a = req
                .params
                .as_ref()
                .and_then(|t| t.value("a"))
                .and_then(Primitive::as_f64)
                .unwrap_or(0.0);
            let b = req
                .params
                .as_ref()
                .and_then(|t| t.value("b"))
                .and_then(Primitive::as_f64)
                .unwrap_or(0.0);
            (
                Code::SUCCESS,
                Some(InfoTable::single_row([(
                    "result",
                    Primitive::Number(a + b),
                )])),
            )
        }
        (Code::PUT, _) => (Code::SUCCESS, None),
        _ => (
            Code::NOT_FOUND,
            Some(InfoTable::single_row([(
                "error",
                Primitive::String("no such thing here".into()),
            )])),
        ),
    });
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);

    let r = http
        .get(p.url("/Thingworx/Things/Pump1/Properties/Temp"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["Temp"], json!(22.5));
    assert_eq!(
        v["dataShape"]["fieldDefinitions"]["Temp"]["baseType"],
        json!("NUMBER")
    );

    let r = http
        .post(p.url("/Thingworx/Things/Pump1/Services/Add"))
        .header("appKey", &p.app_key)
        .json(&json!({"a": 2, "b": 40}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["result"], json!(42.0));

    // the edge's 0x84 with an `error` field becomes a 404 with that message
    let r = http
        .post(p.url("/Thingworx/Things/Pump1/Services/Nope"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], json!("no such thing here"));

    let r = http
        .put(p.url("/Thingworx/Things/Pump1/Properties/Speed"))
        .header("appKey", &p.app_key)
        .json(&json!({"Speed": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // bad JSON, unknown thing, no credentials
    let r = http
        .post(p.url("/Thingworx/Things/Pump1/Services/Add"))
        .header("appKey", &p.app_key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let r = http
        .get(p.url("/Thingworx/Things/Nope/Properties"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("Nope")
    );
    let r = http
        .get(p.url("/Thingworx/Things/Pump1/Properties"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(p.url("/Thingworx/Things/Pump1/Properties"))
        .header("appKey", "tk_bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // a disconnected thing: stored values; services unavailable
    e.push_properties(
        "Pump1",
        &[PropertyValue {
            name: "Temp".into(),
            value: Primitive::Number(19.0),
            time: 7,
            quality: "GOOD".into(),
        }],
    )
    .await
    .unwrap();
    e.close().await.unwrap();
    assert!(
        wait_for(T, || async {
            p.platform.registry().binding("Pump1").is_none()
        })
        .await
    );
    let r = http
        .get(p.url("/Thingworx/Things/Pump1/Properties"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["Temp"], json!(19.0));
    let r = http
        .post(p.url("/Thingworx/Things/Pump1/Services/Add"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn edge_that_does_not_answer_gives_504() {
    let p = spawn_platform(PlatformOptions {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = p.http_client().unwrap();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    // no handler: requests are queued as events and never answered
    let r = http
        .get(p.url("/Thingworx/Things/Pump1/Properties/Temp"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
    let metrics = http
        .get(p.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tether_platform_edge_request_timeouts_total 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("Pump1"), "no per-thing labels");
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_keeps_things_keys_and_values() {
    let mut p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let tmp = p.take_tempdir().unwrap();
    let key = p.app_key.clone();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    let v = [PropertyValue {
        name: "Temp".into(),
        value: Primitive::Number(30.25),
        time: 123,
        quality: "GOOD".into(),
    }];
    assert_eq!(
        e.push_properties("Pump1", &v).await.unwrap().header.code,
        Code::SUCCESS
    );
    p.shutdown().await.unwrap();

    let p = spawn_platform(PlatformOptions {
        data_dir: Some(tmp.path().to_owned()),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = p.platform.store().thing("Pump1").await.unwrap().unwrap();
    assert!(!t.is_connected, "no socket survives a restart");
    assert!(t.last_connection.is_some());
    let props = p.platform.store().properties("Pump1").await.unwrap();
    assert_eq!((props[0].value.clone(), props[0].time), (json!(30.25), 123));
    // the old key still authenticates
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    p.shutdown().await.unwrap();
    drop(tmp);
}

#[tokio::test]
async fn management_api_crud_and_roles() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    let admin = |req: reqwest::RequestBuilder| req.header("appKey", p.app_key.clone());

    // users: admin creates a viewer (basic auth once, to cover it)
    let r = http
        .post(p.url("/api/v1/users"))
        .basic_auth(&p.admin_user, Some(&p.admin_password))
        .json(&json!({"name": "vera", "role": "viewer", "password": "viewer-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let users: Value = admin(http.get(p.url("/api/v1/users")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "vera" && u["role"] == "viewer")
    );
    let r = admin(http.post(p.url("/api/v1/users")))
        .json(&json!({"name": "x", "role": "root", "password": "12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // a viewer may read things but not create keys
    let viewer_key = p.create_app_key("vera-key", "vera", &[]).await.unwrap();
    assert_eq!(
        p.platform
            .store()
            .app_key_by_hash(&platform::secret::hash_app_key(&viewer_key))
            .await
            .unwrap()
            .unwrap()
            .1,
        Role::Viewer
    );
    let r = http
        .get(p.url("/api/v1/things"))
        .header("appKey", &viewer_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(p.url("/api/v1/appkeys"))
        .header("appKey", &viewer_key)
        .json(&json!({"name": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(p.url("/Thingworx/Things/Pump1/Services/Reboot"))
        .header("appKey", &viewer_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // app keys: created once with the key, listed without it, revocable
    let r = admin(http.post(p.url("/api/v1/appkeys")))
        .json(&json!({"name": "edge2", "thingPatterns": ["Pump*"], "allowedAddresses": ["127.0.0.1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["user"], "admin");
    let list = admin(http.get(p.url("/api/v1/appkeys")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("edge2") && !list.contains(&key));
    let r = http
        .get(p.url("/api/v1/me"))
        .header("appKey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin(http.post(p.url("/api/v1/appkeys/edge2/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = http
        .get(p.url("/api/v1/me"))
        .header("appKey", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = admin(http.post(p.url("/api/v1/appkeys")))
        .json(&json!({"name": "bad", "allowedAddresses": ["not-an-ip"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // things and interfaces
    let r = admin(http.post(p.url("/api/v1/things")))
        .json(
            &json!({"name": "Valve9", "template": "RemoteThingWithTunnels", "identifier": "*SN9"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = admin(http.post(p.url("/api/v1/things")))
        .json(&json!({"name": "Valve9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = admin(http.post(p.url("/api/v1/things/Valve9/interfaces")))
        .json(&json!({"name": "ssh", "host": "127.0.0.1", "port": 22, "protocol": "ssh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let thing: Value = admin(http.get(p.url("/api/v1/things/Valve9")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(thing["identifier"], "SN9");
    assert_eq!(thing["interfaces"][0]["port"], 22);
    let r = admin(http.delete(p.url("/api/v1/things/Valve9/interfaces/ssh")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = admin(http.delete(p.url("/api/v1/things/Valve9")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = admin(http.get(p.url("/api/v1/things/Valve9")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let audit: Value = admin(http.get(p.url("/api/v1/audit?limit=100")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "admin.thing.delete")
    );
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn cookie_login_needs_csrf_for_changes() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    let r = http
        .post(p.url("/api/v1/login"))
        .json(&json!({"username": p.admin_user, "password": p.admin_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Strict")
            && set_cookie.contains("Secure")
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrfToken"].as_str().unwrap().to_owned();

    let r = http
        .get(p.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(p.url("/api/v1/things"))
        .header("cookie", &cookie)
        .json(&json!({"name": "ViaCookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(p.url("/api/v1/things"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "ViaCookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = http
        .post(p.url("/api/v1/login"))
        .json(&json!({"username": "admin", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_openapi_route_exists() {
    use tower::ServiceExt as _;
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let doc: Value = serde_json::from_str(platform::http::openapi::DOCUMENT).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let req = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = platform::http::router(p.platform.clone())
                .oneshot(req)
                .await
                .unwrap();
            assert!(
                resp.headers()
                    .get(platform::http::NO_ROUTE_HEADER)
                    .is_none(),
                "{method} {path} is in the OpenAPI document but not routed ({})",
                resp.status()
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "checked {checked}");
    // and an unknown route is detected as such
    let req = axum::http::Request::builder()
        .uri("/api/v1/nothing")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = platform::http::router(p.platform.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert!(
        resp.headers()
            .get(platform::http::NO_ROUTE_HEADER)
            .is_some()
    );
    let health: Value = p
        .http_client()
        .unwrap()
        .get(p.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    p.shutdown().await.unwrap();
}
