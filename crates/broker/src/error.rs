//! The broker's error type and its HTTP mapping (one `IntoResponse` that
//! logs the cause and shows a clear message).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::hooks::{AuthError, EdgeError};

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// Authentication or authorisation failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The edge could not be asked or refused.
    #[error(transparent)]
    Edge(EdgeError),
    /// A bad, reused or expired token or nonce (never says which).
    #[error("invalid, used or expired token")]
    BadToken,
    /// No such session (or not visible to the caller).
    #[error("no such session")]
    NotFound,
    /// The user has too many sessions.
    #[error("too many open sessions for this user (limit {0})")]
    TooManySessionsForUser(usize),
    /// The broker has too many sessions.
    #[error("too many open sessions on this platform")]
    TooManySessions,
    /// A browser-cookie caller asked for the client token.
    #[error("the client token is given to app-key or password callers only; use the launch URL")]
    ClientTokenRefused,
    /// Malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The WebSocket request lacks the tunnel subprotocol.
    #[error("offer Sec-WebSocket-Protocol: tether-tunnel.v1")]
    NoSubprotocol,
    /// The broker is shutting down.
    #[error("the platform is shutting down")]
    ShuttingDown,
}

impl BrokerError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            BrokerError::Auth(AuthError::Unauthenticated) | BrokerError::BadToken => {
                StatusCode::UNAUTHORIZED
            }
            BrokerError::Auth(AuthError::Forbidden(_)) | BrokerError::ClientTokenRefused => {
                StatusCode::FORBIDDEN
            }
            BrokerError::Auth(AuthError::NotFound(_)) | BrokerError::NotFound => {
                StatusCode::NOT_FOUND
            }
            BrokerError::Auth(_) => StatusCode::INTERNAL_SERVER_ERROR,
            BrokerError::Edge(EdgeError::NotConnected(_)) => StatusCode::CONFLICT,
            BrokerError::Edge(EdgeError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            BrokerError::Edge(_) => StatusCode::BAD_GATEWAY,
            BrokerError::TooManySessionsForUser(_) | BrokerError::TooManySessions => {
                StatusCode::TOO_MANY_REQUESTS
            }
            BrokerError::BadRequest(_) | BrokerError::NoSubprotocol => StatusCode::BAD_REQUEST,
            BrokerError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // Internal details are logged, not shown.
            BrokerError::Auth(AuthError::Internal(_)) => "internal error".to_owned(),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::warn!(err = %self, %status, "session request failed");
        } else {
            tracing::debug!(err = %self, %status, "session request refused");
        }
        let mut resp = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
