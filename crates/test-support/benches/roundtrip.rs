//! Platform → edge request round trips over real TLS websockets on loopback.
//!
//! Uses the platform's internal API (`Platform::request`, no REST): a GET
//! property request is encoded, queued on the edge socket, answered by a
//! `TestEdge` in the same process (one-row InfoTable) and correlated back.
//! Both sides' CPU is on this machine, so figures are conservative.
//!
//! Run: `cargo bench -p test-support --bench roundtrip` (env
//! `ROUNDTRIP_SECS`, default 3, sets each phase's duration).
//!
//! Phases: closed-loop throughput over 1 socket and over 100 sockets (64
//! and 256 requests in flight), then open-loop latency at a fixed rate
//! (default 10 000 req/s, `ROUNDTRIP_RATE`) over 100 sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use alwayson::{Characteristic, Code, InfoTable, Primitive};
use test_support::{PlatformOptions, TestEdge, spawn_platform};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, elapsed: Duration, mut lat: Vec<Duration>, errors: u64) {
    lat.sort();
    let n = lat.len();
    println!(
        "{name:<44} {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  ({n} ok, {errors} errors)",
        n as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn closed_loop(
    p: &platform::Platform,
    things: Arc<Vec<String>>,
    in_flight: usize,
    dur: Duration,
) -> (Duration, Vec<Duration>, u64) {
    let start = Instant::now();
    let end = start + dur;
    let mut tasks = Vec::new();
    for w in 0..in_flight {
        let p = p.clone();
        let things = things.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut i = w;
            while Instant::now() < end {
                let thing = &things[i % things.len()];
                i += in_flight;
                let t0 = Instant::now();
                match p
                    .request(thing, Code::GET, Characteristic::PROPERTIES, "Temp", None)
                    .await
                {
                    Ok(a) if a.code == Code::SUCCESS => lat.push(t0.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    (start.elapsed(), all, errors)
}

async fn open_loop(
    p: &platform::Platform,
    things: Arc<Vec<String>>,
    rate: u64,
    dur: Duration,
) -> (Duration, Vec<Duration>, u64) {
    // 100 pacers, each sending at rate/100 per second, each request in its own task.
    // Pacer k starts k/100 of an interval after pacer 0, so arrivals are spread
    // evenly over time (a steady 10 000 req/s), not 100 requests fired in the
    // same millisecond every 10 ms.
    let pacers = 100u64;
    let per = rate / pacers;
    let interval = Duration::from_secs_f64(1.0 / per as f64);
    let start = Instant::now();
    let t0 = tokio::time::Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<Duration>>();
    let mut handles = Vec::new();
    for k in 0..pacers {
        let p = p.clone();
        let things = things.clone();
        let tx = tx.clone();
        handles.push(tokio::spawn(async move {
            let phase = interval.mul_f64(k as f64 / pacers as f64);
            let mut tick = tokio::time::interval_at(t0 + phase, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = start + dur;
            let thing = things[k as usize % things.len()].clone();
            while Instant::now() < end {
                tick.tick().await;
                let p = p.clone();
                let tx = tx.clone();
                let thing = thing.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let r = p
                        .request(&thing, Code::GET, Characteristic::PROPERTIES, "Temp", None)
                        .await;
                    let _ = tx.send(
                        matches!(r, Ok(ref a) if a.code == Code::SUCCESS).then(|| t0.elapsed()),
                    );
                });
            }
        }));
    }
    drop(tx);
    for h in handles {
        h.await.unwrap();
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    while let Some(r) = rx.recv().await {
        match r {
            Some(d) => lat.push(d),
            None => errors += 1,
        }
    }
    (start.elapsed(), lat, errors)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dur = Duration::from_secs(env_u64("ROUNDTRIP_SECS", 3));
        let rate = env_u64("ROUNDTRIP_RATE", 10_000);
        let things: Vec<String> = (0..100).map(|i| format!("Bench{i}")).collect();
        let p = spawn_platform(PlatformOptions { things: things.clone(), ..Default::default() }).await.unwrap();
        let mut edges = Vec::new();
        for name in &things {
            let e = TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key).await.unwrap();
            e.set_handler(|_, _| (Code::SUCCESS, Some(InfoTable::single_row([("Temp", Primitive::Number(21.5))]))));
            assert_eq!(e.bind(&[name.as_str()]).await.unwrap().header.code, Code::SUCCESS);
            edges.push(e);
        }
        println!(
            "platform -> edge GET round trips, internal API (Platform::request), TLS websockets on loopback, {} worker threads",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );
        let one = Arc::new(vec![things[0].clone()]);
        let all = Arc::new(things.clone());
        // warm-up
        let _ = closed_loop(&p.platform, all.clone(), 64, Duration::from_millis(500)).await;
        for in_flight in [1usize, 64] {
            let (el, lat, err) = closed_loop(&p.platform, one.clone(), in_flight, dur).await;
            report(&format!("1 socket, {in_flight} in flight"), el, lat, err);
        }
        for in_flight in [100usize, 256] {
            let (el, lat, err) = closed_loop(&p.platform, all.clone(), in_flight, dur).await;
            report(&format!("100 sockets, {in_flight} in flight"), el, lat, err);
        }
        let (el, lat, err) = open_loop(&p.platform, all.clone(), rate, dur).await;
        report(&format!("100 sockets, open loop at {rate} req/s"), el, lat, err);
        drop(edges);
        p.shutdown().await.unwrap();
    });
}
