//! The whole edge chain on real sockets: a real platform (TLS), tether-ems and
//! tether-lsr running the shipped example in docs/examples/lsr.
//!
//! Timers are short (ping, keep-alive, retries, tasks) so that reconnections and
//! re-registrations happen within a second or two.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::{ADMIN_USER, PlatformHandle, PlatformOptions, spawn_platform};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Ems, WAIT};

/// The name the EMS binds itself under.
pub const GATEWAY: &str = "EmsGateway";
/// The example's Lua thing.
pub const THING: &str = "LsrThing";

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, target).unwrap();
        }
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn trace_from_env() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The shipped example directory.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/lsr")
}

/// A platform with the gateway and the Lua thing created.
pub async fn start_platform() -> PlatformHandle {
    trace_from_env();
    spawn_platform(PlatformOptions {
        things: vec![GATEWAY.into(), THING.into()],
        ..Default::default()
    })
    .await
    .unwrap()
}

/// EMS configuration for a platform at `addr`, fast timers, the gateway auto-bound.
/// `extra` is merged at the top level (JSON members without braces, may be empty).
pub fn ems_config(addr: SocketAddr, app_key: &str, fingerprint: &str, extra: &str) -> String {
    let sep = if extra.trim().is_empty() { "" } else { "," };
    format!(
        r#"{{
  "ws_servers": [{{"host": "127.0.0.1", "port": {port}}}],
  "appKey": "{app_key}",
  "certificates": {{"pinned_sha256": ["{fingerprint}"]}},
  "ws_connection": {{"ping_rate": 300, "pingpong_timeout": 1000,
     "connect_retry_interval": 50, "connect_timeout": 2000, "msg_timeout": 5000}},
  "auto_bind": [{{"name": "{GATEWAY}", "gateway": true}}]{sep}
  {extra}
}}"#,
        port = addr.port(),
    )
}

/// A running tether-lsr on a copy of the example directory.
pub struct Lsr {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), lsr::Error>>,
}

impl Lsr {
    /// Starts the example pointed at the EMS REST port `ems_port`, fast keep-alive,
    /// registration retry, tasks and scans; `extra_lua` is appended to config.lua and
    /// `extra_template` to the example template (test services).
    pub async fn start(ems_port: u16, extra_lua: &str, extra_template: &str) -> Lsr {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&example_dir(), dir.path());
        let cfg_path = dir.path().join("config.lua");
        let mut lua = std::fs::read_to_string(&cfg_path).unwrap();
        lua.push_str(&format!(
            "\nscripts.rap_port = \"{ems_port}\"\n\
             scripts.LsrThing.keepAliveRate = 200\n\
             scripts.LsrThing.registerRetryRate = 100\n\
             scripts.LsrThing.taskRate = 100\n\
             scripts.LsrThing.scanRate = 100\n\
             scripts.LsrThing.scanRateResolution = 50\n\
             scripts.PlainThing.register = false\n{extra_lua}\n"
        ));
        std::fs::write(&cfg_path, lua).unwrap();
        if !extra_template.is_empty() {
            let t = dir.path().join("custom/templates/example.lua");
            let mut s = std::fs::read_to_string(&t).unwrap();
            s.push('\n');
            s.push_str(extra_template);
            std::fs::write(&t, s).unwrap();
        }
        let config = lsr::Config::load(&cfg_path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(lsr::run(config, listener, stop.clone()));
        Lsr {
            dir,
            addr,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("LSR stops")
            .unwrap()
            .unwrap();
    }
}

impl Ems {
    /// Starts an EMS whose local REST listens on `rest` (a restart on the same port).
    pub async fn start_on(json: &str, rest: SocketAddr) -> Ems {
        let loaded = ems::config::parse(json, Path::new("/tmp")).unwrap_or_else(|e| panic!("{e}"));
        let listener = bind_again(rest).await;
        let shutdown = CancellationToken::new();
        let join = tokio::spawn(ems::run(loaded.config, listener, shutdown.clone()));
        Ems {
            rest,
            shutdown,
            join,
        }
    }
}

/// Binds `addr` again after its previous owner stopped (retrying while the port
/// is still being released, with a deadline).
pub async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "cannot bind {addr} again: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A platform restarted on an existing data directory and address (same
/// certificate, same users and app keys).
pub struct Restarted {
    pub platform: platform::Platform,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), platform::RunError>>,
}

impl Restarted {
    pub async fn start(addr: SocketAddr, data_dir: &Path) -> Restarted {
        let mut config = platform::Config::with_data_dir(data_dir);
        config.listen = addr;
        config.shutdown_grace = Duration::from_secs(3);
        let listener = bind_again(addr).await;
        let shutdown = CancellationToken::new();
        let prepared = platform::prepare(config, shutdown.clone()).await.unwrap();
        assert!(
            prepared
                .platform
                .store()
                .user_with_hash(ADMIN_USER)
                .await
                .unwrap()
                .is_some(),
            "the data directory keeps the administrator"
        );
        let platform = prepared.platform.clone();
        let task = tokio::spawn(prepared.serve(listener));
        Restarted {
            platform,
            shutdown,
            task,
        }
    }

    pub async fn shutdown(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("platform stops")
            .unwrap()
            .unwrap();
    }
}

/// Waits until `thing` is bound (or, with `bound == false`, unbound) on `platform`.
pub async fn wait_bound(platform: &platform::Platform, thing: &str, bound: bool) {
    super::eventually(
        &format!("{thing} {}", if bound { "bound" } else { "unbound" }),
        || {
            let pf = platform.clone();
            let thing = thing.to_owned();
            async move { (pf.registry().binding(&thing).is_some() == bound).then_some(()) }
        },
    )
    .await;
}

/// The platform's stored value of `thing.prop`, if any.
pub async fn stored(
    platform: &platform::Platform,
    thing: &str,
    prop: &str,
) -> Option<alwayson::Primitive> {
    let t = platform.stored_table(thing, Some(prop)).await.ok()??;
    t.value(prop).cloned()
}

/// A property push body for the EMS local REST (UpdateSubscribedPropertyValues).
pub fn push_body(name: &str, base_type: &str, value: &serde_json::Value, time_ms: i64) -> String {
    serde_json::json!({
        "dataShape": {"fieldDefinitions": {"values": {"name": "values", "baseType": "INFOTABLE"}}},
        "rows": [{"values": {
            "dataShape": {"fieldDefinitions": {
                "name": {"name": "name", "baseType": "STRING"},
                "value": {"name": "value", "baseType": "VARIANT"},
                "time": {"name": "time", "baseType": "DATETIME"},
                "quality": {"name": "quality", "baseType": "STRING"}}},
            "rows": [{"name": name, "value": {"baseType": base_type, "value": value},
                      "time": time_ms, "quality": "GOOD"}]
        }}]
    })
    .to_string()
}
