//! The RAC engine against a real broker on loopback: connect with an app
//! key or a password, stdio piping, TLS trust modes, refused tokens, a dead
//! broker, the local port released at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn opts(trust: rac::Trust) -> rac::RunOptions {
    rac::RunOptions {
        trust,
        ..rac::RunOptions::default()
    }
}

fn create(h: &Harness, credentials: rac::Credentials) -> rac::Join {
    rac::Join::Create {
        platform: rac::parse_platform(&h.base).unwrap(),
        thing: THING.into(),
        interface: "ssh".into(),
        credentials,
    }
}

/// Collects notices; returns them on demand.
fn recorder() -> (rac::Notify, Arc<Mutex<Vec<rac::Notice>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (Arc::new(move |n| s.lock().unwrap().push(n)), seen)
}

#[tokio::test]
async fn connect_with_app_key_then_ctrl_c() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let (notify, seen) = recorder();
    let how = create(&h, rac::Credentials::AppKey(APP_KEY.into()));
    let client = tokio::spawn(rac::listen_on(
        how,
        listener,
        opts(rac::Trust::default()),
        stop.clone(),
        notify,
    ));
    let start = h.next_start().await;
    let id = start.session_id.clone();
    let edge = spawn_edge(start, Duration::from_secs(15));
    let mut s = eventually(Duration::from_secs(5), || async {
        TcpStream::connect(local).await.ok()
    })
    .await
    .unwrap();
    let data = vec![42u8; 100_000];
    assert_eq!(echo_round(&mut s, &data).await.unwrap(), data);
    eventually(Duration::from_secs(5), || async {
        seen.lock()
            .unwrap()
            .contains(&rac::Notice::PeerAttached)
            .then_some(())
    })
    .await
    .expect("no PEER attached notice");
    assert!(
        seen.lock()
            .unwrap()
            .contains(&rac::Notice::Listening(local))
    );
    // The RAC told the platform where it listens; the session shows it.
    eventually(Duration::from_secs(5), || async {
        seen.lock()
            .unwrap()
            .contains(&rac::Notice::AddressReported(local))
            .then_some(())
    })
    .await
    .expect("the local address was not reported");
    let view: serde_json::Value = h.get_session(&id, "alice").await.json().await.unwrap();
    assert_eq!(view["client_address"], local.to_string(), "{view}");
    assert!(seen.lock().unwrap().iter().any(|n| matches!(
        n,
        rac::Notice::Joined { thing: Some(t), interface: Some(i), .. } if t == THING && i == "ssh"
    )));

    stop.cancel(); // Ctrl-C
    let ended = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ended.by_us);
    assert_eq!(ended.exit_code(), rac::EXIT_OK);
    assert_eq!(ended.bytes_sent, 100_000);
    // The port is free again at once.
    TcpListener::bind(local).await.unwrap();
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "client_left");
    assert_eq!(rec.user, "alice");
    assert_eq!(rec.bytes_server_to_client, 100_000);
    let edge_end = edge.await.unwrap().unwrap();
    assert_eq!(edge_end.code, Some(tunnel::close::PEER_LEFT));
}

#[tokio::test]
async fn password_login_and_refusals() {
    let h = spawn(echo_server().await, |_| {}).await;
    let bad = create(
        &h,
        rac::Credentials::Password {
            user: "alice".into(),
            password: "nope".into(),
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = rac::listen_on(
        bad,
        listener,
        opts(rac::Trust::default()),
        CancellationToken::new(),
        recorder().0,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, rac::RacError::Refused { status: 401, .. }),
        "{err}"
    );
    assert_eq!(err.exit_code(), rac::EXIT_REFUSED);

    let tls = rac::tls_config(&rac::Trust::default()).unwrap();
    let platform = rac::Platform::new(
        rac::parse_platform(&h.base).unwrap(),
        &tls,
        Duration::from_secs(5),
    )
    .unwrap();
    let good = rac::Credentials::Password {
        user: "alice".into(),
        password: "pw-alice".into(),
    };
    let joined = platform.create_session(THING, "ssh", &good).await.unwrap();
    // A used launch nonce is refused with 401 and a clear exit code.
    let created = h.create_browser("bob").await.unwrap();
    let launch = rac::LaunchUrl::parse(created["launch_url"].as_str().unwrap()).unwrap();
    platform
        .trade_nonce(&launch.session, &launch.nonce)
        .await
        .unwrap();
    let again = platform
        .trade_nonce(&launch.session, &launch.nonce)
        .await
        .unwrap_err();
    assert!(matches!(again, rac::RacError::Refused { status: 401, .. }));
    // The same client token twice: the second attach is refused.
    let _first = rac::Tunnel::attach(&joined, tls.clone(), &rac::ClientOptions::default())
        .await
        .unwrap();
    let second = rac::Tunnel::attach(&joined, tls, &rac::ClientOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(second, rac::RacError::Refused { status: 401, .. }),
        "{second}"
    );
    // Unknown interface: 404 with the platform's message.
    let err = platform
        .create_session(THING, "vnc", &good)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no interface vnc"), "{err}");
}

#[tokio::test]
async fn stdio_pipes_one_stream() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let how = create(&h, rac::Credentials::AppKey(APP_KEY.into()));
    let client = tokio::spawn(rac::stdio(
        how,
        theirs,
        opts(rac::Trust::default()),
        CancellationToken::new(),
        recorder().0,
    ));
    let start = h.next_start().await;
    let id = start.session_id.clone();
    let _edge = spawn_edge(start, Duration::from_secs(15));
    let (mut r, mut w) = tokio::io::split(ours);
    let msg = b"SSH-2.0-test\r\nsome bytes".repeat(1000);
    let expect = msg.clone();
    let reading = tokio::spawn(async move {
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        back
    });
    w.write_all(&msg).await.unwrap();
    w.shutdown().await.unwrap(); // like ssh closing its end
    let back = tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, expect);
    let ended = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ended.exit_code(), rac::EXIT_OK, "{}", ended.message());
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.streams, 1);
    assert_eq!(rec.bytes_client_to_server, expect.len() as u64);
}

#[tokio::test]
async fn tls_validates_by_default_and_honours_pins() {
    let cert = net::SelfSigned::generate(&["localhost"]).unwrap();
    let server = cert.server_config(&[net::tls::ALPN_HTTP1]).unwrap();
    let mut h = spawn_tls(echo_server().await, Some(server), |_| {}).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let how = create(&h, rac::Credentials::AppKey(APP_KEY.into()));
    // Default: the self-signed certificate is not trusted.
    let err = rac::listen_on(
        how.clone(),
        listener,
        opts(rac::Trust::default()),
        CancellationToken::new(),
        recorder().0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), rac::EXIT_UNAVAILABLE, "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // A wrong pin is refused too.
    let wrong = rac::Trust::pinned_from_strs(&["00".repeat(32)]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = rac::listen_on(
        how.clone(),
        listener,
        opts(wrong),
        CancellationToken::new(),
        recorder().0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), rac::EXIT_UNAVAILABLE, "{err}");
    // The right pin works end to end (HTTP and WebSocket).
    let pin = rac::Trust::Pinned(vec![cert.fingerprint()]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let client = tokio::spawn(rac::listen_on(
        how,
        listener,
        opts(pin),
        stop.clone(),
        recorder().0,
    ));
    let _edge = spawn_edge(h.next_start().await, Duration::from_secs(15));
    let mut s = eventually(Duration::from_secs(5), || async {
        TcpStream::connect(local).await.ok()
    })
    .await
    .unwrap();
    assert_eq!(echo_round(&mut s, b"over tls").await.unwrap(), b"over tls");
    stop.cancel();
    let ended = client.await.unwrap().unwrap();
    assert_eq!(ended.exit_code(), rac::EXIT_OK);
}

/// A broker that accepts the upgrade and then says nothing: the RAC gives
/// up after two ping intervals and frees its port.
#[tokio::test]
async fn dead_broker_is_noticed_within_two_pings() {
    use axum::extract::ws::WebSocketUpgrade;
    let app: axum::Router = axum::Router::new().route(
        "/remote-access/v1/sessions/{id}/client",
        axum::routing::get(|ws: WebSocketUpgrade| async move {
            ws.protocols([rac::SUBPROTOCOL])
                .on_upgrade(|socket| async move {
                    // Hold the socket, never read or write.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(socket);
                })
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    let joined = rac::Joined {
        session: "s1".into(),
        client_url: format!("ws://{addr}/remote-access/v1/sessions/s1/client"),
        client_token: "t".into(),
    };
    let tls = rac::tls_config(&rac::Trust::default()).unwrap();
    let client_opts = rac::ClientOptions {
        ping_interval: Duration::from_millis(200),
        ..rac::ClientOptions::default()
    };
    let tunnel = rac::Tunnel::attach(&joined, tls, &client_opts)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let began = std::time::Instant::now();
    let serving = tokio::spawn(tunnel.serve(listener, CancellationToken::new()));
    // Noticed after 2 × 200 ms of silence: the port is released at once
    // (the driver then still gives the close handshake its grace period).
    eventually(Duration::from_secs(2), || async {
        TcpListener::bind(local).await.ok().map(drop)
    })
    .await
    .expect("port not released");
    let took = began.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let ended = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.exit_code(), rac::EXIT_LOST, "{}", ended.message());
}
