//! The quickstart's demo edge, in this process: a tether-ems connected to the
//! quickstart platform with the demo app key (pinned to the generated
//! certificate) and a tether-lsr running the shipped example template
//! (docs/examples/lsr, embedded in the binary) as the thing `DemoLsrThing`.
//!
//! Files in `<data dir>/demo-edge/`: `app-key` (the demo edge's key, mode 0600, as
//! an EMS keeps it in its config.json), `lsr/config.lua` and
//! `lsr/custom/templates/example.lua` (both rewritten at every start).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use platform::quickstart::{ADMIN_USER, DEMO_EMS, DEMO_LSR_THING};
use platform::secret;
use tokio::net::TcpListener;

/// The example template, shipped inside the binary.
const EXAMPLE_TEMPLATE: &str =
    include_str!("../../../docs/examples/lsr/custom/templates/example.lua");

/// How long the demo EMS and LSR get to stop after shutdown.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A running demo edge.
pub struct DemoEdge {
    /// The EMS local REST address.
    pub ems_rest: SocketAddr,
    /// The LSR's HTTP address.
    pub lsr: SocketAddr,
    /// The file holding the demo edge's app key.
    pub app_key_file: PathBuf,
    ems: tokio::task::JoinHandle<()>,
    lsr_task: tokio::task::JoinHandle<()>,
}

impl DemoEdge {
    /// Waits (bounded) for the EMS and the LSR to stop after the shutdown token
    /// given to [`start`] was cancelled.
    pub async fn wait(self) {
        for task in [self.lsr_task, self.ems] {
            if tokio::time::timeout(STOP_WAIT, task).await.is_err() {
                tracing::warn!("demo edge did not stop in time");
            }
        }
    }
}

/// Writes `text` to `path`, readable by the owner only (Unix).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The demo edge's app key. At first run it is the printed demo key, saved; later
/// the saved one is read. With none saved (a data directory from before the demo
/// edge existed) a new key for `Demo*` is created and saved.
async fn app_key(
    store: &platform::Store,
    dir: &Path,
    first_run_key: Option<&str>,
) -> anyhow::Result<(String, PathBuf)> {
    let path = dir.join("app-key");
    if let Some(k) = first_run_key {
        write_private(&path, k)?;
        return Ok((k.to_owned(), path));
    }
    match tokio::fs::read_to_string(&path).await {
        Ok(k) if !k.trim().is_empty() => return Ok((k.trim().to_owned(), path)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let key = secret::generate_app_key();
    store
        .create_app_key(
            &platform::model::NewAppKey {
                name: format!("demo-ems-{}", secret::random_token(6)),
                user: ADMIN_USER.into(),
                expires_at: None,
                allowed_addresses: Vec::new(),
                thing_patterns: vec!["Demo*".into()],
            },
            &secret::hash_app_key(key.expose()),
        )
        .await
        .context("cannot create the demo edge's app key")?;
    write_private(&path, key.expose())?;
    Ok((key.expose().to_owned(), path))
}

/// The EMS configuration (config.json text) for the platform at `platform_addr`.
fn ems_json(platform_addr: SocketAddr, app_key: &str, fingerprint: &str) -> String {
    serde_json::json!({
        "ws_servers": [{"host": "127.0.0.1", "port": platform_addr.port()}],
        "appKey": app_key,
        "certificates": {"pinned_sha256": [fingerprint]},
        "ws_connection": {"connect_retry_interval": 500},
        "auto_bind": [{"name": DEMO_EMS, "gateway": true}],
        // The demo EMS's `ssh` interface: only this machine's sshd may be reached.
        "tunnel": {"allowed_targets": ["127.0.0.1:22"]},
    })
    .to_string()
}

/// The LSR's config.lua, pointed at the EMS REST port `ems_port`.
fn lsr_config(ems_port: u16) -> String {
    format!(
        r#"-- Written by `tether-platform quickstart` at every start.
scripts.log_level = "INFO"
scripts.rap_host = "127.0.0.1"
scripts.rap_port = "{ems_port}"
scripts.rap_ssl = false
scripts.script_resource_host = "127.0.0.1"
scripts.script_resource_ssl = false
scripts.script_resource_authenticate = false

-- The example template from docs/examples/lsr (custom/templates/example.lua).
scripts.{DEMO_LSR_THING} = {{
    file = "thing.lua",
    template = "example",
    scanRate = 1000,
    taskRate = 5000,
    keepAliveRate = 10000,
    registerRetryRate = 1000,
}}
"#
    )
}

/// Creates the demo things if needed, writes the demo files and starts the EMS and
/// the LSR on 127.0.0.1 (free ports) until `shutdown` is cancelled.
pub async fn start(
    store: &platform::Store,
    data_dir: &Path,
    platform_addr: SocketAddr,
    fingerprint: &str,
    first_run_key: Option<&str>,
    shutdown: net::CancellationToken,
) -> anyhow::Result<DemoEdge> {
    platform::quickstart::ensure_demo_edge_things(store)
        .await
        .context("cannot create the demo things")?;
    let dir = data_dir.join("demo-edge");
    let templates = dir.join("lsr").join("custom").join("templates");
    tokio::fs::create_dir_all(&templates)
        .await
        .with_context(|| format!("cannot create {}", templates.display()))?;
    let (key, app_key_file) = app_key(store, &dir, first_run_key).await?;

    let ems_config = ems::config::parse(&ems_json(platform_addr, &key, fingerprint), &dir)
        .map_err(|e| anyhow::anyhow!("demo EMS configuration: {e}"))?;
    let ems_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("demo EMS listener")?;
    let ems_rest = ems_listener.local_addr()?;

    let template = templates.join("example.lua");
    tokio::fs::write(&template, EXAMPLE_TEMPLATE)
        .await
        .with_context(|| format!("cannot write {}", template.display()))?;
    let lsr_path = dir.join("lsr").join("config.lua");
    tokio::fs::write(&lsr_path, lsr_config(ems_rest.port()))
        .await
        .with_context(|| format!("cannot write {}", lsr_path.display()))?;
    let lsr_config = tokio::task::spawn_blocking({
        let p = lsr_path.clone();
        move || lsr::Config::load(&p)
    })
    .await?
    .map_err(|e| anyhow::anyhow!("demo LSR configuration: {e}"))?;
    let lsr_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("demo LSR listener")?;
    let lsr = lsr_listener.local_addr()?;

    let ems_stop = shutdown.child_token();
    let lsr_stop = shutdown.child_token();
    let ems = tokio::spawn(async move {
        if let Err(e) = ems::run(ems_config.config, ems_listener, ems_stop).await {
            tracing::error!(%e, "demo EMS stopped");
        }
    });
    let lsr_task = tokio::spawn(async move {
        if let Err(e) = lsr::run(lsr_config, lsr_listener, lsr_stop).await {
            tracing::error!(%e, "demo LSR stopped");
        }
    });
    Ok(DemoEdge {
        ems_rest,
        lsr,
        app_key_file,
        ems,
        lsr_task,
    })
}
