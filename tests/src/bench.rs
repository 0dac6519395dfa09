//! `tether-bench tunnel`: the remote-access path (RAC → platform broker →
//! EMS → target, TLS on both WebSocket legs, all on loopback) against raw
//! TCP loopback to the same target, in the same run.
//!
//! The target speaks a tiny protocol chosen by the first byte of each
//! connection: `S` = sink (read to EOF, answer the byte count as 8 bytes
//! big-endian), `E` = echo.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{Stack, free_port};

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct TunnelBench {
    /// Bytes of the single bulk stream.
    pub bulk_bytes: u64,
    /// Bytes per stream of the parallel run.
    pub parallel_bytes: u64,
    /// Parallel streams.
    pub parallel: usize,
    /// Round trips per latency measurement.
    pub rtt_samples: usize,
    /// Message size of the latency test.
    pub rtt_size: usize,
    /// Session set-ups measured.
    pub setups: usize,
}

impl Default for TunnelBench {
    fn default() -> Self {
        TunnelBench {
            bulk_bytes: 1 << 30,
            parallel_bytes: 256 << 20,
            parallel: 8,
            rtt_samples: 2000,
            rtt_size: 64,
            setups: 5,
        }
    }
}

/// One path's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PathFigures {
    pub bulk_1_gbit_s: f64,
    /// CPU seconds (user + system, whole process: sender, every hop and
    /// the sink) per GiB of the single bulk stream; unlike Gbit/s it hardly
    /// depends on how busy the machine is. `None` where /proc is missing.
    pub bulk_1_cpu_s_per_gib: Option<f64>,
    pub bulk_parallel_gbit_s: f64,
    pub rtt_idle_p50_us: f64,
    pub rtt_idle_p99_us: f64,
    pub rtt_loaded_p50_us: f64,
    pub rtt_loaded_p99_us: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bulk_bytes: u64,
    pub parallel: usize,
    pub parallel_bytes_per_stream: u64,
    pub rtt_samples: usize,
    pub rtt_size: usize,
    pub raw_tcp: PathFigures,
    pub tunnel: PathFigures,
    /// POST /api/v1/sessions → first echoed byte through the tunnel (ms).
    pub setup_ms: Vec<f64>,
    pub setup_p50_ms: f64,
}

async fn serve_target(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut mode = [0u8; 1];
            if s.read_exact(&mut mode).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 256 * 1024];
            match mode[0] {
                b'S' => {
                    let mut n: u64 = 0;
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => n += k as u64,
                        }
                    }
                    let _ = s.write_all(&n.to_be_bytes()).await;
                    let _ = s.shutdown().await;
                }
                b'E' => {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
                _ => {}
            }
        });
    }
}

async fn bulk(addr: SocketAddr, bytes: u64) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"S").await?;
    let block = vec![0x5Au8; 256 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await.context("sink count")?;
    let got = u64::from_be_bytes(count);
    if got != bytes {
        bail!("sink got {got} bytes of {bytes}");
    }
    Ok(())
}

fn gbit(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e9
}

async fn parallel(addr: SocketAddr, streams: usize, bytes: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        tasks.push(tokio::spawn(bulk(addr, bytes)));
    }
    for t in tasks {
        t.await??;
    }
    Ok(gbit(bytes * streams as u64, started.elapsed()))
}

async fn rtts(addr: SocketAddr, samples: usize, size: usize) -> anyhow::Result<(f64, f64)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"E").await?;
    let msg = vec![0x42u8; size];
    let mut back = vec![0u8; size];
    // Warm-up.
    for _ in 0..20 {
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
    }
    let mut v = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    v.sort_by(f64::total_cmp);
    Ok((pct(&v, 0.50), pct(&v, 0.99)))
}

/// User + system CPU time of this process so far, from /proc/self/stat
/// (fields 14 and 15, in clock ticks of 1/100 s, the Linux default).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(addr: SocketAddr, cfg: &TunnelBench) -> anyhow::Result<PathFigures> {
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    bulk(addr, cfg.bulk_bytes).await?;
    let bulk_1 = gbit(cfg.bulk_bytes, started.elapsed());
    let gib = cfg.bulk_bytes as f64 / f64::from(1u32 << 30);
    let cpu = match (cpu_before, process_cpu_seconds()) {
        (Some(a), Some(b)) if gib > 0.0 => Some((b - a) / gib),
        _ => None,
    };
    let bulk_n = parallel(addr, cfg.parallel, cfg.parallel_bytes).await?;
    let (idle50, idle99) = rtts(addr, cfg.rtt_samples, cfg.rtt_size).await?;
    // Latency while one bulk stream runs (it keeps going until the samples are in).
    let load = tokio::spawn(bulk(addr, cfg.bulk_bytes * 4));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let loaded = rtts(addr, cfg.rtt_samples, cfg.rtt_size).await;
    load.abort();
    let (l50, l99) = loaded?;
    Ok(PathFigures {
        bulk_1_gbit_s: bulk_1,
        bulk_1_cpu_s_per_gib: cpu,
        bulk_parallel_gbit_s: bulk_n,
        rtt_idle_p50_us: idle50,
        rtt_idle_p99_us: idle99,
        rtt_loaded_p50_us: l50,
        rtt_loaded_p99_us: l99,
    })
}

/// Time from the RAC's `POST /api/v1/sessions` to the first echoed byte.
async fn setup_once(stack: &Stack) -> anyhow::Result<f64> {
    let started = Instant::now();
    let rac = stack.rac("ssh").await?;
    let mut s = TcpStream::connect(rac.addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"Ex").await?;
    let mut one = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut one))
        .await
        .context("first byte")??;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    drop(s);
    rac.stop.cancel();
    let _ = rac.ended(Duration::from_secs(30)).await?;
    Ok(ms)
}

/// Run the whole benchmark.
pub async fn run(cfg: &TunnelBench) -> anyhow::Result<Report> {
    let target = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let target_addr = target.local_addr()?;
    tokio::spawn(serve_target(target));
    let stack = Stack::start(target_addr.port(), free_port()?).await?;

    eprintln!("raw TCP loopback ...");
    let raw = measure(target_addr, cfg).await?;
    eprintln!("tunnel ...");
    let rac = stack.rac("ssh").await?;
    let tunnel = measure(rac.addr, cfg).await?;
    rac.stop.cancel();
    let _ = rac.ended(Duration::from_secs(30)).await?;
    eprintln!("session set-up ...");
    let mut setup_ms = Vec::with_capacity(cfg.setups);
    for _ in 0..cfg.setups {
        setup_ms.push(setup_once(&stack).await?);
    }
    let mut stack = stack;
    stack.stop_ems().await?;
    stack.platform.shutdown().await?;
    let mut sorted = setup_ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(Report {
        bulk_bytes: cfg.bulk_bytes,
        parallel: cfg.parallel,
        parallel_bytes_per_stream: cfg.parallel_bytes,
        rtt_samples: cfg.rtt_samples,
        rtt_size: cfg.rtt_size,
        raw_tcp: raw,
        tunnel,
        setup_p50_ms: pct(&sorted, 0.5),
        setup_ms,
    })
}

impl Report {
    /// The table printed by `tether-bench tunnel`.
    pub fn table(&self) -> String {
        let (r, t) = (&self.raw_tcp, &self.tunnel);
        let row = |name: &str, a: f64, b: f64, unit: &str| {
            format!("| {name:<34} | {a:>12.2} | {b:>12.2} | {unit:<7} |\n")
        };
        let mut s = String::new();
        s.push_str(&format!(
            "| {:<34} | {:>12} | {:>12} | {:<7} |\n",
            "measure", "raw TCP", "tunnel", "unit"
        ));
        s.push_str(
            "|------------------------------------|--------------|--------------|---------|\n",
        );
        s.push_str(&row(
            &format!("bulk, 1 stream ({} MiB)", self.bulk_bytes >> 20),
            r.bulk_1_gbit_s,
            t.bulk_1_gbit_s,
            "Gbit/s",
        ));
        if let (Some(a), Some(b)) = (r.bulk_1_cpu_s_per_gib, t.bulk_1_cpu_s_per_gib) {
            s.push_str(&row("bulk, 1 stream: CPU per GiB", a, b, "s"));
        }
        s.push_str(&row(
            &format!(
                "bulk, {} streams ({} MiB each)",
                self.parallel,
                self.parallel_bytes_per_stream >> 20
            ),
            r.bulk_parallel_gbit_s,
            t.bulk_parallel_gbit_s,
            "Gbit/s",
        ));
        s.push_str(&row(
            "RTT idle p50",
            r.rtt_idle_p50_us,
            t.rtt_idle_p50_us,
            "µs",
        ));
        s.push_str(&row(
            "RTT idle p99",
            r.rtt_idle_p99_us,
            t.rtt_idle_p99_us,
            "µs",
        ));
        s.push_str(&row(
            "RTT under bulk load p50",
            r.rtt_loaded_p50_us,
            t.rtt_loaded_p50_us,
            "µs",
        ));
        s.push_str(&row(
            "RTT under bulk load p99",
            r.rtt_loaded_p99_us,
            t.rtt_loaded_p99_us,
            "µs",
        ));
        s.push_str(&format!(
            "\nsession set-up (POST /api/v1/sessions → first byte): p50 {:.1} ms, all {:?}\n",
            self.setup_p50_ms,
            self.setup_ms
                .iter()
                .map(|m| (m * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        ));
        s
    }
}
