//! The local REST server (spec §6.2, §12.7, §12.10): what scripts and local apps
//! call instead of the platform.
//!
//! - `/Thingworx/Things/LocalEms/...` (and the gateway thing's name): the EMS's
//!   own property `isConnected` and services (`AddEdgeThing`, …).
//! - `/Thingworx/<EntityType>/<name>/{Properties|Services|Events}[/<name>]`:
//!   translated to an AlwaysOn request (GET/PUT/POST/DELETE). A JSON body becomes
//!   the `_content_` InfoTable, except `UpdateSubscribedPropertyValues`, whose
//!   JSON InfoTable is sent typed (`{values: INFOTABLE}`).
//! - Answers: an InfoTable as JSON, rows first, key `datashape`; no content →
//!   `{}` for PUT, an empty `text/plain` body otherwise; errors → the HTTP status of
//!   the AlwaysOn code with the platform's message as text.
//! - Not connected: writes (PUT, DELETE, events, services other than `Get…`) go to
//!   the offline store (200 with `X-Tether-Offline: stored`), reads get 503; a full
//!   store gives 507.
//!
//! Optional basic authentication (`http_server.authenticate`), compared in constant time.

use std::sync::Arc;

use alwayson::{Characteristic, Code, EntityType, InfoTable, Limits, RequestBody};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::config::BasicAuth;
use crate::jsonform::{error_text, to_rest_json};
use crate::localems::{Answer, LOCAL_EMS, LocalEms};
use crate::uplink::{Outcome, UplinkError};

/// Shared state of the REST handlers.
#[derive(Debug, Clone)]
pub struct RestState {
    pub(crate) local: LocalEms,
    pub(crate) gateway: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) auth: Option<BasicAuth>,
}

/// The router; `max_body` bounds request bodies.
pub fn router(state: Arc<RestState>, max_body: usize) -> Router {
    Router::new()
        .route("/Thingworx/{etype}/{name}/{chr}", any(two))
        .route("/Thingworx/{etype}/{name}/{chr}/", any(two))
        .route("/Thingworx/{etype}/{name}/{chr}/{target}", any(three))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not an EMS REST path") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), basic_auth))
        .with_state(state)
}

async fn basic_auth(State(st): State<Arc<RestState>>, req: Request, next: Next) -> Response {
    let Some(auth) = &st.auth else {
        return next.run(req).await;
    };
    if authorized(auth, req.headers()) {
        return next.run(req).await;
    }
    let mut resp = text(StatusCode::UNAUTHORIZED, "authentication required");
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"tether-ems\""),
    );
    resp
}

fn authorized(auth: &BasicAuth, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", auth.user, auth.password.expose());
    decoded.ct_eq(expected.as_bytes()).into()
}

async fn two(
    State(st): State<Arc<RestState>>,
    method: Method,
    Path((etype, name, chr)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    handle(&st, method, &etype, &name, &chr, "", body).await
}

async fn three(
    State(st): State<Arc<RestState>>,
    method: Method,
    Path((etype, name, chr, target)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    handle(&st, method, &etype, &name, &chr, &target, body).await
}

async fn handle(
    st: &RestState,
    method: Method,
    etype: &str,
    name: &str,
    chr: &str,
    target: &str,
    body: Bytes,
) -> Response {
    let Some(characteristic) = Characteristic::from_path_segment(chr) else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("unknown characteristic {chr:?}"),
        );
    };
    let json = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}")),
        }
    };
    let is_local = etype == "Things" && (name == LOCAL_EMS || st.gateway.as_deref() == Some(name));
    if is_local {
        return local(st, &method, characteristic, target, json.as_ref());
    }
    let Some(entity_type) = EntityType::from_path_segment(etype) else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("unknown entity type {etype:?}"),
        );
    };
    let code = match method {
        Method::GET => Code::GET,
        Method::PUT => Code::PUT,
        Method::POST => Code::POST,
        Method::DELETE => Code::DELETE,
        _ => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET, PUT, POST or DELETE",
            );
        }
    };
    let mut req = RequestBody::new(entity_type, name, characteristic, target);
    if let Some(v) = &json {
        let params =
            if target == "UpdateSubscribedPropertyValues" && crate::jsonform::is_infotable(v) {
                match InfoTable::from_json(v, &st.limits) {
                    Ok(t) => t,
                    Err(e) => return text(StatusCode::BAD_REQUEST, &format!("bad InfoTable: {e}")),
                }
            } else {
                InfoTable::content(v)
            };
        req = req.with_params(params);
    }
    // Reads cannot be answered from the store; `Get…` services are reads too.
    let storable = match code {
        Code::GET => false,
        Code::POST => !(characteristic == Characteristic::SERVICES && target.starts_with("Get")),
        _ => true,
    };
    match st.local.uplink.request(code, req, storable).await {
        Ok(Outcome::Answered(reply)) => {
            if reply.code.is_success() {
                success(code == Code::PUT, reply.content.as_ref())
            } else {
                let msg = reply
                    .reason
                    .clone()
                    .or_else(|| reply.content.as_ref().and_then(error_text))
                    .unwrap_or_default();
                text(status_of(reply.code), &msg)
            }
        }
        Ok(Outcome::Stored) => {
            let mut resp =
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response();
            resp.headers_mut()
                .insert("x-tether-offline", HeaderValue::from_static("stored"));
            resp
        }
        Err(e) => {
            let status = match e {
                UplinkError::StoreFull(_) => StatusCode::INSUFFICIENT_STORAGE,
                UplinkError::NotConnected | UplinkError::Busy | UplinkError::ShuttingDown => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                UplinkError::Timeout | UplinkError::ConnectionLost => StatusCode::GATEWAY_TIMEOUT,
                UplinkError::Encode(_) => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            text(status, &e.to_string())
        }
    }
}

fn local(
    st: &RestState,
    method: &Method,
    chr: Characteristic,
    target: &str,
    json: Option<&Value>,
) -> Response {
    let answer: Answer = match (method, chr) {
        (&Method::GET, Characteristic::PROPERTIES) => st.local.property(target),
        (&Method::POST, Characteristic::SERVICES) => {
            let empty = Value::Object(serde_json::Map::new());
            st.local.service(target, json.unwrap_or(&empty))
        }
        _ => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "LocalEms: GET Properties or POST Services",
            );
        }
    };
    let (code, content) = answer;
    if code.is_success() {
        success(false, content.as_ref())
    } else {
        let msg = content.as_ref().and_then(error_text).unwrap_or_default();
        text(status_of(code), &msg)
    }
}

fn success(is_put: bool, content: Option<&InfoTable>) -> Response {
    match content {
        Some(t) => json_response(to_rest_json(t)),
        None if is_put => json_response(Value::Object(serde_json::Map::new())),
        None => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response(),
    }
}

fn json_response(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn status_of(code: Code) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        msg.to_owned(),
    )
        .into_response()
}
