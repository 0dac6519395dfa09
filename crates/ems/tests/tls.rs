//! The uplink over wss: certificates are validated by default; a pinned
//! SHA-256 fingerprint (Tether key) or `allow_self_signed` accept a self-signed one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use alwayson::Code;
use common::*;

fn wss_config(fake: &Fake, certificates: &str, retries: i64) -> String {
    config_json(fake.addr, certificates)
        .replace(r#""encryption": "none", "#, "")
        .replace(
            r#""msg_timeout": 2000"#,
            &format!(r#""msg_timeout": 2000, "connect_retries": {retries}"#),
        )
}

async fn tls_fake() -> (Fake, net::SelfSigned) {
    let cert = net::SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let cfg = cert.server_config(&[b"http/1.1"]).unwrap();
    (Fake::start_with(Mode::Up, Some(cfg)).await, cert)
}

#[tokio::test]
async fn self_signed_platform_is_refused_by_default() {
    let (fake, _cert) = tls_fake().await;
    let ems = Ems::start(&wss_config(&fake, "", 1)).await;
    let result = tokio::time::timeout(WAIT, ems.join)
        .await
        .expect("gives up")
        .unwrap();
    let err = result.expect_err("certificate not trusted");
    assert!(matches!(err, ems::RunError::GaveUp(_)), "{err}");
    assert_eq!(fake.connections(), 0, "no websocket session was opened");
}

#[tokio::test]
async fn pinned_fingerprint_is_accepted() {
    let (mut fake, cert) = tls_fake().await;
    let pin = format!(
        r#""certificates": {{"pinned_sha256": ["{}"]}}"#,
        cert.fingerprint()
    );
    let ems = Ems::start(&wss_config(&fake, &pin, -1)).await;
    fake.expect_msg("AUTH over wss", Code::AUTH).await;
    ems.stop().await;
}

#[tokio::test]
async fn wrong_pin_is_refused() {
    let (fake, _cert) = tls_fake().await;
    let pin = format!(
        r#""certificates": {{"pinned_sha256": ["{}"]}}"#,
        "AB".repeat(32)
    );
    let ems = Ems::start(&wss_config(&fake, &pin, 0)).await;
    let result = tokio::time::timeout(WAIT, ems.join)
        .await
        .expect("gives up")
        .unwrap();
    assert!(matches!(result, Err(ems::RunError::GaveUp(_))));
}

#[tokio::test]
async fn allow_self_signed_is_accepted() {
    let (mut fake, _cert) = tls_fake().await;
    let ems = Ems::start(&wss_config(
        &fake,
        r#""certificates": {"allow_self_signed": true}"#,
        -1,
    ))
    .await;
    fake.expect_msg("AUTH over wss", Code::AUTH).await;
    ems.stop().await;
}
