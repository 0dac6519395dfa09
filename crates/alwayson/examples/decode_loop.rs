//! Decodes one benchmark message N times: a fixed workload for instruction-counting profilers.
//!
//! `valgrind --tool=callgrind target/release/examples/decode_loop view infotable 1000`
//! (modes `owned`, `view`, `values` (view decode + `property_values()`), `walk` (view decode
//! + every cell read), `encode`; cases `property`, `infotable`, `numbers`).

use std::hint::black_box;

use alwayson::{Limits, Message, view};

#[path = "../benches/common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("view", String::as_str);
    let case = args.get(2).map_or("property", String::as_str);
    let n: usize = args.get(3).map_or(Ok(1000), |s| s.parse())?;
    let msg = match case {
        "infotable" => common::big_table(),
        "numbers" => common::number_table(),
        _ => common::property_update(),
    };
    let bytes = msg.to_bytes()?.to_vec();
    let limits = Limits::default();
    let mut out = Vec::with_capacity(bytes.len());
    for _ in 0..n {
        match mode {
            "owned" => drop(black_box(Message::decode(black_box(&bytes), &limits)?)),
            "encode" => {
                out.clear();
                black_box(&msg).encode_vec(&mut out)?;
            }
            "values" => {
                let v = view::decode(black_box(&bytes), &limits)?;
                if let view::BodyView::Request(r) = &v.body {
                    if let Some(t) = &r.params {
                        drop(black_box(t.property_values()?));
                    }
                }
            }
            "walk" => {
                let v = view::decode(black_box(&bytes), &limits)?;
                black_box(common::walk(&v));
            }
            _ => drop(black_box(view::decode(black_box(&bytes), &limits)?)),
        }
    }
    println!("{mode} {case}: {} bytes x {n}", bytes.len());
    Ok(())
}
