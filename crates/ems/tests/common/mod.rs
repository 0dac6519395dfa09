//! Test helpers: a small fake AlwaysOn platform on a real loopback websocket, a
//! fake script resource, and an EMS spawned on 127.0.0.1:0.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

pub mod chain;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alwayson::{Body, Code, Limits, Message, Reassembler};
use futures_util::{SinkExt, StreamExt};
use net::tokio_tungstenite::tungstenite::Message as Ws;
use net::tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const SESSION: u32 = 0x00c0_ffee;
pub const WAIT: Duration = Duration::from_secs(10);

/// What the fake platform does with new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept, answer AUTH/BIND/requests with 0x40.
    Up,
    /// Close the TCP connection at once (platform down).
    Refuse,
    /// Accept and answer AUTH/BIND, then stop reading (no pongs).
    StallAfterBind,
}

#[derive(Debug)]
pub enum Ev {
    Upgrade {
        conn: usize,
        headers: Vec<(String, String)>,
    },
    /// A whole message from the edge; `raw` is its first frame.
    Msg {
        conn: usize,
        raw: Vec<u8>,
        msg: Message,
    },
    Ping {
        conn: usize,
        payload: Vec<u8>,
    },
    Closed {
        conn: usize,
    },
}

pub enum Ctl {
    Send(Message),
    Drop,
}

/// Canned answers by request target (property or service name).
pub type Replies =
    Arc<Mutex<std::collections::HashMap<String, (Code, Option<alwayson::InfoTable>)>>>;

pub struct Fake {
    pub addr: SocketAddr,
    pub replies: Replies,
    events: mpsc::UnboundedReceiver<Ev>,
    mode: Arc<Mutex<Mode>>,
    conns: Arc<Mutex<Vec<mpsc::UnboundedSender<Ctl>>>>,
    pub shutdown: CancellationToken,
}

impl Fake {
    pub async fn start(mode: Mode) -> Fake {
        Fake::start_with(mode, None).await
    }

    /// A fake platform speaking wss with `tls`.
    pub async fn start_with(mode: Mode, tls: Option<Arc<net::rustls::ServerConfig>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let mode = Arc::new(Mutex::new(mode));
        let conns: Arc<Mutex<Vec<mpsc::UnboundedSender<Ctl>>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let replies: Replies = Arc::default();
        let (m, c, sd, rp) = (
            mode.clone(),
            conns.clone(),
            shutdown.clone(),
            replies.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    _ = sd.cancelled() => return,
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let mode = *m.lock().unwrap();
                if mode == Mode::Refuse {
                    drop(tcp);
                    continue;
                }
                let (tx, sd, rp, c, tls) =
                    (tx.clone(), sd.clone(), rp.clone(), c.clone(), tls.clone());
                tokio::spawn(async move {
                    let register = || {
                        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
                        let mut v = c.lock().unwrap();
                        v.push(ctl_tx);
                        (v.len() - 1, ctl_rx)
                    };
                    match tls {
                        None => {
                            let (conn, ctl_rx) = register();
                            serve_conn(tcp, conn, mode, tx, ctl_rx, sd, rp).await;
                        }
                        Some(cfg) => {
                            let acceptor = net::tokio_rustls::TlsAcceptor::from(cfg);
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let (conn, ctl_rx) = register();
                                serve_conn(stream, conn, mode, tx, ctl_rx, sd, rp).await;
                            }
                        }
                    }
                });
            }
        });
        Fake {
            addr,
            replies,
            events,
            mode,
            conns,
            shutdown,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn connections(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    pub fn send(&self, conn: usize, msg: Message) {
        let _ = self.conns.lock().unwrap()[conn].send(Ctl::Send(msg));
    }

    pub fn drop_conn(&self, conn: usize) {
        let _ = self.conns.lock().unwrap()[conn].send(Ctl::Drop);
    }

    /// Waits (with a deadline) for the first event `f` accepts, skipping others.
    pub async fn expect<T>(&mut self, what: &str, mut f: impl FnMut(&Ev) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("fake platform stopped");
            if let Some(t) = f(&ev) {
                return t;
            }
        }
    }

    /// Next whole message with `code` from the edge.
    pub async fn expect_msg(&mut self, what: &str, code: Code) -> (usize, Vec<u8>, Message) {
        self.expect(what, |ev| match ev {
            Ev::Msg { conn, raw, msg } if msg.header.code == code => {
                Some((*conn, raw.clone(), msg.clone()))
            }
            _ => None,
        })
        .await
    }

    /// The response to request `id` from the edge.
    pub async fn expect_response(&mut self, id: u32) -> Message {
        self.expect("response", |ev| match ev {
            Ev::Msg { msg, .. } if msg.header.code.is_response() && msg.header.request_id == id => {
                Some(msg.clone())
            }
            _ => None,
        })
        .await
    }
}

async fn serve_conn<S>(
    tcp: S,
    conn: usize,
    mode: Mode,
    tx: mpsc::UnboundedSender<Ev>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    sd: CancellationToken,
    replies: Replies,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let tx2 = tx.clone();
    let cb = move |req: &Request, resp: Response| {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let _ = tx2.send(Ev::Upgrade { conn, headers });
        Ok(resp)
    };
    let Ok(mut ws) = net::tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
        return;
    };
    let mut reasm = Reassembler::new(Limits::default(), Duration::from_secs(10));
    let mut stalled = false;
    loop {
        if stalled {
            tokio::select! {
                _ = sd.cancelled() => return,
                c = ctl.recv() => if matches!(c, None | Some(Ctl::Drop)) { return },
            }
            continue;
        }
        tokio::select! {
            _ = sd.cancelled() => return,
            c = ctl.recv() => match c {
                Some(Ctl::Send(m)) => {
                    for f in alwayson::split(&m, 8192).unwrap() {
                        if ws.send(Ws::Binary(f)).await.is_err() { return }
                    }
                }
                // Drop TCP without a close frame.
                Some(Ctl::Drop) | None => return,
            },
            frame = ws.next() => {
                let data = match frame {
                    Some(Ok(Ws::Binary(d))) => d,
                    Some(Ok(Ws::Ping(p))) => { let _ = tx.send(Ev::Ping { conn, payload: p.to_vec() }); continue }
                    Some(Ok(_)) => continue,
                    _ => { let _ = tx.send(Ev::Closed { conn }); return }
                };
                let Ok(Some(msg)) = reasm.push(&data, Instant::now()) else { continue };
                let reply = match &msg.body {
                    Body::Auth(_) => Some(Message::response(&alwayson::Header { session_id: SESSION, ..msg.header }, Code::SUCCESS, None)),
                    Body::Bind(_) => Some(Message::response(&msg.header, Code::SUCCESS, None)),
                    Body::Request(b) => {
                        let canned = replies.lock().unwrap().get(&b.target).cloned();
                        let (code, content) = canned.unwrap_or((Code::SUCCESS, None));
                        Some(Message::response(&msg.header, code, content))
                    }
                    _ => None,
                };
                let is_bind = matches!(msg.body, Body::Bind(_));
                let _ = tx.send(Ev::Msg { conn, raw: data.to_vec(), msg });
                if let Some(r) = reply {
                    if ws.send(Ws::Binary(r.to_bytes().unwrap())).await.is_err() { return }
                }
                if is_bind && mode == Mode::StallAfterBind {
                    stalled = true;
                }
            }
        }
    }
}

/// A config for the fake platform (plain ws, fast timers); `extra` is merged in
/// at the top level (JSON object text without braces, may be empty).
pub fn config_json(platform: SocketAddr, extra: &str) -> String {
    let sep = if extra.trim().is_empty() { "" } else { "," };
    format!(
        r#"{{
  "ws_servers": [{{"host": "127.0.0.1", "port": {port}}}],
  "appKey": "d0b0c0a0-1111-2222-3333-444455556666",
  "ws_connection": {{"encryption": "none", "ping_rate": 300, "pingpong_timeout": 500,
     "connect_retry_interval": 50, "connect_timeout": 2000, "msg_timeout": 2000}}{sep}
  {extra}
}}"#,
        port = platform.port()
    )
}

pub struct Ems {
    pub rest: SocketAddr,
    pub shutdown: CancellationToken,
    pub join: tokio::task::JoinHandle<Result<(), ems::RunError>>,
}

impl Ems {
    pub async fn start(json: &str) -> Ems {
        let loaded = ems::config::parse(json, std::path::Path::new("/tmp"))
            .unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let join = tokio::spawn(ems::run(loaded.config, listener, shutdown.clone()));
        Ems {
            rest,
            shutdown,
            join,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.rest)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.join)
            .await
            .expect("EMS stops")
            .unwrap()
            .unwrap();
    }
}

/// Polls `f` until it returns Some, with a deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn bind_names(msg: &Message) -> (Option<(String, String)>, Vec<String>) {
    match &msg.body {
        Body::Bind(b) => (
            b.gateway.as_ref().map(|g| (g.name.clone(), g.kind.clone())),
            b.names.clone(),
        ),
        other => panic!("not a bind body: {other:?}"),
    }
}
