//! A legacy ThingWorx edge (base64 text frames on
//! `/Thingworx/WSTunnelServer/<tid>`, one connection at a time) bridged to
//! the native RAC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use broker::{EdgeCommand, TunnelCommand};
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

async fn legacy_attach(url: &str, key: &str) -> Result<net::ws::ClientWs, net::NetError> {
    let tls = net::tls::client_config(&net::Trust::default(), &[net::tls::ALPN_HTTP1]).unwrap();
    net::ws::connect(
        url,
        &[("appKey", key)],
        tls,
        net::ws::WsConfig::bulk(),
        Duration::from_secs(5),
    )
    .await
}

/// Read until EOF or error; returns the bytes read.
async fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("no EOF within 5 s");
    out
}

#[tokio::test]
async fn legacy_edge_bridged_to_a_native_client() {
    let mut h = spawn(9, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let tid = h.next_start().await.session_id;
    let url = format!(
        "{}/Thingworx/WSTunnelServer/{tid}",
        h.base.replace("http://", "ws://")
    );
    let e = legacy_attach(&url, "wrong-key").await.unwrap_err();
    assert!(matches!(e, net::NetError::WsRefused { status, .. } if status == 401));

    // The fake ThingWorx edge: echoes every base64 text frame.
    let mut edge = legacy_attach(&url, EDGE_KEY).await.unwrap();
    let echo = tokio::spawn(async move {
        let mut frames = 0usize;
        while let Some(Ok(m)) = edge.next().await {
            match m {
                Message::Text(t) => {
                    frames += 1;
                    if edge.send(Message::Text(t)).await.is_err() {
                        break;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        frames
    });
    // The server side is spent: a second legacy attach is refused.
    let e = legacy_attach(&url, EDGE_KEY).await.unwrap_err();
    assert!(matches!(e, net::NetError::WsRefused { status, .. } if status == 401));

    let (local, client) = serve_client(&created, CancellationToken::new()).await;

    // 600 KB: more than the window and many legacy chunks.
    let mut a = TcpStream::connect(local).await.unwrap();
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(echo_round(&mut a, &data).await.unwrap(), data);
    assert_eq!(
        h.edge
            .tunnel_commands()
            .iter()
            .map(|c| c.command)
            .collect::<Vec<_>>(),
        [TunnelCommand::Connect]
    );

    // One connection at a time: a second one is reset (the RAC closes it).
    let mut b = TcpStream::connect(local).await.unwrap();
    b.write_all(b"x").await.unwrap();
    assert!(read_to_eof(&mut b).await.is_empty());

    // The edge's socket closed (TunnelCommandFromEdge DISCONNECT): EOF.
    h.broker
        .edge_command(&tid, EdgeCommand::Disconnect)
        .await
        .unwrap();
    assert!(read_to_eof(&mut a).await.is_empty());

    // CANCEL ends the session.
    h.broker
        .edge_command(&tid, EdgeCommand::Cancel)
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        end.code,
        Some(tunnel::close::PEER_LEFT),
        "{}",
        end.message()
    );
    assert!(end.reason.contains("cancelled"), "{}", end.reason);
    let rec = h
        .audit
        .wait_for(&tid, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(rec.reason, "server_left");
    assert_eq!(rec.bytes_client_to_server, data.len() as u64);
    assert_eq!(rec.bytes_server_to_client, data.len() as u64);
    assert_eq!(rec.streams, 2);
    let frames = tokio::time::timeout(Duration::from_secs(5), echo)
        .await
        .unwrap()
        .unwrap();
    assert!(frames >= data.len() / broker_chunk(), "{frames} frames");
}

/// Raw bytes per legacy text frame (6 KiB).
fn broker_chunk() -> usize {
    6 * 1024
}

/// The contract a legacy edge relies on to order `TunnelCommandFromEdge
/// DISCONNECT` (AlwaysOn) after its last data frames (tunnel socket): the
/// broker answers a ping only after forwarding every frame before it, so
/// DISCONNECT sent after the pong never cuts the data short.
#[tokio::test]
async fn a_pong_means_the_frames_before_the_ping_were_forwarded() {
    use base64::Engine as _;
    let mut h = spawn(9, |_| {}).await;
    let created = h.create_cli().await.unwrap();
    let tid = h.next_start().await.session_id;
    let url = format!(
        "{}/Thingworx/WSTunnelServer/{tid}",
        h.base.replace("http://", "ws://")
    );
    let mut edge = legacy_attach(&url, EDGE_KEY).await.unwrap();
    let (local, _client) = serve_client(&created, CancellationToken::new()).await;

    let mut a = TcpStream::connect(local).await.unwrap();
    a.write_all(b"go").await.unwrap();
    // The client's first bytes reach the edge once CONNECT was answered.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), edge.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => break,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no data frame at the edge: {other:?}"),
        }
    }
    // The client reads slowly-as-it-likes in a task: more than its window.
    let reader = tokio::spawn(async move { read_to_eof(&mut a).await });
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 249) as u8).collect();
    for chunk in data.chunks(broker_chunk()) {
        let text = base64::engine::general_purpose::STANDARD.encode(chunk);
        edge.send(Message::Text(text.into())).await.unwrap();
    }
    edge.send(Message::Ping(b"barrier".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), edge.next()).await {
            Ok(Some(Ok(Message::Pong(p)))) if &p[..] == b"barrier" => break,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no pong: {other:?}"),
        }
    }
    h.broker
        .edge_command(&tid, EdgeCommand::Disconnect)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
}
