//! Property tests: round trips of every message kind and base type, hostile bytes never panic
//! and decoded values respect the limits, split/reassemble in any order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use alwayson::{
    AuthBody, BaseType, BindBody, Body, Characteristic, Code, EntityType, FieldDef, Gateway,
    Header, InfoTable, Limits, Location, Message, Primitive, Reassembler, RequestBody,
    ResponseBody, TextKind, split, view,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[ -~]{0,12}", 1 => "\\PC{120,140}"]
}

fn text_kind() -> impl Strategy<Value = TextKind> {
    let kinds: Vec<TextKind> = BaseType::ALL
        .iter()
        .filter_map(|t| TextKind::new(*t))
        .collect();
    proptest::sample::select(kinds)
}

fn leaf() -> BoxedStrategy<Primitive> {
    prop_oneof![
        Just(Primitive::Nothing),
        text().prop_map(Primitive::String),
        (text_kind(), text()).prop_map(|(k, s)| Primitive::Text(k, s)),
        any::<f64>().prop_map(Primitive::Number),
        any::<bool>().prop_map(Primitive::Boolean),
        any::<i64>().prop_map(Primitive::DateTime),
        (any::<f64>(), any::<f64>(), any::<f64>()).prop_map(|(a, b, c)| Primitive::Location(
            Location {
                longitude: a,
                latitude: b,
                elevation: c
            }
        )),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Primitive::Image),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Primitive::Blob),
        any::<i32>().prop_map(Primitive::Integer),
        any::<i64>().prop_map(Primitive::Long),
    ]
    .boxed()
}

fn table_of(cell: BoxedStrategy<Primitive>) -> BoxedStrategy<InfoTable> {
    let field = (
        text(),
        text(),
        proptest::sample::select(BaseType::ALL),
        proptest::collection::vec((text(), leaf()), 0..2),
    )
        .prop_map(|(name, description, base_type, aspects)| FieldDef {
            name,
            description,
            base_type,
            aspects,
        });
    (
        proptest::collection::vec(field, 0..4),
        proptest::collection::vec(proptest::collection::vec(cell, 0..4), 0..3),
    )
        .prop_map(|(fields, rows)| {
            let mut t = InfoTable::new(fields);
            t.rows = rows;
            t
        })
        .boxed()
}

fn primitive() -> BoxedStrategy<Primitive> {
    leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(Primitive::variant),
                table_of(inner).prop_map(|t| Primitive::InfoTable(Box::new(t))),
            ]
        })
        .boxed()
}

fn table() -> BoxedStrategy<InfoTable> {
    table_of(primitive())
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((text(), text()), 0..3)
}

fn message() -> impl Strategy<Value = Message> {
    let ids = (any::<u32>(), any::<u32>(), any::<u32>());
    let request = (
        1u8..=4,
        any::<u8>(),
        text(),
        any::<u8>(),
        text(),
        pairs(),
        proptest::option::of(table()),
    )
        .prop_map(|(code, et, entity_name, ch, target, headers, params)| {
            (
                Code(code),
                Body::Request(RequestBody {
                    entity_type: EntityType(et),
                    entity_name,
                    characteristic: Characteristic(ch),
                    target,
                    headers,
                    params,
                }),
            )
        });
    let response = (
        0x40u8..=0xFF,
        proptest::option::of(text()),
        proptest::option::of(table()),
    )
        .prop_map(|(code, reason, content)| {
            (Code(code), Body::Response(ResponseBody { reason, content }))
        });
    let auth = pairs().prop_map(|claims| (Code::AUTH, Body::Auth(AuthBody { claims })));
    let bind = (
        prop_oneof![Just(Code::BIND), Just(Code::UNBIND)],
        proptest::option::of((text(), text()).prop_map(|(name, kind)| Gateway { name, kind })),
        proptest::collection::vec(text(), 0..4),
    )
        .prop_map(|(code, gateway, names)| (code, Body::Bind(BindBody { gateway, names })));
    let keep_alive = Just((Code::KEEP_ALIVE, Body::KeepAlive));
    (ids, prop_oneof![request, response, auth, bind, keep_alive]).prop_map(
        |((request_id, endpoint_id, session_id), (code, body))| Message {
            header: Header {
                code,
                request_id,
                endpoint_id,
                session_id,
            },
            body,
        },
    )
}

/// Walks a decoded message and checks every length against the limits.
fn within(m: &Message, l: &Limits) -> bool {
    fn s(x: &str, l: &Limits) -> bool {
        x.len() <= l.max_string
    }
    fn p(v: &Primitive, l: &Limits, depth: usize) -> bool {
        match v {
            Primitive::String(x) | Primitive::Text(_, x) => s(x, l),
            Primitive::Image(b) | Primitive::Blob(b) => b.len() <= l.max_string,
            Primitive::Variant(i) => depth < l.max_depth && p(i, l, depth + 1),
            Primitive::InfoTable(t) => depth < l.max_depth && t_ok(t, l, depth + 1),
            _ => true,
        }
    }
    fn t_ok(t: &InfoTable, l: &Limits, depth: usize) -> bool {
        t.shape.fields.len() <= l.max_fields
            && t.rows.len() <= l.max_rows
            && t.shape
                .fields
                .iter()
                .all(|f| s(&f.name, l) && f.aspects.iter().all(|(n, v)| s(n, l) && p(v, l, depth)))
            && t.rows
                .iter()
                .all(|r| r.len() <= l.max_fields && r.iter().all(|c| p(c, l, depth)))
    }
    match &m.body {
        Body::Request(r) => {
            s(&r.entity_name, l)
                && s(&r.target, l)
                && r.params.as_ref().is_none_or(|t| t_ok(t, l, 1))
        }
        Body::Response(r) => {
            r.reason.as_deref().is_none_or(|x| s(x, l))
                && r.content.as_ref().is_none_or(|t| t_ok(t, l, 1))
        }
        Body::Auth(a) => a.claims.iter().all(|(k, v)| s(k, l) && s(v, l)),
        Body::Bind(b) => b.names.iter().all(|n| s(n, l)),
        Body::KeepAlive => true,
    }
}

fn tight() -> Limits {
    Limits {
        max_message_size: 4096,
        max_string: 64,
        max_rows: 4,
        max_fields: 4,
        max_depth: 3,
        max_pending: 4,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_round_trip(m in message()) {
        let bytes = m.to_bytes().unwrap();
        let back = Message::decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn primitive_round_trip(v in primitive()) {
        let mut out = bytes::BytesMut::new();
        v.encode(&mut out).unwrap();
        prop_assert_eq!(Primitive::decode(&out, &Limits::default()).unwrap(), v);
    }

    #[test]
    fn split_reassemble_any_order(m in message(), chunk in 40usize..600, seed in any::<u64>()) {
        let Ok(mut frames) = split(&m, chunk) else {
            // Only a request whose entity prefix leaves no room may be refused.
            prop_assert!(matches!(m.body, Body::Request(_)));
            return Ok(());
        };
        prop_assert!(frames.iter().all(|f| f.len() <= chunk) || frames.len() == 1);
        // Deterministic shuffle.
        let n = frames.len();
        for i in (1..n).rev() {
            frames.swap(i, (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize);
        }
        let mut r = Reassembler::new(Limits::default(), Reassembler::DEFAULT_TIMEOUT);
        let now = Instant::now();
        let mut got = None;
        for f in &frames {
            prop_assert!(got.is_none());
            got = r.push(f, now).unwrap();
        }
        prop_assert_eq!(got, Some(m));
    }

    #[test]
    fn hostile_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let l = tight();
        if let Ok(m) = Message::decode(&data, &l) {
            prop_assert!(within(&m, &l));
        }
        let mut r = Reassembler::new(l.clone(), Reassembler::DEFAULT_TIMEOUT);
        if let Ok(Some(m)) = r.push(&data, Instant::now()) {
            prop_assert!(within(&m, &l));
        }
        let _ = InfoTable::from_json_slice(&data, &l);
        let _ = InfoTable::decode(&data, &l);
    }

    #[test]
    fn mutated_messages_respect_limits(m in message(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = m.to_bytes().unwrap().to_vec();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        let l = tight();
        if let Ok(m) = Message::decode(&bytes, &l) {
            prop_assert!(within(&m, &l));
        }
        // With default limits the mutated message must still decode or fail cleanly.
        let _ = Message::decode(&bytes, &Limits::default());
    }
}

/// Both decoders on the same bytes: the view converted to owned equals the owned decode,
/// errors included (the view decoder makes the same checks in the same order).
fn decoders_agree(bytes: &[u8], l: &Limits) -> Result<(), TestCaseError> {
    let owned = Message::decode(bytes, l);
    let viewed = view::decode(bytes, l).map(|v| v.to_owned());
    prop_assert_eq!(&viewed, &owned);
    if let Ok(h) = Header::peek(bytes) {
        let body = bytes.get(alwayson::HEADER_LEN..).unwrap_or(&[]);
        // The body decoder alone (as used after reassembly) agrees too.
        if let Ok(m) = &owned {
            let vb = view::decode_body(h.code, body, l).map(|b| b.to_owned());
            prop_assert_eq!(vb.as_ref(), Ok(&m.body));
        }
    }
    let t_owned = InfoTable::decode(bytes, l);
    let t_view = view::decode_infotable(bytes, l);
    prop_assert_eq!(
        t_view.as_ref().map(|t| t.to_owned()),
        t_owned.as_ref().cloned()
    );
    if let (Ok(v), Ok(t)) = (&t_view, &t_owned) {
        lazy_agrees(v, t)?;
    }
    let p_owned = Primitive::decode(bytes, l);
    let p_view = view::PrimitiveRef::decode(bytes, l).map(|p| p.to_owned());
    prop_assert_eq!(p_view, p_owned);
    Ok(())
}

/// Every lazy accessor of a table view agrees with the owned table, nested tables included.
fn lazy_agrees(v: &view::InfoTableView<'_>, t: &InfoTable) -> Result<(), TestCaseError> {
    let fields: Vec<FieldDef> = v.fields().map(|f| f.to_owned()).collect();
    prop_assert_eq!(&fields, &t.shape.fields);
    prop_assert_eq!(v.fields().len(), t.shape.fields.len());
    prop_assert_eq!(v.field_count(), t.shape.fields.len());
    prop_assert_eq!(v.row_count(), t.rows.len());
    prop_assert_eq!(v.rows().len(), t.rows.len());
    for f in &t.shape.fields {
        prop_assert_eq!(v.index_of(&f.name), t.shape.index_of(&f.name));
        for row in 0..=t.rows.len() {
            let lazy = v.get(row, &f.name).map(|p| p.to_owned());
            prop_assert_eq!(lazy.as_ref(), t.get(row, &f.name));
        }
        let aspects = v.fields().find(|g| g.name == f.name).map(|g| {
            g.aspects
                .iter()
                .map(|(n, p)| ((*n).to_owned(), p.to_owned()))
                .collect::<Vec<_>>()
        });
        prop_assert_eq!(aspects.as_ref(), t.shape.field(&f.name).map(|g| &g.aspects));
    }
    prop_assert_eq!(v.index_of("\u{0}no such field"), None);
    let built = v.to_cells();
    prop_assert_eq!(built.row_count(), t.rows.len());
    for (i, (lazy, owned)) in v.rows().zip(&t.rows).enumerate() {
        prop_assert_eq!(lazy.len(), owned.len());
        prop_assert_eq!(lazy.is_empty(), owned.is_empty());
        let cells: Vec<Primitive> = lazy.iter().map(|p| p.to_owned()).collect();
        prop_assert_eq!(&cells, owned);
        let by_index: Vec<Primitive> = (0..owned.len())
            .map(|j| lazy.get(j).unwrap().to_owned())
            .collect();
        prop_assert_eq!(&by_index, owned);
        prop_assert!(lazy.get(owned.len()).is_none());
        let random = v.row(i).unwrap();
        prop_assert_eq!(
            random.iter().map(|p| p.to_owned()).collect::<Vec<_>>(),
            cells
        );
        let slice: Vec<Primitive> = built.row(i).unwrap().iter().map(|p| p.to_owned()).collect();
        prop_assert_eq!(&slice, owned);
        for (cell, owned) in lazy.iter().zip(owned) {
            if let (view::PrimitiveRef::InfoTable(inner), Primitive::InfoTable(o)) = (&cell, owned)
            {
                lazy_agrees(inner, o)?;
            }
            if let (view::PrimitiveRef::Variant(inner), Primitive::Variant(o)) = (&cell, owned) {
                prop_assert_eq!(&inner.get().to_owned(), &**o);
            }
        }
    }
    prop_assert!(v.row(t.rows.len()).is_none());
    let flat: Vec<Primitive> = v.cells().map(|p| p.to_owned()).collect();
    let owned_flat: Vec<Primitive> = t.rows.iter().flatten().cloned().collect();
    prop_assert_eq!(&flat, &owned_flat);
    let built_flat: Vec<Primitive> = built.cells().iter().map(|p| p.to_owned()).collect();
    prop_assert_eq!(&built_flat, &owned_flat);
    let pv = v.property_values().map(|p| {
        p.iter()
            .map(view::PropertyValueRef::to_owned)
            .collect::<Vec<_>>()
    });
    prop_assert_eq!(pv, t.property_values());
    prop_assert_eq!(v, &v.clone());
    let shown = format!("{v:?}");
    prop_assert!(shown.contains("InfoTableView"));
    // The kept wire bytes decode to the same table.
    let again = view::decode_infotable(v.as_bytes(), &Limits::default()).unwrap();
    prop_assert_eq!(&again, v);
    Ok(())
}

fn property_value() -> impl Strategy<Value = alwayson::PropertyValue> {
    (text(), primitive(), any::<i64>(), text()).prop_map(|(name, value, time, quality)| {
        alwayson::PropertyValue {
            name,
            value,
            time,
            quality,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn view_tables_read_lazily_like_owned(t in table()) {
        let mut bytes = Vec::new();
        t.encode_vec(&mut bytes).unwrap();
        let v = view::decode_infotable(&bytes, &Limits::default()).unwrap();
        lazy_agrees(&v, &t)?;
    }

    #[test]
    fn view_reads_property_pushes_like_owned(
        values in proptest::collection::vec(property_value(), 0..6),
        ems_order in any::<bool>(),
    ) {
        let mut t = InfoTable::property_push(&values);
        if ems_order {
            // EMS/LSR order: value, time, name, quality.
            let Some(Primitive::InfoTable(inner)) = t.rows[0].get_mut(0) else {
                panic!("push has a nested table");
            };
            let order = [1usize, 2, 0, 3];
            inner.shape.fields = order.iter().map(|&i| inner.shape.fields[i].clone()).collect();
            for row in &mut inner.rows {
                *row = order.iter().map(|&i| row[i].clone()).collect();
            }
        }
        let mut bytes = Vec::new();
        t.encode_vec(&mut bytes).unwrap();
        let v = view::decode_infotable(&bytes, &Limits::default()).unwrap();
        let got: Vec<alwayson::PropertyValue> =
            v.property_values().unwrap().iter().map(view::PropertyValueRef::to_owned).collect();
        prop_assert_eq!(&got, &t.property_values().unwrap());
        lazy_agrees(&v, &t)?;
    }

    #[test]
    fn view_decodes_every_message_like_owned(m in message()) {
        let bytes = m.to_bytes().unwrap();
        let v = view::decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&v.to_owned(), &m);
        prop_assert_eq!(v.header, m.header);
        decoders_agree(&bytes, &Limits::default())?;
        decoders_agree(&bytes, &tight())?;
    }

    #[test]
    fn view_decodes_every_value_like_owned(v in primitive()) {
        let mut out = Vec::new();
        v.encode_vec(&mut out).unwrap();
        let r = view::PrimitiveRef::decode(&out, &Limits::default()).unwrap();
        prop_assert_eq!(r.to_owned(), v.clone());
        prop_assert_eq!(r.base_type(), v.base_type());
        prop_assert_eq!(r.as_str(), v.as_str());
        prop_assert_eq!(r.as_bool(), v.as_bool());
        prop_assert_eq!(r.as_f64().map(f64::to_bits), v.as_f64().map(f64::to_bits));
    }

    #[test]
    fn view_agrees_on_hostile_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        decoders_agree(&data, &tight())?;
        decoders_agree(&data, &Limits::default())?;
        // Behind a valid header, so the body decoders see the bytes.
        for code in [0x01u8, 0x40, 0x14, 0x0A, 0x1F] {
            let mut framed = vec![1, code, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0];
            framed.extend_from_slice(&data);
            decoders_agree(&framed, &tight())?;
            decoders_agree(&framed, &Limits::default())?;
        }
    }

    #[test]
    fn view_agrees_on_mutated_messages(m in message(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = m.to_bytes().unwrap().to_vec();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        decoders_agree(&bytes, &tight())?;
        decoders_agree(&bytes, &Limits::default())?;
        let cut = bytes.len() / 2;
        decoders_agree(&bytes[..cut], &Limits::default())?;
    }
}

/// Values whose JSON form is exact: finite halves for floats, no NOTHING, unique field names,
/// JSON text kinds excluded (their text is re-serialised).
fn json_cell(t: BaseType) -> BoxedStrategy<Primitive> {
    let half = (-1_000_000i32..1_000_000).prop_map(|i| f64::from(i) / 2.0);
    match t {
        BaseType::Number => half.prop_map(Primitive::Number).boxed(),
        BaseType::Boolean => any::<bool>().prop_map(Primitive::Boolean).boxed(),
        BaseType::DateTime => any::<i64>().prop_map(Primitive::DateTime).boxed(),
        BaseType::Integer => any::<i32>().prop_map(Primitive::Integer).boxed(),
        BaseType::Long => any::<i64>().prop_map(Primitive::Long).boxed(),
        BaseType::Blob => proptest::collection::vec(any::<u8>(), 0..20)
            .prop_map(Primitive::Blob)
            .boxed(),
        BaseType::Image => proptest::collection::vec(any::<u8>(), 0..20)
            .prop_map(Primitive::Image)
            .boxed(),
        BaseType::Location => (half.clone(), half.clone(), half)
            .prop_map(|(a, b, c)| {
                Primitive::Location(Location {
                    longitude: a,
                    latitude: b,
                    elevation: c,
                })
            })
            .boxed(),
        BaseType::Variant => prop_oneof![
            text().prop_map(Primitive::String),
            any::<i32>().prop_map(Primitive::Integer),
            any::<bool>().prop_map(Primitive::Boolean),
        ]
        .prop_map(Primitive::variant)
        .boxed(),
        BaseType::String => text().prop_map(Primitive::String).boxed(),
        other => text()
            .prop_map(move |s| Primitive::text(other, s).unwrap())
            .boxed(),
    }
}

fn json_table() -> impl Strategy<Value = InfoTable> {
    let types: Vec<BaseType> = BaseType::ALL
        .iter()
        .copied()
        .filter(|t| {
            !matches!(
                t,
                BaseType::Nothing | BaseType::InfoTable | BaseType::Json | BaseType::Query
            )
        })
        .collect();
    (
        proptest::collection::vec(proptest::sample::select(types), 1..5),
        0usize..3,
    )
        .prop_flat_map(|(tys, nrows)| {
            let row: Vec<BoxedStrategy<Primitive>> = tys.iter().map(|t| json_cell(*t)).collect();
            proptest::collection::vec(row, nrows).prop_map(move |rows| {
                let fields = tys
                    .iter()
                    .enumerate()
                    .map(|(i, t)| FieldDef::new(format!("f{i}"), *t))
                    .collect();
                let mut t = InfoTable::new(fields);
                t.rows = rows;
                t
            })
        })
}

proptest! {
    #[test]
    fn json_round_trip(t in json_table()) {
        let text = serde_json::to_vec(&t.to_json()).unwrap();
        prop_assert_eq!(InfoTable::from_json_slice(&text, &Limits::default()).unwrap(), t.clone());
        // Nested inside another table as well.
        let outer = InfoTable::single_row([("inner", Primitive::InfoTable(Box::new(t)))]);
        let text = serde_json::to_vec(&outer.to_json()).unwrap();
        prop_assert_eq!(InfoTable::from_json_slice(&text, &Limits::default()).unwrap(), outer);
    }
}
