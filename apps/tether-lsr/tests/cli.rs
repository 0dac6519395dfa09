//! The binary: configuration errors exit with status 64 and name the key.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tether-lsr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.lua");
    std::fs::write(
        &path,
        "scripts.rap_port = \"eighty\"\nscripts.T = { file = \"thing.lua\", template = \"x\" }",
    )
    .unwrap();
    let (code, err) = run(&["-cfg", path.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("scripts.rap_port"), "{err}");
}

#[test]
fn missing_template_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.lua");
    std::fs::write(
        &path,
        "scripts.script_resource_host = \"127.0.0.1\"\nscripts.script_resource_port = 0\n\
         scripts.T = { file = \"thing.lua\", template = \"nowhere\", register = false }",
    )
    .unwrap();
    let (code, err) = run(&["--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("scripts.T.template"), "{err}");
}

#[test]
fn no_arguments_is_a_usage_error() {
    let (code, err) = run(&[]);
    assert_eq!(code, Some(64));
    assert!(err.contains("-cfg"), "{err}");
}

#[test]
fn version_and_help_exit_0() {
    for flag in ["--version", "-V"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tether-lsr"))
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.trim(),
            format!("tether-lsr {}", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tether-lsr"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-cfg"));
}
