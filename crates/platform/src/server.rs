//! Start-up and shutdown: open the store (migrations), mark every thing
//! disconnected, load or generate the TLS identity, then serve the router
//! over TLS on an already-bound listener until the token is cancelled.
//! Edge sockets close with 1001; tasks get the configured grace period.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::certs::{self, CertError, Identity};
use crate::config::Config;
use crate::state::Platform;
use crate::store::{Store, StoreError};

/// Why the platform could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Cert(#[from] CertError),
    #[error("server: {0}")]
    Net(#[from] net::NetError),
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("remote access: {0}")]
    RemoteAccess(String),
}

/// A platform ready to serve: state and TLS identity.
pub struct Prepared {
    pub platform: Platform,
    pub identity: Identity,
}

/// Opens the store (`database`, by default SQLite in the data directory) and
/// loads the TLS identity.
pub async fn prepare(config: Config, shutdown: CancellationToken) -> Result<Prepared, RunError> {
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .map_err(StoreError::Io)?;
    let store = Store::open(&config.database).await?;
    info!(database = %config.database.redacted(), "entity store open");
    let stale = store.disconnect_all().await?;
    if stale > 0 {
        info!(things = stale, "marked things disconnected after restart");
    }
    let (tls, data_dir) = (config.tls.clone(), config.data_dir.clone());
    let identity = tokio::task::spawn_blocking(move || certs::load(&tls, &data_dir)).await??;
    Ok(Prepared {
        platform: Platform::new(config, store, shutdown),
        identity,
    })
}

impl Prepared {
    /// Serves until the shutdown token is cancelled, then drains.
    pub async fn serve(self, listener: TcpListener) -> Result<(), RunError> {
        let Prepared { platform, identity } = self;
        let config = platform.config().clone();
        let shutdown = platform.shared.shutdown.clone();
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, fingerprint = %identity.fingerprint, "platform listening (https, wss /Thingworx/WS)");
        }
        let opts = net::http::ServeOptions {
            max_connections: config.alwayson.max_connections.saturating_add(1024),
            grace_period: config.shutdown_grace,
            ..net::http::ServeOptions::default()
        };
        let public_url = match &config.public_url {
            Some(url) => url.clone(),
            None => listener
                .local_addr()
                .map_err(|e| RunError::RemoteAccess(e.to_string()))
                .and_then(|a| {
                    crate::remote_access::default_public_url(a)
                        .map_err(|e| RunError::RemoteAccess(e.to_string()))
                })?,
        };
        let broker =
            crate::remote_access::start_broker(&platform, public_url, shutdown.child_token())
                .map_err(|e| RunError::RemoteAccess(e.to_string()))?;
        // The whole router (REST, management API, broker, page) under the
        // page's no-challenge layer: a wrong password at the page's login
        // must reach its script, not open the browser's own dialog.
        let router = crate::remote_access::app(&platform, &broker);
        let closer = {
            let platform = platform.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                platform.close_all_edges("platform shutting down");
            })
        };
        let served = net::http::serve(
            listener,
            Some(identity.server_config),
            router,
            opts,
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        let _ = closer.await;
        let sessions = broker.tracker();
        sessions.close();
        if !net::shutdown::wait_with_grace(&sessions, config.shutdown_grace).await {
            warn!("some remote-access sessions did not finish within the grace period");
        }
        let tracker = platform.shared.tracker.clone();
        tracker.close();
        if !net::shutdown::wait_with_grace(&tracker, config.shutdown_grace).await {
            warn!("some edge tasks did not finish within the grace period");
        }
        platform.store().close().await;
        info!("platform stopped");
        served.map_err(RunError::from)
    }
}

/// Runs the platform on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    prepare(config, shutdown).await?.serve(listener).await
}
