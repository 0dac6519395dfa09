//! Serve an axum [`Router`] over the bounded accept loop, plain or TLS.
//!
//! HTTP/1.1 (and HTTP/2 when negotiated) with upgrades enabled, so axum's
//! `WebSocketUpgrade` works. Handlers can extract
//! `axum::extract::ConnectInfo<SocketAddr>` for the peer address. On
//! shutdown each connection is told to finish its in-flight request and
//! close; upgraded websockets keep running until their handler ends them
//! (watch your own shutdown token in websocket handlers) or the grace period
//! passes.
//!
//! ```no_run
//! use axum::{Router, extract::ConnectInfo, routing::get};
//! use net::http::{ServeOptions, serve};
//! use std::net::SocketAddr;
//!
//! # async fn example(tls: std::sync::Arc<rustls::ServerConfig>) -> Result<(), net::NetError> {
//! let app = Router::new().route(
//!     "/whoami",
//!     get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await.map_err(|e| net::NetError::Io { context: "bind".into(), source: e })?;
//! let shutdown = net::CancellationToken::new();
//! net::shutdown::cancel_on_signal(shutdown.clone());
//! serve(listener, Some(tls), app, ServeOptions::default(), shutdown).await
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::debug;

use crate::NetError;
use crate::accept::{self, AcceptOptions, Conn};

/// Default deadline for reading a request's headers (HTTP/1).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on an HTTP/1 request head (buffer size).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// Limits of an HTTP server. Build with `ServeOptions { max_connections: 100,
/// ..Default::default() }`.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Connections open at once (upgraded websockets included); more are closed.
    pub max_connections: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline for receiving a full request head (HTTP/1, also between
    /// keep-alive requests).
    pub header_read_timeout: Duration,
    /// Largest HTTP/1 request head accepted.
    pub max_header_bytes: usize,
    /// After shutdown, how long to wait for connections before returning.
    pub grace_period: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: accept::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: accept::DEFAULT_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            grace_period: accept::DEFAULT_GRACE_PERIOD,
        }
    }
}

/// Serve `app` on `listener` (TLS if `tls` is set; give it ALPN
/// `http/1.1` for websockets) until `shutdown` is cancelled, then wait up to
/// the grace period for open connections. Per-connection errors are logged,
/// never returned.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    opts: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), NetError> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(opts.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    let accept_opts = AcceptOptions {
        max_connections: opts.max_connections,
        handshake_timeout: opts.handshake_timeout,
        grace_period: opts.grace_period,
    };
    accept::run(listener, tls, accept_opts, shutdown, move |conn| {
        serve_connection(conn, app.clone(), builder.clone())
    })
    .await
}

async fn serve_connection(conn: Conn, app: Router, builder: Arc<auto::Builder<TokioExecutor>>) {
    let Conn {
        stream,
        peer,
        shutdown,
        ..
    } = conn;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer));
        app.clone().oneshot(request)
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    match result {
        Ok(()) => debug!("connection closed"),
        Err(e) => debug!(%e, "connection ended with an error"),
    }
}
