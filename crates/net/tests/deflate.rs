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

/// Counts live heap bytes, for the memory figures of the measurement.
struct CountingAlloc;

static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts sizes.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as u64, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

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

/// A real property push (LSR via EMS, spec/alwayson-captures.txt): POST
/// `Things/LsrThing/Services/UpdateSubscribedPropertyValues` with one value.
const PUSH: &str = "0103000000070000000000c0ffee000a084c73725468696e67021e5570646174655375627363726962656450726f706572747956616c7565730005010676616c756573000500000001000105010576616c756500120000010474696d650003000001046e616d650000000001077175616c69747900000000000100041201403600000000000003000001a1fcae2690000b54656d70657261747572650004474f4f440000";

/// `n` pushes as an edge sends them: request id, value and time change.
fn push_stream(n: usize) -> Vec<Vec<u8>> {
    let base: Vec<u8> = (0..PUSH.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&PUSH[i..i + 2], 16).unwrap())
        .collect();
    let find = |needle: &[u8]| {
        base.windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let value_at = find(&22.0f64.to_be_bytes());
    let time_at = find(&0x0000_01a1_fcae_2690u64.to_be_bytes());
    (0..n)
        .map(|i| {
            let mut m = base.clone();
            m[2..6].copy_from_slice(&(7 + i as u32).to_be_bytes());
            let v = 20.0 + (i % 97) as f64 * 0.1;
            m[value_at..value_at + 8].copy_from_slice(&v.to_be_bytes());
            let t = 0x0000_01a1_fcae_2690u64 + i as u64 * 1000;
            m[time_at..time_at + 8].copy_from_slice(&t.to_be_bytes());
            m
        })
        .collect()
}

/// Client frames (masked), compressed with one context kept (as the C SDK
/// does) or reset per message, or plain.
fn client_wire(msgs: &[Vec<u8>], mode: Option<bool>) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::new(6), false);
    let mut wire = Vec::new();
    for m in msgs {
        let (rsv1, payload) = match mode {
            None => (false, m.clone()),
            Some(takeover) => {
                let mut z = Vec::with_capacity(m.len() + 64);
                c.compress_vec(m, &mut z, FlushCompress::Sync).unwrap();
                z.truncate(z.len() - 4);
                if !takeover {
                    c.reset();
                }
                (true, z)
            }
        };
        wire.push(if rsv1 { 0xc2 } else { 0x82 });
        if payload.len() < 126 {
            wire.push(0x80 | payload.len() as u8);
        } else {
            wire.push(0x80 | 126);
            wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        wire.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        wire.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [0x12, 0x34, 0x56, 0x78][i & 3]),
        );
    }
    wire
}

/// Server reading `msgs` from `wire` through tungstenite, with or without
/// the layer: messages per second.
async fn receive_rate(wire: Vec<u8>, layer: bool, params: Option<DeflateParams>, n: usize) -> f64 {
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let writer = tokio::spawn(async move {
        client.write_all(&wire).await.unwrap();
        client
    });
    let cfg = WsConfig::small();
    let start = std::time::Instant::now();
    let mut got = 0;
    if layer {
        let layer =
            net::ws::DeflateStream::established(server, params, DeflateConfig::for_ws(&cfg));
        let mut ws =
            WebSocketStream::from_raw_socket(layer, Role::Server, Some(cfg.to_tungstenite())).await;
        while got < n {
            ws.next().await.unwrap().unwrap();
            got += 1;
        }
    } else {
        let mut ws =
            WebSocketStream::from_raw_socket(server, Role::Server, Some(cfg.to_tungstenite()))
                .await;
        while got < n {
            ws.next().await.unwrap().unwrap();
            got += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(writer.await.unwrap());
    rate
}

/// Server sending `msgs` through tungstenite (with or without the layer):
/// (messages per second, bytes on the wire).
async fn send_rate(msgs: &[Vec<u8>], layer: bool, params: Option<DeflateParams>) -> (f64, u64) {
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let reader = tokio::spawn(async move {
        let mut total = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                return total;
            }
            total += n as u64;
        }
    });
    let cfg = WsConfig::small();
    let start = std::time::Instant::now();
    let elapsed;
    if layer {
        let layer =
            net::ws::DeflateStream::established(server, params, DeflateConfig::for_ws(&cfg));
        let mut ws =
            WebSocketStream::from_raw_socket(layer, Role::Server, Some(cfg.to_tungstenite())).await;
        for m in msgs {
            ws.send(Message::Binary(m.clone().into())).await.unwrap();
        }
        elapsed = start.elapsed();
    } else {
        let mut ws =
            WebSocketStream::from_raw_socket(server, Role::Server, Some(cfg.to_tungstenite()))
                .await;
        for m in msgs {
            ws.send(Message::Binary(m.clone().into())).await.unwrap();
        }
        elapsed = start.elapsed();
    }
    let bytes = reader.await.unwrap();
    (msgs.len() as f64 / elapsed.as_secs_f64(), bytes)
}

/// Figures for docs/cxserver.md: bytes on the wire for an AlwaysOn property
/// push stream with and without deflate, and messages per second through
/// the layer. Run: `cargo test --release -p net --test deflate -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement; prints figures"]
async fn measure_alwayson_push_stream() {
    const N: usize = 20_000;
    let msgs = push_stream(N);
    let payload: usize = msgs.iter().map(Vec::len).sum();
    let plain = client_wire(&msgs, None);
    let kept = client_wire(&msgs, Some(true));
    let reset = client_wire(&msgs, Some(false));
    println!(
        "push stream: {N} messages, {:.1} B payload each",
        payload as f64 / N as f64
    );
    println!(
        "edge→server wire bytes/msg: plain {:.1}, deflate (context kept) {:.1} ({:.2}), deflate (no context) {:.1} ({:.2})",
        plain.len() as f64 / N as f64,
        kept.len() as f64 / N as f64,
        kept.len() as f64 / plain.len() as f64,
        reset.len() as f64 / N as f64,
        reset.len() as f64 / plain.len() as f64,
    );
    let p_kept = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
    };
    let p_reset = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: None,
    };
    let ratio_kept = kept.len() as f64 / plain.len() as f64;
    // Best of three runs each, after the first one warmed the allocator.
    let mut r = [0f64; 4];
    let mut sent = [(0f64, 0u64); 4];
    for _ in 0..3 {
        let runs = [
            receive_rate(plain.clone(), false, None, N).await,
            receive_rate(plain.clone(), true, None, N).await,
            receive_rate(kept.clone(), true, Some(p_kept), N).await,
            receive_rate(reset.clone(), true, Some(p_reset), N).await,
        ];
        let sends = [
            send_rate(&msgs, false, None).await,
            send_rate(&msgs, true, None).await,
            send_rate(&msgs, true, Some(p_kept)).await,
            send_rate(&msgs, true, Some(p_reset)).await,
        ];
        for i in 0..4 {
            r[i] = r[i].max(runs[i]);
            sent[i] = (sent[i].0.max(sends[i].0), sends[i].1);
        }
    }
    let [r_plain, r_pass, r_kept, r_reset] = r;
    println!(
        "server receive msgs/s: tungstenite alone {r_plain:.0}, layer declined {r_pass:.0}, inflate (context kept) {r_kept:.0}, inflate (no context) {r_reset:.0}"
    );
    let [
        (s_plain, b_plain),
        (s_pass, _),
        (s_kept, b_kept),
        (s_reset, b_reset),
    ] = sent;
    println!(
        "server→edge wire bytes/msg: plain {:.1}, deflate (context kept) {:.1} ({:.2}), deflate (no context) {:.1} ({:.2})",
        b_plain as f64 / N as f64,
        b_kept as f64 / N as f64,
        b_kept as f64 / b_plain as f64,
        b_reset as f64 / N as f64,
        b_reset as f64 / b_plain as f64,
    );
    println!(
        "server send msgs/s: tungstenite alone {s_plain:.0}, layer declined {s_pass:.0}, deflate (context kept) {s_kept:.0}, deflate (no context) {s_reset:.0}"
    );
    assert!(ratio_kept < 0.5, "{ratio_kept}");
    idle_memory(&msgs[..50]).await;
}

/// Heap held per connection by the layer and by kept deflate/inflate state.
async fn idle_memory(msgs: &[Vec<u8>]) {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: false,
        server_max_window_bits: None,
    };
    let cfg = DeflateConfig::for_ws(&WsConfig::small());
    let before = LIVE.load(Ordering::Relaxed);
    let layer = net::ws::DeflateStream::established((), Some(params), cfg);
    let layer_bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(layer);
    let (mut c, mut d) = (None, None);
    let mut z = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let before = LIVE.load(Ordering::Relaxed);
    let comp = c.insert(Compress::new(Compression::new(6), false));
    comp.compress(&msgs[0], &mut z, FlushCompress::Sync)
        .unwrap();
    let deflate_bytes = LIVE.load(Ordering::Relaxed) - before;
    let before = LIVE.load(Ordering::Relaxed);
    let dec = d.insert(Decompress::new(false));
    dec.decompress(&z, &mut out, FlushDecompress::Sync).unwrap();
    let inflate_bytes = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "heap per compressing connection: layer + codec {layer_bytes} B, kept inflate window {inflate_bytes} B, kept deflate window {deflate_bytes} B"
    );
}

/// A client that pipelines a compressed frame right behind its upgrade
/// request (in the same write) is served: the layer keeps those bytes for
/// after the `101`, and the echo comes back compressed.
#[tokio::test]
async fn frame_pipelined_behind_the_request() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ws_cfg = WsConfig::small();
    let (addr, task) = echo_server(ws_cfg, Some(DeflateConfig::for_ws(&ws_cfg))).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let payload = b"pipelined property=1;".repeat(20);
    let mut z = Vec::with_capacity(1024);
    Compress::new(Compression::default(), false)
        .compress_vec(&payload, &mut z, FlushCompress::Sync)
        .unwrap();
    z.truncate(z.len() - 4);
    let mut out = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        .to_vec();
    out.extend_from_slice(&[0xc2, 0x80 | z.len() as u8, 0, 0, 0, 0]);
    out.extend_from_slice(&z);
    out.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]); // close 1000
    tcp.write_all(&out).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(T, tcp.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&all);
    let end = text.find("\r\n\r\n").unwrap() + 4;
    let head = text[..end].to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
    let frame = &all[end..];
    assert_eq!(frame[0], 0xc2, "FIN + RSV1 + binary");
    let len = usize::from(frame[1]);
    assert!(len < payload.len() / 4, "{len}");
    let mut data = frame[2..2 + len].to_vec();
    data.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut back = Vec::with_capacity(4096);
    Decompress::new(false)
        .decompress_vec(&data, &mut back, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(back, payload);
    let s = served(task).await;
    assert!(s.params.is_some());
}
