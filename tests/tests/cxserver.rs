//! The connection server end to end (issue #7): a real platform, tether-cxserver,
//! tether-ems and tether-lsr (and OpenSSH for the remote session), the edges
//! reaching the platform only through the connection server's links.
//! Timeouts are short so every test takes seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cxserver::{Config, CxServer, EdgeSettings, Listeners, PlatformSettings, Secret, Status, Tls};
use platform::model::{Protocol, RemoteInterface, Role};
use test_support::{PlatformHandle, PlatformOptions, TestEdge, spawn_platform};
use tether_e2e::Sshd;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The EMS binds itself under this name (a gateway).
const GATEWAY: &str = "EmsGateway";
/// The LSR example's Lua thing.
const LUA_THING: &str = "LsrThing";
/// Deadline of every wait.
const WAIT: Duration = Duration::from_secs(20);

/// Polls `cond` every 10 ms until it holds, failing after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !cond().await {
        if started.elapsed() > within {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(started.elapsed())
}

fn bound(p: &platform::Platform, thing: &str) -> bool {
    p.registry().binding(thing).is_some()
}

async fn is_connected(p: &platform::Platform, thing: &str) -> bool {
    p.store()
        .thing(thing)
        .await
        .ok()
        .flatten()
        .is_some_and(|t| t.is_connected)
}

/// A `connection-server` user and its app key (as `tether-platform admin` makes them).
async fn cx_key(p: &PlatformHandle) -> anyhow::Result<String> {
    let hash = platform::secret::hash_password("unused-cx-password")?;
    p.platform
        .store()
        .create_user("cxserver", &hash, Role::ConnectionServer)
        .await?;
    p.create_app_key("cxserver-key", "cxserver", &[]).await
}

/// A running connection server.
struct Cx {
    addr: SocketAddr,
    fingerprint: String,
    tls: Arc<net::rustls::ClientConfig>,
    status: Status,
    metrics: Arc<cxserver::Metrics>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Cx {
    /// Starts a connection server in front of `p` (links authenticated with
    /// `key`), with short timeouts; `tweak` adjusts the configuration.
    async fn start(
        p: &PlatformHandle,
        key: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Cx> {
        let mut upstream = PlatformSettings::new(
            url::Url::parse(&format!("wss://{}", p.addr))?,
            Secret::new(key),
        );
        upstream.reconnect_min = Duration::from_millis(50);
        upstream.reconnect_max = Duration::from_millis(300);
        upstream.connect_timeout = Duration::from_secs(5);
        upstream.auth_timeout = Duration::from_secs(5);
        let mut config = Config {
            edge: EdgeSettings {
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                ..EdgeSettings::default()
            },
            platform: upstream,
            health_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            shutdown_grace: Duration::from_secs(2),
        };
        tweak(&mut config);
        let cert = net::SelfSigned::generate(&["localhost", "127.0.0.1"])?;
        let tls = Tls {
            edge: cert.server_config(&[b"http/1.1"])?,
            upstream: p.client_tls.clone(),
        };
        let edge_tls = net::tls::client_config(
            &net::Trust::Pinned(vec![cert.fingerprint()]),
            &[b"http/1.1"],
        )?;
        let edge = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let health = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = edge.local_addr()?;
        let server = CxServer::new(config, tls);
        let (status, metrics) = (server.status(), server.metrics());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = server.run(Listeners { edge, health }, token).await {
                eprintln!("connection server failed: {e}");
            }
        });
        let cx = Cx {
            addr,
            fingerprint: cert.fingerprint().to_string(),
            tls: edge_tls,
            status,
            metrics,
            stop,
            task,
        };
        let s = cx.status.clone();
        eventually(WAIT, "connection-server links up", || {
            let s = s.clone();
            async move { s.links_up() >= 1 }
        })
        .await?;
        Ok(cx)
    }

    fn ws_url(&self) -> String {
        format!("wss://{}/Thingworx/WS", self.addr)
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// An in-process tether-ems.
struct Ems {
    rest: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), ems::RunError>>,
}

impl Ems {
    /// An EMS connected to the connection server (pinned to its certificate),
    /// binding the gateway; `extra` adds top-level JSON members (leading comma).
    async fn start(cx: &Cx, app_key: &str, auto_bind: &str, extra: &str) -> anyhow::Result<Ems> {
        let json = format!(
            r#"{{
  "ws_servers": [{{"host": "127.0.0.1", "port": {port}}}],
  "appKey": "{app_key}",
  "certificates": {{"pinned_sha256": ["{fp}"]}},
  "ws_connection": {{"ping_rate": 300, "pingpong_timeout": 1000,
     "connect_retry_interval": 50, "connect_timeout": 2000, "msg_timeout": 5000}},
  "auto_bind": [{{"name": "{auto_bind}", "gateway": true}}]{extra}
}}"#,
            port = cx.addr.port(),
            fp = cx.fingerprint,
        );
        let loaded =
            ems::config::parse(&json, Path::new("/tmp")).map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let rest = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(ems::run(loaded.config, listener, stop.clone()));
        Ok(Ems { rest, stop, task })
    }
}

/// An in-process tether-lsr running the shipped example (docs/examples/lsr).
struct Lsr {
    _dir: tempfile::TempDir,
    stop: CancellationToken,
    task: JoinHandle<Result<(), lsr::Error>>,
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let p = e?.path();
        let target = to.join(p.file_name().context("file name")?);
        if p.is_dir() {
            copy_dir(&p, &target)?;
        } else {
            std::fs::copy(&p, target)?;
        }
    }
    Ok(())
}

impl Lsr {
    async fn start(ems_rest: SocketAddr) -> anyhow::Result<Lsr> {
        let dir = tempfile::tempdir()?;
        let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/lsr");
        copy_dir(&example, dir.path())?;
        let cfg_path = dir.path().join("config.lua");
        let mut lua = std::fs::read_to_string(&cfg_path)?;
        lua.push_str(&format!(
            "\nscripts.rap_port = \"{}\"\n\
             scripts.LsrThing.keepAliveRate = 200\n\
             scripts.LsrThing.registerRetryRate = 100\n\
             scripts.PlainThing.register = false\n",
            ems_rest.port()
        ));
        std::fs::write(&cfg_path, lua)?;
        let config = lsr::Config::load(&cfg_path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(lsr::run(config, listener, stop.clone()));
        Ok(Lsr {
            _dir: dir,
            stop,
            task,
        })
    }
}

/// Platform (things `EmsGateway`, `LsrThing`, `Pump1`, `Pump2`) + connection
/// server + EMS + LSR, `LsrThing` bound through the connection server.
struct Chain {
    platform: PlatformHandle,
    cx: Cx,
    ems: Ems,
    lsr: Lsr,
}

async fn chain(opts: PlatformOptions, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Chain> {
    let platform = spawn_platform(PlatformOptions {
        things: vec![
            GATEWAY.into(),
            LUA_THING.into(),
            "Pump1".into(),
            "Pump2".into(),
        ],
        ..opts
    })
    .await?;
    let cx_key = cx_key(&platform).await?;
    let cx = Cx::start(&platform, &cx_key, tweak).await?;
    let ems = Ems::start(&cx, &platform.app_key, GATEWAY, "").await?;
    let lsr = Lsr::start(ems.rest).await?;
    let pf = platform.platform.clone();
    eventually(WAIT, "LsrThing bound through the connection server", || {
        let pf = pf.clone();
        async move { bound(&pf, LUA_THING) && bound(&pf, GATEWAY) }
    })
    .await?;
    Ok(Chain {
        platform,
        cx,
        ems,
        lsr,
    })
}

/// GET a property over the platform's ThingWorx REST API.
async fn rest_get(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    thing: &str,
    prop: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let r = http
        .get(format!("{base}/Thingworx/Things/{thing}/Properties/{prop}"))
        .header("appKey", key)
        .header("Accept", "application/json")
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_reads_and_writes_a_lua_property_through_the_connection_server() -> anyhow::Result<()>
{
    let c = chain(PlatformOptions::default(), |_| {}).await?;
    let p = &c.platform;
    // The binding is a virtual edge on a connection-server link.
    let b = p.platform.registry().binding(LUA_THING).context("bound")?;
    assert!(b.conn.is_virtual(), "{:?}", b.conn);
    assert_ne!(b.conn.endpoint_id(), 0);
    // The registry holds the binding a moment before the store's isConnected
    // is written (the BIND is answered after both).
    let pf = p.platform.clone();
    eventually(WAIT, "isConnected stored", || {
        let pf = pf.clone();
        async move { is_connected(&pf, LUA_THING).await }
    })
    .await?;
    assert_eq!(
        p.platform.registry().connection_count(),
        1,
        "only the EMS, via the link"
    );

    let http = p.http_client()?;
    let (status, v) = rest_get(&http, &p.base_url, &p.app_key, LUA_THING, "Temperature").await?;
    assert_eq!(status, 200, "{v}");
    assert!(v["rows"][0]["Temperature"].is_number(), "{v}");
    // A write goes to the Lua script and reads back.
    let r = http
        .put(p.url("/Thingworx/Things/LsrThing/Properties/Temperature"))
        .header("appKey", &p.app_key)
        .header("content-type", "application/json")
        .body(r#"{"Temperature": 42.25}"#)
        .send()
        .await?;
    assert!(r.status().is_success(), "{}", r.text().await?);
    let (status, v) = rest_get(&http, &p.base_url, &p.app_key, LUA_THING, "Temperature").await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"][0]["Temperature"].as_f64(), Some(42.25), "{v}");
    // The connection server relayed it (its own counters).
    assert!(c.cx.metrics.to_platform.messages.get() > 0);
    assert!(c.cx.metrics.to_edge.messages.get() > 0);

    c.lsr.stop.cancel();
    c.ems.stop.cancel();
    let _ = tokio::time::timeout(WAIT, c.lsr.task).await;
    let _ = tokio::time::timeout(WAIT, c.ems.task).await;
    c.cx.stop().await;
    c.platform.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remote_session_ssh_works_through_the_connection_server() -> anyhow::Result<()> {
    tether_e2e::require_openssh()?;
    let sshd = Sshd::start().await?;
    let platform = spawn_platform(PlatformOptions {
        things: vec!["Pump1".into()],
        ..PlatformOptions::default()
    })
    .await?;
    platform
        .platform
        .store()
        .put_interface(
            "Pump1",
            &RemoteInterface {
                name: "ssh".into(),
                host: "127.0.0.1".into(),
                port: sshd.port,
                protocol: Protocol::Ssh,
                description: String::new(),
            },
        )
        .await?;
    let key = cx_key(&platform).await?;
    let cx = Cx::start(&platform, &key, |_| {}).await?;
    let extra = format!(
        r#", "tunnel": {{"allowed_targets": ["127.0.0.1:{}"], "max_concurrent": 8}}"#,
        sshd.port
    );
    let ems = Ems::start(&cx, &platform.app_key, "Pump1", &extra).await?;
    let pf = platform.platform.clone();
    eventually(WAIT, "Pump1 bound through the connection server", || {
        let pf = pf.clone();
        async move { bound(&pf, "Pump1") }
    })
    .await?;
    assert!(
        platform
            .platform
            .registry()
            .binding("Pump1")
            .context("bound")?
            .conn
            .is_virtual()
    );

    // The RAC talks to the platform; the EMS only to the connection server.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let stop = CancellationToken::new();
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let notify: rac::Notify = Arc::new(move |n| {
        let _ = tx.send(n);
    });
    let join = rac::Join::Create {
        platform: url::Url::parse(&platform.base_url)?,
        thing: "Pump1".into(),
        interface: "ssh".into(),
        credentials: rac::Credentials::AppKey(platform.app_key.clone()),
    };
    let opts = rac::RunOptions {
        trust: net::Trust::pinned_from_strs(&[&platform.fingerprint])?,
        ..rac::RunOptions::default()
    };
    let rac_task = tokio::spawn(rac::listen_on(join, listener, opts, stop.clone(), notify));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, notices.recv()).await {
            Ok(Some(rac::Notice::Joined { .. })) => break,
            Ok(Some(_)) => continue,
            Ok(None) => bail!("the RAC stopped before joining: {:?}", rac_task.await),
            Err(_) => bail!("the RAC did not join within {WAIT:?}"),
        }
    }
    let (ok, out, err) = sshd.ssh(port, "echo through-cx").await?;
    assert!(ok, "ssh failed: {err}");
    assert_eq!(out.trim(), "through-cx");
    // The edge's tunnel went through the connection server's relay.
    assert!(
        cx.metrics.tunnels_opened.get() >= 1,
        "no tunnel relayed by the connection server"
    );
    assert!(cx.metrics.tunnel_bytes_up.get() > 0 && cx.metrics.tunnel_bytes_down.get() > 0);

    stop.cancel();
    let _ = tokio::time::timeout(WAIT, rac_task).await;
    ems.stop.cancel();
    let _ = tokio::time::timeout(WAIT, ems.task).await;
    cx.stop().await;
    platform.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_edge_sockets_unbind_their_things_within_the_idle_timeout() -> anyhow::Result<()> {
    let idle = Duration::from_millis(1500);
    let c = chain(PlatformOptions::default(), |cfg| {
        cfg.edge.idle_timeout = idle
    })
    .await?;
    let pf = c.platform.platform.clone();

    // A socket that goes silent (no FIN, no pings): the idle timeout ends it.
    let mut silent =
        TestEdge::connect_auth(&c.cx.ws_url(), c.cx.tls.clone(), &c.platform.app_key).await?;
    let r = silent.bind(&["Pump1"]).await?;
    assert_eq!(r.header.code, alwayson::Code::SUCCESS);
    assert!(is_connected(&pf, "Pump1").await);
    let went_silent = Instant::now();
    let p2 = pf.clone();
    eventually(
        idle + Duration::from_secs(3),
        "Pump1 disconnected after the idle timeout",
        || {
            let p2 = p2.clone();
            async move { !is_connected(&p2, "Pump1").await }
        },
    )
    .await?;
    let took = went_silent.elapsed();
    assert!(
        took >= idle - Duration::from_millis(100),
        "unbound before the idle timeout: {took:?}"
    );
    assert!(!bound(&pf, "Pump1"));
    let closed = silent.wait_closed(WAIT).await?;
    assert_eq!(closed.map(|c| c.0), Some(1000), "closed for idleness");
    eprintln!(
        "silent socket: things disconnected {took:?} after its last frame (idle timeout {idle:?})"
    );

    // The EMS process dies (its sockets drop): the gateway and the Lua thing go.
    c.ems.task.abort();
    c.lsr.task.abort();
    let died = Instant::now();
    let p2 = pf.clone();
    eventually(
        idle + Duration::from_secs(3),
        "EMS things disconnected",
        || {
            let p2 = p2.clone();
            async move { !is_connected(&p2, LUA_THING).await && !is_connected(&p2, GATEWAY).await }
        },
    )
    .await?;
    eprintln!(
        "EMS killed: its things disconnected after {:?}",
        died.elapsed()
    );
    assert!(!bound(&pf, LUA_THING));
    // The link itself is still up for other edges.
    assert!(c.cx.status.links_up() >= 1);
    c.cx.stop().await;
    c.platform.shutdown().await?;
    Ok(())
}

/// A platform on an existing data directory and address (a restart).
async fn restart_platform(
    addr: SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<(
    platform::Platform,
    CancellationToken,
    JoinHandle<Result<(), platform::RunError>>,
)> {
    let mut config = platform::Config::with_data_dir(data_dir);
    config.listen = addr;
    config.shutdown_grace = Duration::from_secs(3);
    let deadline = Instant::now() + WAIT;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => bail!("cannot bind {addr} again: {e}"),
        }
    };
    let stop = CancellationToken::new();
    let prepared = platform::prepare(config, stop.clone()).await?;
    let platform = prepared.platform.clone();
    let task = tokio::spawn(prepared.serve(listener));
    Ok((platform, stop, task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn platform_restart_rebinds_everything_through_the_connection_server() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let c = chain(
        PlatformOptions {
            data_dir: Some(data.path().to_owned()),
            ..PlatformOptions::default()
        },
        |_| {},
    )
    .await?;
    // A second edge, a raw one, also behind the connection server.
    let edge =
        TestEdge::connect_auth(&c.cx.ws_url(), c.cx.tls.clone(), &c.platform.app_key).await?;
    assert_eq!(
        edge.bind(&["Pump2"]).await?.header.code,
        alwayson::Code::SUCCESS
    );
    let (addr, key) = (c.platform.addr, c.platform.app_key.clone());
    let http = c.platform.http_client()?;
    let base = c.platform.base_url.clone();
    c.platform.shutdown().await?;
    let s = c.cx.status.clone();
    eventually(WAIT, "links down while the platform is away", || {
        let s = s.clone();
        async move { s.links_up() == 0 }
    })
    .await?;

    let restarted = Instant::now();
    let (pf, stop, task) = restart_platform(addr, data.path()).await?;
    let p2 = pf.clone();
    let took = eventually(WAIT, "every thing re-bound after the restart", || {
        let p2 = p2.clone();
        async move {
            bound(&p2, LUA_THING)
                && bound(&p2, GATEWAY)
                && bound(&p2, "Pump2")
                && is_connected(&p2, LUA_THING).await
                && is_connected(&p2, "Pump2").await
        }
    })
    .await?;
    eprintln!(
        "platform restarted: everything re-bound {took:?} after it came back ({:?} in all)",
        restarted.elapsed()
    );
    // The same edges (sockets never dropped) answer through the new links.
    let (status, v) = rest_get(&http, &base, &key, LUA_THING, "Temperature").await?;
    assert_eq!(status, 200, "{v}");
    assert!(v["rows"][0]["Temperature"].is_number(), "{v}");
    assert!(
        pf.registry()
            .binding("Pump2")
            .context("bound")?
            .conn
            .is_virtual()
    );

    c.lsr.stop.cancel();
    c.ems.stop.cancel();
    let _ = tokio::time::timeout(WAIT, c.ems.task).await;
    c.cx.stop().await;
    stop.cancel();
    let _ = tokio::time::timeout(WAIT, task).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_socket_that_never_sends_auth_is_closed_after_the_auth_timeout() -> anyhow::Result<()> {
    let platform = spawn_platform(PlatformOptions::default()).await?;
    let key = cx_key(&platform).await?;
    let timeout = Duration::from_millis(700);
    let cx = Cx::start(&platform, &key, |cfg| {
        cfg.edge.auth_request_timeout = timeout
    })
    .await?;
    let started = Instant::now();
    let mut mute = TestEdge::connect(&cx.ws_url(), cx.tls.clone(), Some(&platform.app_key)).await?;
    let closed = mute.wait_closed(WAIT).await?;
    let took = started.elapsed();
    let (code, reason) = closed.context("a close frame")?;
    assert_eq!(code, 1008, "{reason}");
    assert!(
        reason.contains("authentication request timeout"),
        "{reason}"
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(cx.metrics.auth_timeouts.get(), 1);
    // An edge that does authenticate is fine on the same server.
    let ok = TestEdge::connect_auth(&cx.ws_url(), cx.tls.clone(), &platform.app_key).await?;
    assert_eq!(
        ok.bind(&["Pump1"]).await?.header.code,
        alwayson::Code::SUCCESS
    );
    cx.stop().await;
    platform.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_silent_sockets_do_not_stop_a_real_edge() -> anyhow::Result<()> {
    let platform = spawn_platform(PlatformOptions {
        things: vec![GATEWAY.into()],
        ..PlatformOptions::default()
    })
    .await?;
    let key = cx_key(&platform).await?;
    let cx = Cx::start(&platform, &key, |cfg| {
        cfg.edge.auth_request_timeout = Duration::from_secs(60);
        cfg.edge.handshake_timeout = Duration::from_secs(60);
    })
    .await?;
    // 1 000 sockets that open and say nothing: 500 TLS websockets upgraded
    // but never sending AUTH, 500 TCP connections that never start TLS.
    let started = Instant::now();
    let mut silent_ws = Vec::new();
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..500 {
        let (url, tls) = (cx.ws_url(), cx.tls.clone());
        pending.spawn(async move { TestEdge::connect(&url, tls, None).await });
        if i % 32 == 31 {
            while let Some(r) = pending.join_next().await {
                silent_ws.push(r??);
            }
        }
    }
    while let Some(r) = pending.join_next().await {
        silent_ws.push(r??);
    }
    let mut silent_tcp = Vec::new();
    for _ in 0..500 {
        silent_tcp.push(TcpStream::connect(cx.addr).await?);
    }
    eprintln!("1000 silent sockets opened in {:?}", started.elapsed());
    let m = cx.metrics.clone();
    eventually(WAIT, "500 upgraded silent sockets", || {
        let m = m.clone();
        async move { m.connections.get() >= 500 }
    })
    .await?;

    // A real EMS connects and binds while they are all open.
    let connecting = Instant::now();
    let ems = Ems::start(&cx, &platform.app_key, GATEWAY, "").await?;
    let pf = platform.platform.clone();
    let took = eventually(
        Duration::from_secs(10),
        "the EMS bound despite 1000 silent sockets",
        || {
            let pf = pf.clone();
            async move { bound(&pf, GATEWAY) }
        },
    )
    .await?;
    eprintln!(
        "EMS bound {took:?} after starting ({:?})",
        connecting.elapsed()
    );
    // The silent ones are still there, none authenticated.
    assert!(
        cx.metrics.connections.get() >= 501,
        "{}",
        cx.metrics.connections.get()
    );
    assert_eq!(cx.metrics.auth_timeouts.get(), 0);
    assert_eq!(platform.platform.registry().connection_count(), 1);
    drop(silent_tcp);
    drop(silent_ws);
    ems.stop.cancel();
    let _ = tokio::time::timeout(WAIT, ems.task).await;
    cx.stop().await;
    platform.shutdown().await?;
    Ok(())
}
