//! Decode/encode throughput measured in thread CPU time, robust on a loaded machine.
//!
//! Run: `cargo bench -p alwayson --bench cpu` (add `-- quick` for a shorter run).
//!
//! Every operation runs in rounds. Two figures are kept per operation:
//! - **cpu**: the lowest CPU time per iteration over the rounds, each round at least
//!   `ROUND_CPU` of this thread's CPU time, read from `/proc/thread-self/schedstat`
//!   (nanoseconds on a CPU; std only, no libc);
//! - **wall**: the lowest wall time per iteration over many short batches (min-of-N: a batch
//!   that was not preempted shows the true cost).
//!
//! Each case also measures two baselines over the same bytes in the same run:
//! `memcpy` (`Vec::extend_from_slice`) and `utf8` (`std::str::from_utf8` over an ASCII
//! copy of the bytes, same length). Figures are printed as MB/s (10^6 bytes), messages/s
//! and as a ratio to the memcpy baseline.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use alwayson::{Limits, Message, view};

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

struct Figures {
    cpu_ns: Option<f64>,
    wall_ns: f64,
}

/// Runs `f` in rounds; returns the best CPU-time and wall-time per call.
fn measure(rounds: usize, round_cpu: Duration, mut f: impl FnMut()) -> Figures {
    // Calibrate a batch of about 200 µs of wall time.
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() >= Duration::from_micros(200) || batch >= 1 << 30 {
            break;
        }
        batch *= 2;
    }
    let mut best_wall = f64::INFINITY;
    let mut best_cpu: Option<f64> = None;
    for _ in 0..rounds {
        let cpu0 = thread_cpu_ns();
        let mut iters = 0u64;
        loop {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            let ns = t.elapsed().as_nanos() as f64 / batch as f64;
            best_wall = best_wall.min(ns);
            iters += batch;
            match (cpu0, thread_cpu_ns()) {
                (Some(a), Some(b)) if b.saturating_sub(a) >= round_cpu.as_nanos() as u64 => {
                    let per = (b - a) as f64 / iters as f64;
                    best_cpu = Some(best_cpu.map_or(per, |c: f64| c.min(per)));
                    break;
                }
                (Some(_), Some(_)) => {}
                // No schedstat: wall time only, rounds of a fixed iteration count.
                _ if iters >= batch * 50 => break,
                _ => {}
            }
        }
    }
    Figures {
        cpu_ns: best_cpu,
        wall_ns: best_wall,
    }
}

fn report(case: &str, op: &str, len: usize, f: &Figures, base: Option<&Figures>) {
    let mbps = |ns: f64| len as f64 / ns * 1e3;
    let rate = |ns: f64| 1e9 / ns;
    let (cpu, ratio) = match f.cpu_ns {
        Some(ns) => {
            let ratio = base
                .and_then(|b| b.cpu_ns)
                .map_or(String::new(), |b| format!("{:>6.3}", b / ns));
            (
                format!("{:>8.0} MB/s {:>11.0} msg/s", mbps(ns), rate(ns)),
                ratio,
            )
        }
        None => ("     (no schedstat)".to_owned(), String::new()),
    };
    println!(
        "{case:<18} {op:<14} {len:>6} B  cpu {cpu}  x memcpy {ratio:<6}  wall-min {:>8.0} MB/s {:>11.0} msg/s",
        mbps(f.wall_ns),
        rate(f.wall_ns),
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let (rounds, round_cpu) = if quick {
        (3, Duration::from_millis(100))
    } else {
        (7, Duration::from_millis(300))
    };
    println!(
        "min of {rounds} rounds of >= {} ms thread CPU time each (schedstat); wall = min over 200 µs batches",
        round_cpu.as_millis()
    );
    let limits = Limits::default();
    let cases: Vec<(&str, Message)> = vec![
        ("property_update", common::property_update()),
        ("infotable_100x10", common::big_table()),
        ("infotable_numbers", common::number_table()),
        ("blob_8k", common::blob_8k()),
    ];
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && a != "quick")
        .collect();
    for (name, msg) in cases {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let bytes = msg.to_bytes().expect("encodes").to_vec();
        let len = bytes.len();
        let ascii: Vec<u8> = bytes.iter().map(|b| b & 0x7F).collect();
        let mut dst: Vec<u8> = Vec::with_capacity(len);
        let memcpy = measure(rounds, round_cpu, || {
            dst.clear();
            dst.extend_from_slice(black_box(&bytes));
            black_box(&dst);
        });
        report(name, "memcpy", len, &memcpy, Some(&memcpy));
        let utf8 = measure(rounds, round_cpu, || {
            black_box(std::str::from_utf8(black_box(&ascii)).is_ok());
        });
        report(name, "utf8", len, &utf8, Some(&memcpy));
        let owned = measure(rounds, round_cpu, || {
            black_box(Message::decode(black_box(&bytes), &limits).expect("decodes"));
        });
        report(name, "decode owned", len, &owned, Some(&memcpy));
        let viewed = measure(rounds, round_cpu, || {
            black_box(view::decode(black_box(&bytes), &limits).expect("decodes"));
        });
        report(name, "decode view", len, &viewed, Some(&memcpy));
        // The consumer that reads everything: decode, then every cell of every table.
        let walked = measure(rounds, round_cpu, || {
            let v = view::decode(black_box(&bytes), &limits).expect("decodes");
            black_box(common::walk(&v));
        });
        report(name, "view+walk", len, &walked, Some(&memcpy));
        if name == "property_update" {
            // The consumer path of a property push: decode, then read the values.
            let owned_pv = measure(rounds, round_cpu, || {
                let m = Message::decode(black_box(&bytes), &limits).expect("decodes");
                if let alwayson::Body::Request(r) = &m.body {
                    let t = r.params.as_ref().expect("params");
                    black_box(t.property_values().expect("values"));
                }
            });
            report(name, "owned+values", len, &owned_pv, Some(&memcpy));
            let view_pv = measure(rounds, round_cpu, || {
                let v = view::decode(black_box(&bytes), &limits).expect("decodes");
                if let view::BodyView::Request(r) = &v.body {
                    let t = r.params.as_ref().expect("params");
                    black_box(t.property_values().expect("values"));
                }
            });
            report(name, "view+values", len, &view_pv, Some(&memcpy));
        }
        let mut out = Vec::with_capacity(len);
        let enc = measure(rounds, round_cpu, || {
            out.clear();
            black_box(&msg).encode_vec(&mut out).expect("encodes");
            black_box(&out);
        });
        report(name, "encode", len, &enc, Some(&memcpy));
    }
}
