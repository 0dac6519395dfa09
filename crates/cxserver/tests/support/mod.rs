//! Test support: a fake platform implementing the upstream link contract of docs/cxserver.md
//! on top of `alwayson` (real loopback TLS websockets), an AlwaysOn test edge, and a helper
//! that starts a connection server on 127.0.0.1:0. Shared by the integration tests and the
//! capacity bench (`#[path]` include), so not every item is used by every includer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod counting_alloc;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alwayson::{Body, Characteristic, Code, EntityType, Header, Limits, Message, RequestBody};
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use cxserver::{Config, CxServer, EdgeSettings, Listeners, PlatformSettings, Secret, Status, Tls};
use futures_util::{SinkExt, StreamExt};
use net::ws::{ClientWs, Decision, WsConfig};
use net::{CancellationToken, SelfSigned};
use rustls::ClientConfig;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub const CX_KEY: &str = "cx-app-key";
pub const EDGE_KEY: &str = "edge-app-key";
pub const TUNNEL_TOKEN: &str = "Bearer good-token";
const LINK_SESSION: u32 = 0x00C0_FFEE;

/// What the fake platform saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    LinkAuth {
        link: u64,
    },
    Peer {
        endpoint: u32,
        peer: Option<String>,
    },
    Auth {
        link: u64,
        endpoint: u32,
        ok: bool,
    },
    Bind {
        link: u64,
        endpoint: u32,
        names: Vec<String>,
    },
    Unbind {
        link: u64,
        endpoint: u32,
        names: Vec<String>,
    },
    Gone {
        link: u64,
        endpoint: u32,
    },
    Request {
        link: u64,
        endpoint: u32,
        target: String,
    },
    LinkClosed {
        link: u64,
    },
    Tunnel {
        path: String,
        protocol: Option<String>,
    },
    Chunk {
        link: u64,
        endpoint: u32,
        session: u32,
        request: u32,
    },
}

enum ToLink {
    Frame(Bytes),
    Close,
}

#[derive(Default)]
struct State {
    links: HashMap<u64, mpsc::UnboundedSender<ToLink>>,
    /// (link, endpoint) → session.
    endpoints: HashMap<(u64, u32), u32>,
    /// thing → (link, endpoint).
    bindings: HashMap<String, (u64, u32)>,
    pending: HashMap<u32, oneshot::Sender<Message>>,
    seen: Vec<Seen>,
    next_session: u32,
    next_request: u32,
    next_link: u64,
    /// Refuse link AUTH (to test 504).
    refuse_links: bool,
}

/// A fake platform: `/Thingworx/WS` with the connection-server contract, and echoing tunnel
/// endpoints that require `Authorization: Bearer good-token`.
pub struct FakePlatform {
    pub addr: SocketAddr,
    pub cert: SelfSigned,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    pub shutdown: CancellationToken,
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap()
}

impl FakePlatform {
    pub async fn start() -> FakePlatform {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        FakePlatform::start_on(
            listener,
            SelfSigned::generate(&["localhost", "127.0.0.1"]).unwrap(),
        )
        .await
    }

    /// Starts on a given listener and certificate (to restart at the same address).
    pub async fn start_on(listener: TcpListener, cert: SelfSigned) -> FakePlatform {
        let addr = listener.local_addr().unwrap();
        let tls = cert.server_config(&[b"http/1.1"]).unwrap();
        let state = Arc::new(Mutex::new(State {
            next_session: 0x100,
            next_request: 1000,
            ..Default::default()
        }));
        let changed = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let (st, ch) = (state.clone(), changed.clone());
        let opts = net::accept::AcceptOptions {
            max_connections: 100_000,
            ..Default::default()
        };
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = net::accept::run(listener, Some(tls), opts, token, move |conn| {
                serve_conn(conn, st.clone(), ch.clone())
            })
            .await;
        });
        FakePlatform {
            addr,
            cert,
            state,
            changed,
            shutdown,
        }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("wss://127.0.0.1:{}", self.addr.port())).unwrap()
    }

    /// Client TLS for the connection server's upstream: pinned to this platform's certificate.
    pub fn client_tls(&self) -> Arc<ClientConfig> {
        net::tls::client_config(
            &net::Trust::Pinned(vec![self.cert.fingerprint()]),
            &[b"http/1.1"],
        )
        .unwrap()
    }

    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    pub fn refuse_links(&self, refuse: bool) {
        lock(&self.state).refuse_links = refuse;
    }

    pub fn links(&self) -> usize {
        lock(&self.state).links.len()
    }

    pub fn bound(&self, thing: &str) -> Option<(u64, u32)> {
        lock(&self.state).bindings.get(thing).copied()
    }

    pub fn endpoints(&self) -> usize {
        lock(&self.state).endpoints.len()
    }

    /// Waits until `cond` holds (checked on every state change), or fails after `within`.
    pub async fn wait_until<F: Fn(&FakePlatform) -> bool>(
        &self,
        within: Duration,
        what: &str,
        cond: F,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            if cond(self) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                if cond(self) {
                    return Ok(());
                }
                bail!("timed out waiting for: {what}; seen: {:?}", self.seen());
            }
        }
    }

    /// Closes every link socket (the connection server must reconnect and replay).
    pub fn kill_links(&self) {
        for tx in lock(&self.state).links.values() {
            let _ = tx.send(ToLink::Close);
        }
    }

    /// Closes one link socket.
    pub fn kill_link(&self, link: u64) {
        if let Some(tx) = lock(&self.state).links.get(&link) {
            let _ = tx.send(ToLink::Close);
        }
    }

    /// Ids of the links currently open.
    pub fn link_ids(&self) -> Vec<u64> {
        lock(&self.state).links.keys().copied().collect()
    }

    /// Sends raw frames (e.g. multipart chunks) to the edge that bound `thing`, with its
    /// endpointId and session written into each header.
    pub fn send_frames(&self, thing: &str, frames: Vec<Bytes>) -> Result<()> {
        let st = lock(&self.state);
        let &(link, endpoint) = st
            .bindings
            .get(thing)
            .ok_or_else(|| anyhow!("{thing} not bound"))?;
        let session = *st
            .endpoints
            .get(&(link, endpoint))
            .ok_or_else(|| anyhow!("no session"))?;
        let tx = st.links.get(&link).ok_or_else(|| anyhow!("link gone"))?;
        for f in frames {
            let mut f = f.to_vec();
            f[6..10].copy_from_slice(&endpoint.to_be_bytes());
            f[10..14].copy_from_slice(&session.to_be_bytes());
            tx.send(ToLink::Frame(Bytes::from(f)))
                .map_err(|_| anyhow!("link closed"))?;
        }
        Ok(())
    }

    /// Sends a platform → edge request to the edge that bound `thing`; returns its answer.
    pub async fn request(&self, thing: &str, code: Code, body: RequestBody) -> Result<Message> {
        let (req, rx) = {
            let mut st = lock(&self.state);
            let &(link, endpoint) = st
                .bindings
                .get(thing)
                .ok_or_else(|| anyhow!("{thing} not bound"))?;
            let session = *st
                .endpoints
                .get(&(link, endpoint))
                .ok_or_else(|| anyhow!("no session"))?;
            st.next_request += 1;
            let req = st.next_request;
            let mut msg = Message::request(code, req, session, body);
            msg.header.endpoint_id = endpoint;
            let (tx, rx) = oneshot::channel();
            st.pending.insert(req, tx);
            let link_tx = st.links.get(&link).ok_or_else(|| anyhow!("link gone"))?;
            link_tx
                .send(ToLink::Frame(msg.to_bytes()?))
                .map_err(|_| anyhow!("link closed"))?;
            (req, rx)
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), rx).await;
        lock(&self.state).pending.remove(&req);
        Ok(answer.context("no answer within 10 s")??)
    }
}

impl Drop for FakePlatform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn tunnel_decision(h: &net::ws::Handshake) -> Decision {
    let auth = h.headers.get("authorization").and_then(|v| v.to_str().ok());
    let app_key = h.headers.get("appkey").and_then(|v| v.to_str().ok());
    if auth != Some(TUNNEL_TOKEN) && app_key != Some(EDGE_KEY) {
        return Decision::Reject {
            status: http::StatusCode::UNAUTHORIZED,
            reason: "bad token".into(),
        };
    }
    let subprotocol = h
        .headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(|p| p.split(',').next().unwrap_or("").trim().to_owned());
    Decision::Accept { subprotocol }
}

async fn serve_conn(conn: net::accept::Conn, state: Arc<Mutex<State>>, changed: Arc<Notify>) {
    let decide = |h: &net::ws::Handshake| {
        if h.uri.path() == "/Thingworx/WS" {
            Decision::Accept { subprotocol: None }
        } else {
            tunnel_decision(h)
        }
    };
    let Ok((ws, hs)) = net::ws::accept_with(
        conn.stream,
        WsConfig::bulk(),
        Duration::from_secs(5),
        decide,
    )
    .await
    else {
        return;
    };
    if hs.uri.path() != "/Thingworx/WS" {
        let protocol = hs
            .headers
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        lock(&state).seen.push(Seen::Tunnel {
            path: hs.uri.path().to_owned(),
            protocol,
        });
        changed.notify_waiters();
        echo(ws).await;
        return;
    }
    serve_link(ws, state, changed).await;
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
) {
    while let Some(Ok(m)) = ws.next().await {
        match m {
            WsMessage::Binary(_) | WsMessage::Text(_) => match ws.send(m).await {
                Ok(()) => {}
                Err(_) => return,
            },
            WsMessage::Close(_) => return,
            _ => {}
        }
    }
}

async fn serve_link<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let limits = Limits::default();
    // The link's own AUTH.
    let Some(Ok(WsMessage::Binary(first))) = stream.next().await else {
        return;
    };
    let Ok(Message {
        header,
        body: Body::Auth(auth),
    }) = Message::decode(&first, &limits)
    else {
        return;
    };
    let refuse = lock(&state).refuse_links;
    if auth.app_key() != Some(CX_KEY) || header.endpoint_id != 0 || refuse {
        let reply = Message::error(&header, Code::UNAUTHORIZED, "not a connection server key");
        let _ = sink
            .send(WsMessage::Binary(reply.to_bytes().unwrap()))
            .await;
        return;
    }
    let reply = Message::response(
        &Header {
            session_id: LINK_SESSION,
            ..header
        },
        Code::SUCCESS,
        None,
    );
    if sink
        .send(WsMessage::Binary(reply.to_bytes().unwrap()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let link = {
        let mut st = lock(&state);
        st.next_link += 1;
        let link = st.next_link;
        st.links.insert(link, tx.clone());
        st.seen.push(Seen::LinkAuth { link });
        link
    };
    changed.notify_waiters();
    let writer = async move {
        while let Some(m) = rx.recv().await {
            match m {
                ToLink::Frame(b) => {
                    if sink.send(WsMessage::Binary(b)).await.is_err() {
                        return;
                    }
                }
                ToLink::Close => {
                    let _ = sink.close().await;
                    return;
                }
            }
        }
    };
    let reader = async {
        while let Some(Ok(m)) = stream.next().await {
            let WsMessage::Binary(frame) = m else {
                continue;
            };
            if frame.get(14) == Some(&1) {
                let h = Header::peek(&frame).unwrap();
                let (endpoint, session, request) = (h.endpoint_id, h.session_id, h.request_id);
                lock(&state).seen.push(Seen::Chunk {
                    link,
                    endpoint,
                    session,
                    request,
                });
                changed.notify_waiters();
                continue;
            }
            let Ok(msg) = Message::decode(&frame, &limits) else {
                continue;
            };
            if let Some(reply) = handle(&state, link, msg) {
                let _ = tx.send(ToLink::Frame(reply.to_bytes().unwrap()));
            }
            changed.notify_waiters();
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    let mut st = lock(&state);
    st.links.remove(&link);
    st.endpoints.retain(|(l, _), _| *l != link);
    st.bindings.retain(|_, (l, _)| *l != link);
    st.seen.push(Seen::LinkClosed { link });
    drop(st);
    changed.notify_waiters();
}

/// The contract, per message on a link: returns the reply to send, if any.
fn handle(state: &Mutex<State>, link: u64, msg: Message) -> Option<Message> {
    let h = msg.header;
    let ep = h.endpoint_id;
    let mut st = lock(state);
    match msg.body {
        Body::Auth(auth) => {
            let peer = auth.claim("tether-peer").map(str::to_owned);
            st.seen.push(Seen::Peer { endpoint: ep, peer });
            let ok = auth.app_key() == Some(EDGE_KEY) && ep != 0;
            st.seen.push(Seen::Auth {
                link,
                endpoint: ep,
                ok,
            });
            if !ok {
                return Some(Message::error(&h, Code::UNAUTHORIZED, "invalid app key"));
            }
            st.next_session += 1;
            let session = st.next_session;
            st.endpoints.insert((link, ep), session);
            Some(Message::response(
                &Header {
                    session_id: session,
                    ..h
                },
                Code::SUCCESS,
                None,
            ))
        }
        Body::Bind(b) if h.code == Code::UNBIND && b.names.is_empty() && b.gateway.is_none() => {
            // "Endpoint gone", honoured whatever its session id.
            st.endpoints.remove(&(link, ep));
            st.bindings.retain(|_, owner| *owner != (link, ep));
            st.seen.push(Seen::Gone { link, endpoint: ep });
            Some(Message::response(&h, Code::SUCCESS, None))
        }
        Body::Bind(b) => {
            if st.endpoints.get(&(link, ep)) != Some(&h.session_id) {
                return Some(Message::error(&h, Code::UNAUTHORIZED, "not authenticated"));
            }
            if h.code == Code::BIND {
                for n in &b.names {
                    if st.bindings.get(n).is_some_and(|&owner| owner != (link, ep)) {
                        return Some(Message::error(&h, Code::FORBIDDEN, "already bound"));
                    }
                }
                for n in &b.names {
                    st.bindings.insert(n.clone(), (link, ep));
                }
                st.seen.push(Seen::Bind {
                    link,
                    endpoint: ep,
                    names: b.names,
                });
            } else {
                for n in &b.names {
                    st.bindings.remove(n);
                }
                st.seen.push(Seen::Unbind {
                    link,
                    endpoint: ep,
                    names: b.names,
                });
            }
            Some(Message::response(&h, Code::SUCCESS, None))
        }
        Body::Request(r) => {
            if st.endpoints.get(&(link, ep)) != Some(&h.session_id) {
                return Some(Message::error(&h, Code::UNAUTHORIZED, "not authenticated"));
            }
            st.seen.push(Seen::Request {
                link,
                endpoint: ep,
                target: r.target,
            });
            Some(Message::response(&h, Code::SUCCESS, None))
        }
        Body::Response(_) => {
            if let Some(tx) = st.pending.remove(&h.request_id) {
                let _ = tx.send(msg);
            }
            None
        }
        Body::KeepAlive => Some(Message::response(&h, Code::SUCCESS, None)),
    }
}

/// A running connection server.
pub struct Cx {
    pub edge_addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub edge_tls: Arc<ClientConfig>,
    pub status: Status,
    pub metrics: Arc<cxserver::Metrics>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// A config for tests: small timeouts, given platform URL.
pub fn test_config(platform: url::Url) -> Config {
    let mut platform = PlatformSettings::new(platform, Secret::new(CX_KEY));
    platform.reconnect_min = Duration::from_millis(50);
    platform.reconnect_max = Duration::from_millis(200);
    platform.connect_timeout = Duration::from_secs(5);
    platform.auth_timeout = Duration::from_secs(5);
    Config {
        edge: EdgeSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..EdgeSettings::default()
        },
        platform,
        health_listen: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: Duration::from_secs(2),
    }
}

pub async fn spawn_cx(platform: &FakePlatform, tweak: impl FnOnce(&mut Config)) -> Cx {
    let mut config = test_config(platform.url());
    tweak(&mut config);
    let cert = SelfSigned::generate(&["localhost", "127.0.0.1"]).unwrap();
    let tls = Tls {
        edge: cert.server_config(&[b"http/1.1"]).unwrap(),
        upstream: platform.client_tls(),
    };
    let edge_tls = net::tls::client_config(
        &net::Trust::Pinned(vec![cert.fingerprint()]),
        &[b"http/1.1"],
    )
    .unwrap();
    let edge = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (edge_addr, health_addr) = (edge.local_addr().unwrap(), health.local_addr().unwrap());
    let server = CxServer::new(config, tls);
    let (status, metrics) = (server.status(), server.metrics());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        server.run(Listeners { edge, health }, token).await.unwrap();
    });
    Cx {
        edge_addr,
        health_addr,
        edge_tls,
        status,
        metrics,
        shutdown,
        task,
    }
}

impl Cx {
    pub async fn wait_links_up(&self, n: usize) -> Result<()> {
        wait_for(Duration::from_secs(10), "links up", || {
            self.status.links_up() >= n
        })
        .await
    }
}

/// Polls `cond` every 5 ms until it holds or `within` passes (for state without a notifier).
pub async fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// A test AlwaysOn edge.
pub struct Edge {
    pub ws: ClientWs,
    pub session: u32,
    next: u32,
}

impl Edge {
    pub async fn connect(cx: &Cx) -> Result<Edge> {
        let url = format!("wss://127.0.0.1:{}/Thingworx/WS", cx.edge_addr.port());
        let cfg = WsConfig::small();
        let ws = net::ws::connect(
            &url,
            &[("appKey", EDGE_KEY)],
            cx.edge_tls.clone(),
            cfg,
            Duration::from_secs(10),
        )
        .await?;
        Ok(Edge {
            ws,
            session: alwayson::SESSION_NONE,
            next: 2,
        })
    }

    pub fn next_id(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.ws.send(WsMessage::Binary(msg.to_bytes()?)).await?;
        Ok(())
    }

    /// Next AlwaysOn frame (raw), skipping control frames.
    pub async fn recv_raw(&mut self) -> Result<Bytes> {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .context("no frame within 10 s")?
                .ok_or_else(|| anyhow!("closed"))??;
            match m {
                WsMessage::Binary(b) => return Ok(b),
                WsMessage::Close(f) => bail!("closed by server: {f:?}"),
                _ => {}
            }
        }
    }

    pub async fn recv(&mut self) -> Result<Message> {
        let b = self.recv_raw().await?;
        Ok(Message::decode(&b, &Limits::default())?)
    }

    pub async fn auth(&mut self, key: &str) -> Result<Message> {
        let id = self.next_id();
        self.send(&Message::auth_app_key(id, key)).await?;
        let r = self.recv().await?;
        if r.header.code == Code::SUCCESS {
            self.session = r.header.session_id;
        }
        Ok(r)
    }

    pub async fn bind(&mut self, names: &[&str]) -> Result<Message> {
        let id = self.next_id();
        let names = names.iter().map(|s| (*s).to_owned()).collect();
        self.send(&Message::bind(id, self.session, None, names))
            .await?;
        self.recv().await
    }

    /// Answers one platform request with a one-row `{result: STRING}` table naming the target.
    pub async fn answer_one(&mut self) -> Result<Message> {
        let req = self.recv().await?;
        let Body::Request(r) = &req.body else {
            bail!("expected a request, got {req:?}")
        };
        let reply = Message::error(&req.header, Code::SUCCESS, format!("answered {}", r.target));
        self.send(&reply).await?;
        Ok(req)
    }

    /// AUTH with the edge key and BIND `names`; fails unless both succeed.
    pub async fn connect_bound(cx: &Cx, names: &[&str]) -> Result<Edge> {
        let mut e = Edge::connect(cx).await?;
        let a = e.auth(EDGE_KEY).await?;
        if a.header.code != Code::SUCCESS {
            bail!("AUTH refused: {a:?}");
        }
        let b = e.bind(names).await?;
        if b.header.code != Code::SUCCESS {
            bail!("BIND refused: {b:?}");
        }
        Ok(e)
    }
}

pub fn get_property(thing: &str, property: &str) -> RequestBody {
    RequestBody::new(
        EntityType::THING,
        thing,
        Characteristic::PROPERTIES,
        property,
    )
}

/// Plain HTTP GET on the health port: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await??;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad response {text}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
