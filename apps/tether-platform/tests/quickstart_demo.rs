//! `tether-platform quickstart` runs a demo EMS and a demo LSR (docs/examples/lsr) in
//! the same process: the demo Lua thing's property is readable through the platform
//! REST, on the first run and again after a restart on the same data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(60);

/// Starts quickstart on port 0 and returns the child and its banner (up to "Press Ctrl-C").
async fn quickstart(data_dir: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether-platform"))
        .args(["quickstart", "--port", "0", "--data-dir", data_dir])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = tokio::time::timeout(DEADLINE, async {
        let mut text = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        text
    })
    .await
    .expect("quickstart banner in time");
    (child, banner)
}

/// The value after `label` on its banner line.
fn field<'a>(banner: &'a str, label: &str) -> &'a str {
    banner
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{banner}"))
        .split_whitespace()
        .next()
        .unwrap()
}

fn client(fingerprint: &str) -> reqwest::Client {
    let tls = net::tls::client_config(
        &net::Trust::pinned_from_strs(&[fingerprint]).unwrap(),
        &[net::tls::ALPN_HTTP1],
    )
    .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Polls the demo Lua property through the platform REST until it is a number.
async fn read_demo_temperature(http: &reqwest::Client, base: &str, key: &str) -> f64 {
    let url = format!("{base}/Thingworx/Things/DemoLsrThing/Properties/Temperature");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = String::new();
    loop {
        if let Ok(r) = http.get(&url).header("appKey", key).send().await {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status == 200 {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                return v["rows"][0]["Temperature"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("not a number: {v}"));
            }
            last = format!("{status} {text}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo property was not readable in time; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn quickstart_serves_the_demo_lua_thing_through_the_platform() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();

    let (mut child, banner) = quickstart(d).await;
    let base = field(&banner, "URL:").trim_end_matches('/').to_owned();
    let fingerprint = field(&banner, "certificate SHA-256:").to_owned();
    let key = field(&banner, "demo edge app key:").to_owned();
    assert!(banner.contains("curl "), "prints how to read it:\n{banner}");
    assert!(
        banner.contains("DemoLsrThing/Properties/Temperature"),
        "{banner}"
    );
    let saved = std::fs::read_to_string(dir.path().join("demo-edge/app-key")).unwrap();
    assert_eq!(saved.trim(), key);
    assert!(
        dir.path()
            .join("demo-edge/lsr/custom/templates/example.lua")
            .exists()
    );

    let http = client(&fingerprint);
    let t = read_demo_temperature(&http, &base, &key).await;
    assert!((21.5..=100.0).contains(&t), "{t}");
    // A service of the example template, with parameters.
    let r = http
        .post(format!("{base}/Thingworx/Things/DemoLsrThing/Services/Add"))
        .header("appKey", &key)
        .header("content-type", "application/json")
        .body(r#"{"p1": 20, "p2": 22}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["rows"][0]["result"], 42.0, "{v}");
    child.kill().await.unwrap();

    // Second start on the same data directory: no secrets printed, the demo edge
    // uses its saved key and works again.
    let (mut child, banner) = quickstart(d).await;
    assert!(!banner.contains(&key), "the key is not printed again");
    let base = field(&banner, "URL:").trim_end_matches('/').to_owned();
    read_demo_temperature(&client(&fingerprint), &base, saved.trim()).await;
    child.kill().await.unwrap();
}
