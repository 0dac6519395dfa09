//! AlwaysOn endpoint tests: real TLS websockets, a real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alwayson::{
    BaseType, Characteristic, Code, EntityType, FieldDef, InfoTable, Message, Primitive,
    PropertyValue, RequestBody,
};
use platform::model::{NewAppKey, NewThing, Template};
use test_support::{Event, PlatformOptions, TestEdge, spawn_platform, wait_for};

const T: Duration = Duration::from_secs(5);

fn reason(m: &Message) -> String {
    match &m.body {
        alwayson::Body::Response(b) => b.reason.clone().unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

async fn is_connected(p: &test_support::PlatformHandle, thing: &str) -> bool {
    p.platform
        .store()
        .thing(thing)
        .await
        .unwrap()
        .map(|t| t.is_connected)
        .unwrap_or(false)
}

#[tokio::test]
async fn auth_succeeds_with_and_without_header() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let mut with = TestEdge::connect(&p.ws_url, p.client_tls.clone(), Some(&p.app_key))
        .await
        .unwrap();
    let r = with.auth_app_key(&p.app_key).await.unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    assert_ne!(r.header.session_id, alwayson::SESSION_NONE);
    let mut without = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let r2 = without.auth_app_key(&p.app_key).await.unwrap();
    assert_eq!(r2.header.code, Code::SUCCESS);
    assert_ne!(
        r.header.session_id, r2.header.session_id,
        "fresh session ids"
    );
    // user name + password claims (§11)
    let mut user = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let r3 = user
        .auth_credentials(&p.admin_user, &p.admin_password)
        .await
        .unwrap();
    assert_eq!(r3.header.code, Code::SUCCESS);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn auth_failures_are_refused_with_a_reason_and_closed() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let store = p.platform.store();
    let expired = platform::secret::generate_app_key();
    store
        .create_app_key(
            &NewAppKey {
                name: "old".into(),
                user: "admin".into(),
                expires_at: Some(1),
                ..Default::default()
            },
            &platform::secret::hash_app_key(expired.expose()),
        )
        .await
        .unwrap();
    let elsewhere = platform::secret::generate_app_key();
    store
        .create_app_key(
            &NewAppKey {
                name: "far".into(),
                user: "admin".into(),
                allowed_addresses: vec!["10.0.0.0/8".into()],
                ..Default::default()
            },
            &platform::secret::hash_app_key(elsewhere.expose()),
        )
        .await
        .unwrap();
    let revoked = p.create_app_key("gone", "admin", &[]).await.unwrap();
    store.revoke_app_key("gone").await.unwrap();

    for (key, want) in [
        ("tk_wrong", "invalid app key"),
        (expired.expose(), "expired"),
        (elsewhere.expose(), "not allowed from this client address"),
        (revoked.as_str(), "revoked"),
    ] {
        let mut e = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
            .await
            .unwrap();
        let r = e.auth_app_key(key).await.unwrap();
        assert_eq!(r.header.code, Code::UNAUTHORIZED, "{want}");
        assert!(reason(&r).contains(want), "{} vs {want}", reason(&r));
        let close = e.wait_closed(T).await.unwrap().unwrap();
        assert_eq!(close.0, 1008);
    }
    let mut e = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let r = e.auth_credentials("admin", "wrong password").await.unwrap();
    assert_eq!(r.header.code, Code::UNAUTHORIZED);
    assert!(reason(&r).contains("user name or password"));

    // BIND before AUTH
    let e = TestEdge::connect(&p.ws_url, p.client_tls.clone(), Some(&p.app_key))
        .await
        .unwrap();
    let r = e.bind(&["Pump1"]).await.unwrap();
    assert_eq!(r.header.code, Code::UNAUTHORIZED);
    assert!(reason(&r).contains("AUTH must be the first message"));
    assert!(!is_connected(&p, "Pump1").await);

    let audit = store.audit_log(50).await.unwrap();
    assert!(audit.iter().filter(|a| a.kind == "auth.failure").count() >= 5);
    assert!(
        audit.iter().all(|a| !a.detail.contains("tk_")),
        "no secrets in the audit log"
    );
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn auth_deadline_and_rate_limit() {
    let p = spawn_platform(PlatformOptions {
        auth_timeout: Duration::from_millis(200),
        auth_failures_per_window: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut silent = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let (code, why) = silent.wait_closed(T).await.unwrap().unwrap();
    assert_eq!(code, 1008);
    assert!(why.contains("no AUTH within 200 ms"), "{why}");

    for _ in 0..2 {
        let mut e = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
            .await
            .unwrap();
        assert_eq!(
            e.auth_app_key("tk_bad").await.unwrap().header.code,
            Code::UNAUTHORIZED
        );
    }
    // now even the right key is refused from this address
    let mut e = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let r = e.auth_app_key(&p.app_key).await.unwrap();
    assert_eq!(r.header.code, Code::UNAUTHORIZED);
    assert!(reason(&r).contains("too many failed"), "{}", reason(&r));
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let p = spawn_platform(PlatformOptions {
        max_message_size: 4096,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    // AUTH twice
    let r = e.auth_app_key(&p.app_key).await.unwrap();
    assert_eq!(r.header.code, Code::BAD_REQUEST);
    assert!(reason(&r).contains("already authenticated"));
    // unknown code with a readable header: answered with the same request id
    let mut raw = vec![1u8, 0x30, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    raw.extend_from_slice(&[1, 2, 3]);
    e.send_raw(raw).await.unwrap();
    match e.next_event(T).await {
        Some(Event::Unsolicited(m)) => {
            assert_eq!(m.header.request_id, 99);
            assert_eq!(m.header.code, Code::BAD_REQUEST);
            assert!(
                reason(&m).contains("unknown message code"),
                "{}",
                reason(&m)
            );
        }
        other => panic!("{other:?}"),
    }
    // a request for a thing not bound on this socket
    let body = RequestBody::new(EntityType::THING, "Pump1", Characteristic::PROPERTIES, "x");
    let r = e
        .request(&Message::request(
            Code::GET,
            e.next_request_id(),
            e.session_id(),
            body,
        ))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::FORBIDDEN);
    // the socket still works
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    // garbage shorter than a header closes with 1002
    e.send_raw(vec![1u8, 2, 3]).await.unwrap();
    let (code, why) = e.wait_closed(T).await.unwrap().unwrap();
    assert_eq!(code, 1002, "{why}");
    assert!(wait_for(T, || async { !is_connected(&p, "Pump1").await }).await);

    // text frames
    let mut e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    e.send_text("hello").await.unwrap();
    assert_eq!(e.wait_closed(T).await.unwrap().unwrap().0, 1003);

    // oversize websocket message
    let mut e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    e.send_raw(vec![1u8; 64 * 1024]).await.unwrap();
    let closed = e.wait_closed(T).await.unwrap();
    if let Some((code, _)) = closed {
        assert_eq!(code, 1009);
    }

    // oversize AlwaysOn message in chunks: refused with 0x8D
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    let big = "x".repeat(20_000);
    let values = [PropertyValue {
        name: "blob".into(),
        value: Primitive::String(big),
        time: 1,
        quality: "GOOD".into(),
    }];
    let body = RequestBody::new(
        EntityType::THING,
        "Pump1",
        Characteristic::SERVICES,
        "UpdateSubscribedPropertyValues",
    )
    .with_params(InfoTable::property_push(&values));
    let msg = Message::request(Code::POST, e.next_request_id(), e.session_id(), body);
    let r = e.request_chunked(&msg, 2048).await.unwrap();
    assert_eq!(r.header.code, Code::ENTITY_TOO_LARGE);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn bind_unbind_first_in_wins_and_disconnect() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let mut a = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    let r = a.bind(&["Pump1"]).await.unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    assert!(is_connected(&p, "Pump1").await);
    let t = p.platform.store().thing("Pump1").await.unwrap().unwrap();
    assert!(t.last_connection.is_some());
    // NotifyPropertyUpdate follows the bind
    match a.next_event(T).await {
        Some(Event::Request(m)) => match m.body {
            alwayson::Body::Request(b) => {
                assert_eq!(m.header.code, Code::POST);
                assert_eq!(
                    (b.entity_name.as_str(), b.target.as_str()),
                    ("Pump1", "NotifyPropertyUpdate")
                );
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    // first-in-wins
    let b = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    let r = b.bind(&["Pump1"]).await.unwrap();
    assert_eq!(r.header.code, Code::FORBIDDEN);
    assert!(reason(&r).contains("already bound"));
    // unknown thing
    let r = b.bind(&["NoSuchThing"]).await.unwrap();
    assert_eq!(r.header.code, Code::NOT_FOUND);
    // unbind, then B may bind
    assert_eq!(
        a.unbind(&["Pump1"]).await.unwrap().header.code,
        Code::SUCCESS
    );
    assert!(!is_connected(&p, "Pump1").await);
    assert_eq!(b.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    assert!(is_connected(&p, "Pump1").await);
    // closing B's socket disconnects the thing
    b.close().await.unwrap();
    assert!(wait_for(T, || async { !is_connected(&p, "Pump1").await }).await);
    assert!(p.platform.registry().binding("Pump1").is_none());
    let audit = p.platform.store().audit_log(50).await.unwrap();
    assert!(audit.iter().any(|e| e.kind == "bind.refused"));
    assert!(
        audit
            .iter()
            .any(|e| e.kind == "unbind" && e.detail == "connection closed")
    );
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn gateway_identifier_and_key_patterns() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let store = p.platform.store();
    store
        .create_thing(&NewThing {
            name: "Sensor7".into(),
            identifier: Some("SN0012".into()),
            template: Template::RemoteThing,
            description: String::new(),
        })
        .await
        .unwrap();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    let r = e.bind_gateway("GW1", &["GW1", "*SN0012"]).await.unwrap();
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    let gw = store.thing("GW1").await.unwrap().unwrap();
    assert_eq!(gw.template, Template::EmsGateway);
    assert!(gw.ephemeral && gw.is_connected);
    assert!(is_connected(&p, "Sensor7").await);
    // requests to an identifier-bound thing use the identifier
    e.set_handler(|_, req| {
        let v = Primitive::String(req.entity_name.clone());
        (Code::SUCCESS, Some(InfoTable::single_row([("seen", v)])))
    });
    let a = p
        .platform
        .request(
            "Sensor7",
            Code::GET,
            Characteristic::PROPERTIES,
            "seen",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        a.body.content.unwrap().value("seen"),
        Some(&Primitive::String("*SN0012".into()))
    );
    e.close().await.unwrap();
    assert!(
        wait_for(T, || async { store.thing("GW1").await.unwrap().is_none() }).await,
        "ephemeral gateway removed"
    );

    // a key limited to Pump1 may not bind Pump2
    let key = p
        .create_app_key("only-pump1", "admin", &["Pump1"])
        .await
        .unwrap();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &key)
        .await
        .unwrap();
    let r = e.bind(&["Pump1", "Pump2"]).await.unwrap();
    assert_eq!(r.header.code, Code::FORBIDDEN);
    assert!(reason(&r).contains("not allowed to bind `Pump2`"));
    assert!(is_connected(&p, "Pump1").await);
    assert!(!is_connected(&p, "Pump2").await);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn property_pushes_are_stored_in_every_form() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    // C SDK order (name, value, time, quality)
    let v = [PropertyValue {
        name: "Temp".into(),
        value: Primitive::Number(21.5),
        time: 1000,
        quality: "GOOD".into(),
    }];
    assert_eq!(
        e.push_properties("Pump1", &v).await.unwrap().header.code,
        Code::SUCCESS
    );
    // EMS order (value, time, name, quality)
    let mut inner = InfoTable::new(vec![
        FieldDef::new("value", BaseType::Variant),
        FieldDef::new("time", BaseType::DateTime),
        FieldDef::new("name", BaseType::String),
        FieldDef::new("quality", BaseType::String),
    ]);
    inner.rows.push(vec![
        Primitive::variant(Primitive::Boolean(true)),
        Primitive::DateTime(2000),
        Primitive::String("Running".into()),
        Primitive::String("UNKNOWN".into()),
    ]);
    let mut outer = InfoTable::new(vec![FieldDef::new("values", BaseType::InfoTable)]);
    outer
        .rows
        .push(vec![Primitive::InfoTable(Box::new(inner.clone()))]);
    let body = RequestBody::new(
        EntityType::THING,
        "Pump1",
        Characteristic::SERVICES,
        "UpdateSubscribedPropertyValues",
    )
    .with_params(outer);
    let r = e
        .request(&Message::request(
            Code::POST,
            e.next_request_id(),
            e.session_id(),
            body,
        ))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    // the _content_ JSON form
    let mut json_inner = inner.clone();
    json_inner.rows[0] = vec![
        Primitive::variant(Primitive::String("ok".into())),
        Primitive::DateTime(3000),
        Primitive::String("Status".into()),
        Primitive::String("GOOD".into()),
    ];
    let content = InfoTable::content(&serde_json::json!({ "values": json_inner.to_json() }));
    let body = RequestBody::new(
        EntityType::THING,
        "Pump1",
        Characteristic::SERVICES,
        "UpdateSubscribedPropertyValues",
    )
    .with_params(content);
    let r = e
        .request(&Message::request(
            Code::POST,
            e.next_request_id(),
            e.session_id(),
            body,
        ))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));

    let props = p.platform.store().properties("Pump1").await.unwrap();
    let get = |n: &str| props.iter().find(|v| v.name == n).cloned().unwrap();
    assert_eq!(
        (
            get("Temp").value,
            get("Temp").time,
            get("Temp").base_type.as_str()
        ),
        (serde_json::json!(21.5), 1000, "NUMBER")
    );
    assert_eq!(
        (get("Running").value, get("Running").quality.as_str()),
        (serde_json::json!(true), "UNKNOWN")
    );
    assert_eq!(
        (get("Status").value, get("Status").time),
        (serde_json::json!("ok"), 3000)
    );

    // GetPropertySubscriptions lists the known properties
    let body = RequestBody::new(
        EntityType::THING,
        "Pump1",
        Characteristic::SERVICES,
        "GetPropertySubscriptions",
    )
    .with_params(InfoTable::content(&serde_json::json!({})));
    let r = e
        .request(&Message::request(
            Code::POST,
            e.next_request_id(),
            e.session_id(),
            body,
        ))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    match r.body {
        alwayson::Body::Response(b) => {
            let t = b.content.unwrap();
            assert!(
                t.shape.index_of("edgeName").is_some() && t.shape.index_of("pushType").is_some()
            );
            assert_eq!(t.rows.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    // a push for a thing not bound here is refused
    let r = e.push_properties("Pump2", &v).await.unwrap();
    assert_eq!(r.header.code, Code::FORBIDDEN);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn pings_are_echoed_and_idle_sockets_closed() {
    let p = spawn_platform(PlatformOptions {
        idle_timeout: Duration::from_millis(400),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    e.ping(b"12:34:56").await.unwrap();
    e.ping(b"12:34:57").await.unwrap();
    // exactly one pong per ping, each echoing its payload, in order
    let mut pongs = Vec::new();
    while pongs.len() < 2 {
        match e.next_event(T).await {
            Some(Event::Pong(payload)) => pongs.push(payload),
            Some(Event::Request(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(&pongs[0][..], b"12:34:56");
    assert_eq!(&pongs[1][..], b"12:34:57");
    let (code, why) = e.wait_closed(T).await.unwrap().unwrap();
    assert_eq!(code, 1000);
    assert!(why.contains("idle"), "{why}");
    assert!(wait_for(T, || async { !is_connected(&p, "Pump1").await }).await);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn multipart_both_directions() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    // edge -> platform, chunked
    let big = "y".repeat(30_000);
    let v = [PropertyValue {
        name: "Log".into(),
        value: Primitive::String(big.clone()),
        time: 5,
        quality: "GOOD".into(),
    }];
    let body = RequestBody::new(
        EntityType::THING,
        "Pump1",
        Characteristic::SERVICES,
        "UpdateSubscribedPropertyValues",
    )
    .with_params(InfoTable::property_push(&v));
    let r = e
        .request_chunked(
            &Message::request(Code::POST, e.next_request_id(), e.session_id(), body),
            8192,
        )
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    let props = p.platform.store().properties("Pump1").await.unwrap();
    assert_eq!(props[0].value, serde_json::json!(big));
    // platform -> edge, chunked request and chunked answer
    e.set_handler(|_, req| {
        let n = req
            .params
            .as_ref()
            .and_then(|t| t.value("data"))
            .and_then(|p| p.as_str())
            .map_or(0, str::len);
        (
            Code::SUCCESS,
            Some(InfoTable::single_row([(
                "result",
                Primitive::String("z".repeat(n)),
            )])),
        )
    });
    let params = InfoTable::single_row([("data", Primitive::String("q".repeat(50_000)))]);
    let a = p
        .platform
        .request(
            "Pump1",
            Code::POST,
            Characteristic::SERVICES,
            "Echo",
            Some(params),
        )
        .await
        .unwrap();
    assert_eq!(a.code, Code::SUCCESS);
    assert_eq!(
        a.body
            .content
            .unwrap()
            .value("result")
            .and_then(|p| p.as_str())
            .map(str::len),
        Some(50_000)
    );
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_edges_with_1001() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let mut e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert_eq!(e.bind(&["Pump1"]).await.unwrap().header.code, Code::SUCCESS);
    let store = p.platform.store().clone();
    p.shutdown().await.unwrap();
    let (code, why) = e.wait_closed(T).await.unwrap().unwrap();
    assert_eq!(code, 1001);
    assert!(why.contains("shutting down"));
    drop(store);
}

#[tokio::test]
async fn pong_comes_promptly() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let mut e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    // nothing else is written to the socket, so the pong must be flushed on its own
    let t0 = std::time::Instant::now();
    e.ping(b"ping").await.unwrap();
    match e.next_event(T).await {
        Some(Event::Pong(payload)) => assert_eq!(&payload[..], b"ping"),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    p.shutdown().await.unwrap();
}
