//! Measures the server-side memory of idle TLS websockets accepted with
//! `accept::run` + `ws::accept` and `WsConfig::small()`.
//!
//! ```text
//! cargo run --release -p net --example idle_memory -- 5000
//! ```
//! The example re-runs itself as the client process so that only the
//! server's resident memory is measured.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use net::accept::{self, AcceptOptions};
use net::tls::{self, ALPN_HTTP1};
use net::ws::{self, WsConfig};
use net::{CancellationToken, SelfSigned, Trust};

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmRSS")?
        .parse()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("client") => client(&args[2], &args[3], args[4].parse()?).await,
        Some(n) => server(n.parse()?).await,
        None => bail!("usage: idle_memory N"),
    }
}

async fn server(n: usize) -> anyhow::Result<()> {
    let cert = SelfSigned::generate(&["127.0.0.1"])?;
    let config = cert.server_config(&[ALPN_HTTP1])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1024);
    let opts = AcceptOptions {
        max_connections: n + 10,
        ..AcceptOptions::default()
    };
    tokio::spawn(accept::run(
        listener,
        Some(config),
        opts,
        shutdown.clone(),
        move |conn| {
            let tx = tx.clone();
            async move {
                let Ok((mut socket, _)) =
                    ws::accept(conn.stream, WsConfig::small(), Duration::from_secs(30)).await
                else {
                    return;
                };
                let _ = tx.send(()).await;
                // Idle: wait for the client to go away.
                while let Some(Ok(_)) = socket.next().await {}
            }
        },
    ));
    // Warm up allocator and runtime with a few connections first.
    let before = rss_kib()?;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .args([
            "client",
            &addr.to_string(),
            &cert.sha256_fingerprint_hex,
            &n.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    for _ in 0..n {
        rx.recv().await.context("server stopped")?;
    }
    let after = rss_kib()?;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{n} idle TLS websockets: server RSS {before} KiB -> {after} KiB, {per:.1} KiB per connection"
    );
    std::io::stdout().flush()?;
    child.kill()?;
    child.wait()?;
    shutdown.cancel();
    Ok(())
}

async fn client(addr: &str, pin: &str, n: usize) -> anyhow::Result<()> {
    let trust = tls::client_config(&Trust::pinned_from_strs(&[pin])?, &[ALPN_HTTP1])?;
    let url = format!("wss://{addr}/Thingworx/WS");
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let s = ws::connect(
            &url,
            &[("appKey", "k")],
            trust.clone(),
            WsConfig::small(),
            Duration::from_secs(30),
        )
        .await?;
        sockets.push(s);
    }
    // Hold them until killed.
    let stdin = std::io::stdin();
    let _ = stdin.lock().lines().next();
    std::future::pending::<()>().await;
    Ok(())
}
