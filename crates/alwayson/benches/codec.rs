//! Encode/decode throughput of typical AlwaysOn messages (criterion, wall clock).
//!
//! Run: `cargo bench -p alwayson --bench codec -- --warm-up-time 1 --measurement-time 3`.
//! On a loaded machine prefer `cargo bench -p alwayson --bench cpu` (CPU time, min-of-N).

#![allow(clippy::expect_used)]

mod common;

use std::hint::black_box;

use alwayson::{Limits, Message, view};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, msg) in [
        ("property_update", common::property_update()),
        ("infotable_100x10", common::big_table()),
        ("blob_8k", common::blob_8k()),
    ] {
        let bytes = msg.to_bytes().expect("encodes");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("decode", |b| {
            b.iter(|| Message::decode(black_box(&bytes), &limits).expect("decodes"))
        });
        g.bench_function("view_decode", |b| {
            b.iter(|| view::decode(black_box(&bytes), &limits).expect("decodes"))
        });
        let mut out = BytesMut::with_capacity(bytes.len());
        g.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                black_box(&msg).encode(&mut out).expect("encodes");
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
