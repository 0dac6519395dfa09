//! Feed arbitrary messages and application calls into a server and a client
//! Mux: never a panic, and a session that closes says so exactly once.
//!
//! Input: a sequence of records `op: u8, len: u8, body[len]`.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tunnel::{Config, Event, Frame, Hello, Mux, Role, StreamId};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    for role in [Role::Server, Role::Client] {
        let mut cfg = Config::new(role);
        cfg.initial_window = 4096;
        cfg.max_payload = 1024;
        cfg.ping_interval = Duration::from_secs(1);
        let Ok(mut mux) = Mux::new(cfg, t0) else {
            return;
        };
        // Start with a valid HELLO so stream logic is reached.
        mux.handle_frame(
            t0,
            Frame::Hello(Hello {
                version: 1,
                initial_window: 4096,
                max_payload: 1024,
                capabilities: 0,
            }),
        );
        let mut now = t0;
        let mut closed = 0;
        let mut rest = data;
        while let [op, len, tail @ ..] = rest {
            let n = usize::from(*len).min(tail.len());
            let (body, next) = tail.split_at(n);
            rest = next;
            let sid = StreamId::new(u32::from(*len) | 1);
            match op % 8 {
                0..=3 => mux.handle_message(now, Bytes::copy_from_slice(body)),
                4 => now += Duration::from_millis(u64::from(*len) * 20),
                5 => {
                    if let Some(id) = sid {
                        let _ = mux.accept(id);
                        let _ = mux.send(id, Bytes::copy_from_slice(body));
                    }
                }
                6 => {
                    if let Some(id) = sid {
                        mux.consumed(id, usize::from(*len) * 64);
                        let _ = mux.finish(id);
                    }
                }
                _ => {
                    let _ = mux.open("x");
                    if let Some(id) = sid {
                        let _ = mux.reset(id, 1, "fuzz");
                    }
                }
            }
            if mux.poll_timeout().is_some_and(|t| t <= now) {
                mux.handle_timeout(now);
            }
            while let Some(ev) = mux.poll_event() {
                if matches!(ev, Event::Closed { .. }) {
                    closed += 1;
                }
            }
            while let Some(f) = mux.poll_transmit() {
                let _ = f.to_bytes();
            }
        }
        assert!(closed <= 1, "Closed reported {closed} times");
        assert_eq!(closed == 1, mux.is_closed());
    }
});
