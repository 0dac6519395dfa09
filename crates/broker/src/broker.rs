//! The broker handle: the registry of live sessions (a map behind a short
//! lock, never held across `.await`), tokens and nonces, session creation
//! and the operations the HTTP API exposes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actor::{Actor, COMMAND_QUEUE, Command};
use crate::config::{BrokerConfig, ConfigError};
use crate::error::BrokerError;
use crate::hooks::{EdgeError, Hooks, Principal, StartTunnelRequest};
use crate::metrics::Metrics;
use crate::relay;
use crate::session::{EndReason, SessionInfo, SessionView, Shared, Side, State, lock};
use crate::token::{self, Secret, TokenHash};

/// Longest thing or interface name accepted.
pub const MAX_NAME_LEN: usize = 256;

/// What `POST /api/v1/sessions` asks for.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// The thing to reach.
    pub thing: String,
    /// Its interface, e.g. `ssh`.
    pub interface: String,
    /// Return the client token directly (CLI callers only); otherwise the
    /// response carries a launch URL with a single-use nonce.
    #[serde(default)]
    pub client_token: bool,
}

/// The answer to a successful creation.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// Session id.
    pub id: String,
    /// `tether://open?platform=...&session=...&nonce=...`; absent when the
    /// client token was returned directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_url: Option<String>,
    /// The client side token, when asked for by a CLI caller.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_secret")]
    pub client_token: Option<Secret>,
    /// The client endpoint (WebSocket URL).
    pub client_url: String,
    /// The attach deadline.
    pub expires: chrono::DateTime<Utc>,
}

/// The answer to a nonce trade.
#[derive(Debug, Clone, Serialize)]
pub struct ClientToken {
    /// The single-use client token.
    #[serde(serialize_with = "ser_secret_one")]
    pub client_token: Secret,
    /// The client endpoint (WebSocket URL).
    pub client_url: String,
    /// The attach deadline.
    pub expires: chrono::DateTime<Utc>,
    /// The thing the session reaches (for the RAC's labels).
    pub thing: String,
    /// Its interface, e.g. `ssh`.
    pub interface: String,
}

/// Longest local address a RAC may report (`[v6]:port` fits easily).
pub const MAX_CLIENT_ADDRESS_LEN: usize = 64;

/// Check a RAC's reported local address: a loopback socket address of at
/// most [`MAX_CLIENT_ADDRESS_LEN`] characters, port not 0. Returns it in
/// canonical form.
pub fn valid_client_address(text: &str) -> Result<String, BrokerError> {
    let bad = |why: &str| BrokerError::BadRequest(format!("local_address {why}"));
    if text.is_empty() || text.len() > MAX_CLIENT_ADDRESS_LEN {
        return Err(bad(&format!(
            "must be 1 to {MAX_CLIENT_ADDRESS_LEN} characters"
        )));
    }
    let addr: std::net::SocketAddr = text
        .parse()
        .map_err(|_| bad("must be an address and port, e.g. 127.0.0.1:2222"))?;
    if !addr.ip().is_loopback() {
        return Err(bad("must be a loopback address (127.0.0.0/8 or [::1])"));
    }
    if addr.port() == 0 {
        return Err(bad("needs a port other than 0"));
    }
    Ok(addr.to_string())
}

fn ser_secret<S: serde::Serializer>(s: &Option<Secret>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_str(s.expose()),
        None => ser.serialize_none(),
    }
}

fn ser_secret_one<S: serde::Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose())
}

/// A live session in the registry.
struct Entry {
    info: Arc<SessionInfo>,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    /// Hashes of the side tokens, `None` once used (or not issued yet).
    tokens: [Option<TokenHash>; 2],
    nonce: Option<(TokenHash, Instant)>,
    /// The client token's hash once it was spent on the attach: it then
    /// authenticates the RAC's reports (`client-info`) and nothing else.
    client_report: Option<TokenHash>,
}

pub(crate) struct Inner {
    pub config: BrokerConfig,
    pub hooks: Hooks,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    sessions: Mutex<HashMap<String, Entry>>,
}

impl Inner {
    pub(crate) fn remove(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }
}

/// The remote-access session broker. Cheap to clone; every clone is the
/// same broker.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl Broker {
    /// A broker with the platform's hooks. Every session ends (reason
    /// `shutdown`) when `shutdown` is cancelled; wait for
    /// [`Broker::tracker`] afterwards.
    pub fn new(
        config: BrokerConfig,
        hooks: Hooks,
        shutdown: CancellationToken,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                hooks,
                metrics: Arc::new(Metrics::default()),
                shutdown,
                tracker: TaskTracker::new(),
                sessions: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// Every task the broker spawned (session actors and relays). After
    /// cancelling the shutdown token: `tracker.close(); tracker.wait()`.
    pub fn tracker(&self) -> TaskTracker {
        self.inner.tracker.clone()
    }

    /// The broker's metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut counts = [(State::Pending, 0u64), (State::Half, 0), (State::Active, 0)];
        for e in lock(&self.inner.sessions).values() {
            let state = lock(&e.shared.status).state;
            if let Some(c) = counts.iter_mut().find(|(s, _)| *s == state) {
                c.1 += 1;
            }
        }
        self.inner.metrics.render(&counts)
    }

    /// Create a session: authorise, register, ask the edge to attach.
    pub async fn create(
        &self,
        who: &Principal,
        req: CreateSession,
    ) -> Result<Created, BrokerError> {
        for (what, v) in [("thing", &req.thing), ("interface", &req.interface)] {
            if v.is_empty() || v.len() > MAX_NAME_LEN || v.chars().any(char::is_control) {
                return Err(BrokerError::BadRequest(format!(
                    "{what} must be 1 to {MAX_NAME_LEN} printable characters"
                )));
            }
        }
        if req.client_token && !who.cli {
            return Err(BrokerError::ClientTokenRefused);
        }
        let target = self
            .inner
            .hooks
            .auth
            .authorize_open(who, &req.thing, &req.interface)
            .await?;
        if self.inner.shutdown.is_cancelled() {
            return Err(BrokerError::ShuttingDown);
        }
        let cfg = &self.inner.config;
        let id = uuid::Uuid::new_v4().to_string();
        let now = Instant::now();
        let created = Utc::now();
        let expires = created
            + chrono::Duration::from_std(cfg.attach_deadline)
                .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let server_token = token::generate();
        let client_token = req.client_token.then(token::generate);
        let nonce = (!req.client_token).then(token::generate);
        let info = Arc::new(SessionInfo {
            id: id.clone(),
            user: who.user.clone(),
            thing: req.thing.clone(),
            interface: req.interface.clone(),
            created,
            expires,
            created_at: now,
        });
        let shared = Arc::new(Shared::new(cfg.initial_window, cfg.max_streams_per_session));
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (client_q, client_rx) = relay::queues(cfg.queue_messages);
        let (server_q, server_rx) = relay::queues(cfg.queue_messages);
        {
            let mut sessions = lock(&self.inner.sessions);
            if sessions.len() >= cfg.max_sessions {
                return Err(BrokerError::TooManySessions);
            }
            let mine = sessions
                .values()
                .filter(|e| e.info.user == who.user)
                .count();
            if mine >= cfg.max_sessions_per_user {
                return Err(BrokerError::TooManySessionsForUser(
                    cfg.max_sessions_per_user,
                ));
            }
            sessions.insert(
                id.clone(),
                Entry {
                    info: info.clone(),
                    shared: shared.clone(),
                    commands: cmd_tx.clone(),
                    tokens: [
                        client_token.as_ref().map(TokenHash::of),
                        Some(TokenHash::of(&server_token)),
                    ],
                    nonce: nonce
                        .as_ref()
                        .map(|n| (TokenHash::of(n), now + cfg.nonce_ttl)),
                    client_report: None,
                },
            );
        }
        self.inner
            .metrics
            .sessions_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let actor = Actor {
            inner: self.inner.clone(),
            info: info.clone(),
            shared,
            commands: cmd_rx,
            queues: [client_q, server_q],
            rx: [Some(client_rx), Some(server_rx)],
        };
        let span = tracing::info_span!("session", id = %id, user = %who.user, thing = %req.thing, interface = %req.interface);
        self.inner
            .tracker
            .spawn(tracing::Instrument::instrument(actor.run(), span));
        tracing::info!(id = %id, user = %who.user, thing = %req.thing, interface = %req.interface, "session created");

        let start = StartTunnelRequest {
            session_id: id.clone(),
            thing: req.thing.clone(),
            interface: req.interface.clone(),
            server_url: cfg.endpoint_url(&id, Side::Server),
            server_token,
            target,
            attach_deadline: cfg.attach_deadline,
            idle_timeout: cfg.idle_timeout,
            max_payload: cfg.max_payload,
            num_connects: cfg.legacy_num_connects,
        };
        let outcome = match timeout(
            cfg.edge_call_timeout,
            self.inner.hooks.edge.start_tunnel(start),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(EdgeError::Timeout),
        };
        if let Err(err) = outcome {
            let (done_tx, done_rx) = oneshot::channel();
            let end = Command::End {
                reason: EndReason::EdgeRefused(err.to_string()),
                done: Some(done_tx),
            };
            if cmd_tx.send(end).await.is_ok() {
                let _ = timeout(cfg.edge_call_timeout, done_rx).await;
            }
            return Err(BrokerError::Edge(err));
        }
        Ok(Created {
            launch_url: nonce.as_ref().map(|n| cfg.launch_url(&id, n.expose())),
            client_token,
            client_url: cfg.endpoint_url(&id, Side::Client),
            expires,
            id,
        })
    }

    /// The sessions `who` may see: their own, or all for an administrator.
    pub fn list(&self, who: &Principal) -> Vec<SessionView> {
        let mut v: Vec<SessionView> = lock(&self.inner.sessions)
            .values()
            .filter(|e| who.admin || e.info.user == who.user)
            .map(|e| e.shared.view(&e.info))
            .collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        v
    }

    /// One session, if `who` may see it.
    pub fn get(&self, who: &Principal, id: &str) -> Result<SessionView, BrokerError> {
        let sessions = lock(&self.inner.sessions);
        match sessions.get(id) {
            Some(e) if who.admin || e.info.user == who.user => Ok(e.shared.view(&e.info)),
            _ => Err(BrokerError::NotFound),
        }
    }

    /// End a session on behalf of `who`; returns the final view once both
    /// sides are closed and the audit record is written.
    pub async fn end(&self, who: &Principal, id: &str) -> Result<SessionView, BrokerError> {
        let commands = {
            let sessions = lock(&self.inner.sessions);
            match sessions.get(id) {
                Some(e) if who.admin || e.info.user == who.user => {
                    let reason = if e.info.user == who.user {
                        EndReason::EndedByUser(who.user.clone())
                    } else {
                        EndReason::EndedByAdmin(who.user.clone())
                    };
                    (e.commands.clone(), reason)
                }
                _ => return Err(BrokerError::NotFound),
            }
        };
        let (tx, reason) = commands;
        let (done_tx, done_rx) = oneshot::channel();
        let wait = self.inner.config.edge_call_timeout * 2;
        let sent = timeout(
            wait,
            tx.send(Command::End {
                reason,
                done: Some(done_tx),
            }),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            // Already ending on its own.
            return Err(BrokerError::NotFound);
        }
        match timeout(wait, done_rx).await {
            Ok(Ok(view)) => Ok(view),
            _ => Err(BrokerError::NotFound),
        }
    }

    /// Trade the launch URL's nonce for the client token (once, within the
    /// nonce lifetime).
    pub fn trade_nonce(&self, id: &str, nonce: &str) -> Result<ClientToken, BrokerError> {
        let cfg = &self.inner.config;
        let mut sessions = lock(&self.inner.sessions);
        let Some(e) = sessions.get_mut(id) else {
            return Err(self.refused());
        };
        let valid =
            matches!(&e.nonce, Some((h, until)) if Instant::now() < *until && h.matches(nonce));
        if !valid {
            return Err(self.refused());
        }
        e.nonce = None;
        let client = token::generate();
        e.tokens[Side::Client.idx()] = Some(TokenHash::of(&client));
        Ok(ClientToken {
            client_token: client,
            client_url: cfg.endpoint_url(id, Side::Client),
            expires: e.info.expires,
            thing: e.info.thing.clone(),
            interface: e.info.interface.clone(),
        })
    }

    /// Record the local address the RAC of session `id` listens on. The
    /// RAC authenticates with the client token it attached with (spent for
    /// attaching, still good for this report while the session lives).
    pub fn report_client(
        &self,
        id: &str,
        presented: &str,
        local_address: &str,
    ) -> Result<SessionView, BrokerError> {
        let sessions = lock(&self.inner.sessions);
        let Some(e) = sessions.get(id) else {
            return Err(self.refused());
        };
        if !e
            .client_report
            .as_ref()
            .is_some_and(|h| h.matches(presented))
        {
            return Err(self.refused());
        }
        let address = valid_client_address(local_address)?;
        {
            let mut s = lock(&e.shared.status);
            if s.state == State::Ended {
                return Err(BrokerError::NotFound);
            }
            s.client_address = Some(address.clone());
        }
        tracing::info!(session = %id, %address, "the client reported its local address");
        Ok(e.shared.view(&e.info))
    }

    /// Accept a side's token (single use) and return the session's command
    /// queue for the socket.
    pub(crate) fn claim(
        &self,
        id: &str,
        side: Side,
        presented: &str,
    ) -> Result<mpsc::Sender<Command>, BrokerError> {
        let mut sessions = lock(&self.inner.sessions);
        let Some(e) = sessions.get_mut(id) else {
            return Err(self.refused());
        };
        let slot = &mut e.tokens[side.idx()];
        let ok = slot.as_ref().is_some_and(|h| h.matches(presented))
            && lock(&e.shared.status).state != State::Ended;
        if !ok {
            return Err(self.refused());
        }
        let spent = slot.take();
        if side == Side::Client {
            e.client_report = spent;
        }
        Ok(e.commands.clone())
    }

    /// The thing of a live session (legacy attach checks the edge's app
    /// key against it).
    pub(crate) fn session_thing(&self, id: &str) -> Option<String> {
        lock(&self.inner.sessions)
            .get(id)
            .map(|e| e.info.thing.clone())
    }

    /// Spend the server side of session `id` for a legacy edge (which
    /// authenticates with its app key, not the server token).
    pub(crate) fn claim_legacy(&self, id: &str) -> Result<mpsc::Sender<Command>, BrokerError> {
        let mut sessions = lock(&self.inner.sessions);
        let Some(e) = sessions.get_mut(id) else {
            return Err(self.refused());
        };
        let slot = &mut e.tokens[Side::Server.idx()];
        if slot.is_none() || lock(&e.shared.status).state == State::Ended {
            return Err(self.refused());
        }
        *slot = None;
        Ok(e.commands.clone())
    }

    /// Report `TunnelCommandFromEdge {tid, command}` from a legacy edge:
    /// `CANCEL` ends the session, `DISCONNECT` ends its stream.
    pub async fn edge_command(
        &self,
        id: &str,
        command: crate::hooks::EdgeCommand,
    ) -> Result<(), BrokerError> {
        let tx = lock(&self.inner.sessions)
            .get(id)
            .map(|e| e.commands.clone())
            .ok_or(BrokerError::NotFound)?;
        let sent = timeout(
            self.inner.config.edge_call_timeout,
            tx.send(Command::FromEdge(command)),
        )
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            _ => Err(BrokerError::NotFound),
        }
    }

    pub(crate) fn refused(&self) -> BrokerError {
        self.inner
            .metrics
            .attaches_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        BrokerError::BadToken
    }

    /// Most bytes the broker ever held queued towards `side` of session
    /// `id` (diagnostics; `None` once the session is gone).
    pub fn queued_high_water(&self, id: &str, side: Side) -> Option<usize> {
        lock(&self.inner.sessions)
            .get(id)
            .map(|e| e.shared.queued_high_water(side))
    }

    /// The authorizer, for the HTTP layer.
    pub(crate) fn hooks(&self) -> &Hooks {
        &self.inner.hooks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_address_must_be_loopback() {
        assert_eq!(
            valid_client_address("127.0.0.1:2222").unwrap(),
            "127.0.0.1:2222"
        );
        assert_eq!(valid_client_address("[::1]:5900").unwrap(), "[::1]:5900");
        assert_eq!(
            valid_client_address("127.3.2.1:80").unwrap(),
            "127.3.2.1:80"
        );
        for bad in [
            "",
            "10.0.0.1:22",
            "0.0.0.0:22",
            "localhost:22",
            "127.0.0.1",
            "127.0.0.1:0",
            "[::2]:22",
            &format!("127.0.0.1:22{}", " ".repeat(MAX_CLIENT_ADDRESS_LEN)),
        ] {
            assert!(valid_client_address(bad).is_err(), "{bad:?} accepted");
        }
    }
}
