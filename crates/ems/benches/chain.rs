//! Property reads through the whole edge chain, measured from the platform REST:
//! HTTPS client → platform → AlwaysOn (wss) → tether-ems → HTTP → tether-lsr (Lua) and
//! back, with N concurrent keep-alive clients.
//!
//! Same-run baselines, so the figures are also given as ratios:
//! - `stored`: the platform REST reading a stored property of a disconnected thing
//!   (same TLS, auth and JSON work, no edge round trip);
//! - `lsr direct`: plain HTTP straight to the LSR (the Lua read alone).
//!
//! Run: `cargo bench -p ems --bench chain` (release). Environment: `BENCH_SECS`
//! (measured seconds per case, default 3), `BENCH_CLIENTS` (comma list, default
//! `1,8,32`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Ems;
use common::chain::{Lsr, THING, ems_config, wait_bound};
use test_support::{PlatformOptions, spawn_platform};

const STORED_THING: &str = "StoredThing";

struct Figures {
    reads_per_sec: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

/// Runs `clients` workers, each with its own keep-alive client, reading `url`
/// in a loop for `secs` (after a short warm-up).
async fn measure(
    make_client: impl Fn() -> reqwest::Client,
    url: &str,
    key: Option<&str>,
    clients: usize,
    secs: f64,
) -> Figures {
    let warmup = Duration::from_millis(500);
    let measured = Duration::from_secs_f64(secs);
    let start = Instant::now() + warmup;
    let end = start + measured;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = make_client();
        let url = url.to_owned();
        let key = key.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let mut req = http.get(&url);
                if let Some(k) = &key {
                    req = req.header("appKey", k);
                }
                let ok = match req.send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if t0 >= start {
                    if ok {
                        lat.push(t0.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct = |q: f64| {
        if all.is_empty() {
            Duration::ZERO
        } else {
            all[((all.len() - 1) as f64 * q).round() as usize]
        }
    };
    Figures {
        reads_per_sec: all.len() as f64 / measured.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let client_counts: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 32]);

    let p = spawn_platform(PlatformOptions {
        things: vec![
            common::chain::GATEWAY.into(),
            THING.into(),
            STORED_THING.into(),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let setup = p.http_client().unwrap();
    let r = setup
        .put(p.url(&format!(
            "/Thingworx/Things/{STORED_THING}/Properties/Temperature"
        )))
        .header("appKey", &p.app_key)
        .header("content-type", "application/json")
        .body(r#"{"Temperature": 21.5}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    let ems = Ems::start(&ems_config(p.addr, &p.app_key, &p.fingerprint, "")).await;
    // Slow tasks and scans: the bench measures reads, not the background work.
    let lsr = Lsr::start(
        ems.rest.port(),
        "scripts.LsrThing.taskRate = 600000\nscripts.LsrThing.scanRate = 600000\n\
         scripts.LsrThing.scanRateResolution = 500\nscripts.LsrThing.keepAliveRate = 60000\n",
        "",
    )
    .await;
    wait_bound(&p.platform, THING, true).await;

    let tls = (*p.client_tls).clone();
    let platform_client = move || {
        reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let plain_client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let chain_url = p.url(&format!("/Thingworx/Things/{THING}/Properties/Temperature"));
    let stored_url = p.url(&format!(
        "/Thingworx/Things/{STORED_THING}/Properties/Temperature"
    ));
    let direct_url = format!(
        "http://{}/scripts/Thingworx/Things/{THING}/Properties/Temperature",
        lsr.addr
    );

    println!(
        "platform REST property reads, {secs} s per case, keep-alive clients (one connection each)"
    );
    println!(
        "{:<12} {:>7} {:>11} {:>9} {:>9} {:>6}",
        "case", "clients", "reads/s", "p50 ms", "p99 ms", "errors"
    );
    for &n in &client_counts {
        let chain = measure(&platform_client, &chain_url, Some(&p.app_key), n, secs).await;
        let stored = measure(&platform_client, &stored_url, Some(&p.app_key), n, secs).await;
        let direct = measure(&plain_client, &direct_url, None, n, secs).await;
        for (name, f) in [
            ("chain", &chain),
            ("stored", &stored),
            ("lsr direct", &direct),
        ] {
            println!(
                "{:<12} {:>7} {:>11.0} {:>9.3} {:>9.3} {:>6}",
                name,
                n,
                f.reads_per_sec,
                ms(f.p50),
                ms(f.p99),
                f.errors
            );
        }
        println!(
            "  ratios, {n} clients: chain/stored throughput {:.2}, p50 {:.2}x, p99 {:.2}x; \
             chain/lsr-direct throughput {:.2}, p50 {:.2}x",
            chain.reads_per_sec / stored.reads_per_sec,
            ms(chain.p50) / ms(stored.p50),
            ms(chain.p99) / ms(stored.p99),
            chain.reads_per_sec / direct.reads_per_sec,
            ms(chain.p50) / ms(direct.p50),
        );
    }

    lsr.stop().await;
    ems.stop().await;
    tokio::time::timeout(Duration::from_secs(20), p.shutdown())
        .await
        .unwrap()
        .unwrap();
}
