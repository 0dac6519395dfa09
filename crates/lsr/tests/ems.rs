//! The LSR against a fake EMS, with requests shaped as in spec/captures/run2-http-ems-lsr.txt.

mod common;

use common::{FAST, FakeEms, Lsr, QUIET, pushed_values, subscriptions};
use serde_json::{Value, json};

const ADD_BODY: &str = r#"{"rows":[{"p1":2,"p2":3.500000000000000}],"datashape":{"fieldDefinitions":{"p1":{"name":"p1","description":"","baseType":"NUMBER","aspects":{}},"p2":{"name":"p2","description":"","baseType":"NUMBER","aspects":{}}}}}"#;
const ADD_REPLY: &str = r#"{"rows":[{"result":5.5}],"dataShape":{"fieldDefinitions":{"result":{"aspects":{"persist":false},"baseType":"NUMBER","name":"result","description":""}}}}"#;
const PUT_BODY: &str = r#"{"rows":[{"Temperature":42.250000000000000}],"datashape":{"fieldDefinitions":{"Temperature":{"name":"Temperature","description":"","baseType":"NUMBER","aspects":{}}}}}"#;

#[tokio::test]
async fn registers_then_subscribes_then_keeps_alive() {
    let ems = FakeEms::start(subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    let calls = ems
        .wait_for("HasEdgeThing", |c| {
            c.iter().any(|c| c.path.ends_with("/HasEdgeThing"))
        })
        .await;
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths[0], "/Thingworx/Things/LocalEms/Services/AddEdgeThing");
    assert_eq!(
        paths[1],
        "/Thingworx/Things/LsrThing/Services/GetPropertySubscriptions"
    );
    assert_eq!(calls[1].body, "{}");
    let add = calls[0].json();
    // TCP stream 1: keys and value types as the ThingWorx LSR sends them
    let keys: Vec<&String> = add.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "keepalive",
            "port",
            "timeout",
            "host",
            "proto",
            "name",
            "path"
        ]
    );
    assert_eq!(add["keepalive"], json!(150));
    assert_eq!(add["port"], json!(lsr.addr.port().to_string()));
    assert_eq!(add["timeout"], json!(15000));
    assert_eq!(add["host"], json!("127.0.0.1"));
    assert_eq!(add["proto"], json!("http"));
    assert_eq!(add["name"], json!("LsrThing"));
    assert_eq!(add["path"], json!("/scripts/Thingworx"));
    let has = calls
        .iter()
        .find(|c| c.path.ends_with("/HasEdgeThing"))
        .unwrap();
    assert_eq!(has.body, r#"{"name":"LsrThing"}"#);
    // PlainThing has register = false: never announced
    assert!(
        !calls
            .iter()
            .any(|c| c.body.contains("PlainThing") || c.body.contains("plain-1"))
    );
    lsr.shutdown().await;
    // deregistered on the way out
    assert!(
        ems.calls_to("/RemoveEdgeThing")
            .iter()
            .any(|c| c.body == r#"{"name":"LsrThing"}"#)
    );
}

#[tokio::test]
async fn read_write_and_read_again() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    let (s, body) = lsr.get("LsrThing/Properties/Temperature").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let row = v["rows"][0].as_object().unwrap();
    assert_eq!(row.keys().collect::<Vec<_>>(), ["time", "Temperature"]);
    assert!(row["time"].as_i64().unwrap() > 1_600_000_000_000);
    // 21.5 from the template, 22 once the task has run at start
    let t = row["Temperature"].as_f64().unwrap();
    assert!(t == 21.5 || t == 22.0, "{t}");
    assert_eq!(
        v["dataShape"]["fieldDefinitions"]["time"],
        json!({"aspects":[],"baseType":"DATETIME","name":"time","description":""})
    );
    assert_eq!(
        v["dataShape"]["fieldDefinitions"]["Temperature"]["baseType"],
        json!("NUMBER")
    );

    // let the start-up task run first (taskRate is a minute after that)
    let end = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let (_, body) = lsr.get("LsrThing/Properties/Temperature").await;
        if body.contains(r#""Temperature":22}"#) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "start-up task did not run: {body}"
        );
        tokio::task::yield_now().await;
    }
    let r = lsr
        .send(
            reqwest::Method::PUT,
            "LsrThing/Properties/Temperature",
            PUT_BODY,
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "");
    let (_, body) = lsr.get("LsrThing/Properties/Temperature").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rows"][0]["Temperature"], json!(42.25));

    // a STRING property, written with a wrong type
    let r = lsr
        .send(
            reqwest::Method::PUT,
            "LsrThing/Properties/Temperature",
            r#"{"rows":[{"Temperature":{"a":1}}]}"#,
        )
        .await;
    assert_eq!(r.status().as_u16(), 400);
    let (s, body) = lsr.get("LsrThing/Properties/Status").await;
    assert_eq!(s, 200);
    assert!(body.contains(r#""Status":"idle""#), "{body}");
    lsr.shutdown().await;
}

#[tokio::test]
async fn service_with_parameters_answers_as_captured() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    let r = lsr
        .send(reqwest::Method::POST, "LsrThing/Services/Add", ADD_BODY)
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), ADD_REPLY);

    // the service's own 400
    let (s, body) = lsr
        .post("LsrThing/Services/Add", r#"{"rows":[{"p1":1}]}"#)
        .await;
    assert_eq!(s, 400);
    assert_eq!(body, "You must provide the parameters p1 and p2");

    // a service writing a STRING property through me:setProperty
    let (s, body) = lsr
        .post(
            "LsrThing/Services/SetStatus",
            r#"{"rows":[{"status":"running"}]}"#,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, body) = lsr.get("LsrThing/Properties/Status").await;
    assert!(body.contains(r#""Status":"running""#), "{body}");

    // an INFOTABLE built with tw_infotable from a declared data shape
    let (s, body) = lsr.post("LsrThing/Services/GetReading", "").await;
    assert_eq!(s, 200, "{body}");
    let it: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(it["rows"][0]["Status"], json!("running"));
    assert!(it["rows"][0]["Temperature"].is_number(), "{body}");
    assert_eq!(
        it["dataShape"]["fieldDefinitions"]["Temperature"]["baseType"],
        json!("NUMBER")
    );

    // UTF-8 round trip (TCP stream 54)
    let (s, body) = lsr
        .post(
            "LsrThing/Services/Echo",
            r#"{"rows":[{"s":"héllo_wörld"}]}"#,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        r#"{"rows":[{"result":"héllo_wörld"}],"dataShape":{"fieldDefinitions":{"result":{"aspects":{"persist":false},"baseType":"STRING","name":"result","description":""}}}}"#
    );
    lsr.shutdown().await;
}

#[tokio::test]
async fn errors_and_builtin_services_as_captured() {
    let ems = FakeEms::start(subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    // TCP streams 13 and 15: plain message, JSON content type
    let r = lsr
        .send(reqwest::Method::GET, "LsrThing/Properties/NoSuchProp", "")
        .await;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "Property 'NoSuchProp' not found");
    let (s, body) = lsr.post("LsrThing/Services/NoSuchService", "").await;
    assert_eq!(
        (s, body.as_str()),
        (404, "Service 'NoSuchService' not found")
    );
    let (s, body) = lsr.get("NoSuchThing/Properties/X").await;
    assert_eq!((s, body.as_str()), (404, "Thing 'NoSuchThing' not found"));

    // TCP stream 17: GetMetadata
    let (s, body) = lsr.post("LsrThing/Services/GetMetadata", "").await;
    assert_eq!(s, 200);
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["name"], json!("LsrThing"));
    assert_eq!(m["isSystemObject"], json!(false));
    assert_eq!(
        m["propertyDefinitions"]["Temperature"]["baseType"],
        json!("NUMBER")
    );
    assert_eq!(
        m["propertyDefinitions"]["Status"]["baseType"],
        json!("STRING")
    );
    let add = &m["serviceDefinitions"]["Add"];
    assert_eq!(
        add["Inputs"]["fieldDefinitions"]["p1"],
        json!({"baseType":"NUMBER","name":"p1","description":"first addend","ordinal":0})
    );
    assert_eq!(add["Outputs"]["baseType"], json!("NUMBER"));
    assert_eq!(add["description"], json!("Adds two numbers"));
    assert_eq!(m["implementedShapes"], json!(["metadata", "propsubscribe"]));

    // TCP streams 16 and 18: NotifyPropertyUpdate → empty 200, then GetPropertySubscriptions
    ems.wait_for("first subscriptions", |c| {
        c.iter()
            .any(|c| c.path.ends_with("/GetPropertySubscriptions"))
    })
    .await;
    let r = lsr
        .send(
            reqwest::Method::POST,
            "LsrThing/Services/NotifyPropertyUpdate",
            "",
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    ems.wait_for("second GetPropertySubscriptions", |c| {
        c.iter()
            .filter(|c| c.path.ends_with("/GetPropertySubscriptions"))
            .count()
            >= 2
    })
    .await;

    // all properties (TCP stream 9)
    let r = lsr
        .send(reqwest::Method::GET, "LsrThing/Properties/", "")
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let all: Value = r.json().await.unwrap();
    assert_eq!(all["Temperature"]["baseType"], json!("NUMBER"));
    assert_eq!(all["Status"]["value"], json!("idle"));

    // bad JSON
    let (s, _) = lsr.post("LsrThing/Services/Add", "{not json").await;
    assert_eq!(s, 400);
    lsr.shutdown().await;
}

#[tokio::test]
async fn task_change_is_pushed_after_subscription() {
    let ems = FakeEms::start(subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let lsr = Lsr::start(ems.addr.port(), FAST, &[]).await;
    let calls = ems
        .wait_for("three Temperature pushes", |c| {
            pushed_values(c, "Temperature").len() >= 3
        })
        .await;
    // nothing pushed before the subscriptions were known
    let first_push = calls
        .iter()
        .position(|c| c.path.ends_with("/UpdateSubscribedPropertyValues"))
        .unwrap();
    let subs = calls
        .iter()
        .position(|c| c.path.ends_with("/GetPropertySubscriptions"))
        .unwrap();
    assert!(subs < first_push);
    let push = &calls[first_push];
    assert_eq!(
        push.path,
        "/Thingworx/Things/LsrThing/Services/UpdateSubscribedPropertyValues"
    );
    // the exact envelope of TCP stream 4
    let body = push.json();
    let outer: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(outer, ["dataShape", "rows"]);
    assert_eq!(
        body["dataShape"],
        json!({"fieldDefinitions":{"values":{"aspects":[],"name":"values","baseType":"INFOTABLE"}}})
    );
    let inner = &body["rows"][0]["values"];
    let fields: Vec<&String> = inner["dataShape"]["fieldDefinitions"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(fields, ["value", "time", "name", "quality"]);
    let row = inner["rows"][0].as_object().unwrap();
    assert_eq!(
        row.keys().collect::<Vec<_>>(),
        ["value", "name", "time", "quality"]
    );
    assert_eq!(row["value"]["baseType"], json!("NUMBER"));
    assert_eq!(row["quality"], json!("GOOD"));
    // Status (VALUE in the template) is not subscribed: never pushed
    assert!(pushed_values(&calls, "Status").is_empty());
    // the values rise as the task runs
    let vals: Vec<f64> = pushed_values(&calls, "Temperature")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(vals.last().unwrap() > vals.first().unwrap(), "{vals:?}");
    lsr.shutdown().await;
}

#[tokio::test]
async fn value_push_type_with_threshold_suppresses_small_changes() {
    // the task adds 0.5 per run; only changes above 1.2 may be pushed
    let ems = FakeEms::start(subscriptions(&[("Temperature", "VALUE", 1.2)])).await;
    let lsr = Lsr::start(ems.addr.port(), FAST, &[]).await;
    let calls = ems
        .wait_for("four Temperature pushes", |c| {
            pushed_values(c, "Temperature").len() >= 4
        })
        .await;
    let vals: Vec<f64> = pushed_values(&calls, "Temperature")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // the first push is forced by the subscription; every later one moved more than 1.2
    for w in vals[1..].windows(2) {
        assert!(w[1] - w[0] > 1.2, "pushed a small change: {vals:?}");
    }
    assert!(vals[1] - vals[0] > 1.2, "{vals:?}");
    lsr.shutdown().await;
}

#[tokio::test]
async fn unsubscribed_properties_are_never_pushed() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), FAST, &[]).await;
    // wait until the task has visibly run several times
    let end = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let (_, body) = lsr.get("LsrThing/Properties/Temperature").await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["rows"][0]["Temperature"].as_f64().unwrap() >= 24.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "task did not run");
        tokio::task::yield_now().await;
        ems.wait_for("any call", |c| !c.is_empty()).await;
    }
    ems.wait_for("keep-alive", |c| {
        c.iter()
            .filter(|c| c.path.ends_with("/HasEdgeThing"))
            .count()
            >= 2
    })
    .await;
    // (PlainThing does not register, so its template push types apply: not checked here)
    assert!(
        ems.calls_to("/Things/LsrThing/Services/UpdateSubscribedPropertyValues")
            .is_empty()
    );
    lsr.shutdown().await;
}

#[tokio::test]
async fn reregisters_when_the_ems_forgets_the_thing() {
    let ems = FakeEms::start(subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let lsr = Lsr::start(ems.addr.port(), FAST, &[]).await;
    ems.wait_for("keep-alive", |c| {
        c.iter().any(|c| c.path.ends_with("/HasEdgeThing"))
    })
    .await;
    // the EMS restarted and lost its registrations: HasEdgeThing → false (TCP streams 28-29)
    ems.state
        .has_thing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let calls = ems
        .wait_for("second AddEdgeThing", |c| {
            c.iter()
                .filter(|c| c.path.ends_with("/AddEdgeThing"))
                .count()
                >= 2
        })
        .await;
    let second_add = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.path.ends_with("/AddEdgeThing"))
        .nth(1)
        .unwrap()
        .0;
    assert!(calls[second_add - 1].path.ends_with("/HasEdgeThing"));
    lsr.shutdown().await;
}

#[tokio::test]
async fn reregisters_after_the_ems_was_down() {
    let ems = FakeEms::start(subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let addr = ems.addr;
    let lsr = Lsr::start(addr.port(), FAST, &[]).await;
    ems.wait_for("first push", |c| {
        !pushed_values(c, "Temperature").is_empty()
    })
    .await;
    ems.stop().await; // connection refused from now on
    // the LSR keeps serving the EMS's requests meanwhile
    let (s, _) = lsr.get("LsrThing/Properties/Temperature").await;
    assert_eq!(s, 200);
    let ems2 = FakeEms::start_on(addr, subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let calls = ems2
        .wait_for("AddEdgeThing then a push on the new EMS", |c| {
            c.iter().any(|c| c.path.ends_with("/AddEdgeThing"))
                && !pushed_values(c, "Temperature").is_empty()
        })
        .await;
    assert!(calls[0].path.ends_with("/AddEdgeThing"), "{calls:#?}");
    lsr.shutdown().await;
}

#[tokio::test]
async fn identifier_thing_in_plain_table_style() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    for name in ["PlainThing", "*plain-1", "%2Aplain-1"] {
        let (s, body) = lsr.get(&format!("{name}/Properties/Mode")).await;
        assert_eq!(s, 200, "{name}: {body}");
        assert!(body.contains(r#""Mode":"auto""#), "{body}");
    }
    let (s, body) = lsr
        .post(
            "PlainThing/Services/Scale",
            r#"{"rows":[{"x":3,"factor":2.5}]}"#,
        )
        .await;
    assert_eq!(s, 200);
    assert!(body.starts_with(r#"{"rows":[{"result":7.5}]"#), "{body}");
    let (s, body) = lsr.post("PlainThing/Services/GetMetadata", "").await;
    assert_eq!(s, 200);
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        m["serviceDefinitions"]["Scale"]["Inputs"]["fieldDefinitions"]["factor"]["baseType"],
        json!("NUMBER")
    );
    lsr.shutdown().await;
}

#[tokio::test]
async fn a_write_is_pushed_at_once() {
    // TCP streams 12 and 14: PUT 42.25, then a push of 42.25 without waiting for a scan
    let ems = FakeEms::start(subscriptions(&[("Temperature", "ALWAYS", 0.0)])).await;
    let extra = format!("{QUIET}\nscripts.LsrThing.scanRate = 600000\n");
    let lsr = Lsr::start(ems.addr.port(), &extra, &[]).await;
    ems.wait_for("first push", |c| {
        !pushed_values(c, "Temperature").is_empty()
    })
    .await;
    let r = lsr
        .send(
            reqwest::Method::PUT,
            "LsrThing/Properties/Temperature",
            PUT_BODY,
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    ems.wait_for("push of 42.25", |c| {
        pushed_values(c, "Temperature").contains(&json!(42.25))
    })
    .await;
    lsr.shutdown().await;
}

const MANY: &str = r#"
module ("templates.many", thingworx.template.extend)
for i = 1, 5 do
  properties["P" .. i] = { baseType = "NUMBER", pushType = "ALWAYS", value = i }
end
"#;

#[tokio::test]
async fn pushes_are_batched_by_max_concurrent_property_updates() {
    let subs: Vec<(&str, &str, f64)> = ["P1", "P2", "P3", "P4", "P5"]
        .iter()
        .map(|p| (*p, "ALWAYS", 0.0))
        .collect();
    let ems = FakeEms::start(subscriptions(&subs)).await;
    let extra = r#"
scripts.LsrThing.register = false
scripts.PlainThing.register = false
scripts.Many = { file = "thing.lua", template = "many", scanRate = 60000,
                 scanRateResolution = 20, maxConcurrentPropertyUpdates = 2 }
"#;
    let lsr = Lsr::start(ems.addr.port(), extra, &[("many.lua", MANY)]).await;
    let calls = ems
        .wait_for("all five pushed", |c| {
            (1..=5).all(|i| !pushed_values(c, &format!("P{i}")).is_empty())
        })
        .await;
    let pushes: Vec<usize> = calls
        .iter()
        .filter(|c| c.path == "/Thingworx/Things/Many/Services/UpdateSubscribedPropertyValues")
        .map(|c| {
            c.json()["rows"][0]["values"]["rows"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(&pushes[..3], [2, 2, 1], "{pushes:?}");
    lsr.shutdown().await;
}

#[tokio::test]
async fn basic_auth_both_ways() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let extra = format!(
        "{QUIET}
scripts.rap_userid = \"lsr\"
scripts.rap_password = \"to-ems\"
scripts.script_resource_authenticate = true
scripts.script_resource_userid = \"ems\"
scripts.script_resource_password = \"to-lsr\"
"
    );
    let lsr = Lsr::start(ems.addr.port(), &extra, &[]).await;
    let calls = ems
        .wait_for("AddEdgeThing", |c| {
            c.iter().any(|c| c.path.ends_with("/AddEdgeThing"))
        })
        .await;
    let add = calls
        .iter()
        .find(|c| c.path.ends_with("/AddEdgeThing"))
        .unwrap();
    // Basic lsr:to-ems
    assert_eq!(add.authorization.as_deref(), Some("Basic bHNyOnRvLWVtcw=="));
    assert_eq!(add.json()["user"], json!("ems"));
    assert_eq!(add.json()["password"], json!("to-lsr"));
    let (s, _) = lsr.get("LsrThing/Properties/Temperature").await;
    assert_eq!(s, 401);
    let r = lsr
        .http
        .get(format!("{}/LsrThing/Properties/Temperature", lsr.base))
        .basic_auth("ems", Some("to-lsr"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = lsr
        .http
        .get(format!("{}/LsrThing/Properties/Temperature", lsr.base))
        .basic_auth("ems", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    lsr.shutdown().await;
}

#[tokio::test]
async fn https_script_resource_with_default_and_given_certificates() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    // 1. ThingWorx's "default certificate": a self-signed one made at start
    let extra = format!(
        "{QUIET}\nscripts.script_resource_ssl = \"true\"\nscripts.script_resource_use_default_certificate = true\n"
    );
    let lsr = Lsr::start(ems.addr.port(), &extra, &[]).await;
    let calls = ems
        .wait_for("AddEdgeThing", |c| {
            c.iter().any(|c| c.path.ends_with("/AddEdgeThing"))
        })
        .await;
    let add = calls
        .iter()
        .find(|c| c.path.ends_with("/AddEdgeThing"))
        .unwrap();
    assert_eq!(add.json()["proto"], json!("https"));
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{}/scripts/Thingworx/Things/LsrThing/Properties/Temperature",
        lsr.addr.port()
    );
    let r = insecure.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // plain HTTP is not answered
    assert!(
        lsr.http
            .get(url.replace("https", "http"))
            .send()
            .await
            .is_err()
    );
    lsr.shutdown().await;

    // 2. certificate chain and key from PEM files, verified by the client
    let pki = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    std::fs::write(pki.path().join("chain.pem"), &cert_pem).unwrap();
    std::fs::write(pki.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    let extra = format!(
        "{QUIET}\nscripts.script_resource_ssl = true\n\
         scripts.script_resource_certificate_chain = {:?}\n\
         scripts.script_resource_private_key = {:?}\n",
        pki.path().join("chain.pem"),
        pki.path().join("key.pem"),
    );
    let lsr = Lsr::start(ems.addr.port(), &extra, &[]).await;
    let verifying = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = verifying
        .get(format!(
            "https://localhost:{}/scripts/Thingworx/Things/LsrThing/Properties/Temperature",
            lsr.addr.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    lsr.shutdown().await;
}

#[tokio::test]
async fn a_script_fires_an_event_through_the_ems() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    let (s, body) = lsr
        .post(
            "LsrThing/Services/RaiseAlarm",
            r#"{"rows":[{"message":"too hot"}]}"#,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, "");
    let ev = ems.calls_to("/Thingworx/Things/LsrThing/Events/Alarm");
    assert_eq!(ev.len(), 1);
    let v = ev[0].json();
    assert_eq!(v["rows"][0]["message"], json!("too hot"));
    assert_eq!(
        v["dataShape"]["fieldDefinitions"]["temperature"]["baseType"],
        json!("NUMBER")
    );
    lsr.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let lsr = Lsr::start(ems.addr.port(), QUIET, &[]).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(reqwest::Method, &str, String, u16)> = vec![
        (
            reqwest::Method::POST,
            "LsrThing/Services/Add",
            deep.clone(),
            400,
        ),
        (
            reqwest::Method::POST,
            "LsrThing/Services/Add",
            "[1,2]".into(),
            400,
        ),
        (
            reqwest::Method::POST,
            "LsrThing/Services/Add",
            r#"{"rows":[{"p1":"x","p2":1}]}"#.into(),
            400,
        ),
        (
            reqwest::Method::PUT,
            "LsrThing/Properties/Temperature",
            "".into(),
            400,
        ),
        (
            reqwest::Method::PUT,
            "LsrThing/Properties/Temperature",
            "\"x\"".into(),
            400,
        ),
        (
            reqwest::Method::PUT,
            "LsrThing/Properties/NoSuchProp",
            r#"{"rows":[{"NoSuchProp":1}]}"#.into(),
            404,
        ),
        (
            reqwest::Method::DELETE,
            "LsrThing/Properties/Temperature",
            "".into(),
            405,
        ),
        (reqwest::Method::GET, "LsrThing/Events/X", "".into(), 404),
        (
            reqwest::Method::GET,
            "LsrThing/Properties/%00%ff",
            "".into(),
            404,
        ),
        (
            reqwest::Method::POST,
            "LsrThing/Services/Add",
            "x".repeat(5 * 1024 * 1024),
            413,
        ),
    ];
    for (method, path, body, want) in cases {
        let r = lsr.send(method.clone(), path, &body).await;
        assert_eq!(r.status().as_u16(), want, "{method} {path}");
    }
    let r = lsr
        .http
        .get(format!(
            "http://{}/scripts/Thingworx/Mashups/X/Properties/Y",
            lsr.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // still healthy
    let (s, _) = lsr.post("LsrThing/Services/Add", ADD_BODY).await;
    assert_eq!(s, 200);
    lsr.shutdown().await;
}

const RELAY: &str = r#"
return {
  properties = {},
  services = {
    Relay = function(me, headers, query, data)
      local code, body = server.invoke("Ping", { a = data.a })
      return 200, tostring(code) .. ":" .. body
    end,
  },
}
"#;

#[tokio::test]
async fn a_script_invokes_a_service_through_the_ems() {
    let ems = FakeEms::start(subscriptions(&[])).await;
    let extra = format!(
        "{QUIET}\nscripts.Relay = {{ file = \"thing.lua\", template = \"relay\", register = false }}\n"
    );
    let lsr = Lsr::start(ems.addr.port(), &extra, &[("relay.lua", RELAY)]).await;
    let (s, body) = lsr
        .post("Relay/Services/Relay", r#"{"rows":[{"a":7}]}"#)
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#""result":"200:""#), "{body}");
    let calls = ems.calls_to("/Thingworx/Things/Relay/Services/Ping");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].json(), json!({"a": 7}));
    lsr.shutdown().await;
}
