//! `spawn_platform`: a real platform on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use platform::model::{NewAppKey, NewThing, Role, Template};
use platform::{Config, Platform};

/// The administrator every spawned platform has.
pub const ADMIN_USER: &str = "admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// How to configure a spawned platform. `Default` gives fast timeouts
/// suited to tests except where noted.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Reuse this data directory (restart tests); else a fresh temp dir.
    pub data_dir: Option<PathBuf>,
    /// Things to create (template RemoteThing) if absent.
    pub things: Vec<String>,
    /// Thing patterns of the edge app key (empty = any).
    pub key_patterns: Vec<String>,
    pub auth_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_message_size: usize,
    pub auth_failures_per_window: u32,
    pub max_connections: usize,
    /// `remote_access.legacy_num_connects`.
    pub legacy_num_connects: u32,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        PlatformOptions {
            data_dir: None,
            things: vec!["Pump1".into(), "Pump2".into()],
            key_patterns: Vec::new(),
            auth_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_message_size: 1 << 20,
            auth_failures_per_window: 1000,
            max_connections: 10_000,
            legacy_num_connects: broker::DEFAULT_LEGACY_NUM_CONNECTS,
        }
    }
}

/// A running platform.
pub struct PlatformHandle {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:port`
    pub base_url: String,
    /// `wss://127.0.0.1:port/Thingworx/WS`
    pub ws_url: String,
    /// SHA-256 fingerprint of the platform's certificate.
    pub fingerprint: String,
    /// A client TLS configuration pinned to that certificate (ALPN http/1.1).
    pub client_tls: Arc<rustls::ClientConfig>,
    pub admin_user: String,
    pub admin_password: String,
    /// An app key (user `admin`) for edges, named `edge`.
    pub app_key: String,
    pub data_dir: PathBuf,
    /// The platform's internal API (store, registry, `request`).
    pub platform: Platform,
    shutdown: net::CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), platform::RunError>>>,
    _tempdir: Option<tempfile::TempDir>,
}

fn admin_hash() -> anyhow::Result<String> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return Ok(h.clone());
    }
    let h = platform::secret::hash_password(ADMIN_PASSWORD)?;
    Ok(HASH.get_or_init(|| h).clone())
}

/// Starts a platform as the options say. On a reused data directory the
/// administrator is kept and a new edge app key is created.
pub async fn spawn_platform(opts: PlatformOptions) -> anyhow::Result<PlatformHandle> {
    let (data_dir, tempdir) = match &opts.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let mut config = Config::with_data_dir(&data_dir);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.alwayson.auth_timeout = opts.auth_timeout;
    config.alwayson.idle_timeout = opts.idle_timeout;
    config.alwayson.request_timeout = opts.request_timeout;
    config.alwayson.max_message_size = opts.max_message_size;
    config.alwayson.auth_failures_per_window = opts.auth_failures_per_window;
    config.alwayson.max_connections = opts.max_connections;
    config.remote_access.legacy_num_connects = opts.legacy_num_connects;
    config.shutdown_grace = Duration::from_secs(3);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = net::CancellationToken::new();
    let prepared = platform::prepare(config, shutdown.clone())
        .await
        .context("prepare platform")?;
    let store = prepared.platform.store().clone();
    if store.user_with_hash(ADMIN_USER).await?.is_none() {
        store
            .create_user(ADMIN_USER, &admin_hash()?, Role::Administrator)
            .await?;
    }
    for name in &opts.things {
        if store.thing(name).await?.is_none() {
            store
                .create_thing(&NewThing {
                    name: name.clone(),
                    identifier: None,
                    template: Template::RemoteThing,
                    description: String::new(),
                })
                .await?;
        }
    }
    let key = platform::secret::generate_app_key();
    let key_name = format!("edge-{}", platform::secret::random_token(6));
    store
        .create_app_key(
            &NewAppKey {
                name: key_name,
                user: ADMIN_USER.into(),
                expires_at: None,
                allowed_addresses: Vec::new(),
                thing_patterns: opts.key_patterns.clone(),
            },
            &platform::secret::hash_app_key(key.expose()),
        )
        .await?;
    let fingerprint = prepared.identity.fingerprint.clone();
    let client_tls = net::tls::client_config(
        &net::Trust::pinned_from_strs(&[&fingerprint])?,
        &[net::tls::ALPN_HTTP1],
    )?;
    let platform = prepared.platform.clone();
    let task = tokio::spawn(prepared.serve(listener));
    Ok(PlatformHandle {
        addr,
        base_url: format!("https://{addr}"),
        ws_url: format!("wss://{addr}/Thingworx/WS"),
        fingerprint,
        client_tls,
        admin_user: ADMIN_USER.into(),
        admin_password: ADMIN_PASSWORD.into(),
        app_key: key.expose().to_owned(),
        data_dir,
        platform,
        shutdown,
        task: Some(task),
        _tempdir: tempdir,
    })
}

impl PlatformHandle {
    /// An HTTP client trusting the platform's certificate.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls((*self.client_tls).clone())
            .timeout(Duration::from_secs(30))
            .build()?)
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Creates an app key for `user` with thing patterns, returning the key.
    pub async fn create_app_key(
        &self,
        name: &str,
        user: &str,
        patterns: &[&str],
    ) -> anyhow::Result<String> {
        let key = platform::secret::generate_app_key();
        self.platform
            .store()
            .create_app_key(
                &NewAppKey {
                    name: name.into(),
                    user: user.into(),
                    expires_at: None,
                    allowed_addresses: Vec::new(),
                    thing_patterns: patterns.iter().map(|p| p.to_string()).collect(),
                },
                &platform::secret::hash_app_key(key.expose()),
            )
            .await?;
        Ok(key.expose().to_owned())
    }

    /// Stops the platform and waits for it; keeps the data directory if it was given.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .context("platform did not stop")???;
        }
        Ok(())
    }

    /// Keeps the temp dir alive past shutdown (for restart tests), returning it.
    pub fn take_tempdir(&mut self) -> Option<tempfile::TempDir> {
        self._tempdir.take()
    }
}

impl Drop for PlatformHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
