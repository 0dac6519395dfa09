//! `TestEdge`: a minimal AlwaysOn edge for tests, over a real TLS websocket.
//! A reader task routes answers to waiting requests, answers platform
//! requests with the installed handler (or queues them as events), and
//! reports pongs and the close frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alwayson::{
    Body, Code, Gateway, InfoTable, Limits, Message, PropertyValue, Reassembler, RequestBody,
};
use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use net::tokio_tungstenite::tungstenite::Message as WsMessage;
use net::tokio_tungstenite::tungstenite::protocol::CloseFrame;
use net::tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio::sync::{mpsc, oneshot};

/// Answers a platform request: `(code, content)`.
pub type Handler = Arc<dyn Fn(Code, &RequestBody) -> (Code, Option<InfoTable>) + Send + Sync>;

/// Something the edge saw that no request waited for.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A platform request with no handler installed (not answered).
    Request(Message),
    /// A response nobody waited for.
    Unsolicited(Message),
    /// A pong with its payload.
    Pong(Bytes),
    /// The socket closed: the close frame's code and reason, if any.
    Closed(Option<(u16, String)>),
}

enum Out {
    Ws(WsMessage),
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Message>>>>;

/// A test edge connection.
pub struct TestEdge {
    out: mpsc::Sender<Out>,
    pending: Pending,
    handler: Arc<Mutex<Option<Handler>>>,
    events: mpsc::Receiver<Event>,
    next_id: AtomicU32,
    session_id: u32,
    /// How long `request` waits for an answer.
    pub timeout: Duration,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl TestEdge {
    /// Opens the websocket (optionally with an `appKey` header); no AUTH yet.
    pub async fn connect(
        ws_url: &str,
        tls: Arc<rustls::ClientConfig>,
        app_key_header: Option<&str>,
    ) -> anyhow::Result<TestEdge> {
        let headers: Vec<(&str, &str)> = app_key_header
            .map(|k| vec![("appKey", k)])
            .unwrap_or_default();
        let ws = net::ws::connect(
            ws_url,
            &headers,
            tls,
            net::ws::WsConfig::bulk(),
            Duration::from_secs(10),
        )
        .await
        .context("websocket connect")?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::channel::<Out>(1024);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(1024);
        let pending: Pending = Arc::default();
        let handler: Arc<Mutex<Option<Handler>>> = Arc::default();
        tokio::spawn(async move {
            while let Some(Out::Ws(m)) = out_rx.recv().await {
                let close = matches!(m, WsMessage::Close(_));
                if sink.send(m).await.is_err() || close {
                    break;
                }
            }
        });
        let (p, h, out) = (pending.clone(), handler.clone(), out_tx.clone());
        tokio::spawn(async move {
            let mut reassembler = Reassembler::new(Limits::default(), Duration::from_secs(50));
            let mut close = None;
            while let Some(frame) = stream.next().await {
                let bytes = match frame {
                    Ok(WsMessage::Binary(b)) => b,
                    Ok(WsMessage::Pong(b)) => {
                        let _ = ev_tx.send(Event::Pong(b)).await;
                        continue;
                    }
                    Ok(WsMessage::Close(f)) => {
                        close = f.map(|f| (u16::from(f.code), f.reason.to_string()));
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let msg = match reassembler.push(&bytes, Instant::now()) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(%e, "test edge: undecodable message");
                        continue;
                    }
                };
                match &msg.body {
                    Body::Response(_) => {
                        let waiter = p
                            .lock()
                            .map(|mut m| m.remove(&msg.header.request_id))
                            .ok()
                            .flatten();
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(msg);
                            }
                            None => {
                                let _ = ev_tx.send(Event::Unsolicited(msg)).await;
                            }
                        }
                    }
                    Body::Request(req) => {
                        let f = h.lock().ok().and_then(|g| g.clone());
                        match f {
                            Some(f) => {
                                let (code, content) = f(msg.header.code, req);
                                let reply = if code.is_success() {
                                    Message::response(&msg.header, code, content)
                                } else {
                                    let mut r =
                                        Message::error(&msg.header, code, "test edge error");
                                    if let Body::Response(b) = &mut r.body {
                                        b.reason = None;
                                        b.content = content;
                                    }
                                    r
                                };
                                if let Ok(frames) = alwayson::split(&reply, 8192) {
                                    for f in frames {
                                        let _ = out.send(Out::Ws(WsMessage::Binary(f))).await;
                                    }
                                }
                            }
                            None => {
                                let _ = ev_tx.send(Event::Request(msg)).await;
                            }
                        }
                    }
                    _ => {
                        let _ = ev_tx.send(Event::Unsolicited(msg)).await;
                    }
                }
            }
            let _ = ev_tx.send(Event::Closed(close)).await;
        });
        Ok(TestEdge {
            out: out_tx,
            pending,
            handler,
            events: ev_rx,
            next_id: AtomicU32::new(2),
            session_id: alwayson::SESSION_NONE,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Connects and authenticates with `app_key`; fails unless the answer is 0x40.
    pub async fn connect_auth(
        ws_url: &str,
        tls: Arc<rustls::ClientConfig>,
        app_key: &str,
    ) -> anyhow::Result<TestEdge> {
        let mut edge = TestEdge::connect(ws_url, tls, Some(app_key)).await?;
        let r = edge.auth_app_key(app_key).await?;
        if r.header.code != Code::SUCCESS {
            bail!("AUTH refused: {r:?}");
        }
        Ok(edge)
    }

    /// The session id from the AUTH answer.
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// A fresh request id.
    pub fn next_request_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Installs the handler that answers platform requests.
    pub fn set_handler(
        &self,
        f: impl Fn(Code, &RequestBody) -> (Code, Option<InfoTable>) + Send + Sync + 'static,
    ) {
        if let Ok(mut g) = self.handler.lock() {
            *g = Some(Arc::new(f));
        }
    }

    /// Sends raw bytes as one binary websocket message.
    pub async fn send_raw(&self, bytes: impl Into<Bytes>) -> anyhow::Result<()> {
        self.out
            .send(Out::Ws(WsMessage::Binary(bytes.into())))
            .await
            .map_err(|_| anyhow!("socket closed"))
    }

    /// Sends a text websocket message.
    pub async fn send_text(&self, text: &str) -> anyhow::Result<()> {
        self.out
            .send(Out::Ws(WsMessage::Text(text.into())))
            .await
            .map_err(|_| anyhow!("socket closed"))
    }

    /// Sends a websocket ping.
    pub async fn ping(&self, payload: &[u8]) -> anyhow::Result<()> {
        self.out
            .send(Out::Ws(WsMessage::Ping(Bytes::copy_from_slice(payload))))
            .await
            .map_err(|_| anyhow!("socket closed"))
    }

    /// Sends a close frame.
    pub async fn close(&self) -> anyhow::Result<()> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "test edge closing".into(),
        };
        self.out
            .send(Out::Ws(WsMessage::Close(Some(frame))))
            .await
            .map_err(|_| anyhow!("socket closed"))
    }

    /// Sends `msg` (chunked at 8192 if large) and waits for the answer with its request id.
    pub async fn request(&self, msg: &Message) -> anyhow::Result<Message> {
        self.request_chunked(msg, 8192).await
    }

    /// Like `request` with a chosen chunk size.
    pub async fn request_chunked(
        &self,
        msg: &Message,
        chunk_size: usize,
    ) -> anyhow::Result<Message> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .insert(msg.header.request_id, tx);
        for frame in alwayson::split(msg, chunk_size)? {
            self.send_raw(frame).await?;
        }
        tokio::time::timeout(self.timeout, rx)
            .await
            .context("no answer in time")?
            .map_err(|_| anyhow!("socket closed before the answer"))
    }

    /// AUTH with an app key; on 0x40 remembers the session id.
    pub async fn auth_app_key(&mut self, key: &str) -> anyhow::Result<Message> {
        let r = self
            .request(&Message::auth_app_key(self.next_request_id(), key))
            .await?;
        if r.header.code == Code::SUCCESS {
            self.session_id = r.header.session_id;
        }
        Ok(r)
    }

    /// AUTH with `userid` / `password` claims.
    pub async fn auth_credentials(
        &mut self,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Message> {
        let r = self
            .request(&Message::auth_credentials(
                self.next_request_id(),
                user,
                password,
            ))
            .await?;
        if r.header.code == Code::SUCCESS {
            self.session_id = r.header.session_id;
        }
        Ok(r)
    }

    /// BIND `names` without a gateway.
    pub async fn bind(&self, names: &[&str]) -> anyhow::Result<Message> {
        let names = names.iter().map(|n| n.to_string()).collect();
        self.request(&Message::bind(
            self.next_request_id(),
            self.session_id,
            None,
            names,
        ))
        .await
    }

    /// BIND with a gateway (type `EMSGateway`).
    pub async fn bind_gateway(&self, gateway: &str, names: &[&str]) -> anyhow::Result<Message> {
        let gw = Gateway {
            name: gateway.to_owned(),
            kind: "EMSGateway".to_owned(),
        };
        let names = names.iter().map(|n| n.to_string()).collect();
        self.request(&Message::bind(
            self.next_request_id(),
            self.session_id,
            Some(gw),
            names,
        ))
        .await
    }

    /// UNBIND `names`.
    pub async fn unbind(&self, names: &[&str]) -> anyhow::Result<Message> {
        let names = names.iter().map(|n| n.to_string()).collect();
        self.request(&Message::unbind(
            self.next_request_id(),
            self.session_id,
            None,
            names,
        ))
        .await
    }

    /// `POST Things/<thing>/Services/UpdateSubscribedPropertyValues` with `values`.
    pub async fn push_properties(
        &self,
        thing: &str,
        values: &[PropertyValue],
    ) -> anyhow::Result<Message> {
        let body = RequestBody::new(
            alwayson::EntityType::THING,
            thing,
            alwayson::Characteristic::SERVICES,
            "UpdateSubscribedPropertyValues",
        )
        .with_params(InfoTable::property_push(values));
        self.request(&Message::request(
            Code::POST,
            self.next_request_id(),
            self.session_id,
            body,
        ))
        .await
    }

    /// The next unrouted event, waiting up to `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the socket to close; returns the close frame's code and reason.
    pub async fn wait_closed(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<Option<(u16, String)>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => bail!("socket still open after {timeout:?}"),
                Ok(None) => return Ok(None),
                Ok(Some(Event::Closed(c))) => return Ok(c),
                Ok(Some(_)) => continue,
            }
        }
    }
}
