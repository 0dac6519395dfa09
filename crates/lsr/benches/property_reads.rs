//! Property reads (and, for comparison, Lua service calls) per second against the LSR's
//! HTTP server on loopback. Run: `cargo bench -p lsr --bench property_reads`.
//!
//! A plain timing binary (harness = false): a fixed number of requests from a few
//! concurrent keep-alive clients, each request checked for status 200.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

const CLIENTS: usize = 8;
const REQUESTS: usize = 40_000;

async fn hammer(url: String, body: Option<&'static str>) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..REQUESTS / CLIENTS {
                let req = match body {
                    None => http.get(&url),
                    Some(b) => http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(b),
                };
                let r = req.send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    REQUESTS as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/lsr/config.lua");
        let mut config = lsr::Config::load(&cfg).unwrap();
        for t in &mut config.things {
            t.register = false;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(lsr::run(config, listener, stop.clone()));
        let base = format!("http://{addr}/scripts/Thingworx/Things/LsrThing");
        // warm up
        hammer(format!("{base}/Properties/Temperature"), None).await;
        let reads = hammer(format!("{base}/Properties/Temperature"), None).await;
        println!("property reads:   {reads:>9.0} /s  ({REQUESTS} GETs, {CLIENTS} clients)");
        let calls = hammer(
            format!("{base}/Services/Add"),
            Some(r#"{"rows":[{"p1":2,"p2":3.5}]}"#),
        )
        .await;
        println!(
            "service calls:    {calls:>9.0} /s  ({REQUESTS} POSTs through Lua, {CLIENTS} clients)"
        );
        stop.cancel();
        server.await.unwrap().unwrap();
    });
}
