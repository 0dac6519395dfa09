//! A bounded TCP (+ optional TLS) accept loop shared by every listener.
//!
//! - connection cap: a connection over `max_connections` is closed at once
//!   (the client sees the socket close, it is never queued unboundedly);
//! - TLS handshake deadline;
//! - one task per connection, spawned with a `conn{id, peer}` span;
//! - a failed `accept` backs off (5 ms doubling to 1 s) and continues;
//! - shutdown: stop accepting, hand each connection a cancelled token, wait
//!   up to `grace_period` for them, then return.
//!
//! The cap permit and a [`TaskTracker`] token live inside [`ServerStream`],
//! so a stream handed elsewhere (e.g. a websocket after an HTTP upgrade)
//! still counts against the cap and is still waited for at shutdown.
//!
//! ```no_run
//! use net::accept::{self, AcceptOptions, Conn};
//! use net::ws::{self, Decision, WsConfig};
//! use std::time::Duration;
//!
//! # async fn example(tls: std::sync::Arc<rustls::ServerConfig>) -> Result<(), net::NetError> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9443").await.map_err(|e| net::NetError::Io { context: "bind".into(), source: e })?;
//! let shutdown = net::CancellationToken::new();
//! let opts = AcceptOptions { max_connections: 50_000, ..AcceptOptions::default() };
//! accept::run(listener, Some(tls), opts, shutdown, |conn: Conn| async move {
//!     let decide = |h: &ws::Handshake| match h.headers.contains_key("appKey") {
//!         true => Decision::Accept { subprotocol: None },
//!         false => Decision::Reject { status: http::StatusCode::UNAUTHORIZED, reason: "appKey missing".into() },
//!     };
//!     match ws::accept_with(conn.stream, WsConfig::small(), Duration::from_secs(10), decide).await {
//!         Ok((socket, handshake)) => { /* serve `socket` until `conn.shutdown` */ let _ = (socket, handshake); }
//!         Err(e) => tracing::debug!(%e, "upgrade failed"),
//!     }
//! })
//! .await
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::NetError;
use crate::ws::deflate::{DeflateConfig, DeflateParams, Layer, Negotiator};

/// Default connection cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default TLS handshake deadline.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default grace period at shutdown.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);

const BACKOFF_START: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Limits of an accept loop. Build with `AcceptOptions { max_connections: 100,
/// ..Default::default() }`.
#[derive(Clone, Copy, Debug)]
pub struct AcceptOptions {
    /// Connections open at once (including upgraded ones); more are closed.
    pub max_connections: usize,
    /// Deadline for the TLS handshake.
    pub handshake_timeout: Duration,
    /// After shutdown, how long to wait for open connections before returning.
    pub grace_period: Duration,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        AcceptOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            grace_period: DEFAULT_GRACE_PERIOD,
        }
    }
}

/// One accepted connection, after the TLS handshake if any.
pub struct Conn {
    /// The byte stream (plain or TLS).
    pub stream: ServerStream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Per-listener connection number (also in the span).
    pub id: u64,
    /// Cancelled when the listener shuts down: finish up and close.
    pub shutdown: CancellationToken,
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted stream, plain or TLS. Holds the connection-cap permit and a
/// shutdown-tracker token until dropped. A websocket server may arm a
/// permessage-deflate layer on it before the upgrade
/// ([`ServerStream::arm_deflate`]), so the websocket type stays
/// `WebSocketStream<ServerStream>` with or without compression.
pub struct ServerStream {
    inner: Inner,
    deflate: Option<Box<Layer>>,
    _permit: OwnedSemaphorePermit,
    _tracked: TaskTrackerToken,
}

impl ServerStream {
    /// True if TLS was negotiated.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The ALPN protocol negotiated, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    /// The SNI host name the client sent, if any.
    pub fn sni(&self) -> Option<&str> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(s) => s.get_ref().1.server_name(),
        }
    }

    /// The underlying TCP socket (for socket options).
    pub fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(s) => s,
            Inner::Tls(s) => s.get_ref().0,
        }
    }

    /// Arms permessage-deflate (RFC 7692) for a websocket server upgrade
    /// about to run on this stream (see [`crate::ws::deflate`]): call it
    /// before the handshake, and call [`Negotiator::negotiate`] in the
    /// handshake callback to accept the client's offer and get the
    /// `Sec-WebSocket-Extensions` response value. If nothing is agreed the
    /// stream passes bytes through as before.
    pub fn arm_deflate(&mut self, config: DeflateConfig) -> Negotiator {
        let (layer, negotiator) = Layer::server(config);
        self.deflate = Some(Box::new(layer));
        negotiator
    }

    /// The permessage-deflate parameters in force (after the upgrade).
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.deflate.as_ref().and_then(|l| l.params())
    }
}

impl AsyncRead for Inner {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Inner {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.deflate {
            Some(layer) => layer.poll_read(&mut this.inner, cx, buf),
            None => Pin::new(&mut this.inner).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.deflate {
            Some(layer) => layer.poll_write(&mut this.inner, cx, buf),
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.deflate {
            Some(layer) => {
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &**b);
                layer.poll_write(&mut this.inner, cx, first)
            }
            None => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.deflate.is_none() && self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.deflate {
            Some(layer) => layer.poll_flush(&mut this.inner, cx),
            None => Pin::new(&mut this.inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.deflate {
            Some(layer) => layer.poll_shutdown(&mut this.inner, cx),
            None => Pin::new(&mut this.inner).poll_shutdown(cx),
        }
    }
}

/// Errors from `accept` that concern only the one incoming connection.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Run the accept loop on `listener` until `shutdown` is cancelled, calling
/// `handler` in its own task for each connection (after the TLS handshake
/// when `tls` is set). Returns after shutdown once all connections have
/// finished or the grace period has passed (remaining tasks are left to end
/// on their own when they see `Conn::shutdown`).
pub async fn run<H, F>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    opts: AcceptOptions,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), NetError>
where
    H: Fn(Conn) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let local = listener
        .local_addr()
        .map_err(|e| NetError::io("reading the listener address", e))?;
    info!(%local, tls = tls.is_some(), max_connections = opts.max_connections, "listening");
    let acceptor = tls.map(TlsAcceptor::from);
    let handler = Arc::new(handler);
    let cap = Arc::new(Semaphore::new(opts.max_connections));
    let tracker = TaskTracker::new();
    let mut backoff = BACKOFF_START;
    let mut next_id: u64 = 0;
    let mut refused: u64 = 0;

    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => {
                backoff = BACKOFF_START;
                x
            }
            Err(e) if is_connection_error(&e) => {
                debug!(%e, "accept failed for one connection");
                continue;
            }
            Err(e) => {
                warn!(%e, ?backoff, "accept failed, backing off");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = cap.clone().try_acquire_owned() else {
            refused += 1;
            // Log the first and then every 1000th to keep floods out of the log.
            if refused % 1000 == 1 {
                warn!(%peer, refused, max = opts.max_connections, "connection cap reached, closing new connection");
            }
            drop(tcp);
            continue;
        };
        next_id += 1;
        let id = next_id;
        let tracked = tracker.token();
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let conn_shutdown = shutdown.child_token();
        let timeout = opts.handshake_timeout;
        tracker.spawn(
            async move {
                if let Err(e) = tcp.set_nodelay(true) {
                    debug!(%e, "set_nodelay failed");
                }
                let inner = match acceptor {
                    None => Inner::Plain(tcp),
                    Some(acceptor) => {
                        let handshake = crate::tls::accept(&acceptor, tcp, timeout);
                        let result = tokio::select! {
                            () = conn_shutdown.cancelled() => {
                                debug!("shutdown during TLS handshake");
                                return;
                            }
                            r = handshake => r,
                        };
                        match result {
                            Ok(s) => Inner::Tls(Box::new(s)),
                            Err(e) => {
                                debug!(%e, "connection closed");
                                return;
                            }
                        }
                    }
                };
                let stream = ServerStream {
                    inner,
                    deflate: None,
                    _permit: permit,
                    _tracked: tracked,
                };
                handler(Conn {
                    stream,
                    peer,
                    id,
                    shutdown: conn_shutdown,
                })
                .await;
            }
            .instrument(info_span!("conn", id, %peer)),
        );
    }

    drop(listener);
    info!(%local, open = opts.max_connections - cap.available_permits(), "stopped accepting");
    if !crate::shutdown::wait_with_grace(&tracker, opts.grace_period).await {
        warn!(
            %local,
            open = opts.max_connections - cap.available_permits(),
            grace = ?opts.grace_period,
            "grace period over with connections still open"
        );
    }
    Ok(())
}
