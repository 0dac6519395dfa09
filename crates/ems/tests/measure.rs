//! Rough figures (run with `cargo test -p ems --release --test measure -- --ignored --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use alwayson::{Body, Characteristic, Code, EntityType, Message, RequestBody};
use axum::Router;
use axum::routing::get;
use common::*;

#[tokio::test]
#[ignore = "measurement, not a check"]
async fn measure_forwarding_and_pushes() {
    const N: u32 = 1000;
    let mut fake = Fake::start(Mode::Up).await;
    let lsr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = lsr.local_addr().unwrap().port();
    let app = Router::new().route(
        "/Things/T/Properties/P",
        get(|| async { r#"{"rows":[{"P":1}],"dataShape":{"fieldDefinitions":{"P":{"name":"P","baseType":"NUMBER"}}}}"# }),
    );
    tokio::spawn(async move { axum::serve(lsr, app).await });
    let cfg = config_json(
        fake.addr,
        &format!(r#""auto_bind": [{{"name": "T", "host": "127.0.0.1", "port": {port}}}]"#),
    )
    .replace(r#""ping_rate": 300"#, r#""ping_rate": 60000"#);
    let ems = Ems::start(&cfg).await;
    let (conn, _, _) = fake.expect_msg("BIND", Code::BIND).await;

    let started = Instant::now();
    for id in 1..=N {
        let body = RequestBody::new(EntityType::THING, "T", Characteristic::PROPERTIES, "P");
        let header = alwayson::Header {
            code: Code::GET,
            request_id: id,
            endpoint_id: 0,
            session_id: SESSION,
        };
        fake.send(
            conn,
            Message {
                header,
                body: Body::Request(body),
            },
        );
        assert_eq!(fake.expect_response(id).await.header.code, Code::SUCCESS);
    }
    let per = started.elapsed() / N;
    println!("platform GET → EMS → HTTP resource → back, sequential: {per:?} per request");

    let http = reqwest::Client::new();
    let url = ems.url("/Thingworx/Things/T/Services/UpdateSubscribedPropertyValues");
    let push = r#"{"rows":[{"values":{"rows":[{"name":"P","value":{"baseType":"NUMBER","value":1},"time":1,"quality":"GOOD"}],"dataShape":{"fieldDefinitions":{"name":{"name":"name","baseType":"STRING"},"value":{"name":"value","baseType":"VARIANT"},"time":{"name":"time","baseType":"DATETIME"},"quality":{"name":"quality","baseType":"STRING"}}}}}],"dataShape":{"fieldDefinitions":{"values":{"name":"values","baseType":"INFOTABLE"}}}}"#;
    let started = Instant::now();
    for _ in 0..N {
        let r = http.post(&url).body(push).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let per = started.elapsed() / N;
    println!("local REST push → platform answer, sequential: {per:?} per push");
    ems.stop().await;
}
