//! End-to-end broker tests on loopback sockets: HTTP API, a fake edge
//! (tunnel crate server driver + TCP echo), the RAC engine as client side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tunnel::{Frame, Hello, Kind, PeerState, StreamId, close};

fn rac_opts(ping: Duration) -> rac::RunOptions {
    let mut o = rac::RunOptions::default();
    o.client.ping_interval = ping;
    o
}

fn quiet() -> rac::Notify {
    Arc::new(|_| {})
}

/// Create from the browser, join with the launch URL through the RAC
/// engine, pipe bytes over two TCP connections, end with DELETE.
#[tokio::test]
async fn round_trip_delete_and_audit() {
    let echo = echo_server().await;
    let mut h = spawn(echo, |_| {}).await;
    let created = h.create_browser("alice").await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created.get("client_token").is_none());
    let launch = created["launch_url"].as_str().unwrap();
    assert!(launch.starts_with("tether://open?platform=http%3A%2F%2F127.0.0.1"));

    let start = h.next_start().await;
    assert_eq!(start.session_id, id);
    assert_eq!(start.target.port, echo);
    assert!(!start.server_url.contains(start.server_token.expose()));
    let edge = spawn_edge(start, Duration::from_secs(15));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let join = rac::Join::Launch(rac::LaunchUrl::parse(launch).unwrap());
    let client = tokio::spawn(rac::listen_on(
        join,
        listener,
        rac_opts(Duration::from_secs(15)),
        CancellationToken::new(),
        quiet(),
    ));

    let mut a = eventually(Duration::from_secs(5), || async {
        TcpStream::connect(local).await.ok()
    })
    .await
    .unwrap();
    let mut b = TcpStream::connect(local).await.unwrap();
    let one: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let two = b"hello over a second stream".to_vec();
    assert_eq!(echo_round(&mut a, &one).await.unwrap(), one);
    assert_eq!(echo_round(&mut b, &two).await.unwrap(), two);

    let view: serde_json::Value = h.get_session(&id, "alice").await.json().await.unwrap();
    assert_eq!(view["state"], "active");
    let total = (one.len() + two.len()) as u64;
    assert_eq!(view["bytes_client_to_server"], total);
    assert_eq!(view["bytes_server_to_client"], total);
    assert_eq!(view["streams_opened"], 2);
    // Another user does not see it; an administrator does.
    assert_eq!(h.get_session(&id, "bob").await.status(), 404);
    assert_eq!(h.get_session(&id, "root").await.status(), 200);
    let metrics = h.broker.metrics_text();
    assert!(metrics.contains("tether_platform_tunnel_sessions{state=\"active\"} 1\n"));
    assert!(metrics.contains(&format!(
        "tether_platform_tunnel_bytes_total{{direction=\"client_to_server\"}} {total}\n"
    )));

    let r = h.delete_session(&id, "alice").await;
    assert_eq!(r.status(), 200);
    let ended: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["end_reason"], "ended_by_user");

    // Both sides saw CLOSE with the reason.
    let rac_end = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(rac_end.code, Some(close::ENDED));
    assert!(
        rac_end.reason.contains("ended by alice"),
        "{}",
        rac_end.reason
    );
    assert_eq!(rac_end.exit_code(), rac::EXIT_OK);
    let edge_end = tokio::time::timeout(Duration::from_secs(5), edge)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(edge_end.code, Some(close::ENDED));
    // The local port is released once the session ends.
    assert!(TcpStream::connect(local).await.is_err());

    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.user, "alice");
    assert_eq!(rec.thing, THING);
    assert_eq!(rec.interface, "ssh");
    assert_eq!(rec.reason, "ended_by_user");
    assert_eq!(rec.bytes_client_to_server, total);
    assert_eq!(rec.bytes_server_to_client, total);
    assert_eq!(rec.streams, 2);
    assert!(rec.started.is_some());
    assert_eq!(h.edge.completed().len(), 1);
    assert_eq!(h.edge.completed()[0].session_id, id);
    assert_eq!(h.get_session(&id, "alice").await.status(), 404);
    assert!(
        h.broker
            .metrics_text()
            .contains("tether_platform_tunnel_sessions_ended_total{reason=\"ended_by_user\"} 1\n")
    );
}

/// Tokens: single use, per side, header only; nonces single use.
#[tokio::test]
async fn tokens_are_single_use_and_per_side() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let token = created["client_token"].as_str().unwrap();
    assert!(created.get("launch_url").is_none());
    let client_url = created["client_url"].as_str().unwrap();
    let start = h.next_start().await;
    let server_url = start.server_url.clone();
    let server_token = start.server_token.expose().to_owned();

    // The server token does not open the client side.
    let wrong = ws_attach(client_url, &server_token, true)
        .await
        .unwrap_err();
    assert!(matches!(wrong, net::NetError::WsRefused { status, .. } if status == 401));
    // No subprotocol: refused before the upgrade without spending the token.
    let no_proto = ws_attach(client_url, token, false).await.unwrap_err();
    assert!(matches!(no_proto, net::NetError::WsRefused { status, .. } if status == 400));
    // A token is bound to its session.
    let other = format!(
        "{}/remote-access/v1/sessions/00000000-0000-4000-8000-000000000000/client",
        h.base.replace("http", "ws")
    );
    let e = ws_attach(&other, token, true).await.unwrap_err();
    assert!(matches!(e, net::NetError::WsRefused { status, .. } if status == 401));

    let _first = ws_attach(client_url, token, true).await.unwrap();
    let again = ws_attach(client_url, token, true).await.unwrap_err();
    assert!(matches!(again, net::NetError::WsRefused { status, .. } if status == 401));
    let _server = ws_attach(&server_url, &server_token, true).await.unwrap();
    let again = ws_attach(&server_url, &server_token, true)
        .await
        .unwrap_err();
    assert!(matches!(again, net::NetError::WsRefused { status, .. } if status == 401));
    assert!(
        h.broker
            .metrics_text()
            .contains("tether_platform_tunnel_attaches_refused_total 4\n")
    );

    // Nonce: traded once.
    let browser = h.create_browser("alice").await.unwrap();
    let launch = rac::LaunchUrl::parse(browser["launch_url"].as_str().unwrap()).unwrap();
    let trade = |nonce: String| {
        let url = format!("{}/api/v1/sessions/{}/client-token", h.base, launch.session);
        let http = h.http.clone();
        async move {
            http.post(url)
                .json(&serde_json::json!({ "nonce": nonce }))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(trade("wrong".into()).await.status(), 401);
    let ok = trade(launch.nonce.clone()).await;
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["client_token"].as_str().unwrap().len(), 43);
    // The reply names what the session reaches (the RAC's labels).
    assert_eq!(body["thing"], THING);
    assert_eq!(body["interface"], "ssh");
    assert_eq!(trade(launch.nonce.clone()).await.status(), 401);
    // A browser caller may not take the client token directly.
    let r = h
        .http
        .post(format!("{}/api/v1/sessions", h.base))
        .header("cookie", "session=alice")
        .json(&serde_json::json!({"thing": THING, "interface": "ssh", "client_token": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let _ = id;
}

/// The RAC reports its local address with its (spent) client token; the
/// session view shows it. Only a loopback socket address is taken, only
/// with the right token, only once the client side attached.
#[tokio::test]
async fn client_reports_its_local_address() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["client_token"].as_str().unwrap().to_owned();
    let client_url = created["client_url"].as_str().unwrap().to_owned();
    let start = h.next_start().await;
    let server_token = start.server_token.expose().to_owned();
    let report = |token: String, body: serde_json::Value| {
        let url = format!("{}/api/v1/sessions/{id}/client-info", h.base);
        let http = h.http.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let good = serde_json::json!({"local_address": "127.0.0.1:2222"});
    // Not before the client attached (the token is for attaching first).
    assert_eq!(report(token.clone(), good.clone()).await.status(), 401);
    let _client = ws_attach(&client_url, &token, true).await.unwrap();
    // Not with another token, nor with none.
    assert_eq!(report(server_token, good.clone()).await.status(), 401);
    let none = h
        .http
        .post(format!("{}/api/v1/sessions/{id}/client-info", h.base))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    // Only loopback socket addresses, bounded, no other fields.
    for bad in [
        serde_json::json!({"local_address": "192.0.2.7:22"}),
        serde_json::json!({"local_address": "127.0.0.1"}),
        serde_json::json!({"local_address": format!("127.0.0.1:22{}", "0".repeat(100))}),
        serde_json::json!({"local_address": "127.0.0.1:22", "extra": 1}),
        serde_json::json!({}),
    ] {
        let r = report(token.clone(), bad.clone()).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let view = h.get_session(&id, "alice").await;
    let view: serde_json::Value = view.json().await.unwrap();
    assert!(view["client_address"].is_null(), "{view}");
    let ok = report(token.clone(), good).await;
    assert_eq!(ok.status(), 200);
    let ok: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(ok["client_address"], "127.0.0.1:2222");
    let view: serde_json::Value = h.get_session(&id, "alice").await.json().await.unwrap();
    assert_eq!(view["client_address"], "127.0.0.1:2222");
    // A session of another id does not take this token.
    let other = h.create_cli().await.unwrap();
    let r = h
        .http
        .post(format!(
            "{}/api/v1/sessions/{}/client-info",
            h.base,
            other["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({"local_address": "127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The ended-session record keeps the reported address; a session that
    // never reported one records none.
    assert_eq!(h.delete_session(&id, "alice").await.status(), 200);
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.client_address.as_deref(), Some("127.0.0.1:2222"));
    let oid = other["id"].as_str().unwrap();
    assert_eq!(h.delete_session(oid, "alice").await.status(), 200);
    let rec = h.audit.wait_for(oid, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.client_address, None);
}

#[tokio::test]
async fn nonce_expires() {
    let h = spawn(echo_server().await, |c| {
        c.nonce_ttl = Duration::from_millis(100)
    })
    .await;
    let created = h.create_browser("alice").await.unwrap();
    let launch = rac::LaunchUrl::parse(created["launch_url"].as_str().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = h
        .http
        .post(format!(
            "{}/api/v1/sessions/{}/client-token",
            h.base, launch.session
        ))
        .json(&serde_json::json!({ "nonce": launch.nonce }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn attach_deadline_ends_pending_and_half_sessions() {
    let mut h = spawn(echo_server().await, |c| {
        c.attach_deadline = Duration::from_millis(300)
    })
    .await;
    let pending = h.create_cli().await.unwrap();
    let pid = pending["id"].as_str().unwrap().to_owned();
    let rec = h
        .audit
        .wait_for(&pid, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(rec.reason, "attach_timeout");
    assert!(rec.started.is_none());

    let half = h.create_cli().await.unwrap();
    let hid = half["id"].as_str().unwrap().to_owned();
    let _ = h.next_start().await;
    let _ = h.next_start().await;
    let mut ws = ws_attach(
        half["client_url"].as_str().unwrap(),
        half["client_token"].as_str().unwrap(),
        true,
    )
    .await
    .unwrap();
    let (code, _) = read_until_close(&mut ws).await;
    assert_eq!(code, close::PEER_TIMEOUT);
    let rec = h
        .audit
        .wait_for(&hid, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(rec.reason, "peer_timeout");
}

/// Read frames until CLOSE; returns its code and reason.
async fn read_until_close(ws: &mut net::ws::ClientWs) -> (u16, String) {
    let fut = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m {
                if let Ok(Frame::Close { code, reason }) = Frame::decode(b) {
                    return (code, reason);
                }
            }
        }
        panic!("socket ended without CLOSE");
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("no CLOSE within 5 s")
}

fn hello() -> Message {
    hello_with(tunnel::DEFAULT_WINDOW, tunnel::DEFAULT_MAX_PAYLOAD)
}

fn hello_with(initial_window: u32, max_payload: u32) -> Message {
    Message::Binary(
        Frame::Hello(Hello {
            version: 1,
            initial_window,
            max_payload,
            capabilities: 0,
        })
        .to_bytes(),
    )
}

/// Attach both sides as raw WebSockets and send HELLO on each.
async fn raw_pair(h: &mut Harness) -> (String, net::ws::ClientWs, net::ws::ClientWs) {
    let created = h.create_cli().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let start = h.next_start().await;
    let mut c = ws_attach(
        created["client_url"].as_str().unwrap(),
        created["client_token"].as_str().unwrap(),
        true,
    )
    .await
    .unwrap();
    let mut s = ws_attach(&start.server_url, start.server_token.expose(), true)
        .await
        .unwrap();
    c.send(hello()).await.unwrap();
    s.send(hello()).await.unwrap();
    (id, c, s)
}

/// Next non-PING frame.
async fn next_frame(ws: &mut net::ws::ClientWs) -> Frame {
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    let f = Frame::decode(b).unwrap();
                    if !matches!(f, Frame::Ping { .. }) {
                        return f;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("no frame within 5 s")
}

#[tokio::test]
async fn hello_peer_notices_and_idle_timeout() {
    let mut h = spawn(echo_server().await, |c| {
        c.idle_timeout = Duration::from_millis(400)
    })
    .await;
    let (id, mut c, mut s) = raw_pair(&mut h).await;
    // Each side: the broker's HELLO and PEER attached.
    for ws in [&mut c, &mut s] {
        let two = [next_frame(ws).await, next_frame(ws).await];
        assert!(
            two.iter()
                .any(|f| matches!(f, Frame::Hello(hl) if hl.version == 1))
        );
        assert!(two.contains(&Frame::Peer {
            state: PeerState::Attached
        }));
    }
    // Some DATA postpones the idle end.
    let sid = StreamId::new(1).unwrap();
    c.send(Message::Binary(
        Frame::Open {
            stream: sid,
            label: "ssh".into(),
        }
        .to_bytes(),
    ))
    .await
    .unwrap();
    assert!(matches!(next_frame(&mut s).await, Frame::Open { .. }));
    s.send(Message::Binary(Frame::OpenOk { stream: sid }.to_bytes()))
        .await
        .unwrap();
    assert!(matches!(next_frame(&mut c).await, Frame::OpenOk { .. }));
    let data = Frame::Data {
        stream: sid,
        payload: Bytes::from_static(b"abc"),
    }
    .to_bytes();
    c.send(Message::Binary(data.clone())).await.unwrap();
    // Forwarded as the very same bytes.
    match s.next().await {
        Some(Ok(Message::Binary(b))) => assert_eq!(b, data),
        other => panic!("{other:?}"),
    }
    let (code, reason) = read_until_close(&mut c).await;
    assert_eq!(code, close::IDLE);
    assert!(reason.contains("idle"), "{reason}");
    assert_eq!(read_until_close(&mut s).await.0, close::IDLE);
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "idle_timeout");
    assert_eq!(rec.bytes_client_to_server, 3);
    assert_eq!(rec.streams, 1);
}

#[tokio::test]
async fn data_beyond_the_window_is_a_protocol_error() {
    let mut h = spawn(echo_server().await, |c| {
        c.initial_window = 4096;
        c.max_payload = 4096;
    })
    .await;
    let (id, mut c, mut s) = raw_pair(&mut h).await;
    let sid = StreamId::new(1).unwrap();
    c.send(Message::Binary(
        Frame::Open {
            stream: sid,
            label: String::new(),
        }
        .to_bytes(),
    ))
    .await
    .unwrap();
    for _ in 0..2 {
        let d = Frame::Data {
            stream: sid,
            payload: Bytes::from(vec![7u8; 3000]),
        };
        c.send(Message::Binary(d.to_bytes())).await.unwrap();
    }
    let (code, reason) = read_until_close(&mut c).await;
    assert_eq!(code, close::PROTOCOL_ERROR);
    assert!(reason.contains("beyond the window"), "{reason}");
    // The edge is told the client went, then CLOSE.
    assert_eq!(read_until_close(&mut s).await.0, close::PROTOCOL_ERROR);
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "protocol_error");
    assert_eq!(rec.bytes_client_to_server, 3000);
}

#[tokio::test]
async fn bad_frames_end_the_session() {
    for (what, frame, expect) in [
        (
            "unknown kind",
            Bytes::from_static(&[0x7f, 0, 0, 0, 0]),
            "unknown frame kind",
        ),
        (
            "frame for a stream never opened",
            Frame::Fin {
                stream: StreamId::new(9).unwrap(),
            }
            .to_bytes(),
            "does not exist",
        ),
        (
            "PEER from a side",
            Frame::Peer {
                state: PeerState::Left,
            }
            .to_bytes(),
            "broker only",
        ),
    ] {
        let mut h = spawn(echo_server().await, |_| {}).await;
        let (_id, mut c, _s) = raw_pair(&mut h).await;
        c.send(Message::Binary(frame)).await.unwrap();
        let (code, reason) = read_until_close(&mut c).await;
        assert_eq!(code, close::PROTOCOL_ERROR, "{what}");
        assert!(reason.contains(expect), "{what}: {reason}");
    }
}

#[tokio::test]
async fn stream_limit_resets_extra_opens() {
    let mut h = spawn(echo_server().await, |c| c.max_streams_per_session = 1).await;
    let (_id, mut c, mut s) = raw_pair(&mut h).await;
    for ws in [&mut c, &mut s] {
        let _ = next_frame(ws).await; // HELLO
        let _ = next_frame(ws).await; // PEER
    }
    for n in [1, 3] {
        let open = Frame::Open {
            stream: StreamId::new(n).unwrap(),
            label: String::new(),
        };
        c.send(Message::Binary(open.to_bytes())).await.unwrap();
    }
    match next_frame(&mut c).await {
        Frame::Reset { stream, code, .. } => {
            assert_eq!(stream.get(), 3);
            assert_eq!(code, tunnel::reset::BUSY);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(next_frame(&mut s).await, Frame::Open { stream, .. } if stream.get() == 1));
}

#[tokio::test]
async fn user_session_limit_and_edge_refusal() {
    let h = spawn(echo_server().await, |c| c.max_sessions_per_user = 1).await;
    h.create_cli().await.unwrap();
    let r = h
        .http
        .post(format!("{}/api/v1/sessions", h.base))
        .header("appKey", APP_KEY)
        .json(&serde_json::json!({"thing": THING, "interface": "ssh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Another user is not affected; an edge refusal is reported and audited.
    h.edge
        .refuse(Some(broker::EdgeError::NotConnected(THING.into())));
    let r = h
        .http
        .post(format!("{}/api/v1/sessions", h.base))
        .header("cookie", "session=bob")
        .json(&serde_json::json!({"thing": THING, "interface": "ssh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let refused = eventually(Duration::from_secs(5), || async {
        h.audit
            .records()
            .into_iter()
            .find(|r| r.reason == "edge_refused")
    })
    .await
    .unwrap();
    assert_eq!(refused.user, "bob");
    assert!(
        h.edge
            .completed()
            .iter()
            .all(|c| c.session_id != refused.id),
        "CompleteTunnel sent to an edge that refused"
    );
    // Unknown interface and no credentials.
    let r = h
        .http
        .post(format!("{}/api/v1/sessions", h.base))
        .header("cookie", "session=bob")
        .json(&serde_json::json!({"thing": THING, "interface": "vnc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = h
        .http
        .get(format!("{}/api/v1/sessions", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A slow target: the broker never queues more than the window plus one
/// frame towards the edge, and every byte arrives.
#[tokio::test]
async fn slow_reader_keeps_broker_memory_bounded() {
    const TOTAL: usize = 6 * 1024 * 1024;
    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = sink.local_addr().unwrap().port();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut s, _) = sink.accept().await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = 0usize;
        let mut sum = 0u64;
        while got < TOTAL {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "target saw EOF after {got} bytes");
            sum += buf[..n].iter().map(|b| u64::from(*b)).sum::<u64>();
            got += n;
            // A slow reader: 16 KiB per millisecond at most.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sum
    });
    let mut h = spawn(port, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let edge = spawn_edge(h.next_start().await, Duration::from_secs(15));
    let stop = CancellationToken::new();
    let (local, client) = serve_client(&created, stop.clone()).await;
    let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 % 256) as u8).collect();
    let want: u64 = data.iter().map(|b| u64::from(*b)).sum();
    let mut s = TcpStream::connect(local).await.unwrap();
    {
        use tokio::io::AsyncWriteExt;
        s.write_all(&data).await.unwrap();
    }
    let sum = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, want);
    let high = h
        .broker
        .queued_high_water(&id, broker::Side::Server)
        .unwrap();
    let bound = (tunnel::DEFAULT_WINDOW + tunnel::DEFAULT_MAX_PAYLOAD) as usize + 64;
    eprintln!("broker queue high-water towards the edge: {high} bytes (bound {bound})");
    assert!(high <= bound, "broker queued {high} bytes, bound {bound}");
    assert!(high > 0);
    stop.cancel();
    let end = client.await.unwrap();
    assert_eq!(end.exit_code(), rac::EXIT_OK);
    let _ = edge.await;
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.bytes_client_to_server, TOTAL as u64);
    assert_eq!(rec.reason, "client_left");
    let _ = Kind::Data;
}

/// The edge goes silent: the broker notices within 2 × ping and tells the
/// RAC (PEER left, CLOSE peer gone).
#[tokio::test]
async fn silent_edge_is_noticed() {
    let mut h = spawn(echo_server().await, |c| {
        c.ping_interval = Duration::from_millis(200)
    })
    .await;
    let created = h.create_cli().await.unwrap();
    let start = h.next_start().await;
    let mut s = ws_attach(&start.server_url, start.server_token.expose(), true)
        .await
        .unwrap();
    s.send(hello()).await.unwrap();
    let tunnel = attach_client(&created).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let began = tokio::time::Instant::now();
    let end = tokio::time::timeout(
        Duration::from_secs(5),
        tunnel.serve(listener, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(end.code, Some(close::PEER_GONE));
    assert_eq!(end.exit_code(), rac::EXIT_LOST);
    assert!(began.elapsed() < Duration::from_secs(2));
    drop(s);
}

#[tokio::test]
async fn oversized_frame_gets_a_clear_close() {
    let mut h = spawn(echo_server().await, |c| c.max_payload = 2048).await;
    let (id, mut c, mut s) = raw_pair(&mut h).await;
    let sid = StreamId::new(1).unwrap();
    let open = Frame::Open {
        stream: sid,
        label: String::new(),
    };
    c.send(Message::Binary(open.to_bytes())).await.unwrap();
    let big = Frame::Data {
        stream: sid,
        payload: Bytes::from(vec![1u8; 4096]),
    };
    c.send(Message::Binary(big.to_bytes())).await.unwrap();
    let (code, reason) = read_until_close(&mut c).await;
    assert_eq!(code, close::PROTOCOL_ERROR);
    assert!(reason.contains("exceeds max_payload 2048"), "{reason}");
    assert_eq!(read_until_close(&mut s).await.0, close::PROTOCOL_ERROR);
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.bytes_client_to_server, 0);
}

#[tokio::test]
async fn max_duration_ends_an_active_session() {
    let mut h = spawn(echo_server().await, |c| {
        c.max_duration = Duration::from_millis(500)
    })
    .await;
    let (id, mut c, mut s) = raw_pair(&mut h).await;
    assert_eq!(read_until_close(&mut c).await.0, close::MAX_DURATION);
    assert_eq!(read_until_close(&mut s).await.0, close::MAX_DURATION);
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "max_duration");
    assert!(rec.started.is_some());
}

#[tokio::test]
async fn admin_sees_all_and_ends_any_session() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let (id, mut c, _s) = raw_pair(&mut h).await;
    let list = |user: &'static str| {
        let http = h.http.clone();
        let url = format!("{}/api/v1/sessions", h.base);
        async move {
            let r = http
                .get(url)
                .header("cookie", format!("session={user}"))
                .send()
                .await
                .unwrap();
            r.json::<Vec<serde_json::Value>>().await.unwrap()
        }
    };
    assert_eq!(list("alice").await.len(), 1);
    assert_eq!(list("bob").await.len(), 0);
    assert_eq!(list("root").await.len(), 1);
    // Bob may not end Alice's session; root may.
    assert_eq!(h.delete_session(&id, "bob").await.status(), 404);
    let r = h.delete_session(&id, "root").await;
    assert_eq!(r.status(), 200);
    let (code, reason) = read_until_close(&mut c).await;
    assert_eq!(code, close::ENDED);
    assert!(reason.contains("administrator root"), "{reason}");
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "ended_by_admin");
    assert_eq!(rec.user, "alice");
}

#[tokio::test]
async fn shutdown_ends_every_session() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let (id, mut c, mut s) = raw_pair(&mut h).await;
    let pending = h.create_cli().await.unwrap();
    h.shutdown.cancel();
    assert_eq!(read_until_close(&mut c).await.0, close::GOING_AWAY);
    assert_eq!(read_until_close(&mut s).await.0, close::GOING_AWAY);
    let tracker = h.broker.tracker();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .expect("broker tasks did not finish");
    let rec = h.audit.wait_for(&id, Duration::from_secs(1)).await.unwrap();
    assert_eq!(rec.reason, "shutdown");
    let pid = pending["id"].as_str().unwrap();
    let rec = h.audit.wait_for(pid, Duration::from_secs(1)).await.unwrap();
    assert_eq!(rec.reason, "shutdown");
    assert_eq!(h.edge.completed().len(), 2);
}

/// The RAC attaches and a connection starts before the edge arrives: the
/// broker holds the stream until the edge attaches, then bytes flow. When
/// the edge leaves, the RAC is told why and exits with EXIT_ENDED.
#[tokio::test]
async fn client_first_then_edge_then_edge_leaves() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let start = h.next_start().await;
    let (local, client) = serve_client(&created, CancellationToken::new()).await;
    let mut s = TcpStream::connect(local).await.unwrap();
    let echo = {
        let data = b"typed before the device was there".to_vec();
        tokio::spawn(async move {
            let back = echo_round(&mut s, &data).await.unwrap();
            assert_eq!(back, data);
            s
        })
    };
    // The session is half-attached while the stream waits.
    let half = eventually(Duration::from_secs(5), || async {
        let v: serde_json::Value = h.get_session(&id, "alice").await.json().await.ok()?;
        (v["state"] == "half").then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(half["client_attached"], true);
    let edge = spawn_edge(start, Duration::from_secs(15));
    let _s = tokio::time::timeout(Duration::from_secs(5), echo)
        .await
        .unwrap()
        .unwrap();
    // The edge process dies: its socket drops without a CLOSE.
    edge.abort();
    let end = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.code, Some(close::PEER_LEFT), "{}", end.message());
    assert!(end.reason.contains("server side left"), "{}", end.reason);
    assert_eq!(end.exit_code(), rac::EXIT_ENDED);
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "server_left");
}

/// Rough throughput figure (run with `--ignored --nocapture`, ideally with
/// `--release`): 64 MiB up through RAC → broker → edge → echo and back.
#[tokio::test]
#[ignore]
async fn throughput_figure() {
    const TOTAL: usize = 64 * 1024 * 1024;
    let mut h = spawn(echo_server().await, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let _edge = spawn_edge(h.next_start().await, Duration::from_secs(15));
    let (local, _client) = serve_client(&created, CancellationToken::new()).await;
    let mut s = TcpStream::connect(local).await.unwrap();
    let data = vec![0x5au8; TOTAL];
    let began = std::time::Instant::now();
    let back = echo_round(&mut s, &data).await.unwrap();
    let took = began.elapsed();
    assert_eq!(back.len(), TOTAL);
    eprintln!(
        "64 MiB each way through the broker in {took:?}: {:.0} MiB/s each way",
        64.0 / took.as_secs_f64()
    );
}

/// The broker waits for both HELLOs and sends both sides the same values,
/// min(client, server, broker); the window it enforces is that minimum.
#[tokio::test]
async fn both_sides_get_the_same_hello() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let start = h.next_start().await;
    let mut c = ws_attach(
        created["client_url"].as_str().unwrap(),
        created["client_token"].as_str().unwrap(),
        true,
    )
    .await
    .unwrap();
    c.send(hello_with(64 * 1024, 60_000)).await.unwrap();
    // Alone, the client hears no HELLO yet, but its PING is answered.
    c.send(Message::Binary(Frame::Ping { opaque: 7 }.to_bytes()))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut c).await, Frame::Pong { opaque: 7 });
    let mut s = ws_attach(&start.server_url, start.server_token.expose(), true)
        .await
        .unwrap();
    s.send(hello_with(128 * 1024, 30_000)).await.unwrap();
    for ws in [&mut c, &mut s] {
        let two = [next_frame(ws).await, next_frame(ws).await];
        let hello = two
            .iter()
            .find_map(|f| match f {
                Frame::Hello(hl) => Some(*hl),
                _ => None,
            })
            .expect("no HELLO");
        assert_eq!(hello.initial_window, 64 * 1024);
        assert_eq!(hello.max_payload, 30_000);
    }
    // The negotiated 64 KiB window is enforced.
    let sid = StreamId::new(1).unwrap();
    let open = Frame::Open {
        stream: sid,
        label: String::new(),
    };
    c.send(Message::Binary(open.to_bytes())).await.unwrap();
    for _ in 0..3 {
        let d = Frame::Data {
            stream: sid,
            payload: Bytes::from(vec![0u8; 25_000]),
        };
        c.send(Message::Binary(d.to_bytes())).await.unwrap();
    }
    let (code, reason) = read_until_close(&mut c).await;
    assert_eq!(code, close::PROTOCOL_ERROR);
    assert!(reason.contains("15536 allowed"), "{reason}");
}
