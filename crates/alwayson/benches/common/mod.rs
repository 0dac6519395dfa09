//! Messages shared by the benchmarks.

#![allow(dead_code)]

use alwayson::{
    BaseType, Characteristic, Code, EntityType, FieldDef, InfoTable, Message, Primitive,
    PropertyValue, RequestBody, view,
};

/// A property push of 5 values, as an edge sends every scan.
pub fn property_update() -> Message {
    let values: Vec<PropertyValue> = (0..5)
        .map(|i| PropertyValue {
            name: format!("Property{i}"),
            value: Primitive::Number(20.0 + f64::from(i)),
            time: 1_795_240_634_000,
            quality: "GOOD".into(),
        })
        .collect();
    let body = RequestBody::new(
        EntityType::THING,
        "SteamSensor",
        Characteristic::SERVICES,
        "UpdateSubscribedPropertyValues",
    )
    .with_params(InfoTable::property_push(&values));
    Message::request(Code::POST, 7, 0x5EED, body)
}

/// A service result of 100 rows x 10 fields of mixed types.
pub fn big_table() -> Message {
    let types = [
        BaseType::String,
        BaseType::Number,
        BaseType::Boolean,
        BaseType::DateTime,
        BaseType::Integer,
        BaseType::Number,
        BaseType::String,
        BaseType::Long,
        BaseType::Number,
        BaseType::String,
    ];
    let fields = types
        .iter()
        .enumerate()
        .map(|(i, t)| FieldDef::new(format!("field{i}"), *t))
        .collect();
    let mut t = InfoTable::new(fields);
    for r in 0..100i32 {
        t.rows.push(
            types
                .iter()
                .map(|ty| match ty {
                    BaseType::String => Primitive::String(format!("value-{r}")),
                    BaseType::Number => Primitive::Number(f64::from(r) * 1.5),
                    BaseType::Boolean => Primitive::Boolean(r % 2 == 0),
                    BaseType::DateTime => Primitive::DateTime(1_795_240_634_000 + i64::from(r)),
                    BaseType::Integer => Primitive::Integer(r),
                    _ => Primitive::Long(i64::from(r) << 33),
                })
                .collect(),
        );
    }
    let req = alwayson::Header {
        code: Code::POST,
        request_id: 9,
        endpoint_id: 0,
        session_id: 1,
    };
    Message::response(&req, Code::SUCCESS, Some(t))
}

/// A file-transfer-sized write: one 8 KiB BLOB parameter (per-byte cost, few items).
pub fn blob_8k() -> Message {
    let params = InfoTable::single_row([("data", Primitive::Blob(vec![0x5A; 8192]))]);
    let body = RequestBody::new(
        EntityType::SUBSYSTEM,
        "FileTransferSubsystem",
        Characteristic::SERVICES,
        "WriteBlock",
    )
    .with_params(params);
    Message::request(Code::POST, 11, 0x5EED, body)
}

/// A service result of 100 rows x 10 NUMBER fields.
pub fn number_table() -> Message {
    let fields = (0..10)
        .map(|i| FieldDef::new(format!("field{i}"), BaseType::Number))
        .collect();
    let mut t = InfoTable::new(fields);
    for r in 0..100i32 {
        t.rows.push(
            (0..10)
                .map(|c| Primitive::Number(f64::from(r * 10 + c) * 0.25))
                .collect(),
        );
    }
    let req = alwayson::Header {
        code: Code::POST,
        request_id: 10,
        endpoint_id: 0,
        session_id: 1,
    };
    Message::response(&req, Code::SUCCESS, Some(t))
}

/// Reads every cell of the message's table (nested tables included), as a consumer does:
/// each value is matched and used (folded into a checksum).
pub fn walk(v: &view::MessageView<'_>) -> u64 {
    let table = match &v.body {
        view::BodyView::Request(r) => r.params.as_ref(),
        view::BodyView::Response(r) => r.content.as_ref(),
        _ => None,
    };
    table.map_or(0, walk_table)
}

/// Reads every cell of a table, nested tables included.
pub fn walk_table(t: &view::InfoTableView<'_>) -> u64 {
    use view::PrimitiveRef as P;
    let mut acc = 0u64;
    for cell in t.cells() {
        let x = match cell {
            P::String(s) | P::Text(_, s) => s.len() as u64,
            P::Number(f) => f.to_bits(),
            P::Boolean(b) => u64::from(b),
            P::DateTime(v) | P::Long(v) => v as u64,
            P::Integer(i) => i as u64,
            P::InfoTable(inner) => walk_table(&inner),
            P::Variant(v) => v.get().as_f64().map_or(1, f64::to_bits),
            P::Location(l) => l.get().latitude.to_bits(),
            P::Image(b) | P::Blob(b) => b.len() as u64,
            P::Nothing => 1,
        };
        acc = acc.rotate_left(5) ^ x;
    }
    acc
}
