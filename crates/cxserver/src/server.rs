//! Wiring: the edge accept loop, the upstream links, the health port, and shutdown.
//!
//! Shutdown order: the root token stops the accept loop and tells every edge task to close
//! with 1001 (each sends its UNBINDs while the links are still up); after the grace period the
//! links and the health port stop.

use std::sync::Arc;
use std::time::Duration;

use net::accept::AcceptOptions;
use net::http::ServeOptions;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::{edge, health, link};

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CxError {
    /// A listener failed.
    #[error(transparent)]
    Net(#[from] net::NetError),
}

/// Listeners bound by the caller (tests bind `127.0.0.1:0`).
#[derive(Debug)]
pub struct Listeners {
    /// Edge websockets (TLS).
    pub edge: TcpListener,
    /// Health and metrics (plain HTTP).
    pub health: TcpListener,
}

/// TLS configurations: edge server side and upstream client side.
#[derive(Clone, Debug)]
pub struct Tls {
    /// Presented to edges (ALPN `http/1.1`).
    pub edge: Arc<ServerConfig>,
    /// Used for links and tunnel relays to the platform.
    pub upstream: Arc<ClientConfig>,
}

/// State shared by every task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) hub: Arc<Hub>,
    pub(crate) upstream_tls: Arc<ClientConfig>,
    pub(crate) tunnels: Arc<Semaphore>,
    /// `host:port` of the edge listener when it is bound to a specific
    /// address: `StartTunnel` URLs are pointed there (see `tunnel_url`).
    pub(crate) tunnel_origin: std::sync::OnceLock<String>,
}

impl Shared {
    /// Websocket sizes for edge sockets: small read buffer, direct writes.
    pub(crate) fn edge_ws_config(&self) -> WebSocketConfig {
        let e = &self.config.edge;
        WebSocketConfig::default()
            .read_buffer_size(e.read_buffer_size)
            .write_buffer_size(0)
            .max_write_buffer_size(e.max_message_size.saturating_add(64))
            .max_message_size(Some(e.max_message_size))
            .max_frame_size(Some(e.max_message_size))
            .accept_unmasked_frames(false)
    }
}

/// A connection server, ready to run.
#[derive(Debug)]
pub struct CxServer {
    shared: Arc<Shared>,
    edge_tls: Arc<ServerConfig>,
    link_rx: Vec<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
}

impl CxServer {
    /// Builds the server state (no I/O yet).
    pub fn new(config: Config, tls: Tls) -> Self {
        let metrics = Arc::new(Metrics::new());
        let (hub, link_rx) = Hub::new(config.platform.links, metrics);
        let tunnels = Arc::new(Semaphore::new(config.edge.max_tunnels));
        let shared = Arc::new(Shared {
            config,
            hub,
            upstream_tls: tls.upstream,
            tunnels,
            tunnel_origin: std::sync::OnceLock::new(),
        });
        // Edges do not resume TLS sessions: issuing TLS 1.3 tickets would only cost CPU and
        // cache memory per connection.
        let mut edge_tls = (*tls.edge).clone();
        edge_tls.send_tls13_tickets = 0;
        CxServer {
            shared,
            edge_tls: Arc::new(edge_tls),
            link_rx,
        }
    }

    /// The metrics (also served on the health port).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.hub.metrics.clone()
    }

    /// A handle to read the link status.
    pub fn status(&self) -> Status {
        Status {
            hub: self.shared.hub.clone(),
        }
    }

    /// Runs until `shutdown` is cancelled and the edges have drained (or the grace period ended).
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> Result<(), CxError> {
        let CxServer {
            shared,
            edge_tls,
            link_rx,
        } = self;
        let grace = shared.config.shutdown_grace;
        match tunnel_origin(
            shared.config.edge.public_origin(),
            listeners.edge.local_addr().ok(),
        ) {
            Some(origin) => {
                let _ = shared.tunnel_origin.set(origin);
            }
            None => warn!(
                "edge listener on an unspecified address and no edge.public-url: StartTunnel \
                 URLs are not rewritten, edges attach tunnels to the platform's own URL"
            ),
        }
        let background = CancellationToken::new();
        let tracker = TaskTracker::new();
        for (idx, rx) in link_rx.into_iter().enumerate() {
            let task = link::run(
                shared.clone(),
                idx,
                rx,
                shared.upstream_tls.clone(),
                background.clone(),
            );
            tracker.spawn(task);
        }
        let health_app = health::router(shared.hub.clone());
        let health_opts = ServeOptions {
            max_connections: 64,
            grace_period: Duration::from_secs(1),
            ..Default::default()
        };
        let health_token = background.clone();
        tracker.spawn(async move {
            if let Err(e) = net::http::serve(
                listeners.health,
                None,
                health_app,
                health_opts,
                health_token,
            )
            .await
            {
                warn!(%e, "health port failed");
            }
        });
        tracker.close();

        let opts = AcceptOptions {
            max_connections: shared.config.edge.max_connections,
            handshake_timeout: shared.config.edge.handshake_timeout,
            grace_period: grace,
        };
        let handler_shared = shared.clone();
        let accepted = net::accept::run(
            listeners.edge,
            Some(edge_tls),
            opts,
            shutdown,
            move |conn| edge::serve(conn, handler_shared.clone()),
        )
        .await;
        info!("edge listener drained; stopping links");
        background.cancel();
        if !net::shutdown::wait_with_grace(&tracker, Duration::from_secs(5)).await {
            warn!("links did not stop in time");
        }
        accepted.map_err(CxError::from)
    }
}

/// Read-only view of the server's upstream state.
#[derive(Clone, Debug)]
pub struct Status {
    hub: Arc<Hub>,
}

impl Status {
    /// Upstream links currently authenticated.
    pub fn links_up(&self) -> usize {
        self.hub.links_up()
    }

    /// Edge sockets currently registered (sent AUTH and still open).
    pub fn edges(&self) -> usize {
        self.hub.all_edges().len()
    }
}

/// The origin put into `StartTunnel` `server_url`s: `edge.public-url` when set, else the edge
/// listener's address unless it is unspecified (`0.0.0.0` / `::`), else none (not rewritten).
fn tunnel_origin(public: Option<String>, listen: Option<std::net::SocketAddr>) -> Option<String> {
    public.or_else(|| {
        listen
            .filter(|a| !a.ip().is_unspecified())
            .map(|a| a.to_string())
    })
}

#[cfg(test)]
mod origin_tests {
    use super::tunnel_origin;

    #[test]
    fn public_url_wins_then_a_specific_listen_address() {
        let any = Some(([0, 0, 0, 0], 9443).into());
        let any6 = Some((std::net::Ipv6Addr::UNSPECIFIED, 9443).into());
        let lo = Some(([127, 0, 0, 1], 9443).into());
        let public = || Some("cx.example.com:9443".to_owned());
        assert_eq!(
            tunnel_origin(public(), any).as_deref(),
            Some("cx.example.com:9443")
        );
        assert_eq!(
            tunnel_origin(public(), any6).as_deref(),
            Some("cx.example.com:9443")
        );
        assert_eq!(
            tunnel_origin(public(), lo).as_deref(),
            Some("cx.example.com:9443")
        );
        assert_eq!(tunnel_origin(None, lo).as_deref(), Some("127.0.0.1:9443"));
        assert_eq!(tunnel_origin(None, any), None);
        assert_eq!(tunnel_origin(None, any6), None);
    }
}
