//! REST forwarding and management API tests over real HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alwayson::{Code, InfoTable, Primitive, PropertyValue};
use platform::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{PlatformHandle, PlatformOptions, TestEdge, spawn_platform, wait_for};

mod support;

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

/// Logs `user` in through `/api/v1/login`; returns the cookie pair.
async fn login_cookie(p: &PlatformHandle, user: &str, password: &str) -> String {
    login(p, user, password).await.0
}

/// Logs `user` in; returns the cookie pair and the CSRF token.
async fn login(p: &PlatformHandle, user: &str, password: &str) -> (String, String) {
    let r = p
        .http_client()
        .unwrap()
        .post(p.url("/api/v1/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "login as {user}");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    (cookie, body["csrfToken"].as_str().unwrap().to_owned())
}

async fn me_status(p: &PlatformHandle, cookie: &str) -> (StatusCode, Value) {
    let r = p
        .http_client()
        .unwrap()
        .get(p.url("/api/v1/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn web_sessions_follow_role_password_and_deletion() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    for name in ["olivia", "oscar"] {
        let r = http
            .post(p.url("/api/v1/users"))
            .basic_auth(&p.admin_user, Some(&p.admin_password))
            .json(&json!({"name": name, "password": "password-1", "role": "administrator"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let olivia = login_cookie(&p, "olivia", "password-1").await;
    let oscar = login_cookie(&p, "oscar", "password-1").await;
    let admin = login_cookie(&p, &p.admin_user, &p.admin_password).await;
    let (status, me) = me_status(&p, &olivia).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "administrator");

    // Demoted: the same session has the new role at once.
    let r = http
        .patch(p.url("/api/v1/users/olivia"))
        .basic_auth(&p.admin_user, Some(&p.admin_password))
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, me) = me_status(&p, &olivia).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "viewer");
    // A new password logs her browsers out; the new one logs in.
    let r = http
        .patch(p.url("/api/v1/users/olivia"))
        .basic_auth(&p.admin_user, Some(&p.admin_password))
        .json(&json!({"password": "password-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(me_status(&p, &olivia).await.0, StatusCode::UNAUTHORIZED);
    let olivia = login_cookie(&p, "olivia", "password-2").await;
    assert_eq!(me_status(&p, &olivia).await.1["role"], "viewer");

    // Deleted: the session is gone and the password no longer logs in.
    let r = http
        .delete(p.url("/api/v1/users/oscar"))
        .basic_auth(&p.admin_user, Some(&p.admin_password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&p, &oscar).await.0, StatusCode::UNAUTHORIZED);
    // Other users' sessions are untouched.
    assert_eq!(me_status(&p, &admin).await.0, StatusCode::OK);
    assert_eq!(me_status(&p, &olivia).await.0, StatusCode::OK);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_web_login_survives_a_platform_restart_and_logout_ends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = || PlatformOptions {
        data_dir: Some(tmp.path().to_owned()),
        ..PlatformOptions::default()
    };
    let p = spawn_platform(opts()).await.unwrap();
    let (cookie, csrf) = login(&p, &p.admin_user, &p.admin_password).await;
    assert_eq!(me_status(&p, &cookie).await.0, StatusCode::OK);
    p.shutdown().await.unwrap();

    let p = spawn_platform(opts()).await.unwrap();
    let (status, me) = me_status(&p, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"], p.admin_user.as_str());
    let r = p
        .http_client()
        .unwrap()
        .post(p.url("/api/v1/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&p, &cookie).await.0, StatusCode::UNAUTHORIZED);
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

/// Creates a user through the API (as the spawned platform's admin key).
async fn add_user(p: &test_support::PlatformHandle, name: &str, role: &str) {
    let r = p
        .http_client()
        .unwrap()
        .post(p.url("/api/v1/users"))
        .header("appKey", &p.app_key)
        .json(&json!({"name": name, "role": role, "password": format!("{name}-password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn app_key_expiry_can_be_set_and_cleared() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    let admin = |req: reqwest::RequestBuilder| req.header("appKey", p.app_key.clone());
    let r = admin(http.post(p.url("/api/v1/appkeys")))
        .json(&json!({"name": "script"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let key: Value = r.json().await.unwrap();
    let script_key = key["key"].as_str().unwrap().to_owned();

    let until = platform::model::now_ms() + 86_400_000;
    let r = admin(http.patch(p.url("/api/v1/appkeys/script")))
        .json(&json!({"expires_at": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["expires_at"], json!(until));
    let listed: Value = admin(http.get(p.url("/api/v1/appkeys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "script")
        .unwrap()
        .clone();
    assert_eq!(patched, listed, "same shape as the list");
    assert!(
        patched.get("key").is_none(),
        "the key itself is never shown again"
    );

    let r = admin(http.patch(p.url("/api/v1/appkeys/script")))
        .json(&json!({"expires_at": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["expires_at"], Value::Null);
    let r = admin(http.patch(p.url("/api/v1/appkeys/script")))
        .json(&json!({"expiresAt": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["expires_at"], json!(until));
    let r = admin(http.patch(p.url("/api/v1/appkeys/script")))
        .json(&json!({"expires_at": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // the key still works
    let r = http
        .get(p.url("/api/v1/me"))
        .header("appKey", &script_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    for (body, want) in [
        (json!({"expires_at": 1000}), "past"),
        (json!({"expires_at": "tomorrow"}), "integer"),
        (json!({"expires_at": 1.5e12}), "integer"),
        (json!({}), "required"),
        (json!({"expires_at": null, "revoked": false}), "revoked"),
        (json!([1]), "object"),
        (json!({"expires_at": null, "expiresAt": null}), "once"),
    ] {
        let (status, msg) = error_of(
            admin(http.patch(p.url("/api/v1/appkeys/script")))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(msg.contains(want), "{body}: {msg}");
    }
    let (status, _) = error_of(
        admin(http.patch(p.url("/api/v1/appkeys/script")))
            .body("{nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, msg) = error_of(
        admin(http.patch(p.url("/api/v1/appkeys/nope")))
            .json(&json!({"expires_at": null}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(msg.contains("nope"), "{msg}");

    add_user(&p, "olga", "operator").await;
    let r = http
        .patch(p.url("/api/v1/appkeys/script"))
        .basic_auth("olga", Some("olga-password"))
        .json(&json!({"expires_at": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let log = p
        .platform
        .store()
        .audit_query(&platform::store::AuditFilter {
            kind: Some("appkey.updated".into()),
            ..platform::store::AuditFilter::newest(10)
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 4, "one line per successful change");
    assert_eq!(log[0].subject, "script");
    assert_eq!(log[0].detail, "expires_at=never");
    assert_eq!(log[1].detail, format!("expires_at={until}"));
    assert_eq!(log[3].detail, format!("expires_at={until}"));
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn audit_log_filters() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    let store = p.platform.store();
    for (kind, actor, subject, detail) in [
        ("session.ended", "alice", "Pump1/ssh", "{}"),
        ("session.ended", "bob", "Pump2/vnc", "{}"),
        ("session.opened", "alice", "Pump1/ssh", "Needle in here"),
        ("login", "alice", "alice", ""),
    ] {
        store.audit(kind, actor, subject, detail, "").await.unwrap();
    }
    let get = |query: &str| {
        let req = http
            .get(p.url(&format!("/api/v1/audit{query}")))
            .header("appKey", p.app_key.clone());
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let count = |v: &Value| v.as_array().map_or(usize::MAX, Vec::len);
    let (_, all) = get("?limit=1000").await;
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(count(&get("?kind=session.ended").await.1), 2);
    let (_, v) = get("?kind=session.*").await;
    assert_eq!(count(&v), 3);
    assert_eq!(v[0]["kind"], "session.opened");
    assert_eq!(count(&get("?kind=session.*&actor=alice").await.1), 2);
    assert_eq!(count(&get("?subject=Pump2%2Fvnc").await.1), 1);
    assert_eq!(count(&get("?q=needle").await.1), 1);
    assert_eq!(count(&get("?q=PUMP").await.1), 3);
    assert_eq!(count(&get("?kind=nothing").await.1), 0);
    let (_, page) = get("?limit=2&offset=1").await;
    assert_eq!(page.as_array().unwrap()[..], all.as_array().unwrap()[1..3]);
    let t = all[1]["time"].as_i64().unwrap();
    let (_, since) = get(&format!("?since={t}&limit=1000")).await;
    let want = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["time"].as_i64().unwrap() >= t)
        .count();
    assert_eq!(count(&since), want);
    let (_, until) = get(&format!("?until={t}&limit=1000")).await;
    assert_eq!(count(&until), count(&all) - want);

    for (query, param) in [
        ("?limit=0", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=10001", "limit"),
        ("?offset=-1", "offset"),
        ("?since=yesterday", "since"),
        ("?until=1.5", "until"),
        ("?since=10&until=5", "until"),
        ("?kind=ses*ion", "kind"),
        ("?kind=", "kind"),
        ("?actor=", "actor"),
        ("?limit=1&limit=2", "limit"),
        ("?color=red", "color"),
    ] {
        let (status, v) = get(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(&format!("`{param}`")), "{query}: {msg}");
    }
    add_user(&p, "olga", "operator").await;
    let r = http
        .get(p.url("/api/v1/audit"))
        .basic_auth("olga", Some("olga-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn put_star_writes_every_property_connected_or_not() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let http = p.http_client().unwrap();
    let put = |thing: &str, body: Value| {
        http.put(p.url(&format!("/Thingworx/Things/{thing}/Properties/*")))
            .header("appKey", p.app_key.clone())
            .json(&body)
            .send()
    };
    // disconnected: stored, one property per field, none called `*`
    let r = put("Pump2", json!({"Speed": 3, "Mode": "eco"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let names: Vec<String> = p
        .platform
        .store()
        .properties("Pump2")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["Mode", "Speed"]);
    // an InfoTable body works too
    let table = InfoTable::single_row([("Level", Primitive::Integer(4))]).to_json();
    let r = put("Pump2", table).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        p.platform.store().properties("Pump2").await.unwrap().len(),
        3
    );
    // not a property row: 400, nothing stored
    for body in [
        json!(5),
        json!("x"),
        json!({}),
        json!({"*": 1}),
        Value::Null,
    ] {
        let (status, msg) = error_of(put("Pump2", body.clone()).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!msg.is_empty());
    }
    assert_eq!(
        p.platform.store().properties("Pump2").await.unwrap().len(),
        3
    );

    // connected: one PUT Properties `*` to the edge with every field
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    e.set_handler(move |code, req| {
        let fields: Vec<String> = req
            .params
            .as_ref()
            .map(|t| t.shape.fields.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        record
            .lock()
            .unwrap()
            .push((code, req.target.clone(), fields));
        (Code::SUCCESS, None)
    });
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    let r = put("Pump1", json!({"a": 1, "b": true})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = error_of(put("Pump1", json!(7)).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let seen: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(code, _, _)| *code == Code::PUT)
        .cloned()
        .collect();
    assert_eq!(
        seen.len(),
        1,
        "the bad body never reached the edge: {seen:?}"
    );
    let (code, target, mut fields) = seen[0].clone();
    fields.sort();
    assert_eq!((code, target.as_str()), (Code::PUT, "*"));
    assert_eq!(fields, ["a", "b"]);
    assert!(
        p.platform
            .store()
            .properties("Pump1")
            .await
            .unwrap()
            .is_empty()
    );
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn public_url_and_session_history_with_a_real_session() {
    let db = support::db::TestDb::new(support::db::Kind::Sqlite)
        .await
        .unwrap();
    let p = support::platform::spawn(&db, |c| {
        c.public_url = Some("https://tether.example.com:9443/base".parse().unwrap());
    })
    .await;
    let http = p.http();
    let admin = |r: reqwest::RequestBuilder| {
        r.basic_auth(
            support::platform::ADMIN,
            Some(support::platform::ADMIN_PASSWORD),
        )
    };
    let r = admin(http.post(p.url("/api/v1/things")))
        .json(&json!({"name": "Gate", "template": "RemoteThingWithTunnels"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = admin(http.post(p.url("/api/v1/things/Gate/interfaces")))
        .json(&json!({"name": "ssh", "host": "127.0.0.1", "port": 22, "protocol": "ssh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    let server_urls = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = server_urls.clone();
    e.set_handler(move |_, req| {
        if req.target == "StartTunnel"
            && let Some(Primitive::String(u)) =
                req.params.as_ref().and_then(|t| t.value("server_url"))
        {
            record.lock().unwrap().push(u.clone());
        }
        (Code::SUCCESS, None)
    });
    assert_eq!(e.bind(&["Gate"]).await.unwrap().header.code, Code::SUCCESS);

    // the configured public URL is in the links and in StartTunnel
    let r = admin(http.post(p.url("/api/v1/sessions")))
        .json(&json!({"thing": "Gate", "interface": "ssh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let base = "tether.example.com:9443/base/remote-access/v1/sessions/";
    assert_eq!(
        created["client_url"].as_str().unwrap(),
        format!("wss://{base}{id}/client")
    );
    assert!(
        created["launch_url"]
            .as_str()
            .unwrap()
            .contains("platform=https%3A%2F%2Ftether.example.com%3A9443%2Fbase"),
        "{created}"
    );
    assert_eq!(
        server_urls.lock().unwrap().clone(),
        [format!("wss://{base}{id}/server")]
    );

    // the broker's /api/v1/sessions/{id} still answers next to /history
    let r = admin(http.get(p.url(&format!("/api/v1/sessions/{id}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let history = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap())
    };
    let (status, v) = history(admin(http.get(p.url("/api/v1/sessions/history")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!([]), "nothing ended yet");

    let r = admin(http.delete(p.url(&format!("/api/v1/sessions/{id}"))))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(
        wait_for(Duration::from_secs(5), || async {
            let (_, v) = history(admin(http.get(p.url("/api/v1/sessions/history")))).await;
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await
    );
    let (_, v) = history(admin(
        http.get(p.url("/api/v1/sessions/history?thing=Gate")),
    ))
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let rec = &v[0];
    assert_eq!(rec["id"], json!(id));
    assert_eq!(
        (&rec["user"], &rec["thing"], &rec["interface"]),
        (&json!("admin"), &json!("Gate"), &json!("ssh"))
    );
    assert!(
        rec["ended"].is_string() && rec["reason"].is_string(),
        "{rec}"
    );
    let (_, v) = history(admin(
        http.get(p.url("/api/v1/sessions/history?thing=Other")),
    ))
    .await;
    assert_eq!(v, json!([]));

    // operators see their own only, viewers nothing
    let store = p.platform.store();
    let hash = platform::secret::hash_password("olga-password").unwrap();
    store
        .create_user("olga", &hash, Role::Operator)
        .await
        .unwrap();
    store.create_user("vic", &hash, Role::Viewer).await.unwrap();
    let mut own = rec.clone();
    own["id"] = json!("olga-session");
    own["user"] = json!("olga");
    store
        .audit("session.ended", "olga", "Gate/ssh", &own.to_string(), "")
        .await
        .unwrap();
    store
        .audit("session.ended", "olga", "Gate/ssh", "not json", "")
        .await
        .unwrap();
    let olga = |r: reqwest::RequestBuilder| r.basic_auth("olga", Some("olga-password"));
    let (status, v) = history(olga(http.get(p.url("/api/v1/sessions/history")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!([own]),
        "own sessions only; an unreadable entry is skipped"
    );
    let (status, v) = history(olga(http.get(p.url("/api/v1/sessions/history?user=olga")))).await;
    assert_eq!((status, v.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (status, _) = history(olga(http.get(p.url("/api/v1/sessions/history?user=admin")))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, v) = history(admin(http.get(p.url("/api/v1/sessions/history")))).await;
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "administrators see everyone's"
    );
    assert_eq!(v[0]["user"], "olga", "newest first");
    let (_, v) = history(admin(
        http.get(p.url("/api/v1/sessions/history?user=admin&limit=1")),
    ))
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (status, _) = history(
        http.get(p.url("/api/v1/sessions/history"))
            .basic_auth("vic", Some("olga-password")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = history(admin(http.get(p.url("/api/v1/sessions/history?limit=0")))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("`limit`"));
    p.shutdown().await;
}
