//! Connection-server links (docs/cxserver.md, "Upstream link protocol"):
//! a raw link client (TestEdge speaking for several endpointIds) against a
//! real platform over TLS websockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use alwayson::{
    BaseType, Body, Characteristic, Code, EntityType, FieldDef, InfoTable, Message, Primitive,
    PropertyValue, RequestBody,
};
use platform::edge::EdgeError;
use platform::model::{NewAppKey, Role};
use test_support::{Event, PlatformHandle, PlatformOptions, TestEdge, spawn_platform, wait_for};

const T: Duration = Duration::from_secs(5);

fn reason(m: &Message) -> String {
    match &m.body {
        Body::Response(b) => b.reason.clone().unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

async fn is_connected(p: &PlatformHandle, thing: &str) -> bool {
    p.platform
        .store()
        .thing(thing)
        .await
        .unwrap()
        .map(|t| t.is_connected)
        .unwrap_or(false)
}

/// Creates a `connection-server` user with one app key; returns the key.
async fn cx_key(p: &PlatformHandle) -> String {
    let store = p.platform.store();
    let hash = platform::secret::hash_password("cx-password-unused").unwrap();
    store
        .create_user("cx", &hash, Role::ConnectionServer)
        .await
        .unwrap();
    p.create_app_key("cx-key", "cx", &[]).await.unwrap()
}

/// An edge app key limited to `addresses`.
async fn key_from(p: &PlatformHandle, name: &str, addresses: &[&str]) -> String {
    let key = platform::secret::generate_app_key();
    p.platform
        .store()
        .create_app_key(
            &NewAppKey {
                name: name.into(),
                user: p.admin_user.clone(),
                expires_at: None,
                allowed_addresses: addresses.iter().map(|a| a.to_string()).collect(),
                thing_patterns: Vec::new(),
            },
            &platform::secret::hash_app_key(key.expose()),
        )
        .await
        .unwrap();
    key.expose().to_owned()
}

/// Opens a link: a websocket whose AUTH uses the connection-server key.
async fn link(p: &PlatformHandle, key: &str) -> TestEdge {
    let mut l = TestEdge::connect(&p.ws_url, p.client_tls.clone(), Some(key))
        .await
        .unwrap();
    let r = l.auth_app_key(key).await.unwrap();
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    l
}

/// A virtual edge's view of a link: its endpointId and session.
struct Ep {
    id: u32,
    session: u32,
}

impl Ep {
    fn stamp(&self, mut m: Message) -> Message {
        m.header.endpoint_id = self.id;
        m.header.session_id = self.session;
        m
    }
}

async fn ep_auth(l: &TestEdge, endpoint: u32, key: &str, peer: Option<&str>) -> Message {
    let mut claims = vec![("appKey".to_owned(), key.to_owned())];
    if let Some(peer) = peer {
        claims.push(("tether-peer".to_owned(), peer.to_owned()));
    }
    let mut m = Message::auth(l.next_request_id(), claims);
    m.header.endpoint_id = endpoint;
    l.request(&m).await.unwrap()
}

async fn ep(l: &TestEdge, endpoint: u32, key: &str) -> Ep {
    let r = ep_auth(l, endpoint, key, Some("127.0.0.1")).await;
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    assert_eq!(r.header.endpoint_id, endpoint);
    Ep {
        id: endpoint,
        session: r.header.session_id,
    }
}

async fn ep_bind(l: &TestEdge, e: &Ep, names: &[&str]) -> Message {
    let names = names.iter().map(|n| n.to_string()).collect();
    l.request(&e.stamp(Message::bind(l.next_request_id(), 0, None, names)))
        .await
        .unwrap()
}

async fn ep_gone(l: &TestEdge, endpoint: u32) -> Message {
    let mut m = Message::unbind(l.next_request_id(), 0, None, Vec::new());
    m.header.endpoint_id = endpoint;
    l.request(&m).await.unwrap()
}

fn push(thing: &str, name: &str, value: f64) -> RequestBody {
    RequestBody::new(
        EntityType::THING,
        thing,
        Characteristic::SERVICES,
        "UpdateSubscribedPropertyValues",
    )
    .with_params(InfoTable::property_push(&[PropertyValue {
        name: name.into(),
        value: Primitive::Number(value),
        time: 1_700_000_000_000,
        quality: "GOOD".into(),
    }]))
}

#[tokio::test]
async fn virtual_edges_authenticate_bind_push_and_answer_requests() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    let mut l = link(&p, &cx).await;
    let a = ep(&l, 7, &p.app_key).await;
    let b = ep(&l, 8, &p.app_key).await;
    assert_ne!(
        a.session, b.session,
        "each virtual edge has its own session"
    );
    assert_eq!(p.platform.registry().connection_count(), 2);

    let r = ep_bind(&l, &a, &["Pump1"]).await;
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    assert_eq!(r.header.endpoint_id, 7);
    let r = ep_bind(&l, &b, &["Pump2"]).await;
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    // First-in-wins across virtual edges of one link.
    let r = ep_bind(&l, &b, &["Pump1"]).await;
    assert_eq!(r.header.code, Code::FORBIDDEN, "{}", reason(&r));
    let binding = p.platform.registry().binding("Pump1").unwrap();
    assert_eq!(binding.conn.endpoint_id(), 7);
    assert!(binding.conn.is_virtual());
    assert!(is_connected(&p, "Pump1").await && is_connected(&p, "Pump2").await);

    // The platform greets each new binding with NotifyPropertyUpdate on
    // the virtual edge's endpointId.
    let mut greeted = Vec::new();
    while greeted.len() < 2 {
        match l.next_event(T).await {
            Some(Event::Request(m)) => {
                let Body::Request(req) = &m.body else {
                    unreachable!()
                };
                assert_eq!(req.target, "NotifyPropertyUpdate");
                greeted.push((m.header.endpoint_id, req.entity_name.clone()));
                let reply = Message::response(&m.header, Code::SUCCESS, None);
                l.send_raw(reply.to_bytes().unwrap()).await.unwrap();
            }
            other => panic!("expected NotifyPropertyUpdate, got {other:?}"),
        }
    }
    greeted.sort();
    assert_eq!(
        greeted,
        vec![(7, "Pump1".to_owned()), (8, "Pump2".to_owned())]
    );

    // A push from endpoint 7 lands on Pump1.
    let r = l
        .request(&a.stamp(Message::request(
            Code::POST,
            l.next_request_id(),
            0,
            push("Pump1", "Temp", 21.5),
        )))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    let stored = p.platform.store().properties("Pump1").await.unwrap();
    assert!(stored.iter().any(|v| v.name == "Temp"), "{stored:?}");
    // Endpoint 8 may not push to a thing endpoint 7 holds.
    let r = l
        .request(&b.stamp(Message::request(
            Code::POST,
            l.next_request_id(),
            0,
            push("Pump1", "Temp", 1.0),
        )))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::FORBIDDEN, "{}", reason(&r));

    // Platform → edge requests reach the right endpoint and come back.
    l.set_handler(|_, req| {
        let mut t = InfoTable::new(vec![FieldDef::new("Load", BaseType::String)]);
        t.rows
            .push(vec![Primitive::String(req.entity_name.clone())]);
        (Code::SUCCESS, Some(t))
    });
    for thing in ["Pump1", "Pump2"] {
        let answer = p
            .platform
            .request(thing, Code::GET, Characteristic::PROPERTIES, "Load", None)
            .await
            .unwrap();
        assert_eq!(answer.code, Code::SUCCESS);
        let t = answer.body.content.unwrap();
        assert_eq!(t.rows[0][0], Primitive::String(thing.into()));
    }
    // Many at once over both endpoints (request ids unique per link).
    let mut calls = Vec::new();
    for i in 0..200 {
        let p2 = p.platform.clone();
        let thing = if i % 2 == 0 { "Pump1" } else { "Pump2" };
        calls.push(tokio::spawn(async move {
            p2.request(thing, Code::GET, Characteristic::PROPERTIES, "Load", None)
                .await
                .map(|a| (thing, a.body.content.unwrap().rows[0][0].clone()))
        }));
    }
    for c in calls {
        let (thing, v) = c.await.unwrap().unwrap();
        assert_eq!(v, Primitive::String(thing.into()));
    }

    // "Endpoint gone": an empty UNBIND releases the edge's things.
    let r = ep_gone(&l, 7).await;
    assert_eq!(r.header.code, Code::SUCCESS);
    assert!(p.platform.registry().binding("Pump1").is_none());
    assert!(!is_connected(&p, "Pump1").await);
    assert!(
        is_connected(&p, "Pump2").await,
        "the other edge is untouched"
    );
    // Endpoint 7 is no longer authenticated; its id may be reused by a new edge.
    let r = ep_bind(&l, &a, &["Pump1"]).await;
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    let a2 = ep(&l, 7, &p.app_key).await;
    let r = ep_bind(&l, &a2, &["Pump1"]).await;
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    // An empty UNBIND for an endpoint that never authenticated is answered too.
    assert_eq!(ep_gone(&l, 99).await.header.code, Code::SUCCESS);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn virtual_edge_auth_failures_and_unauthenticated_endpoints() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    let l = link(&p, &cx).await;
    let r = ep_auth(&l, 3, "not-a-key", Some("127.0.0.1")).await;
    assert_eq!(r.header.code, Code::UNAUTHORIZED);
    assert_eq!(r.header.endpoint_id, 3);
    // A request from an endpoint that has no session.
    let mut m = Message::request(
        Code::POST,
        l.next_request_id(),
        0,
        push("Pump1", "Temp", 1.0),
    );
    m.header.endpoint_id = 4;
    let r = l.request(&m).await.unwrap();
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    // A connection-server key cannot authenticate an edge behind a link.
    let r = ep_auth(&l, 5, &cx, Some("127.0.0.1")).await;
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    // No tether-peer claim: refused (the allow-list could not be applied).
    let r = ep_auth(&l, 6, &p.app_key, None).await;
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    assert!(reason(&r).contains("tether-peer"), "{}", reason(&r));
    // Endpoint 0 is the link itself.
    let r = l
        .request(&Message::bind(
            l.next_request_id(),
            0,
            None,
            vec!["Pump1".into()],
        ))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::BAD_REQUEST, "{}", reason(&r));
    let r = l
        .request(&Message::keep_alive(l.next_request_id(), 0))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    // After all this the link still carries a good edge.
    let e = ep(&l, 3, &p.app_key).await;
    assert_eq!(ep_bind(&l, &e, &["Pump1"]).await.header.code, Code::SUCCESS);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn tether_peer_claim_is_honoured_on_links_only() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    let fenced = key_from(&p, "fenced", &["10.1.2.0/24"]).await;
    let l = link(&p, &cx).await;
    // On a link the key's allow-list is applied to the edge's address.
    let r = ep_auth(&l, 1, &fenced, Some("10.1.2.3")).await;
    assert_eq!(r.header.code, Code::SUCCESS, "{}", reason(&r));
    let r = ep_auth(&l, 2, &fenced, Some("10.9.9.9")).await;
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    assert!(reason(&r).contains("address"), "{}", reason(&r));
    // The link's own address (127.0.0.1) does not count.
    let r = ep_auth(&l, 3, &fenced, Some("127.0.0.1")).await;
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    // On an edge's own socket the claim would be forged: ignored.
    let mut direct = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let m = Message::auth(
        direct.next_request_id(),
        vec![
            ("appKey".into(), fenced.clone()),
            ("tether-peer".into(), "10.1.2.3".into()),
        ],
    );
    let r = direct.request(&m).await.unwrap();
    assert_eq!(r.header.code, Code::UNAUTHORIZED, "{}", reason(&r));
    assert!(direct.wait_closed(T).await.is_ok());
    // A plain edge key with a tether-peer claim on a direct socket is just an edge.
    let plain = TestEdge::connect(&p.ws_url, p.client_tls.clone(), None)
        .await
        .unwrap();
    let m = Message::auth(
        plain.next_request_id(),
        vec![
            ("appKey".into(), p.app_key.clone()),
            ("tether-peer".into(), "10.1.2.3".into()),
        ],
    );
    assert_eq!(plain.request(&m).await.unwrap().header.code, Code::SUCCESS);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn link_close_releases_every_virtual_edge_and_fails_pending_requests_at_once() {
    let p = spawn_platform(PlatformOptions {
        request_timeout: Duration::from_secs(20),
        ..PlatformOptions::default()
    })
    .await
    .unwrap();
    let cx = cx_key(&p).await;
    let l = link(&p, &cx).await;
    let a = ep(&l, 11, &p.app_key).await;
    let b = ep(&l, 12, &p.app_key).await;
    assert_eq!(ep_bind(&l, &a, &["Pump1"]).await.header.code, Code::SUCCESS);
    assert_eq!(ep_bind(&l, &b, &["Pump2"]).await.header.code, Code::SUCCESS);
    // A platform → edge request the link never answers (no handler).
    let p2 = p.platform.clone();
    let pending = tokio::spawn(async move {
        p2.request("Pump2", Code::GET, Characteristic::PROPERTIES, "Load", None)
            .await
    });
    assert!(
        wait_for(T, || async {
            p.platform
                .registry()
                .binding("Pump2")
                .is_some_and(|b| b.conn.pending() > 0)
        })
        .await
    );
    let started = Instant::now();
    l.close().await.unwrap();
    let r = tokio::time::timeout(T, pending).await.unwrap().unwrap();
    assert!(matches!(r, Err(EdgeError::Disconnected)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        wait_for(T, || async {
            !is_connected(&p, "Pump1").await && !is_connected(&p, "Pump2").await
        })
        .await
    );
    assert_eq!(p.platform.registry().connection_count(), 0);
    assert_eq!(p.platform.registry().bound_count(), 0);
    // A new link re-binds the same things (as after a connection-server reconnect).
    let l2 = link(&p, &cx).await;
    let a = ep(&l2, 11, &p.app_key).await;
    assert_eq!(
        ep_bind(&l2, &a, &["Pump1", "Pump2"]).await.header.code,
        Code::SUCCESS
    );
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn auth_replay_on_the_same_endpoint_replaces_the_session() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    let l = link(&p, &cx).await;
    let first = ep(&l, 21, &p.app_key).await;
    assert_eq!(
        ep_bind(&l, &first, &["Pump1"]).await.header.code,
        Code::SUCCESS
    );
    let second = ep(&l, 21, &p.app_key).await;
    assert_ne!(first.session, second.session);
    assert_eq!(p.platform.registry().connection_count(), 1);
    // The old session's binding was released, so the replayed BIND succeeds.
    assert_eq!(
        ep_bind(&l, &second, &["Pump1"]).await.header.code,
        Code::SUCCESS
    );
    let b = p.platform.registry().binding("Pump1").unwrap();
    assert_eq!(b.conn.endpoint_id(), 21);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn multipart_messages_are_reassembled_per_endpoint() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    let l = link(&p, &cx).await;
    let a = ep(&l, 31, &p.app_key).await;
    let b = ep(&l, 32, &p.app_key).await;
    assert_eq!(ep_bind(&l, &a, &["Pump1"]).await.header.code, Code::SUCCESS);
    assert_eq!(ep_bind(&l, &b, &["Pump2"]).await.header.code, Code::SUCCESS);
    let big = "x".repeat(20_000);
    let body = |thing: &str| {
        RequestBody::new(
            EntityType::THING,
            thing,
            Characteristic::SERVICES,
            "UpdateSubscribedPropertyValues",
        )
        .with_params(InfoTable::property_push(&[PropertyValue {
            name: "Blob".into(),
            value: Primitive::String(format!("{thing}{big}")),
            time: 1_700_000_000_000,
            quality: "GOOD".into(),
        }]))
    };
    // The same request id on two endpoints, chunks interleaved by the two tasks.
    let id = l.next_request_id();
    let ma = a.stamp(Message::request(Code::POST, id, 0, body("Pump1")));
    let fa = alwayson::split(&ma, 1024).unwrap();
    let mb = b.stamp(Message::request(Code::POST, id + 100_000, 0, body("Pump2")));
    let fb = alwayson::split(&mb, 1024).unwrap();
    assert!(fa.len() > 10);
    assert_eq!(fa.len(), fb.len());
    // Interleaved on the link; each endpoint reassembles its own.
    for (x, y) in fa.iter().zip(fb.iter()) {
        l.send_raw(x.clone()).await.unwrap();
        l.send_raw(y.clone()).await.unwrap();
    }
    assert!(
        wait_for(T, || async {
            let one = p.platform.store().properties("Pump1").await.unwrap();
            let two = p.platform.store().properties("Pump2").await.unwrap();
            one.iter().any(|v| v.name == "Blob") && two.iter().any(|v| v.name == "Blob")
        })
        .await
    );
    let one = p.platform.store().properties("Pump1").await.unwrap();
    let v = one.iter().find(|v| v.name == "Blob").unwrap();
    assert!(v.value.as_str().unwrap().starts_with("Pump1x"));
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_server_user_role_round_trips_and_link_outlives_edge_idle_timeout() {
    let p = spawn_platform(PlatformOptions {
        idle_timeout: Duration::from_millis(400),
        ..PlatformOptions::default()
    })
    .await
    .unwrap();
    let cx = cx_key(&p).await;
    let (user, _) = p
        .platform
        .store()
        .user_with_hash("cx")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, Role::ConnectionServer);
    let l = link(&p, &cx).await;
    let a = ep(&l, 41, &p.app_key).await;
    assert_eq!(ep_bind(&l, &a, &["Pump1"]).await.header.code, Code::SUCCESS);
    // A direct edge with the same idle timeout is closed…
    let mut direct = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    assert!(direct.wait_closed(T).await.is_ok());
    // …the link is not (its idle timeout is at least 60 s).
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = l
        .request(&Message::keep_alive(l.next_request_id(), 0))
        .await
        .unwrap();
    assert_eq!(r.header.code, Code::SUCCESS);
    assert!(is_connected(&p, "Pump1").await);
    p.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_server_credentials_are_refused_outside_links() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    let http = p.http_client().unwrap();
    let url = |path: &str| format!("{}{path}", p.base_url);
    let refused = |r: reqwest::Response| async move {
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("connection-server"), "{body}");
    };
    // The app key: REST, management API, remote-access sessions.
    for req in [
        http.get(url("/Thingworx/Things/Pump1/Properties")),
        http.get(url("/api/v1/things")),
        http.get(url("/api/v1/users")),
        http.get(url("/api/v1/sessions")),
        http.post(url("/api/v1/sessions"))
            .json(&serde_json::json!({"thing": "Pump1", "interface": "ssh"})),
    ] {
        refused(req.header("appKey", &cx).send().await.unwrap()).await;
    }
    // The user's password, by Basic auth and through a web session.
    let basic = http
        .get(url("/api/v1/things"))
        .basic_auth("cx", Some("cx-password-unused"))
        .send()
        .await
        .unwrap();
    refused(basic).await;
    let login = http
        .post(url("/api/v1/login"))
        .json(&serde_json::json!({"username": "cx", "password": "cx-password-unused"}))
        .send()
        .await
        .unwrap();
    // No web session either: the log-in itself is refused.
    refused(login).await;
    // An administrator's key still works, and the cx key still opens a link.
    let ok = http
        .get(url("/api/v1/things"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), reqwest::StatusCode::OK);
    let l = link(&p, &cx).await;
    let a = ep(&l, 7, &p.app_key).await;
    assert_eq!(ep_bind(&l, &a, &["Pump1"]).await.header.code, Code::SUCCESS);
    p.shutdown().await.unwrap();
}

/// Whether `/metrics` has every line of `lines`.
async fn metrics_show(p: &PlatformHandle, lines: &[&str]) -> bool {
    let Ok(r) = p
        .http_client()
        .unwrap()
        .get(format!("{}/metrics", p.base_url))
        .send()
        .await
    else {
        return false;
    };
    let text = r.text().await.unwrap_or_default();
    lines.iter().all(|l| text.lines().any(|t| t == *l))
}

#[tokio::test]
async fn metrics_count_links_and_virtual_edges() {
    let p = spawn_platform(PlatformOptions::default()).await.unwrap();
    let cx = cx_key(&p).await;
    assert!(
        metrics_show(
            &p,
            &[
                "tether_platform_links 0",
                "tether_platform_links_opened_total 0",
                "tether_platform_virtual_edges 0",
            ]
        )
        .await
    );
    let l = link(&p, &cx).await;
    let _a = ep(&l, 21, &p.app_key).await;
    let _b = ep(&l, 22, &p.app_key).await;
    let up = [
        "tether_platform_links 1",
        "tether_platform_links_opened_total 1",
        "tether_platform_virtual_edges 2",
        "tether_platform_edge_connections 2",
    ];
    assert!(wait_for(T, || metrics_show(&p, &up)).await);
    // An endpoint gone: one virtual edge fewer.
    assert_eq!(ep_gone(&l, 22).await.header.code, Code::SUCCESS);
    let one = ["tether_platform_links 1", "tether_platform_virtual_edges 1"];
    assert!(wait_for(T, || metrics_show(&p, &one)).await);
    // The link closed: no link, no virtual edge, the counter kept.
    l.close().await.unwrap();
    let down = [
        "tether_platform_links 0",
        "tether_platform_links_opened_total 1",
        "tether_platform_virtual_edges 0",
        "tether_platform_edge_connections 0",
    ];
    assert!(wait_for(T, || metrics_show(&p, &down)).await);
    p.shutdown().await.unwrap();
}
