//! Frame codec: golden bytes written by hand from the table in
//! spec/tunnel.md, round-trip and robustness properties.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tunnel::{
    DEFAULT_MAX_PAYLOAD, Frame, FrameError, HARD_MAX_PAYLOAD, Hello, Kind, MAX_TEXT_LEN, PeerState,
    StreamId, peek_header,
};

fn sid(n: u32) -> StreamId {
    StreamId::new(n).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn golden() -> Vec<(&'static str, Frame, Vec<u8>)> {
    vec![
        (
            "HELLO v1, window 256 KiB, payload 64 KiB-16, no caps",
            Frame::Hello(Hello {
                version: 1,
                initial_window: 256 * 1024,
                max_payload: 65520,
                capabilities: 0,
            }),
            hex("01 00000000 01 00040000 0000fff0 00000000"),
        ),
        (
            "OPEN 1 \"ssh\"",
            Frame::Open {
                stream: sid(1),
                label: "ssh".into(),
            },
            hex("02 00000001 737368"),
        ),
        (
            "OPEN 3 empty label",
            Frame::Open {
                stream: sid(3),
                label: String::new(),
            },
            hex("02 00000003"),
        ),
        (
            "OPEN_OK 3",
            Frame::OpenOk { stream: sid(3) },
            hex("03 00000003"),
        ),
        (
            "DATA 1 \"hi\"",
            Frame::Data {
                stream: sid(1),
                payload: Bytes::from_static(b"hi"),
            },
            hex("04 00000001 6869"),
        ),
        (
            "WINDOW 1 +65536",
            Frame::Window {
                stream: sid(1),
                increment: 65536,
            },
            hex("05 00000001 00010000"),
        ),
        ("FIN 5", Frame::Fin { stream: sid(5) }, hex("06 00000005")),
        (
            "RESET 7 code 1 \"refused\"",
            Frame::Reset {
                stream: sid(7),
                code: 1,
                reason: "refused".into(),
            },
            hex("07 00000007 0001 72656675736564"),
        ),
        (
            "PING",
            Frame::Ping {
                opaque: 0x0102_0304_0506_0708,
            },
            hex("08 00000000 0102030405060708"),
        ),
        (
            "PONG",
            Frame::Pong {
                opaque: 0xfffe_fdfc_fbfa_f9f8,
            },
            hex("09 00000000 fffefdfcfbfaf9f8"),
        ),
        (
            "PEER attached",
            Frame::Peer {
                state: PeerState::Attached,
            },
            hex("0a 00000000 01"),
        ),
        (
            "PEER left",
            Frame::Peer {
                state: PeerState::Left,
            },
            hex("0a 00000000 00"),
        ),
        (
            "CLOSE 1002 \"bad\"",
            Frame::Close {
                code: 1002,
                reason: "bad".into(),
            },
            hex("0b 00000000 03ea 626164"),
        ),
    ]
}

#[test]
fn golden_encode_and_decode_every_kind() {
    let cases = golden();
    let mut kinds: Vec<Kind> = cases.iter().map(|(_, f, _)| f.kind()).collect();
    kinds.dedup();
    assert_eq!(kinds.len(), 11, "one golden case per kind at least");
    for (name, frame, bytes) in cases {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        assert_eq!(&buf[..], &bytes[..], "encode {name}");
        assert_eq!(frame.encoded_len(), bytes.len(), "encoded_len {name}");
        assert_eq!(
            Frame::decode(Bytes::from(bytes.clone())).unwrap(),
            frame,
            "decode {name}"
        );
        assert_eq!(
            Frame::decode_slice(&bytes).unwrap(),
            frame,
            "decode_slice {name}"
        );
        let h = peek_header(&bytes).unwrap();
        assert_eq!(h.kind, frame.kind(), "peek kind {name}");
        assert_eq!(
            h.stream,
            frame.stream().map_or(0, StreamId::get),
            "peek stream {name}"
        );
        assert_eq!(h.body_len, bytes.len() - 5);
    }
}

#[test]
fn data_payload_is_a_zero_copy_slice() {
    let msg = Bytes::from(hex("04 00000009 0102030405"));
    let base = msg.as_ptr() as usize;
    let Frame::Data { stream, payload } = Frame::decode(msg.clone()).unwrap() else {
        panic!("not DATA")
    };
    assert_eq!(stream.get(), 9);
    assert_eq!(
        payload.as_ptr() as usize,
        base + 5,
        "payload points into the message"
    );
}

#[test]
fn hello_ignores_trailing_extension_bytes() {
    let mut b = hex("01 00000000 01 00040000 0000fff0 00000003");
    b.extend_from_slice(&[0xaa, 0xbb]);
    let Frame::Hello(h) = Frame::decode_slice(&b).unwrap() else {
        panic!("not HELLO")
    };
    assert_eq!(h.capabilities, 3);
}

#[test]
fn bad_messages_get_typed_errors() {
    let e = |s: &str| Frame::decode_slice(&hex(s)).unwrap_err();
    assert_eq!(e(""), FrameError::ShortHeader { len: 0 });
    assert_eq!(e("04 000000"), FrameError::ShortHeader { len: 4 });
    assert_eq!(e("0c 00000000"), FrameError::UnknownKind(0x0c));
    assert_eq!(e("00 00000000"), FrameError::UnknownKind(0));
    assert_eq!(
        e("04 00000000 01"),
        FrameError::BadStream {
            kind: Kind::Data,
            stream: 0
        }
    );
    assert_eq!(
        e("08 00000001 0000000000000000"),
        FrameError::BadStream {
            kind: Kind::Ping,
            stream: 1
        }
    );
    assert_eq!(
        e("06 00000001 00"),
        FrameError::TrailingBytes {
            kind: Kind::Fin,
            extra: 1
        }
    );
    assert_eq!(
        e("05 00000001 0001"),
        FrameError::ShortBody {
            kind: Kind::Window,
            len: 2,
            need: 4
        }
    );
    assert_eq!(
        e("01 00000000 01 00040000"),
        FrameError::ShortBody {
            kind: Kind::Hello,
            len: 5,
            need: 13
        }
    );
    assert_eq!(
        e("02 00000001 ff"),
        FrameError::BadUtf8 { kind: Kind::Open }
    );
    assert_eq!(e("0a 00000000 02"), FrameError::BadPeerState(2));
    assert_eq!(
        e("07 00000001 00"),
        FrameError::ShortBody {
            kind: Kind::Reset,
            len: 1,
            need: 2
        }
    );
    // Errors read well.
    assert_eq!(e("0c 00000000").to_string(), "unknown frame kind 0x0c");
}

#[test]
fn limits_are_enforced() {
    let mut big = hex("04 00000001");
    big.resize(5 + 100, 7);
    assert_eq!(
        Frame::decode_with_limit(Bytes::from(big.clone()), 99).unwrap_err(),
        FrameError::TooLarge {
            kind: Kind::Data,
            len: 100,
            max: 99
        }
    );
    assert!(Frame::decode_with_limit(Bytes::from(big), 100).is_ok());
    let mut huge = hex("04 00000001");
    huge.resize(5 + HARD_MAX_PAYLOAD as usize + 1, 0);
    assert!(matches!(
        Frame::decode_with_limit(Bytes::from(huge), u32::MAX),
        Err(FrameError::TooLarge { .. })
    ));
    let mut label = hex("02 00000001");
    label.resize(5 + MAX_TEXT_LEN + 1, b'a');
    assert_eq!(
        Frame::decode_slice(&label).unwrap_err(),
        FrameError::TextTooLong {
            kind: Kind::Open,
            len: MAX_TEXT_LEN + 1
        }
    );
}

#[test]
fn clamp_text_cuts_on_a_char_boundary() {
    let s = "é".repeat(MAX_TEXT_LEN); // 2 bytes each
    let c = tunnel::clamp_text(&s);
    assert!(c.len() <= MAX_TEXT_LEN);
    assert_eq!(c.len(), MAX_TEXT_LEN);
    let odd = format!("a{}", "é".repeat(MAX_TEXT_LEN));
    assert_eq!(tunnel::clamp_text(&odd).len(), MAX_TEXT_LEN - 1);
}

fn arb_sid() -> impl Strategy<Value = StreamId> {
    (1u32..).prop_map(|n| StreamId::new(n).unwrap())
}

fn arb_text() -> impl Strategy<Value = String> {
    "\\PC{0,40}".prop_map(|s| tunnel::clamp_text(&s).to_owned())
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(v, w, p, c)| {
            Frame::Hello(Hello {
                version: v,
                initial_window: w,
                max_payload: p,
                capabilities: c,
            })
        }),
        (arb_sid(), arb_text()).prop_map(|(stream, label)| Frame::Open { stream, label }),
        arb_sid().prop_map(|stream| Frame::OpenOk { stream }),
        (arb_sid(), proptest::collection::vec(any::<u8>(), 0..2048)).prop_map(|(stream, p)| {
            Frame::Data {
                stream,
                payload: Bytes::from(p),
            }
        }),
        (arb_sid(), any::<u32>())
            .prop_map(|(stream, increment)| Frame::Window { stream, increment }),
        arb_sid().prop_map(|stream| Frame::Fin { stream }),
        (arb_sid(), any::<u16>(), arb_text()).prop_map(|(stream, code, reason)| Frame::Reset {
            stream,
            code,
            reason
        }),
        any::<u64>().prop_map(|opaque| Frame::Ping { opaque }),
        any::<u64>().prop_map(|opaque| Frame::Pong { opaque }),
        prop_oneof![Just(PeerState::Left), Just(PeerState::Attached)]
            .prop_map(|state| Frame::Peer { state }),
        (any::<u16>(), arb_text()).prop_map(|(code, reason)| Frame::Close { code, reason }),
    ]
}

proptest! {
    #[test]
    fn decode_encode_roundtrip(frame in arb_frame()) {
        let bytes = frame.to_bytes();
        prop_assert_eq!(bytes.len(), frame.encoded_len());
        prop_assert_eq!(Frame::decode_with_limit(bytes, DEFAULT_MAX_PAYLOAD).unwrap(), frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let r = Frame::decode_slice(&bytes);
        let p = peek_header(&bytes);
        // A decodable message always has a valid header, and re-encodes to
        // the same bytes (HELLO may drop trailing extension bytes).
        if let Ok(f) = r {
            prop_assert!(p.is_ok());
            let again = f.to_bytes();
            if f.kind() == Kind::Hello {
                prop_assert_eq!(&again[..], &bytes[..again.len()]);
            } else {
                prop_assert_eq!(&again[..], &bytes[..]);
            }
        }
    }

    #[test]
    fn mutated_valid_frames_never_panic(frame in arb_frame(), pos in any::<usize>(), val in any::<u8>(), cut in any::<usize>()) {
        let mut b = frame.to_bytes().to_vec();
        let i = pos % b.len();
        b[i] = val;
        b.truncate(cut % (b.len() + 1));
        let _ = Frame::decode_slice(&b);
        let _ = peek_header(&b);
    }
}
