//! Wiring: builds the uplink actor, the dispatcher and the local REST server and
//! runs them until shutdown.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alwayson::Limits;
use net::http::ServeOptions;
use net::tls::{ALPN_HTTP1, SelfSigned, server_config_from_files};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError, HttpServerConfig, HttpTls};
use crate::dispatch::Dispatcher;
use crate::gateway::HttpClients;
use crate::localems::LocalEms;
use crate::offline::OfflineStore;
use crate::rest::{RestState, router};
use crate::things::Things;
use crate::uplink::{self, Actor, Uplink};

/// How long background tasks get to finish after shutdown.
const GRACE: Duration = Duration::from_secs(5);

/// Why the EMS stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A configuration problem found at start-up (certificates, key files).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The offline store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::offline::StoreError),
    /// `ws_connection.connect_retries` exhausted.
    #[error(transparent)]
    GaveUp(#[from] uplink::GaveUp),
    /// The local REST server failed.
    #[error("local REST server: {0}")]
    Http(String),
}

/// Binds the local REST listener: `http_server.port`, then up to `ports_to_try` more.
pub async fn bind_http(cfg: &HttpServerConfig) -> Result<TcpListener, ConfigError> {
    let mut last = String::from("no usable address");
    for addr in cfg.bind_candidates() {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(ConfigError::new(
        "http_server.port",
        format!("cannot listen: {last}"),
    ))
}

/// Runs the EMS until `shutdown` is cancelled: the AlwaysOn uplink, the local REST
/// server on `http_listener` (already bound, so tests use 127.0.0.1:0) and the
/// keep-alive probes. On shutdown every bound thing is UNBOUND before the socket closes.
pub async fn run(
    config: Config,
    http_listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let config = Arc::new(config);
    let tls = uplink::client_tls(&config.certificates)?;
    let store = open_store(&config).await?;
    let things = Things::from_config(&config);
    let (cmd_tx, cmd_rx) = mpsc::channel(config.connection.max_messages);
    let (conn_tx, conn_rx) = watch::channel(false);
    let uplink = Uplink::new(cmd_tx, conn_rx, Arc::new(AtomicU32::new(1)));
    let tracker = TaskTracker::new();
    let local = LocalEms {
        things: things.clone(),
        uplink: uplink.clone(),
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    };
    let limits = Limits {
        max_message_size: config.connection.max_msg_size,
        ..Limits::default()
    };
    let http = HttpClients::new().map_err(|e| RunError::Http(e.to_string()))?;
    let dispatcher = Arc::new(Dispatcher {
        local: local.clone(),
        http,
        limits: limits.clone(),
        tunnels: crate::tunnel::Tunnels::new(
            &config,
            uplink.clone(),
            tls.clone(),
            tracker.clone(),
            shutdown.clone(),
        ),
    });
    let actor = Actor {
        cfg: config.clone(),
        things: things.clone(),
        store,
        rx: cmd_rx,
        connected: conn_tx,
        uplink: uplink.clone(),
        dispatcher,
        tls,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };

    let rest_tls = match &config.http_server.tls {
        None => None,
        Some(HttpTls::Files {
            certificate,
            private_key,
        }) => Some(
            server_config_from_files(certificate, private_key, &[ALPN_HTTP1])
                .map_err(|e| ConfigError::new("http_server.certificate", e.to_string()))?,
        ),
        Some(HttpTls::SelfSigned) => {
            let cert = SelfSigned::generate(&["localhost", "127.0.0.1"]).map_err(|e| {
                ConfigError::new("http_server.use_default_certificate", e.to_string())
            })?;
            tracing::info!(fingerprint = %cert.fingerprint(), "local REST uses a generated self-signed certificate");
            Some(cert.server_config(&[ALPN_HTTP1]).map_err(|e| {
                ConfigError::new("http_server.use_default_certificate", e.to_string())
            })?)
        }
    };
    let state = Arc::new(RestState {
        local,
        gateway: things.gateway(),
        limits,
        auth: config.http_server.basic_auth.clone(),
    });
    let app = router(state, config.connection.max_msg_size);
    let opts = ServeOptions {
        max_connections: config.http_server.max_clients,
        header_read_timeout: config.http_server.content_read_timeout,
        ..ServeOptions::default()
    };
    if let Ok(addr) = http_listener.local_addr() {
        tracing::info!(%addr, tls = rest_tls.is_some(), "local REST listening");
    }
    let rest_stop = shutdown.child_token();
    let rest = tokio::spawn(net::http::serve(
        http_listener,
        rest_tls,
        app,
        opts,
        rest_stop.clone(),
    ));

    let uplink_result = actor.run().await;
    if uplink_result.is_err() {
        // Without an uplink the EMS is useless: stop the REST server too.
        rest_stop.cancel();
    }
    let rest_result = rest.await;
    tracker.close();
    if tokio::time::timeout(GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("background tasks still running after the grace period");
    }
    uplink_result?;
    match rest_result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RunError::Http(e.to_string())),
        Err(e) => Err(RunError::Http(e.to_string())),
    }
}

async fn open_store(config: &Config) -> Result<Arc<Mutex<OfflineStore>>, RunError> {
    let c = &config.offline_store;
    let store = match (&c.directory, c.enabled) {
        (_, false) => OfflineStore::disabled(),
        (None, true) => {
            tracing::info!(
                max_size = c.max_size,
                "offline store in memory (no offline_msg_store.directory)"
            );
            OfflineStore::memory(c.max_size)
        }
        (Some(dir), true) => {
            let dir = dir.clone();
            let max = c.max_size;
            let opened = tokio::task::spawn_blocking(move || OfflineStore::open(&dir, max))
                .await
                .map_err(|e| RunError::Http(e.to_string()))?;
            let (store, warning) = opened?;
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            if !store.is_empty() {
                tracing::info!(count = store.len(), "offline messages from an earlier run");
            }
            store
        }
    };
    Ok(Arc::new(Mutex::new(store)))
}
