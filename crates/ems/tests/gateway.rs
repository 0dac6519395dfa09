//! Gateway forwarding to a fake script resource (an axum server), keep-alive
//! unbind/re-bind, and the local REST translation, against the fake platform.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use alwayson::{
    BaseType, Body, Characteristic, Code, EntityType, FieldDef, InfoTable, Message, Primitive,
    RequestBody,
};
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use common::*;
use serde_json::Value;

type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A fake LSR answering like the captured one (run2-http-ems-lsr.txt).
async fn lsr(seen: Seen, method: Method, uri: Uri, body: Bytes) -> (StatusCode, String) {
    let path = uri.path().to_owned();
    seen.lock().unwrap().push((
        method.to_string(),
        path.clone(),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    match (method.as_str(), path.as_str()) {
        ("GET", "/scripts/Thingworx/Things/LsrThing/Properties/Temperature") => (
            StatusCode::OK,
            r#"{"rows":[{"time":1795240634000,"Temperature":24}],"dataShape":{"fieldDefinitions":{"time":{"aspects":[],"baseType":"DATETIME","name":"time","description":""},"Temperature":{"aspects":[],"baseType":"NUMBER","name":"Temperature","description":""}}}}"#.into(),
        ),
        ("POST", "/scripts/Thingworx/Things/LsrThing/Services/Add") => (
            StatusCode::OK,
            r#"{"rows":[{"result":5.5}],"dataShape":{"fieldDefinitions":{"result":{"aspects":{"persist":false},"baseType":"NUMBER","name":"result","description":""}}}}"#.into(),
        ),
        ("POST", "/scripts/Thingworx/Things/LsrThing/Services/Big") => {
            let big = "x".repeat(20_000);
            (StatusCode::OK, format!(r#"{{"rows":[{{"result":"{big}"}}],"dataShape":{{"fieldDefinitions":{{"result":{{"name":"result","baseType":"STRING"}}}}}}}}"#))
        }
        ("POST", "/scripts/Thingworx/Things/LsrThing/Services/Echo") => {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let s = v["rows"][0]["s"].as_str().unwrap_or("").to_owned();
            (StatusCode::OK, serde_json::json!({"rows": [{"result": s}], "dataShape": {"fieldDefinitions": {"result": {"name": "result", "baseType": "STRING"}}}}).to_string())
        }
        (_, p) => (StatusCode::NOT_FOUND, format!("Property '{}' not found", p.rsplit('/').next().unwrap_or(""))),
    }
}

async fn start_lsr(addr: SocketAddr, seen: Seen) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let app = Router::new().fallback(move |m: Method, u: Uri, b: Bytes| lsr(seen.clone(), m, u, b));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn request(
    id: u32,
    code: Code,
    chr: Characteristic,
    target: &str,
    params: Option<InfoTable>,
) -> Message {
    let mut body = RequestBody::new(EntityType::THING, "LsrThing", chr, target);
    body.params = params;
    Message {
        header: alwayson::Header {
            code,
            request_id: id,
            endpoint_id: 0,
            session_id: SESSION,
        },
        body: Body::Request(body),
    }
}

fn content(m: &Message) -> Option<&InfoTable> {
    match &m.body {
        Body::Response(r) => {
            assert!(
                r.reason.is_none(),
                "no reason string, as the real EMS (§12.6)"
            );
            r.content.as_ref()
        }
        _ => panic!("not a response"),
    }
}

#[tokio::test]
async fn platform_requests_are_forwarded_to_the_script_resource() {
    let mut fake = Fake::start(Mode::Up).await;
    let ems = Ems::start(&config_json(
        fake.addr,
        r#""auto_bind": [{"name": "EmsGateway", "gateway": true}]"#,
    ))
    .await;
    let (conn, _, _) = fake.expect_msg("BIND", Code::BIND).await;

    // A script resource registers its thing through the local REST, as the LSR does.
    let seen: Seen = Arc::default();
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lsr_addr = probe.local_addr().unwrap();
    drop(probe);
    let lsr_task = start_lsr(lsr_addr, seen.clone()).await;
    let http = reqwest::Client::new();
    let body = format!(
        r#"{{"keepalive":100,"port":"{}","timeout":15000,"host":"127.0.0.1","proto":"http","name":"LsrThing","path":"/scripts/Thingworx"}}"#,
        lsr_addr.port()
    );
    let r = http
        .post(ems.url("/Thingworx/Things/LocalEms/Services/AddEdgeThing"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, _, bind) = fake.expect_msg("BIND LsrThing", Code::BIND).await;
    assert_eq!(
        bind_names(&bind),
        (
            Some(("EmsGateway".into(), "EMSGateway".into())),
            vec!["LsrThing".to_string()]
        )
    );

    // GET property → forwarded; the reply goes by the DataShape (time + Temperature).
    fake.send(
        conn,
        request(
            1001,
            Code::GET,
            Characteristic::PROPERTIES,
            "Temperature",
            None,
        ),
    );
    let r = fake.expect_response(1001).await;
    assert_eq!(r.header.code, Code::SUCCESS);
    let t = content(&r).unwrap();
    assert_eq!(t.shape.fields[0].base_type, BaseType::DateTime);
    assert_eq!(
        t.value("Temperature").and_then(Primitive::as_f64),
        Some(24.0)
    );

    // POST service with typed params → JSON rows first with `datashape` to the resource.
    let mut params = InfoTable::new(vec![
        FieldDef::new("p1", BaseType::Number),
        FieldDef::new("p2", BaseType::Number),
    ]);
    params
        .rows
        .push(vec![Primitive::Number(2.0), Primitive::Number(3.5)]);
    fake.send(
        conn,
        request(
            1002,
            Code::POST,
            Characteristic::SERVICES,
            "Add",
            Some(params),
        ),
    );
    let r = fake.expect_response(1002).await;
    assert_eq!(
        content(&r)
            .unwrap()
            .value("result")
            .and_then(Primitive::as_f64),
        Some(5.5)
    );
    let sent = seen
        .lock()
        .unwrap()
        .iter()
        .find(|(_, p, _)| p.ends_with("/Add"))
        .cloned()
        .unwrap();
    assert!(sent.2.starts_with(r#"{"rows":[{"p1":2"#), "{}", sent.2);
    let v: Value = serde_json::from_str(&sent.2).unwrap();
    assert_eq!(
        v["datashape"]["fieldDefinitions"]["p2"]["baseType"],
        "NUMBER"
    );

    // 404 from the resource → 0x84 with {error: STRING} (§12.6).
    fake.send(
        conn,
        request(
            1003,
            Code::GET,
            Characteristic::PROPERTIES,
            "NoSuchProp",
            None,
        ),
    );
    let r = fake.expect_response(1003).await;
    assert_eq!(r.header.code, Code::NOT_FOUND);
    let t = content(&r).unwrap();
    assert_eq!(t.shape.fields[0].name, "error");
    assert_eq!(
        t.value("error").and_then(Primitive::as_str),
        Some("Property 'NoSuchProp' not found")
    );

    // The resource stops answering its keep-alive → UNBIND; requests get 0xA4 at once.
    lsr_task.abort();
    let _ = lsr_task.await;
    let (_, _, unbind) = fake
        .expect_msg("UNBIND after keep-alive failure", Code::UNBIND)
        .await;
    assert_eq!(bind_names(&unbind).1, vec!["LsrThing".to_string()]);
    fake.send(
        conn,
        request(
            1004,
            Code::GET,
            Characteristic::PROPERTIES,
            "Temperature",
            None,
        ),
    );
    assert_eq!(
        fake.expect_response(1004).await.header.code,
        Code::GATEWAY_TIMEOUT
    );

    // It answers again → BIND again.
    let _lsr = start_lsr(lsr_addr, seen.clone()).await;
    let (_, _, rebind) = fake
        .expect_msg("re-BIND after keep-alive success", Code::BIND)
        .await;
    assert_eq!(bind_names(&rebind).1, vec!["LsrThing".to_string()]);

    // RemoveEdgeThing → UNBIND.
    let r = http
        .post(ems.url("/Thingworx/Things/LocalEms/Services/RemoveEdgeThing"))
        .body(r#"{"name":"LsrThing"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    fake.expect_msg("UNBIND after RemoveEdgeThing", Code::UNBIND)
        .await;
    ems.stop().await;
}

/// §12.13: an auto_bind thing whose endpoint is unreachable answers 0xA4 at once.
#[tokio::test]
async fn unreachable_auto_bind_endpoint_answers_gateway_timeout() {
    let mut fake = Fake::start(Mode::Up).await;
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = probe.local_addr().unwrap().port();
    drop(probe);
    let cfg = config_json(
        fake.addr,
        &format!(
            r#""auto_bind": [{{"name": "LsrThing", "host": "127.0.0.1", "port": {dead_port}}}]"#
        ),
    );
    let ems = Ems::start(&cfg).await;
    let (conn, _, bind) = fake.expect_msg("BIND", Code::BIND).await;
    assert_eq!(bind_names(&bind), (None, vec!["LsrThing".to_string()]));
    let started = std::time::Instant::now();
    fake.send(
        conn,
        request(1, Code::GET, Characteristic::PROPERTIES, "Temp", None),
    );
    assert_eq!(
        fake.expect_response(1).await.header.code,
        Code::GATEWAY_TIMEOUT
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    ems.stop().await;
}

/// run1-http-rest.txt: local REST → AlwaysOn (`_content_` JSON), answers as JSON rows first.
#[tokio::test]
async fn local_rest_translates_to_alwayson() {
    let mut fake = Fake::start(Mode::Up).await;
    let ems = Ems::start(&config_json(fake.addr, r#""auto_bind": [{"name": "EmsGateway", "gateway": true}, {"name": "PlainThing", "port": 1}]"#)).await;
    fake.expect_msg("BIND", Code::BIND).await;
    let http = reqwest::Client::new();
    let url = |p: &str| ems.url(p);

    let r = http
        .get(url("/Thingworx/Things/LocalEms/Properties/isConnected"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"rows":[{"isConnected":true}],"datashape":{"fieldDefinitions":{"isConnected":{"name":"isConnected","description":"","baseType":"BOOLEAN","aspects":{}}}}}"#
    );

    let r = http
        .put(url("/Thingworx/Things/PlainThing/Properties/Temp"))
        .body(r#"{"Temp": 22.5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{}");
    let (_, _, put) = fake.expect_msg("PUT", Code::PUT).await;
    let Body::Request(b) = &put.body else {
        panic!()
    };
    assert_eq!(
        (b.entity_name.as_str(), b.characteristic, b.target.as_str()),
        ("PlainThing", Characteristic::PROPERTIES, "Temp")
    );
    let p = b.params.as_ref().unwrap();
    assert_eq!(p.shape.fields[0].name, "_content_");
    assert_eq!(p.shape.fields[0].base_type, BaseType::Json);
    assert_eq!(p.content_json().unwrap()["Temp"], 22.5);

    let r = http
        .post(url("/Thingworx/Things/PlainThing/Services/DoIt"))
        .body(r#"{"p1": 1, "s": "hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    let (_, _, post) = fake.expect_msg("POST", Code::POST).await;
    let Body::Request(b) = &post.body else {
        panic!()
    };
    assert_eq!(
        b.params.as_ref().unwrap().content_json().unwrap(),
        serde_json::json!({"p1": 1, "s": "hi"})
    );

    // A platform answer with a table comes back as JSON; an error as its status and text.
    let table = InfoTable::single_row([("Temp", Primitive::Number(21.0))]);
    fake.replies
        .lock()
        .unwrap()
        .insert("Temp".into(), (Code::SUCCESS, Some(table)));
    let r = http
        .get(url("/Thingworx/Things/PlainThing/Properties/Temp"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["Temp"], 21.0);
    fake.replies.lock().unwrap().insert(
        "Missing".into(),
        (
            Code::NOT_FOUND,
            Some(InfoTable::single_row([(
                "error",
                Primitive::String("no such property".into()),
            )])),
        ),
    );
    let r = http
        .get(url("/Thingworx/Things/PlainThing/Properties/Missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "no such property");

    // Typed property push (UpdateSubscribedPropertyValues) is sent as {values: INFOTABLE}.
    let push = r#"{"dataShape":{"fieldDefinitions":{"values":{"aspects":[],"name":"values","baseType":"INFOTABLE"}}},"rows":[{"values":{"dataShape":{"fieldDefinitions":{"value":{"aspects":[],"name":"value","baseType":"VARIANT"},"time":{"aspects":[],"name":"time","baseType":"DATETIME"},"name":{"aspects":[],"name":"name","baseType":"STRING"},"quality":{"aspects":[],"name":"quality","baseType":"STRING"}}},"rows":[{"value":{"baseType":"NUMBER","value":22},"name":"Temperature","time":1795240634000,"quality":"GOOD"}]}}]}"#;
    let r = http
        .post(url(
            "/Thingworx/Things/PlainThing/Services/UpdateSubscribedPropertyValues",
        ))
        .body(push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, _, m) = fake.expect_msg("push", Code::POST).await;
    let Body::Request(b) = &m.body else { panic!() };
    let p = b.params.as_ref().unwrap();
    assert_eq!(p.shape.fields[0].name, "values");
    let pv = p.property_values().unwrap();
    assert_eq!(
        (pv[0].name.as_str(), pv[0].value.as_f64(), pv[0].time),
        ("Temperature", Some(22.0), 1795240634000)
    );

    // LocalEms services.
    let r = http
        .post(url("/Thingworx/Things/LocalEms/Services/HasEdgeThing"))
        .body(r#"{"name":"PlainThing"}"#)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["result"], true);
    let r = http
        .post(url("/Thingworx/Things/LocalEms/Services/HasEdgeThing"))
        .body(r#"{"name":"Other"}"#)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["result"], false);
    let r = http
        .post(url("/Thingworx/Things/LocalEms/Services/GetEdgeThings"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    let r = http
        .post(url("/Thingworx/Things/LocalEms/Services/Restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    let r = http
        .post(url("/Thingworx/Things/PlainThing/Services/DoIt"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    ems.stop().await;
}

#[tokio::test]
async fn local_rest_basic_auth() {
    let fake = Fake::start(Mode::Up).await;
    let cfg = config_json(
        fake.addr,
        r#""http_server": {"authenticate": true, "user": "lsr", "password": "pw"}"#,
    );
    let ems = Ems::start(&cfg).await;
    let http = reqwest::Client::new();
    let url = ems.url("/Thingworx/Things/LocalEms/Properties/isConnected");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&url)
            .basic_auth("lsr", Some("nope"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(&url)
            .basic_auth("lsr", Some("pw"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    ems.stop().await;
}

/// §12.14: multipart requests from the platform are accepted, large answers go back multipart.
#[tokio::test]
async fn multipart_both_ways() {
    let mut fake = Fake::start(Mode::Up).await;
    let seen: Seen = Arc::default();
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lsr_addr = probe.local_addr().unwrap();
    drop(probe);
    let _lsr = start_lsr(lsr_addr, seen.clone()).await;
    let cfg = config_json(
        fake.addr,
        &format!(
            r#""auto_bind": [{{"name": "LsrThing", "host": "127.0.0.1", "port": {}, "path": "/scripts/Thingworx"}}]"#,
            lsr_addr.port()
        ),
    );
    let ems = Ems::start(&cfg).await;
    let (conn, _, _) = fake.expect_msg("BIND", Code::BIND).await;

    fake.send(
        conn,
        request(7, Code::POST, Characteristic::SERVICES, "Big", None),
    );
    let (raw, r) = fake
        .expect("multipart answer", |ev| match ev {
            Ev::Msg { raw, msg, .. } if msg.header.request_id == 7 => {
                Some((raw.clone(), msg.clone()))
            }
            _ => None,
        })
        .await;
    assert_eq!(raw[14], 1, "multipart marker");
    assert_eq!(
        u16::from_be_bytes([raw[19], raw[20]]),
        8192,
        "chunkSize field = configured size"
    );
    assert!(raw.len() <= 8192);
    assert_eq!(
        content(&r)
            .unwrap()
            .value("result")
            .and_then(Primitive::as_str)
            .map(str::len),
        Some(20_000)
    );

    let long = "é".repeat(6000); // 12 000 bytes: the platform sends it in two chunks
    let params = InfoTable::single_row([("s", Primitive::String(long.clone()))]);
    fake.send(
        conn,
        request(
            8,
            Code::POST,
            Characteristic::SERVICES,
            "Echo",
            Some(params),
        ),
    );
    let r = fake.expect_response(8).await;
    assert_eq!(
        content(&r)
            .unwrap()
            .value("result")
            .and_then(Primitive::as_str),
        Some(long.as_str())
    );
    ems.stop().await;
}

/// `http_server.ssl` with `use_default_certificate`: HTTPS with a generated certificate.
#[tokio::test]
async fn local_rest_over_tls_with_the_default_certificate() {
    let fake = Fake::start(Mode::Up).await;
    let cfg = config_json(
        fake.addr,
        r#""http_server": {"ssl": true, "use_default_certificate": true}"#,
    );
    let ems = Ems::start(&cfg).await;
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!(
        "https://{}/Thingworx/Things/LocalEms/Properties/isConnected",
        ems.rest
    );
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let plain = reqwest::Client::new()
        .get(format!(
            "http://{}/Thingworx/Things/LocalEms/Properties/isConnected",
            ems.rest
        ))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "plain HTTP is not served"
    );
    ems.stop().await;
}
