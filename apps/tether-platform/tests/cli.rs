//! The binary: admin CLI against a data directory, config errors exit 64
//! naming the key, quickstart prints secrets once and serves TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether-platform"));
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_commands_manage_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = run(&[
        "admin",
        "--data-dir",
        d,
        "user",
        "add",
        "ops",
        "--role",
        "operator",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created user ops (operator)") && out.contains("password: "));
    let (code, out, _) = run(&[
        "admin",
        "--data-dir",
        d,
        "appkey",
        "create",
        "edge1",
        "--user",
        "ops",
        "--thing",
        "Pump*",
    ]);
    assert_eq!(code, 0);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_owned();
    assert!(key.starts_with("tk_"));
    let (code, out, _) = run(&["admin", "--data-dir", d, "appkey", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("edge1\tops\tactive") && !out.contains(&key),
        "{out}"
    );
    assert_eq!(
        run(&[
            "admin",
            "--data-dir",
            d,
            "thing",
            "add",
            "Pump1",
            "--template",
            "RemoteThingWithTunnels"
        ])
        .0,
        0
    );
    let (code, _, _) = run(&[
        "admin",
        "--data-dir",
        d,
        "interface",
        "add",
        "Pump1",
        "ssh",
        "--port",
        "22",
        "--protocol",
        "ssh",
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["admin", "--data-dir", d, "--json", "thing", "list"]);
    assert_eq!(code, 0);
    let things: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(things[0]["name"], "Pump1");
    assert_eq!(
        run(&["admin", "--data-dir", d, "appkey", "revoke", "edge1"]).0,
        0
    );
    let (_, out, _) = run(&["admin", "--data-dir", d, "appkey", "list"]);
    assert!(out.contains("revoked"));
    // errors: unknown user, duplicate thing
    let (code, _, err) = run(&[
        "admin",
        "--data-dir",
        d,
        "appkey",
        "create",
        "k2",
        "--user",
        "nobody",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("user `nobody` not found"), "{err}");
    let (code, _, err) = run(&["admin", "--data-dir", d, "thing", "add", "Pump1"]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(&[
        "admin",
        "--data-dir",
        d,
        "appkey",
        "create",
        "k3",
        "--user",
        "ops",
        "--allow-address",
        "x",
    ]);
    assert_eq!(code, 64, "{err}");
}

#[test]
fn config_errors_exit_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("platform.toml");
    std::fs::write(
        &cfg,
        "data_dir = \"/tmp/x\"\n[alwayson]\nidle_timeout = 5\n",
    )
    .unwrap();
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(err.contains("idle_timeout"), "{err}");
    std::fs::write(
        &cfg,
        "data_dir = \"/tmp/x\"\n[alwayson]\nrequest_timeout_ms = 0\n",
    )
    .unwrap();
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(err.contains("alwayson.request_timeout_ms"), "{err}");
    let (code, _, err) = run(&["serve", "--config", "/nonexistent/platform.toml"]);
    assert_eq!(code, 64, "{err}");
    // --database-url overrides [database] url and is validated like it.
    std::fs::write(&cfg, "data_dir = \"/tmp/x\"\n").unwrap();
    let (code, _, err) = run(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--database-url",
        "mysql://nope",
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("database.url"), "{err}");
}

/// Starts quickstart on port 0, reads its banner until "Press Ctrl-C", kills it.
fn quickstart_banner(data_dir: &str) -> String {
    let mut child = bin()
        .args(["quickstart", "--port", "0", "--data-dir", data_dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        let _ = tx.send(text);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = rx
        .recv_timeout(deadline - Instant::now())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn quickstart_prints_secrets_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let first = quickstart_banner(d);
    assert!(first.contains("certificate SHA-256: "), "{first}");
    assert!(
        first.contains("password:") && first.contains("demo edge app key:   tk_"),
        "{first}"
    );
    assert!(dir.path().join("tls/cert.pem").exists() && dir.path().join("tether.db").exists());
    let fp = |t: &str| t.lines().find(|l| l.contains("SHA-256")).map(str::to_owned);
    let second = quickstart_banner(d);
    assert!(second.contains("printed at first run"), "{second}");
    assert!(!second.contains("tk_"));
    assert_eq!(fp(&first), fp(&second), "the certificate is reused");
}
