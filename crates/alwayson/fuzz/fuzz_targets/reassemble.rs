//! Reassembler on a sequence of arbitrary frames with advancing time: never panics and never
//! holds more than `max_pending` incomplete messages.
#![no_main]

use std::time::{Duration, Instant};

use alwayson::{Limits, Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message_size: 64 * 1024,
        max_pending: 4,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits, Duration::from_secs(50));
    let start = Instant::now();
    // Frames are separated by a length byte; the first byte of each frame also advances time.
    let mut rest = data;
    let mut secs = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (frame, next) = tail.split_at(n);
        secs += u64::from(len % 8);
        let _ = r.push(frame, start + Duration::from_secs(secs));
        assert!(r.pending() <= 4);
        rest = next;
    }
    r.expire(start + Duration::from_secs(secs + 50));
    assert_eq!(r.pending(), 0);
});
