//! Decode arbitrary bytes as one message: never a panic, and whatever
//! decodes re-encodes to the same bytes (HELLO may drop extension bytes).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tunnel::{Frame, Kind, peek_header};

fuzz_target!(|data: &[u8]| {
    let header = peek_header(data);
    if let Ok(frame) = Frame::decode(Bytes::copy_from_slice(data)) {
        assert!(header.is_ok());
        let again = frame.to_bytes();
        if frame.kind() == Kind::Hello {
            assert_eq!(&again[..], &data[..again.len()]);
        } else {
            assert_eq!(&again[..], data);
        }
    }
});
