//! `Platform`: the cloneable handle every handler shares (store, binding
//! registry, metrics, limits, shutdown), with the internal API used by the
//! REST layer and benchmarks: `request` (platform → edge), authentication
//! and property conversion.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use alwayson::{
    BaseType, Characteristic, Code, EntityType, InfoTable, Limits, Primitive, RequestBody,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::edge::{EdgeAnswer, EdgeError, Registry};
use crate::http::session::WebSessions;
use crate::metrics::Metrics;
use crate::model::{AppKey, PropertyValue, Role, now_ms};
use crate::ratelimit::AuthLimiter;
use crate::secret;
use crate::store::{Store, StoreError};

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    pub(crate) limiter: AuthLimiter,
    pub(crate) sessions: WebSessions,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) limits: Limits,
    pub(crate) edge_slots: Arc<Semaphore>,
    /// The remote-access broker, set when the server starts.
    pub(crate) broker: std::sync::OnceLock<broker::Broker>,
    next_conn_id: AtomicU64,
}

/// The platform's shared state and internal API; cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub(crate) shared: Arc<Shared>,
}

/// Who is calling, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name (for an app key: the key's user).
    pub user: String,
    pub role: Role,
    /// The app key used, if any.
    pub app_key: Option<AppKey>,
}

impl Principal {
    /// The name used in logs and the audit log: `user` or `user/key`.
    pub fn label(&self) -> String {
        match &self.app_key {
            Some(k) => format!("{}/{}", self.user, k.name),
            None => self.user.clone(),
        }
    }

    /// Whether this principal may bind the thing `name`.
    pub fn may_bind(&self, name: &str) -> bool {
        match &self.app_key {
            Some(k) => k.may_bind(name),
            None => self.role.may_operate(),
        }
    }
}

/// Why authentication failed. The `Display` text is what the client sees;
/// it never contains the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("invalid app key")]
    UnknownKey,
    #[error("app key revoked")]
    Revoked,
    #[error("app key expired")]
    Expired,
    #[error("app key not allowed from this client address")]
    AddressNotAllowed,
    #[error("invalid user name or password")]
    BadCredentials,
    #[error("too many failed authentication attempts from this address; try again later")]
    RateLimited,
    #[error("no credentials: send an appKey claim or userid and password claims")]
    NoCredentials,
    #[error("authentication backend unavailable")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Internal(e.to_string())
    }
}

impl Platform {
    /// Builds the shared state over an open store.
    pub fn new(config: Config, store: Store, shutdown: CancellationToken) -> Platform {
        let limits = Limits {
            max_message_size: config.alwayson.max_message_size,
            max_string: config.alwayson.max_message_size,
            ..Limits::default()
        };
        let shared = Shared {
            limiter: AuthLimiter::new(
                config.alwayson.auth_failures_per_window,
                config.alwayson.auth_failure_window,
            ),
            sessions: WebSessions::new(config.http.session_ttl, store.clone()),
            edge_slots: Arc::new(Semaphore::new(config.alwayson.max_connections)),
            config,
            store,
            registry: Registry::default(),
            metrics: Metrics::new(),
            shutdown,
            tracker: TaskTracker::new(),
            limits,
            broker: std::sync::OnceLock::new(),
            next_conn_id: AtomicU64::new(1),
        };
        Platform {
            shared: Arc::new(shared),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Bindings and live edge connections.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends an AlwaysOn request to the edge that bound `thing` and waits
    /// (up to `alwayson.request_timeout`) for its answer. Cancel-safe.
    pub async fn request(
        &self,
        thing: &str,
        code: Code,
        characteristic: Characteristic,
        target: &str,
        params: Option<InfoTable>,
    ) -> Result<EdgeAnswer, EdgeError> {
        let binding = self
            .shared
            .registry
            .binding(thing)
            .ok_or_else(|| EdgeError::NotConnected(thing.to_owned()))?;
        let mut body = RequestBody::new(
            EntityType::THING,
            binding.bound_as.clone(),
            characteristic,
            target,
        );
        body.params = params;
        let m = &self.shared.metrics;
        m.edge_requests.inc();
        let started = Instant::now();
        let result = binding
            .conn
            .request(code, body, self.shared.config.alwayson.request_timeout)
            .await;
        m.edge_request_seconds
            .observe(started.elapsed().as_secs_f64());
        if matches!(result, Err(EdgeError::Timeout(_))) {
            m.edge_request_timeouts.inc();
        }
        result
    }

    /// Checks an app key for a client at `peer` (rate limit, revocation,
    /// expiry, address allow-list). Records failures.
    pub async fn authenticate_app_key(
        &self,
        key: &str,
        peer: IpAddr,
    ) -> Result<Principal, AuthError> {
        let result = self.check_app_key(key, peer).await;
        self.record_auth(&result, peer, "app key").await;
        result
    }

    async fn check_app_key(&self, key: &str, peer: IpAddr) -> Result<Principal, AuthError> {
        if self.shared.limiter.is_blocked(peer, Instant::now()) {
            return Err(AuthError::RateLimited);
        }
        let (app_key, role) = self
            .shared
            .store
            .app_key_by_hash(&secret::hash_app_key(key))
            .await?
            .ok_or(AuthError::UnknownKey)?;
        if app_key.revoked {
            return Err(AuthError::Revoked);
        }
        if app_key.is_expired(now_ms()) {
            return Err(AuthError::Expired);
        }
        if !app_key.allows_address(peer) {
            return Err(AuthError::AddressNotAllowed);
        }
        Ok(Principal {
            user: app_key.user.clone(),
            role,
            app_key: Some(app_key),
        })
    }

    /// Checks a user name and password (argon2 off the runtime).
    pub async fn authenticate_password(
        &self,
        user: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<Principal, AuthError> {
        let result = self.check_password(user, password, peer).await;
        self.record_auth(&result, peer, "password").await;
        result
    }

    async fn check_password(
        &self,
        user: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<Principal, AuthError> {
        if self.shared.limiter.is_blocked(peer, Instant::now()) {
            return Err(AuthError::RateLimited);
        }
        let found = self.shared.store.user_with_hash(user).await?;
        // Verify against a dummy hash for unknown users so timing does not tell.
        let (user, hash) = match found {
            Some((u, h)) => (Some(u), Some(h)),
            None => (None, None),
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let hash = hash.unwrap_or_else(|| secret::dummy_hash().to_owned());
            secret::verify_password(&password, &hash)
        })
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        match (user, ok) {
            (Some(u), true) => Ok(Principal {
                user: u.name,
                role: u.role,
                app_key: None,
            }),
            _ => Err(AuthError::BadCredentials),
        }
    }

    async fn record_auth(&self, result: &Result<Principal, AuthError>, peer: IpAddr, how: &str) {
        match result {
            Ok(_) => self.shared.limiter.record_success(peer),
            Err(AuthError::Internal(_)) => {}
            Err(e) => {
                self.shared.metrics.auth_failures.inc();
                if !matches!(e, AuthError::RateLimited) {
                    self.shared.limiter.record_failure(peer, Instant::now());
                }
                self.audit("auth.failure", "-", how, &e.to_string(), &peer.to_string())
                    .await;
            }
        }
    }

    /// Appends to the audit log; a store failure is logged, not returned.
    pub async fn audit(&self, kind: &str, actor: &str, subject: &str, detail: &str, peer: &str) {
        if let Err(e) = self
            .shared
            .store
            .audit(kind, actor, subject, detail, peer)
            .await
        {
            tracing::error!(%e, kind, "cannot write the audit log");
        }
    }

    /// Converts a stored property value to a primitive.
    pub fn primitive_of(&self, v: &PropertyValue) -> Option<Primitive> {
        let base = BaseType::from_name(&v.base_type).ok()?;
        Primitive::from_json(base, &v.value, &self.shared.limits).ok()
    }

    /// Stores property values pushed by an edge.
    pub async fn store_pushed(
        &self,
        thing: &str,
        values: &[alwayson::PropertyValue],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let converted: Vec<PropertyValue> = values
            .iter()
            .map(|v| PropertyValue {
                name: v.name.clone(),
                base_type: v.value.base_type().name().to_owned(),
                value: v.value.to_json(),
                time: if v.time > 0 { v.time } else { now },
                quality: v.quality.clone(),
            })
            .collect();
        self.shared
            .store
            .upsert_properties(thing, &converted)
            .await?;
        self.shared
            .metrics
            .property_updates
            .inc_by(converted.len() as u64);
        Ok(())
    }

    /// The stored values of `thing` as a one-row InfoTable (for a
    /// disconnected thing or an edge reading its own properties). `only`
    /// restricts it to one property.
    pub async fn stored_table(
        &self,
        thing: &str,
        only: Option<&str>,
    ) -> Result<Option<InfoTable>, StoreError> {
        let values = self.shared.store.properties(thing).await?;
        let pairs: Vec<(String, Primitive)> = values
            .iter()
            .filter(|v| only.is_none_or(|o| o == v.name))
            .filter_map(|v| self.primitive_of(v).map(|p| (v.name.clone(), p)))
            .collect();
        if only.is_some() && pairs.is_empty() {
            return Ok(None);
        }
        Ok(Some(InfoTable::single_row(pairs)))
    }

    /// Closes every edge socket with 1001 (shutdown).
    pub(crate) fn close_all_edges(&self, reason: &str) {
        for conn in self.shared.registry.connections() {
            conn.close(1001, reason);
        }
    }

    /// A socket address's IP, IPv4-mapped addresses unwrapped.
    pub(crate) fn peer_ip(peer: SocketAddr) -> IpAddr {
        match peer.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        }
    }
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}
