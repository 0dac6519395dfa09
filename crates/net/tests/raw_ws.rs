//! The raw path used outside axum: `accept::run` + `ws::accept_with` on a
//! TLS stream, deciding on path, `appKey` and subprotocol before upgrading.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use net::accept::{self, AcceptOptions};
use net::tls::{self, ALPN_HTTP1};
use net::ws::{self, Decision, WsConfig};
use net::{CancellationToken, NetError, SelfSigned, Trust};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    trust: Arc<rustls::ClientConfig>,
    shutdown: CancellationToken,
    /// Why each server-side connection ended.
    ended: mpsc::Receiver<String>,
}

async fn start() -> Server {
    let cert = SelfSigned::generate(&["cx.test"]).unwrap();
    let server_tls = cert.server_config(&[ALPN_HTTP1]).unwrap();
    let trust =
        tls::client_config(&Trust::Pinned(vec![cert.fingerprint()]), &[ALPN_HTTP1]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let (tx, ended) = mpsc::channel(16);
    let opts = AcceptOptions {
        max_connections: 4,
        ..AcceptOptions::default()
    };
    tokio::spawn(accept::run(
        listener,
        Some(server_tls),
        opts,
        shutdown.clone(),
        move |conn| {
            let tx = tx.clone();
            async move {
                assert!(conn.stream.is_tls());
                assert_eq!(conn.stream.alpn(), Some(ALPN_HTTP1));
                let decide = |h: &ws::Handshake| {
                    if h.uri.path() != "/Thingworx/WS" {
                        return Decision::Reject {
                            status: StatusCode::NOT_FOUND,
                            reason: "no such endpoint".into(),
                        };
                    }
                    if !h.headers.contains_key("appKey") {
                        return Decision::Reject {
                            status: StatusCode::UNAUTHORIZED,
                            reason: "appKey header missing".into(),
                        };
                    }
                    let offered = h
                        .headers
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    Decision::Accept {
                        subprotocol: offered
                            .split(',')
                            .any(|p| p.trim() == "tether.v1")
                            .then(|| "tether.v1".to_owned()),
                    }
                };
                let (mut socket, handshake) =
                    match ws::accept_with(conn.stream, WsConfig::small(), T, decide).await {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = tx.send(e.to_string()).await;
                            return;
                        }
                    };
                let key = handshake.headers["appKey"].to_str().unwrap().to_owned();
                socket
                    .send(Message::Text(
                        format!("hello {key} from {}", conn.peer).into(),
                    ))
                    .await
                    .unwrap();
                let why = loop {
                    match socket.next().await {
                        Some(Ok(Message::Binary(b))) => {
                            socket.send(Message::Binary(b)).await.unwrap()
                        }
                        Some(Ok(Message::Close(_))) | None => break "closed".to_owned(),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break e.to_string(),
                    }
                };
                let _ = tx.send(why).await;
            }
        },
    ));
    Server {
        addr,
        trust,
        shutdown,
        ended,
    }
}

#[tokio::test]
async fn accepts_with_app_key_and_subprotocol_and_echoes_binary() {
    let mut server = start().await;
    let url = format!("wss://{}/Thingworx/WS", server.addr);
    let (mut ws, response) = ws::connect_with_response(
        &url,
        &[
            ("appKey", "k-123"),
            ("Sec-WebSocket-Protocol", "other, tether.v1"),
        ],
        server.trust.clone(),
        WsConfig::small(),
        T,
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "tether.v1");
    match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => assert!(t.as_str().starts_with("hello k-123 from 127.0.0.1:"), "{t}"),
        other => panic!("{other:?}"),
    }
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(vec![1, 2, 3].into())
    );
    ws.close(None).await.unwrap();
    assert_eq!(server.ended.recv().await.unwrap(), "closed");
    server.shutdown.cancel();
}

#[tokio::test]
async fn missing_app_key_and_wrong_path_are_refused_with_status() {
    let mut server = start().await;
    let err = ws::connect(
        &format!("wss://{}/Thingworx/WS", server.addr),
        &[],
        server.trust.clone(),
        WsConfig::small(),
        T,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::WsRefused {
                status: StatusCode::UNAUTHORIZED,
                ..
            }
        ),
        "{err}"
    );
    let why = server.ended.recv().await.unwrap();
    assert_eq!(
        why,
        "websocket upgrade rejected with HTTP 401 Unauthorized: appKey header missing"
    );

    let err = ws::connect(
        &format!("wss://{}/elsewhere", server.addr),
        &[("appKey", "k")],
        server.trust.clone(),
        WsConfig::small(),
        T,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::WsRefused {
                status: StatusCode::NOT_FOUND,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_message_is_refused_by_the_small_preset() {
    let mut server = start().await;
    let (mut ws, _) = ws::connect_with_response(
        &format!("wss://{}/Thingworx/WS", server.addr),
        &[("appKey", "k")],
        server.trust.clone(),
        WsConfig::bulk(),
        T,
    )
    .await
    .unwrap();
    let _hello = ws.next().await;
    let big = vec![0u8; WsConfig::small().max_message_size + 1];
    // The server may close before the whole message is written.
    let _ = ws.send(Message::Binary(big.into())).await;
    let why = tokio::time::timeout(T, server.ended.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(why.contains("Space limit exceeded"), "{why}");
}

#[tokio::test]
async fn silent_client_hits_the_websocket_handshake_deadline() {
    let (client, server) = tokio::io::duplex(1024);
    let err = ws::accept(server, WsConfig::small(), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    drop(client);
}
