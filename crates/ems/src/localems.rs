//! The EMS's own services: the `LocalEms` pseudo-thing of the local REST and the
//! gateway thing as seen from the platform (spec §6.2).
//!
//! `AddEdgeThing {name, host, port, proto|protocol, path, keepalive, timeout, user,
//! password}` registers a thing answered by a script resource and binds it;
//! `RemoveEdgeThing {name}` unbinds it; `HasEdgeThing {name}` → `{result: BOOLEAN}`;
//! `GetEdgeThings` → one row per thing `{name, bound}`; `GetMicroserverVersion`
//! → `{result: STRING}`. Property `isConnected` (BOOLEAN).

use std::time::Duration;

use alwayson::{BaseType, Code, FieldDef, InfoTable, Primitive};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Endpoint, defaults};
use crate::gateway::spawn_keepalive;
use crate::jsonform::{error_table, one};
use crate::secret::Secret;
use crate::things::Things;
use crate::uplink::Uplink;

/// Name of the local pseudo-thing.
pub const LOCAL_EMS: &str = "LocalEms";

/// Services a ThingWorx EMS has that Tether does not implement (yet): 501.
const NOT_IMPLEMENTED: &[&str] = &[
    "GetConfiguration",
    "ReplaceConfiguration",
    "UpdateConfiguration",
    "Restart",
    "GetLogData",
    "StartFileLogging",
    "StopFileLogging",
    "TestPort",
];

/// An answer of a local service: code and content.
pub type Answer = (Code, Option<InfoTable>);

/// The EMS's own services.
#[derive(Debug, Clone)]
pub struct LocalEms {
    pub(crate) things: Things,
    pub(crate) uplink: Uplink,
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

impl LocalEms {
    /// `isConnected` (or all properties for an empty name).
    pub fn property(&self, name: &str) -> Answer {
        match name {
            "isConnected" | "" => (
                Code::SUCCESS,
                Some(one(
                    "isConnected",
                    Primitive::Boolean(self.uplink.is_connected()),
                )),
            ),
            other => (
                Code::NOT_FOUND,
                Some(error_table(&format!("Property '{other}' not found"))),
            ),
        }
    }

    /// Runs a service with its parameters as one JSON object.
    pub fn service(&self, name: &str, params: &Value) -> Answer {
        match name {
            "AddEdgeThing" => self.add_edge_thing(params),
            "RemoveEdgeThing" => match str_param(params, "name") {
                Some(n) if self.things.remove(n) => (Code::SUCCESS, None),
                Some(n) => (
                    Code::NOT_FOUND,
                    Some(error_table(&format!("Thing '{n}' is not registered"))),
                ),
                None => bad("parameter 'name' is required"),
            },
            "HasEdgeThing" => match str_param(params, "name") {
                Some(n) => {
                    let has = self.things.get(n).is_some();
                    (Code::SUCCESS, Some(one("result", Primitive::Boolean(has))))
                }
                None => bad("parameter 'name' is required"),
            },
            "GetEdgeThings" => {
                let bound = self.things.bound_names();
                let mut t = InfoTable::new(vec![
                    FieldDef::new("name", BaseType::String),
                    FieldDef::new("bound", BaseType::Boolean),
                ]);
                for n in self.things.all_names() {
                    let b = bound.contains(&n);
                    t.rows
                        .push(vec![Primitive::String(n), Primitive::Boolean(b)]);
                }
                (Code::SUCCESS, Some(t))
            }
            "GetMicroserverVersion" => (
                Code::SUCCESS,
                Some(one(
                    "result",
                    Primitive::String(format!("tether-ems {}", env!("CARGO_PKG_VERSION"))),
                )),
            ),
            n if NOT_IMPLEMENTED.contains(&n) => (
                Code::NOT_IMPLEMENTED,
                Some(error_table(&format!(
                    "Service '{n}' is not implemented by tether-ems"
                ))),
            ),
            other => (
                Code::NOT_FOUND,
                Some(error_table(&format!("Service '{other}' not found"))),
            ),
        }
    }

    fn add_edge_thing(&self, p: &Value) -> Answer {
        let Some(name) = str_param(p, "name").filter(|n| !n.is_empty()) else {
            return bad("parameter 'name' is required");
        };
        let host = match str_param(p, "host").unwrap_or(defaults::BIND_HOST) {
            "0.0.0.0" => "127.0.0.1",
            h => h,
        };
        let Some(port) = num_param(p, "port", u64::from(defaults::BIND_PORT))
            .filter(|n| (1..=65535).contains(n))
        else {
            return bad("parameter 'port' must be 1-65535");
        };
        let proto = str_param(p, "proto")
            .or_else(|| str_param(p, "protocol"))
            .unwrap_or("http");
        let https = match proto.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return bad("parameter 'proto' must be http or https"),
        };
        let path = str_param(p, "path").unwrap_or(defaults::BIND_PATH);
        if !path.starts_with('/') {
            return bad("parameter 'path' must start with '/'");
        }
        let Some(timeout) = num_param(p, "timeout", defaults::BIND_TIMEOUT_MS).filter(|t| *t >= 10)
        else {
            return bad("parameter 'timeout' must be a number of ms ≥ 10");
        };
        let Some(keepalive) = num_param(p, "keepalive", 0) else {
            return bad("parameter 'keepalive' must be a number of ms");
        };
        let keepalive = (keepalive > 0).then(|| Duration::from_millis(keepalive.max(100)));
        let basic_auth = str_param(p, "user").filter(|u| !u.is_empty()).map(|u| {
            (
                u.to_owned(),
                Secret::new(str_param(p, "password").unwrap_or("")),
            )
        });
        let ep = Endpoint {
            https,
            host: host.to_owned(),
            port: port as u16,
            path: path.to_owned(),
            timeout: Duration::from_millis(timeout),
            basic_auth,
        };
        if p.get("persist").and_then(Value::as_bool) == Some(true) {
            tracing::warn!(
                thing = name,
                "AddEdgeThing persist=true is not supported: registration lasts until restart"
            );
        }
        match self.things.register(name, ep.clone()) {
            Ok(generation) => {
                tracing::info!(thing = name, host, port, "edge thing registered");
                if let Some(every) = keepalive {
                    spawn_keepalive(
                        &self.tracker,
                        self.shutdown.clone(),
                        self.things.clone(),
                        name.to_owned(),
                        generation,
                        &ep,
                        every,
                    );
                }
                (Code::SUCCESS, None)
            }
            Err(e) => (Code::FORBIDDEN, Some(error_table(&e))),
        }
    }

    /// `GetMetadata` of the gateway thing: `{result: JSON}`.
    pub fn metadata(&self, thing: &str) -> Answer {
        let mut services = serde_json::Map::new();
        for s in [
            "AddEdgeThing",
            "RemoveEdgeThing",
            "HasEdgeThing",
            "GetEdgeThings",
            "GetMicroserverVersion",
        ] {
            services.insert(
                s.to_owned(),
                serde_json::json!({
                    "name": s, "description": "", "aspects": {}, "Inputs": {},
                    "Outputs": {"baseType": "STRING", "fieldDefinitions": {}, "name": "result"},
                }),
            );
        }
        let meta = serde_json::json!({
            "name": thing,
            "description": "",
            "isSystemObject": false,
            "propertyDefinitions": {},
            "serviceDefinitions": services,
            "eventDefinitions": {},
        });
        (Code::SUCCESS, Some(crate::jsonform::json_result(&meta)))
    }
}

fn bad(msg: &str) -> Answer {
    (Code::BAD_REQUEST, Some(error_table(msg)))
}

fn str_param<'a>(p: &'a Value, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}

/// A number given as a JSON number or a string of digits (the LSR sends `"port":"18001"`);
/// None when present but not a whole number ≥ 0.
fn num_param(p: &Value, key: &str, default: u64) -> Option<u64> {
    match p.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
}
