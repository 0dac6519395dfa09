//! `http::serve` on real loopback sockets: axum websockets over TLS, peer
//! address and custom headers, connection cap, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message as AxMessage, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use net::http::{ServeOptions, serve};
use net::tls::{self, ALPN_HTTP1};
use net::ws::{self, ClientWs, WsConfig};
use net::{CancellationToken, NetError, SelfSigned, Trust};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct AppState {
    shutdown: CancellationToken,
    /// Whether websocket handlers close when `shutdown` is cancelled.
    obey_shutdown: bool,
}

async fn ws_route(
    upgrade: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    let key = headers
        .get("appKey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned();
    WsConfig::small()
        .apply_axum(upgrade)
        .on_upgrade(move |mut socket| async move {
            let hello = format!("appKey={key} peer={peer}");
            if socket.send(AxMessage::Text(hello.into())).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    msg = socket.recv() => match msg {
                        Some(Ok(AxMessage::Text(t))) => {
                            if socket.send(AxMessage::Text(t)).await.is_err() {
                                break;
                            }
                        }
                        Some(Ok(AxMessage::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                    () = state.shutdown.cancelled(), if state.obey_shutdown => {
                        let close = CloseFrame { code: 1001, reason: "server shutting down".into() };
                        let _ = socket.send(AxMessage::Close(Some(close))).await;
                        break;
                    }
                }
            }
        })
}

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), NetError>>,
    trust: Arc<rustls::ClientConfig>,
}

async fn start(tls_on: bool, opts: ServeOptions, obey_shutdown: bool) -> Server {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let server_tls = tls_on.then(|| cert.server_config(&[ALPN_HTTP1]).unwrap());
    let trust =
        tls::client_config(&Trust::Pinned(vec![cert.fingerprint()]), &[ALPN_HTTP1]).unwrap();
    let shutdown = CancellationToken::new();
    let state = AppState {
        shutdown: shutdown.clone(),
        obey_shutdown,
    };
    let app = Router::new()
        .route("/ws", get(ws_route))
        .route("/health", get(|| async { "ok" }))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve(listener, server_tls, app, opts, shutdown.clone()));
    Server {
        addr,
        shutdown,
        task,
        trust,
    }
}

impl Server {
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/ws", self.addr)
    }

    async fn connect(&self, scheme: &str, key: &str) -> Result<ClientWs, NetError> {
        ws::connect(
            &self.url(scheme),
            &[("appKey", key)],
            self.trust.clone(),
            WsConfig::small(),
            T,
        )
        .await
    }
}

async fn next_text(ws: &mut ClientWs) -> String {
    match tokio::time::timeout(T, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn local_addr(ws: &ClientWs) -> SocketAddr {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s.local_addr().unwrap(),
        MaybeTlsStream::Rustls(s) => s.get_ref().0.local_addr().unwrap(),
        _ => panic!("unexpected stream type"),
    }
}

#[tokio::test]
async fn websocket_over_tls_sees_app_key_and_peer_and_echoes() {
    let server = start(true, ServeOptions::default(), true).await;
    let mut ws = server.connect("wss", "secret-key-1").await.unwrap();
    assert!(matches!(ws.get_ref(), MaybeTlsStream::Rustls(_)));
    let hello = next_text(&mut ws).await;
    assert_eq!(
        hello,
        format!("appKey=secret-key-1 peer={}", local_addr(&ws))
    );
    ws.send(Message::Text("echo me".into())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "echo me");
    ws.close(None).await.unwrap();
    server.shutdown.cancel();
    tokio::time::timeout(T, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn plain_websocket_works_without_tls() {
    let server = start(false, ServeOptions::default(), true).await;
    let mut ws = server.connect("ws", "k").await.unwrap();
    assert!(matches!(ws.get_ref(), MaybeTlsStream::Plain(_)));
    assert!(
        next_text(&mut ws)
            .await
            .starts_with("appKey=k peer=127.0.0.1:")
    );
    server.shutdown.cancel();
    tokio::time::timeout(T, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn refused_upgrade_reports_the_status() {
    let server = start(true, ServeOptions::default(), true).await;
    let err = ws::connect(
        &format!("wss://{}/nowhere", server.addr),
        &[],
        server.trust.clone(),
        WsConfig::default(),
        T,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NetError::WsRefused { status, .. } if status.as_u16() == 404),
        "{err}"
    );
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}

#[tokio::test]
async fn bad_url_and_header_are_rejected_before_connecting() {
    let trust = tls::client_config(&Trust::default(), &[ALPN_HTTP1]).unwrap();
    let err = ws::connect(
        "http://127.0.0.1:1/ws",
        &[],
        trust.clone(),
        WsConfig::small(),
        T,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("scheme must be ws or wss"),
        "{err}"
    );
    let err = ws::connect(
        "ws://127.0.0.1:1/ws",
        &[("bad header", "x")],
        trust,
        WsConfig::small(),
        T,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, NetError::InvalidHeader { .. }), "{err}");
}

#[tokio::test]
async fn connection_cap_closes_extra_connections_and_frees_on_close() {
    let opts = ServeOptions {
        max_connections: 1,
        ..ServeOptions::default()
    };
    let server = start(true, opts, true).await;
    let mut first = server.connect("wss", "one").await.unwrap();
    next_text(&mut first).await;

    // The upgraded websocket still holds the only slot.
    let err = server.connect("wss", "two").await.unwrap_err();
    assert!(matches!(err, NetError::WsConnect { .. }), "{err}");

    first.close(None).await.unwrap();
    // Wait for the server to see the close, then a new client gets in.
    while first.next().await.is_some() {}
    drop(first);
    let deadline = Instant::now() + T;
    let mut again = loop {
        match server.connect("wss", "three").await {
            Ok(ws) => break ws,
            Err(e) if Instant::now() < deadline => {
                tokio::task::yield_now().await;
                let _ = e;
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    };
    assert!(next_text(&mut again).await.starts_with("appKey=three"));
}

#[tokio::test]
async fn shutdown_closes_websockets_stops_accepting_and_returns() {
    let server = start(true, ServeOptions::default(), true).await;
    let mut ws = server.connect("wss", "k").await.unwrap();
    next_text(&mut ws).await;
    server.shutdown.cancel();
    // The handler closes with 1001.
    match tokio::time::timeout(T, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1001);
            assert_eq!(frame.reason.as_str(), "server shutting down");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    drop(ws);
    tokio::time::timeout(T, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_returns_after_the_grace_period_if_a_websocket_stays_open() {
    let opts = ServeOptions {
        grace_period: Duration::from_millis(200),
        ..ServeOptions::default()
    };
    let server = start(true, opts, false).await;
    let mut ws = server.connect("wss", "k").await.unwrap();
    next_text(&mut ws).await;
    let started = Instant::now();
    server.shutdown.cancel();
    tokio::time::timeout(T, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    // The websocket itself was not killed by serve.
    ws.send(Message::Text("still here".into())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "still here");
}

#[tokio::test]
async fn silent_tls_client_is_dropped_at_the_handshake_deadline() {
    let opts = ServeOptions {
        handshake_timeout: Duration::from_millis(100),
        max_connections: 1,
        ..ServeOptions::default()
    };
    let server = start(true, opts, true).await;
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The server closes the silent connection by itself...
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(T, tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    // ...and its slot is free again.
    let deadline = Instant::now() + T;
    loop {
        match server.connect("wss", "after").await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    }
}

#[tokio::test]
async fn websocket_with_wrong_pin_or_default_trust_fails_with_a_clear_error() {
    let server = start(true, ServeOptions::default(), true).await;
    let other = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let cases = [
        (
            Trust::Pinned(vec![other.fingerprint()]),
            "does not match the pinned fingerprint",
        ),
        (Trust::default(), "invalid peer certificate: UnknownIssuer"),
    ];
    for (trust, expected) in cases {
        let config = tls::client_config(&trust, &[ALPN_HTTP1]).unwrap();
        let err = ws::connect(&server.url("wss"), &[], config, WsConfig::small(), T)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, NetError::WsConnect { .. }), "{text}");
        assert!(
            text.starts_with(&format!(
                "websocket connect to {} failed: ",
                server.url("wss")
            )),
            "{text}"
        );
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("OtherError"), "{text}");
    }
}
