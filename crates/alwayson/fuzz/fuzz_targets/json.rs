//! InfoTable JSON parse on arbitrary bytes: never panics; a parsed table survives
//! binary encode/decode.
#![no_main]

use alwayson::{InfoTable, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(t) = InfoTable::from_json_slice(data, &limits) {
        let mut out = bytes::BytesMut::new();
        if t.encode(&mut out).is_ok() {
            let back = InfoTable::decode(&out, &limits).expect("encoded table decodes");
            assert_eq!(back, t);
        }
        let _ = t.to_json();
    }
});
