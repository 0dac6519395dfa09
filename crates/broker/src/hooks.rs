//! What the broker needs from the platform, as three small traits: who is
//! calling and what they may do ([`Authorizer`]), how to reach the edge
//! ([`EdgeControl`]), and where the audit record goes ([`SessionAudit`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::session::EndReason;
use crate::token::Secret;

/// An authenticated caller of the session API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name (the owner of the sessions it creates; app keys act as the
    /// user they are bound to).
    pub user: String,
    /// Administrators see and end every session.
    pub admin: bool,
    /// Authenticated without a browser cookie (app key or password): such a
    /// caller may ask for the client token directly at creation.
    pub cli: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No or bad credentials (HTTP 401).
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated but not allowed (HTTP 403); the text is shown.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing or interface does not exist (HTTP 404); the text is shown.
    #[error("not found: {0}")]
    NotFound(String),
    /// The platform could not decide (HTTP 500); the text is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where the edge connects for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Host as the edge sees it, usually `127.0.0.1`.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Protocol hint: `tcp` for every interface today.
    pub protocol: String,
}

/// Authentication and authorisation, implemented by the platform.
pub trait Authorizer: Send + Sync + 'static {
    /// Who sent this request (cookie + CSRF for unsafe methods, app key,
    /// basic password, ...). Called for every `/api/v1/sessions` request
    /// except the nonce trade, which the nonce itself authorises.
    fn authenticate<'a>(
        &'a self,
        parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>>;

    /// May `who` open a session to `interface` on `thing`? On success, the
    /// target the edge should connect to.
    fn authorize_open<'a>(
        &'a self,
        who: &'a Principal,
        thing: &'a str,
        interface: &'a str,
    ) -> BoxFuture<'a, Result<Target, AuthError>>;

    /// Legacy ThingWorx edges attach to `/Thingworx/WSTunnelServer/<tid>`
    /// with their `appKey` header instead of a server token: may this
    /// request attach the server side of a tunnel to `thing`? The default
    /// refuses, which disables legacy tunnels.
    fn authorize_legacy_edge<'a>(
        &'a self,
        parts: &'a http::request::Parts,
        thing: &'a str,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        let _ = (parts, thing);
        Box::pin(async {
            Err(AuthError::Forbidden(
                "legacy tunnels are not enabled".to_owned(),
            ))
        })
    }
}

/// What the edge is asked to do when a session is created.
#[derive(Debug, Clone)]
pub struct StartTunnelRequest {
    /// Session id (also the legacy tunnel id).
    pub session_id: String,
    /// The thing that should attach.
    pub thing: String,
    /// Interface name, e.g. `ssh`.
    pub interface: String,
    /// `wss://.../remote-access/v1/sessions/{id}/server`.
    pub server_url: String,
    /// The single-use server token, sent as `Authorization: Bearer`.
    pub server_token: Secret,
    /// Where the edge connects for each stream.
    pub target: Target,
    /// The edge must attach before this.
    pub attach_deadline: Duration,
    /// Idle timeout (legacy `idle_timeout`).
    pub idle_timeout: Duration,
    /// Largest DATA payload (legacy `chunksize`).
    pub max_payload: u32,
    /// Legacy `connection.num_connects`: TCP connections, one at a time.
    pub num_connects: u32,
}

/// Tells the edge a session is over.
#[derive(Debug, Clone)]
pub struct CompleteTunnelRequest {
    /// Session id.
    pub session_id: String,
    /// The thing that was asked to attach.
    pub thing: String,
    /// Why the session ended.
    pub reason: EndReason,
}

/// `TunnelCommandToEdge` commands (legacy edges only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelCommand {
    /// Connect the local TCP socket to the target.
    Connect,
    /// Close the local TCP socket.
    Disconnect,
}

impl TunnelCommand {
    /// The ThingWorx name, `CONNECT` or `DISCONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelCommand::Connect => "CONNECT",
            TunnelCommand::Disconnect => "DISCONNECT",
        }
    }
}

/// A `TunnelCommandToEdge` call.
#[derive(Debug, Clone)]
pub struct TunnelCommandRequest {
    /// Session id (the legacy `tid`).
    pub session_id: String,
    /// The thing.
    pub thing: String,
    /// What to do.
    pub command: TunnelCommand,
}

/// `TunnelCommandFromEdge` commands, reported by the platform with
/// [`crate::Broker::edge_command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeCommand {
    /// `CANCEL`: the edge gave up the tunnel (ends the session).
    Cancel,
    /// `DISCONNECT`: the edge's local socket closed (ends the stream).
    Disconnect,
}

/// An edge call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The thing is not connected to this platform (HTTP 409).
    #[error("{0} is not connected")]
    NotConnected(String),
    /// The edge refused (allow-list, unknown interface...) (HTTP 502).
    #[error("the edge refused: {0}")]
    Refused(String),
    /// The edge did not answer in time (HTTP 504).
    #[error("the edge did not answer in time")]
    Timeout,
    /// Anything else (HTTP 502).
    #[error("edge call failed: {0}")]
    Failed(String),
}

/// How the broker reaches the edge, implemented by the platform over the
/// edge's AlwaysOn socket.
pub trait EdgeControl: Send + Sync + 'static {
    /// Invoke `StartTunnel` on the thing. Returns once the edge accepted.
    fn start_tunnel(&self, req: StartTunnelRequest) -> BoxFuture<'_, Result<(), EdgeError>>;

    /// Invoke `CompleteTunnel` on the thing. Best effort: the broker logs a
    /// failure and carries on.
    fn complete_tunnel(&self, req: CompleteTunnelRequest) -> BoxFuture<'_, Result<(), EdgeError>>;

    /// Legacy edges only: invoke `TunnelCommandToEdge {tid, command}`. The
    /// default fails, as the native protocol never needs it.
    fn tunnel_command(&self, req: TunnelCommandRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        let _ = req;
        Box::pin(async {
            Err(EdgeError::Failed(
                "legacy tunnels are not supported".to_owned(),
            ))
        })
    }
}

/// The audit row of one ended session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionRecord {
    /// Session id.
    pub id: String,
    /// The user who created it.
    pub user: String,
    /// The thing.
    pub thing: String,
    /// The interface.
    pub interface: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When both sides were attached (never, if it did not get there).
    pub started: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended: DateTime<Utc>,
    /// DATA payload bytes from the client side to the server side.
    pub bytes_client_to_server: u64,
    /// DATA payload bytes from the server side to the client side.
    pub bytes_server_to_client: u64,
    /// Streams opened.
    pub streams: u64,
    /// Machine-readable end reason, e.g. `idle_timeout`.
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// The local address the RAC listened on (`127.0.0.1:P`), if it
    /// reported one before the end. Absent in rows written before this
    /// field existed, which read as `None`.
    #[serde(default)]
    pub client_address: Option<String>,
}

/// Where ended sessions are recorded, implemented by the platform's store.
pub trait SessionAudit: Send + Sync + 'static {
    /// Write the record. Called exactly once per session.
    fn session_ended(&self, record: SessionRecord) -> BoxFuture<'_, ()>;
}

/// The platform's implementations, handed to [`crate::Broker::new`].
#[derive(Clone)]
pub struct Hooks {
    /// Authentication and authorisation.
    pub auth: Arc<dyn Authorizer>,
    /// Edge calls.
    pub edge: Arc<dyn EdgeControl>,
    /// Audit sink.
    pub audit: Arc<dyn SessionAudit>,
}

#[cfg(test)]
mod tests {
    use super::SessionRecord;

    /// Audit rows written before `client_address` existed still parse; a
    /// new row carries it through a round trip.
    #[test]
    fn session_record_reads_rows_without_client_address() {
        let old = r#"{"id":"s1","user":"alice","thing":"pump","interface":"ssh",
            "created":"2026-11-21T10:00:00Z","started":null,
            "ended":"2026-11-21T10:01:00Z","bytes_client_to_server":0,
            "bytes_server_to_client":0,"streams":0,"reason":"attach_timeout",
            "detail":"no client"}"#;
        let rec: SessionRecord = serde_json::from_str(old).unwrap();
        assert_eq!(rec.id, "s1");
        assert_eq!(rec.client_address, None);
        let new = SessionRecord {
            client_address: Some("127.0.0.1:2222".to_owned()),
            ..rec
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#""client_address":"127.0.0.1:2222""#),
            "{text}"
        );
        let back: SessionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, new);
    }
}
