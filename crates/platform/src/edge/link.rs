//! Connection-server links (docs/cxserver.md, "Upstream link protocol").
//!
//! A websocket on `/Thingworx/WS` whose AUTH (endpointId 0) is made with the
//! key of a `connection-server` user is a *link*: every non-zero endpointId on
//! it is a **virtual edge connection** with its own AUTH, session, bindings
//! and pending requests. The link task only peeks at each frame's 15-byte
//! header and hands the frame to the virtual edge's own task (a bounded
//! queue), so one slow edge (a store write, a password check) never holds up
//! the others. Each virtual edge is an ordinary [`EdgeConn`] whose frames go
//! out through the link's writer with its endpointId, so REST requests, remote
//! access and the binding registry need nothing special.
//!
//! An UNBIND with no names and no gateway means "endpoint gone"; the link
//! closing means all its virtual edges are gone (bindings released, pending
//! requests failed at once).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use alwayson::{Body, Code, Header, Message, Reassembler};
use axum::extract::ws::{Message as WsMessage, WebSocket};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::SplitStream;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, debug, info, info_span, warn};

use super::conn::{EdgeConn, Outbound};
use super::dispatch;
use super::socket::{
    CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_UNSUPPORTED, EXPIRE_EVERY, End,
    check_claims, expire_multipart, handle_frame, new_session_id, read_error, send,
};
use crate::model::Role;
use crate::state::{Platform, Principal};

/// The AUTH claim in which the connection server reports the edge's address.
pub const PEER_CLAIM: &str = "tether-peer";
/// A link's idle timeout is never shorter than this (the connection server
/// pings every 15 s and gives up after 45 s).
const LINK_IDLE_MIN: Duration = Duration::from_secs(60);
/// Frames queued for one virtual edge; beyond, its requests are answered 0xA3.
const VEDGE_QUEUE: usize = 256;
/// Virtual edges on one link, at most.
const MAX_VIRTUAL_PER_LINK: usize = 1_000_000;
/// How long a closing link waits for its virtual edges to release their things.
const DRAIN: Duration = Duration::from_secs(10);

/// What the virtual edges of a link share.
struct Link {
    out: mpsc::Sender<Outbound>,
    /// Request ids of platform → edge requests, unique per link.
    ids: Arc<AtomicU32>,
}

/// The authenticated message loop of a link. Returns how the socket ends;
/// every virtual edge of the link has been released by then.
pub(crate) async fn serve(
    platform: &Platform,
    stream: &mut SplitStream<WebSocket>,
    out: &mpsc::Sender<Outbound>,
    principal: &Principal,
) -> End {
    let link = Arc::new(Link {
        out: out.clone(),
        ids: Arc::new(AtomicU32::new(1)),
    });
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut edges: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let idle = platform
        .shared
        .config
        .alwayson
        .idle_timeout
        .max(LINK_IDLE_MIN);
    let mut last_rx = Instant::now();
    let _up = LinkUp::new(platform);
    info!(principal = %principal.label(), "connection-server link up");
    let end = loop {
        let frame = tokio::select! {
            () = platform.shared.shutdown.cancelled() => break End::close(CLOSE_GOING_AWAY, "platform shutting down"),
            () = tokio::time::sleep_until(last_rx + idle) => {
                break End::close(CLOSE_NORMAL, format!("link idle for {} ms", idle.as_millis()));
            }
            next = stream.next() => match next {
                None => break End::gone("connection server closed the link"),
                Some(Err(e)) => break read_error(&e),
                Some(Ok(frame)) => frame,
            },
        };
        last_rx = Instant::now();
        let bytes = match frame {
            WsMessage::Binary(b) => b,
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            WsMessage::Close(frame) => {
                break End::gone(
                    frame
                        .map(|f| format!("connection server closed: {} {}", f.code, f.reason))
                        .unwrap_or_else(|| "connection server closed".into()),
                );
            }
            WsMessage::Text(_) => {
                platform.shared.metrics.protocol_errors.inc();
                break End::close(CLOSE_UNSUPPORTED, "AlwaysOn messages are binary");
            }
        };
        if let Some(end) = route(platform, &link, &cancel, &tasks, &mut edges, bytes).await {
            break end;
        }
    };
    let count = edges.len();
    edges.clear();
    cancel.cancel();
    tasks.close();
    if tokio::time::timeout(DRAIN, tasks.wait()).await.is_err() {
        warn!("virtual edges still releasing after {DRAIN:?}");
    }
    info!(
        edges = count,
        "connection-server link down: its virtual edges are gone"
    );
    end
}

/// Counts a link in `tether_platform_links` while it is served (also when the serving future
/// is dropped).
struct LinkUp(Gauge);

impl LinkUp {
    fn new(platform: &Platform) -> LinkUp {
        let m = &platform.shared.metrics;
        m.links_opened.inc();
        m.links.inc();
        LinkUp(m.links.clone())
    }
}

impl Drop for LinkUp {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Whether a frame is the "endpoint gone" UNBIND (no names, no gateway).
fn is_endpoint_gone(platform: &Platform, h: &Header, bytes: &[u8]) -> bool {
    if h.code != Code::UNBIND || bytes.get(alwayson::HEADER_LEN - 1) == Some(&1) {
        return false;
    }
    matches!(
        Message::decode(bytes, &platform.shared.limits),
        Ok(Message { body: Body::Bind(b), .. }) if b.names.is_empty() && b.gateway.is_none()
    )
}

/// Hands one frame to its virtual edge (creating it on AUTH).
async fn route(
    platform: &Platform,
    link: &Arc<Link>,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
    edges: &mut HashMap<u32, mpsc::Sender<Bytes>>,
    bytes: Bytes,
) -> Option<End> {
    let h = match Header::peek(&bytes) {
        Ok(h) => h,
        Err(e) => {
            platform.shared.metrics.protocol_errors.inc();
            return Some(End::close(
                CLOSE_PROTOCOL,
                format!("malformed AlwaysOn message on a link: {e}"),
            ));
        }
    };
    let endpoint = h.endpoint_id;
    if endpoint == 0 {
        link_message(platform, link, &h, &bytes).await;
        return None;
    }
    let gone = is_endpoint_gone(platform, &h, &bytes);
    let mut bytes = Some(bytes);
    if let Some(tx) = edges.get(&endpoint) {
        match tx.try_send(bytes.take()?) {
            Ok(()) => {
                if gone {
                    // Its task answers and releases; a later AUTH on the
                    // same endpointId is a new edge.
                    edges.remove(&endpoint);
                }
                return None;
            }
            Err(TrySendError::Full(_)) => {
                warn!(endpoint, code = %h.code, "virtual edge queue full");
                if h.code.is_request() || h.code == Code::BIND || h.code == Code::UNBIND {
                    send(
                        &link.out,
                        &Message::error(&h, Code::SERVICE_UNAVAILABLE, "edge busy"),
                    )
                    .await;
                }
                return None;
            }
            Err(TrySendError::Closed(b)) => {
                edges.remove(&endpoint);
                bytes = Some(b);
            }
        }
    }
    let bytes = bytes?;
    if h.code == Code::AUTH {
        if edges.len() >= MAX_VIRTUAL_PER_LINK {
            send(
                &link.out,
                &Message::error(&h, Code::SERVICE_UNAVAILABLE, "too many edges on this link"),
            )
            .await;
            return None;
        }
        let (tx, rx) = mpsc::channel(VEDGE_QUEUE);
        // A fresh queue has room.
        let _ = tx.try_send(bytes);
        edges.insert(endpoint, tx);
        let span = info_span!("vedge", endpoint);
        tasks.spawn(
            run_virtual(
                platform.clone(),
                link.clone(),
                endpoint,
                rx,
                cancel.child_token(),
            )
            .instrument(span),
        );
        return None;
    }
    if gone {
        // Gone before (or without) a session: nothing to release.
        send(&link.out, &Message::response(&h, Code::SUCCESS, None)).await;
    } else if h.code.is_response() {
        debug!(
            endpoint,
            request = h.request_id,
            "answer from an endpoint that is gone"
        );
    } else {
        send(
            &link.out,
            &Message::error(
                &h,
                Code::UNAUTHORIZED,
                format!("endpoint {endpoint} is not authenticated"),
            ),
        )
        .await;
    }
    None
}

/// A message for endpointId 0: the link itself.
async fn link_message(platform: &Platform, link: &Link, h: &Header, bytes: &[u8]) {
    if h.code.is_response() {
        debug!(request = h.request_id, "answer on endpoint 0 ignored");
        return;
    }
    let reply = match Message::decode(bytes, &platform.shared.limits) {
        Ok(Message {
            body: Body::KeepAlive,
            ..
        }) => Message::response(h, Code::SUCCESS, None),
        Ok(Message {
            body: Body::Auth(_),
            ..
        }) => Message::error(h, Code::BAD_REQUEST, "the link is already authenticated"),
        Ok(_) => Message::error(
            h,
            Code::BAD_REQUEST,
            "endpointId 0 is the link itself; edges use their own endpointId",
        ),
        Err(e) => {
            platform.shared.metrics.protocol_errors.inc();
            Message::error(h, e.response_code(), format!("malformed message: {e}"))
        }
    };
    send(&link.out, &reply).await;
}

/// One virtual edge: AUTH (again on a replay), then its messages in order,
/// until "endpoint gone", the link closing or the platform ending it.
async fn run_virtual(
    platform: Platform,
    link: Arc<Link>,
    endpoint: u32,
    mut rx: mpsc::Receiver<Bytes>,
    stop: CancellationToken,
) {
    let mut reassembler =
        Reassembler::new(platform.shared.limits.clone(), Reassembler::DEFAULT_TIMEOUT);
    let mut current: Option<(Arc<EdgeConn>, Principal)> = None;
    let mut expire = tokio::time::interval_at(Instant::now() + EXPIRE_EVERY, EXPIRE_EVERY);
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let why = loop {
        let bytes = tokio::select! {
            () = stop.cancelled() => break "link closed or edge ended by the platform",
            _ = expire.tick() => {
                match &current {
                    Some((conn, _)) => expire_multipart(conn, &mut reassembler).await,
                    None => {
                        reassembler.expire(std::time::Instant::now());
                    }
                }
                continue;
            }
            next = rx.recv() => match next {
                None => break "link closed",
                Some(b) => b,
            },
        };
        // The link task checked the header already.
        let Ok(h) = Header::peek(&bytes) else {
            continue;
        };
        if h.code == Code::AUTH {
            let msg = match reassembler.push(&bytes, std::time::Instant::now()) {
                Ok(Some(msg)) => msg,
                Ok(None) => continue,
                Err(e) => {
                    platform.shared.metrics.protocol_errors.inc();
                    send(
                        &link.out,
                        &Message::error(&h, e.response_code(), format!("malformed AUTH: {e}")),
                    )
                    .await;
                    continue;
                }
            };
            if let Some((conn, principal)) = current.take() {
                info!("AUTH again on this endpoint: the previous session is replaced");
                release(&platform, &conn, &principal, "replaced by a new AUTH").await;
            }
            current = authenticate(&platform, &link, endpoint, &stop, msg).await;
            continue;
        }
        if is_endpoint_gone(&platform, &h, &bytes) {
            if let Some((conn, principal)) = current.take() {
                release(&platform, &conn, &principal, "endpoint gone").await;
            }
            send(&link.out, &Message::response(&h, Code::SUCCESS, None)).await;
            debug!("endpoint gone");
            return;
        }
        match &current {
            Some((conn, principal)) => {
                if let Some(end) =
                    handle_frame(&platform, conn, principal, &mut reassembler, &bytes).await
                {
                    info!(why = %end.why, "virtual edge ended");
                    if let Some((conn, principal)) = current.take() {
                        release(&platform, &conn, &principal, &end.why).await;
                    }
                }
            }
            None if h.code.is_response() => {
                debug!(
                    request = h.request_id,
                    "answer from an unauthenticated endpoint"
                );
            }
            None => {
                send(
                    &link.out,
                    &Message::error(
                        &h,
                        Code::UNAUTHORIZED,
                        format!("endpoint {endpoint} is not authenticated"),
                    ),
                )
                .await;
            }
        }
    };
    if let Some((conn, principal)) = current.take() {
        release(&platform, &conn, &principal, why).await;
    }
}

/// A virtual edge's AUTH: the edge's own claims, checked as for a direct
/// edge, with the key's address allow-list applied to the `tether-peer` address.
async fn authenticate(
    platform: &Platform,
    link: &Link,
    endpoint: u32,
    stop: &CancellationToken,
    msg: Message,
) -> Option<(Arc<EdgeConn>, Principal)> {
    let h = msg.header;
    let m = &platform.shared.metrics;
    let Body::Auth(auth) = &msg.body else {
        return None;
    };
    let refuse = |reason: String| Message::error(&h, Code::UNAUTHORIZED, reason);
    let Some(ip) = auth
        .claim(PEER_CLAIM)
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
    else {
        m.auth_failures.inc();
        warn!("virtual edge AUTH without a valid {PEER_CLAIM} claim");
        send(
            &link.out,
            &refuse(format!(
                "the connection server sent no valid `{PEER_CLAIM}` claim"
            )),
        )
        .await;
        return None;
    };
    match check_claims(platform, auth, ip).await {
        Ok(principal) if principal.role == Role::ConnectionServer => {
            m.auth_failures.inc();
            warn!(principal = %principal.label(), %ip, "connection-server key used by an edge");
            send(
                &link.out,
                &refuse("a connection-server key cannot authenticate an edge".into()),
            )
            .await;
            None
        }
        Ok(principal) => {
            m.auth_successes.inc();
            let cfg = &platform.shared.config.alwayson;
            let session_id = new_session_id();
            let conn = Arc::new(EdgeConn::new_virtual(
                platform.next_conn_id(),
                SocketAddr::new(ip, 0),
                session_id,
                endpoint,
                principal.label(),
                link.out.clone(),
                link.ids.clone(),
                stop.clone(),
                cfg.chunk_size,
                cfg.max_pending_requests,
            ));
            platform.shared.registry.add_connection(conn.clone());
            m.edge_connections.inc();
            m.virtual_edges.inc();
            let mut reply = Message::response(&h, Code::SUCCESS, None);
            reply.header.session_id = session_id;
            send(&link.out, &reply).await;
            info!(principal = %principal.label(), %ip, session = format_args!("{session_id:08x}"), "virtual edge authenticated");
            Some((conn, principal))
        }
        Err(e) => {
            warn!(reason = %e, %ip, "virtual edge AUTH refused");
            send(&link.out, &refuse(e.to_string())).await;
            None
        }
    }
}

/// Forgets a virtual edge: bindings released (things disconnected), waiting
/// requests failed at once.
async fn release(platform: &Platform, conn: &Arc<EdgeConn>, principal: &Principal, why: &str) {
    let unbound = platform.shared.registry.remove_connection(conn.id);
    conn.fail_all();
    platform.shared.metrics.edge_connections.dec();
    platform.shared.metrics.virtual_edges.dec();
    dispatch::on_unbound(platform, principal, &unbound, &conn.peer.to_string(), why).await;
}
