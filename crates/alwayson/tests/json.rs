//! JSON InfoTable vectors: real bodies from spec/captures/run2-http-ems-lsr.txt, checked against
//! the binary the EMS produced for them (spec/alwayson-captures.txt), plus every cell form.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use alwayson::{
    BaseType, Body, DecodeError, InfoTable, Limits, Location, Message, Primitive, TextKind,
};
use common::b;
use serde_json::json;

fn from_json(text: &str) -> InfoTable {
    InfoTable::from_json_slice(text.as_bytes(), &Limits::default()).expect("JSON InfoTable parses")
}

/// The content or params of a captured binary message.
fn table_of(hex: &str) -> InfoTable {
    let m = Message::decode(&b(hex), &Limits::default()).unwrap();
    match m.body {
        Body::Request(r) => r.params.unwrap(),
        Body::Response(r) => r.content.unwrap(),
        other => panic!("no table in {other:?}"),
    }
}

fn json_round_trip(t: &InfoTable) {
    let text = serde_json::to_vec(&t.to_json()).unwrap();
    assert_eq!(
        &InfoTable::from_json_slice(&text, &Limits::default()).unwrap(),
        t
    );
}

#[test]
fn lsr_property_push_equals_ems_binary() {
    let text = r#"{"dataShape":{"fieldDefinitions":{"values":{"aspects":[],"name":"values","baseType":"INFOTABLE"}}},"rows":[{"values":{"dataShape":{"fieldDefinitions":{"value":{"aspects":[],"name":"value","baseType":"VARIANT"},"time":{"aspects":[],"name":"time","baseType":"DATETIME"},"name":{"aspects":[],"name":"name","baseType":"STRING"},"quality":{"aspects":[],"name":"quality","baseType":"STRING"}}},"rows":[{"value":{"baseType":"NUMBER","value":22},"name":"Temperature","time":1795240634000,"quality":"GOOD"}]}}]}"#;
    let binary = table_of(
        "0103000000070000000000c0ffee000a084c73725468696e67021e5570646174655375627363726962656450726f706572747956616c7565730005010676616c756573000500000001000105010576616c756500120000010474696d650003000001046e616d650000000001077175616c69747900000000000100041201403600000000000003000001a1fcae2690000b54656d70657261747572650004474f4f440000",
    );
    let t = from_json(text);
    assert_eq!(t, binary);
    let v = t.property_values().unwrap();
    assert_eq!(
        (v[0].name.as_str(), v[0].time),
        ("Temperature", 1_795_240_634_000)
    );
    json_round_trip(&t);
}

#[test]
fn lsr_get_reply_rows_first_equals_binary() {
    let text = r#"{"rows":[{"time":1795240634000,"Temperature":24}],"dataShape":{"fieldDefinitions":{"time":{"aspects":[],"baseType":"DATETIME","name":"time","description":""},"Temperature":{"aspects":[],"baseType":"NUMBER","name":"Temperature","description":""}}}}"#;
    let binary = table_of(
        "0140000003e90000000000c0ffee000005010474696d6500030000010b54656d7065726174757265000100000001000203000001a1fcae269001403800000000000000",
    );
    assert_eq!(from_json(text), binary);
}

#[test]
fn ems_params_lowercase_datashape_equals_binary() {
    let text = r#"{"rows":[{"p1":2,"p2":3.500000000000000}],"datashape":{"fieldDefinitions":{"p1":{"name":"p1","description":"","baseType":"NUMBER","aspects":{}},"p2":{"name":"p2","description":"","baseType":"NUMBER","aspects":{}}}}}"#;
    let binary = table_of(
        "0103000003eb0000000000c0ffee000a084c73725468696e6702034164640005010270310001000001027032000100000001000201400000000000000001400c00000000000000",
    );
    assert_eq!(from_json(text), binary);
}

#[test]
fn lsr_service_reply_with_aspect_equals_binary() {
    let text = r#"{"rows":[{"result":5.5}],"dataShape":{"fieldDefinitions":{"result":{"aspects":{"persist":false},"baseType":"NUMBER","name":"result","description":""}}}}"#;
    let binary = table_of(
        "0140000003eb0000000000c0ffee0000050106726573756c7400010001077065727369737402000001000101401600000000000000",
    );
    let t = from_json(text);
    assert_eq!(t, binary);
    assert_eq!(
        t.shape.fields[0].aspect("persist"),
        Some(&Primitive::Boolean(false))
    );
    json_round_trip(&t);
}

#[test]
fn ems_subscriptions_reply() {
    let text = r#"{"rows":[{"edgeName":"Temperature","pushType":"ALWAYS","pushThreshold":0}],"datashape":{"fieldDefinitions":{"edgeName":{"name":"edgeName","description":"","baseType":"STRING","aspects":{}},"pushType":{"name":"pushType","description":"","baseType":"STRING","aspects":{}},"pushThreshold":{"name":"pushThreshold","description":"","baseType":"NUMBER","aspects":{}}}}}"#;
    let t = from_json(text);
    assert_eq!(
        t.value("pushType").and_then(Primitive::as_str),
        Some("ALWAYS")
    );
    assert_eq!(t.value("pushThreshold"), Some(&Primitive::Number(0.0)));
}

#[test]
fn every_cell_form() {
    let text = json!({
        "dataShape": {"fieldDefinitions": {
            "v": {"name": "v", "baseType": "VARIANT"},
            "loc": {"name": "loc", "baseType": "LOCATION"},
            "blob": {"name": "blob", "baseType": "BLOB"},
            "img": {"name": "img", "baseType": "IMAGE"},
            "dt": {"name": "dt", "baseType": "DATETIME"},
            "i": {"name": "i", "baseType": "INTEGER"},
            "l": {"name": "l", "baseType": "LONG"},
            "j": {"name": "j", "baseType": "JSON"},
            "pw": {"name": "pw", "baseType": "PASSWORD"},
            "b": {"name": "b", "baseType": "BOOLEAN"},
            "missing": {"name": "missing", "baseType": "STRING"}
        }},
        "rows": [{
            "v": {"baseType": "STRING", "value": "hi"},
            "loc": {"latitude": 48.1, "longitude": 11.5, "elevation": 520},
            "blob": "AQID", "img": "/w==", "dt": 1795240634000_i64, "i": -5, "l": 8_589_934_592_i64,
            "j": {"a": [1, 2]}, "pw": "secret", "b": true
        }]
    });
    let t = InfoTable::from_json(&text, &Limits::default()).unwrap();
    let row = &t.rows[0];
    assert_eq!(row[0], Primitive::variant(Primitive::from("hi")));
    assert_eq!(
        row[1],
        Primitive::Location(Location {
            longitude: 11.5,
            latitude: 48.1,
            elevation: 520.0
        })
    );
    assert_eq!(row[2], Primitive::Blob(vec![1, 2, 3]));
    assert_eq!(row[3], Primitive::Image(vec![0xFF]));
    assert_eq!(row[4], Primitive::DateTime(1_795_240_634_000));
    assert_eq!(row[5], Primitive::Integer(-5));
    assert_eq!(row[6], Primitive::Long(8_589_934_592));
    assert_eq!(
        row[7],
        Primitive::Text(TextKind::JSON, r#"{"a":[1,2]}"#.into())
    );
    assert_eq!(row[8], Primitive::Text(TextKind::PASSWORD, "secret".into()));
    assert_eq!(row[9], Primitive::Boolean(true));
    assert_eq!(row[10], Primitive::Nothing);
    // JSON → binary → JSON → model is stable.
    let mut bin = bytes::BytesMut::new();
    t.encode(&mut bin).unwrap();
    let back = InfoTable::decode(&bin, &Limits::default()).unwrap();
    assert_eq!(back, t);
    json_round_trip(&t);
    assert_eq!(
        t.to_json()["rows"][0]["v"],
        json!({"baseType": "STRING", "value": "hi"})
    );
    assert_eq!(t.to_json()["rows"][0]["blob"], json!("AQID"));
}

#[test]
fn rows_without_datashape_infer_types() {
    let t = from_json(r#"{"rows":[{"name":"LsrThing","ok":true,"n":3}]}"#);
    let types: Vec<BaseType> = t.shape.fields.iter().map(|f| f.base_type).collect();
    assert_eq!(
        types,
        [BaseType::String, BaseType::Boolean, BaseType::Number]
    );
    assert_eq!(t.value("n"), Some(&Primitive::Number(3.0)));
}

#[test]
fn bad_json_is_a_clear_error() {
    let l = Limits::default();
    let timespan =
        json!({"dataShape":{"fieldDefinitions":{"t":{"baseType":"TIMESPAN"}}},"rows":[]});
    assert_eq!(
        InfoTable::from_json(&timespan, &l),
        Err(DecodeError::UnsupportedTypeName("TIMESPAN".into()))
    );
    let bad_num =
        json!({"dataShape":{"fieldDefinitions":{"t":{"baseType":"NUMBER"}}},"rows":[{"t":"abc"}]});
    assert!(matches!(
        InfoTable::from_json(&bad_num, &l),
        Err(DecodeError::Json(_))
    ));
    let big_int = json!({"dataShape":{"fieldDefinitions":{"t":{"baseType":"INTEGER"}}},"rows":[{"t":5_000_000_000_i64}]});
    assert!(matches!(
        InfoTable::from_json(&big_int, &l),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        InfoTable::from_json_slice(b"[1,2", &l),
        Err(DecodeError::Json(_))
    ));
    assert!(InfoTable::from_json(&json!([1]), &l).is_err());
    let few = Limits {
        max_rows: 1,
        ..Limits::default()
    };
    let two = json!({"rows":[{"a":1},{"a":2}]});
    assert!(matches!(
        InfoTable::from_json(&two, &few),
        Err(DecodeError::TooLarge { what: "rows", .. })
    ));
    let shallow = Limits {
        max_depth: 1,
        ..Limits::default()
    };
    let nested = json!({"rows":[{"t":{"rows":[{"a":1}]}}]});
    assert!(matches!(
        InfoTable::from_json(&nested, &shallow),
        Err(DecodeError::TooDeep(1))
    ));
}
