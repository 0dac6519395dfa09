//! Tests of `validate`: defaults, keys named in errors, warnings.

use super::*;

fn parse_ok(text: &str) -> Loaded {
    parse(text, Path::new("/etc/tether")).unwrap()
}

fn parse_err(text: &str) -> ConfigError {
    parse(text, Path::new("/etc/tether")).unwrap_err()
}

#[test]
fn minimal_gets_thingworx_defaults() {
    let l = parse_ok(r#"{"ws_servers":[{"host":"tw.example","port":443}],"appKey":"k"}"#);
    let c = l.config;
    assert_eq!(
        c.servers,
        vec![ServerAddr {
            host: "tw.example".into(),
            port: 443
        }]
    );
    assert_eq!(c.resource, "/Thingworx/WS");
    assert_eq!(c.app_key.expose(), "k");
    assert_eq!(c.http_server.port, 8000);
    assert_eq!(c.connection.ping_rate, Duration::from_millis(55_000));
    assert_eq!(c.connection.pingpong_timeout, Duration::from_millis(10_000));
    assert_eq!(c.connection.msg_timeout, Duration::from_millis(5_000));
    assert_eq!(c.connection.message_chunk_size, 8192);
    assert_eq!(c.connection.connect_retries, None);
    assert!(c.connection.tls);
    assert!(c.connection.duty_cycle.is_none());
    assert!(c.certificates.validate);
    assert!(!c.certificates.allow_self_signed);
    assert!(c.offline_store.enabled);
    assert_eq!(c.offline_store.max_size, 65_535);
    assert!(l.warnings.is_empty());
}

#[test]
fn bad_values_name_their_key() {
    let e = parse_err(r#"{"appKey":"k","ws_connection":{"ping_rate":"often"}}"#);
    assert_eq!(e.key, "ws_connection.ping_rate");
    let e = parse_err(r#"{"appKey":"k","ws_connection":{"ping_rate":-5}}"#);
    assert_eq!(e.key, "ws_connection.ping_rate");
    let e = parse_err(r#"{"appKey":"k","ws_connection":{"duty_cycle":150}}"#);
    assert_eq!(e.key, "ws_connection.duty_cycle");
    let e = parse_err(r#"{"appKey":"k","auto_bind":[{"name":"A"},{"name":"B","port":70000}]}"#);
    assert_eq!(e.key, "auto_bind[1].port");
    let e = parse_err(r#"{"appKey":"k","tunnel":{"allowed_targets":["127.0.0.1:22","nope"]}}"#);
    assert_eq!(e.key, "tunnel.allowed_targets[1]");
    let e = parse_err(r#"{"ws_servers":[]}"#);
    assert_eq!(e.key, "ws_servers");
    let e = parse_err(r#"{"ws_servers":[{"host":"h"}]}"#);
    assert_eq!(e.key, "appKey");
    let e = parse_err(r#"{"appKey":"AES:abcdef"}"#);
    assert_eq!(e.key, "appKey");
    let e = parse_err(r#"{"appKey":"k","certificates":{"pinned_sha256":["abcd"]}}"#);
    assert_eq!(e.key, "certificates.pinned_sha256[0]");
    let e = parse_err(r#"{"appKey":"k","logger":"loud"}"#);
    assert_eq!(e.key, "logger");
}

#[test]
fn unknown_keys_warn() {
    let l = parse_ok(r#"{"appKey":"k","colour":"red","ws_connection":{"pingrate":1}}"#);
    assert!(l.warnings.iter().any(|w| w.starts_with("colour:")));
    assert!(
        l.warnings
            .iter()
            .any(|w| w.starts_with("ws_connection.pingrate:"))
    );
}

#[test]
fn numbers_as_strings_and_duty_cycle() {
    let l = parse_ok(
        r#"{"appKey":"k","ws_connection":{"ping_rate":"2000","duty_cycle":25,"connect_period":4000,"connect_retries":3}}"#,
    );
    let c = l.config.connection;
    assert_eq!(c.ping_rate, Duration::from_millis(2000));
    assert_eq!(
        c.duty_cycle,
        Some(DutyCycle {
            on: Duration::from_millis(1000),
            off: Duration::from_millis(3000)
        })
    );
    assert_eq!(c.connect_retries, Some(3));
}

#[test]
fn tunnel_targets_and_pins() {
    let l = parse_ok(
        r#"{"appKey":"k","tunnel":{"allowed_targets":["127.0.0.1:22","[::1]:5900","plc.local:502"]},
           "certificates":{"pinned_sha256":["AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"]}}"#,
    );
    let t = &l.config.tunnel;
    assert!(t.allows("127.0.0.1", 22));
    assert!(t.allows("::1", 5900));
    assert!(t.allows("PLC.local", 502));
    assert!(!t.allows("127.0.0.1", 23));
    assert_eq!(l.config.certificates.pinned_sha256[0][0], 0xAA);
}

#[test]
fn tunnel_mode() {
    let mode = |m: &str| {
        parse_ok(&format!(r#"{{"appKey":"k","tunnel":{{"mode":{m}}}}}"#))
            .config
            .tunnel
            .mode
    };
    assert_eq!(
        parse_ok(r#"{"appKey":"k"}"#).config.tunnel.mode,
        TunnelMode::Auto
    );
    assert_eq!(mode(r#""auto""#), TunnelMode::Auto);
    assert_eq!(mode(r#""Native""#), TunnelMode::Native);
    assert_eq!(mode(r#""legacy""#), TunnelMode::Legacy);
    let e = parse_err(r#"{"appKey":"k","tunnel":{"mode":"thingworx"}}"#);
    assert_eq!(e.key, "tunnel.mode");
    assert!(e.reason.contains("legacy"), "{}", e.reason);
}

#[test]
fn gateway_and_endpoints() {
    let l = parse_ok(
        r#"{"appKey":"k","auto_bind":[{"name":"Gw","gateway":true},{"name":"T","path":"/scripts/Thingworx","port":"18001"}]}"#,
    );
    let c = l.config;
    assert_eq!(c.gateway_name(), Some("Gw"));
    assert!(c.auto_bind[0].endpoint.is_none());
    let ep = c.auto_bind[1].endpoint.as_ref().unwrap();
    assert_eq!(
        (ep.host.as_str(), ep.port, ep.path.as_str()),
        ("localhost", 18001, "/scripts/Thingworx")
    );
    let e = parse_err(
        r#"{"appKey":"k","auto_bind":[{"name":"A","gateway":true},{"name":"B","gateway":true}]}"#,
    );
    assert_eq!(e.key, "auto_bind[1].gateway");
}
