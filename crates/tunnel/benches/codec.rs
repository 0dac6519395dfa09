//! Frame encode/decode throughput and in-memory mux throughput (one stream
//! and eight streams). Figures go to docs/protocol-tunnel.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use tunnel::{Config, DEFAULT_MAX_PAYLOAD, Event, Frame, Mux, Role, StreamId};

fn codec(c: &mut Criterion) {
    let payload = Bytes::from(vec![0xa5u8; DEFAULT_MAX_PAYLOAD as usize]);
    let data = Frame::Data {
        stream: StreamId::new(1).unwrap(),
        payload: payload.clone(),
    };
    let encoded = data.to_bytes();
    let window = Frame::Window {
        stream: StreamId::new(1).unwrap(),
        increment: 65536,
    };
    let window_bytes = window.to_bytes();

    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("encode DATA 64 KiB", |b| {
        let mut buf = BytesMut::with_capacity(2 * encoded.len());
        b.iter(|| {
            buf.clear();
            black_box(&data).encode(&mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("to_bytes DATA 64 KiB (aligned copy)", |b| {
        b.iter(|| black_box(&data).to_bytes())
    });
    g.bench_function("baseline: copy 64 KiB into a BytesMut", |b| {
        let mut buf = BytesMut::with_capacity(2 * encoded.len());
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&payload[..]));
            black_box(buf.len())
        })
    });
    g.bench_function("decode DATA 64 KiB (zero-copy)", |b| {
        b.iter(|| Frame::decode(black_box(encoded.clone())).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode WINDOW", |b| {
        let mut buf = BytesMut::with_capacity(64);
        b.iter(|| {
            buf.clear();
            black_box(&window).encode(&mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("decode WINDOW", |b| {
        b.iter(|| Frame::decode(black_box(window_bytes.clone())).unwrap())
    });
    g.bench_function("peek_header", |b| {
        b.iter(|| tunnel::peek_header(black_box(&encoded[..])).unwrap())
    });
    g.finish();
}

/// Move `total` bytes split over `streams` streams from a client mux to a
/// server mux through the codec; the server consumes at once.
fn transfer(streams: usize, total: usize) {
    let now = Instant::now();
    let mut cc = Config::new(Role::Client);
    cc.ping_interval = Duration::ZERO;
    let mut sc = Config::new(Role::Server);
    sc.ping_interval = Duration::ZERO;
    let mut c = Mux::new(cc, now).unwrap();
    let mut s = Mux::new(sc, now).unwrap();
    let ids: Vec<StreamId> = (0..streams).map(|_| c.open("").unwrap()).collect();
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let mut left = vec![total / streams; streams];
    let mut received = 0usize;
    loop {
        for (i, id) in ids.iter().enumerate() {
            let n = left[i].min(c.send_capacity(*id)).min(chunk.len());
            if n > 0 {
                c.send(*id, chunk.slice(..n)).unwrap();
                left[i] -= n;
                if left[i] == 0 {
                    c.finish(*id).unwrap();
                }
            }
        }
        let mut moved = 0;
        while let Some(f) = c.poll_transmit() {
            s.handle_message(now, f.to_bytes());
            moved += 1;
        }
        while let Some(e) = s.poll_event() {
            match e {
                Event::StreamOpened { stream, .. } => s.accept(stream).unwrap(),
                Event::Data { stream, payload } => {
                    received += payload.len();
                    s.consumed(stream, payload.len());
                }
                _ => {}
            }
        }
        while let Some(f) = s.poll_transmit() {
            c.handle_message(now, f.to_bytes());
            moved += 1;
        }
        while c.poll_event().is_some() {}
        if received == total {
            break;
        }
        assert!(moved > 0 || left.iter().any(|l| *l > 0), "stalled");
    }
}

fn mux(c: &mut Criterion) {
    let total = 16 << 20;
    let mut g = c.benchmark_group("mux in memory");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    g.bench_function("1 stream, 16 MiB", |b| b.iter(|| transfer(1, total)));
    g.bench_function("8 streams, 16 MiB", |b| b.iter(|| transfer(8, total)));
    g.finish();
}

criterion_group!(benches, codec, mux);
criterion_main!(benches);
