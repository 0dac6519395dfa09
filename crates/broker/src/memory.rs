//! In-memory implementations of the hooks, for tests and examples. The
//! platform provides real ones over its store and AlwaysOn sockets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

use crate::hooks::{
    AuthError, Authorizer, CompleteTunnelRequest, EdgeControl, EdgeError, Principal, SessionAudit,
    SessionRecord, StartTunnelRequest, Target, TunnelCommandRequest,
};
use crate::session::lock;

/// Users, app keys, browser cookies and interface targets held in maps.
///
/// Authentication: header `appKey: <key>` (CLI), `Authorization: Basic`
/// (CLI), or `Cookie: session=<user>` (browser, not CLI).
#[derive(Debug, Default)]
pub struct MemoryAuthorizer {
    users: HashMap<String, (String, bool)>,
    app_keys: HashMap<String, String>,
    edge_keys: HashMap<String, String>,
    targets: HashMap<(String, String), Target>,
}

impl MemoryAuthorizer {
    /// Empty: nobody authenticates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a user with a password.
    pub fn user(mut self, name: &str, password: &str, admin: bool) -> Self {
        self.users
            .insert(name.to_owned(), (password.to_owned(), admin));
        self
    }

    /// Add an app key acting as `user`.
    pub fn app_key(mut self, key: &str, user: &str) -> Self {
        self.app_keys.insert(key.to_owned(), user.to_owned());
        self
    }

    /// Let a legacy edge with app key `key` attach tunnels of `thing`.
    pub fn edge_key(mut self, key: &str, thing: &str) -> Self {
        self.edge_keys.insert(key.to_owned(), thing.to_owned());
        self
    }

    /// Declare interface `interface` of `thing` (open to every user).
    pub fn target(mut self, thing: &str, interface: &str, host: &str, port: u16) -> Self {
        self.targets.insert(
            (thing.to_owned(), interface.to_owned()),
            Target {
                host: host.to_owned(),
                port,
                protocol: "tcp".to_owned(),
            },
        );
        self
    }

    fn principal(&self, user: &str, cli: bool) -> Option<Principal> {
        self.users.get(user).map(|(_, admin)| Principal {
            user: user.to_owned(),
            admin: *admin,
            cli,
        })
    }

    fn check(&self, parts: &http::request::Parts) -> Option<Principal> {
        let h = &parts.headers;
        if let Some(key) = h.get("appkey").and_then(|v| v.to_str().ok()) {
            let user = self.app_keys.get(key)?;
            return self.principal(user, true);
        }
        if let Some(auth) = h.get(http::header::AUTHORIZATION) {
            let b64 = auth.to_str().ok()?.strip_prefix("Basic ")?;
            let raw = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
            let (user, pass) = raw.split_once(':')?;
            let (want, _) = self.users.get(user)?;
            return (want == pass).then(|| self.principal(user, true)).flatten();
        }
        let cookie = h.get(http::header::COOKIE)?.to_str().ok()?;
        let user = cookie
            .split(';')
            .find_map(|c| c.trim().strip_prefix("session="))?;
        self.principal(user, false)
    }
}

impl Authorizer for MemoryAuthorizer {
    fn authorize_legacy_edge<'a>(
        &'a self,
        parts: &'a http::request::Parts,
        thing: &'a str,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        let key = parts.headers.get("appkey").and_then(|v| v.to_str().ok());
        let r = match key.and_then(|k| self.edge_keys.get(k)) {
            Some(t) if t == thing => Ok(()),
            Some(_) => Err(AuthError::Forbidden(format!(
                "this app key may not bind {thing}"
            ))),
            None => Err(AuthError::Unauthenticated),
        };
        Box::pin(async move { r })
    }

    fn authenticate<'a>(
        &'a self,
        parts: &'a http::request::Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        let r = self.check(parts).ok_or(AuthError::Unauthenticated);
        Box::pin(async move { r })
    }

    fn authorize_open<'a>(
        &'a self,
        _who: &'a Principal,
        thing: &'a str,
        interface: &'a str,
    ) -> BoxFuture<'a, Result<Target, AuthError>> {
        let r = self
            .targets
            .get(&(thing.to_owned(), interface.to_owned()))
            .cloned()
            .ok_or_else(|| AuthError::NotFound(format!("{thing} has no interface {interface}")));
        Box::pin(async move { r })
    }
}

/// An edge stand-in: each `start_tunnel` is handed to the test through a
/// channel (the test then attaches as the edge), or refused.
#[derive(Debug)]
pub struct MemoryEdge {
    started: mpsc::UnboundedSender<StartTunnelRequest>,
    refuse: Mutex<Option<EdgeError>>,
    completed: Mutex<Vec<CompleteTunnelRequest>>,
    commands: Mutex<Vec<TunnelCommandRequest>>,
}

impl MemoryEdge {
    /// The edge and the receiver of its `StartTunnel` requests.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<StartTunnelRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                started: tx,
                refuse: Mutex::new(None),
                completed: Mutex::new(Vec::new()),
                commands: Mutex::new(Vec::new()),
            },
            rx,
        )
    }

    /// Refuse every later `start_tunnel` with `err` (`None`: accept again).
    pub fn refuse(&self, err: Option<EdgeError>) {
        *lock(&self.refuse) = err;
    }

    /// The `tunnel_command` calls so far (legacy edges).
    pub fn tunnel_commands(&self) -> Vec<TunnelCommandRequest> {
        lock(&self.commands).clone()
    }

    /// The `complete_tunnel` calls so far.
    pub fn completed(&self) -> Vec<CompleteTunnelRequest> {
        lock(&self.completed).clone()
    }
}

impl EdgeControl for MemoryEdge {
    fn start_tunnel(&self, req: StartTunnelRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        let r = match lock(&self.refuse).clone() {
            Some(err) => Err(err),
            None => self
                .started
                .send(req)
                .map_err(|_| EdgeError::NotConnected("the test edge".to_owned())),
        };
        Box::pin(async move { r })
    }

    fn complete_tunnel(&self, req: CompleteTunnelRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        lock(&self.completed).push(req);
        Box::pin(async { Ok(()) })
    }

    fn tunnel_command(&self, req: TunnelCommandRequest) -> BoxFuture<'_, Result<(), EdgeError>> {
        lock(&self.commands).push(req);
        Box::pin(async { Ok(()) })
    }
}

/// Audit records kept in a list.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<SessionRecord>>,
    changed: Notify,
}

impl MemoryAudit {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records so far.
    pub fn records(&self) -> Vec<SessionRecord> {
        lock(&self.records).clone()
    }

    /// Wait up to `limit` for the record of session `id`.
    pub async fn wait_for(&self, id: &str, limit: Duration) -> Option<SessionRecord> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if let Some(r) = lock(&self.records).iter().find(|r| r.id == id) {
                return Some(r.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

impl SessionAudit for MemoryAudit {
    fn session_ended(&self, record: SessionRecord) -> BoxFuture<'_, ()> {
        lock(&self.records).push(record);
        self.changed.notify_waiters();
        Box::pin(async {})
    }
}
