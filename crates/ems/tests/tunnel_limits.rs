//! Tunnel limits and modes against the real platform and broker:
//! `tunnel.max_concurrent` refuses the (N+1)th tunnel with its documented
//! reason and frees the slot when a tunnel ends, in native and legacy mode;
//! `tunnel.mode = "native"` refuses a legacy-only `StartTunnel`; a legacy
//! `TunnelCommandToEdge CONNECT` says why it failed and counts `num_connects`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use alwayson::{Characteristic, Code, InfoTable, Primitive};
use common::chain::{GATEWAY, THING, ems_config, start_platform, wait_bound};
use common::{Ems, WAIT};
use platform::model::{Protocol, RemoteInterface};
use test_support::{PlatformHandle, PlatformOptions, spawn_platform};

const MAX: usize = 2;

/// A platform with interface `echo` on the gateway and an EMS with
/// `tunnel.max_concurrent = 2` and the target allowed.
async fn setup(mode: &str) -> (PlatformHandle, Ems, tokio::net::TcpListener) {
    setup_with(mode, start_platform().await).await
}

/// [`setup`] on a platform that sends legacy `num_connects` `n`.
async fn setup_num_connects(mode: &str, n: u32) -> (PlatformHandle, Ems, tokio::net::TcpListener) {
    let p = spawn_platform(PlatformOptions {
        things: vec![GATEWAY.into(), THING.into()],
        legacy_num_connects: n,
        ..Default::default()
    })
    .await
    .unwrap();
    setup_with(mode, p).await
}

async fn setup_with(
    mode: &str,
    p: PlatformHandle,
) -> (PlatformHandle, Ems, tokio::net::TcpListener) {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    p.platform
        .store()
        .put_interface(
            GATEWAY,
            &RemoteInterface {
                name: "echo".to_owned(),
                host: "127.0.0.1".to_owned(),
                port,
                protocol: Protocol::Tcp,
                description: String::new(),
            },
        )
        .await
        .unwrap();
    let extra = format!(
        r#""tunnel": {{"max_concurrent": {MAX}, "allowed_targets": ["127.0.0.1:{port}"], "mode": "{mode}"}}"#
    );
    let ems = Ems::start(&ems_config(p.addr, &p.app_key, &p.fingerprint, &extra)).await;
    wait_bound(&p.platform, GATEWAY, true).await;
    (p, ems, target)
}

/// `POST /api/v1/sessions` as the edge's app key: (status, body).
async fn create(p: &PlatformHandle) -> (u16, serde_json::Value) {
    let r = p
        .http_client()
        .unwrap()
        .post(p.url("/api/v1/sessions"))
        .header("appKey", &p.app_key)
        .json(&serde_json::json!({"thing": GATEWAY, "interface": "echo", "client_token": true}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

async fn end(p: &PlatformHandle, id: &str) {
    let r = p
        .http_client()
        .unwrap()
        .delete(p.url(&format!("/api/v1/sessions/{id}")))
        .basic_auth(&p.admin_user, Some(&p.admin_password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Is the server side of session `id` attached (the EMS took its tunnel)?
async fn server_attached(p: &PlatformHandle, id: &str) -> bool {
    let r = p
        .http_client()
        .unwrap()
        .get(p.url(&format!("/api/v1/sessions/{id}")))
        .basic_auth(&p.admin_user, Some(&p.admin_password))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    v["server_attached"] == true
}

async fn refuses_the_extra_tunnel(mode: &str) {
    let (p, ems, _target) = setup(mode).await;
    let mut ids = Vec::new();
    for _ in 0..MAX {
        let (status, body) = create(&p).await;
        assert!((200..300).contains(&status), "{status} {body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // The edge attached both (native endpoint or /Thingworx/WSTunnelServer).
    for id in &ids {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !server_attached(&p, id).await {
            assert!(tokio::time::Instant::now() < deadline, "{id} not attached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let (status, body) = create(&p).await;
    assert!(
        status >= 400,
        "the third tunnel was accepted: {status} {body}"
    );
    let text = body.to_string();
    assert!(
        text.contains(&format!("too many tunnels: tunnel.max_concurrent is {MAX}")),
        "unclear refusal: {status} {text}"
    );

    // Ending one (CompleteTunnel) frees its slot.
    end(&p, &ids[0]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = create(&p).await;
        if (200..300).contains(&status) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ems.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_refuses_the_extra_native_tunnel() {
    refuses_the_extra_tunnel("native").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_refuses_the_extra_legacy_tunnel() {
    refuses_the_extra_tunnel("legacy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_mode_refuses_a_legacy_start_tunnel() {
    let (p, ems, target) = setup("native").await;
    let port = target.local_addr().unwrap().port();
    let connection = format!(r#"{{"host":"127.0.0.1","port":{port},"num_connects":1}}"#);
    let params = InfoTable::single_row([
        ("tid", Primitive::String("legacy-only".into())),
        ("type", Primitive::String("tcp".into())),
        ("chunksize", Primitive::Integer(8192)),
        ("idle_timeout", Primitive::Integer(30_000)),
        ("read_timeout", Primitive::Integer(10)),
        ("connection", Primitive::String(connection)),
    ]);
    let answer = p
        .platform
        .request(
            GATEWAY,
            Code::POST,
            Characteristic::SERVICES,
            "StartTunnel",
            Some(params),
        )
        .await
        .unwrap();
    assert_eq!(answer.code, Code::NOT_IMPLEMENTED);
    let text = answer
        .body
        .content
        .map(|t| t.to_json().to_string())
        .unwrap_or_default();
    assert!(text.contains("tunnel.mode is \\\"native\\\""), "{text}");
    ems.stop().await;
}

/// `TunnelCommandToEdge` on `GATEWAY`: (code, error text).
async fn command(p: &PlatformHandle, tid: &str, command: &str) -> (Code, String) {
    let params = InfoTable::single_row([
        ("tid", Primitive::String(tid.into())),
        ("command", Primitive::String(command.into())),
    ]);
    let answer = p
        .platform
        .request(
            GATEWAY,
            Code::POST,
            Characteristic::SERVICES,
            "TunnelCommandToEdge",
            Some(params),
        )
        .await
        .unwrap();
    let text = answer
        .body
        .content
        .map(|t| t.to_json().to_string())
        .unwrap_or_default();
    (answer.code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_connect_reports_why_it_failed() {
    let (p, ems, target) = setup_num_connects("legacy", 1).await;
    let port = target.local_addr().unwrap().port();
    let (status, body) = create(&p).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let tid = body["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server_attached(&p, &tid).await {
        assert!(tokio::time::Instant::now() < deadline, "not attached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(
        command(&p, "no-such-tunnel", "CONNECT").await.0,
        Code::NOT_FOUND
    );
    let (code, text) = command(&p, &tid, "OPEN").await;
    assert_eq!(code, Code::BAD_REQUEST);
    assert!(text.contains("CONNECT or DISCONNECT"), "{text}");

    // The target is gone: the attempt fails with the reason...
    drop(target);
    let (code, text) = command(&p, &tid, "CONNECT").await;
    assert_eq!(code, Code::BAD_GATEWAY, "{text}");
    assert!(
        text.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{text}"
    );
    // ...and it was the one attempt `num_connects: 1` (set in the platform's
    // config) allows.
    let (code, text) = command(&p, &tid, "CONNECT").await;
    assert_eq!(code, Code::BAD_REQUEST, "{text}");
    assert!(
        text.contains("Exceeded allowable number of connect attempts"),
        "{text}"
    );
    // DISCONNECT with nothing open is harmless.
    assert_eq!(command(&p, &tid, "DISCONNECT").await.0, Code::SUCCESS);
    ems.stop().await;
}
