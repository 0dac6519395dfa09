//! Remote access wired into the platform: the broker's hooks over the
//! platform's users, app keys, things and AlwaysOn sockets, and the routes
//! (`broker::router`, `web::router`) merged into the platform's router.
//!
//! - [`PlatformAuth`]: `appKey` header, HTTP basic or the session cookie
//!   (CSRF on unsafe methods), exactly as the rest of the API; operators and
//!   administrators may open sessions, viewers may not. Targets come from
//!   the thing's remote interfaces.
//! - [`PlatformEdge`]: `StartTunnel` / `CompleteTunnel` /
//!   `TunnelCommandToEdge` as AlwaysOn service calls to the bound edge
//!   (spec/alwayson.md §8.1 parameters plus the native `server_url` and
//!   `server_token`).
//! - [`PlatformAudit`]: one `session.ended` line in the audit log per session.

use std::net::SocketAddr;
use std::sync::Arc;

use alwayson::{Characteristic, Code, InfoTable, Primitive};
use axum::Router;
use axum::extract::FromRequestParts;
use broker::{
    AuthError, Authorizer, Broker, BrokerConfig, CompleteTunnelRequest, EdgeControl, EdgeError,
    Hooks, Principal, SessionAudit, SessionRecord, StartTunnelRequest, Target,
    TunnelCommandRequest,
};
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::edge::EdgeError as PlatformEdgeError;
use crate::http::AppError;
use crate::http::auth::Caller;
use crate::model::Role;
use crate::state::Platform;

/// `chunksize` sent to edges: the size every ThingWorx edge accepts.
pub const LEGACY_CHUNKSIZE: i32 = 8192;
/// `read_timeout` (ms) sent to edges (the ThingWorx default).
pub const LEGACY_READ_TIMEOUT_MS: i32 = 10;
/// `peer_name` in `CompleteTunnel`.
pub const PEER_NAME: &str = "tether-platform";

/// Build the broker over `platform` with its public URL, store it in the
/// platform (for `/metrics` and shutdown) and return it.
pub fn start_broker(
    platform: &Platform,
    public_url: url::Url,
    shutdown: CancellationToken,
) -> Result<Broker, broker::ConfigError> {
    let hooks = Hooks {
        auth: Arc::new(PlatformAuth {
            platform: platform.clone(),
        }),
        edge: Arc::new(PlatformEdge {
            platform: platform.clone(),
        }),
        audit: Arc::new(PlatformAudit {
            platform: platform.clone(),
        }),
    };
    let mut config = BrokerConfig::new(public_url);
    config.legacy_num_connects = platform.config().remote_access.legacy_num_connects;
    let broker = Broker::new(config, hooks, shutdown)?;
    // Set once per platform; a second serve keeps the first broker's metrics.
    let _ = platform.shared.broker.set(broker.clone());
    Ok(broker)
}

/// The public base URL when the configuration gives none: `https://<addr>`
/// with an unspecified address replaced by loopback.
pub fn default_public_url(addr: SocketAddr) -> Result<url::Url, url::ParseError> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    url::Url::parse(&format!("https://{addr}"))
}

/// The platform's whole router: its own routes (AlwaysOn, REST,
/// management API), the broker's and the web console's, with
/// [`web::no_basic_challenge`] around all of them, so that a 401 to one of
/// the page's own calls (a wrong password at log-in, an expired session)
/// reaches the page's script instead of opening the browser's password
/// dialog. (Layered on [`routes`] alone it misses `/api/v1/login`.)
pub fn app(platform: &Platform, broker: &Broker) -> Router {
    crate::http::router(platform.clone())
        .merge(routes(broker))
        .layer(axum::middleware::from_fn(web::no_basic_challenge))
}

/// The broker's routes and the web console, ready to merge.
pub fn routes(broker: &Broker) -> Router {
    broker
        .router()
        .merge(web::router())
        .layer(axum::middleware::from_fn(web::no_basic_challenge))
}

impl Platform {
    /// The broker's metrics text, empty before the broker started.
    pub fn remote_access_metrics(&self) -> String {
        self.shared
            .broker
            .get()
            .map(Broker::metrics_text)
            .unwrap_or_default()
    }

    /// The remote-access broker, once the server started it.
    pub fn broker(&self) -> Option<&Broker> {
        self.shared.broker.get()
    }
}

/// Authentication and authorisation over the platform's users and keys.
pub struct PlatformAuth {
    platform: Platform,
}

fn auth_error(e: AppError) -> AuthError {
    match e {
        AppError::Unauthorized(_) => AuthError::Unauthenticated,
        AppError::Forbidden(m) | AppError::TooManyRequests(m) => AuthError::Forbidden(m),
        AppError::NotFound(m) => AuthError::NotFound(m),
        other => AuthError::Internal(other.to_string()),
    }
}

impl Authorizer for PlatformAuth {
    fn authenticate<'a>(
        &'a self,
        parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            let mut parts = parts.clone();
            let cli = parts.headers.contains_key("appKey")
                || parts.headers.contains_key(http::header::AUTHORIZATION);
            let Caller(p) = Caller::from_request_parts(&mut parts, &self.platform)
                .await
                .map_err(auth_error)?;
            Ok(Principal {
                user: p.user,
                admin: p.role == Role::Administrator,
                cli,
            })
        })
    }

    fn authorize_open<'a>(
        &'a self,
        who: &'a Principal,
        thing: &'a str,
        interface: &'a str,
    ) -> BoxFuture<'a, Result<Target, AuthError>> {
        Box::pin(async move {
            let store = self.platform.store();
            let role = store
                .user_with_hash(&who.user)
                .await
                .map_err(|e| AuthError::Internal(e.to_string()))?
                .map(|(u, _)| u.role)
                .ok_or(AuthError::Unauthenticated)?;
            if !role.may_operate() {
                return Err(AuthError::Forbidden(format!(
                    "role {role} may not open remote-access sessions"
                )));
            }
            if store
                .thing(thing)
                .await
                .map_err(|e| AuthError::Internal(e.to_string()))?
                .is_none()
            {
                return Err(AuthError::NotFound(format!("no thing named {thing:?}")));
            }
            let iface = store
                .interfaces(thing)
                .await
                .map_err(|e| AuthError::Internal(e.to_string()))?
                .into_iter()
                .find(|i| i.name == interface)
                .ok_or_else(|| {
                    AuthError::NotFound(format!("{thing} has no interface {interface:?}"))
                })?;
            Ok(Target {
                host: iface.host,
                port: iface.port,
                protocol: iface.protocol.to_string(),
            })
        })
    }

    fn authorize_legacy_edge<'a>(
        &'a self,
        parts: &'a http::request::Parts,
        thing: &'a str,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            let key = parts
                .headers
                .get("appKey")
                .and_then(|v| v.to_str().ok())
                .ok_or(AuthError::Unauthenticated)?;
            let peer = crate::http::auth::peer_of(parts);
            let p = self
                .platform
                .authenticate_app_key(key, peer)
                .await
                .map_err(|_| AuthError::Unauthenticated)?;
            if p.role == Role::ConnectionServer {
                return Err(AuthError::Forbidden(
                    crate::http::auth::LINK_ONLY.to_owned(),
                ));
            }
            if p.may_bind(thing) {
                Ok(())
            } else {
                Err(AuthError::Forbidden(format!(
                    "this app key may not attach tunnels of {thing}"
                )))
            }
        })
    }
}

/// Edge calls over the thing's AlwaysOn binding.
pub struct PlatformEdge {
    platform: Platform,
}

fn ms(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The `StartTunnel` parameters (one row). Holds the server token: never log it.
pub fn start_tunnel_params(req: &StartTunnelRequest) -> InfoTable {
    let connection = serde_json::json!({
        "host": req.target.host,
        "port": req.target.port,
        "num_connects": req.num_connects,
    });
    InfoTable::single_row([
        ("tid", Primitive::String(req.session_id.clone())),
        ("type", Primitive::String("tcp".to_owned())),
        (
            "chunksize",
            Primitive::Integer(
                LEGACY_CHUNKSIZE.min(i32::try_from(req.max_payload).unwrap_or(i32::MAX)),
            ),
        ),
        ("idle_timeout", Primitive::Integer(ms(req.idle_timeout))),
        ("read_timeout", Primitive::Integer(LEGACY_READ_TIMEOUT_MS)),
        ("connection", Primitive::String(connection.to_string())),
        ("interface", Primitive::String(req.interface.clone())),
        ("protocol", Primitive::String(req.target.protocol.clone())),
        ("server_url", Primitive::String(req.server_url.clone())),
        (
            "server_token",
            Primitive::String(req.server_token.expose().to_owned()),
        ),
        (
            "attach_deadline",
            Primitive::Integer(ms(req.attach_deadline)),
        ),
        (
            "max_payload",
            Primitive::Integer(i32::try_from(req.max_payload).unwrap_or(i32::MAX)),
        ),
    ])
}

impl PlatformEdge {
    async fn call(&self, thing: &str, service: &str, params: InfoTable) -> Result<(), EdgeError> {
        let answer = self
            .platform
            .request(
                thing,
                Code::POST,
                Characteristic::SERVICES,
                service,
                Some(params),
            )
            .await
            .map_err(|e| match e {
                PlatformEdgeError::NotConnected(t) => EdgeError::NotConnected(t),
                PlatformEdgeError::Timeout(_) => EdgeError::Timeout,
                other => EdgeError::Failed(other.to_string()),
            })?;
        if answer.code.is_success() {
            return Ok(());
        }
        let text = answer
            .body
            .content
            .as_ref()
            .map(|t| t.to_json().to_string())
            .unwrap_or_default();
        let message = extract_message(&text).unwrap_or(text);
        Err(EdgeError::Refused(format!(
            "{service}: {} {message}",
            answer.code
        )))
    }
}

/// The first string value of an error InfoTable's JSON, if any.
fn extract_message(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let row = v.get("rows")?.get(0)?.as_object()?;
    row.values().find_map(|v| v.as_str().map(str::to_owned))
}

impl EdgeControl for PlatformEdge {
    fn start_tunnel(&self, req: StartTunnelRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move {
            let params = start_tunnel_params(&req);
            tracing::info!(session = %req.session_id, thing = %req.thing, interface = %req.interface, "StartTunnel");
            self.call(&req.thing, "StartTunnel", params).await
        })
    }

    fn complete_tunnel(&self, req: CompleteTunnelRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move {
            let connection = serde_json::json!({ "reason": req.reason.as_str() });
            let params = InfoTable::single_row([
                ("tid", Primitive::String(req.session_id.clone())),
                ("peer_name", Primitive::String(PEER_NAME.to_owned())),
                ("connection", Primitive::String(connection.to_string())),
            ]);
            self.call(&req.thing, "CompleteTunnel", params).await
        })
    }

    fn tunnel_command(&self, req: TunnelCommandRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move {
            let params = InfoTable::single_row([
                ("tid", Primitive::String(req.session_id.clone())),
                (
                    "command",
                    Primitive::String(req.command.as_str().to_owned()),
                ),
            ]);
            self.call(&req.thing, "TunnelCommandToEdge", params).await
        })
    }
}

/// Ended sessions into the platform's audit log.
pub struct PlatformAudit {
    platform: Platform,
}

impl SessionAudit for PlatformAudit {
    fn session_ended(&self, record: SessionRecord) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let subject = format!("{}/{}", record.thing, record.interface);
            let detail = serde_json::to_string(&record).unwrap_or_default();
            self.platform
                .audit("session.ended", &record.user, &subject, &detail, "")
                .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_from_table() {
        let j = r#"{"rows":[{"message":"target not allowed"}],"dataShape":{}}"#;
        assert_eq!(extract_message(j).as_deref(), Some("target not allowed"));
        assert_eq!(extract_message("nope"), None);
    }

    #[test]
    fn public_url_replaces_unspecified() {
        let u = default_public_url("0.0.0.0:8443".parse().unwrap()).unwrap();
        assert_eq!(u.as_str(), "https://127.0.0.1:8443/");
    }
}
