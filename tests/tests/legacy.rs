//! The EMS in legacy ThingWorx tunnel mode (`tunnel.mode = "legacy"`):
//! `/Thingworx/WSTunnelServer/<tid>`, base64 text frames,
//! `TunnelCommandToEdge CONNECT/DISCONNECT`, `TunnelCommandFromEdge`, end to
//! end with the platform's legacy bridge, the RAC and real OpenSSH.
//! Missing OpenSSH fails the tests (see `tether_e2e::INSTALL_HINT`).

use std::time::Duration;

use test_support::PlatformOptions;
use tether_e2e::{Sshd, Stack, free_port, port_open, random_file, sha256_file};

const STEP: Duration = Duration::from_secs(60);
const LEGACY: &str = r#", "mode": "legacy""#;

/// Size of the copied file: 64 MiB in release, 8 MiB in debug.
fn copy_size() -> u64 {
    if cfg!(debug_assertions) {
        8 << 20
    } else {
        64 << 20
    }
}

/// The expected output of `seq 1 n`.
fn seq(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_edge_carries_ssh_and_scp() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let stack = Stack::start_with(sshd.port, free_port()?, LEGACY).await?;

    // Edge → client: 2 MB of output, then sshd closes at once. All of it
    // arrives (the edge reports DISCONNECT only after its last frame).
    let mut rac = stack.rac("ssh").await?;
    let id = rac.session_id(STEP).await?;
    let (ok, out, err) = sshd.ssh(rac.addr.port(), "seq 1 300000").await?;
    assert!(ok, "ssh through a legacy tunnel failed: {err}");
    assert_eq!(out.len(), seq(300_000).len());
    assert!(out == seq(300_000), "output differs");

    // The platform sends num_connects 16 by default: a second connection
    // in the same session (a reconnecting client) works.
    let (ok, out, err) = sshd.ssh(rac.addr.port(), "echo again").await?;
    assert!(ok, "a second connection in a legacy session failed: {err}");
    assert_eq!(out, "again\n");
    rac.stop.cancel();
    let ended = rac.ended(STEP).await?;
    assert!(ended.is_ok(), "{ended:?}");
    // The audit record counts both connections and every byte of output.
    let store = stack.platform.platform.store();
    let deadline = std::time::Instant::now() + STEP;
    let record = loop {
        let found = store
            .audit_log(50)
            .await?
            .into_iter()
            .find(|e| e.kind == "session.ended" && e.detail.contains(&id));
        if let Some(e) = found {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no audit record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let rec: serde_json::Value = serde_json::from_str(&record.detail)?;
    assert_eq!(rec["streams"], 2, "{rec}");
    assert!(
        rec["bytes_server_to_client"].as_u64().unwrap_or(0) > seq(300_000).len() as u64,
        "{rec}"
    );

    // Client → edge: scp a file, byte-identical.
    let mut rac = stack.rac("ssh").await?;
    rac.session_id(STEP).await?;
    let src = sshd.dir.path().join("src.bin");
    let dst = sshd.dir.path().join("dst.bin");
    random_file(&src, copy_size())?;
    let started = std::time::Instant::now();
    let (ok, err) = sshd.scp_to(rac.addr.port(), &src, &dst).await?;
    assert!(ok, "scp through a legacy tunnel failed: {err}");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "legacy scp {} MiB in {secs:.2} s ({:.1} MiB/s)",
        copy_size() >> 20,
        (copy_size() >> 20) as f64 / secs
    );
    assert_eq!(sha256_file(&src)?, sha256_file(&dst)?);
    let addr = rac.addr;
    rac.stop.cancel();
    let ended = rac.ended(STEP).await?;
    assert!(ended.is_ok(), "{ended:?}");
    assert!(!port_open(addr).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_num_connects_from_the_platform_config_is_honoured() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let options = PlatformOptions {
        things: vec!["Pump1".to_owned()],
        legacy_num_connects: 1,
        ..PlatformOptions::default()
    };
    let stack = Stack::start_with_platform(sshd.port, free_port()?, LEGACY, options).await?;
    let rac = stack.rac("ssh").await?;
    let (ok, out, err) = sshd.ssh(rac.addr.port(), "echo first").await?;
    assert!(ok, "first connection failed: {err}");
    assert_eq!(out, "first\n");
    // num_connects 1 is spent: the edge refuses the next CONNECT and ssh
    // says the connection closed.
    let (ok, _, err) = sshd.ssh(rac.addr.port(), "echo again").await?;
    assert!(!ok, "a second connection ran although num_connects is 1");
    eprintln!("second connection: {}", err.trim());
    rac.stop.cancel();
    let ended = rac.ended(STEP).await?;
    assert!(ended.is_ok(), "{ended:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_edge_cancels_an_idle_tunnel() -> anyhow::Result<()> {
    let sshd = Sshd::start().await?;
    let extra = format!(r#"{LEGACY}, "idle_timeout": 1000"#);
    let stack = Stack::start_with(sshd.port, free_port()?, &extra).await?;
    let mut rac = stack.rac("ssh").await?;
    rac.session_id(STEP).await?;
    let (ok, out, err) = sshd.ssh(rac.addr.port(), "echo busy").await?;
    assert!(ok && out.trim() == "busy", "{err}");
    let addr = rac.addr;
    let ended = rac.ended(STEP).await??;
    assert!(!ended.by_us, "{ended:?}");
    assert!(ended.message().contains("cancelled"), "{}", ended.message());
    assert!(!port_open(addr).await);
    Ok(())
}

/// A target that reads one line, answers `len` bytes and closes at once
/// (as an HTTP/1.0 server does).
async fn one_shot_server(len: usize) -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut s = tokio::io::BufReader::new(s);
                let mut line = String::new();
                if s.read_line(&mut line).await.is_err() {
                    return;
                }
                let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let _ = s.get_mut().write_all(&body).await;
                let _ = s.get_mut().shutdown().await;
            });
        }
    });
    Ok((port, task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_closing_first_loses_no_bytes_and_the_client_sees_eof() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const LEN: usize = 3 << 20;
    let (port, server) = one_shot_server(LEN).await?;
    let stack = Stack::start_with(port, free_port()?, LEGACY).await?;
    let mut rac = stack.rac("ssh").await?;
    let id = rac.session_id(STEP).await?;
    let mut c = tokio::net::TcpStream::connect(rac.addr).await?;
    c.write_all(b"GET /\n").await?;
    let mut got = Vec::new();
    tokio::time::timeout(STEP, c.read_to_end(&mut got)).await??;
    assert_eq!(got.len(), LEN, "bytes lost before the target's close");
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

    // The edge reported DISCONNECT: once the client closes too, the stream
    // is gone and the session is still up.
    drop(c);
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let list = stack.sessions().await?;
        let s = list
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == id.as_str()))
            .cloned()
            .unwrap_or_default();
        assert_eq!(s["state"], "active", "{s}");
        if s["streams_open"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream still open: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rac.stop.cancel();
    let ended = rac.ended(STEP).await?;
    assert!(ended.is_ok(), "{ended:?}");
    server.abort();
    Ok(())
}
