//! The test server: the real platform router (store, AlwaysOn endpoint,
//! management API), the broker's session routes and the web console, merged
//! on one TLS listener on 127.0.0.1:0, the way the platform will mount them.
//! The broker's hooks: an `Authorizer` over the platform's own API (see
//! `PlatformAuth`), an in-memory edge that attaches a tunnel-driver edge to
//! every session, an in-memory audit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::Body;
use broker::memory::MemoryEdge;
use broker::{
    AuthError, Authorizer, Broker, BrokerConfig, Hooks, Principal, SessionAudit, SessionRecord,
    StartTunnelRequest, Target,
};
use futures_util::future::BoxFuture;
use platform::model::{NewAppKey, NewThing, Protocol, RemoteInterface, Role, Template};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
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
    let api = platform::http::router(platform.clone());
    let (edge, starts) = MemoryEdge::new();
    let broker = Broker::new(
        BrokerConfig::new(base.parse()?),
        Hooks {
            auth: Arc::new(PlatformAuth {
                api: api.clone(),
                platform: platform.clone(),
            }),
            edge: Arc::new(edge),
            audit: Arc::new(AuditLog {
                platform: platform.clone(),
            }),
        },
        shutdown.clone(),
    )?;
    let app: Router = api
        .merge(broker.router())
        .merge(web::router())
        .layer(axum::middleware::from_fn(web::no_basic_challenge));
    let fingerprint = prepared.identity.fingerprint.clone();
    tokio::spawn(net::http::serve(
        listener,
        Some(prepared.identity.server_config.clone()),
        app,
        net::http::ServeOptions::default(),
        shutdown.clone(),
    ));
    let server = Server {
        base,
        fingerprint,
        platform,
        app_key: key.expose().to_owned(),
        shutdown,
        _dir: dir,
    };
    tokio::spawn(edge_sessions(starts, server.client_tls()?));
    Ok(server)
}

/// The device side of every session: attach to the server endpoint and run
/// the tunnel crate's server driver towards the interface's target.
async fn edge_sessions(
    mut starts: tokio::sync::mpsc::UnboundedReceiver<StartTunnelRequest>,
    tls: Arc<rustls::ClientConfig>,
) {
    while let Some(start) = starts.recv().await {
        let tls = tls.clone();
        tokio::spawn(async move {
            let auth = format!("Bearer {}", start.server_token.expose());
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
            let Ok(target) =
                format!("{}:{}", start.target.host, start.target.port).parse::<SocketAddr>()
            else {
                return;
            };
            let Ok(mux) =
                tunnel::Mux::new(tunnel::Config::new(tunnel::Role::Server), Instant::now())
            else {
                return;
            };
            let options = SessionOptions {
                connector: Some(Connector::new(move |_label| tcp_connect(target))),
                ..SessionOptions::default()
            };
            run_session(ws, mux, options, CancellationToken::new()).await;
        });
    }
}

/// The broker's `Authorizer` over the platform's own API, standing in for
/// the platform's implementation until the lead wires it: `GET /api/v1/me`
/// with the caller's credentials says who it is; for a browser's unsafe
/// request, a probe `PATCH /api/v1/users/<no such user>` makes the platform
/// check the CSRF header (403 naming CSRF when wrong; otherwise 403 for a
/// non-administrator or 404, with no side effect).
struct PlatformAuth {
    api: Router,
    platform: platform::Platform,
}

impl PlatformAuth {
    async fn call(
        &self,
        method: http::Method,
        path: &str,
        parts: &http::request::Parts,
    ) -> Result<(u16, serde_json::Value), AuthError> {
        let mut req = http::Request::builder().method(method.clone()).uri(path);
        for name in ["cookie", "appkey", "authorization", "x-csrf-token"] {
            for v in parts.headers.get_all(name) {
                req = req.header(name, v);
            }
        }
        let body = if method == http::Method::GET {
            Body::empty()
        } else {
            req = req.header("content-type", "application/json");
            Body::from("{}")
        };
        let mut req = req
            .body(body)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        if let Some(ci) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
        {
            req.extensions_mut().insert(*ci);
        }
        let resp = self
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
    }
}

impl Authorizer for PlatformAuth {
    fn authenticate<'a>(
        &'a self,
        parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            let (status, me) = self.call(http::Method::GET, "/api/v1/me", parts).await?;
            if status != 200 {
                return Err(AuthError::Unauthenticated);
            }
            let browser = parts.headers.contains_key("cookie")
                && !parts.headers.contains_key("appkey")
                && !parts.headers.contains_key("authorization");
            if browser && !matches!(parts.method, http::Method::GET | http::Method::HEAD) {
                let (status, body) = self
                    .call(http::Method::PATCH, "/api/v1/users/%01csrf-probe", parts)
                    .await?;
                if status == 403 && body["error"].as_str().unwrap_or_default().contains("CSRF") {
                    return Err(AuthError::Forbidden("missing or wrong CSRF token".into()));
                }
            }
            Ok(Principal {
                user: me["user"].as_str().unwrap_or_default().to_owned(),
                admin: me["role"] == "administrator",
                cli: !browser,
            })
        })
    }

    fn authorize_open<'a>(
        &'a self,
        who: &'a Principal,
        thing: &'a str,
        interface: &'a str,
    ) -> BoxFuture<'a, Result<Target, AuthError>> {
        Box::pin(async move {
            let store = self.platform.store();
            let role = store
                .user_with_hash(&who.user)
                .await
                .map_err(|e| AuthError::Internal(e.to_string()))?
                .map(|(u, _)| u.role);
            if !role.is_some_and(Role::may_operate) {
                return Err(AuthError::Forbidden("viewers may not open sessions".into()));
            }
            let ifaces = store
                .interfaces(thing)
                .await
                .map_err(|e| AuthError::Internal(e.to_string()))?;
            let i = ifaces
                .into_iter()
                .find(|i| i.name == interface)
                .ok_or_else(|| {
                    AuthError::NotFound(format!("{thing} has no interface {interface}"))
                })?;
            Ok(Target {
                host: i.host,
                port: i.port,
                protocol: "tcp".into(),
            })
        })
    }
}

/// Ended sessions into the platform's audit log, one `session.ended` line
/// with the record as JSON, as the platform records them.
struct AuditLog {
    platform: platform::Platform,
}

impl SessionAudit for AuditLog {
    fn session_ended(&self, record: SessionRecord) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let subject = format!("{}/{}", record.thing, record.interface);
            let detail = serde_json::to_string(&record).unwrap_or_default();
            self.platform
                .audit("session.ended", &record.user, &subject, &detail, "")
                .await;
        })
    }
}
