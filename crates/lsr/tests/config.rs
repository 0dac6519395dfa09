//! config.lua parsing: the shipped examples, ThingWorx spellings, and errors naming the key.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use lsr::{Config, ConfigError};

fn find_configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            find_configs(&p, out);
        } else if p.file_name().is_some_and(|n| n == "config.lua") {
            out.push(p);
        }
    }
}

/// LSR configs shipped by the installers, each copied next to the example templates
/// (the packages install those templates beside it).
fn installer_configs(tmp: &Path) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../installers");
    let mut found = Vec::new();
    if root.is_dir() {
        find_configs(&root, &mut found);
    }
    let templates = common::example_dir().join("custom/templates");
    let mut out = Vec::new();
    for (i, cfg) in found.iter().enumerate() {
        let dir = tmp.join(format!("installer-{i}"));
        std::fs::create_dir_all(dir.join("custom/templates")).unwrap();
        std::fs::copy(cfg, dir.join("config.lua")).unwrap();
        for e in std::fs::read_dir(&templates).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(
                &p,
                dir.join("custom/templates").join(p.file_name().unwrap()),
            )
            .unwrap();
        }
        out.push(dir.join("config.lua"));
    }
    out
}

#[tokio::test]
async fn every_shipped_example_config_parses_and_its_templates_load() {
    let mut configs = Vec::new();
    find_configs(&common::example_dir(), &mut configs);
    assert!(!configs.is_empty(), "no example config.lua found");
    let tmp = tempfile::tempdir().unwrap();
    configs.extend(installer_configs(tmp.path()));
    for path in configs {
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!config.things.is_empty());
        let names: Vec<String> = config.things.iter().map(|t| t.name.clone()).collect();
        // load every template: run with registration off, ask each thing for its metadata
        let mut config = config;
        for t in &mut config.things {
            t.register = false;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(lsr::run(config, listener, stop.clone()));
        for n in &names {
            let r = reqwest::get(format!("http://{addr}/scripts/Thingworx/Things/{n}"))
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{}: {n}", path.display());
            let m: serde_json::Value = r.json().await.unwrap();
            assert_eq!(m["name"], serde_json::json!(n));
        }
        stop.cancel();
        task.await.unwrap().unwrap();
    }
}

#[test]
fn example_values_and_thingworx_defaults() {
    let c = Config::load(&common::example_dir().join("config.lua")).unwrap();
    assert_eq!(c.rap.host, "127.0.0.1");
    assert_eq!(c.rap.port, 8000); // given as the string "8000"
    assert!(!c.rap.ssl);
    assert_eq!(c.resource.port, 8001);
    assert_eq!(c.skipped_scripts, ["sample"]);
    let lsr_thing = c.things.iter().find(|t| t.name == "LsrThing").unwrap();
    assert_eq!(lsr_thing.template, "example");
    assert_eq!(lsr_thing.scan_rate, 5000);
    assert_eq!(lsr_thing.keep_alive_rate, 30000);
    let plain = c.things.iter().find(|t| t.name == "PlainThing").unwrap();
    assert_eq!(plain.registered_name(), "*plain-1");
    // ThingWorx defaults
    assert_eq!(plain.scan_rate, 60_000);
    assert_eq!(plain.task_rate, 15_000);
    assert_eq!(plain.scan_rate_resolution, 500);
    assert_eq!(plain.keep_alive_rate, 60_000);
    assert_eq!(plain.request_timeout, 15_000);
    assert_eq!(plain.register_rate, 43_200_000);
    assert_eq!(plain.max_concurrent_property_updates, 100);
    assert!(plain.register);
    assert!(!plain.get_property_subscriptions_on_reconnect);
}

fn parse(src: &str) -> Result<Config, ConfigError> {
    Config::from_lua_source(src, Path::new("config.lua"), Path::new("."))
}

fn bad_key(src: &str) -> String {
    match parse(src) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

const THING: &str = "scripts.T = { file = \"thing.lua\", template = \"example\" }\n";

#[test]
fn defaults_when_only_a_thing_is_given() {
    let c = parse(THING).unwrap();
    assert_eq!(c.rap.host, "localhost");
    assert_eq!(c.rap.port, 8000);
    assert!(c.rap.ssl);
    assert!(c.rap.validate);
    assert_eq!(c.resource.host, "localhost");
    assert_eq!(c.resource.port, 8001);
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(
        bad_key(&format!("{THING}scripts.rap_port = \"eighty\"")),
        "scripts.rap_port"
    );
    assert_eq!(
        bad_key(&format!("{THING}scripts.rap_port = 70000")),
        "scripts.rap_port"
    );
    assert_eq!(
        bad_key(&format!("{THING}scripts.rap_ssl = \"maybe\"")),
        "scripts.rap_ssl"
    );
    assert_eq!(
        bad_key(&format!("{THING}scripts.T.scanRate = 100")),
        "scripts.T.scanRate"
    );
    assert_eq!(
        bad_key(&format!("{THING}scripts.T.defaultPushType = \"SOMETIMES\"")),
        "scripts.T.defaultPushType"
    );
    assert_eq!(
        bad_key("scripts.T = { file = \"thing.lua\", template = \"../etc/passwd\" }"),
        "scripts.T.template"
    );
    assert_eq!(
        bad_key(&format!(
            "{THING}scripts.rap_userid = \"u\"\nscripts.rap_password = \"AES:xx\""
        )),
        "scripts.rap_password"
    );
    assert_eq!(bad_key("scripts.log_level = \"INFO\""), "scripts");
}

#[test]
fn lua_errors_and_sandbox_in_config() {
    assert!(matches!(
        parse("scripts.T = {"),
        Err(ConfigError::Lua { .. })
    ));
    // config.lua cannot run programs either
    assert!(matches!(
        parse(&format!("{THING}os.execute('true')")),
        Err(ConfigError::Lua { .. })
    ));
    assert!(matches!(
        parse("while true do end"),
        Err(ConfigError::Lua { .. })
    ));
    // but it may compute values and read the environment
    let c = parse(&format!(
        "{THING}scripts.rap_port = 8000 + 80\nscripts.rap_host = os.getenv('TETHER_LSR_NO_SUCH_VAR') or 'ems.local'"
    ))
    .unwrap();
    assert_eq!(c.rap.port, 8080);
    assert_eq!(c.rap.host, "ems.local");
}

#[tokio::test]
async fn a_missing_template_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.lua");
    std::fs::write(
        &path,
        "scripts.T = { file = \"thing.lua\", template = \"nowhere\", register = false }",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = lsr::run(config, listener, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        lsr::Error::Config(ConfigError::Invalid { key, reason }) => {
            assert_eq!(key, "scripts.T.template");
            assert!(reason.contains("nowhere.lua not found"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // a template with a Lua error is reported the same way
    std::fs::write(dir.path().join("broken.lua"), "properties.X = {").unwrap();
    std::fs::write(
        &path,
        "scripts.T = { file = \"thing.lua\", template = \"broken\", register = false }",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = lsr::run(config, listener, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, lsr::Error::Config(ConfigError::Invalid { key, .. }) if key == "scripts.T.template"),
        "{err:?}"
    );
}

#[test]
fn https_needs_usable_certificate_files() {
    // ThingWorx's config.lua.example placeholders: missing files name the key
    assert_eq!(
        bad_key(&format!(
            "{THING}scripts.script_resource_ssl = \"true\"\n\
             scripts.script_resource_certificate_chain = \"/path/to/chain\"\n\
             scripts.script_resource_private_key = \"/path/to/key\"\n\
             scripts.script_resource_use_default_certificate = false"
        )),
        "scripts.script_resource_certificate_chain"
    );
    assert_eq!(
        bad_key(&format!(
            "{THING}scripts.script_resource_ssl = true\nscripts.script_resource_certificate_chain = \"c.pem\""
        )),
        "scripts.script_resource_private_key"
    );
    // no files at all: a self-signed certificate is made
    let c = parse(&format!("{THING}scripts.script_resource_ssl = true")).unwrap();
    assert!(c.resource.tls.is_some());
}

#[test]
fn nested_tables_in_a_thing_reach_p_data() {
    let c = parse(
        "scripts.T = { file = \"thing.lua\", template = \"example\", \
         custom = { pins = { 4, 17 }, label = \"pump\" } }",
    )
    .unwrap();
    let p = &c.things[0].p_data;
    assert_eq!(p["custom"]["pins"], serde_json::json!([4, 17]));
    assert_eq!(p["custom"]["label"], serde_json::json!("pump"));
    assert_eq!(
        bad_key("scripts.T = { file = \"thing.lua\", template = \"example\", taskRate = {} }"),
        "scripts.T.taskRate"
    );
}
