//! Health check and metrics on their own port: `GET /health` answers 200 while at least one
//! upstream link is authenticated and 504 otherwise; `GET /metrics` is the Prometheus text.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::hub::Hub;

/// The health + metrics router.
pub(crate) fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(hub)
}

async fn health(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let up = hub.links_up();
    if up > 0 {
        (
            StatusCode::OK,
            format!("connected: {up} of {} links up\n", hub.links.len()),
        )
    } else {
        (
            StatusCode::GATEWAY_TIMEOUT,
            "not connected to the platform\n".to_owned(),
        )
    }
}

async fn metrics(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        hub.metrics.render(),
    )
}
