//! Test harness: the shared broker harness of `test-support` (a broker on
//! 127.0.0.1:0 with in-memory hooks, a fake edge, a TCP echo target).
#![allow(dead_code, unused_imports)]

pub use test_support::broker::*;
