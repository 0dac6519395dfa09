//! A broker on 127.0.0.1:0 with in-memory hooks, for the broker's and the
//! RAC's tests: users `alice`, `bob` (plain) and `root` (administrator),
//! app key [`APP_KEY`] (alice), legacy edge key [`EDGE_KEY`] for [`THING`],
//! interface `ssh` of [`THING`] on a target port; a fake edge running the
//! tunnel crate's server driver; a TCP echo target. Set-up failures
//! panic (this is test code).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use broker::memory::{MemoryAudit, MemoryAuthorizer, MemoryEdge};
use broker::{Broker, BrokerConfig, Hooks, StartTunnelRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tunnel::driver::{Connector, SessionEnd, SessionOptions, run_session, tcp_connect};
use tunnel::{Mux, Role};

/// alice's app key.
pub const APP_KEY: &str = "key-alice";
/// The legacy edge's app key (may attach tunnels of [`THING`]).
pub const EDGE_KEY: &str = "key-pump1-edge";
/// The thing with interface `ssh`.
pub const THING: &str = "Pump1";

/// A running broker and what its hooks saw.
pub struct Harness {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:P`, or `https://localhost:P` over TLS.
    pub base: String,
    pub broker: Broker,
    pub edge: Arc<MemoryEdge>,
    pub starts: mpsc::UnboundedReceiver<StartTunnelRequest>,
    pub audit: Arc<MemoryAudit>,
    pub shutdown: CancellationToken,
    /// Accepts any certificate (the TLS harness is self-signed).
    pub http: reqwest::Client,
}

/// Spawn a broker over plain HTTP; `target` is the port of interface `ssh`
/// on [`THING`]; `tweak` adjusts the configuration.
pub async fn spawn(target: u16, tweak: impl FnOnce(&mut BrokerConfig)) -> Harness {
    spawn_tls(target, None, tweak).await
}

/// [`spawn`], served over TLS with `tls` when given.
pub async fn spawn_tls(
    target: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
    tweak: impl FnOnce(&mut BrokerConfig),
) -> Harness {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let base = if tls.is_some() {
        format!("https://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    };
    let mut cfg = BrokerConfig::new(base.parse().expect("base URL"));
    tweak(&mut cfg);
    let auth = MemoryAuthorizer::new()
        .user("alice", "pw-alice", false)
        .user("bob", "pw-bob", false)
        .user("root", "pw-root", true)
        .app_key(APP_KEY, "alice")
        .edge_key(EDGE_KEY, THING)
        .target(THING, "ssh", "127.0.0.1", target);
    let (edge, starts) = MemoryEdge::new();
    let edge = Arc::new(edge);
    let audit = Arc::new(MemoryAudit::new());
    let shutdown = CancellationToken::new();
    let broker = Broker::new(
        cfg,
        Hooks {
            auth: Arc::new(auth),
            edge: edge.clone(),
            audit: audit.clone(),
        },
        shutdown.clone(),
    )
    .expect("broker configuration");
    tokio::spawn(net::http::serve(
        listener,
        tls,
        broker.router::<()>(),
        net::http::ServeOptions::default(),
        shutdown.clone(),
    ));
    Harness {
        addr,
        base,
        broker,
        edge,
        starts,
        audit,
        shutdown,
        http: reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("HTTP client"),
    }
}

impl Harness {
    /// POST /api/v1/sessions as a browser user (cookie): returns the JSON.
    pub async fn create_browser(&self, user: &str) -> Result<serde_json::Value> {
        let r = self
            .http
            .post(format!("{}/api/v1/sessions", self.base))
            .header("cookie", format!("session={user}"))
            .json(&serde_json::json!({"thing": THING, "interface": "ssh"}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "status {}", r.status());
        Ok(r.json().await?)
    }

    /// A browser session's `tether://` launch URL, created as alice.
    pub async fn launch_url(&self) -> String {
        let v = self
            .create_browser("alice")
            .await
            .expect("create a session");
        v["launch_url"]
            .as_str()
            .expect("launch_url in the answer")
            .to_owned()
    }

    /// POST /api/v1/sessions with the app key, asking for the client token.
    pub async fn create_cli(&self) -> Result<serde_json::Value> {
        let r = self
            .http
            .post(format!("{}/api/v1/sessions", self.base))
            .header("appKey", APP_KEY)
            .json(&serde_json::json!({"thing": THING, "interface": "ssh", "client_token": true}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "status {}", r.status());
        Ok(r.json().await?)
    }

    /// The next `StartTunnel` the broker asked of the edge (5 s at most).
    pub async fn next_start(&mut self) -> StartTunnelRequest {
        tokio::time::timeout(Duration::from_secs(5), self.starts.recv())
            .await
            .expect("no StartTunnel within 5 s")
            .expect("edge channel closed")
    }

    /// GET /api/v1/sessions/{id} as `user` (cookie).
    pub async fn get_session(&self, id: &str, user: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/sessions/{id}", self.base))
            .header("cookie", format!("session={user}"))
            .send()
            .await
            .expect("GET session")
    }

    /// DELETE /api/v1/sessions/{id} as `user` (cookie).
    pub async fn delete_session(&self, id: &str, user: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}/api/v1/sessions/{id}", self.base))
            .header("cookie", format!("session={user}"))
            .send()
            .await
            .expect("DELETE session")
    }
}

/// Open a WebSocket to a tunnel endpoint with a bearer token (any
/// certificate accepted), offering the subprotocol when `subprotocol`.
pub async fn ws_attach(
    url: &str,
    token: &str,
    subprotocol: bool,
) -> Result<net::ws::ClientWs, net::NetError> {
    let tls = net::tls::client_config(
        &net::Trust::InsecureAllowSelfSigned,
        &[net::tls::ALPN_HTTP1],
    )?;
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if subprotocol {
        headers.push(("Sec-WebSocket-Protocol", broker::SUBPROTOCOL));
    }
    net::ws::connect(
        url,
        &headers,
        tls,
        net::ws::WsConfig::bulk(),
        Duration::from_secs(5),
    )
    .await
}

/// The fake edge: attach to the server endpoint and run the tunnel crate's
/// server driver, connecting every stream to the session's target.
pub fn spawn_edge(
    start: StartTunnelRequest,
    ping: Duration,
) -> JoinHandle<Result<SessionEnd, net::NetError>> {
    spawn_edge_until(start, ping, CancellationToken::new())
}

/// [`spawn_edge`] that leaves (as a device going away) when `stop` is
/// cancelled.
pub fn spawn_edge_until(
    start: StartTunnelRequest,
    ping: Duration,
    stop: CancellationToken,
) -> JoinHandle<Result<SessionEnd, net::NetError>> {
    tokio::spawn(async move {
        let ws = ws_attach(&start.server_url, start.server_token.expose(), true).await?;
        let target: SocketAddr = format!("{}:{}", start.target.host, start.target.port)
            .parse()
            .expect("target address");
        let mut cfg = tunnel::Config::new(Role::Server);
        cfg.ping_interval = ping;
        let mux = Mux::new(cfg, Instant::now()).expect("tunnel configuration");
        let options = SessionOptions {
            connector: Some(Connector::new(move |_label| tcp_connect(target))),
            ..SessionOptions::default()
        };
        Ok(run_session(ws, mux, options, stop).await)
    })
}

/// A TCP echo server on 127.0.0.1:0; returns its port.
pub async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = l.local_addr().expect("local address").port();
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

/// Write `data` to `s` and read the same number of bytes back.
pub async fn echo_round(s: &mut TcpStream, data: &[u8]) -> Result<Vec<u8>> {
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(data).await?;
        anyhow::Ok(())
    };
    let read = async {
        let mut back = vec![0u8; data.len()];
        r.read_exact(&mut back).await.context("reading the echo")?;
        anyhow::Ok(back)
    };
    let (w, back) = tokio::join!(write, read);
    w?;
    back
}

/// Poll `f` until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
