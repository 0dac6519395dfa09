//! view::decode on arbitrary bytes: never panics, and agrees with Message::decode (same
//! message or the same error), with default and with tight limits.
#![no_main]

use alwayson::{InfoTable, Limits, Message, Primitive, view};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tight = Limits {
        max_message_size: 4096,
        max_string: 64,
        max_rows: 4,
        max_fields: 4,
        max_depth: 3,
        max_pending: 4,
    };
    for limits in [Limits::default(), tight] {
        let owned = Message::decode(data, &limits);
        let viewed = view::decode(data, &limits).map(|v| v.to_owned());
        assert_eq!(viewed, owned);
        let t = view::decode_infotable(data, &limits).map(|t| t.to_owned());
        assert_eq!(t, InfoTable::decode(data, &limits));
        let p = view::PrimitiveRef::decode(data, &limits).map(|p| p.to_owned());
        assert_eq!(p, Primitive::decode(data, &limits));
    }
});
