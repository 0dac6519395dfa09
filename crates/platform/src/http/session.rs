//! Web login sessions: a random 256-bit token in an HttpOnly,
//! SameSite=Strict, Secure cookie, and a CSRF token the page echoes in
//! `X-CSRF-Token` on state-changing requests. Held in memory (a restart
//! logs everyone out), keyed by the token's hash, bounded in number.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::Role;
use crate::secret::{hash_app_key, random_token};

/// Cookie name.
pub const COOKIE: &str = "tether_session";
/// CSRF header name.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most sessions held at once.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    expires: Instant,
}

/// The session table.
pub struct WebSessions {
    ttl: Duration,
    table: Mutex<HashMap<String, WebSession>>,
}

impl WebSessions {
    pub fn new(ttl: Duration) -> WebSessions {
        WebSessions {
            ttl,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WebSession>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a session; returns (cookie token, CSRF token).
    pub fn create(&self, user: &str, role: Role) -> (String, String) {
        let token = random_token(32);
        let csrf = random_token(32);
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, s| s.expires > now);
            if table.len() >= MAX_SESSIONS {
                // Drop the session closest to expiry.
                if let Some(k) = table
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
                {
                    table.remove(&k);
                }
            }
        }
        table.insert(
            hash_app_key(&token),
            WebSession {
                user: user.to_owned(),
                role,
                csrf: csrf.clone(),
                expires: now + self.ttl,
            },
        );
        (token, csrf)
    }

    /// The live session for a cookie token.
    pub fn get(&self, token: &str) -> Option<WebSession> {
        let key = hash_app_key(token);
        let mut table = self.lock();
        match table.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                table.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn remove(&self, token: &str) {
        self.lock().remove(&hash_app_key(token));
    }

    /// Ends every session of `user` (deleted, or given a new role or
    /// password): the next request from those browsers gets 401. Returns
    /// how many ended.
    pub fn end_user(&self, user: &str) -> usize {
        let mut table = self.lock();
        let before = table.len();
        table.retain(|_, s| s.user != user);
        before - table.len()
    }

    /// Seconds a session lives (for the cookie's Max-Age).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }
}
