//! Upstream links: long-lived websockets to the platform's `/Thingworx/WS`, authenticated with
//! the connection server's own app key, carrying every edge's frames tagged by endpointId.
//!
//! Each link task loops: connect (deadline), AUTH, mark up, replay the AUTH and BIND of the
//! edges it carries, relay until the socket fails, mark down, back off (doubling with jitter),
//! repeat. While a link is down its edges stay connected; their requests get 0xA3.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alwayson::{Code, Header, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use net::ws::{ClientWs, WsConfig};
use rustls::ClientConfig;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::edge::ALWAYSON_PATH;
use crate::hub::{Hub, Internal, ToEdge, error_reply, lock, set_request_id, to_mut};
use crate::server::Shared;
use crate::session::send_internal;

/// Interval of the link keep-alive ping.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// A link with no frame from the platform for this long is considered dead.
const READ_DEADLINE: Duration = Duration::from_secs(45);
/// Frames written before a flush.
const WRITE_BATCH: usize = 128;

/// Why a link attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error(transparent)]
    Connect(#[from] net::NetError),
    #[error("platform refused the connection server's AUTH (code {0:#04x})")]
    Refused(u8),
    #[error("no AUTH answer from the platform within {0:?}")]
    AuthTimeout(Duration),
    #[error("link closed during AUTH")]
    Closed,
    #[error("cannot encode AUTH: {0}")]
    Encode(#[from] alwayson::EncodeError),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
}

/// The link URL: the platform base URL with the AlwaysOn path.
pub(crate) fn link_url(base: &url::Url) -> String {
    let mut u = base.clone();
    u.set_path(ALWAYSON_PATH);
    u.set_query(None);
    u.to_string()
}

/// Runs link `idx` until `shutdown`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    idx: usize,
    mut rx: mpsc::Receiver<Bytes>,
    tls: Arc<ClientConfig>,
    shutdown: CancellationToken,
) {
    let span = info_span!("link", idx);
    async move {
        let settings = &shared.config.platform;
        let mut backoff = settings.reconnect_min;
        loop {
            let attempt = connect(&shared, tls.clone());
            let result = tokio::select! {
                () = shutdown.cancelled() => break,
                r = attempt => r,
            };
            match result {
                Ok((ws, session)) => {
                    info!(session, "link up");
                    backoff = settings.reconnect_min;
                    let why = serve(&shared, idx, ws, &mut rx, &shutdown).await;
                    mark_down(&shared.hub, idx, &mut rx);
                    if shutdown.is_cancelled() {
                        break;
                    }
                    warn!(why, "link down");
                    shared.hub.metrics.link_failures.inc();
                }
                Err(e) => {
                    warn!(%e, ?backoff, "link attempt failed");
                    shared.hub.metrics.link_failures.inc();
                }
            }
            let wait = jitter(backoff);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(settings.reconnect_max);
        }
        debug!("link task ends");
    }
    .instrument(span)
    .await
}

/// 75–100 % of `d`, so links of many servers do not reconnect in lock step.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 4000.0)
}

async fn connect(shared: &Shared, tls: Arc<ClientConfig>) -> Result<(ClientWs, u32), LinkError> {
    let settings = &shared.config.platform;
    let url = link_url(&settings.url);
    let key = settings.app_key.expose();
    let headers = [("appKey", key), ("User-Agent", "tether-cxserver")];
    let mut ws = net::ws::connect(
        &url,
        &headers,
        tls,
        link_ws_config(),
        settings.connect_timeout,
    )
    .await?;
    let auth = Message::auth_app_key(1, key).to_bytes()?;
    ws.send(WsMessage::Binary(auth)).await?;
    let deadline = Instant::now() + settings.auth_timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await;
        match next {
            Err(_) => return Err(LinkError::AuthTimeout(settings.auth_timeout)),
            Ok(None) => return Err(LinkError::Closed),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                let Ok(h) = Header::peek(&b) else { continue };
                if h.request_id != 1 || !h.code.is_response() || h.endpoint_id != 0 {
                    continue;
                }
                if h.code != Code::SUCCESS {
                    return Err(LinkError::Refused(h.code.0));
                }
                return Ok((ws, h.session_id));
            }
            Ok(Some(Ok(WsMessage::Close(_)))) => return Err(LinkError::Closed),
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn link_ws_config() -> WsConfig {
    WsConfig {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        ..WsConfig::bulk()
    }
}

fn mark_down(hub: &Hub, idx: usize, rx: &mut mpsc::Receiver<Bytes>) {
    let slot = &hub.links[idx];
    if slot.up.swap(false, Ordering::AcqRel) {
        hub.metrics.links_up.dec();
    }
    // Frames queued for the dead link were meant for its (now gone) virtual edges.
    while rx.try_recv().is_ok() {}
    lock(&slot.internal).clear();
    let mut moved = 0usize;
    for e in hub.edges_on(idx) {
        let accepted = {
            let mut st = e.state();
            if st.authenticated {
                st.authenticated = false;
                hub.metrics.authenticated.dec();
            }
            st.accepted
        };
        if !accepted {
            // Its AUTH answer will never come on this link.
            let _ = e.queue.try_send(ToEdge::Close(1011, "platform link lost"));
            continue;
        }
        // Fail over to another up link at once; if none (or its queue is full) the edge
        // waits for this link to come back and is replayed then.
        if let Some(other) = hub.pick_link() {
            e.set_link(other);
            if replay_auth(hub, other, &e) {
                moved += 1;
            } else {
                e.set_link(idx);
            }
        }
    }
    if moved > 0 {
        info!(moved, "edges failed over to other links");
    }
}

/// Relays on an authenticated link until it fails or `shutdown`; returns why it ended.
async fn serve(
    shared: &Arc<Shared>,
    idx: usize,
    ws: ClientWs,
    rx: &mut mpsc::Receiver<Bytes>,
    shutdown: &CancellationToken,
) -> &'static str {
    let hub = &shared.hub;
    let slot = &hub.links[idx];
    slot.up.store(true, Ordering::Release);
    hub.metrics.links_up.inc();
    let (mut sink, mut stream) = ws.split();
    let replay_done = CancellationToken::new();
    let replay = tokio::spawn(replay(hub.clone(), idx, replay_done.clone()).in_current_span());

    let writer = async {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { return "queue closed" };
                    if sink.feed(WsMessage::Binary(first)).await.is_err() {
                        return "write failed";
                    }
                    let mut n = 1;
                    while n < WRITE_BATCH {
                        let Ok(more) = rx.try_recv() else { break };
                        if sink.feed(WsMessage::Binary(more)).await.is_err() {
                            return "write failed";
                        }
                        n += 1;
                    }
                    if sink.flush().await.is_err() {
                        return "write failed";
                    }
                }
                _ = ping.tick() => {
                    if sink.send(WsMessage::Ping(Bytes::from_static(b"cx"))).await.is_err() {
                        return "write failed";
                    }
                }
            }
        }
    };
    let reader = async {
        loop {
            let next = tokio::time::timeout(READ_DEADLINE, stream.next()).await;
            match next {
                Err(_) => return "no frame from the platform within the read deadline",
                Ok(None) => return "platform closed the link",
                Ok(Some(Err(e))) => {
                    debug!(%e, "link read error");
                    return "read error";
                }
                Ok(Some(Ok(WsMessage::Binary(frame)))) => dispatch(hub, idx, frame),
                Ok(Some(Ok(WsMessage::Close(_)))) => return "platform closed the link",
                Ok(Some(Ok(_))) => {}
            }
        }
    };
    let why = tokio::select! {
        () = shutdown.cancelled() => "shutdown",
        w = writer => w,
        r = reader => r,
    };
    replay_done.cancel();
    let _ = replay.await;
    why
}

/// Routes one frame from the platform.
fn dispatch(hub: &Arc<Hub>, idx: usize, frame: Bytes) {
    let Ok(h) = Header::peek(&frame) else {
        debug!("undecodable frame from the platform");
        return;
    };
    let slot = &hub.links[idx];
    if h.code.is_response() {
        let internal = {
            let mut map = lock(&slot.internal);
            let v = map.remove(&(h.endpoint_id, h.request_id));
            if map.is_empty() && map.capacity() > 1024 {
                *map = Default::default();
            }
            v
        };
        if let Some(kind) = internal {
            internal_answer(hub, idx, kind, &h);
            return;
        }
    }
    match hub.edge(h.endpoint_id) {
        Some(edge) if edge.link() == idx => {
            if edge.queue.try_send(ToEdge::Frame(frame)).is_err() && h.code.is_request() {
                hub.try_send_up(idx, error_reply(&h, Code::SERVICE_UNAVAILABLE, "edge busy"));
            }
        }
        _ => {
            if h.code.is_request() {
                hub.try_send_up(
                    idx,
                    error_reply(&h, Code::GATEWAY_TIMEOUT, "edge not connected"),
                );
            }
        }
    }
}

fn internal_answer(hub: &Arc<Hub>, idx: usize, kind: Internal, h: &Header) {
    let Some(edge) = hub.edge(h.endpoint_id) else {
        return;
    };
    match kind {
        Internal::ReAuth if h.code == Code::SUCCESS => {
            let (session, gateway, names) = {
                let mut st = edge.state();
                st.upstream_session = h.session_id;
                if !st.authenticated {
                    st.authenticated = true;
                    hub.metrics.authenticated.inc();
                }
                (st.upstream_session, st.gateway.clone(), st.names.clone())
            };
            if names.is_empty() {
                return;
            }
            let slot = &hub.links[idx];
            let req = slot.request_id();
            lock(&slot.internal).insert((edge.id, req), Internal::ReBind);
            send_internal(
                hub,
                idx,
                edge.id,
                &Message::bind(req, session, gateway, names),
            );
        }
        Internal::ReAuth => {
            warn!(
                endpoint = edge.id,
                code = h.code.0,
                "platform refused a replayed edge AUTH"
            );
            let _ = edge
                .queue
                .try_send(ToEdge::Close(1008, "authentication failed"));
        }
        Internal::ReBind if h.code != Code::SUCCESS => {
            warn!(
                endpoint = edge.id,
                code = h.code.0,
                "platform refused a replayed BIND"
            );
        }
        Internal::ReBind => {}
    }
}

/// After a (re)connect, replays the AUTH of every edge this link carries that had been
/// authenticated (the BIND follows its answer, see [`internal_answer`]).
async fn replay(hub: Arc<Hub>, idx: usize, stop: CancellationToken) {
    let edges = hub.edges_on(idx);
    let mut replayed = 0usize;
    for edge in edges {
        let auth = {
            let st = edge.state();
            // An edge whose first AUTH answer never came is closed by its own deadline.
            if st.accepted { st.auth.clone() } else { None }
        };
        let Some(auth) = auth else { continue };
        let (req, frame) = replay_frame(&hub, idx, edge.id, auth);
        tokio::select! {
            () = stop.cancelled() => return,
            r = hub.send_up(idx, frame) => if r.is_err() {
                lock(&hub.links[idx].internal).remove(&(edge.id, req));
                return;
            },
        }
        replayed += 1;
    }
    if replayed > 0 {
        info!(replayed, "replayed edge AUTH after reconnect");
    }
}

/// The edge's stored AUTH with a fresh internal request id, registered as a replay.
fn replay_frame(hub: &Hub, link: usize, endpoint: u32, auth: Bytes) -> (u32, Bytes) {
    let slot = &hub.links[link];
    let req = slot.request_id();
    let mut frame = to_mut(auth);
    set_request_id(&mut frame, req);
    lock(&slot.internal).insert((endpoint, req), Internal::ReAuth);
    hub.metrics.to_platform.count(frame.len());
    (req, frame.freeze())
}

/// Replays one edge's AUTH on `link` without waiting; false if its queue is full or down.
fn replay_auth(hub: &Hub, link: usize, edge: &crate::hub::EdgeEntry) -> bool {
    let Some(auth) = edge.state().auth.clone() else {
        return false;
    };
    let (req, frame) = replay_frame(hub, link, edge.id, auth);
    if hub.try_send_up(link, frame) {
        true
    } else {
        lock(&hub.links[link].internal).remove(&(edge.id, req));
        false
    }
}
