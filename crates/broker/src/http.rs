//! The broker's HTTP surface: the session API under `/api/v1/sessions` and
//! the two WebSocket attach endpoints under `/remote-access/v1/sessions`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::actor::Command;
use crate::broker::{Broker, CreateSession};
use crate::error::BrokerError;
use crate::session::Side;
use crate::token::MAX_TOKEN_LEN;

/// Largest request body accepted by the session API.
pub const MAX_BODY: usize = 16 * 1024;

/// The WebSocket subprotocol of the native tunnel.
pub const SUBPROTOCOL: &str = "tether-tunnel.v1";

/// The broker's routes, ready to be merged into the platform's router
/// (whatever its state type).
pub fn router<S>(broker: Broker) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/sessions", post(create).get(list))
        .route("/api/v1/sessions/{id}", get(show).delete(end))
        .route("/api/v1/sessions/{id}/client-token", post(trade))
        .route("/api/v1/sessions/{id}/client-info", post(client_info))
        .route("/remote-access/v1/sessions/{id}/server", get(attach_server))
        .route("/remote-access/v1/sessions/{id}/client", get(attach_client))
        .route("/Thingworx/WSTunnelServer/{id}", get(attach_legacy))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(broker)
}

impl Broker {
    /// Shorthand for [`router`].
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router(self.clone())
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, BrokerError> {
    body.map(|Json(t)| t)
        .map_err(|e| BrokerError::BadRequest(e.body_text()))
}

async fn create(
    State(b): State<Broker>,
    parts: http::request::Parts,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<Response, BrokerError> {
    let who = b.hooks().auth.authenticate(&parts).await?;
    let req = json_body(body)?;
    let created = b.create(&who, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list(
    State(b): State<Broker>,
    parts: http::request::Parts,
) -> Result<Response, BrokerError> {
    let who = b.hooks().auth.authenticate(&parts).await?;
    Ok(Json(b.list(&who)).into_response())
}

async fn show(
    State(b): State<Broker>,
    Path(id): Path<String>,
    parts: http::request::Parts,
) -> Result<Response, BrokerError> {
    let who = b.hooks().auth.authenticate(&parts).await?;
    Ok(Json(b.get(&who, &id)?).into_response())
}

async fn end(
    State(b): State<Broker>,
    Path(id): Path<String>,
    parts: http::request::Parts,
) -> Result<Response, BrokerError> {
    let who = b.hooks().auth.authenticate(&parts).await?;
    Ok(Json(b.end(&who, &id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trade {
    nonce: String,
}

async fn trade(
    State(b): State<Broker>,
    Path(id): Path<String>,
    body: Result<Json<Trade>, JsonRejection>,
) -> Result<Response, BrokerError> {
    let t = json_body(body)?;
    Ok(Json(b.trade_nonce(&id, &t.nonce)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientInfo {
    local_address: String,
}

/// The RAC reports its local address, with its client token as bearer.
async fn client_info(
    State(b): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ClientInfo>, JsonRejection>,
) -> Result<Response, BrokerError> {
    let Some(token) = bearer(&headers) else {
        return Err(b.refused());
    };
    let info = json_body(body)?;
    Ok(Json(b.report_client(&id, token, &info.local_address)?).into_response())
}

async fn attach_server(
    State(b): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    attach(b, id, Side::Server, headers, ws)
}

async fn attach_client(
    State(b): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    attach(b, id, Side::Client, headers, ws)
}

/// A legacy ThingWorx edge attaching the server side with its `appKey`.
async fn attach_legacy(
    State(b): State<Broker>,
    Path(id): Path<String>,
    parts: http::request::Parts,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(thing) = b.session_thing(&id) else {
        return b.refused().into_response();
    };
    if let Err(err) = b.hooks().auth.authorize_legacy_edge(&parts, &thing).await {
        return BrokerError::Auth(err).into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let commands = match b.claim_legacy(&id) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    ws.max_message_size(crate::legacy::LEGACY_MAX_MESSAGE)
        .max_frame_size(crate::legacy::LEGACY_MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let ws = Box::new(socket);
            let (side, legacy) = (Side::Server, true);
            let _ = commands.send(Command::Attach { side, ws, legacy }).await;
        })
}

/// The bearer token of a request, if well formed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN)
        .then_some(token)
}

fn offers_subprotocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

/// Check the request, spend the token, upgrade. Every refusal happens
/// before the upgrade (plain HTTP status).
fn attach(
    b: Broker,
    id: String,
    side: Side,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return b.refused().into_response();
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if !offers_subprotocol(&headers) {
        return BrokerError::NoSubprotocol.into_response();
    }
    let commands = match b.claim(&id, side, token) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(session = %id, %side, "attach refused: bad token");
            return e.into_response();
        }
    };
    // The socket takes messages up to the protocol's hard limit so that a
    // frame above the session's `max_payload` gets a clear CLOSE (protocol
    // error) from the relay rather than a bare read error.
    let max = tunnel::HEADER_LEN + tunnel::HARD_MAX_PAYLOAD as usize;
    ws.protocols([SUBPROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let ws = Box::new(socket);
            let legacy = false;
            let _ = commands.send(Command::Attach { side, ws, legacy }).await;
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "bearer  ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn subprotocol_offer() {
        let mut h = HeaderMap::new();
        assert!(!offers_subprotocol(&h));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            "x, tether-tunnel.v1".parse().unwrap(),
        );
        assert!(offers_subprotocol(&h));
    }
}
