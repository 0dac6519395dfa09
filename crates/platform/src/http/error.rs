//! `AppError`: every HTTP handler's error. The response is
//! `{"error": "<message>"}` with the matching status; internal causes are
//! logged inside the request span and shown as a generic message.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::edge::EdgeError;
use crate::state::AuthError;
use crate::store::StoreError;

/// An HTTP handler error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    GatewayTimeout(String),
    /// An edge answered with an error code; `status` is its HTTP equivalent.
    #[error("{message}")]
    Edge { status: u16, message: String },
    /// Logged; the client sees "internal error".
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::Edge { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "internal error".to_owned()
            }
            other => {
                if status.is_server_error() {
                    tracing::warn!(%status, error = %other, "request failed");
                } else {
                    tracing::debug!(%status, error = %other, "request refused");
                }
                other.to_string()
            }
        };
        let mut resp = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"tether\""),
            );
        }
        resp
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => AppError::Conflict(format!("{what} already exists")),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<EdgeError> for AppError {
    fn from(e: EdgeError) -> Self {
        match e {
            EdgeError::NotConnected(_) | EdgeError::Busy(_) => AppError::Unavailable(e.to_string()),
            EdgeError::Timeout(_) => AppError::GatewayTimeout(e.to_string()),
            EdgeError::Disconnected | EdgeError::BadAnswer(_) => {
                AppError::BadGateway(e.to_string())
            }
            EdgeError::Encode(_) => AppError::BadRequest(e.to_string()),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::RateLimited => AppError::TooManyRequests(e.to_string()),
            AuthError::Internal(cause) => AppError::Internal(cause),
            other => AppError::Unauthorized(other.to_string()),
        }
    }
}

impl From<crate::admin::AdminError> for AppError {
    fn from(e: crate::admin::AdminError) -> Self {
        match e {
            crate::admin::AdminError::Store(s) => s.into(),
            crate::admin::AdminError::Invalid(m) => AppError::BadRequest(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}
