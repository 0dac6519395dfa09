//! The binary: exit 64 naming the key on a bad config, `--check`, and `encrypt`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tether-ems"))
}

#[test]
fn bad_value_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{"appKey": "k", "ws_connection": {"ping_rate": "soon"}}"#,
    )
    .unwrap();
    let out = bin().arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ws_connection.ping_rate"), "{err}");
}

#[test]
fn check_reports_unknown_keys_and_accepts_encrypted_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ems.key");
    let mut child = bin()
        .args(["encrypt", "--generate-key", "--key-file"])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"d0b0c0a0-1111\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enc = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(enc.starts_with("enc:v1:"), "{enc}");
    assert!(!enc.contains("d0b0c0a0"));

    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"appKey": "{enc}", "secrets_key_file": "ems.key", "colour": "red"}}"#),
    )
    .unwrap();
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour: unknown key"), "{err}");

    // The key file is required to read the value.
    std::fs::write(&cfg, format!(r#"{{"appKey": "{enc}"}}"#)).unwrap();
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("appKey"));
}
