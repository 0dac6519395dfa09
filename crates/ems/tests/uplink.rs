//! The AlwaysOn client against a fake platform on a real loopback websocket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use alwayson::{Body, Characteristic, Code, EntityType, InfoTable, Message, RequestBody};
use common::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// run1 capture: upgrade headers, AUTH bytes, the BIND gateway form, ping payload.
#[tokio::test]
async fn auth_bind_and_ping_match_the_real_ems() {
    let mut fake = Fake::start(Mode::Up).await;
    let cfg = config_json(
        fake.addr,
        r#""auto_bind": [{"name": "EmsGateway", "gateway": true}, {"name": "PlainThing", "port": 1}]"#,
    );
    let ems = Ems::start(&cfg).await;

    let headers = fake
        .expect("upgrade", |ev| match ev {
            Ev::Upgrade { headers, .. } => Some(headers.clone()),
            _ => None,
        })
        .await;
    let h = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        h("appKey").as_deref(),
        Some("d0b0c0a0-1111-2222-3333-444455556666")
    );
    assert_eq!(h("User-Agent").as_deref(), Some("ThingWorx C SDK"));
    assert_eq!(h("Max-Frame-Size").as_deref(), Some("8192"));
    assert_eq!(
        h("Sec-WebSocket-Extensions"),
        None,
        "no compression offered (§12.12)"
    );

    // AUTH: the capture's bytes with our request id.
    let (_, raw, auth) = fake.expect_msg("AUTH", Code::AUTH).await;
    let mut want = hex(
        "01140000000300000000ffffffff0001066170704b65792464306230633061302d313131312d323232322d333333332d343434343535353536363636",
    );
    want[2..6].copy_from_slice(&auth.header.request_id.to_be_bytes());
    assert_eq!(raw, want);

    // BIND: byte-exact with the capture (gateway EmsGateway/EMSGateway, both names).
    let (_, raw, bind) = fake.expect_msg("BIND", Code::BIND).await;
    let mut want = hex(
        "010a000000040000000000c0ffee00010a456d73476174657761790a454d534761746577617900020a456d73476174657761790a506c61696e5468696e67",
    );
    want[2..6].copy_from_slice(&bind.header.request_id.to_be_bytes());
    assert_eq!(raw, want);
    assert!(bind.header.request_id > auth.header.request_id);

    // Pings carry the local time HH:MM:SS; the first follows the BIND reply.
    for _ in 0..2 {
        let payload = fake
            .expect("ping", |ev| match ev {
                Ev::Ping { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .await;
        let text = String::from_utf8(payload).unwrap();
        let b = text.as_bytes();
        assert!(
            text.len() == 8
                && b[2] == b':'
                && b[5] == b':'
                && text.chars().filter(char::is_ascii_digit).count() == 6,
            "ping payload {text:?}"
        );
    }

    // Graceful shutdown UNBINDs everything first.
    ems.shutdown.cancel();
    let (_, _, unbind) = fake.expect_msg("UNBIND", Code::UNBIND).await;
    let (gw, names) = bind_names(&unbind);
    assert_eq!(gw, Some(("EmsGateway".into(), "EMSGateway".into())));
    assert_eq!(
        names,
        vec!["EmsGateway".to_string(), "PlainThing".to_string()]
    );
    tokio::time::timeout(WAIT, ems.join)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// §12.11: the server drops the socket; the EMS reconnects, AUTHs and re-BINDs all.
#[tokio::test]
async fn reconnects_and_rebinds_after_the_server_drops() {
    let mut fake = Fake::start(Mode::Up).await;
    let cfg = config_json(
        fake.addr,
        r#""auto_bind": [{"name": "Gw", "gateway": true}, {"name": "A", "port": 1}]"#,
    );
    let ems = Ems::start(&cfg).await;
    let (conn, _, first_auth) = fake.expect_msg("AUTH", Code::AUTH).await;
    fake.expect_msg("BIND", Code::BIND).await;
    fake.drop_conn(conn);
    let (conn2, _, second_auth) = fake.expect_msg("second AUTH", Code::AUTH).await;
    assert_ne!(conn, conn2);
    assert!(
        second_auth.header.request_id > first_auth.header.request_id,
        "ids are a global counter"
    );
    let (_, _, bind) = fake.expect_msg("re-BIND", Code::BIND).await;
    assert_eq!(bind_names(&bind).1, vec!["Gw".to_string(), "A".to_string()]);
    ems.stop().await;
}

/// No pong within pingpong_timeout → reconnect.
#[tokio::test]
async fn missing_pong_triggers_a_reconnect() {
    let mut fake = Fake::start(Mode::StallAfterBind).await;
    let cfg = config_json(
        fake.addr,
        r#""auto_bind": [{"name": "Gw", "gateway": true}]"#,
    );
    let ems = Ems::start(&cfg).await;
    let (c1, _, _) = fake.expect_msg("AUTH", Code::AUTH).await;
    fake.set_mode(Mode::Up);
    let (c2, _, _) = fake.expect_msg("AUTH after pong timeout", Code::AUTH).await;
    assert_ne!(c1, c2);
    fake.expect_msg("re-BIND", Code::BIND).await;
    ems.stop().await;
}

/// Requests made while the platform is down are stored, survive an EMS restart
/// (disk store) and are sent in order after re-authentication with fresh ids and the
/// new session id; what does not fit is refused with 507.
#[tokio::test]
async fn offline_store_survives_restart_and_flushes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::start(Mode::Refuse).await;
    let store = format!(
        r#""offline_msg_store": {{"enabled": true, "directory": "{}", "max_size": 700}}"#,
        dir.path().display()
    );
    let cfg = config_json(fake.addr, &store);
    let http = reqwest::Client::new();
    let push = |v: f64| {
        format!(
            r#"{{"dataShape":{{"fieldDefinitions":{{"values":{{"aspects":[],"name":"values","baseType":"INFOTABLE"}}}}}},"rows":[{{"values":{{"dataShape":{{"fieldDefinitions":{{"value":{{"aspects":[],"name":"value","baseType":"VARIANT"}},"time":{{"aspects":[],"name":"time","baseType":"DATETIME"}},"name":{{"aspects":[],"name":"name","baseType":"STRING"}},"quality":{{"aspects":[],"name":"quality","baseType":"STRING"}}}}}},"rows":[{{"value":{{"baseType":"NUMBER","value":{v}}},"name":"Temperature","time":1795240634000,"quality":"GOOD"}}]}}}}]}}"#
        )
    };
    let url_path = "/Thingworx/Things/LsrThing/Services/UpdateSubscribedPropertyValues";

    let ems = Ems::start(&cfg).await;
    for v in [1.0, 2.0] {
        let r = http
            .post(ems.url(url_path))
            .body(push(v))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-tether-offline"], "stored");
    }
    // A read cannot be stored.
    let r = http
        .get(ems.url("/Thingworx/Things/LsrThing/Properties/Temperature"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Fill the store: 700 bytes hold a few ~170-byte pushes, then 507 with a message.
    let mut refused = None;
    for v in 3..10 {
        let r = http
            .post(ems.url(url_path))
            .body(push(f64::from(v)))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            refused = Some((r.status(), r.text().await.unwrap()));
            break;
        }
    }
    let (status, text) = refused.expect("the store fills up");
    assert_eq!(status, 507);
    assert!(text.contains("offline message store full"), "{text}");
    ems.stop().await;

    // Restart the EMS on the same store; the platform comes back.
    let ems = Ems::start(&cfg).await;
    fake.set_mode(Mode::Up);
    let (_, _, auth) = fake.expect_msg("AUTH", Code::AUTH).await;
    let mut values = Vec::new();
    let mut last_id = auth.header.request_id;
    while values.len() < 2 {
        let (_, _, m) = fake.expect_msg("stored push", Code::POST).await;
        assert_eq!(m.header.session_id, SESSION, "new session id patched in");
        assert!(
            m.header.request_id > last_id,
            "fresh, increasing request ids"
        );
        last_id = m.header.request_id;
        let Body::Request(b) = &m.body else { panic!() };
        assert_eq!(b.target, "UpdateSubscribedPropertyValues");
        let pv = b.params.as_ref().unwrap().property_values().unwrap();
        values.push(pv[0].value.as_f64().unwrap());
    }
    assert_eq!(values, vec![1.0, 2.0], "in order");
    // Answered → removed from the store: nothing is left after another restart.
    let store_file = dir.path().join(ems::offline::FILE_NAME);
    eventually("store emptied", || async {
        (std::fs::metadata(&store_file).ok()?.len() == 11).then_some(())
    })
    .await;
    ems.stop().await;
}

/// duty_cycle < 100: UNBIND all before the off time, then reconnect.
#[tokio::test]
async fn duty_cycle_unbinds_before_going_off() {
    let mut fake = Fake::start(Mode::Up).await;
    let cfg = config_json(
        fake.addr,
        r#""auto_bind": [{"name": "Gw", "gateway": true}]"#,
    )
    .replace(
        r#""ping_rate": 300"#,
        r#""ping_rate": 300, "duty_cycle": 50, "connect_period": 600"#,
    );
    let ems = Ems::start(&cfg).await;
    let (c1, _, _) = fake.expect_msg("BIND", Code::BIND).await;
    let (c, _, unbind) = fake.expect_msg("UNBIND at off time", Code::UNBIND).await;
    assert_eq!(c, c1);
    assert_eq!(bind_names(&unbind).1, vec!["Gw".to_string()]);
    let (c2, _, _) = fake
        .expect_msg("BIND in the next on time", Code::BIND)
        .await;
    assert_ne!(c1, c2);
    ems.stop().await;
}

/// NotifyPropertyUpdate on the EMS's own thing is answered 0x40 and followed by
/// GetPropertySubscriptions; unknown things get 0x84; GetMetadata gives {result: JSON}.
#[tokio::test]
async fn platform_requests_to_the_ems_itself() {
    let mut fake = Fake::start(Mode::Up).await;
    let cfg = config_json(
        fake.addr,
        r#""auto_bind": [{"name": "EmsGateway", "gateway": true}]"#,
    );
    let ems = Ems::start(&cfg).await;
    let (conn, _, _) = fake.expect_msg("BIND", Code::BIND).await;
    let hdr = |id| alwayson::Header {
        code: Code::POST,
        request_id: id,
        endpoint_id: 7,
        session_id: SESSION,
    };
    let req = |id, thing: &str, svc: &str| Message {
        header: hdr(id),
        body: Body::Request(RequestBody::new(
            EntityType::THING,
            thing,
            Characteristic::SERVICES,
            svc,
        )),
    };
    fake.send(conn, req(1001, "EmsGateway", "NotifyPropertyUpdate"));
    let r = fake.expect_response(1001).await;
    assert_eq!(r.header.code, Code::SUCCESS);
    assert_eq!(r.header.endpoint_id, 7, "endpoint id echoed");
    let (_, _, gps) = fake
        .expect_msg("GetPropertySubscriptions", Code::POST)
        .await;
    let Body::Request(b) = &gps.body else {
        panic!()
    };
    assert_eq!(
        (b.entity_name.as_str(), b.target.as_str()),
        ("EmsGateway", "GetPropertySubscriptions")
    );
    assert_eq!(
        b.params.as_ref().unwrap().content_json(),
        Some(serde_json::json!({}))
    );

    fake.send(conn, req(1002, "Nobody", "GetMetadata"));
    assert_eq!(
        fake.expect_response(1002).await.header.code,
        Code::NOT_FOUND
    );

    fake.send(conn, req(1003, "EmsGateway", "GetMetadata"));
    let r = fake.expect_response(1003).await;
    let Body::Response(body) = &r.body else {
        panic!()
    };
    let t: &InfoTable = body.content.as_ref().unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(t.value("result").unwrap().as_str().unwrap()).unwrap();
    assert_eq!(meta["name"], "EmsGateway");

    // The tunnel module answers StartTunnel; without its parameters (tid, ...) it is a
    // bad request, not an unknown service.
    fake.send(conn, req(1004, "EmsGateway", "StartTunnel"));
    assert_eq!(
        fake.expect_response(1004).await.header.code,
        Code::BAD_REQUEST
    );
    ems.stop().await;
}

/// ws_servers is a fail-over list: the first server is down, the second takes over.
#[tokio::test]
async fn fails_over_to_the_next_server() {
    let down = Fake::start(Mode::Refuse).await;
    let mut up = Fake::start(Mode::Up).await;
    let cfg = config_json(
        down.addr,
        r#""auto_bind": [{"name": "Gw", "gateway": true}]"#,
    )
    .replace(
        r#""ws_servers": ["#,
        &format!(
            r#""ws_servers": [{{"host": "127.0.0.1", "port": {}}}, "#,
            down.addr.port()
        ),
    );
    let cfg = cfg.replacen(
        &format!(r#"{{"host": "127.0.0.1", "port": {}}}]"#, down.addr.port()),
        &format!(r#"{{"host": "127.0.0.1", "port": {}}}]"#, up.addr.port()),
        1,
    );
    assert!(cfg.contains(&up.addr.port().to_string()), "{cfg}");
    let ems = Ems::start(&cfg).await;
    up.expect_msg("AUTH on the second server", Code::AUTH).await;
    assert_eq!(down.connections(), 0);
    ems.stop().await;
}

/// run2 capture #7: the LSR's `GetPropertySubscriptions {}` through the local REST is
/// sent byte for byte as the real EMS sends it (`_content_` JSON), and the platform's
/// table comes back rows first with `datashape`.
#[tokio::test]
async fn rest_get_property_subscriptions_matches_the_capture() {
    let mut fake = Fake::start(Mode::Up).await;
    let mut subs = InfoTable::new(vec![
        alwayson::FieldDef::new("edgeName", alwayson::BaseType::String),
        alwayson::FieldDef::new("pushType", alwayson::BaseType::String),
        alwayson::FieldDef::new("pushThreshold", alwayson::BaseType::Number),
    ]);
    subs.rows.push(vec![
        alwayson::Primitive::String("Temperature".into()),
        alwayson::Primitive::String("ALWAYS".into()),
        alwayson::Primitive::Number(0.0),
    ]);
    fake.replies.lock().unwrap().insert(
        "GetPropertySubscriptions".into(),
        (Code::SUCCESS, Some(subs)),
    );
    let ems = Ems::start(&config_json(fake.addr, "")).await;
    fake.expect_msg("AUTH", Code::AUTH).await;
    let http = reqwest::Client::new();
    let url = ems.url("/Thingworx/Things/LsrThing/Services/GetPropertySubscriptions");
    // The REST call may race the first connection: a read is refused (503) until then.
    let body = eventually("connected", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.post(&url).body("{}").send().await.ok()?;
            assert!(
                r.headers().get("x-tether-offline").is_none(),
                "a Get… service is never stored"
            );
            (r.status() == 200).then_some(())?;
            r.text().await.ok()
        }
    })
    .await;
    let (_, raw, m) = fake
        .expect_msg("GetPropertySubscriptions", Code::POST)
        .await;
    let mut want = hex(
        "0103000000060000000000c0ffee000a084c73725468696e67021847657450726f7065727479537562736372697074696f6e73000501095f636f6e74656e745f000800000001000108027b7d00",
    );
    want[2..6].copy_from_slice(&m.header.request_id.to_be_bytes());
    assert_eq!(raw, want);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body.starts_with(
            r#"{"rows":[{"edgeName":"Temperature","pushType":"ALWAYS","pushThreshold":0"#
        ),
        "{body}"
    );
    assert_eq!(
        v["datashape"]["fieldDefinitions"]["pushThreshold"]["baseType"],
        "NUMBER"
    );
    ems.stop().await;
}
