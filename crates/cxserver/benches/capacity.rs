//! Capacity bench: idle authenticated + bound edges, memory per connection, set-up rate, and
//! platform → edge request throughput through the connection server.
//!
//! `cargo bench -p cxserver --bench capacity` (env `CXBENCH_N` = edges, default 10 000;
//! `CXBENCH_REQUESTS` = requests, default 20 000). The connection server runs in a child
//! process (this binary re-executed with `CXBENCH_ROLE=cx`) so its VmRSS is measured alone;
//! the platform and the edges run in this process. The platform is the fake one of
//! `tests/support` unless `CXBENCH_REAL=1`: then it is the real `platform` crate (SQLite in a
//! temp dir, things `T0..` created up front, a `connection-server` user for the links), so
//! every AUTH and BIND is checked and recorded as in production. Both processes run with the
//! soft open-file limit raised to the hard limit (through `sh -c 'ulimit -n …; exec …'`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alwayson::{Characteristic, Code};
use cxserver::{CxServer, Listeners, Secret, Tls};
use support::counting_alloc::{Counting, live_bytes};
use support::*;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOC: Counting = Counting;

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list
    }
    match std::env::var("CXBENCH_ROLE").as_deref() {
        Ok("cx") => child(),
        _ if std::env::var("CXBENCH_RAISED").is_err() => reexec_with_raised_limit(),
        _ => parent(),
    }
}

/// Re-executes this binary through `sh` with the soft open-file limit set to the hard one.
fn reexec_with_raised_limit() {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("ulimit -S -n \"$(ulimit -H -n)\"; exec \"$0\"")
        .arg(exe)
        .env("CXBENCH_RAISED", "1")
        .status()
        .unwrap();
    std::process::exit(status.code().unwrap_or(1));
}

fn open_file_limit() -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("?")
        .to_owned()
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The connection server process: reads the platform from the environment, prints its edge
/// port, runs until stdin closes.
fn child() {
    // CXBENCH_TRACING=1: install the binary's subscriber (info, spans recorded; output
    // discarded) to include per-connection span memory.
    if std::env::var("CXBENCH_TRACING").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::sink)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = url::Url::parse(&std::env::var("CXBENCH_PLATFORM").unwrap()).unwrap();
        let pin: net::Fingerprint = std::env::var("CXBENCH_PIN").unwrap().parse().unwrap();
        let mut config = test_config(url);
        config.platform.app_key = Secret::new(CX_KEY);
        config.edge.max_connections = 1_000_000;
        config.edge.idle_timeout = Duration::from_secs(3600);
        config.edge.auth_request_timeout = Duration::from_secs(30);
        let cert = net::SelfSigned::generate(&["127.0.0.1"]).unwrap();
        let upstream =
            net::tls::client_config(&net::Trust::Pinned(vec![pin]), &[b"http/1.1"]).unwrap();
        let tls = Tls {
            edge: cert.server_config(&[b"http/1.1"]).unwrap(),
            upstream,
        };
        let edge = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = edge.local_addr().unwrap().port();
        let server = CxServer::new(config, tls);
        let status = server.status();
        let shutdown = net::CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(server.run(Listeners { edge, health }, token));
        wait_for(Duration::from_secs(10), "links", || status.links_up() >= 2)
            .await
            .unwrap();
        println!("EDGE {port} {}", cert.sha256_fingerprint_hex);
        std::io::stdout().flush().unwrap();
        // Each stdin line asks for the live heap; EOF ends the server.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                println!("HEAP {}", live_bytes());
                std::io::stdout().flush().unwrap();
                line.clear();
            }
        })
        .await
        .unwrap();
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    });
}

fn parent() {
    let n = env_usize("CXBENCH_N", 10_000);
    let requests = env_usize("CXBENCH_REQUESTS", 20_000);
    let concurrency = env_usize("CXBENCH_CONCURRENCY", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        println!("open files: {}", open_file_limit());
        let platform = Arc::new(if std::env::var("CXBENCH_REAL").is_ok_and(|v| v == "1") {
            Upstream::Real(real_platform(n + 200).await)
        } else {
            Upstream::Fake(FakePlatform::start().await)
        });
        println!("platform: {}", platform.kind());
        // CXBENCH_WRAPPER (e.g. "heaptrack -o /tmp/cx") runs the server under a profiler.
        let exe = std::env::current_exe().unwrap();
        let mut command = match std::env::var("CXBENCH_WRAPPER") {
            Ok(w) if !w.trim().is_empty() => {
                let mut parts = w.split_whitespace();
                let mut c = Command::new(parts.next().unwrap());
                c.args(parts).arg(&exe);
                c
            }
            _ => Command::new(&exe),
        };
        let mut cx = command
            .env("CXBENCH_ROLE", "cx")
            .env("CXBENCH_PLATFORM", platform.url())
            .env("CXBENCH_PIN", platform.pin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = cx.id();
        let mut line = String::new();
        let mut out = BufReader::new(cx.stdout.take().unwrap());
        while !line.starts_with("EDGE ") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "server process ended");
        }
        let mut stdin = cx.stdin.take().unwrap();
        let mut heap = move || {
            writeln!(stdin, "heap").unwrap();
            let mut l = String::new();
            while !l.starts_with("HEAP ") {
                l.clear();
                assert!(out.read_line(&mut l).unwrap() > 0, "server process ended");
            }
            l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
        };
        let mut parts = line.split_whitespace().skip(1);
        let port: u16 = parts.next().unwrap().parse().unwrap();
        let fp: net::Fingerprint = parts.next().unwrap().parse().unwrap();
        let edge_tls = net::tls::client_config(&net::Trust::Pinned(vec![fp]), &[b"http/1.1"]).unwrap();
        let target = Cx {
            edge_addr: ([127, 0, 0, 1], port).into(),
            health_addr: ([127, 0, 0, 1], 0).into(),
            edge_tls,
            status: dummy_status(),
            metrics: Arc::new(cxserver::Metrics::new()),
            shutdown: net::CancellationToken::new(),
            task: tokio::spawn(async {}),
        };
        let target = Arc::new(target);

        // Warm-up: 200 edges, so the baseline includes runtime, TLS and allocator set-up.
        let warm = connect_many(&target, 0, 200, concurrency).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = vm_rss_kib(pid);
        let heap_before = heap();
        let cpu_before = cpu_seconds(pid);
        let own_cpu_before = cpu_seconds(std::process::id());
        let start = Instant::now();
        let edges = connect_many(&target, 200, n, concurrency).await;
        let setup = start.elapsed();
        let cx_cpu = cpu_seconds(pid) - cpu_before;
        let own_cpu = cpu_seconds(std::process::id()) - own_cpu_before;
        // Let the server settle (handshake buffers released), then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = vm_rss_kib(pid);
        let heap_after = heap();
        let per_conn = (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / n as f64;
        let heap_per_conn = heap_after.saturating_sub(heap_before) as f64 / n as f64;
        println!("edges: {n} (+200 warm-up), each TLS + AUTH + BIND, {concurrency} set-ups in flight");
        println!(
            "set-up: {:.2} s, {:.0} set-ups/s",
            setup.as_secs_f64(),
            n as f64 / setup.as_secs_f64()
        );
        println!(
            "cx CPU during set-up: {cx_cpu:.2} s = {:.0} set-ups per cx CPU-second \
             (edges + platform process: {own_cpu:.2} s CPU; load average {})",
            n as f64 / cx_cpu.max(0.01),
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
        );
        println!(
            "cx VmRSS: {rss_before} KiB before, {rss_after} KiB after -> {:.0} bytes ({:.1} KiB) per idle edge",
            per_conn,
            per_conn / 1024.0
        );
        println!(
            "cx live heap: {heap_before} B before, {heap_after} B after -> {:.0} bytes ({:.1} KiB) per idle edge",
            heap_per_conn,
            heap_per_conn / 1024.0
        );

        // Requests: the edges answer in their own tasks; the platform keeps `inflight` going.
        let total = n + 200;
        let mut answering = Vec::new();
        for mut e in warm.into_iter().chain(edges) {
            answering.push(tokio::spawn(async move {
                while e.answer_one().await.is_ok() {}
            }));
        }
        let inflight = 256;
        let cpu_before = cpu_seconds(pid);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..inflight {
            let platform = platform.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                let mut i = w;
                while i < requests {
                    let thing = format!("T{}", i % total);
                    if platform.get_temp(&thing).await {
                        ok += 1;
                    }
                    i += inflight;
                }
                ok
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap();
        }
        let took = start.elapsed();
        let cx_cpu = cpu_seconds(pid) - cpu_before;
        println!(
            "cx CPU during the request run: {cx_cpu:.2} s = {:.0} requests per cx CPU-second",
            ok as f64 / cx_cpu.max(0.01)
        );
        println!(
            "platform -> edge requests: {ok}/{requests} answered in {:.2} s = {:.0} req/s ({inflight} in flight, spread over {total} edges)",
            took.as_secs_f64(),
            ok as f64 / took.as_secs_f64()
        );
        let rss_end = vm_rss_kib(pid);
        println!("cx VmRSS after the request run: {rss_end} KiB, live heap {} B", heap());
        drop(heap);
        let _ = cx.wait();
        for a in answering {
            a.abort();
        }
    });
}

/// The platform the connection server's links go to.
enum Upstream {
    Fake(FakePlatform),
    Real(test_support::PlatformHandle),
}

impl Upstream {
    fn kind(&self) -> &'static str {
        match self {
            Upstream::Fake(_) => "fake (tests/support)",
            Upstream::Real(_) => "real (crates/platform, SQLite)",
        }
    }

    fn url(&self) -> String {
        match self {
            Upstream::Fake(p) => p.url().to_string(),
            Upstream::Real(p) => format!("wss://{}", p.addr),
        }
    }

    fn pin(&self) -> String {
        match self {
            Upstream::Fake(p) => p.cert.fingerprint().to_string(),
            Upstream::Real(p) => p.fingerprint.clone(),
        }
    }

    /// One platform → edge property read; true when answered 0x40.
    async fn get_temp(&self, thing: &str) -> bool {
        match self {
            Upstream::Fake(p) => p
                .request(thing, Code::GET, get_property(thing, "Temp"))
                .await
                .is_ok_and(|m| m.header.code == Code::SUCCESS),
            Upstream::Real(p) => p
                .platform
                .request(thing, Code::GET, Characteristic::PROPERTIES, "Temp", None)
                .await
                .is_ok_and(|a| a.code == Code::SUCCESS),
        }
    }
}

/// A real platform with things `T0..T{things}`, the edge key `EDGE_KEY` and a
/// `connection-server` user whose key is `CX_KEY`.
async fn real_platform(things: usize) -> test_support::PlatformHandle {
    use platform::model::{NewAppKey, NewThing, Role, Template};
    let p = test_support::spawn_platform(test_support::PlatformOptions {
        things: Vec::new(),
        request_timeout: Duration::from_secs(30),
        auth_failures_per_window: 1_000_000,
        ..Default::default()
    })
    .await
    .unwrap();
    let store = p.platform.store();
    let started = Instant::now();
    for i in 0..things {
        store
            .create_thing(&NewThing {
                name: format!("T{i}"),
                identifier: None,
                template: Template::RemoteThing,
                description: String::new(),
            })
            .await
            .unwrap();
    }
    println!(
        "created {things} things in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let hash = platform::secret::hash_password("bench-cx-password").unwrap();
    store
        .create_user("cx", &hash, Role::ConnectionServer)
        .await
        .unwrap();
    for (name, user, key) in [
        ("bench-edge", p.admin_user.as_str(), EDGE_KEY),
        ("bench-cx", "cx", CX_KEY),
    ] {
        store
            .create_app_key(
                &NewAppKey {
                    name: name.into(),
                    user: user.into(),
                    expires_at: None,
                    allowed_addresses: Vec::new(),
                    thing_patterns: Vec::new(),
                },
                &platform::secret::hash_app_key(key),
            )
            .await
            .unwrap();
    }
    p
}

fn dummy_status() -> cxserver::Status {
    // The bench talks to a server in another process; only its address is used.
    let config = test_config(url::Url::parse("wss://127.0.0.1:1").unwrap());
    let cert = net::SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let upstream = net::tls::client_config(&net::Trust::InsecureAllowSelfSigned, &[]).unwrap();
    CxServer::new(
        config,
        Tls {
            edge: cert.server_config(&[]).unwrap(),
            upstream,
        },
    )
    .status()
}

/// Connects `count` edges named `T{first}..`, `concurrency` at a time.
async fn connect_many(cx: &Arc<Cx>, first: usize, count: usize, concurrency: usize) -> Vec<Edge> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (cx, next) = (cx.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return mine;
                }
                let name = format!("T{}", first + i);
                let mut tries = 0;
                loop {
                    match Edge::connect_bound(&cx, &[&name]).await {
                        Ok(e) => {
                            mine.push(e);
                            break;
                        }
                        Err(e) if tries < 3 => {
                            tries += 1;
                            eprintln!("edge {name}: {e:#}, retrying");
                        }
                        Err(e) => panic!("edge {name}: {e:#}"),
                    }
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all
}
