//! The `tether-rac` binary against a real broker on loopback: messages and
//! exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/rac/tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

fn rac() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether-rac"));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("TETHER_APP_KEY")
        .env_remove("TETHER_PASSWORD")
        .kill_on_drop(true);
    c
}

/// Read stdout until the "listening on" line; returns the port.
async fn listening_port(child: &mut Child) -> u16 {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("no output within 10 s")
        .unwrap()
        .expect("stdout closed");
    let rest = line.strip_prefix("listening on 127.0.0.1:").expect(&line);
    rest.split(':').next().unwrap().parse().unwrap()
}

async fn finish(mut child: Child) -> (i32, String) {
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("tether-rac did not exit")
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    (status.code().unwrap_or(-1), err)
}

#[tokio::test]
async fn connect_then_the_session_is_ended_from_the_platform() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let mut child = rac()
        .args(["connect", "--platform", &h.base, "--thing", THING])
        .args(["--interface", "ssh", "--local-port", "0"])
        .env("TETHER_APP_KEY", APP_KEY)
        .spawn()
        .unwrap();
    let start = h.next_start().await;
    let id = start.session_id.clone();
    let _edge = spawn_edge(start, Duration::from_secs(15));
    let port = listening_port(&mut child).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert_eq!(echo_round(&mut s, b"ping").await.unwrap(), b"ping");
    assert_eq!(h.delete_session(&id, "alice").await.status(), 200);
    let (code, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("session ended: ended by alice (code 4005)"),
        "{err}"
    );
    // The port is released.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn ctrl_c_ends_the_session() {
    let mut h = spawn(echo_server().await, |_| {}).await;
    let mut child = rac()
        .args(["connect", "--platform", &h.base, "--thing", THING])
        .args(["--user", "alice"])
        .env("TETHER_PASSWORD", "pw-alice")
        .spawn()
        .unwrap();
    let start = h.next_start().await;
    let id = start.session_id.clone();
    let _edge = spawn_edge(start, Duration::from_secs(15));
    let _port = listening_port(&mut child).await;
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let (code, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("session ended: shutting down"), "{err}");
    let rec = h.audit.wait_for(&id, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rec.reason, "client_left");
}

#[tokio::test]
async fn refusals_have_clear_exit_codes() {
    let h = spawn(echo_server().await, |_| {}).await;
    // A launch URL whose nonce was already traded.
    let created = h.create_browser("alice").await.unwrap();
    let launch = created["launch_url"].as_str().unwrap().to_owned();
    let url = rac::LaunchUrl::parse(&launch).unwrap();
    let r = h
        .http
        .post(format!(
            "{}/api/v1/sessions/{}/client-token",
            h.base, url.session
        ))
        .json(&serde_json::json!({ "nonce": url.nonce }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, err) = finish(rac().args(["open", &launch]).spawn().unwrap()).await;
    assert_eq!(code, i32::from(rac::EXIT_REFUSED), "{err}");
    assert!(err.contains("refused (401)"), "{err}");
    // Bad usage is 64 too.
    let (code, err) = finish(rac().args(["connect", "--bogus"]).spawn().unwrap()).await;
    assert_eq!(code, i32::from(rac::EXIT_USAGE), "{err}");
    // A malformed launch URL.
    let (code, err) = finish(rac().args(["open", "https://nope"]).spawn().unwrap()).await;
    assert_eq!(code, i32::from(rac::EXIT_USAGE), "{err}");
    assert!(err.contains("bad launch URL"), "{err}");
    // A wrong password.
    let mut c = rac();
    c.args([
        "connect",
        "--platform",
        &h.base,
        "--thing",
        THING,
        "--user",
        "alice",
    ])
    .env("TETHER_PASSWORD", "wrong");
    let (code, err) = finish(c.spawn().unwrap()).await;
    assert_eq!(code, i32::from(rac::EXIT_REFUSED), "{err}");
    // Nothing listens there.
    let (code, err) = finish(
        rac()
            .args([
                "connect",
                "--platform",
                "http://127.0.0.1:9",
                "--thing",
                THING,
            ])
            .args(["--app-key", "k"])
            .spawn()
            .unwrap(),
    )
    .await;
    assert_eq!(code, i32::from(rac::EXIT_UNAVAILABLE), "{err}");
}

#[tokio::test]
async fn version_is_printed() {
    let out = rac().arg("--version").output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("tether-rac {}", env!("CARGO_PKG_VERSION"))
    );
}
