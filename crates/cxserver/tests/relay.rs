//! Connection server against a fake platform on real loopback TLS websockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use alwayson::{Body, Code, Header, Limits, Message};
use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (FakePlatform, Cx) {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |_| {}).await;
    cx.wait_links_up(2).await.unwrap();
    (platform, cx)
}

/// Next close frame code from the server (skipping data), with the time it took.
async fn expect_close(edge: &mut Edge) -> (Option<CloseCode>, String) {
    loop {
        match tokio::time::timeout(WAIT, edge.ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(WsMessage::Close(f))) => {
                return (
                    f.as_ref().map(|f| f.code),
                    f.map(|f| f.reason.to_string()).unwrap_or_default(),
                );
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (None, String::new()),
        }
    }
}

#[tokio::test]
async fn edge_auth_and_bind_are_relayed_with_an_endpoint_id() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut edge = Edge::connect(&cx).await?;
    let auth = edge.auth(EDGE_KEY).await?;
    assert_eq!(auth.header.code, Code::SUCCESS);
    assert_eq!(
        auth.header.endpoint_id, 0,
        "the edge sees endpointId 0, as from a platform"
    );
    assert_eq!(auth.header.request_id, 3);
    let endpoint = platform
        .seen()
        .iter()
        .find_map(|s| match s {
            Seen::Auth {
                endpoint, ok: true, ..
            } => Some(*endpoint),
            _ => None,
        })
        .expect("platform saw the AUTH");
    assert_ne!(endpoint, 0);
    assert!(
        platform.seen().contains(&Seen::Peer {
            endpoint,
            peer: Some("127.0.0.1".into())
        }),
        "the edge's address is passed in the tether-peer claim"
    );
    let bind = edge.bind(&["Pump1", "Gw"]).await?;
    assert_eq!(bind.header.code, Code::SUCCESS);
    assert_eq!(bind.header.endpoint_id, 0);
    assert_eq!(bind.header.session_id, edge.session);
    let (_, bound_ep) = platform.bound("Pump1").expect("Pump1 bound");
    assert_eq!(bound_ep, endpoint);
    assert_eq!(platform.bound("Gw").map(|b| b.1), Some(endpoint));
    // An edge-originated request is answered by the platform through the link.
    let id = edge.next_id();
    edge.send(&Message::request(
        Code::GET,
        id,
        edge.session,
        get_property("Pump1", "Temp"),
    ))
    .await?;
    let r = edge.recv().await?;
    assert_eq!((r.header.code, r.header.request_id), (Code::SUCCESS, id));
    assert_eq!(cx.metrics.binds.get(), 2);
    assert_eq!(cx.metrics.authenticated.get(), 1);
    Ok(())
}

#[tokio::test]
async fn platform_request_is_routed_to_the_edge_and_answered() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut a = Edge::connect_bound(&cx, &["A1"]).await?;
    let mut b = Edge::connect_bound(&cx, &["B1"]).await?;
    let pa = tokio::spawn({
        async move {
            let req = a.answer_one().await.unwrap();
            (a, req)
        }
    });
    let answer = platform
        .request("A1", Code::GET, get_property("A1", "Temp"))
        .await?;
    assert_eq!(answer.header.code, Code::SUCCESS);
    let Body::Response(r) = &answer.body else {
        panic!("{answer:?}")
    };
    assert_eq!(r.reason.as_deref(), Some("answered Temp"));
    let (a, req) = pa.await?;
    assert_eq!(req.header.endpoint_id, 0, "the edge sees endpointId 0");
    assert_eq!(req.header.session_id, a.session);
    // B gets its own.
    let pb = tokio::spawn(async move { b.answer_one().await.unwrap() });
    let answer = platform
        .request("B1", Code::GET, get_property("B1", "Level"))
        .await?;
    let Body::Response(r) = &answer.body else {
        panic!("{answer:?}")
    };
    assert_eq!(r.reason.as_deref(), Some("answered Level"));
    assert!(matches!(pb.await?.body, Body::Request(_)));
    let text = cx.metrics.render();
    assert!(
        text.contains("tether_cx_request_duration_seconds_count{direction=\"platform_to_edge\"} 2"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn socket_without_auth_is_closed_after_the_timeout() -> Result<()> {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |c| {
        c.edge.auth_request_timeout = Duration::from_millis(300)
    })
    .await;
    cx.wait_links_up(1).await?;
    let mut edge = Edge::connect(&cx).await?;
    let start = Instant::now();
    let (code, reason) = expect_close(&mut edge).await;
    let took = start.elapsed();
    assert_eq!(code, Some(CloseCode::Policy));
    assert_eq!(reason, "authentication request timeout");
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "closed too late: {took:?}");
    assert_eq!(cx.metrics.auth_timeouts.get(), 1);
    Ok(())
}

#[tokio::test]
async fn idle_socket_is_closed_after_the_idle_timeout() -> Result<()> {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |c| {
        c.edge.idle_timeout = Duration::from_millis(400)
    })
    .await;
    cx.wait_links_up(1).await?;
    let mut edge = Edge::connect_bound(&cx, &["Idle1"]).await?;
    let (code, reason) = expect_close(&mut edge).await;
    assert_eq!(
        (code, reason.as_str()),
        (Some(CloseCode::Normal), "idle timeout")
    );
    platform
        .wait_until(WAIT, "UNBIND Idle1", |p| p.bound("Idle1").is_none())
        .await?;
    Ok(())
}

#[tokio::test]
async fn wrong_key_is_refused_by_the_platform_and_the_socket_closed() -> Result<()> {
    let (_platform, cx) = setup().await;
    let mut edge = Edge::connect(&cx).await?;
    let r = edge.auth("wrong").await?;
    assert_eq!(r.header.code, Code::UNAUTHORIZED);
    let (code, _) = expect_close(&mut edge).await;
    assert_eq!(code, Some(CloseCode::Policy));
    assert_eq!(cx.metrics.auth_failures.get(), 1);
    Ok(())
}

#[tokio::test]
async fn edge_socket_death_unbinds_its_things_upstream() -> Result<()> {
    let (platform, cx) = setup().await;
    let edge = Edge::connect_bound(&cx, &["Dies1", "Dies2"]).await?;
    let (_, endpoint) = platform.bound("Dies1").unwrap();
    drop(edge); // TCP closes without a close frame
    platform
        .wait_until(WAIT, "endpoint gone", |p| {
            p.seen().iter().any(|s| matches!(s, Seen::Gone { .. }))
        })
        .await?;
    let seen = platform.seen();
    let unbind = seen.iter().position(|s| {
        matches!(s, Seen::Unbind { endpoint: e, names, .. } if *e == endpoint && names == &["Dies1", "Dies2"])
    });
    let gone = seen
        .iter()
        .position(|s| matches!(s, Seen::Gone { endpoint: e, .. } if *e == endpoint));
    assert!(
        unbind.is_some() && gone.is_some() && unbind < gone,
        "{seen:?}"
    );
    assert!(platform.bound("Dies1").is_none());
    wait_for(WAIT, "binds gauge 0", || cx.metrics.binds.get() == 0).await?;
    Ok(())
}

#[tokio::test]
async fn link_drop_reconnects_and_rebinds_connected_edges() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut edge = Edge::connect_bound(&cx, &["Survivor"]).await?;
    let (old_link, _) = platform.bound("Survivor").unwrap();
    platform.kill_links();
    platform
        .wait_until(WAIT, "re-bound on a new link", |p| {
            p.bound("Survivor").is_some_and(|(l, _)| l != old_link)
        })
        .await?;
    cx.wait_links_up(2).await?;
    // The edge never noticed: a platform request still reaches it, with the session it knows.
    let session = edge.session;
    let answering = tokio::spawn(async move {
        let req = edge.answer_one().await.unwrap();
        (edge, req)
    });
    let answer = platform
        .request("Survivor", Code::GET, get_property("Survivor", "Temp"))
        .await?;
    assert_eq!(answer.header.code, Code::SUCCESS);
    let (mut edge, req) = answering.await?;
    assert_eq!(
        req.header.session_id, session,
        "session translated back to the edge's"
    );
    // And the edge's own messages, carrying its old session, are accepted upstream.
    let id = edge.next_id();
    edge.send(&Message::request(
        Code::GET,
        id,
        session,
        get_property("Survivor", "X"),
    ))
    .await?;
    let r = edge.recv().await?;
    assert_eq!(r.header.code, Code::SUCCESS, "{r:?}");
    assert_eq!(r.header.session_id, session);
    Ok(())
}

#[tokio::test]
async fn health_is_504_without_platform_and_200_with_it() -> Result<()> {
    let platform = FakePlatform::start().await;
    platform.refuse_links(true);
    let cx = spawn_cx(&platform, |_| {}).await;
    wait_for(WAIT, "a refused link attempt", || {
        cx.metrics.link_failures.get() > 0
    })
    .await?;
    let (status, _) = http_get(cx.health_addr, "/health").await?;
    assert_eq!(status, 504);
    // An edge arriving now is told the platform is unavailable.
    let mut edge = Edge::connect(&cx).await?;
    let r = edge.auth(EDGE_KEY).await?;
    assert_eq!(r.header.code, Code::SERVICE_UNAVAILABLE);
    platform.refuse_links(false);
    cx.wait_links_up(1).await?;
    let (status, body) = http_get(cx.health_addr, "/health").await?;
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = http_get(cx.health_addr, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(metrics.contains("tether_cx_links_up"), "{metrics}");
    assert!(
        metrics.contains("tether_cx_connections_opened_total"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_thousand_silent_sockets_do_not_stop_a_real_edge() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut silent = Vec::with_capacity(1000);
    for _ in 0..1000 {
        silent.push(tokio::net::TcpStream::connect(cx.edge_addr).await?);
    }
    let start = Instant::now();
    let edge = Edge::connect_bound(&cx, &["Real1"]).await?;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(platform.bound("Real1").is_some());
    drop(edge);
    drop(silent);
    Ok(())
}

/// The byte-exact ThingWorx upgrade (spec §12.15) and zero-mask frames are accepted, and the
/// edge's `HH:MM:SS` ping is answered with the same payload (§12.1).
#[tokio::test]
async fn thingworx_upgrade_bytes_and_zero_mask_frames() -> Result<()> {
    let (platform, cx) = setup().await;
    let tcp = tokio::net::TcpStream::connect(cx.edge_addr).await?;
    let connector = tokio_rustls::TlsConnector::from(cx.edge_tls.clone());
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let mut tls = connector.connect(name, tcp).await?;
    let upgrade = "GET /Thingworx/WS HTTP/1.1\r\nUser-Agent: ThingWorx C SDK\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nHost: 127.0.0.1\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: +MAxFC+Wm8e25o4hcy2SEQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\
        Max-Frame-Size: 8192\r\nappKey: edge-app-key\r\n\r\n";
    tls.write_all(upgrade.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tls.read_u8().await?);
    }
    let head = String::from_utf8(head)?;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: zut71jcbifpughxeeg+lfgdcvoi="),
        "{head}"
    );
    // The C SDK offers permessage-deflate and `edge.compression` is on by default: the 101
    // carries the agreed extension (the server keeps no window; the edge's window is kept, as
    // the C SDK refuses `client_no_context_takeover`). The frames below are small, so both
    // directions still travel uncompressed (RSV1 clear), which the extension allows.
    assert_eq!(
        extensions(&head),
        ["permessage-deflate; server_no_context_takeover"],
        "{head}"
    );
    // AUTH as the EMS sends it (reqId 3), masked with key 00000000.
    let auth = Message::auth_app_key(3, EDGE_KEY).to_bytes()?;
    let mut frame = vec![0x82, 0x80 | auth.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&auth);
    tls.write_all(&frame).await?;
    let reply = read_frame(&mut tls).await?;
    assert_eq!(reply.0, 0x82);
    let h = Header::peek(&reply.1)?;
    assert_eq!((h.code, h.request_id, h.endpoint_id), (Code::SUCCESS, 3, 0));
    // Ping "05:39:25" → pong with the same payload.
    let mut ping = vec![0x89, 0x88, 0, 0, 0, 0];
    ping.extend_from_slice(b"05:39:25");
    tls.write_all(&ping).await?;
    let pong = read_frame(&mut tls).await?;
    assert_eq!(pong, (0x8A, b"05:39:25".to_vec()));
    // BIND with the EMS layout (gateway) works too.
    let bind = Message::bind(
        4,
        h.session_id,
        Some(alwayson::Gateway {
            name: "EmsGateway".into(),
            kind: "EMSGateway".into(),
        }),
        vec!["EmsGateway".into(), "PlainThing".into()],
    )
    .to_bytes()?;
    let mut frame = vec![0x82, 0x80 | bind.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&bind);
    tls.write_all(&frame).await?;
    let reply = read_frame(&mut tls).await?;
    let m = Message::decode(&reply.1, &Limits::default())?;
    assert_eq!((m.header.code, m.header.request_id), (Code::SUCCESS, 4));
    assert!(platform.bound("PlainThing").is_some());
    Ok(())
}

#[tokio::test]
async fn upgrade_without_an_offer_has_no_extension_header() -> Result<()> {
    let (_platform, cx) = setup().await;
    let tcp = tokio::net::TcpStream::connect(cx.edge_addr).await?;
    let connector = tokio_rustls::TlsConnector::from(cx.edge_tls.clone());
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let mut tls = connector.connect(name, tcp).await?;
    let upgrade = "GET /Thingworx/WS HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Host: 127.0.0.1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: +MAxFC+Wm8e25o4hcy2SEQ==\r\n\r\n";
    tls.write_all(upgrade.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tls.read_u8().await?);
    }
    let head = String::from_utf8(head)?;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        extensions(&head).is_empty(),
        "no offer, no extension: {head}"
    );
    let auth = Message::auth_app_key(3, EDGE_KEY).to_bytes()?;
    let mut frame = vec![0x82, 0x80 | auth.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&auth);
    tls.write_all(&frame).await?;
    let reply = read_frame(&mut tls).await?;
    assert_eq!(reply.0, 0x82, "plain binary frame, RSV1 clear");
    assert_eq!(Header::peek(&reply.1)?.code, Code::SUCCESS);
    Ok(())
}

/// The values of the `Sec-WebSocket-Extensions` lines of a response head.
fn extensions(head: &str) -> Vec<&str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Reads one unmasked server frame with a 7- or 16-bit length: (first byte, payload).
async fn read_frame<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Result<(u8, Vec<u8>)> {
    let b0 = s.read_u8().await?;
    let b1 = s.read_u8().await?;
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let len = match b1 & 0x7F {
        126 => usize::from(s.read_u16().await?),
        127 => anyhow::bail!("64-bit length not expected"),
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await?;
    Ok((b0, payload))
}

#[tokio::test]
async fn tunnels_pass_through_with_headers_and_subprotocol() -> Result<()> {
    let (platform, cx) = setup().await;
    let url = format!(
        "wss://127.0.0.1:{}/remote-access/v1/sessions/s1/client",
        cx.edge_addr.port()
    );
    let headers = [
        ("Authorization", TUNNEL_TOKEN),
        ("Sec-WebSocket-Protocol", "tether-tunnel.v1"),
    ];
    let (mut ws, resp) = net::ws::connect_with_response(
        &url,
        &headers,
        cx.edge_tls.clone(),
        net::ws::WsConfig::small(),
        Duration::from_secs(5),
    )
    .await?;
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "tether-tunnel.v1"
    );
    ws.send(WsMessage::Binary(bytes::Bytes::from_static(b"\x01hello")))
        .await?;
    let echoed = tokio::time::timeout(WAIT, ws.next()).await?.unwrap()?;
    assert_eq!(
        echoed,
        WsMessage::Binary(bytes::Bytes::from_static(b"\x01hello"))
    );
    let seen = platform.seen();
    assert!(
        seen.contains(&Seen::Tunnel {
            path: "/remote-access/v1/sessions/s1/client".into(),
            protocol: Some("tether-tunnel.v1".into())
        }),
        "{seen:?}"
    );
    assert_eq!(cx.metrics.tunnels.get(), 1);
    // Legacy server side with the edge's appKey header, base64 text frames.
    let url = format!(
        "wss://127.0.0.1:{}/Thingworx/WSTunnelServer/tid-7",
        cx.edge_addr.port()
    );
    let mut legacy = net::ws::connect(
        &url,
        &[("appKey", EDGE_KEY)],
        cx.edge_tls.clone(),
        net::ws::WsConfig::small(),
        WAIT,
    )
    .await?;
    legacy.send(WsMessage::text("aGVsbG8=")).await?;
    assert_eq!(
        tokio::time::timeout(WAIT, legacy.next()).await?.unwrap()?,
        WsMessage::text("aGVsbG8=")
    );
    // A bad token is refused upstream: the edge socket is closed with 1008.
    let bad = [("Authorization", "Bearer bad")];
    let url = format!(
        "wss://127.0.0.1:{}/remote-access/v1/sessions/s2/server",
        cx.edge_addr.port()
    );
    let mut refused = net::ws::connect(
        &url,
        &bad,
        cx.edge_tls.clone(),
        net::ws::WsConfig::small(),
        WAIT,
    )
    .await?;
    match tokio::time::timeout(WAIT, refused.next()).await? {
        Some(Ok(WsMessage::Close(Some(f)))) => {
            assert_eq!(f.code, CloseCode::Policy);
            assert!(f.reason.contains("401"), "{}", f.reason);
        }
        other => panic!("expected a close, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn unknown_path_is_404() -> Result<()> {
    let (_platform, cx) = setup().await;
    let url = format!("wss://127.0.0.1:{}/nope", cx.edge_addr.port());
    let r = net::ws::connect(
        &url,
        &[],
        cx.edge_tls.clone(),
        net::ws::WsConfig::small(),
        WAIT,
    )
    .await;
    assert!(
        matches!(r, Err(net::NetError::WsRefused { status, .. }) if status == 404),
        "{r:?}"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_edges_with_1001_after_unbinding() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut edge = Edge::connect_bound(&cx, &["Drain1"]).await?;
    cx.shutdown.cancel();
    let (code, reason) = expect_close(&mut edge).await;
    assert_eq!(code, Some(CloseCode::Away));
    assert_eq!(reason, "server shutting down");
    platform
        .wait_until(WAIT, "UNBIND at shutdown", |p| p.bound("Drain1").is_none())
        .await?;
    tokio::time::timeout(WAIT, cx.task).await??;
    Ok(())
}

#[tokio::test]
async fn multipart_chunks_are_relayed_both_ways_with_rewritten_headers() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut edge = Edge::connect_bound(&cx, &["Big1"]).await?;
    let (_, endpoint) = platform.bound("Big1").unwrap();
    // Edge -> platform: a request too big for one 8192-byte chunk.
    let id = edge.next_id();
    let big = Message::request(
        Code::GET,
        id,
        edge.session,
        get_property("Big1", &"x".repeat(20_000)),
    );
    let chunks = alwayson::split(&big, 8192)?;
    assert!(chunks.len() >= 3, "{}", chunks.len());
    for c in &chunks {
        edge.ws.send(WsMessage::Binary(c.clone())).await?;
    }
    let n = chunks.len();
    platform
        .wait_until(WAIT, "all chunks", |p| {
            p.seen()
                .iter()
                .filter(|s| matches!(s, Seen::Chunk { request, .. } if *request == id))
                .count()
                == n
        })
        .await?;
    for s in platform.seen() {
        if let Seen::Chunk {
            endpoint: e,
            session,
            request,
            ..
        } = s
        {
            if request == id {
                assert_eq!(e, endpoint, "chunk carries the edge's endpointId");
                assert_eq!(session, edge.session);
            }
        }
    }
    // Platform -> edge: chunks arrive with endpointId 0 and the edge's session.
    let down = Message::request(Code::PUT, 77, 0, get_property("Big1", &"y".repeat(20_000)));
    let frames = alwayson::split(&down, 8192)?;
    let count = frames.len();
    platform.send_frames("Big1", frames)?;
    for _ in 0..count {
        let f = edge.recv_raw().await?;
        assert_eq!(f[14], 1, "a chunk");
        let h = Header::peek(&f)?;
        assert_eq!(
            (h.request_id, h.endpoint_id, h.session_id),
            (77, 0, edge.session)
        );
    }
    Ok(())
}

#[tokio::test]
async fn edges_of_a_dropped_link_fail_over_to_another_link_at_once() -> Result<()> {
    let (platform, cx) = setup().await;
    let mut edge = Edge::connect_bound(&cx, &["Mover"]).await?;
    let (old_link, _) = platform.bound("Mover").unwrap();
    let other = platform
        .link_ids()
        .into_iter()
        .find(|l| *l != old_link)
        .expect("two links");
    // The dropped link cannot come back: only a fail-over can re-bind the edge.
    platform.refuse_links(true);
    platform.kill_link(old_link);
    platform
        .wait_until(WAIT, "re-bound on the other link", |p| {
            p.bound("Mover").is_some_and(|(l, _)| l == other)
        })
        .await?;
    assert_eq!(cx.status.links_up(), 1);
    let session = edge.session;
    let answering = tokio::spawn(async move { edge.answer_one().await.unwrap() });
    let answer = platform
        .request("Mover", Code::GET, get_property("Mover", "Temp"))
        .await?;
    assert_eq!(answer.header.code, Code::SUCCESS);
    assert_eq!(answering.await?.header.session_id, session);
    Ok(())
}

/// `server_url` of a `StartTunnel` request sent by the platform, as the edge receives it.
async fn start_tunnel_url_seen_by_the_edge(
    cx: &Cx,
    platform: &FakePlatform,
    thing: &str,
) -> Result<String> {
    let mut edge = Edge::connect_bound(cx, &[thing]).await?;
    let seen = tokio::spawn(async move { edge.answer_one().await });
    let params = alwayson::InfoTable::single_row([
        ("tid", alwayson::Primitive::String("t1".into())),
        (
            "server_url",
            alwayson::Primitive::String(
                "wss://platform.example:8443/remote-access/v1/sessions/s1/server?x=1".into(),
            ),
        ),
    ]);
    let body = alwayson::RequestBody::new(
        alwayson::EntityType::THING,
        thing,
        alwayson::Characteristic::SERVICES,
        "StartTunnel",
    )
    .with_params(params);
    let answer = platform.request(thing, Code::POST, body).await?;
    assert_eq!(answer.header.code, Code::SUCCESS);
    let req = seen.await??;
    let Body::Request(r) = req.body else {
        anyhow::bail!("not a request: {req:?}")
    };
    match r.params.as_ref().and_then(|p| p.value("server_url")) {
        Some(alwayson::Primitive::String(url)) => Ok(url.clone()),
        other => anyhow::bail!("server_url: {other:?}"),
    }
}

#[tokio::test]
async fn start_tunnel_points_at_the_public_url_when_set() -> Result<()> {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |c| {
        c.edge.public_url = Some(url::Url::parse("wss://cx.example.com:9443").unwrap());
    })
    .await;
    cx.wait_links_up(2).await?;
    assert_eq!(
        start_tunnel_url_seen_by_the_edge(&cx, &platform, "Pump1").await?,
        "wss://cx.example.com:9443/remote-access/v1/sessions/s1/server?x=1"
    );
    // Without it, the (specific) listen address is used.
    let cx = spawn_cx(&platform, |_| {}).await;
    cx.wait_links_up(2).await?;
    assert_eq!(
        start_tunnel_url_seen_by_the_edge(&cx, &platform, "Pump2").await?,
        format!(
            "wss://{}/remote-access/v1/sessions/s1/server?x=1",
            cx.edge_addr
        )
    );
    Ok(())
}
