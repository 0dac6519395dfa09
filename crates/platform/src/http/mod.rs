//! The HTTP side: one router holding the AlwaysOn upgrade, the
//! ThingWorx-compatible REST API (`rest`), the JSON management API (`api`),
//! authentication (`auth`, `session`), the OpenAPI document (`openapi`),
//! `/healthz` and `/metrics`. Every handler error is one `AppError`.

mod api;
pub(crate) mod auth;
mod error;
pub mod openapi;
mod rest;
pub(crate) mod session;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use error::AppError;

use crate::state::Platform;

/// Header set on answers for which no route exists (used by the OpenAPI route test).
pub const NO_ROUTE_HEADER: &str = "x-tether-no-route";

/// The platform's router.
pub fn router(platform: Platform) -> Router {
    let max_body = platform.shared.config.http.max_body_size;
    Router::new()
        .route("/Thingworx/WS", get(crate::edge::ws_handler))
        .route(
            "/Thingworx/Things/{name}/Properties",
            get(rest::get_properties).put(rest::put_properties),
        )
        .route(
            "/Thingworx/Things/{name}/Properties/{prop}",
            get(rest::get_property).put(rest::put_property),
        )
        .route(
            "/Thingworx/Things/{name}/Services/{service}",
            post(rest::call_service),
        )
        .route(
            "/Thingworx/Things/{name}/Events/{event}",
            post(rest::fire_event),
        )
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/login", post(api::login))
        .route("/api/v1/logout", post(api::logout))
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/users", get(api::list_users).post(api::create_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::patch(api::update_user).delete(api::delete_user),
        )
        .route(
            "/api/v1/appkeys",
            get(api::list_app_keys).post(api::create_app_key),
        )
        .route(
            "/api/v1/appkeys/{name}",
            axum::routing::patch(api::update_app_key).delete(api::delete_app_key),
        )
        .route("/api/v1/appkeys/{name}/revoke", post(api::revoke_app_key))
        .route(
            "/api/v1/things",
            get(api::list_things).post(api::create_thing),
        )
        .route(
            "/api/v1/things/{name}",
            get(api::get_thing).delete(api::delete_thing),
        )
        .route(
            "/api/v1/things/{name}/interfaces",
            get(api::list_interfaces).post(api::put_interface),
        )
        .route(
            "/api/v1/things/{name}/interfaces/{iface}",
            axum::routing::delete(api::delete_interface),
        )
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/sessions/history", get(api::session_history))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            platform.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(platform)
}

async fn count_requests(
    State(platform): State<Platform>,
    req: Request<Body>,
    next: Next,
) -> Response {
    platform.shared.metrics.http_requests.inc();
    next.run(req).await
}

async fn no_route() -> Response {
    let mut r = AppError::NotFound("no such route".into()).into_response();
    r.headers_mut()
        .insert(NO_ROUTE_HEADER, HeaderValue::from_static("1"));
    r
}

async fn method_not_allowed() -> Response {
    let mut r = (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({"error": "method not allowed"})),
    )
        .into_response();
    r.headers_mut()
        .insert(NO_ROUTE_HEADER, HeaderValue::from_static("1"));
    r
}

async fn healthz(State(platform): State<Platform>) -> Response {
    match platform.shared.store.list_users().await {
        Ok(_) => axum::Json(serde_json::json!({
            "status": "ok",
            "edgeConnections": platform.shared.registry.connection_count(),
            "boundThings": platform.shared.registry.bound_count(),
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(%e, "health check: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "store unavailable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(platform): State<Platform>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        platform.shared.metrics.render() + &platform.remote_access_metrics(),
    )
        .into_response()
}

/// Parses a JSON body into `T`, answering 400 with a clear message.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}
