//! Frame rewriter tests: random fragmentations and chunkings, control frames
//! interleaved, compressed and plain messages, context takeover on and off.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use proptest::prelude::*;

use super::frame::{TRAILER, apply_mask, parse_head, write_head};
use super::inbound::Inbound;
use super::outbound::Outbound;
use super::{DeflateConfig, DeflateError, DeflateParams};

const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_PING: u8 = 9;

fn params(server_nct: bool, client_nct: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: None,
    }
}

fn config() -> DeflateConfig {
    DeflateConfig {
        server_context_takeover: true,
        level: 6,
        min_size: 16,
        max_message_size: 1 << 20,
        max_frame_size: 4096,
    }
}

fn zdeflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2 + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&TRAILER));
    out.truncate(out.len() - 4);
    out
}

fn zinflate(d: &mut Decompress, data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&TRAILER);
    let mut out = Vec::with_capacity(1 << 21);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(
        d.total_in() as usize,
        input.len() + d.total_in() as usize - input.len()
    );
    out
}

/// One test message: what the client (or tungstenite) sends.
#[derive(Clone, Debug)]
struct Msg {
    opcode: u8,
    payload: Vec<u8>,
    compress: bool,
    /// Fragment cut points as fractions (0..=100) of the wire payload.
    cuts: Vec<u8>,
    /// A ping after the first fragment.
    ping: bool,
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    // Compressible: few distinct words, repeated.
    prop::collection::vec(0usize..6, 0..600).prop_map(|ws| {
        const WORDS: [&str; 6] = [
            "temp",
            "=21.5;",
            "pressure",
            "=1013;",
            "ok ",
            "\u{e9}t\u{e9} ",
        ];
        ws.iter().flat_map(|&i| WORDS[i].bytes()).collect()
    })
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        prop::bool::ANY,
        payload(),
        prop::bool::ANY,
        prop::collection::vec(0u8..=100, 0..3),
        prop::bool::ANY,
    )
        .prop_map(|(text, payload, compress, mut cuts, ping)| {
            cuts.sort_unstable();
            Msg {
                opcode: if text { OP_TEXT } else { OP_BINARY },
                payload,
                compress,
                cuts,
                ping,
            }
        })
}

/// Splits `data` at the cut fractions.
fn fragments<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    for &c in cuts {
        let at = data.len() * usize::from(c) / 100;
        if at >= start {
            parts.push(&data[start..at]);
            start = at;
        }
    }
    parts.push(&data[start..]);
    parts
}

/// Encodes messages as a client would: masked, RSV1 on the first frame of a
/// compressed message, pings between fragments.
fn client_bytes(msgs: &[Msg], takeover: bool, seed: u8) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(6), false);
    let mut wire = Vec::new();
    let mut k = seed;
    let mut key = || {
        k = k.wrapping_mul(31).wrapping_add(7);
        [k, k ^ 0x5a, k.wrapping_add(3), 0x42]
    };
    for m in msgs {
        let data = if m.compress {
            let z = zdeflate(&mut c, &m.payload);
            if !takeover {
                c.reset();
            }
            z
        } else {
            m.payload.clone()
        };
        let frags = fragments(&data, &m.cuts);
        let n = frags.len();
        for (i, f) in frags.iter().enumerate() {
            let op = if i == 0 { m.opcode } else { 0 };
            let k = key();
            write_head(
                &mut wire,
                i + 1 == n,
                i == 0 && m.compress,
                op,
                Some(k),
                f.len(),
            );
            let mut p = f.to_vec();
            apply_mask(&mut p, k);
            wire.extend_from_slice(&p);
            if i == 0 && m.ping {
                let k = key();
                write_head(&mut wire, true, false, OP_PING, Some(k), 4);
                let mut p = b"Ping".to_vec();
                apply_mask(&mut p, k);
                wire.extend_from_slice(&p);
            }
        }
    }
    wire
}

/// Parses frames into (messages, pings); checks RSV1 and frame sizes.
fn parse_frames(mut bytes: &[u8], max_frame: usize) -> (Vec<(u8, Vec<u8>)>, usize) {
    let mut msgs = Vec::new();
    let mut pings = 0;
    let mut cur: Option<(u8, Vec<u8>)> = None;
    while !bytes.is_empty() {
        let h = parse_head(bytes).expect("whole frame");
        assert!(!h.rsv1 && !h.rsv23, "plain frames only: {h:?}");
        assert!(h.len as usize <= max_frame, "frame of {} bytes", h.len);
        let end = h.head_len + h.len as usize;
        let mut p = bytes[h.head_len..end].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut p, k);
        }
        bytes = &bytes[end..];
        if h.opcode == OP_PING {
            pings += 1;
            continue;
        }
        match (&mut cur, h.opcode) {
            (None, op) if op != 0 => cur = Some((op, p)),
            (Some((_, acc)), 0) => acc.extend_from_slice(&p),
            other => panic!("bad frame sequence {:?}", other.1),
        }
        if h.fin {
            msgs.extend(cur.take());
        }
    }
    assert!(cur.is_none(), "unfinished message");
    (msgs, pings)
}

fn run_inbound(inb: &mut Inbound, wire: &[u8], chunks: &[usize]) -> Result<Vec<u8>, DeflateError> {
    let mut out = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        i += 1;
        inb.push(&rest[..n]);
        rest = &rest[n..];
        inb.process()?;
        out.extend_from_slice(inb.ready());
        let len = inb.ready().len();
        inb.consume(len);
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn inbound_round_trips(
        msgs in prop::collection::vec(msg(), 1..8),
        takeover in prop::bool::ANY,
        chunks in prop::collection::vec(1usize..300, 0..40),
        seed in 0u8..=255,
    ) {
        let wire = client_bytes(&msgs, takeover, seed);
        let mut inb = Inbound::new(params(false, !takeover), &config());
        let out = run_inbound(&mut inb, &wire, &chunks).unwrap();
        let (got, pings) = parse_frames(&out, config().max_frame_size);
        prop_assert_eq!(pings, msgs.iter().filter(|m| m.ping).count());
        prop_assert_eq!(got.len(), msgs.len());
        for (g, m) in got.iter().zip(&msgs) {
            prop_assert_eq!(g.0, m.opcode);
            prop_assert_eq!(&g.1, &m.payload);
        }
        prop_assert!(!inb.has_partial());
        // Without takeover the inflate state is returned after each message.
        if !takeover {
            prop_assert!(!inb.holds_inflater());
        }
    }

    #[test]
    fn outbound_round_trips(
        msgs in prop::collection::vec(msg(), 1..8),
        server_nct in prop::bool::ANY,
        chunks in prop::collection::vec(1usize..300, 0..40),
    ) {
        // What tungstenite writes: unmasked frames, pings between fragments.
        let mut plain = Vec::new();
        for m in &msgs {
            let frags = fragments(&m.payload, &m.cuts);
            let n = frags.len();
            for (i, f) in frags.iter().enumerate() {
                write_head(&mut plain, i + 1 == n, false, if i == 0 { m.opcode } else { 0 }, None, f.len());
                plain.extend_from_slice(f);
                if i == 0 && m.ping {
                    write_head(&mut plain, true, false, OP_PING, None, 2);
                    plain.extend_from_slice(b"hi");
                }
            }
        }
        let cfg = config();
        let mut out = Outbound::new(params(server_nct, false), &cfg);
        let mut wire = Vec::new();
        let mut rest = &plain[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks.get(i).copied().unwrap_or(rest.len()).clamp(1, rest.len());
            i += 1;
            prop_assert_eq!(out.push(&rest[..n]).unwrap(), n);
            rest = &rest[n..];
            wire.extend_from_slice(out.ready());
            let len = out.ready().len();
            out.consume(len);
        }
        prop_assert!(out.at_boundary());
        // Decode as a client: inflate RSV1 messages with one context.
        let mut d = Decompress::new(false);
        let mut bytes = &wire[..];
        let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut cur: Option<(u8, bool, Vec<u8>)> = None;
        while !bytes.is_empty() {
            let h = parse_head(bytes).unwrap();
            prop_assert!(h.mask.is_none());
            let p = bytes[h.head_len..h.head_len + h.len as usize].to_vec();
            bytes = &bytes[h.head_len + h.len as usize..];
            if h.opcode == OP_PING {
                prop_assert!(!h.rsv1);
                continue;
            }
            if h.opcode != 0 {
                prop_assert!(cur.is_none());
                cur = Some((h.opcode, h.rsv1, Vec::new()));
            } else {
                prop_assert!(!h.rsv1, "RSV1 on a continuation");
            }
            if let Some((_, _, acc)) = &mut cur {
                acc.extend_from_slice(&p);
            }
            if h.fin {
                let (op, z, data) = cur.take().unwrap();
                let data = if z {
                    if server_nct {
                        d = Decompress::new(false);
                    }
                    zinflate(&mut d, &data)
                } else {
                    data
                };
                got.push((op, data));
            }
        }
        prop_assert_eq!(got.len(), msgs.len());
        for (g, m) in got.iter().zip(&msgs) {
            prop_assert_eq!(g.0, m.opcode);
            prop_assert_eq!(&g.1, &m.payload);
        }
    }
}

#[test]
fn small_messages_go_out_plain_and_large_ones_shrink() {
    let cfg = config();
    let mut out = Outbound::new(params(true, false), &cfg);
    let mut plain = Vec::new();
    write_head(&mut plain, true, false, OP_BINARY, None, 5);
    plain.extend_from_slice(b"short");
    let big = b"property=42;".repeat(500);
    write_head(&mut plain, true, false, OP_BINARY, None, big.len());
    plain.extend_from_slice(&big);
    out.push(&plain).unwrap();
    let wire = out.ready().to_vec();
    let first = parse_head(&wire).unwrap();
    assert!(!first.rsv1);
    let second = parse_head(&wire[first.head_len + 5..]).unwrap();
    assert!(second.rsv1);
    assert!(second.len < big.len() as u64 / 10, "{}", second.len);
}

#[test]
fn decompression_bomb_is_refused() {
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 4 << 20];
    let z = zdeflate(&mut c, &zeros);
    assert!(z.len() < 8192, "{}", z.len());
    let mut wire = Vec::new();
    write_head(
        &mut wire,
        true,
        true,
        OP_BINARY,
        Some([1, 2, 3, 4]),
        z.len(),
    );
    let mut p = z.clone();
    apply_mask(&mut p, [1, 2, 3, 4]);
    wire.extend_from_slice(&p);
    let cfg = DeflateConfig {
        max_frame_size: 64 * 1024,
        ..config()
    };
    let mut inb = Inbound::new(params(false, false), &cfg);
    let err = run_inbound(&mut inb, &wire, &[]).unwrap_err();
    assert!(
        matches!(err, DeflateError::TooBig { limit } if limit == 1 << 20),
        "{err}"
    );
    assert_eq!(err.close_code(), 1009);
}

#[test]
fn oversized_compressed_frame_is_refused_before_buffering() {
    let mut wire = Vec::new();
    write_head(&mut wire, true, true, OP_BINARY, Some([0; 4]), 1 << 30);
    let mut inb = Inbound::new(params(false, false), &config());
    let err = run_inbound(&mut inb, &wire, &[]).unwrap_err();
    assert!(matches!(err, DeflateError::TooBig { limit: 4096 }), "{err}");
}

#[test]
fn protocol_errors() {
    let frame = |b0: u8, payload: &[u8]| {
        let mut w = vec![b0, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        w.extend_from_slice(payload);
        w
    };
    // RSV1 on a ping.
    let mut inb = Inbound::new(params(false, false), &config());
    let err = run_inbound(&mut inb, &frame(0x80 | 0x40 | OP_PING, b"x"), &[]).unwrap_err();
    assert_eq!(err.close_code(), 1002);
    // RSV1 on a continuation of an uncompressed message.
    let mut wire = frame(OP_BINARY, &[]);
    wire.extend(frame(0x80 | 0x40, &[]));
    let mut inb = Inbound::new(params(false, false), &config());
    assert_eq!(
        run_inbound(&mut inb, &wire, &[]).unwrap_err().close_code(),
        1002
    );
    // Garbage that is not DEFLATE (0xff: reserved block type 3).
    let mut inb = Inbound::new(params(false, false), &config());
    let err = run_inbound(
        &mut inb,
        &frame(0x80 | 0x40 | OP_BINARY, &[0xff, 0xff]),
        &[],
    )
    .unwrap_err();
    assert_eq!(err.close_code(), 1007, "{err}");
}

#[test]
fn empty_compressed_message_and_rfc_example() {
    // RFC 7692 §7.2.3.1: "Hello" compressed without context takeover.
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut wire = Vec::new();
    write_head(&mut wire, true, true, OP_TEXT, Some([0; 4]), hello.len());
    wire.extend_from_slice(&hello);
    // An empty compressed message is the single byte 0x00.
    write_head(&mut wire, true, true, OP_BINARY, Some([0; 4]), 1);
    wire.push(0x00);
    let mut inb = Inbound::new(params(false, true), &config());
    let out = run_inbound(&mut inb, &wire, &[3]).unwrap();
    let (msgs, _) = parse_frames(&out, 4096);
    assert_eq!(
        msgs,
        vec![(OP_TEXT, b"Hello".to_vec()), (OP_BINARY, Vec::new())]
    );
}

#[test]
fn large_inflated_message_is_split_into_frames() {
    let cfg = config();
    let big: Vec<u8> = (0..100_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut c = Compress::new(Compression::default(), false);
    let z = zdeflate(&mut c, &big);
    let mut wire = Vec::new();
    // Compressed data in 4 KiB frames (the frame limit).
    let frags: Vec<&[u8]> = z.chunks(4000).collect();
    for (i, f) in frags.iter().enumerate() {
        write_head(
            &mut wire,
            i + 1 == frags.len(),
            i == 0,
            if i == 0 { OP_BINARY } else { 0 },
            Some([9, 8, 7, 6]),
            f.len(),
        );
        let mut p = f.to_vec();
        apply_mask(&mut p, [9, 8, 7, 6]);
        wire.extend_from_slice(&p);
    }
    let mut inb = Inbound::new(params(false, false), &cfg);
    let out = run_inbound(&mut inb, &wire, &[]).unwrap();
    let (msgs, _) = parse_frames(&out, cfg.max_frame_size);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].1, big);
}

#[test]
fn fragmented_bomb_is_refused_across_frames() {
    // Each fragment inflates below the limit; together they pass it.
    let mut c = Compress::new(Compression::best(), false);
    let z = zdeflate(&mut c, &vec![b'a'; 3 << 20]);
    let mut wire = Vec::new();
    let frags: Vec<&[u8]> = z.chunks(z.len() / 4 + 1).collect();
    for (i, f) in frags.iter().enumerate() {
        let op = if i == 0 { OP_BINARY } else { 0 };
        write_head(
            &mut wire,
            i + 1 == frags.len(),
            i == 0,
            op,
            Some([0; 4]),
            f.len(),
        );
        wire.extend_from_slice(f);
    }
    let mut inb = Inbound::new(params(false, false), &config());
    let err = run_inbound(&mut inb, &wire, &[]).unwrap_err();
    assert!(
        matches!(err, DeflateError::TooBig { limit } if limit == 1 << 20),
        "{err}"
    );
}

#[test]
fn c_sdk_rsv1_on_every_fragment_is_tolerated() {
    // twWs_SendDataFrame sets RSV1 on each frame of a compressed message,
    // continuations included (it fragments when deflate made a chunk grow
    // past the frame size).
    let payload: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut c = Compress::new(Compression::default(), false);
    let z = zdeflate(&mut c, &payload);
    let mut wire = Vec::new();
    let frags: Vec<&[u8]> = z.chunks(4000).collect();
    for (i, f) in frags.iter().enumerate() {
        let op = if i == 0 { OP_BINARY } else { 0 };
        write_head(
            &mut wire,
            i + 1 == frags.len(),
            true,
            op,
            Some([0; 4]),
            f.len(),
        );
        wire.extend_from_slice(f);
    }
    let mut inb = Inbound::new(params(false, false), &config());
    let out = run_inbound(&mut inb, &wire, &[]).unwrap();
    let (msgs, _) = parse_frames(&out, 4096);
    assert_eq!(msgs, vec![(OP_BINARY, payload)]);
}
