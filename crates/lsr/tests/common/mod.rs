//! Test helpers: a fake EMS recording what the LSR sends, and an LSR started from the
//! shipped example configuration with overrides.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a test waits for a condition.
pub const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: String,
    pub authorization: Option<String>,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

pub struct EmsState {
    pub calls: Mutex<Vec<Call>>,
    pub has_thing: AtomicBool,
    pub subscriptions: Mutex<Value>,
    bump: watch::Sender<u64>,
}

pub struct FakeEms {
    pub addr: SocketAddr,
    pub state: Arc<EmsState>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// GetPropertySubscriptions rows in the EMS's reply form (lower-case `datashape`).
pub fn subscriptions(rows: &[(&str, &str, f64)]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|(n, t, th)| json!({"edgeName": n, "pushType": t, "pushThreshold": th}))
        .collect();
    json!({"rows": rows, "datashape": {"fieldDefinitions": {
        "edgeName": {"name":"edgeName","description":"","baseType":"STRING","aspects":{}},
        "pushType": {"name":"pushType","description":"","baseType":"STRING","aspects":{}},
        "pushThreshold": {"name":"pushThreshold","description":"","baseType":"NUMBER","aspects":{}}
    }}})
}

async fn ems_handler(
    State(st): State<Arc<EmsState>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    st.calls.lock().unwrap().push(Call {
        method: method.to_string(),
        path: path.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(String::from),
    });
    st.bump.send_modify(|n| *n += 1);
    let jsonr = |v: Value| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    let empty = || (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response();
    if path.ends_with("/LocalEms/Services/AddEdgeThing") {
        st.has_thing.store(true, Ordering::SeqCst);
        empty()
    } else if path.ends_with("/LocalEms/Services/RemoveEdgeThing") {
        st.has_thing.store(false, Ordering::SeqCst);
        empty()
    } else if path.ends_with("/LocalEms/Services/HasEdgeThing") {
        let r = st.has_thing.load(Ordering::SeqCst);
        jsonr(
            json!({"rows":[{"result": r}],"datashape":{"fieldDefinitions":{"result":{"name":"result","description":"","baseType":"BOOLEAN","aspects":{}}}}}),
        )
    } else if path.ends_with("/Services/GetPropertySubscriptions") {
        jsonr(st.subscriptions.lock().unwrap().clone())
    } else if path.ends_with("/LocalEms/Properties/isConnected") {
        jsonr(json!({"rows":[{"isConnected": true}]}))
    } else {
        empty()
    }
}

impl FakeEms {
    pub async fn start(subs: Value) -> FakeEms {
        Self::start_on("127.0.0.1:0".parse().unwrap(), subs).await
    }

    pub async fn start_on(addr: SocketAddr, subs: Value) -> FakeEms {
        let (bump, _) = watch::channel(0);
        let state = Arc::new(EmsState {
            calls: Mutex::new(Vec::new()),
            has_thing: AtomicBool::new(false),
            subscriptions: Mutex::new(subs),
            bump,
        });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(ems_handler)
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
                .unwrap();
        });
        FakeEms {
            addr,
            state,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn calls_to(&self, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.ends_with(suffix))
            .collect()
    }

    /// Waits until `cond(calls)` holds, or panics after [`DEADLINE`].
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let mut rx = self.state.bump.subscribe();
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            let calls = self.calls();
            if cond(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(end, rx.changed()).await.is_err() {
                panic!("timed out waiting for {what}; calls so far: {calls:#?}");
            }
        }
    }
}

/// Pushed (name, value) pairs, in order.
pub fn pushed_values(calls: &[Call], prop: &str) -> Vec<Value> {
    calls
        .iter()
        .filter(|c| c.path.ends_with("/Services/UpdateSubscribedPropertyValues"))
        .flat_map(|c| {
            let v = c.json();
            v["rows"][0]["values"]["rows"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|r| r["name"] == prop)
        .map(|r| r["value"]["value"].clone())
        .collect()
}

pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/lsr")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

pub struct Lsr {
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), lsr::Error>>,
    pub http: reqwest::Client,
}

impl Lsr {
    /// Copies the example, appends `extra` Lua to its config.lua, adds `templates` files.
    pub async fn start(ems_port: u16, extra: &str, templates: &[(&str, &str)]) -> Lsr {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&example_dir(), dir.path());
        for (name, src) in templates {
            std::fs::write(dir.path().join("custom/templates").join(name), src).unwrap();
        }
        let cfg_path = dir.path().join("config.lua");
        let mut cfg = std::fs::read_to_string(&cfg_path).unwrap();
        cfg.push_str(&format!("\nscripts.rap_port = \"{ems_port}\"\n{extra}\n"));
        std::fs::write(&cfg_path, cfg).unwrap();
        let config = lsr::Config::load(&cfg_path).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(lsr::run(config, listener, stop.clone()));
        Lsr {
            addr,
            base: format!("http://{addr}/scripts/Thingworx/Things"),
            dir,
            stop,
            task,
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}/{path}", self.base))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &str) -> reqwest::Response {
        self.http
            .request(method, format!("{}/{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, String) {
        let r = self.send(reqwest::Method::POST, path, body).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Fast rates for the example's LsrThing; PlainThing does not register.
pub const FAST: &str = r#"
scripts.LsrThing.scanRate = 100
scripts.LsrThing.taskRate = 100
scripts.LsrThing.scanRateResolution = 20
scripts.LsrThing.keepAliveRate = 150
scripts.LsrThing.registerRetryRate = 100
scripts.PlainThing.register = false
"#;

/// Like FAST but the task runs once at start and then only every minute.
pub const QUIET: &str = r#"
scripts.LsrThing.scanRate = 100
scripts.LsrThing.taskRate = 60000
scripts.LsrThing.scanRateResolution = 20
scripts.LsrThing.keepAliveRate = 150
scripts.PlainThing.register = false
"#;
