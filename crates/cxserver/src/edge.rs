//! The edge side: TLS edge sockets are upgraded here with tungstenite directly (no axum), then
//! routed by path: `/Thingworx/WS` to the AlwaysOn relay task (`session`), tunnel paths to the
//! tunnel relay (`tunnel`), anything else 404. An AlwaysOn edge that offers permessage-deflate
//! gets it when `edge.compression` is on (a layer armed on the stream before the upgrade, see
//! `net::ws::deflate`); tunnels never compress.

use std::sync::Arc;

use net::accept::Conn;
use net::ws::deflate::{DEFAULT_MIN_SIZE, DeflateConfig};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tracing::debug;

use crate::server::Shared;
use crate::session::EdgeTask;
use crate::tunnel::{self, TunnelRequest};

/// Smallest message compressed towards an edge when the server keeps no deflate window.
const NO_CONTEXT_MIN_SIZE: usize = 256;

/// The AlwaysOn endpoint path.
pub const ALWAYSON_PATH: &str = "/Thingworx/WS";

enum Route {
    AlwaysOn,
    Tunnel(TunnelRequest),
}

/// Serves one accepted (TLS) edge connection.
pub(crate) async fn serve(conn: Conn, shared: Arc<Shared>) {
    let Conn {
        mut stream,
        shutdown,
        peer,
        ..
    } = conn;
    let edge = &shared.config.edge;
    let deflate = edge.compression.then(|| {
        stream.arm_deflate(DeflateConfig {
            server_context_takeover: edge.compression_context_takeover,
            // Without a kept window a small push shrinks ~10 % for ~30 µs of CPU: not worth it.
            min_size: if edge.compression_context_takeover {
                DEFAULT_MIN_SIZE
            } else {
                NO_CONTEXT_MIN_SIZE
            },
            max_message_size: edge.max_message_size,
            max_frame_size: edge.max_message_size,
            ..DeflateConfig::default()
        })
    });
    let mut route = None;
    // The callback signature is tungstenite's; its error type is large by design.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path();
        if path == ALWAYSON_PATH {
            route = Some(Route::AlwaysOn);
            if let Some(value) = deflate.as_ref().and_then(|n| n.negotiate(req.headers())) {
                resp.headers_mut()
                    .insert(http::header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
            return Ok(resp);
        }
        match tunnel::classify(req) {
            Some(t) => {
                let resp = tunnel::accept_response(&t, resp);
                route = Some(Route::Tunnel(t));
                Ok(resp)
            }
            None => {
                let mut e = ErrorResponse::new(Some("not found".to_owned()));
                *e.status_mut() = http::StatusCode::NOT_FOUND;
                Err(e)
            }
        }
    };
    let cfg = shared.edge_ws_config();
    // Boxed: the handshake state is freed once upgraded instead of sizing the task's future.
    let upgrade = Box::pin(tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(cfg),
    ));
    let ws = tokio::select! {
        () = shutdown.cancelled() => return,
        r = tokio::time::timeout(shared.config.edge.handshake_timeout, upgrade) => match r {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                debug!(%e, "websocket upgrade failed");
                return;
            }
            Err(_) => {
                debug!("websocket upgrade timed out");
                return;
            }
        },
    };
    // Agreed or not, the negotiation handle is done with.
    drop(deflate);
    match route {
        Some(Route::AlwaysOn) => {
            debug!(deflate = ?ws.get_ref().deflate_params(), "edge upgraded");
            shared.hub.metrics.connections.inc();
            shared.hub.metrics.connections_opened.inc();
            // Boxed, like the tunnel relay below: a task's memory is the size of its largest
            // state, and the tunnel relay (upstream connect inline) is many KiB.
            let why = Box::pin(EdgeTask::new(shared.clone(), ws, shutdown, peer.ip()).run()).await;
            shared.hub.metrics.connections.dec();
            debug!(why, "edge closed");
        }
        Some(Route::Tunnel(t)) => Box::pin(tunnel::relay(shared, ws, t, shutdown)).await,
        None => {}
    }
}
