//! Tunnel pass-through: a websocket-to-websocket relay from the edge port to the same path on
//! the platform, for the native endpoints `/remote-access/v1/sessions/{sid}/server|client` and
//! the legacy `/Thingworx/WSTunnelServer/<tid>` (and `/Thingworx/WSTunnelClient/<tid>`).
//!
//! The `Authorization`, `appKey` and `Cookie` headers and the offered subprotocols are copied
//! to the upstream upgrade. The downstream upgrade is answered first (selecting the first
//! offered subprotocol); if the platform then refuses, the edge socket is closed with 1008
//! (401/403) or 1011 and a reason naming the status. Frames are copied as they are, never
//! re-encoded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use net::accept::ServerStream;
use net::ws::WsConfig;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::server::Shared;

/// Headers copied to the upstream upgrade.
const COPIED: [&str; 3] = ["authorization", "appkey", "cookie"];
/// A tunnel with no frame either way for this long is closed.
pub const TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_ID: usize = 128;

/// A tunnel upgrade seen on the edge port.
#[derive(Debug)]
pub(crate) struct TunnelRequest {
    path: String,
    headers: Vec<(String, String)>,
    protocols: Option<String>,
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Is `path` a tunnel endpoint?
pub(crate) fn is_tunnel_path(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("/remote-access/v1/sessions/") {
        return match rest.split_once('/') {
            Some((sid, side)) => valid_id(sid) && (side == "server" || side == "client"),
            None => false,
        };
    }
    ["/Thingworx/WSTunnelServer/", "/Thingworx/WSTunnelClient/"]
        .iter()
        .any(|p| path.strip_prefix(p).is_some_and(valid_id))
}

/// The tunnel request if `req` targets a tunnel endpoint.
pub(crate) fn classify(req: &Request) -> Option<TunnelRequest> {
    let path = req.uri().path();
    if !is_tunnel_path(path) {
        return None;
    }
    let headers = req
        .headers()
        .iter()
        .filter(|(n, _)| COPIED.contains(&n.as_str()))
        .filter_map(|(n, v)| {
            v.to_str()
                .ok()
                .map(|v| (n.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let protocols = req
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req
        .uri()
        .path_and_query()
        .map_or(path, |pq| pq.as_str())
        .to_owned();
    Some(TunnelRequest {
        path,
        headers,
        protocols,
    })
}

/// The downstream 101 response: selects the first offered subprotocol.
pub(crate) fn accept_response(t: &TunnelRequest, mut resp: Response) -> Response {
    let first = t
        .protocols
        .as_deref()
        .and_then(|p| p.split(',').next())
        .map(str::trim);
    if let Some(Ok(v)) = first.map(http::HeaderValue::from_str) {
        resp.headers_mut()
            .insert(http::header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    resp
}

fn tunnel_ws_config() -> WsConfig {
    WsConfig {
        read_buffer_size: 16 * 1024,
        write_buffer_size: 0,
        max_write_buffer_size: 16 << 20,
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        accept_unmasked_frames: false,
    }
}

async fn close(ws: &mut WebSocketStream<ServerStream>, code: u16, reason: String) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}

/// Relays one tunnel websocket to the platform until either side closes.
pub(crate) async fn relay(
    shared: Arc<Shared>,
    mut down: WebSocketStream<ServerStream>,
    t: TunnelRequest,
    shutdown: CancellationToken,
) {
    let metrics = &shared.hub.metrics;
    let Ok(_permit) = shared.tunnels.clone().try_acquire_owned() else {
        close(&mut down, 1013, "too many tunnels".to_owned()).await;
        return;
    };
    let mut url = shared.config.platform.url.clone();
    let (path, query) = t
        .path
        .split_once('?')
        .map_or((t.path.as_str(), None), |(p, q)| (p, Some(q)));
    url.set_path(path);
    url.set_query(query);
    let mut headers: Vec<(&str, &str)> = t
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Some(p) = &t.protocols {
        headers.push(("Sec-WebSocket-Protocol", p));
    }
    let timeout = shared.config.platform.connect_timeout;
    let connected = tokio::select! {
        () = shutdown.cancelled() => return,
        r = net::ws::connect(url.as_str(), &headers, shared.upstream_tls.clone(), tunnel_ws_config(), timeout) => r,
    };
    let mut up = match connected {
        Ok(ws) => ws,
        Err(e) => {
            let (code, reason) = match &e {
                net::NetError::WsRefused { status, .. }
                    if status.as_u16() == 401 || status.as_u16() == 403 =>
                {
                    (1008, format!("platform refused tunnel: {status}"))
                }
                net::NetError::WsRefused { status, .. } => {
                    (1011, format!("platform refused tunnel: {status}"))
                }
                _ => (1011, "platform unreachable".to_owned()),
            };
            info!(%e, "tunnel upstream failed");
            close(&mut down, code, reason).await;
            return;
        }
    };
    metrics.tunnels.inc();
    metrics.tunnels_opened.inc();
    info!(path = %path, "tunnel relay open");
    let why = loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => {
                close(&mut down, 1001, "server shutting down".to_owned()).await;
                let _ = up.close(None).await;
                break "shutdown";
            }
            r = tokio::time::timeout(TUNNEL_IDLE_TIMEOUT, async {
                tokio::select! {
                    m = down.next() => (true, m),
                    m = up.next() => (false, m),
                }
            }) => r,
        };
        let Ok((from_edge, msg)) = event else {
            close(&mut down, 1000, "tunnel idle timeout".to_owned()).await;
            let _ = up.close(None).await;
            break "idle";
        };
        let msg = match msg {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                debug!(%e, from_edge, "tunnel socket error");
                if from_edge {
                    let _ = up.close(None).await;
                } else {
                    close(&mut down, 1011, "platform side failed".to_owned()).await;
                }
                break "socket error";
            }
            None => {
                if from_edge {
                    let _ = up.close(None).await;
                } else {
                    close(&mut down, 1011, "platform side closed".to_owned()).await;
                }
                break "closed";
            }
        };
        let close_frame = match &msg {
            WsMessage::Close(f) => Some(f.clone()),
            _ => None,
        };
        if let Some(f) = close_frame {
            if from_edge {
                let _ = up.close(f).await;
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(1), down.close(f)).await;
            }
            break "closed";
        }
        let len = match &msg {
            WsMessage::Binary(b) => b.len(),
            WsMessage::Text(t) => t.len(),
            // Pings are answered by each side's own websocket.
            _ => continue,
        };
        let sent = if from_edge {
            metrics.tunnel_bytes_up.inc_by(len as u64);
            up.send(msg).await.is_ok()
        } else {
            metrics.tunnel_bytes_down.inc_by(len as u64);
            down.send(msg).await.is_ok()
        };
        if !sent {
            break "write failed";
        }
    };
    metrics.tunnels.dec();
    info!(why, "tunnel relay closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_paths() {
        assert!(is_tunnel_path("/remote-access/v1/sessions/abc-1/server"));
        assert!(is_tunnel_path("/remote-access/v1/sessions/abc_1/client"));
        assert!(!is_tunnel_path("/remote-access/v1/sessions/abc/other"));
        assert!(!is_tunnel_path("/remote-access/v1/sessions//server"));
        assert!(!is_tunnel_path("/remote-access/v1/sessions/a.b/server"));
        assert!(is_tunnel_path("/Thingworx/WSTunnelServer/7f3e"));
        assert!(!is_tunnel_path("/Thingworx/WSTunnelServer/"));
        assert!(!is_tunnel_path("/Thingworx/WSTunnelServer/a/b"));
        assert!(!is_tunnel_path("/Thingworx/WS"));
    }
}
