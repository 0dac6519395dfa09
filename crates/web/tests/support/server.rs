//! The test server: the platform as `tether-platform serve` wires it
//! (`platform::prepare`, `remote_access::start_broker` with the platform's
//! own hooks, `remote_access::app`: its router, the broker's routes and the
//! web console; TLS with its generated certificate) on 127.0.0.1:0, with a
//! SQLite store in a temp dir. The
//! device is a `TestEdge` over AlwaysOn whose `StartTunnel` handler
//! ([`serve_tunnels`]) attaches a tunnel-driver edge to each session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alwayson::{Code, Primitive, RequestBody};
use anyhow::{Context as _, Result};
use platform::model::{NewAppKey, NewThing, Protocol, RemoteInterface, Role, Template};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tunnel::driver::{Connector, SessionOptions, run_session, tcp_connect};

pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");
pub const OPERATOR: (&str, &str) = ("oscar", "operator-password-1");
/// Failed log-ins from one address before it is locked out.
pub const AUTH_FAILURES: u32 = 4;

pub struct Server {
    pub base: String,
    pub fingerprint: String,
    pub platform: platform::Platform,
    pub app_key: String,
    pub shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Server {
    /// TLS client settings pinned to the platform's certificate.
    pub fn client_tls(&self) -> Result<Arc<rustls::ClientConfig>> {
        Ok(net::tls::client_config(
            &net::Trust::pinned_from_strs(&[&self.fingerprint])?,
            &[net::tls::ALPN_HTTP1],
        )?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A TCP echo server standing for the device's SSH daemon; returns its port.
async fn echo_server() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(port)
}

pub async fn spawn() -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = platform::Config::with_data_dir(dir.path());
    config.listen = addr;
    config.shutdown_grace = Duration::from_secs(2);
    config.alwayson.auth_failures_per_window = AUTH_FAILURES;
    let shutdown = CancellationToken::new();
    let prepared = platform::prepare(config, shutdown.clone())
        .await
        .context("prepare platform")?;
    let platform = prepared.platform.clone();
    let store = platform.store();
    for (name, pw, role) in [(ADMIN.0, ADMIN.1, Role::Administrator)] {
        store
            .create_user(name, &platform::secret::hash_password(pw)?, role)
            .await?;
    }
    let ssh_port = echo_server().await?;
    for (name, template, desc) in [
        (
            "Pump1",
            Template::RemoteThingWithTunnels,
            "Booster pump, hall 2",
        ),
        ("Pump2", Template::RemoteThing, "Spare pump"),
        ("Valve7", Template::RemoteThing, "Inlet valve"),
    ] {
        store
            .create_thing(&NewThing {
                name: name.into(),
                identifier: None,
                template,
                description: desc.into(),
            })
            .await?;
    }
    store
        .put_interface(
            "Pump1",
            &RemoteInterface {
                name: "ssh".into(),
                host: "127.0.0.1".into(),
                port: ssh_port,
                protocol: Protocol::Ssh,
                description: "Maintenance shell".into(),
            },
        )
        .await?;
    store
        .put_interface(
            "Pump1",
            &RemoteInterface {
                name: "vnc".into(),
                host: "127.0.0.1".into(),
                port: 5900,
                protocol: Protocol::Vnc,
                description: "Operator panel".into(),
            },
        )
        .await?;
    let key = platform::secret::generate_app_key();
    store
        .create_app_key(
            &NewAppKey {
                name: "edge".into(),
                user: ADMIN.0.into(),
                expires_at: None,
                allowed_addresses: Vec::new(),
                thing_patterns: Vec::new(),
            },
            &platform::secret::hash_app_key(key.expose()),
        )
        .await?;

    let base = format!("https://{addr}");
    let fingerprint = prepared.identity.fingerprint.clone();
    // The platform's own wiring: the broker with the platform's hooks
    // (users, app keys, interfaces, StartTunnel over AlwaysOn, the audit
    // log) and `remote_access::app`, the whole router.
    let broker =
        platform::remote_access::start_broker(&platform, base.parse()?, shutdown.child_token())?;
    tokio::spawn(net::http::serve(
        listener,
        Some(prepared.identity.server_config.clone()),
        platform::remote_access::app(&platform, &broker),
        net::http::ServeOptions::default(),
        shutdown.clone(),
    ));
    Ok(Server {
        base,
        fingerprint,
        platform,
        app_key: key.expose().to_owned(),
        shutdown,
        _dir: dir,
    })
}

/// What a `StartTunnel` asks of the edge.
pub struct Start {
    server_url: String,
    server_token: String,
    target: SocketAddr,
}

fn text(req: &RequestBody, field: &str) -> Option<String> {
    match req.params.as_ref()?.value(field)? {
        Primitive::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn start_of(req: &RequestBody) -> Option<Start> {
    let connection: serde_json::Value = serde_json::from_str(&text(req, "connection")?).ok()?;
    let target = format!(
        "{}:{}",
        connection["host"].as_str()?,
        connection["port"].as_u64()?
    );
    Some(Start {
        server_url: text(req, "server_url")?,
        server_token: text(req, "server_token")?,
        target: target.parse().ok()?,
    })
}

/// Make `edge` a remote-access edge: it answers `StartTunnel` (and
/// `CompleteTunnel`) and attaches a tunnel-driver server side to each
/// session's server URL, connecting streams to the interface's target.
pub fn serve_tunnels(edge: &test_support::TestEdge, tls: Arc<rustls::ClientConfig>) {
    let (tx, rx) = mpsc::unbounded_channel();
    edge.set_handler(move |_code, req| match req.target.as_str() {
        "StartTunnel" => match start_of(req) {
            Some(start) => {
                let _ = tx.send(start);
                (Code::SUCCESS, None)
            }
            None => (Code::BAD_REQUEST, None),
        },
        "CompleteTunnel" => (Code::SUCCESS, None),
        _ => (Code::NOT_FOUND, None),
    });
    tokio::spawn(edge_sessions(rx, tls));
}

/// The device side of every session: attach to the server endpoint and run
/// the tunnel crate's server driver towards the interface's target.
async fn edge_sessions(mut starts: mpsc::UnboundedReceiver<Start>, tls: Arc<rustls::ClientConfig>) {
    while let Some(start) = starts.recv().await {
        let tls = tls.clone();
        tokio::spawn(async move {
            let auth = format!("Bearer {}", start.server_token);
            let headers = [
                ("Authorization", auth.as_str()),
                ("Sec-WebSocket-Protocol", broker::SUBPROTOCOL),
            ];
            let ws = match net::ws::connect(
                &start.server_url,
                &headers,
                tls,
                net::ws::WsConfig::bulk(),
                Duration::from_secs(5),
            )
            .await
            {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("test edge: attach failed: {e}");
                    return;
                }
            };
            let Ok(mux) =
                tunnel::Mux::new(tunnel::Config::new(tunnel::Role::Server), Instant::now())
            else {
                return;
            };
            let target = start.target;
            let options = SessionOptions {
                connector: Some(Connector::new(move |_label| tcp_connect(target))),
                ..SessionOptions::default()
            };
            run_session(ws, mux, options, CancellationToken::new()).await;
        });
    }
}
