//! `Caller`: the authenticated principal of an HTTP request, from an
//! `appKey` header, HTTP basic auth, or the session cookie (with the CSRF
//! header on anything but GET/HEAD). A `connection-server` principal is
//! refused here with 403: its credentials are only for AlwaysOn links.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine as _;

use super::AppError;
use super::session::{COOKIE, CSRF_HEADER};
use crate::model::Role;
use crate::secret::constant_time_eq;
use crate::state::{Platform, Principal};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the caller may write and call services.
    pub fn require_operator(&self) -> Result<(), AppError> {
        if self.0.role.may_operate() {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "role {} may not do this",
                self.0.role
            )))
        }
    }

    /// Fails with 403 unless the caller is an administrator.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.0.role == Role::Administrator {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "role {} may not do this; administrators only",
                self.0.role
            )))
        }
    }
}

/// The message of the 403 given to a `connection-server` principal on any HTTP API.
pub const LINK_ONLY: &str = "role connection-server may only open AlwaysOn links \
     (/Thingworx/WS); it may not use the REST API, the management API or sessions";

/// Refuses `connection-server` principals (403, [`LINK_ONLY`]).
fn not_a_link(p: Principal) -> Result<Caller, AppError> {
    if p.role == Role::ConnectionServer {
        Err(AppError::Forbidden(LINK_ONLY.into()))
    } else {
        Ok(Caller(p))
    }
}

/// The peer address of a request (unspecified when served without one).
pub(crate) fn peer_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| Platform::peer_ip(c.0))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The value of cookie `name`, if sent.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Platform> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        platform: &Platform,
    ) -> Result<Self, Self::Rejection> {
        let peer = peer_of(parts);
        if let Some(key) = parts.headers.get("appKey") {
            let key = key
                .to_str()
                .map_err(|_| AppError::Unauthorized("invalid app key".into()))?;
            return not_a_link(platform.authenticate_app_key(key, peer).await?);
        }
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let text = auth.to_str().unwrap_or_default();
            let Some(encoded) = text
                .strip_prefix("Basic ")
                .or_else(|| text.strip_prefix("basic "))
            else {
                return Err(AppError::Unauthorized(
                    "only Basic authorization is supported".into(),
                ));
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| AppError::Unauthorized("malformed Basic authorization".into()))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| AppError::Unauthorized("malformed Basic authorization".into()))?;
            return not_a_link(platform.authenticate_password(user, password, peer).await?);
        }
        if let Some(token) = cookie(parts, COOKIE) {
            let session =
                platform.shared.sessions.get(token).await?.ok_or_else(|| {
                    AppError::Unauthorized("session expired; log in again".into())
                })?;
            if !matches!(parts.method, Method::GET | Method::HEAD) {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !constant_time_eq(sent, &session.csrf) {
                    return Err(AppError::Forbidden("missing or wrong CSRF token".into()));
                }
            }
            return not_a_link(Principal {
                user: session.user,
                role: session.role,
                app_key: None,
            });
        }
        Err(AppError::Unauthorized(
            "authentication required: appKey header, HTTP basic or session cookie".into(),
        ))
    }
}
