//! An edge that negotiated permessage-deflate but has sent nothing costs no inflate or
//! deflate window: with `edge.compression` on by default, idle C SDK edges (which offer the
//! extension) must not inflate the capacity figures. Measured with a counting allocator
//! (alone in this test binary): the heap per upgraded socket with the offer, minus the heap
//! per socket without it, stays far below one inflate window (~42 KiB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use anyhow::Result;
use support::counting_alloc::{Counting, live_bytes};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Sockets per measurement (debug-build TLS handshakes take ~45 ms each here).
const N: usize = 32;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Upgrades one socket, offering `extensions` if given; returns it with the 101 head.
async fn upgrade(cx: &Cx, extensions: Option<&str>) -> Result<(Tls, String)> {
    let tcp = tokio::net::TcpStream::connect(cx.edge_addr).await?;
    let connector = tokio_rustls::TlsConnector::from(cx.edge_tls.clone());
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let mut tls = connector.connect(name, tcp).await?;
    let offer = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET /Thingworx/WS HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Host: 127.0.0.1\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: +MAxFC+Wm8e25o4hcy2SEQ==\r\n{offer}\r\n"
    );
    tls.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tls.read_u8().await?);
    }
    Ok((tls, String::from_utf8(head)?))
}

/// Heap bytes per socket for `N` upgraded, silent sockets (the server's and the client's
/// share together; the client side is the same in both runs).
async fn heap_per_socket(cx: &Cx, extensions: Option<&str>) -> Result<f64> {
    let open = |n: usize| format!("tether_cx_connections {n}\n");
    assert!(cx.metrics.render().contains(&open(0)));
    let before = live_bytes();
    let mut socks = Vec::with_capacity(N);
    for _ in 0..N {
        let (tls, head) = upgrade(cx, extensions).await?;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(
            head.to_ascii_lowercase().contains("permessage-deflate"),
            extensions.is_some(),
            "{head}"
        );
        socks.push(tls);
    }
    // Every server task has reached its relay loop.
    wait_for(Duration::from_secs(10), "edges upgraded", || {
        cx.metrics.render().contains(&open(N))
    })
    .await?;
    let after = live_bytes();
    drop(socks);
    wait_for(Duration::from_secs(10), "edges closed", || {
        cx.metrics.render().contains(&open(0))
    })
    .await?;
    Ok((after as f64 - before as f64) / N as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_edge_that_negotiated_deflate_holds_no_window() -> Result<()> {
    let platform = FakePlatform::start().await;
    let cx = spawn_cx(&platform, |c| {
        c.edge.auth_request_timeout = Duration::from_secs(60);
        c.edge.idle_timeout = Duration::from_secs(60);
    })
    .await;
    assert!(cx_defaults_compress());
    cx.wait_links_up(2).await?;
    // Warm-up (pools, lazily built statics), then the two measurements.
    heap_per_socket(&cx, Some("permessage-deflate")).await?;
    let plain = heap_per_socket(&cx, None).await?;
    let deflate = heap_per_socket(&cx, Some("permessage-deflate")).await?;
    // The same without the layer at all (`edge.compression = false`): what the capacity
    // bench's edges (no offer) cost before the default changed.
    let off = spawn_cx(&platform, |c| {
        c.edge.compression = false;
        c.edge.auth_request_timeout = Duration::from_secs(60);
        c.edge.idle_timeout = Duration::from_secs(60);
    })
    .await;
    off.wait_links_up(2).await?;
    let none = heap_per_socket(&off, None).await?;
    println!(
        "heap per silent socket: {none:.0} B compression off, {plain:.0} B on without an \
         offer ({:+.0} B), {deflate:.0} B negotiated ({:+.0} B)",
        plain - none,
        deflate - none
    );
    for (what, extra) in [("armed", plain - none), ("negotiated", deflate - none)] {
        assert!(
            extra < 4096.0,
            "a silent edge with deflate {what} costs {extra:.0} B more than with it off"
        );
    }
    Ok(())
}

/// The test config compresses (the default), so the measurement is of the default.
fn cx_defaults_compress() -> bool {
    cxserver::EdgeSettings::default().compression
}
