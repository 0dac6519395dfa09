//! permessage-deflate against an independent implementation: Python's
//! `websockets` (python3-websockets) as the client of `ws::accept_deflate`,
//! counting the bytes on the socket to show the traffic was compressed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use net::ws::{self, Decision, DeflateConfig, DeflateParams, WsConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(60);

/// Counts the bytes crossing the socket.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[derive(Debug)]
struct Served {
    params: Option<DeflateParams>,
    read: u64,
    written: u64,
    /// The error that ended the echo loop, if any.
    error: Option<String>,
}

/// One-connection echo server with `accept_deflate`.
async fn echo_server(
    ws_cfg: WsConfig,
    deflate: Option<DeflateConfig>,
) -> (SocketAddr, JoinHandle<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let read = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let stream = Counting {
            inner: tcp,
            read: read.clone(),
            written: written.clone(),
        };
        let (mut socket, _, params) = ws::accept_deflate(stream, ws_cfg, deflate, T, |_| {
            Decision::Accept { subprotocol: None }
        })
        .await
        .unwrap();
        assert_eq!(socket.get_ref().params(), params);
        let mut error = None;
        while let Some(m) = socket.next().await {
            match m {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    if let Err(e) = socket.send(m).await {
                        error = Some(e.to_string());
                        break;
                    }
                }
                Ok(Message::Close(_)) => {}
                Ok(_) => {}
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        Served {
            params,
            read: read.load(Ordering::Relaxed),
            written: written.load(Ordering::Relaxed),
            error,
        }
    });
    (addr, task)
}

fn python() -> &'static str {
    // Debian's interpreter has python3-websockets; a pyenv one may not.
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

async fn run_client(addr: SocketAddr, mode: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deflate_client.py");
    let out = tokio::time::timeout(
        T,
        tokio::process::Command::new(python())
            .arg(script)
            .arg(format!("ws://{addr}/"))
            .arg(mode)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python client timed out")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed: {stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

async fn served(task: JoinHandle<Served>) -> Served {
    tokio::time::timeout(T, task).await.unwrap().unwrap()
}

#[tokio::test]
async fn python_deflate_with_context_takeover() {
    let ws_cfg = WsConfig::bulk();
    let (addr, task) = echo_server(ws_cfg, Some(DeflateConfig::for_ws(&ws_cfg))).await;
    let report = run_client(addr, "deflate").await;
    let s = served(task).await;
    assert_eq!(s.error, None);
    let ext = &report["extensions"];
    assert_eq!(ext.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(ext[0]["name"], "permessage-deflate");
    assert_eq!(
        ext[0]["remote_no_context_takeover"], false,
        "server keeps its window"
    );
    assert_eq!(
        ext[0]["local_no_context_takeover"], false,
        "client keeps its window"
    );
    let p = s.params.unwrap();
    assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
    let payload = report["payload"].as_u64().unwrap();
    println!(
        "context takeover: payload {payload} B, read {} B, written {} B",
        s.read, s.written
    );
    // 70 KB of the payload is random; the rest compresses well.
    assert!(
        s.read * 3 < payload,
        "client→server not compressed: {} of {payload}",
        s.read
    );
    assert!(
        s.written * 3 < payload,
        "server→client not compressed: {} of {payload}",
        s.written
    );
}

#[tokio::test]
async fn python_deflate_without_context_takeover() {
    let ws_cfg = WsConfig::bulk();
    let cfg = DeflateConfig {
        server_context_takeover: false,
        ..DeflateConfig::for_ws(&ws_cfg)
    };
    let (addr, task) = echo_server(ws_cfg, Some(cfg)).await;
    let report = run_client(addr, "deflate-nct").await;
    let s = served(task).await;
    assert_eq!(s.error, None);
    let ext = &report["extensions"][0];
    assert_eq!(ext["name"], "permessage-deflate", "{report}");
    assert_eq!(ext["remote_no_context_takeover"], true);
    assert_eq!(ext["local_no_context_takeover"], true);
    let p = s.params.unwrap();
    assert!(p.server_no_context_takeover && p.client_no_context_takeover);
    let payload = report["payload"].as_u64().unwrap();
    println!(
        "no context takeover: payload {payload} B, read {} B, written {} B",
        s.read, s.written
    );
    assert!(s.read * 2 < payload, "{} of {payload}", s.read);
    assert!(s.written * 2 < payload, "{} of {payload}", s.written);
}

#[tokio::test]
async fn python_without_offer_is_unchanged() {
    let ws_cfg = WsConfig::bulk();
    let (addr, task) = echo_server(ws_cfg, Some(DeflateConfig::for_ws(&ws_cfg))).await;
    let report = run_client(addr, "plain").await;
    let s = served(task).await;
    assert_eq!(s.error, None);
    assert_eq!(
        report["extensions"].as_array().unwrap().len(),
        0,
        "{report}"
    );
    assert_eq!(s.params, None);
    let payload = report["payload"].as_u64().unwrap();
    assert!(s.read >= payload && s.written >= payload);
}

#[tokio::test]
async fn server_with_deflate_off_declines() {
    let (addr, task) = echo_server(WsConfig::bulk(), None).await;
    let report = run_client(addr, "deflate").await;
    let s = served(task).await;
    assert_eq!(
        report["extensions"].as_array().unwrap().len(),
        0,
        "{report}"
    );
    assert_eq!(s.params, None);
}

#[tokio::test]
async fn decompression_bomb_closes_with_1009() {
    let ws_cfg = WsConfig::bulk();
    let cfg = DeflateConfig {
        max_message_size: 1 << 20,
        ..DeflateConfig::for_ws(&ws_cfg)
    };
    let (addr, task) = echo_server(ws_cfg, Some(cfg)).await;
    let report = run_client(addr, "bomb").await;
    let s = served(task).await;
    assert_eq!(report["closed"], true, "{report}");
    assert_eq!(report["code"], 1009, "{report}");
    assert!(s.error.unwrap().contains("1048576"));
    // 4 MiB of zeros arrived as a few KiB.
    assert!(s.read < 64 * 1024, "{}", s.read);
}

#[tokio::test]
async fn tungstenite_client_without_extension() {
    let (addr, task) = echo_server(WsConfig::small(), Some(DeflateConfig::default())).await;
    let (mut client, resp) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    assert!(resp.headers().get("sec-websocket-extensions").is_none());
    for i in 0..50u32 {
        let m = Message::Binary(vec![i as u8; 100 + i as usize * 500].into());
        client.send(m.clone()).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), m);
    }
    client.close(None).await.unwrap();
    while client.next().await.is_some() {}
    let s = served(task).await;
    assert_eq!(s.params, None);
}
