//! Message::decode on arbitrary bytes: never panics; whatever decodes re-encodes and decodes
//! to the same message.
#![no_main]

use alwayson::{Limits, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(m) = Message::decode(data, &limits) {
        let bytes = m.to_bytes().expect("a decoded message re-encodes");
        let again = Message::decode(&bytes, &limits).expect("re-encoded message decodes");
        assert_eq!(again, m);
    }
});
