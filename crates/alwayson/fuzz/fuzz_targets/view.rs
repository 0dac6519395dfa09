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
        let t_view = view::decode_infotable(data, &limits);
        let t_owned = InfoTable::decode(data, &limits);
        assert_eq!(t_view.as_ref().map(|t| t.to_owned()), t_owned.as_ref().cloned());
        if let (Ok(v), Ok(t)) = (&t_view, &t_owned) {
            // The lazy accessors read the validated bytes the same way.
            let flat: Vec<Primitive> = v.cells().map(|p| p.to_owned()).collect();
            let owned: Vec<Primitive> = t.rows.iter().flatten().cloned().collect();
            assert_eq!(flat, owned);
            for (lazy, row) in v.rows().zip(&t.rows) {
                let cells: Vec<Primitive> = lazy.iter().map(|p| p.to_owned()).collect();
                assert_eq!(&cells, row);
            }
            let built = v.to_cells();
            assert_eq!(built.cells().len(), owned.len());
            for f in &t.shape.fields {
                assert_eq!(v.index_of(&f.name), t.shape.index_of(&f.name));
                assert_eq!(v.value(&f.name).map(|p| p.to_owned()).as_ref(), t.value(&f.name));
            }
            let pv = v
                .property_values()
                .map(|p| p.iter().map(view::PropertyValueRef::to_owned).collect::<Vec<_>>());
            assert_eq!(pv, t.property_values());
        }
        let p = view::PrimitiveRef::decode(data, &limits).map(|p| p.to_owned());
        assert_eq!(p, Primitive::decode(data, &limits));
    }
});
