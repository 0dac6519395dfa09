//! Failed-authentication rate limit per client address (AlwaysOn AUTH and
//! HTTP logins share it). Fixed window; the table is bounded and pruned.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked at once; past it, expired windows are pruned and,
/// if still full, the table is cleared (fail open rather than grow).
const MAX_TRACKED: usize = 100_000;

/// Counts failed authentications per address.
pub struct AuthLimiter {
    max_failures: u32,
    window: Duration,
    table: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthLimiter {
    /// At most `max_failures` failures per `window` per address.
    pub fn new(max_failures: u32, window: Duration) -> AuthLimiter {
        AuthLimiter {
            max_failures,
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `addr` is currently locked out.
    pub fn is_blocked(&self, addr: IpAddr, now: Instant) -> bool {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.get(&addr).is_some_and(|(start, n)| {
            now.duration_since(*start) < self.window && *n >= self.max_failures
        })
    }

    /// Records a failure for `addr`.
    pub fn record_failure(&self, addr: IpAddr, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_TRACKED && !table.contains_key(&addr) {
            let window = self.window;
            table.retain(|_, (start, _)| now.duration_since(*start) < window);
            if table.len() >= MAX_TRACKED {
                table.clear();
            }
        }
        let entry = table.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets failures after a success.
    pub fn record_success(&self, addr: IpAddr) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_recovers_after_window() {
        let l = AuthLimiter::new(2, Duration::from_secs(10));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        assert!(!l.is_blocked(a, t0));
        l.record_failure(a, t0);
        assert!(!l.is_blocked(a, t0));
        l.record_failure(a, t0);
        assert!(l.is_blocked(a, t0));
        assert!(!l.is_blocked(b, t0));
        assert!(!l.is_blocked(a, t0 + Duration::from_secs(11)));
        l.record_success(a);
        assert!(!l.is_blocked(a, t0));
    }
}
