//! QUIC endpoints on loopback: pinned trust, ALPN, bidirectional echo.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use net::quic::{self, QuicOptions};
use net::tls::{self, ALPN_TUNNEL};
use net::{NetError, SelfSigned, Trust};

const T: Duration = Duration::from_secs(5);

fn server(cert: &SelfSigned) -> (quinn::Endpoint, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tls = cert.server_config(&[]).unwrap();
    let endpoint = quic::server_endpoint(socket, &tls, QuicOptions::default()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let data = recv.read_to_end(64 * 1024).await.unwrap();
                    send.write_all(&data).await.unwrap();
                    send.finish().unwrap();
                }
            });
        }
    });
    (endpoint, addr)
}

#[tokio::test]
async fn bidirectional_stream_echoes_over_pinned_quic() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let (_server, addr) = server(&cert);
    let trust = tls::client_config(&Trust::Pinned(vec![cert.fingerprint()]), &[]).unwrap();
    let client = quic::client_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        &trust,
        QuicOptions::default(),
    )
    .unwrap();
    let conn = quic::connect(&client, addr, "tunnel.invalid", T)
        .await
        .unwrap();
    let alpn = conn
        .handshake_data()
        .unwrap()
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .unwrap()
        .protocol;
    assert_eq!(alpn.as_deref(), Some(ALPN_TUNNEL));

    for round in 0..3u8 {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i as u8) ^ round).collect();
        send.write_all(&payload).await.unwrap();
        send.finish().unwrap();
        let echoed = tokio::time::timeout(T, recv.read_to_end(64 * 1024))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, payload);
    }
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
}

#[tokio::test]
async fn wrong_pin_is_refused_with_a_clear_error() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let other = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let (_server, addr) = server(&cert);
    let trust = tls::client_config(&Trust::Pinned(vec![other.fingerprint()]), &[]).unwrap();
    let client = quic::client_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        &trust,
        QuicOptions::default(),
    )
    .unwrap();
    let err = quic::connect(&client, addr, "127.0.0.1", T)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::QuicConnect { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("does not match the pinned fingerprint"),
        "{text}"
    );
}
