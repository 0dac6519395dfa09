//! Web login sessions: a random 256-bit token in an HttpOnly,
//! SameSite=Strict, Secure cookie, and a CSRF token the page echoes in
//! `X-CSRF-Token` on state-changing requests.
//!
//! Sessions live in the entity store (table `web_sessions`, keyed by the
//! token's hash; the token itself is never stored), so a restart keeps
//! everyone logged in. The role is read from the user's row on every
//! request, so a new role applies at once; a new password or deleting the
//! user ends the user's sessions. The table is bounded in size.

use std::time::Duration;

use crate::model::{Role, now_ms};
use crate::secret::{hash_app_key, random_token};
use crate::store::{NewWebSession, Store, StoreError};

/// Cookie name.
pub const COOKIE: &str = "tether_session";
/// CSRF header name.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most sessions held at once.
const MAX_SESSIONS: i64 = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

/// The session table (over the store).
pub struct WebSessions {
    ttl: Duration,
    store: Store,
}

impl WebSessions {
    pub fn new(ttl: Duration, store: Store) -> WebSessions {
        WebSessions { ttl, store }
    }

    /// Creates a session; returns (cookie token, CSRF token).
    pub async fn create(&self, user: &str) -> Result<(String, String), StoreError> {
        let token = random_token(32);
        let csrf = random_token(32);
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        self.store
            .create_web_session(&NewWebSession {
                token_hash: &hash_app_key(&token),
                user,
                csrf: &csrf,
                expires_at: now_ms().saturating_add(ttl_ms),
                max: MAX_SESSIONS,
            })
            .await?;
        Ok((token, csrf))
    }

    /// The live session for a cookie token (an expired one is deleted).
    pub async fn get(&self, token: &str) -> Result<Option<WebSession>, StoreError> {
        let key = hash_app_key(token);
        match self.store.web_session(&key).await? {
            Some(s) if s.expires_at > now_ms() => Ok(Some(WebSession {
                user: s.user,
                role: s.role,
                csrf: s.csrf,
            })),
            Some(_) => {
                self.store.delete_web_session(&key).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Ends a session.
    pub async fn remove(&self, token: &str) -> Result<(), StoreError> {
        self.store.delete_web_session(&hash_app_key(token)).await
    }

    /// Ends every session of `user` (given a new password, or deleted): the
    /// next request from those browsers gets 401. Returns how many ended.
    pub async fn end_user(&self, user: &str) -> Result<u64, StoreError> {
        self.store.delete_web_sessions_of(user).await
    }

    /// Seconds a session lives (for the cookie's Max-Age).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }
}
