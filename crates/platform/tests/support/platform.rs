//! A real platform on 127.0.0.1:0 over any test database (`TestDb`), with
//! an administrator and an edge app key, for flows that `test_support`'s
//! `spawn_platform` (SQLite only, default config) cannot configure.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::model::{NewAppKey, Role};
use platform::{Config, Platform};

use super::db::TestDb;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running platform; stopped on drop.
pub struct Running {
    pub base_url: String,
    pub ws_url: String,
    pub client_tls: Arc<rustls::ClientConfig>,
    /// An app key of `admin`.
    pub app_key: String,
    pub platform: Platform,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), platform::RunError>>>,
    _data_dir: tempfile::TempDir,
}

/// Starts a platform on `db`; `adjust` may change the configuration.
pub async fn spawn(db: &TestDb, adjust: impl FnOnce(&mut Config)) -> Running {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_data_dir(data_dir.path());
    config.database = db.database.clone();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.shutdown_grace = Duration::from_secs(3);
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let prepared = platform::prepare(config, shutdown.clone()).await.unwrap();
    let store = prepared.platform.store().clone();
    if store.user_with_hash(ADMIN).await.unwrap().is_none() {
        let hash = platform::secret::hash_password(ADMIN_PASSWORD).unwrap();
        store
            .create_user(ADMIN, &hash, Role::Administrator)
            .await
            .unwrap();
    }
    let key = platform::secret::generate_app_key();
    store
        .create_app_key(
            &NewAppKey {
                name: format!("edge-{}", platform::secret::random_token(6)),
                user: ADMIN.into(),
                ..Default::default()
            },
            &platform::secret::hash_app_key(key.expose()),
        )
        .await
        .unwrap();
    let client_tls = net::tls::client_config(
        &net::Trust::pinned_from_strs(&[&prepared.identity.fingerprint]).unwrap(),
        &[net::tls::ALPN_HTTP1],
    )
    .unwrap();
    let platform = prepared.platform.clone();
    let task = tokio::spawn(prepared.serve(listener));
    Running {
        base_url: format!("https://{addr}"),
        ws_url: format!("wss://{addr}/Thingworx/WS"),
        client_tls,
        app_key: key.expose().to_owned(),
        platform,
        shutdown,
        task: Some(task),
        _data_dir: data_dir,
    }
}

impl Running {
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.client_tls).clone())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Stops the platform and waits for it.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("platform stops")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
