//! Golden bytes: the §2.7 worked examples and every message in spec/alwayson-captures.txt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use alwayson::{
    BaseType, Body, Characteristic, Code, EntityType, FieldDef, Gateway, Header, InfoTable, Limits,
    Message, Primitive, RequestBody, SESSION_NONE, TextKind,
};
use common::{b, enc};

/// Decodes with both decoders; the zero-copy view must give the same message.
fn dec(bytes: &[u8]) -> Message {
    let m = Message::decode(bytes, &Limits::default()).expect("golden message decodes");
    let v = alwayson::view::decode(bytes, &Limits::default()).expect("golden message views");
    assert_eq!(v.to_owned(), m, "view decode");
    m
}

fn both_ways(m: &Message, bytes: &[u8]) {
    assert_eq!(enc(m), bytes, "encode {m:?}");
    assert_eq!(&dec(bytes), m, "decode");
}

const SESS: u32 = 0x1234;

fn hdr(code: Code, request_id: u32, session_id: u32) -> Header {
    Header {
        code,
        request_id,
        endpoint_id: 0,
        session_id,
    }
}

#[test]
fn spec_2_7_auth() {
    let bytes = b(r#"01 14 00000001 00000000 FFFFFFFF 00 | 01 06 "appKey" 03 "abc""#);
    both_ways(&Message::auth_app_key(1, "abc"), &bytes);
}

#[test]
fn spec_2_7_bind_plain_and_gateway() {
    let bytes = b(r#"01 0A 00000002 00000000 00001234 00 | 00 0001 0B "SteamSensor""#);
    both_ways(
        &Message::bind(2, SESS, None, vec!["SteamSensor".into()]),
        &bytes,
    );
    let bytes =
        b(r#"01 0A 00000003 00000000 00001234 00 | 01 03 "GW1" 03 "EMS" 0002 01 "A" 01 "B""#);
    let gw = Some(Gateway {
        name: "GW1".into(),
        kind: "EMS".into(),
    });
    both_ways(
        &Message::bind(3, SESS, gw, vec!["A".into(), "B".into()]),
        &bytes,
    );
}

#[test]
fn spec_2_7_get_and_response() {
    let bytes =
        b(r#"01 01 00000007 00000000 00001234 00 | 0A 0B "SteamSensor" 01 0B "Temperature" 00 FF"#);
    let body = RequestBody::new(
        EntityType::THING,
        "SteamSensor",
        Characteristic::PROPERTIES,
        "Temperature",
    );
    let get = Message::request(Code::GET, 7, SESS, body);
    both_ways(&get, &bytes);

    let bytes = b(r#"01 40 00000007 00000000 00001234 00 | 00 05
        01 0B "Temperature" 00 01 0000 00
        01 0001 01 4036800000000000
        00"#);
    let content = InfoTable::single_row([("Temperature", Primitive::Number(22.5))]);
    both_ways(
        &Message::response(&get.header, Code::SUCCESS, Some(content)),
        &bytes,
    );
}

#[test]
fn spec_2_7_error_with_reason() {
    let bytes = b(r#"01 84 00000008 00000000 00001234 00 | 01 09 "Not found" FF"#);
    both_ways(
        &Message::error(&hdr(Code::GET, 8, SESS), Code::NOT_FOUND, "Not found"),
        &bytes,
    );
}

const EMS: u32 = 0x00C0_FFEE;
const CSDK: u32 = 0x0000_5EED;

#[test]
fn capture_auth_and_reply() {
    let key = "d0b0c0a0-1111-2222-3333-444455556666";
    let bytes = b(&format!(
        r#"01 14 00000003 00000000 ffffffff 00 | 01 06 "appKey" 24 "{key}""#
    ));
    let m = dec(&bytes);
    let Body::Auth(a) = &m.body else {
        panic!("not auth: {m:?}")
    };
    assert_eq!(a.app_key(), Some(key));
    assert_eq!(m.header.session_id, SESSION_NONE);
    both_ways(&Message::auth_app_key(3, key), &bytes);

    let reply = b("01 40 00000003 00000000 00c0ffee 00 | 00 ff");
    both_ways(
        &Message::response(&hdr(Code::AUTH, 3, EMS), Code::SUCCESS, None),
        &reply,
    );
}

fn ems_gw() -> Option<Gateway> {
    Some(Gateway {
        name: "EmsGateway".into(),
        kind: "EMSGateway".into(),
    })
}

#[test]
fn capture_binds_and_unbind() {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases = [
        (
            "010a000000040000000000c0ffee00010a456d73476174657761790a454d534761746577617900020a456d73476174657761790a506c61696e5468696e67",
            Message::bind(4, EMS, ems_gw(), names(&["EmsGateway", "PlainThing"])),
        ),
        (
            "010a000000050000000000c0ffee00010a456d73476174657761790a454d53476174657761790001084c73725468696e67",
            Message::bind(5, EMS, ems_gw(), names(&["LsrThing"])),
        ),
        (
            "010b000000190000000000c0ffee00010a456d73476174657761790a454d53476174657761790001084c73725468696e67",
            Message::unbind(0x19, EMS, ems_gw(), names(&["LsrThing"])),
        ),
        (
            "010a000000230000000000c0ffee00010a456d73476174657761790a454d534761746577617900030a456d7347617465776179084c73725468696e670a506c61696e5468696e67",
            Message::bind(
                0x23,
                EMS,
                ems_gw(),
                names(&["EmsGateway", "LsrThing", "PlainThing"]),
            ),
        ),
        (
            "010a000000030000000000005eed000000010b537465616d53656e736f72",
            Message::bind(3, CSDK, None, names(&["SteamSensor"])),
        ),
    ];
    for (hex, m) in cases {
        both_ways(&m, &b(hex));
    }
}

#[test]
fn capture_get_ems_two_fields_and_csdk_one_field() {
    let req = b("0101000003e90000000000c0ffee000a084c73725468696e67010b54656d706572617475726500ff");
    let body = RequestBody::new(
        EntityType::THING,
        "LsrThing",
        Characteristic::PROPERTIES,
        "Temperature",
    );
    let get = Message::request(Code::GET, 0x3e9, EMS, body);
    both_ways(&get, &req);

    let resp = b(
        "0140000003e90000000000c0ffee000005010474696d6500030000010b54656d7065726174757265000100000001000203000001a1fcae269001403800000000000000",
    );
    let m = dec(&resp);
    let Body::Response(r) = &m.body else {
        panic!("not a response")
    };
    let t = r.content.as_ref().expect("content");
    // By DataShape, not by position: the property is the second field here.
    assert_eq!(t.value("Temperature"), Some(&Primitive::Number(24.0)));
    assert_eq!(t.value("time"), Some(&Primitive::DateTime(0x1a1fcae2690)));
    assert_eq!(enc(&m), resp);

    let csdk = b(
        r#"01 40 000003e9 00000000 00c0ffee 00 | 00 05 01 0b "Temperature" 00 01 0000 00 01 0001 01 4038000000000000 00"#,
    );
    let t = InfoTable::single_row([("Temperature", Primitive::Number(24.0))]);
    both_ways(
        &Message::response(&get.header, Code::SUCCESS, Some(t)),
        &csdk,
    );
}

#[test]
fn capture_post_add_and_replies() {
    let req = b(
        "0103000003eb0000000000c0ffee000a084c73725468696e6702034164640005010270310001000001027032000100000001000201400000000000000001400c00000000000000",
    );
    let params = InfoTable::single_row([
        ("p1", Primitive::Number(2.0)),
        ("p2", Primitive::Number(3.5)),
    ]);
    let body = RequestBody::new(
        EntityType::THING,
        "LsrThing",
        Characteristic::SERVICES,
        "Add",
    )
    .with_params(params);
    let post = Message::request(Code::POST, 0x3eb, EMS, body);
    both_ways(&post, &req);

    let resp = b(
        "0140000003eb0000000000c0ffee0000050106726573756c7400010001077065727369737402000001000101401600000000000000",
    );
    let mut result = FieldDef::new("result", BaseType::Number);
    result
        .aspects
        .push(("persist".into(), Primitive::Boolean(false)));
    let mut t = InfoTable::new(vec![result]);
    t.rows.push(vec![Primitive::Number(5.5)]);
    both_ways(
        &Message::response(&post.header, Code::SUCCESS, Some(t)),
        &resp,
    );

    let csdk =
        b("0140000003ea0000000000005eed0000050106726573756c74000100000001000101401600000000000000");
    let t = InfoTable::single_row([("result", Primitive::Number(5.5))]);
    both_ways(
        &Message::response(&hdr(Code::POST, 0x3ea, CSDK), Code::SUCCESS, Some(t)),
        &csdk,
    );
}

#[test]
fn capture_errors() {
    let lsr = b(
        "0184000003ed0000000000c0ffee00000501056572726f720000000000010001001f50726f706572747920274e6f5375636850726f7027206e6f7420666f756e6400",
    );
    let t = InfoTable::single_row([("error", Primitive::from("Property 'NoSuchProp' not found"))]);
    let m = Message::response(&hdr(Code::GET, 0x3ed, EMS), Code::NOT_FOUND, Some(t));
    both_ways(&m, &lsr);
    let Body::Response(r) = &dec(&lsr).body else {
        panic!()
    };
    assert_eq!(r.reason, None);

    let csdk = b("01 84 000003ed 00000000 00c0ffee 00 | 00 ff");
    both_ways(
        &Message::response(&hdr(Code::GET, 0x3ed, EMS), Code::NOT_FOUND, None),
        &csdk,
    );
    let timeout = b("01 a4 000003ed 00000000 00c0ffee 00 | 00 ff");
    assert_eq!(dec(&timeout).header.code, Code::GATEWAY_TIMEOUT);
}

#[test]
fn capture_property_push_ems_order() {
    let bytes = b(
        "0103000000070000000000c0ffee000a084c73725468696e67021e5570646174655375627363726962656450726f706572747956616c7565730005010676616c756573000500000001000105010576616c756500120000010474696d650003000001046e616d650000000001077175616c69747900000000000100041201403600000000000003000001a1fcae2690000b54656d70657261747572650004474f4f440000",
    );
    let m = dec(&bytes);
    let Body::Request(r) = &m.body else { panic!() };
    assert_eq!(r.target, "UpdateSubscribedPropertyValues");
    let values = r
        .params
        .as_ref()
        .expect("params")
        .property_values()
        .expect("push shape");
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].name, "Temperature");
    assert_eq!(values[0].value, Primitive::Number(22.0));
    assert_eq!(values[0].time, 0x1a1fcae2690);
    assert_eq!(values[0].quality, "GOOD");
    assert_eq!(enc(&m), bytes);
}

#[test]
fn capture_get_property_subscriptions_content_form() {
    let bytes = b(
        "0103000000060000000000c0ffee000a084c73725468696e67021847657450726f7065727479537562736372697074696f6e73000501095f636f6e74656e745f000800000001000108027b7d00",
    );
    let params = InfoTable::content(&serde_json::json!({}));
    let body = RequestBody::new(
        EntityType::THING,
        "LsrThing",
        Characteristic::SERVICES,
        "GetPropertySubscriptions",
    )
    .with_params(params);
    let m = Message::request(Code::POST, 6, EMS, body);
    both_ways(&m, &bytes);
    let Body::Request(r) = &dec(&bytes).body else {
        panic!()
    };
    assert_eq!(
        r.params.as_ref().and_then(InfoTable::content_json),
        Some(serde_json::json!({}))
    );
    assert_eq!(
        r.params
            .as_ref()
            .and_then(|p| p.value("_content_"))
            .map(Primitive::base_type),
        Some(TextKind::JSON.base_type())
    );

    let reply = b(
        "0140000000060000000000c0ffee0000050108656467654e616d65000000000108707573685479706500000000010d707573685468726573686f6c640001000000010003000b54656d70657261747572650006414c5741595301000000000000000000",
    );
    let t = InfoTable::single_row([
        ("edgeName", Primitive::from("Temperature")),
        ("pushType", Primitive::from("ALWAYS")),
        ("pushThreshold", Primitive::Number(0.0)),
    ]);
    both_ways(
        &Message::response(&hdr(Code::POST, 6, EMS), Code::SUCCESS, Some(t)),
        &reply,
    );
}
