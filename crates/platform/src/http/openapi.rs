//! The hand-written OpenAPI 3 document of every route (`openapi.json`
//! beside this file), served at `/api/v1/openapi.json`. A test checks that
//! every path and method in it is routed.

use axum::http::header;
use axum::response::IntoResponse;

/// The document's text.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`
pub(crate) async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
