//! Every sample config shipped in docs/examples/ems parses, with no warnings.

use std::path::PathBuf;

#[test]
fn every_shipped_sample_parses() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/ems");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).expect("docs/examples/ems exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let loaded = ems::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            loaded.warnings.is_empty(),
            "{}: unexpected warnings {:?}",
            path.display(),
            loaded.warnings
        );
        assert!(!loaded.config.servers.is_empty());
        found += 1;
    }
    assert!(
        found >= 2,
        "expected the minimal and full samples, found {found}"
    );
}

/// ThingWorx's own `config.json.complete` (EMS 5.4) loads as is, with warnings for
/// what Tether does not act on; only its placeholder `proxy.host` stops it, as Tether
/// has no proxy support yet.
#[test]
fn thingworx_complete_sample_loads_without_proxy() {
    let text = r#"{
"ws_servers": [{ "host": "localhost", "port": 80 }],
"resource": "/Thingworx/WS",
"appKey": "e34dbaf2-0984-4bfb-9a6c-4cbc57959763",
"logger": { "level": "WARN", "audit_target": "file:// or http:// ", "publish_directory": "/_tw_logs/",
  "publish_level": "WARN", "max_file_storage": 2000000, "auto_flush": true, "flush_chunk_size": 16384, "buffer_size": 4096 },
"http_server": { "host": "localhost", "port": 8000, "ssl": false, "authenticate": false,
  "content_read_timeout": 20000, "ports_to_try": 10, "max_clients": 15, "use_default_certificate" : false },
"fips": { "enabled": false },
"ws_connection": { "encryption": "ssl", "verbose": false, "binary_mode": true, "msg_timeout": 5000, "ping_rate": 55000,
  "pingpong_timeout": 10000, "connect_period": 60000, "duty_cycle": 100, "message_idle_time": 50, "max_msg_size": 1048576,
  "message_chunk_size": 8192, "max_frame_size": 8192, "max_messages": 500, "connect_on_demand": false, "connect_timeout": 10000,
  "connect_retry_interval": 10000, "max_threads": 4, "max_connect_delay": 0, "socket_read_timeout": 100,
  "frame_read_timeout": 10000, "ssl_read_timeout": 500, "connect_retries": -1 },
"offline_msg_store": { "enabled": true, "directory": "/path/to/offline/message/store/directory", "max_size": 65535 },
"certificates": { "validate": true, "allow_self_signed": false, "cert_chain": ["/path/to/ca_cert/file"],
  "validation_criteria": { "Cert_Common_Name": "common name" } },
"auto_bind": [{ "name": "EdgeThing001", "host": "localhost", "port": 8001, "path": "/", "timeout": 30000,
  "protocol": "http", "user": "username", "password": "secret", "accept": "application/json", "gateway": false }],
"tunnel": { "tick_resolution": 5, "buffer_size": 8192, "read_timeout": 10, "idle_timeout": 300000, "max_concurrent": 4 },
"file": { "buffer_size": 8192, "max_file_size": 8000000000, "virtual_dirs": [ {"tw": "c:\some\dir"}, {"other":"d:\another\dir"} ],
  "idle_timeout": 12000, "staging_dir": "\virtual_dir\some\path" }
}"#;
    let loaded = ems::config::parse(text, std::path::Path::new("/etc")).expect("loads");
    let c = &loaded.config;
    assert_eq!(c.servers[0].port, 80);
    assert_eq!(c.auto_bind[0].name, "EdgeThing001");
    assert_eq!(c.file.virtual_dirs[0].1, PathBuf::from(r"c:\some\dir"));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.starts_with("ws_connection.verbose"))
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.starts_with("certificates.validation_criteria"))
    );
    let with_proxy = text.replacen(
        r#""tunnel":"#,
        r#""proxy": {"host": "localhost", "port": 3128}, "tunnel":"#,
        1,
    );
    let err = ems::config::parse(&with_proxy, std::path::Path::new("/etc")).unwrap_err();
    assert_eq!(err.key, "proxy.host");
}
