//! One edge socket's AlwaysOn relay task.
//!
//! One task per edge socket. Phases: waiting for AUTH (deadline `auth-request-timeout`),
//! waiting for the platform's AUTH answer, then relaying. Every frame from the edge gets the
//! edge's endpointId written in; frames to the edge get endpointId 0, as from a platform.
//! Session ids are translated when a link reconnect or fail-over gave the edge a new upstream
//! session. When the socket ends, the edge's things are unbound upstream.
//!
//! Kept in one file (past the usual ~500 lines) because it is one state machine: the phases,
//! the bookkeeping of BIND answers and the close path read best together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use alwayson::{Body, Code, Gateway, Header, Limits, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use net::accept::ServerStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::hub::{EdgeEntry, ToEdge, error_reply, set_endpoint, set_session, to_mut};
use crate::server::Shared;

/// Pending bookkeeping entries per edge (BIND answers, request latencies).
const MAX_PENDING: usize = 1024;
/// How long a close handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type EdgeWs = WebSocketStream<ServerStream>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    AwaitAuth,
    Authenticating { request_id: u32 },
    Ready,
}

struct PendingBind {
    request_id: u32,
    bind: bool,
    gateway: Option<Gateway>,
    names: Vec<String>,
}

pub(crate) struct EdgeTask {
    shared: Arc<Shared>,
    ws: EdgeWs,
    shutdown: CancellationToken,
    /// The edge's address, passed to the platform in the AUTH (`PEER_CLAIM`).
    peer: IpAddr,
    phase: Phase,
    entry: Option<Arc<EdgeEntry>>,
    binds: Vec<PendingBind>,
    /// Edge → platform requests in flight (request id → sent at).
    out: HashMap<u32, Instant>,
    /// Platform → edge requests in flight.
    inc: HashMap<u32, Instant>,
}

enum Event {
    Shutdown,
    Platform(ToEdge),
    Edge(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Timer,
}

/// Ends the task: close code and reason for the edge, and a word for the log.
struct End(Option<(u16, &'static str)>, &'static str);

impl EdgeTask {
    pub(crate) fn new(
        shared: Arc<Shared>,
        ws: EdgeWs,
        shutdown: CancellationToken,
        peer: IpAddr,
    ) -> Self {
        EdgeTask {
            shared,
            peer,
            ws,
            shutdown,
            phase: Phase::AwaitAuth,
            entry: None,
            binds: Vec::new(),
            out: HashMap::new(),
            inc: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self) -> &'static str {
        let end = self.relay().await;
        if let Some((code, reason)) = end.0 {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            // Boxed so the close handshake's state is not part of every idle edge's task.
            let _ = Box::pin(tokio::time::timeout(
                CLOSE_TIMEOUT,
                self.ws.close(Some(frame)),
            ))
            .await;
        }
        self.finish();
        end.1
    }

    async fn relay(&mut self) -> End {
        let edge_cfg = &self.shared.config.edge;
        let auth_deadline = Instant::now() + edge_cfg.auth_request_timeout;
        let idle_timeout = edge_cfg.idle_timeout;
        let upstream_auth_timeout = self.shared.config.platform.auth_timeout;
        let mut idle = Instant::now() + idle_timeout;
        let mut answer_deadline = None;
        loop {
            let deadline = match self.phase {
                Phase::AwaitAuth => auth_deadline.min(idle),
                Phase::Authenticating { .. } => answer_deadline.unwrap_or(idle).min(idle),
                Phase::Ready => idle,
            };
            let event = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Event::Shutdown,
                m = recv(&self.entry) => Event::Platform(m),
                m = self.ws.next() => Event::Edge(m),
                () = tokio::time::sleep_until(deadline) => Event::Timer,
            };
            match event {
                Event::Shutdown => return End(Some((1001, "server shutting down")), "shutdown"),
                Event::Timer => {
                    let now = Instant::now();
                    if now >= idle {
                        self.shared.hub.metrics.idle_timeouts.inc();
                        return End(Some((1000, "idle timeout")), "idle timeout");
                    }
                    match self.phase {
                        Phase::AwaitAuth if now >= auth_deadline => {
                            self.shared.hub.metrics.auth_timeouts.inc();
                            self.shared.hub.metrics.auth_failures.inc();
                            return End(
                                Some((1008, "authentication request timeout")),
                                "no AUTH in time",
                            );
                        }
                        Phase::Authenticating { .. }
                            if answer_deadline.is_some_and(|d| now >= d) =>
                        {
                            return End(
                                Some((1011, "platform did not answer AUTH")),
                                "AUTH answer timeout",
                            );
                        }
                        _ => {}
                    }
                }
                Event::Platform(ToEdge::Close(code, reason)) => {
                    return End(Some((code, reason)), reason);
                }
                Event::Platform(ToEdge::Frame(frame)) => {
                    if let Err(end) = self.on_platform_frame(frame).await {
                        return end;
                    }
                }
                Event::Edge(None) => return End(None, "edge closed the socket"),
                Event::Edge(Some(Err(e))) => {
                    debug!(%e, "edge socket error");
                    return End(None, "edge socket error");
                }
                Event::Edge(Some(Ok(msg))) => {
                    idle = Instant::now() + idle_timeout;
                    match msg {
                        WsMessage::Binary(data) => {
                            let was_waiting = self.phase == Phase::AwaitAuth;
                            if let Err(end) = self.on_edge_frame(data).await {
                                return end;
                            }
                            if was_waiting && self.phase != Phase::AwaitAuth {
                                answer_deadline = Some(Instant::now() + upstream_auth_timeout);
                            }
                        }
                        WsMessage::Text(_) => {
                            return End(
                                Some((1003, "AlwaysOn uses binary messages")),
                                "text message",
                            );
                        }
                        // tungstenite queues the pong itself; it goes out with the next write or read.
                        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {
                            if let Err(e) = self.ws.flush().await {
                                debug!(%e, "flush failed");
                                return End(None, "edge socket error");
                            }
                        }
                        WsMessage::Close(_) => return End(None, "edge sent close"),
                    }
                }
            }
        }
    }

    /// Handles one AlwaysOn frame from the edge.
    async fn on_edge_frame(&mut self, data: Bytes) -> Result<(), End> {
        let Ok(header) = Header::peek(&data) else {
            return Err(End(
                Some((1007, "invalid AlwaysOn message")),
                "invalid AlwaysOn header",
            ));
        };
        let hub = self.shared.hub.clone();
        match self.phase {
            Phase::AwaitAuth => {
                if header.code != Code::AUTH || data.get(14) != Some(&0) {
                    hub.metrics.auth_failures.inc();
                    return Err(End(
                        Some((1008, "AUTH expected first")),
                        "first message not AUTH",
                    ));
                }
                let Some(link) = hub.pick_link() else {
                    self.send_edge(error_reply(
                        &header,
                        Code::SERVICE_UNAVAILABLE,
                        "platform unavailable",
                    ))
                    .await?;
                    return Err(End(
                        Some((1011, "platform unavailable")),
                        "no upstream link",
                    ));
                };
                let entry = hub.register(link);
                let mut frame = to_mut(with_peer_claim(data, self.peer));
                set_endpoint(&mut frame, entry.id);
                let frame = frame.freeze();
                entry.state().auth = Some(frame.clone());
                self.phase = Phase::Authenticating {
                    request_id: header.request_id,
                };
                self.entry = Some(entry);
                hub.metrics.to_platform.count(frame.len());
                if hub.send_up(link, frame).await.is_err() {
                    self.send_edge(error_reply(
                        &header,
                        Code::SERVICE_UNAVAILABLE,
                        "platform unavailable",
                    ))
                    .await?;
                    return Err(End(
                        Some((1011, "platform unavailable")),
                        "link down during AUTH",
                    ));
                }
                Ok(())
            }
            Phase::Authenticating { .. } | Phase::Ready => {
                let Some(entry) = self.entry.clone() else {
                    return Err(End(Some((1011, "internal error")), "no entry"));
                };
                let multipart = data.get(14) == Some(&1);
                if header.code.is_bind() && !multipart {
                    self.note_bind(&data, &header);
                } else if header.code.is_request() {
                    bounded_insert(&mut self.out, header.request_id, Instant::now());
                } else if header.code.is_response() {
                    if let Some(t) = self.inc.remove(&header.request_id) {
                        hub.metrics
                            .latency_platform_to_edge
                            .observe(t.elapsed().as_secs_f64());
                        shrink_if_empty(&mut self.inc);
                    }
                }
                let mut frame = to_mut(data);
                set_endpoint(&mut frame, entry.id);
                {
                    let st = entry.state();
                    if header.session_id == st.edge_session
                        && st.edge_session != st.upstream_session
                    {
                        set_session(&mut frame, st.upstream_session);
                    }
                }
                let frame = frame.freeze();
                hub.metrics.to_platform.count(frame.len());
                if hub.send_up(entry.link(), frame).await.is_err() && !header.code.is_response() {
                    self.send_edge(error_reply(
                        &header,
                        Code::SERVICE_UNAVAILABLE,
                        "platform unavailable",
                    ))
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Remembers a BIND/UNBIND so its answer updates the bound names.
    fn note_bind(&mut self, data: &[u8], header: &Header) {
        let limits = Limits::default();
        let Ok(Message {
            body: Body::Bind(body),
            ..
        }) = Message::decode(data, &limits)
        else {
            return; // the platform will answer the malformed message
        };
        if self.binds.len() >= MAX_PENDING {
            self.binds.remove(0);
        }
        self.binds.push(PendingBind {
            request_id: header.request_id,
            bind: header.code == Code::BIND,
            gateway: body.gateway,
            names: body.names,
        });
    }

    /// Handles one frame from the platform for this edge.
    async fn on_platform_frame(&mut self, frame: Bytes) -> Result<(), End> {
        let frame = match self
            .shared
            .tunnel_origin
            .get()
            .and_then(|origin| crate::tunnel_url::rewrite_start_tunnel(&frame, origin))
        {
            Some(rewritten) => {
                debug!("StartTunnel: server_url pointed at this connection server");
                rewritten
            }
            None => frame,
        };
        let Ok(header) = Header::peek(&frame) else {
            return Ok(());
        };
        let Some(entry) = self.entry.clone() else {
            return Ok(());
        };
        let hub = self.shared.hub.clone();
        let mut buf = to_mut(frame);
        set_endpoint(&mut buf, 0);
        let mut auth_failed = false;
        {
            let mut st = entry.state();
            let auth_answer = matches!(self.phase, Phase::Authenticating { request_id }
                if header.code.is_response() && header.request_id == request_id);
            if auth_answer {
                if header.code == Code::SUCCESS {
                    st.authenticated = true;
                    st.accepted = true;
                    st.edge_session = header.session_id;
                    st.upstream_session = header.session_id;
                    hub.metrics.authenticated.inc();
                    self.phase = Phase::Ready;
                    info!(endpoint = entry.id, "edge authenticated");
                } else {
                    auth_failed = true;
                }
            } else if header.session_id == st.upstream_session
                && st.edge_session != st.upstream_session
            {
                set_session(&mut buf, st.edge_session);
            }
            let bind_answer = if header.code.is_response() {
                self.binds
                    .iter()
                    .position(|b| b.request_id == header.request_id)
            } else {
                None
            };
            if let Some(i) = bind_answer {
                let b = self.binds.remove(i);
                if header.code == Code::SUCCESS {
                    apply_bind(&mut st, b, &hub.metrics.binds);
                }
                if self.binds.is_empty() {
                    self.binds = Vec::new();
                }
            }
        }
        if header.code.is_response() {
            if let Some(t) = self.out.remove(&header.request_id) {
                hub.metrics
                    .latency_edge_to_platform
                    .observe(t.elapsed().as_secs_f64());
                shrink_if_empty(&mut self.out);
            }
        } else if header.code.is_request() {
            bounded_insert(&mut self.inc, header.request_id, Instant::now());
        }
        let buf = buf.freeze();
        hub.metrics.to_edge.count(buf.len());
        self.send_edge(buf).await?;
        if auth_failed {
            hub.metrics.auth_failures.inc();
            return Err(End(
                Some((1008, "authentication failed")),
                "AUTH refused by platform",
            ));
        }
        Ok(())
    }

    async fn send_edge(&mut self, frame: Bytes) -> Result<(), End> {
        match self.ws.send(WsMessage::Binary(frame)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                debug!(%e, "write to edge failed");
                Err(End(None, "edge write failed"))
            }
        }
    }

    /// Leaves the hub: UNBIND everything bound through this socket, then the empty UNBIND that
    /// tells the platform the endpoint is gone (docs/cxserver.md, "Upstream link protocol").
    fn finish(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let hub = &self.shared.hub;
        hub.unregister(entry.id);
        let (authenticated, session, gateway, names) = {
            let mut st = entry.state();
            st.auth = None;
            (
                st.authenticated,
                st.upstream_session,
                st.gateway.take(),
                std::mem::take(&mut st.names),
            )
        };
        hub.metrics.binds.dec_by(names.len() as i64);
        let link = entry.link();
        let slot = &hub.links[link];
        if authenticated {
            hub.metrics.authenticated.dec();
            if !names.is_empty() {
                let msg = Message::unbind(slot.request_id(), session, gateway, names);
                send_internal(hub, link, entry.id, &msg);
            }
        }
        // Also when the AUTH answer is still due: the platform may be about to open a session.
        let gone = Message::unbind(slot.request_id(), session, None, Vec::new());
        send_internal(hub, link, entry.id, &gone);
    }
}

/// The AUTH claim carrying the edge's IP address to the platform (honoured on links only).
pub const PEER_CLAIM: &str = "tether-peer";

/// The edge's AUTH with any `tether-peer` claim it sent removed and the real one appended, so
/// the platform can apply an app key's client-address allow-list to the edge. An AUTH that
/// does not decode is forwarded unchanged (the platform refuses it).
fn with_peer_claim(data: Bytes, peer: IpAddr) -> Bytes {
    let limits = Limits::default();
    let Ok(mut msg) = Message::decode(&data, &limits) else {
        return data;
    };
    let Body::Auth(auth) = &mut msg.body else {
        return data;
    };
    auth.claims
        .retain(|(name, _)| !name.eq_ignore_ascii_case(PEER_CLAIM));
    auth.claims.push((PEER_CLAIM.to_owned(), peer.to_string()));
    msg.to_bytes().unwrap_or(data)
}

/// Encodes `msg` with `endpoint` and queues it on `link` without waiting.
pub(crate) fn send_internal(
    hub: &crate::hub::Hub,
    link: usize,
    endpoint: u32,
    msg: &Message,
) -> bool {
    let Ok(frame) = msg.to_bytes() else {
        return false;
    };
    let mut frame = to_mut(frame);
    set_endpoint(&mut frame, endpoint);
    let frame = frame.freeze();
    hub.metrics.to_platform.count(frame.len());
    hub.try_send_up(link, frame)
}

fn apply_bind(
    st: &mut crate::hub::EdgeState,
    b: PendingBind,
    gauge: &prometheus_client::metrics::gauge::Gauge,
) {
    if b.bind {
        if b.gateway.is_some() {
            st.gateway = b.gateway;
        }
        for n in b.names {
            if !st.names.contains(&n) {
                st.names.push(n);
                gauge.inc();
            }
        }
    } else {
        let before = st.names.len();
        st.names.retain(|n| !b.names.contains(n));
        gauge.dec_by((before - st.names.len()) as i64);
        if st.names.is_empty() {
            st.names = Vec::new();
        }
    }
}

fn bounded_insert(map: &mut HashMap<u32, Instant>, key: u32, at: Instant) {
    if map.len() >= MAX_PENDING {
        // Unanswered requests: forget them all rather than grow (latency samples only).
        map.clear();
    }
    map.insert(key, at);
}

fn shrink_if_empty(map: &mut HashMap<u32, Instant>) {
    if map.is_empty() && map.capacity() > 0 {
        *map = HashMap::new();
    }
}

/// Receives from the edge's queue; pending forever before it has one. Cancel-safe.
async fn recv(entry: &Option<Arc<EdgeEntry>>) -> ToEdge {
    match entry {
        Some(e) => e.queue.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_claim_replaces_a_spoofed_one() {
        let auth = Message::auth(
            3,
            vec![
                ("appKey".into(), "k".into()),
                ("Tether-Peer".into(), "6.6.6.6".into()),
            ],
        );
        let out = with_peer_claim(auth.to_bytes().unwrap(), "10.0.0.7".parse().unwrap());
        let Message {
            header,
            body: Body::Auth(a),
        } = Message::decode(&out, &Limits::default()).unwrap()
        else {
            panic!("not an AUTH");
        };
        assert_eq!(header.request_id, 3);
        assert_eq!(a.app_key(), Some("k"));
        let peers: Vec<_> = a
            .claims
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(PEER_CLAIM))
            .collect();
        assert_eq!(peers, vec![&(PEER_CLAIM.to_owned(), "10.0.0.7".to_owned())]);
        let garbage = Bytes::from_static(b"\x01\x14short");
        assert_eq!(
            with_peer_claim(garbage.clone(), "10.0.0.7".parse().unwrap()),
            garbage
        );
    }
}
