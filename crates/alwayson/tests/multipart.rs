//! Multipart: split/reassemble round trips, the captured chunk layouts, C SDK variants, limits, expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use alwayson::{
    BaseType, Characteristic, ChunkHeader, Code, DecodeError, EntityType, FieldDef, Header,
    InfoTable, Limits, Message, Primitive, Reassembler, RequestBody, split,
};
use common::b;

const EMS: u32 = 0x00C0_FFEE;

/// The EMS reply to `Big(n)`: `result` STRING of n x's with aspect persist=false (run2 #92-94).
fn big_reply(n: usize) -> Message {
    let mut f = FieldDef::new("result", BaseType::String);
    f.aspects
        .push(("persist".into(), Primitive::Boolean(false)));
    let mut t = InfoTable::new(vec![f]);
    t.rows.push(vec![Primitive::String("x".repeat(n))]);
    let req = Header {
        code: Code::POST,
        request_id: 1011,
        endpoint_id: 0,
        session_id: EMS,
    };
    Message::response(&req, Code::SUCCESS, Some(t))
}

/// The server's `Echo` request with `s` = n y's (run2 #99-100).
fn echo_request(n: usize) -> Message {
    let params = InfoTable::single_row([("s", Primitive::String("y".repeat(n)))]);
    let body = RequestBody::new(
        EntityType::THING,
        "LsrThing",
        Characteristic::SERVICES,
        "Echo",
    )
    .with_params(params);
    Message::request(Code::POST, 2001, EMS, body)
}

fn reassemble(frames: &[impl AsRef<[u8]>]) -> Message {
    let mut r = Reassembler::new(Limits::default(), Reassembler::DEFAULT_TIMEOUT);
    let now = Instant::now();
    let mut out = None;
    for (i, f) in frames.iter().enumerate() {
        let got = r.push(f.as_ref(), now).expect("chunk accepted");
        assert_eq!(
            got.is_some(),
            i + 1 == frames.len(),
            "complete only after the last chunk"
        );
        out = got;
    }
    assert_eq!(r.pending(), 0);
    out.expect("message")
}

#[test]
fn response_chunks_match_capture() {
    let m = big_reply(20000);
    let frames = split(&m, 8192).unwrap();
    let lens: Vec<usize> = frames.iter().map(|f| f.len()).collect();
    assert_eq!(lens, [8192, 8192, 3713]);
    let head = b(
        "0140000003f30000000000c0ffee0100010003200000050106726573756c740000000107706572736973740200000100010080004e207878",
    );
    assert_eq!(&frames[0][..head.len()], &head[..]);
    let c3 = ChunkHeader::peek(&frames[2]).unwrap().unwrap();
    assert_eq!((c3.chunk_id, c3.chunk_count, c3.chunk_size), (3, 3, 8192));
    assert_eq!(reassemble(&frames), m);
}

#[test]
fn request_chunks_repeat_entity_prefix_like_capture() {
    let m = echo_request(12000);
    let frames = split(&m, 8192).unwrap();
    let lens: Vec<usize> = frames.iter().map(|f| f.len()).collect();
    assert_eq!(lens, [8192, 3895]);
    let head1 = b(
        "0103000007d10000000000c0ffee010001000220000a084c73725468696e6702044563686f000501017300000000000100010080002ee07979",
    );
    assert_eq!(&frames[0][..head1.len()], &head1[..]);
    let head2 = b("0103000007d10000000000c0ffee010002000220000a084c73725468696e677979");
    assert_eq!(&frames[1][..head2.len()], &head2[..]);
    assert_eq!(reassemble(&frames), m);
}

/// C SDK layout: chunk 1's slice includes the prefix (so it is shorter), later chunks repeat it,
/// and `len/effective + 1` chunks (an empty last chunk when the body is an exact multiple).
fn csdk_chunks(m: &Message, chunk_size: usize) -> Vec<Vec<u8>> {
    let whole = m.to_bytes().unwrap();
    let body = &whole[15..];
    let prefix_len = 2 + "LsrThing".len();
    let effective = chunk_size - 21 - prefix_len;
    let count = body.len() / effective + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let mut f = whole[..15].to_vec();
        f[14] = 1;
        f.extend_from_slice(&(i as u16 + 1).to_be_bytes());
        f.extend_from_slice(&(count as u16).to_be_bytes());
        f.extend_from_slice(&(chunk_size as u16).to_be_bytes());
        if i > 0 {
            f.extend_from_slice(&body[..prefix_len]);
        }
        f.extend_from_slice(
            &body[(i * effective).min(body.len())..((i + 1) * effective).min(body.len())],
        );
        out.push(f);
    }
    out
}

#[test]
fn csdk_layout_and_empty_last_chunk() {
    let m = echo_request(12000);
    assert_eq!(reassemble(&csdk_chunks(&m, 8192)), m);
    // Find a string length that makes the body an exact multiple of the effective size.
    let effective = 8192 - 21 - 10;
    let base = echo_request(0).to_bytes().unwrap().len() - 15;
    let n = 2 * effective - base - 3; // 4-byte length prefix instead of 1 byte
    let m = echo_request(n);
    assert_eq!((m.to_bytes().unwrap().len() - 15) % effective, 0);
    let frames = csdk_chunks(&m, 8192);
    assert_eq!(frames.len(), 3);
    assert_eq!(
        frames[2].len(),
        21 + 10,
        "last chunk carries only the prefix"
    );
    assert_eq!(reassemble(&frames), m);
    // Our splitter uses ceil division: no empty chunk.
    assert_eq!(split(&m, 8192).unwrap().len(), 2);
}

#[test]
fn exact_multiple_response_and_out_of_order() {
    let effective = 8192 - 21;
    let base = big_reply(0).to_bytes().unwrap().len() - 15;
    let m = big_reply(3 * effective - base - 3);
    let mut frames = split(&m, 8192).unwrap();
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f.len() == 8192));
    frames.reverse();
    assert_eq!(reassemble(&frames), m);
}

#[test]
fn small_message_is_one_frame() {
    let m = big_reply(10);
    let frames = split(&m, 8192).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0], m.to_bytes().unwrap());
    assert_eq!(reassemble(&frames), m);
    assert!(
        split(&echo_request(100), 30).is_err(),
        "chunk too small for headers and prefix"
    );
    assert!(
        split(&big_reply(100_000), 70_000).is_err(),
        "chunk size field is u16"
    );
}

fn chunk(code: u8, id: u16, count: u16, data: &[u8]) -> Vec<u8> {
    let mut f = b(&format!("01 {code:02x} 00000009 00000000 00000001 01"));
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&count.to_be_bytes());
    f.extend_from_slice(&8192u16.to_be_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn bad_chunk_numbers_rejected() {
    let now = Instant::now();
    let mut r = Reassembler::new(Limits::default(), Reassembler::DEFAULT_TIMEOUT);
    assert_eq!(
        r.push(&chunk(0x40, 3, 2, b"x"), now),
        Err(DecodeError::BadChunk { id: 3, count: 2 })
    );
    assert_eq!(
        r.push(&chunk(0x40, 0, 2, b"x"), now),
        Err(DecodeError::BadChunk { id: 0, count: 2 })
    );
    assert_eq!(r.push(&chunk(0x40, 1, 2, b"x"), now), Ok(None));
    assert_eq!(
        r.push(&chunk(0x40, 1, 2, b"x"), now),
        Err(DecodeError::ChunkMismatch(9)),
        "duplicate"
    );
    assert_eq!(r.pending(), 0, "a failed set is dropped");
    assert_eq!(r.push(&chunk(0x40, 1, 2, b"x"), now), Ok(None));
    assert_eq!(
        r.push(&chunk(0x40, 2, 3, b"x"), now),
        Err(DecodeError::ChunkMismatch(9)),
        "count changed"
    );
}

#[test]
fn oversize_rejected() {
    let limits = Limits {
        max_message_size: 10_000,
        ..Limits::default()
    };
    let now = Instant::now();
    let mut r = Reassembler::new(limits, Reassembler::DEFAULT_TIMEOUT);
    let data = vec![b'x'; 6000];
    assert_eq!(r.push(&chunk(0x40, 1, 2, &data), now), Ok(None));
    let err = r.push(&chunk(0x40, 2, 2, &data), now).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }), "{err:?}");
    assert_eq!(err.response_code(), Code::ENTITY_TOO_LARGE);
    assert_eq!(r.pending(), 0);
    let err = r.push(&chunk(0x40, 1, 60_000, b""), now).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooLarge {
                what: "chunk count",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn expiry_and_pending_cap() {
    let t0 = Instant::now();
    let limits = Limits {
        max_pending: 2,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits, Duration::from_secs(50));
    let mut c = chunk(0x40, 1, 2, b"x");
    assert_eq!(r.push(&c, t0), Ok(None));
    c[5] = 10; // another request id
    assert_eq!(r.push(&c, t0 + Duration::from_secs(10)), Ok(None));
    c[5] = 11;
    assert_eq!(
        r.push(&c, t0 + Duration::from_secs(20)),
        Err(DecodeError::TooManyPending(2))
    );
    assert!(r.expire(t0 + Duration::from_secs(49)).is_empty());
    let gone = r.expire(t0 + Duration::from_secs(50));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].request_id, 9);
    assert_eq!(r.push(&c, t0 + Duration::from_secs(55)), Ok(None));
    assert_eq!(r.pending(), 2);
    // A full table frees expired sets (request 10, started at 10 s) before refusing.
    c[5] = 12;
    assert_eq!(r.push(&c, t0 + Duration::from_secs(61)), Ok(None));
    assert_eq!(r.pending(), 2);
    assert_eq!(r.expire(t0 + Duration::from_secs(200)).len(), 2);
}
