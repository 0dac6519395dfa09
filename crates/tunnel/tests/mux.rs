//! The sans-IO multiplexer: two Muxes wired back to back in memory, time
//! passed in by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tunnel::{
    CAP_QUIC, CAP_RESUME, Config, DEFAULT_MAX_PAYLOAD, DEFAULT_WINDOW, Event, Frame, Hello,
    Initiator, Mux, MuxError, PeerState, Role, SHARED_WINDOW, StreamId, close, reset,
};

fn cfg(role: Role) -> Config {
    let mut c = Config::new(role);
    c.ping_interval = Duration::ZERO;
    c
}

/// Move every queued frame from `a` to `b` through the codec.
fn pump(a: &mut Mux, b: &mut Mux, now: Instant) -> usize {
    let mut n = 0;
    while let Some(f) = a.poll_transmit() {
        let mut buf = BytesMut::new();
        f.encode(&mut buf);
        b.handle_message(now, buf.freeze());
        n += 1;
    }
    n
}

fn pump_all(c: &mut Mux, s: &mut Mux, now: Instant) {
    while pump(c, s, now) + pump(s, c, now) > 0 {}
}

fn events(m: &mut Mux) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn pair_with(cc: Config, sc: Config) -> (Mux, Mux, Instant) {
    let now = Instant::now();
    let mut c = Mux::new(cc, now).unwrap();
    let mut s = Mux::new(sc, now).unwrap();
    pump_all(&mut c, &mut s, now);
    (c, s, now)
}

fn pair() -> (Mux, Mux, Instant) {
    let (mut c, mut s, now) = pair_with(cfg(Role::Client), cfg(Role::Server));
    events(&mut c);
    events(&mut s);
    (c, s, now)
}

/// Open a stream from `c` and accept it on `s`.
fn open(c: &mut Mux, s: &mut Mux, now: Instant, label: &str) -> StreamId {
    let id = c.open(label).unwrap();
    pump_all(c, s, now);
    let ev = events(s);
    assert_eq!(
        ev,
        vec![Event::StreamOpened {
            stream: id,
            label: label.into()
        }]
    );
    s.accept(id).unwrap();
    pump_all(c, s, now);
    assert_eq!(events(c), vec![Event::StreamAccepted { stream: id }]);
    id
}

fn closed_with(m: &mut Mux, code: u16) -> String {
    let ev = events(m);
    match ev.last() {
        Some(Event::Closed {
            code: c,
            reason,
            initiator: Initiator::Local,
        }) if *c == code => reason.clone(),
        other => panic!("expected local close {code}, got {other:?} in {ev:?}"),
    }
}

fn data_of(ev: &[Event], id: StreamId) -> Vec<u8> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Data { stream, payload } if *stream == id => Some(payload.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn hello_negotiates_minimums_and_ignores_unknown_capabilities() {
    let mut cc = cfg(Role::Client);
    cc.initial_window = 64 * 1024;
    cc.capabilities = CAP_RESUME | CAP_QUIC | (1 << 7);
    let mut sc = cfg(Role::Server);
    sc.max_payload = 4096;
    sc.capabilities = CAP_QUIC | (1 << 7) | (1 << 31);
    let (mut c, mut s, _) = pair_with(cc, sc);
    let want = tunnel::Negotiated {
        version: 1,
        window: 64 * 1024,
        max_payload: 4096,
        capabilities: CAP_QUIC,
    };
    assert_eq!(events(&mut c), vec![Event::Ready(want)]);
    assert_eq!(events(&mut s), vec![Event::Ready(want)]);
}

#[test]
fn a_newer_peer_version_falls_back_to_ours_and_version_0_is_refused() {
    let now = Instant::now();
    let mut c = Mux::new(cfg(Role::Client), now).unwrap();
    let hello = |v| {
        Frame::Hello(Hello {
            version: v,
            initial_window: DEFAULT_WINDOW,
            max_payload: DEFAULT_MAX_PAYLOAD,
            capabilities: 0,
        })
    };
    c.handle_frame(now, hello(9));
    assert!(matches!(events(&mut c)[..], [Event::Ready(n)] if n.version == 1));
    let mut c = Mux::new(cfg(Role::Client), now).unwrap();
    c.handle_frame(now, hello(0));
    closed_with(&mut c, close::UNSUPPORTED_VERSION);
}

#[test]
fn bytes_flow_both_ways_and_half_close_ends_the_stream() {
    let (mut c, mut s, now) = pair();
    let id = open(&mut c, &mut s, now, "ssh");
    c.send(id, Bytes::from_static(b"hello")).unwrap();
    c.finish(id).unwrap();
    assert!(matches!(
        c.send(id, Bytes::from_static(b"x")),
        Err(MuxError::SendAfterFin(_))
    ));
    pump_all(&mut c, &mut s, now);
    let ev = events(&mut s);
    assert_eq!(data_of(&ev, id), b"hello");
    assert_eq!(ev.last(), Some(&Event::Fin { stream: id }));
    // Server still sends after the client's FIN (half-close).
    s.send(id, Bytes::from_static(b"world")).unwrap();
    s.finish(id).unwrap();
    pump_all(&mut c, &mut s, now);
    let ev = events(&mut c);
    assert_eq!(data_of(&ev, id), b"world");
    assert_eq!(ev.last(), Some(&Event::Fin { stream: id }));
    assert_eq!(c.stream_count(), 0);
    assert_eq!(s.stream_count(), 0);
    assert_eq!(c.stats().bytes_sent, 5);
    assert_eq!(c.stats().bytes_received, 5);
}

#[test]
fn refused_open_is_reset_with_code_and_reason() {
    let (mut c, mut s, now) = pair();
    let id = c.open("vnc").unwrap();
    pump_all(&mut c, &mut s, now);
    events(&mut s);
    s.reset(id, reset::NOT_ALLOWED, "vnc is not in the allow-list")
        .unwrap();
    pump_all(&mut c, &mut s, now);
    assert_eq!(
        events(&mut c),
        vec![Event::Reset {
            stream: id,
            code: reset::NOT_ALLOWED,
            reason: "vnc is not in the allow-list".into()
        }]
    );
    assert_eq!(c.stream_count(), 0);
    // Late frames for the dead stream are ignored, not a protocol error.
    c.handle_frame(now, Frame::Fin { stream: id });
    assert!(!c.is_closed());
}

#[test]
fn streams_opened_before_hello_go_out_after_it() {
    let now = Instant::now();
    let mut c = Mux::new(cfg(Role::Client), now).unwrap();
    let mut s = Mux::new(cfg(Role::Server), now).unwrap();
    let a = c.open("a").unwrap();
    let b = c.open("b").unwrap();
    assert_eq!((a.get(), b.get()), (1, 3));
    let hello = c.poll_transmit().unwrap();
    assert!(matches!(hello, Frame::Hello(_)));
    assert_eq!(c.poll_transmit(), None, "OPEN waits for the peer's HELLO");
    s.handle_frame(now, hello);
    pump_all(&mut c, &mut s, now);
    let opened: Vec<_> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::StreamOpened { stream, label } => Some((stream, label)),
            _ => None,
        })
        .collect();
    assert_eq!(opened, vec![(a, "a".into()), (b, "b".into())]);
}

#[test]
fn sender_never_exceeds_the_window_and_window_follows_consumption() {
    let mut cc = cfg(Role::Client);
    cc.initial_window = 8192;
    cc.max_payload = 1024;
    let (mut c, mut s, now) = pair_with(cc, cfg(Role::Server));
    events(&mut c);
    events(&mut s);
    let id = open(&mut c, &mut s, now, "");
    assert_eq!(c.send_capacity(id), 8192);
    let err = c.send(id, Bytes::from(vec![0; 8193])).unwrap_err();
    assert!(matches!(err, MuxError::OverCapacity { capacity: 8192, .. }));
    c.send(id, Bytes::from(vec![1; 8192])).unwrap();
    assert_eq!(c.send_capacity(id), 0);
    pump_all(&mut c, &mut s, now);
    let ev = events(&mut s);
    assert_eq!(data_of(&ev, id).len(), 8192);
    assert_eq!(ev.len(), 8, "split into max_payload frames");
    // Not consumed: no credit comes back.
    pump_all(&mut c, &mut s, now);
    assert_eq!(c.send_capacity(id), 0);
    // A little consumption is coalesced; a quarter window is granted.
    s.consumed(id, 1000);
    pump_all(&mut c, &mut s, now);
    assert_eq!(c.send_capacity(id), 0);
    s.consumed(id, 1048);
    pump_all(&mut c, &mut s, now);
    assert_eq!(c.send_capacity(id), 2048);
    assert_eq!(
        events(&mut c),
        vec![Event::Writable {
            stream: id,
            added: 2048
        }]
    );
    // Over-reporting is clamped to what was received.
    s.consumed(id, 1_000_000);
    pump_all(&mut c, &mut s, now);
    assert_eq!(c.send_capacity(id), 8192);
}

#[test]
fn a_stream_alone_uses_the_whole_window_and_a_shared_one_is_held_to_the_shared_window() {
    let (mut c, mut s, now) = pair();
    let window = DEFAULT_WINDOW as usize;
    let shared = SHARED_WINDOW as usize;
    assert!(shared < window);
    let bulk = open(&mut c, &mut s, now, "bulk");
    // Send a window's worth and let the receiver write it all out.
    let round = |c: &mut Mux, s: &mut Mux| {
        let n = c.send_capacity(bulk);
        c.send(bulk, Bytes::from(vec![7; n])).unwrap();
        pump_all(c, s, now);
        let got = data_of(&events(s), bulk).len();
        assert_eq!(got, n);
        s.consumed(bulk, got);
        pump_all(c, s, now);
        events(c);
        n
    };
    // Alone: the whole window, again and again.
    assert_eq!(round(&mut c, &mut s), window);
    assert_eq!(c.send_capacity(bulk), window);
    // A second stream opens: the bulk stream's grants are held back until
    // its credit is within the shared window; nothing is granted beyond
    // the bytes written.
    let keys = open(&mut c, &mut s, now, "keys");
    assert_eq!(
        round(&mut c, &mut s),
        window,
        "credit already granted stays"
    );
    assert!(
        c.send_capacity(bulk) <= shared,
        "credit {} above the shared window",
        c.send_capacity(bulk)
    );
    for _ in 0..4 {
        let n = round(&mut c, &mut s);
        assert!(n <= shared, "sent {n} while sharing");
        assert!(
            c.send_capacity(bulk) >= shared / 2,
            "the stream is not starved"
        );
    }
    // The other stream ends: the bulk stream gets the whole window back
    // as soon as it consumes again.
    c.finish(keys).unwrap();
    s.finish(keys).unwrap();
    pump_all(&mut c, &mut s, now);
    events(&mut c);
    events(&mut s);
    assert_eq!(s.stream_count(), 1);
    round(&mut c, &mut s);
    assert_eq!(c.send_capacity(bulk), window);
}

#[test]
fn round_robin_lets_a_keystroke_pass_a_bulk_transfer() {
    let (mut c, mut s, now) = pair();
    let bulk = open(&mut c, &mut s, now, "bulk");
    let keys = open(&mut c, &mut s, now, "keys");
    c.send(bulk, Bytes::from(vec![0; 200_000])).unwrap();
    c.send(keys, Bytes::from_static(b"l")).unwrap();
    let mut order = vec![];
    while let Some(f) = c.poll_transmit() {
        if let Frame::Data { stream, .. } = f {
            order.push(stream);
        }
    }
    assert_eq!(order.len(), 5);
    assert_eq!(
        order[1], keys,
        "the keystroke goes out second, not after 200 kB"
    );
}

#[test]
fn protocol_violations_close_the_session_with_a_reason() {
    type Act = Box<dyn Fn(&mut Mux, &mut Mux, Instant)>;
    let cases: Vec<(&str, Act, &str)> = vec![
        (
            "unknown stream",
            Box::new(|_c, s, now| {
                s.handle_frame(
                    now,
                    Frame::Data {
                        stream: StreamId::new(99).unwrap(),
                        payload: Bytes::from_static(b"x"),
                    },
                )
            }),
            "never opened",
        ),
        (
            "data beyond window",
            Box::new(|c, s, now| {
                let id = open(c, s, now, "");
                let big = Bytes::from(vec![0; DEFAULT_WINDOW as usize]);
                for chunk in big.chunks(DEFAULT_MAX_PAYLOAD as usize) {
                    s.handle_frame(
                        now,
                        Frame::Data {
                            stream: id,
                            payload: Bytes::copy_from_slice(chunk),
                        },
                    );
                }
                s.handle_frame(
                    now,
                    Frame::Data {
                        stream: id,
                        payload: Bytes::from_static(b"!"),
                    },
                );
            }),
            "beyond the window",
        ),
        (
            "oversize frame",
            Box::new(|c, s, now| {
                let id = open(c, s, now, "");
                let f = Frame::Data {
                    stream: id,
                    payload: Bytes::from(vec![0; DEFAULT_MAX_PAYLOAD as usize + 1]),
                };
                s.handle_message(now, f.to_bytes());
            }),
            "exceeds max_payload",
        ),
        (
            "unknown kind",
            Box::new(|_c, s, now| s.handle_message(now, Bytes::from_static(&[0x42, 0, 0, 0, 0]))),
            "unknown frame kind 0x42",
        ),
        (
            "even stream id",
            Box::new(|_c, s, now| {
                s.handle_frame(
                    now,
                    Frame::Open {
                        stream: StreamId::new(2).unwrap(),
                        label: String::new(),
                    },
                )
            }),
            "odd and increasing",
        ),
        (
            "reused stream id",
            Box::new(|c, s, now| {
                let id = open(c, s, now, "");
                s.handle_frame(
                    now,
                    Frame::Open {
                        stream: id,
                        label: String::new(),
                    },
                );
            }),
            "odd and increasing",
        ),
        (
            "second hello",
            Box::new(|_c, s, now| {
                s.handle_frame(
                    now,
                    Frame::Hello(Hello {
                        version: 1,
                        initial_window: 4096,
                        max_payload: 4096,
                        capabilities: 0,
                    }),
                )
            }),
            "second HELLO",
        ),
        (
            "data after fin",
            Box::new(|c, s, now| {
                let id = open(c, s, now, "");
                s.handle_frame(now, Frame::Fin { stream: id });
                s.handle_frame(
                    now,
                    Frame::Data {
                        stream: id,
                        payload: Bytes::from_static(b"x"),
                    },
                );
            }),
            "after FIN",
        ),
        (
            "data before OPEN_OK",
            Box::new(|c, s, now| {
                let id = c.open("").unwrap();
                pump_all(c, s, now);
                s.handle_frame(
                    now,
                    Frame::Data {
                        stream: id,
                        payload: Bytes::from_static(b"x"),
                    },
                );
            }),
            "before OPEN_OK",
        ),
        (
            "window overflow",
            Box::new(|c, s, now| {
                let id = open(c, s, now, "");
                s.handle_frame(
                    now,
                    Frame::Window {
                        stream: id,
                        increment: u32::MAX,
                    },
                );
            }),
            "overflows",
        ),
    ];
    for (name, act, want) in cases {
        let (mut c, mut s, now) = pair();
        act(&mut c, &mut s, now);
        let reason = closed_with(&mut s, close::PROTOCOL_ERROR);
        assert!(
            reason.contains(want),
            "{name}: reason {reason:?} lacks {want:?}"
        );
        // CLOSE is the one frame left to send, then nothing.
        assert_eq!(
            s.poll_transmit(),
            Some(Frame::Close {
                code: close::PROTOCOL_ERROR,
                reason: reason.clone()
            }),
            "{name}"
        );
        assert_eq!(s.poll_transmit(), None, "{name}");
        assert!(s.is_finished());
        // Later input is ignored.
        s.handle_frame(now, Frame::Ping { opaque: 1 });
        assert_eq!(s.poll_transmit(), None);
        // The client learns why.
        c.handle_frame(
            now,
            Frame::Close {
                code: close::PROTOCOL_ERROR,
                reason: reason.clone(),
            },
        );
        assert!(events(&mut c).contains(&Event::Closed {
            code: close::PROTOCOL_ERROR,
            reason,
            initiator: Initiator::Peer
        }));
    }
}

#[test]
fn stream_limit_resets_extra_opens_with_busy() {
    let mut sc = cfg(Role::Server);
    sc.max_streams = 2;
    let (mut c, mut s, now) = pair_with(cfg(Role::Client), sc);
    events(&mut c);
    let ids: Vec<_> = (0..3).map(|_| c.open("").unwrap()).collect();
    pump_all(&mut c, &mut s, now);
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [Event::Reset { stream, code: reset::BUSY, .. }] if *stream == ids[2]),
        "{ev:?}"
    );
    assert!(!s.is_closed());
}

#[test]
fn ping_measures_rtt_and_silence_means_peer_gone() {
    let t0 = Instant::now();
    let mut cc = Config::new(Role::Client);
    cc.ping_interval = Duration::from_secs(15);
    let mut c = Mux::new(cc, t0).unwrap();
    let mut s = Mux::new(cfg(Role::Server), t0).unwrap();
    pump_all(&mut c, &mut s, t0);
    // The first ping is due at once; the PONG comes back 40 ms later.
    assert_eq!(c.poll_timeout(), Some(t0));
    c.handle_timeout(t0);
    assert_eq!(pump(&mut c, &mut s, t0), 1);
    let t1 = t0 + Duration::from_millis(40);
    assert_eq!(pump(&mut s, &mut c, t1), 1);
    assert_eq!(c.rtt(), Some(Duration::from_millis(40)));
    // Next ping 15 s after the first.
    let t15 = t0 + Duration::from_secs(15);
    assert_eq!(c.poll_timeout(), Some(t15));
    c.handle_timeout(t15);
    assert!(matches!(c.poll_transmit(), Some(Frame::Ping { .. })));
    // Nothing more heard. Last heard at t1 (the PONG): gone at t1 + 30 s.
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    c.handle_timeout(t0 + Duration::from_secs(30));
    assert!(!c.is_closed(), "only 29.96 s of silence");
    while c.poll_transmit().is_some() {}
    assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(30)));
    c.handle_timeout(t1 + Duration::from_secs(30));
    let reason = closed_with(&mut c, close::PEER_GONE);
    assert!(reason.contains("nothing heard"), "{reason}");
    assert!(matches!(
        c.poll_transmit(),
        Some(Frame::Close {
            code: close::PEER_GONE,
            ..
        })
    ));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn any_frame_counts_as_life_and_pings_are_answered() {
    let t0 = Instant::now();
    let mut sc = Config::new(Role::Server);
    sc.ping_interval = Duration::from_secs(10);
    let mut s = Mux::new(sc, t0).unwrap();
    s.handle_timeout(t0);
    while s.poll_transmit().is_some() {}
    let t19 = t0 + Duration::from_secs(19);
    s.handle_frame(t19, Frame::Ping { opaque: 77 });
    assert_eq!(s.poll_transmit(), Some(Frame::Pong { opaque: 77 }));
    s.handle_timeout(t0 + Duration::from_secs(20));
    assert!(!s.is_closed(), "heard a PING at 19 s");
    s.handle_timeout(t19 + Duration::from_secs(20));
    assert!(s.is_closed());
}

#[test]
fn peer_notices_and_close_from_the_peer() {
    let (mut c, mut s, now) = pair();
    let id = open(&mut c, &mut s, now, "");
    c.handle_frame(
        now,
        Frame::Peer {
            state: PeerState::Left,
        },
    );
    c.handle_frame(
        now,
        Frame::Peer {
            state: PeerState::Attached,
        },
    );
    assert_eq!(
        events(&mut c),
        vec![
            Event::Peer(PeerState::Left),
            Event::Peer(PeerState::Attached)
        ]
    );
    assert_eq!(c.peer_state(), Some(PeerState::Attached));
    s.close(close::ENDED, "ended by admin");
    pump_all(&mut c, &mut s, now);
    assert_eq!(
        events(&mut c),
        vec![Event::Closed {
            code: close::ENDED,
            reason: "ended by admin".into(),
            initiator: Initiator::Peer
        }]
    );
    assert!(c.is_finished());
    assert_eq!(c.poll_transmit(), None);
    assert_eq!(c.send(id, Bytes::from_static(b"x")), Err(MuxError::Closed));
    assert_eq!(c.open(""), Err(MuxError::Closed));
}

#[test]
fn api_misuse_is_an_error_not_a_panic() {
    let (mut c, mut s, now) = pair();
    let ghost = StreamId::new(41).unwrap();
    assert_eq!(s.open(""), Err(MuxError::NotClient));
    assert_eq!(
        c.send(ghost, Bytes::new()),
        Err(MuxError::UnknownStream(ghost))
    );
    assert_eq!(c.finish(ghost), Err(MuxError::UnknownStream(ghost)));
    assert_eq!(c.reset(ghost, 0, ""), Err(MuxError::UnknownStream(ghost)));
    let id = open(&mut c, &mut s, now, "");
    assert_eq!(s.accept(id), Err(MuxError::NotPending(id)));
    c.consumed(ghost, 10);
    assert_eq!(c.send_capacity(ghost), 0);
    let mut bad = Config::new(Role::Client);
    bad.initial_window = 10;
    assert!(matches!(Mux::new(bad, now), Err(MuxError::Config(_))));
}

// ----- property: random interleavings ------------------------------------

#[derive(Debug, Clone)]
enum Step {
    /// Client queues up to n bytes on stream i (bounded by capacity).
    Write(usize, usize),
    /// Client finishes stream i.
    Finish(usize),
    /// Deliver up to n frames client → server.
    Deliver(usize),
    /// Deliver up to n frames server → client (WINDOW grants).
    Return(usize),
    /// Server application writes out up to n bytes of stream i.
    Consume(usize, usize),
}

fn arb_step(streams: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..streams, 1usize..20_000).prop_map(|(i, n)| Step::Write(i, n)),
        1 => (0..streams).prop_map(Step::Finish),
        4 => (1usize..10).prop_map(Step::Deliver),
        2 => (1usize..10).prop_map(Step::Return),
        4 => (0..streams, 1usize..20_000).prop_map(|(i, n)| Step::Consume(i, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn interleavings_respect_windows_and_deliver_in_order(
        steps in proptest::collection::vec(arb_step(3), 1..300),
    ) {
        let now = Instant::now();
        let mut cc = cfg(Role::Client);
        cc.initial_window = 8 * 1024;
        cc.max_payload = 1024;
        let mut c = Mux::new(cc, now).unwrap();
        let mut s = Mux::new(cfg(Role::Server), now).unwrap();
        pump_all(&mut c, &mut s, now);
        let window = 8 * 1024usize;
        let ids: Vec<StreamId> = (0..3).map(|_| c.open("").unwrap()).collect();
        pump_all(&mut c, &mut s, now);
        for id in &ids { s.accept(*id).unwrap(); }
        pump_all(&mut c, &mut s, now);
        events(&mut c);
        events(&mut s);

        let mut sent: HashMap<StreamId, Vec<u8>> = HashMap::new();
        let mut got: HashMap<StreamId, Vec<u8>> = HashMap::new();
        // Bytes the server app holds, not yet written out.
        let mut held: HashMap<StreamId, usize> = HashMap::new();
        let mut fin_got: HashMap<StreamId, bool> = HashMap::new();
        let mut finished = [false; 3];
        let mut up: VecDeque<Bytes> = VecDeque::new();
        let mut down: VecDeque<Bytes> = VecDeque::new();
        let mut counter = 0u8;

        let drain = |m: &mut Mux, q: &mut VecDeque<Bytes>| {
            while let Some(f) = m.poll_transmit() { q.push_back(f.to_bytes()); }
        };
        let mut all = steps.clone();
        // Finally: finish all, then run until quiet.
        all.extend((0..3).map(Step::Finish));
        all.extend(std::iter::repeat_n(Step::Deliver(1000), 1));
        for _ in 0..200 {
            all.push(Step::Consume(0, 100_000));
            all.push(Step::Consume(1, 100_000));
            all.push(Step::Consume(2, 100_000));
            all.push(Step::Return(1000));
            all.push(Step::Deliver(1000));
        }
        for step in all {
            match step {
                Step::Write(i, n) => {
                    let id = ids[i];
                    let n = n.min(c.send_capacity(id));
                    if n == 0 || finished[i] { continue; }
                    let data: Vec<u8> = (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                    c.send(id, Bytes::from(data.clone())).unwrap();
                    sent.entry(id).or_default().extend(data);
                }
                Step::Finish(i) => {
                    if !finished[i] { c.finish(ids[i]).unwrap(); finished[i] = true; }
                }
                Step::Deliver(n) => {
                    drain(&mut c, &mut up);
                    for _ in 0..n {
                        let Some(m) = up.pop_front() else { break };
                        s.handle_message(now, m);
                    }
                    while let Some(e) = s.poll_event() {
                        match e {
                            Event::Data { stream, payload } => {
                                got.entry(stream).or_default().extend_from_slice(&payload);
                                *held.entry(stream).or_default() += payload.len();
                                prop_assert!(held[&stream] <= window, "server holds more than a window");
                            }
                            Event::Fin { stream } => { fin_got.insert(stream, true); }
                            other => prop_assert!(false, "unexpected server event {:?}", other),
                        }
                    }
                }
                Step::Return(n) => {
                    drain(&mut s, &mut down);
                    for _ in 0..n {
                        let Some(m) = down.pop_front() else { break };
                        c.handle_message(now, m);
                    }
                    while let Some(e) = c.poll_event() {
                        prop_assert!(matches!(e, Event::Writable { .. }), "unexpected client event {:?}", e);
                    }
                }
                Step::Consume(i, n) => {
                    let id = ids[i];
                    let h = held.entry(id).or_default();
                    let n = n.min(*h);
                    *h -= n;
                    s.consumed(id, n);
                }
            }
            prop_assert!(!c.is_closed() && !s.is_closed(), "a side closed: {:?} {:?}", events(&mut c), events(&mut s));
        }
        for id in &ids {
            prop_assert_eq!(got.get(id).map(Vec::len), sent.get(id).map(Vec::len));
            prop_assert_eq!(got.get(id), sent.get(id), "bytes in order on {}", id);
            prop_assert!(fin_got.get(id).copied().unwrap_or(false), "FIN on {}", id);
        }
    }
}
