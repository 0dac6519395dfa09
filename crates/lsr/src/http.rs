//! The script resource's HTTP server, answering the EMS as the ThingWorx LSR does
//! (spec/captures/run2-http-ems-lsr.txt): `/scripts/Thingworx/Things/<thing>/...`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::basetype;
use crate::config::Secret;
use crate::thing::{Reply, Thing};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Requests handled at once; more get 503.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;
/// Most headers handed to a script.
const MAX_HEADERS_TO_SCRIPT: usize = 64;

#[derive(Clone)]
pub(crate) struct AppState {
    /// By thing name and by `*identifier`.
    pub things: Arc<HashMap<String, Arc<Thing>>>,
    pub names: Arc<Vec<String>>,
    pub credentials: Option<(String, Secret)>,
    pub permits: Arc<Semaphore>,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/scripts", get(list_scripts))
        .route("/scripts/", get(list_scripts))
        .route("/scripts/{*rest}", any(dispatch))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Connection cap and optional Basic auth (`script_resource_authenticate`).
async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(_permit) = st.permits.clone().try_acquire_owned() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Too many requests".into());
    };
    if let Some((user, pass)) = &st.credentials {
        let expected = format!("{user}:{}", pass.expose());
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .is_some_and(|got| constant_time_eq(&got, expected.as_bytes()));
        if !ok {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized".into());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tether-lsr\""),
            );
            return r;
        }
    }
    next.run(req).await
}

async fn list_scripts(State(st): State<AppState>) -> Response {
    let mut names = vec!["Thingworx".to_string()];
    names.extend(st.names.iter().cloned());
    json(StatusCode::OK, &Value::from(names))
}

fn json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// An error or message body: plain text with a JSON content type, as the ThingWorx LSR
/// sends it (the EMS turns it into `{error: STRING}`, spec §12.6).
fn text(status: StatusCode, msg: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], msg).into_response()
}

fn reply(r: Reply) -> Response {
    match r {
        Reply::Empty => text(StatusCode::OK, String::new()),
        Reply::Json(v) => json(StatusCode::OK, &v),
        Reply::Text(s, m) => text(
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            m,
        ),
    }
}

fn percent_decode(s: &str) -> String {
    decode_with(s, false)
}

fn query_decode(s: &str) -> String {
    decode_with(s, true)
}

fn decode_with(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b[i] == b'+' {
            b' '
        } else {
            b[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .take(64)
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (query_decode(k), query_decode(v)),
            None => (query_decode(p), String::new()),
        })
        .collect()
}

fn parse_body(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(text(
            StatusCode::BAD_REQUEST,
            format!("Invalid JSON body: {e}"),
        ))
    })
}

async fn dispatch(
    State(st): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/scripts/").unwrap_or_default();
    let segs: Vec<String> = path.split('/').map(percent_decode).collect();
    // /scripts/Thingworx/<EntityType>/<entity>/<characteristic>/<target>
    // or /scripts/<thing>/<characteristic>/<target>
    let (thing_name, rest) = if segs.first().map(String::as_str) == Some("Thingworx") {
        match segs.get(1).map(String::as_str) {
            Some("Things") => {}
            Some(other) if !other.is_empty() => {
                return text(
                    StatusCode::NOT_FOUND,
                    format!("Entity type '{other}' is not supported"),
                );
            }
            _ => return text(StatusCode::NOT_FOUND, "Not found".into()),
        }
        match segs.get(2) {
            Some(t) if !t.is_empty() => (t.clone(), &segs[3..]),
            _ => return text(StatusCode::NOT_FOUND, "Not found".into()),
        }
    } else {
        match segs.first() {
            Some(t) if !t.is_empty() => (t.clone(), &segs[1..]),
            _ => return text(StatusCode::NOT_FOUND, "Not found".into()),
        }
    };
    let Some(thing) = st.things.get(&thing_name).cloned() else {
        return text(
            StatusCode::NOT_FOUND,
            format!("Thing '{thing_name}' not found"),
        );
    };
    let characteristic = rest.first().map(String::as_str).unwrap_or("");
    let target = rest.get(1).map(String::as_str).unwrap_or("");
    match (characteristic, &method) {
        ("", _) => metadata(&thing),
        ("Properties", &Method::GET) if target.is_empty() => {
            let all = thing.model().all_properties();
            let mut r = json(StatusCode::OK, &all);
            r.headers_mut()
                .insert("x-basepath", HeaderValue::from_static(".."));
            r
        }
        ("Properties", &Method::GET) => read_property(&thing, target),
        ("Properties", &Method::PUT) => match parse_body(&body) {
            Ok(v) => write_properties(&thing, target, &v).await,
            Err(r) => *r,
        },
        ("Services", &Method::GET) if target.is_empty() => {
            let mut names: Vec<String> = thing.services.iter().map(|s| s.name.clone()).collect();
            names.extend(["GetMetadata", "NotifyPropertyUpdate"].map(String::from));
            json(StatusCode::OK, &Value::from(names))
        }
        ("Services", &Method::POST) if !target.is_empty() => {
            let v = match parse_body(&body) {
                Ok(v) => v,
                Err(r) => return *r,
            };
            call_service(&thing, target, &headers, &uri, &v).await
        }
        ("Properties" | "Services", _) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {method} not allowed here"),
        ),
        (other, _) => text(
            StatusCode::NOT_FOUND,
            format!("Characteristic '{other}' not found"),
        ),
    }
}

fn metadata(thing: &Thing) -> Response {
    let v = thing.model().metadata(&thing.config.name, &thing.services);
    json(StatusCode::OK, &v)
}

fn read_property(thing: &Thing, name: &str) -> Response {
    let m = thing.model();
    match m.get(name) {
        Some(p) => json(
            StatusCode::OK,
            &crate::json::property_reply(&p.name, p.base_type, &p.value, p.time),
        ),
        None => text(
            StatusCode::NOT_FOUND,
            format!("Property '{name}' not found"),
        ),
    }
}

async fn write_properties(thing: &Thing, target: &str, body: &Value) -> Response {
    let Some(row) = crate::json::first_row(body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Property writes need a JSON object".into(),
        );
    };
    let mut values = Vec::new();
    {
        let m = thing.model();
        let names: Vec<String> = if target == "*" {
            row.keys().filter(|k| m.get(k).is_some()).cloned().collect()
        } else {
            vec![target.to_string()]
        };
        if names.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "Request did not contain any known property".into(),
            );
        }
        for name in names {
            let Some(p) = m.get(&name) else {
                return text(
                    StatusCode::NOT_FOUND,
                    format!("Property '{name}' not found"),
                );
            };
            let raw = row.get(&name).or_else(|| row.get("value"));
            let Some(v) = raw.and_then(|r| basetype::coerce(p.base_type, r)) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Request to set property {name} did not contain valid data"),
                );
            };
            values.push((name, v));
        }
    }
    match thing.write(values).await {
        Reply::Empty => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            Body::empty(),
        )
            .into_response(),
        other => reply(other),
    }
}

async fn call_service(
    thing: &Thing,
    name: &str,
    headers: &HeaderMap,
    uri: &Uri,
    body: &Value,
) -> Response {
    match name {
        "GetMetadata" => return metadata(thing),
        "NotifyPropertyUpdate" => {
            tracing::info!(thing = %thing.config.name, "property bindings changed on the server");
            thing.model().up_to_date = false;
            thing.wake.notify_one();
            return reply(Reply::Empty);
        }
        _ => {}
    }
    let data: Map<String, Value> = if body.is_null() {
        Map::new()
    } else {
        match crate::json::first_row(body) {
            Some(r) => r,
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Service parameters must be a JSON object".into(),
                );
            }
        }
    };
    // Check and convert declared inputs; undeclared ones are passed through.
    let mut data = data;
    if let Some(def) = thing.service_def(name) {
        for input in &def.inputs {
            if let Some(v) = data.get(&input.name) {
                if v.is_null() {
                    continue;
                }
                match basetype::coerce(&input.base_type, v) {
                    Some(c) => {
                        data.insert(input.name.clone(), c);
                    }
                    None => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "Parameter '{}' is not a valid {}",
                                input.name, input.base_type
                            ),
                        );
                    }
                }
            }
        }
    }
    let hdrs: Vec<(String, String)> = headers
        .iter()
        .take(MAX_HEADERS_TO_SCRIPT)
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    reply(
        thing
            .call_service(name.to_string(), hdrs, query_pairs(uri), data)
            .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("%2Aid"), "*id");
        assert_eq!(percent_decode("bad%2"), "bad%2");
        assert_eq!(percent_decode("x%"), "x%");
    }
}
