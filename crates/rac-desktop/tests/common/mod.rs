//! A real broker on 127.0.0.1:0 with in-memory hooks, a fake edge running
//! the tunnel crate's server driver, and a TCP echo target.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::memory::{MemoryAudit, MemoryAuthorizer, MemoryEdge};
use broker::{Broker, BrokerConfig, Hooks, StartTunnelRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tunnel::driver::{Connector, SessionEnd, SessionOptions, run_session, tcp_connect};
use tunnel::{Mux, Role};

pub const THING: &str = "Pump1";

pub struct Broker_ {
    pub base: String,
    pub starts: mpsc::UnboundedReceiver<StartTunnelRequest>,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub broker: Broker,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A broker over plain HTTP; interface `ssh` of `Pump1` is 127.0.0.1:`target`.
pub async fn broker(target: u16) -> Broker_ {
    init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let cfg = BrokerConfig::new(base.parse().unwrap());
    let auth = MemoryAuthorizer::new()
        .user("alice", "pw-alice", false)
        .target(THING, "ssh", "127.0.0.1", target);
    let (edge, starts) = MemoryEdge::new();
    let shutdown = CancellationToken::new();
    let broker = Broker::new(
        cfg,
        Hooks {
            auth: Arc::new(auth),
            edge: Arc::new(edge),
            audit: Arc::new(MemoryAudit::new()),
        },
        shutdown.clone(),
    )
    .unwrap();
    tokio::spawn(net::http::serve(
        listener,
        None,
        broker.router(),
        net::http::ServeOptions::default(),
        shutdown.clone(),
    ));
    Broker_ {
        base,
        starts,
        http: reqwest::Client::new(),
        shutdown,
        broker,
    }
}

impl Broker_ {
    /// Create a session as the browser user and return its launch URL.
    pub async fn launch_url(&self) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/sessions", self.base))
            .header("cookie", "session=alice")
            .json(&serde_json::json!({"thing": THING, "interface": "ssh"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        v["launch_url"].as_str().unwrap().to_owned()
    }

    pub async fn next_start(&mut self) -> StartTunnelRequest {
        tokio::time::timeout(Duration::from_secs(5), self.starts.recv())
            .await
            .expect("no StartTunnel within 5 s")
            .expect("edge channel closed")
    }
}

/// The fake edge: attach to the server endpoint, run the server driver
/// connecting every stream to the target, until `stop`.
pub fn spawn_edge(start: StartTunnelRequest, stop: CancellationToken) -> JoinHandle<SessionEnd> {
    tokio::spawn(async move {
        let tls = net::tls::client_config(
            &net::Trust::InsecureAllowSelfSigned,
            &[net::tls::ALPN_HTTP1],
        )
        .unwrap();
        let auth = format!("Bearer {}", start.server_token.expose());
        let ws = net::ws::connect(
            &start.server_url,
            &[
                ("Authorization", auth.as_str()),
                ("Sec-WebSocket-Protocol", broker::SUBPROTOCOL),
            ],
            tls,
            net::ws::WsConfig::bulk(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let target: SocketAddr = format!("{}:{}", start.target.host, start.target.port)
            .parse()
            .unwrap();
        let mux = Mux::new(tunnel::Config::new(Role::Server), Instant::now()).unwrap();
        let options = SessionOptions {
            connector: Some(Connector::new(move |_label| tcp_connect(target))),
            ..SessionOptions::default()
        };
        run_session(ws, mux, options, stop).await
    })
}

/// A TCP echo server; returns its port.
pub async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}
