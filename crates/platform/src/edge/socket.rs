//! One task per edge websocket: upgrade (with or without an `appKey`
//! header), AUTH within the deadline, then the message loop with idle
//! timeout, multipart reassembly and graceful close. A separate writer
//! task drains a bounded queue into the socket, so a slow edge never blocks
//! a REST handler for longer than its request deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alwayson::{Body, Code, Header, Message, Reassembler};
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info, info_span, warn};

use super::conn::{EdgeConn, Outbound};
use super::dispatch;
use crate::http::AppError;
use crate::model::Role;
use crate::state::{AuthError, Platform, Principal};

/// Close codes (RFC 6455).
pub(crate) const CLOSE_NORMAL: u16 = 1000;
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
pub(crate) const CLOSE_UNSUPPORTED: u16 = 1003;
pub(crate) const CLOSE_POLICY: u16 = 1008;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// Outbound queue depth per socket.
const OUT_QUEUE: usize = 1024;
/// Deadline for one websocket write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often incomplete multipart sets are expired.
pub(crate) const EXPIRE_EVERY: Duration = Duration::from_secs(5);
/// Headroom over the AlwaysOn chunk for the websocket message limit.
const WS_SLACK: usize = 1024;

/// `GET /Thingworx/WS`: the AlwaysOn upgrade.
pub(crate) async fn ws_handler(
    State(platform): State<Platform>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let permit = match platform.shared.edge_slots.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            warn!(%peer, "edge connection refused: connection cap reached");
            return AppError::Unavailable("too many edge connections".into()).into_response();
        }
    };
    let header_key = headers
        .get("appKey")
        .and_then(|v| v.to_str().ok())
        .map(|s| crate::secret::Secret::new(s.to_owned()));
    let cfg = &platform.shared.config.alwayson;
    // One websocket message carries one AlwaysOn message or chunk.
    let max_ws =
        cfg.max_message_size + alwayson::HEADER_LEN + alwayson::MULTIPART_HEADER_LEN + WS_SLACK;
    let ws_cfg = net::ws::WsConfig {
        max_message_size: max_ws,
        max_frame_size: max_ws,
        ..net::ws::WsConfig::small()
    };
    let id = platform.next_conn_id();
    platform.shared.metrics.edge_connections_accepted.inc();
    let span = info_span!("edge", conn = id, %peer);
    let tracker = platform.shared.tracker.clone();
    ws_cfg.apply_axum(upgrade).on_upgrade(move |socket| {
        tracker.track_future(
            async move {
                run(platform, socket, id, peer, header_key).await;
                drop(permit);
            }
            .instrument(span),
        )
    })
}

/// How a socket ends: an optional close frame to send and a log reason.
pub(crate) struct End {
    close: Option<(u16, String)>,
    pub(crate) why: String,
}

impl End {
    pub(crate) fn close(code: u16, reason: impl Into<String>) -> End {
        let reason = reason.into();
        End {
            why: reason.clone(),
            close: Some((code, reason)),
        }
    }
    pub(crate) fn gone(why: impl Into<String>) -> End {
        End {
            close: None,
            why: why.into(),
        }
    }
}

async fn run(
    platform: Platform,
    socket: WebSocket,
    id: u64,
    peer: SocketAddr,
    header_key: Option<crate::secret::Secret>,
) {
    debug!(
        has_app_key_header = header_key.is_some(),
        "edge socket upgraded"
    );
    let (sink, mut stream) = socket.split();
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(writer(sink, out_rx).in_current_span());

    let end = match authenticate(&platform, &mut stream, &out_tx, peer).await {
        Err(end) => end,
        Ok((principal, _)) if principal.role == Role::ConnectionServer => {
            info!(principal = %principal.label(), "connection-server link authenticated");
            super::link::serve(&platform, &mut stream, &out_tx, &principal).await
        }
        Ok((principal, session_id)) => {
            let cfg = &platform.shared.config.alwayson;
            let conn = Arc::new(EdgeConn::new(
                id,
                peer,
                session_id,
                principal.label(),
                out_tx.clone(),
                cfg.chunk_size,
                cfg.max_pending_requests,
            ));
            platform.shared.registry.add_connection(conn.clone());
            platform.shared.metrics.edge_connections.inc();
            info!(principal = %principal.label(), session = format_args!("{session_id:08x}"), "edge authenticated");
            let end = serve(&platform, &conn, &principal, &mut stream).await;
            // Forget the bindings first so no new request can reach this
            // socket, then fail the requests still waiting.
            let unbound = platform.shared.registry.remove_connection(id);
            conn.fail_all();
            platform.shared.metrics.edge_connections.dec();
            dispatch::on_unbound(
                &platform,
                &principal,
                &unbound,
                &peer.to_string(),
                "connection closed",
            )
            .await;
            end
        }
    };
    match &end.close {
        Some((code, reason)) => info!(code, reason = %reason, "closing edge socket"),
        None => info!(why = %end.why, "edge socket ended"),
    }
    if let Some((code, reason)) = end.close {
        let _ =
            tokio::time::timeout(WRITE_TIMEOUT, out_tx.send(Outbound::Close(code, reason))).await;
    }
    drop(out_tx);
    let abort = writer.abort_handle();
    if tokio::time::timeout(WRITE_TIMEOUT, writer).await.is_err() {
        abort.abort();
    }
}

async fn writer(mut sink: SplitSink<WebSocket, WsMessage>, mut rx: mpsc::Receiver<Outbound>) {
    while let Some(item) = rx.recv().await {
        let (msg, last) = match item {
            Outbound::Frame(b) => (WsMessage::Binary(b), false),
            Outbound::Close(code, reason) => {
                let reason: String = reason.chars().take(100).collect();
                (
                    WsMessage::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })),
                    true,
                )
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(%e, "edge socket write failed");
                return;
            }
            Err(_) => {
                warn!("edge socket write timed out");
                return;
            }
        }
        if last {
            let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
            return;
        }
    }
}

pub(crate) async fn send(out: &mpsc::Sender<Outbound>, msg: &Message) {
    match msg.to_bytes() {
        Ok(b) => {
            let _ = out.send(Outbound::Frame(b)).await;
        }
        Err(e) => warn!(%e, "cannot encode a reply"),
    }
}

pub(crate) fn read_error(e: &axum::Error) -> End {
    let text = e.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        End::close(CLOSE_TOO_BIG, "message too big")
    } else {
        End::gone(format!("read error: {text}"))
    }
}

/// Waits for AUTH (the first message) within the deadline.
async fn authenticate(
    platform: &Platform,
    stream: &mut SplitStream<WebSocket>,
    out: &mpsc::Sender<Outbound>,
    peer: SocketAddr,
) -> Result<(Principal, u32), End> {
    let timeout = platform.shared.config.alwayson.auth_timeout;
    let deadline = Instant::now() + timeout;
    let m = &platform.shared.metrics;
    loop {
        let next = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.next()) => r,
            () = platform.shared.shutdown.cancelled() => return Err(End::close(CLOSE_GOING_AWAY, "platform shutting down")),
        };
        let frame = match next {
            Err(_) => {
                m.auth_failures.inc();
                return Err(End::close(
                    CLOSE_POLICY,
                    format!("no AUTH within {} ms", timeout.as_millis()),
                ));
            }
            Ok(None) => return Err(End::gone("closed before AUTH")),
            Ok(Some(Err(e))) => return Err(read_error(&e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let bytes = match frame {
            WsMessage::Binary(b) => b,
            // tungstenite answers pings itself, echoing the payload.
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            WsMessage::Close(_) => return Err(End::gone("closed before AUTH")),
            WsMessage::Text(_) => {
                m.protocol_errors.inc();
                return Err(End::close(
                    CLOSE_UNSUPPORTED,
                    "AlwaysOn messages are binary",
                ));
            }
        };
        let msg = match Message::decode(&bytes, &platform.shared.limits) {
            Ok(msg) => msg,
            Err(e) => {
                m.protocol_errors.inc();
                warn!(%e, "malformed message before AUTH");
                if let Ok(h) = Header::peek(&bytes) {
                    send(
                        out,
                        &Message::error(&h, e.response_code(), format!("malformed message: {e}")),
                    )
                    .await;
                }
                return Err(End::close(
                    CLOSE_PROTOCOL,
                    format!("malformed message before AUTH: {e}"),
                ));
            }
        };
        let Body::Auth(auth) = &msg.body else {
            m.protocol_errors.inc();
            m.auth_failures.inc();
            warn!(code = %msg.header.code, "message before AUTH");
            send(
                out,
                &Message::error(
                    &msg.header,
                    Code::UNAUTHORIZED,
                    "AUTH must be the first message",
                ),
            )
            .await;
            return Err(End::close(CLOSE_POLICY, "AUTH must be the first message"));
        };
        // A `tether-peer` claim is only meaningful on a connection-server
        // link; on an edge's own socket it would be forged: the socket's
        // address is used, the claim ignored.
        let ip = Platform::peer_ip(peer);
        let result = check_claims(platform, auth, ip).await;
        return match result {
            Ok(principal) => {
                m.auth_successes.inc();
                let session_id = new_session_id();
                let mut reply = Message::response(&msg.header, Code::SUCCESS, None);
                reply.header.session_id = session_id;
                send(out, &reply).await;
                Ok((principal, session_id))
            }
            Err(e) => {
                warn!(reason = %e, "AUTH refused");
                send(
                    out,
                    &Message::error(&msg.header, Code::UNAUTHORIZED, e.to_string()),
                )
                .await;
                Err(End::close(
                    CLOSE_POLICY,
                    format!("authentication failed: {e}"),
                ))
            }
        };
    }
}

/// Checks AUTH claims: app key, else user name and password.
pub(crate) async fn check_claims(
    platform: &Platform,
    auth: &alwayson::AuthBody,
    ip: std::net::IpAddr,
) -> Result<Principal, AuthError> {
    if let Some(key) = auth.app_key() {
        platform.authenticate_app_key(key, ip).await
    } else if let Some((user, password)) = auth.credentials() {
        platform.authenticate_password(user, password, ip).await
    } else {
        platform.shared.metrics.auth_failures.inc();
        Err(AuthError::NoCredentials)
    }
}

/// A fresh session id (never 0 nor `SESSION_NONE`).
pub(crate) fn new_session_id() -> u32 {
    loop {
        let s: u32 = rand::random();
        if s != 0 && s != alwayson::SESSION_NONE {
            return s;
        }
    }
}

/// The authenticated message loop.
async fn serve(
    platform: &Platform,
    conn: &Arc<EdgeConn>,
    principal: &Principal,
    stream: &mut SplitStream<WebSocket>,
) -> End {
    let cfg = &platform.shared.config.alwayson;
    let m = &platform.shared.metrics;
    let mut reassembler =
        Reassembler::new(platform.shared.limits.clone(), Reassembler::DEFAULT_TIMEOUT);
    let mut last_rx = Instant::now();
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            () = platform.shared.shutdown.cancelled() => return End::close(CLOSE_GOING_AWAY, "platform shutting down"),
            () = tokio::time::sleep_until(last_rx + cfg.idle_timeout) => {
                return End::close(CLOSE_NORMAL, format!("idle for {} ms", cfg.idle_timeout.as_millis()));
            }
            _ = expire.tick() => {
                expire_multipart(conn, &mut reassembler).await;
                continue;
            }
            next = stream.next() => match next {
                None => return End::gone("edge closed the connection"),
                Some(Err(e)) => return read_error(&e),
                Some(Ok(frame)) => frame,
            },
        };
        last_rx = Instant::now();
        let bytes = match frame {
            WsMessage::Binary(b) => b,
            // tungstenite answers pings itself, echoing the payload (the
            // EMS sends its local time, §12.1); any frame resets the idle timer.
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            WsMessage::Close(frame) => {
                let why = frame
                    .map(|f| format!("edge closed: {} {}", f.code, f.reason))
                    .unwrap_or_else(|| "edge closed".into());
                return End::gone(why);
            }
            WsMessage::Text(_) => {
                m.protocol_errors.inc();
                return End::close(CLOSE_UNSUPPORTED, "AlwaysOn messages are binary");
            }
        };
        if let Some(end) = handle_frame(platform, conn, principal, &mut reassembler, &bytes).await {
            return end;
        }
    }
}

/// One binary frame from an authenticated edge (own socket or virtual):
/// reassembly, then dispatch. `Some(end)` ends the edge.
pub(crate) async fn handle_frame(
    platform: &Platform,
    conn: &Arc<EdgeConn>,
    principal: &Principal,
    reassembler: &mut Reassembler,
    bytes: &[u8],
) -> Option<End> {
    match reassembler.push(bytes, std::time::Instant::now()) {
        Ok(None) => None,
        Ok(Some(msg)) => dispatch::handle(platform, conn, principal, msg).await,
        Err(e) => {
            platform.shared.metrics.protocol_errors.inc();
            match Header::peek(bytes) {
                Ok(h) if h.code.is_response() => {
                    warn!(%e, request = h.request_id, "undecodable answer from edge");
                    conn.complete(&h, Err(super::EdgeError::BadAnswer(e.to_string())));
                    None
                }
                Ok(h) => {
                    warn!(%e, code = %h.code, "refused malformed message");
                    let _ = conn
                        .send_message(&Message::error(&h, e.response_code(), e.to_string()))
                        .await;
                    None
                }
                Err(_) => Some(End::close(
                    CLOSE_PROTOCOL,
                    format!("malformed AlwaysOn message: {e}"),
                )),
            }
        }
    }
}

/// Incomplete multipart sets expired: requests among them are answered 0xA4.
pub(crate) async fn expire_multipart(conn: &EdgeConn, reassembler: &mut Reassembler) {
    for h in reassembler.expire(std::time::Instant::now()) {
        debug!(
            request = h.request_id,
            "incomplete multipart message expired"
        );
        if h.code.is_request() {
            let _ = conn
                .send_message(&Message::error(
                    &h,
                    Code::GATEWAY_TIMEOUT,
                    "multipart message incomplete",
                ))
                .await;
        }
    }
}

impl End {
    pub(crate) fn policy(reason: impl Into<String>) -> End {
        End::close(CLOSE_POLICY, reason)
    }
}

pub(crate) type SocketEnd = End;
