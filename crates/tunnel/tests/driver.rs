//! The async driver on real loopback sockets: a tokio-tungstenite WebSocket
//! pair on 127.0.0.1:0 between a client session (with a local listener, as
//! the RAC) and a server session (with a connector, as the edge), and real
//! TCP targets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tunnel::driver::{
    Connector, Refusal, Session, SessionEnd, SessionHandle, SessionOptions, StreamError,
    run_session, serve_listener, tcp_connect,
};
use tunnel::{Config, Initiator, Mux, Role, close, reset};

const DEADLINE: Duration = Duration::from_secs(60);

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("deadline passed")
}

async fn ws_pair() -> (WebSocketStream<TcpStream>, WebSocketStream<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        tokio_tungstenite::accept_async_with_config(s, Some(tunnel::driver::websocket_config()))
            .await
            .unwrap()
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (client, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/"),
        tcp,
        Some(tunnel::driver::websocket_config()),
    )
    .await
    .unwrap();
    (server.await.unwrap(), client)
}

/// An echo server that half-closes after echoing everything.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that sends a banner, closes its sending side first, then
/// reports everything it still receives.
async fn banner_server() -> (SocketAddr, tokio::sync::mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(b"SSH-2.0-test\r\n").await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = vec![];
        s.read_to_end(&mut got).await.unwrap();
        tx.send(got).await.unwrap();
    });
    (addr, rx)
}

struct Rig {
    handle: SessionHandle,
    local: SocketAddr,
    client: JoinHandle<SessionEnd>,
    server: JoinHandle<SessionEnd>,
    banner: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

async fn rig() -> Rig {
    let echo = echo_server().await;
    let (banner, banner_rx) = banner_server().await;
    // A port with nothing listening.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let (server_ws, client_ws) = ws_pair().await;
    let connector = Connector::new(move |label: String| async move {
        match label.as_str() {
            "echo" => tcp_connect(echo).await,
            "banner" => tcp_connect(banner).await,
            "dead" => tcp_connect(dead).await,
            other => Err(Refusal::new(
                reset::NOT_ALLOWED,
                format!("{other} is not allowed"),
            )),
        }
    });
    let options = SessionOptions {
        connector: Some(connector),
        ..SessionOptions::default()
    };
    let server_mux = Mux::new(Config::new(Role::Server), std::time::Instant::now()).unwrap();
    let server = tokio::spawn(run_session(
        server_ws,
        server_mux,
        options,
        CancellationToken::new(),
    ));

    let client_mux = Mux::new(Config::new(Role::Client), std::time::Instant::now()).unwrap();
    let session = Session::new(client_mux, SessionOptions::default());
    let handle = session.handle();
    let client = tokio::spawn(session.run(client_ws, CancellationToken::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(serve_listener(
        listener,
        handle.clone(),
        "echo".into(),
        CancellationToken::new(),
    ));
    Rig {
        handle,
        local,
        client,
        server,
        banner: banner_rx,
    }
}

/// Send `data` through a fresh local connection, half-close, and return
/// everything that comes back until EOF.
async fn echo_through(local: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let s = TcpStream::connect(local).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = vec![];
    r.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    got
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_round_trip_and_half_close() {
    let rig = rig().await;
    within(async {
        let mut s = TcpStream::connect(rig.local).await.unwrap();
        s.write_all(b"ping over the tunnel").await.unwrap();
        let mut buf = [0u8; 20];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping over the tunnel");
        // Half-close our side: the echo finishes and closes its side, and
        // that FIN reaches us as EOF.
        s.shutdown().await.unwrap();
        let mut rest = vec![];
        s.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_from_the_target_side_first() {
    let mut rig = rig().await;
    within(async {
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let handle = rig.handle.clone();
        let pipe = tokio::spawn(async move { handle.pipe(a, "banner").await });
        // The banner arrives, then EOF, while our side is still open.
        let mut got = vec![];
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"SSH-2.0-test\r\n");
        // We can still send; the target receives it after its own FIN.
        b.write_all(b"client data after the server's FIN")
            .await
            .unwrap();
        b.shutdown().await.unwrap();
        assert_eq!(
            rig.banner.recv().await.unwrap(),
            b"client data after the server's FIN"
        );
        let report = pipe.await.unwrap().unwrap();
        assert_eq!(report.bytes_received, 14);
        assert_eq!(report.bytes_sent, 34);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_parallel_streams() {
    let rig = rig().await;
    within(async {
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let local = rig.local;
                tokio::spawn(async move {
                    let data = pattern(1024 * 1024 + usize::from(i) * 977, i);
                    let got = echo_through(local, data.clone()).await;
                    assert_eq!(got.len(), data.len(), "stream {i} length");
                    assert!(got == data, "stream {i} content");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfer_keeps_its_sha256() {
    // 64 MiB each way in release; 16 MiB in debug builds to stay fast.
    let len: usize = if cfg!(debug_assertions) {
        16 << 20
    } else {
        64 << 20
    };
    let rig = rig().await;
    within(async {
        let s = TcpStream::connect(rig.local).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move {
            let mut h = Sha256::new();
            let block = pattern(1 << 20, 7);
            for i in 0..len >> 20 {
                let mut b = block.clone();
                b[0] = i as u8;
                h.update(&b);
                w.write_all(&b).await.unwrap();
            }
            w.shutdown().await.unwrap();
            h.finalize()
        });
        let mut h = Sha256::new();
        let mut total = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            h.update(&buf[..n]);
        }
        assert_eq!(total, len);
        assert_eq!(h.finalize(), writer.await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_targets_get_reset_with_reason() {
    let rig = rig().await;
    within(async {
        let (a, _b) = tokio::io::duplex(1024);
        match rig.handle.pipe(a, "mysql").await {
            Err(StreamError::Reset { code, reason }) => {
                assert_eq!(code, reset::NOT_ALLOWED);
                assert_eq!(reason, "mysql is not allowed");
            }
            other => panic!("expected a reset, got {other:?}"),
        }
        let (a, _b) = tokio::io::duplex(1024);
        match rig.handle.pipe(a, "dead").await {
            Err(StreamError::Reset { code, reason }) => {
                assert_eq!(code, reset::REFUSED);
                assert!(reason.contains("refused"), "{reason}");
            }
            other => panic!("expected a reset, got {other:?}"),
        }
        // The session survives refusals.
        assert_eq!(
            echo_through(rig.local, b"still here".to_vec()).await,
            b"still here"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_both_sides_with_code_and_reason() {
    let rig = rig().await;
    within(async {
        assert_eq!(echo_through(rig.local, b"x".to_vec()).await, b"x");
        let status = rig.handle.status();
        assert!(status.borrow().negotiated.is_some());
        rig.handle.close(close::ENDED, "ended by the user").await;
        let c = rig.client.await.unwrap();
        assert_eq!(c.code, Some(close::ENDED));
        assert_eq!(c.initiator, Some(Initiator::Local));
        assert_eq!(c.stats.bytes_sent, 1);
        let s = rig.server.await.unwrap();
        assert_eq!(s.code, Some(close::ENDED));
        assert_eq!(s.reason, "ended by the user");
        assert_eq!(s.initiator, Some(Initiator::Peer));
        // New streams fail once the session is over.
        let (a, _b) = tokio::io::duplex(1024);
        assert!(rig.handle.pipe(a, "echo").await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connects_time_out_and_shutdown_sends_going_away() {
    let (server_ws, client_ws) = ws_pair().await;
    // A connector that never finishes: the deadline must turn it into RESET.
    let options = SessionOptions {
        connector: Some(Connector::new(|_label: String| {
            std::future::pending::<Result<TcpStream, Refusal>>()
        })),
        connect_timeout: Duration::from_millis(200),
        ..SessionOptions::default()
    };
    let server_mux = Mux::new(Config::new(Role::Server), std::time::Instant::now()).unwrap();
    let server = tokio::spawn(run_session(
        server_ws,
        server_mux,
        options,
        CancellationToken::new(),
    ));
    let client_mux = Mux::new(Config::new(Role::Client), std::time::Instant::now()).unwrap();
    let session = Session::new(client_mux, SessionOptions::default());
    let handle = session.handle();
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(session.run(client_ws, shutdown.clone()));
    within(async {
        let (a, _b) = tokio::io::duplex(1024);
        match handle.pipe(a, "slow").await {
            Err(StreamError::Reset { code, reason }) => {
                assert_eq!(code, reset::UNREACHABLE);
                assert_eq!(reason, "connect timed out");
            }
            other => panic!("expected a reset, got {other:?}"),
        }
        shutdown.cancel();
        let c = client.await.unwrap();
        assert_eq!(c.code, Some(close::GOING_AWAY));
        assert_eq!(c.initiator, Some(Initiator::Local));
        let s = server.await.unwrap();
        assert_eq!(s.code, Some(close::GOING_AWAY));
        assert_eq!(s.reason, "shutting down");
        assert!(handle.status().borrow().closed);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_does_not_read_bounds_what_the_client_can_push() {
    // Both ends are in-memory pipes of 64 KiB, so every buffer is known:
    // client pipe + window (the default, one stream alone) + target pipe +
    // one chunk in a write.
    let (target_io, mut target) = tokio::io::duplex(64 * 1024);
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(target_io)));
    let (server_ws, client_ws) = ws_pair().await;
    let options = SessionOptions {
        connector: Some(Connector::new(move |_label: String| {
            let io = slot.lock().unwrap().take();
            async move { io.ok_or_else(|| Refusal::new(reset::BUSY, "one stream only")) }
        })),
        ..SessionOptions::default()
    };
    let server_mux = Mux::new(Config::new(Role::Server), std::time::Instant::now()).unwrap();
    tokio::spawn(run_session(
        server_ws,
        server_mux,
        options,
        CancellationToken::new(),
    ));
    let client_mux = Mux::new(Config::new(Role::Client), std::time::Instant::now()).unwrap();
    let session = Session::new(client_mux, SessionOptions::default());
    let handle = session.handle();
    tokio::spawn(session.run(client_ws, CancellationToken::new()));

    let (local_io, mut local) = tokio::io::duplex(64 * 1024);
    let pipe = tokio::spawn(async move { handle.pipe(local_io, "target").await });
    let block = pattern(16 * 1024, 3);
    let mut pushed = 0usize;
    within(async {
        // Push until no write makes progress for 500 ms: the tunnel stalls.
        while let Ok(r) =
            tokio::time::timeout(Duration::from_millis(500), local.write_all(&block)).await
        {
            r.unwrap();
            pushed += block.len();
            assert!(pushed <= 8 << 20, "flow control did not stop the client");
        }
    })
    .await;
    let window = tunnel::DEFAULT_WINDOW as usize;
    let bound = 64 * 1024 + window + 64 * 1024 + 64 * 1024 + block.len();
    eprintln!("pushed {pushed} bytes before the stall (bound {bound})");
    assert!(pushed >= window, "the window was not used: {pushed}");
    assert!(
        pushed <= bound,
        "pushed {pushed} bytes past a bound of {bound}"
    );
    // The target starts reading: everything arrives in order.
    within(async {
        local.shutdown().await.unwrap();
        let mut got = vec![];
        target.read_to_end(&mut got).await.unwrap();
        assert!(got.len() >= pushed);
        for (i, chunk) in got.chunks(block.len()).enumerate() {
            assert!(chunk == &block[..chunk.len()], "chunk {i} differs");
        }
        drop(target);
        let _ = pipe.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_declared_gone_after_two_ping_intervals() {
    let (server_ws, silent_client) = ws_pair().await;
    let mut cfg = Config::new(Role::Server);
    cfg.ping_interval = Duration::from_millis(100);
    let mux = Mux::new(cfg, std::time::Instant::now()).unwrap();
    let started = std::time::Instant::now();
    let end = within(run_session(
        server_ws,
        mux,
        SessionOptions {
            close_grace: Duration::from_millis(200),
            ..SessionOptions::default()
        },
        CancellationToken::new(),
    ))
    .await;
    assert_eq!(end.code, Some(close::PEER_GONE));
    assert_eq!(end.initiator, Some(Initiator::Local));
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(silent_client);
}
