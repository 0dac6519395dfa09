//! Broker configuration: timeouts, limits and the public URL the sides use.

use std::time::Duration;

use url::Url;

/// Default time for both sides to attach after the session is created.
pub const DEFAULT_ATTACH_DEADLINE: Duration = Duration::from_secs(60);
/// Default lifetime of the client nonce in the launch URL.
pub const DEFAULT_NONCE_TTL: Duration = Duration::from_secs(15);
/// Default idle timeout: no DATA either way for this long ends the session.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default maximum session duration.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(8 * 60 * 60);
/// Default ping interval; a side silent for twice this long is gone.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Default limit of sessions one user may have open at once.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 10;
/// Default limit of concurrently open streams in one session.
pub const DEFAULT_MAX_STREAMS_PER_SESSION: usize = 64;
/// Default limit of sessions in the whole broker.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default time the edge has to answer `start_tunnel`.
pub const DEFAULT_EDGE_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages queued towards one side (bounded; the sender waits when full).
pub const DEFAULT_QUEUE_MESSAGES: usize = 32;
/// `num_connects` sent to legacy edges: TCP connections one legacy session
/// may open, one after the other.
pub const DEFAULT_LEGACY_NUM_CONNECTS: u32 = 16;
/// The most `legacy_num_connects` may be.
pub const MAX_LEGACY_NUM_CONNECTS: u32 = 1000;

/// Runtime configuration of the broker. Build with [`BrokerConfig::new`]
/// and adjust fields; [`BrokerConfig::validate`] is called by
/// [`crate::Broker::new`].
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Base URL of the platform as the sides reach it, e.g.
    /// `https://platform.example:8443`. The server URL sent to the edge and
    /// the launch URL given to the RAC are built from it.
    pub public_url: Url,
    /// Time for both sides to attach after creation.
    pub attach_deadline: Duration,
    /// Lifetime of the single-use client nonce.
    pub nonce_ttl: Duration,
    /// No DATA either way for this long ends an active session.
    pub idle_timeout: Duration,
    /// Maximum lifetime of a session, counted from its creation.
    pub max_duration: Duration,
    /// The broker pings each side this often; a side silent for twice this
    /// long is treated as gone.
    pub ping_interval: Duration,
    /// Per-stream flow-control window announced in the broker's HELLO and
    /// enforced on every stream in each direction.
    pub initial_window: u32,
    /// Largest frame body (DATA payload) accepted and announced.
    pub max_payload: u32,
    /// Sessions one user may have that have not ended.
    pub max_sessions_per_user: usize,
    /// Sessions in the whole broker that have not ended.
    pub max_sessions: usize,
    /// Streams open at once in one session; further OPENs get RESET (busy).
    pub max_streams_per_session: usize,
    /// Deadline on each `EdgeControl` call.
    pub edge_call_timeout: Duration,
    /// Messages queued towards one side before the other side's reader waits.
    pub queue_messages: usize,
    /// `connection.num_connects` in a legacy `StartTunnel`: how many TCP
    /// connections (one at a time) a legacy edge opens for one session.
    pub legacy_num_connects: u32,
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker configuration: {key}: {why}")]
pub struct ConfigError {
    /// The field at fault.
    pub key: &'static str,
    /// What is wrong with it.
    pub why: &'static str,
}

impl BrokerConfig {
    /// Defaults from spec/tunnel.md with the given public URL.
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            attach_deadline: DEFAULT_ATTACH_DEADLINE,
            nonce_ttl: DEFAULT_NONCE_TTL,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_duration: DEFAULT_MAX_DURATION,
            ping_interval: DEFAULT_PING_INTERVAL,
            initial_window: tunnel::DEFAULT_WINDOW,
            max_payload: tunnel::DEFAULT_MAX_PAYLOAD,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_streams_per_session: DEFAULT_MAX_STREAMS_PER_SESSION,
            edge_call_timeout: DEFAULT_EDGE_CALL_TIMEOUT,
            queue_messages: DEFAULT_QUEUE_MESSAGES,
            legacy_num_connects: DEFAULT_LEGACY_NUM_CONNECTS,
        }
    }

    /// Check every value; the broker refuses to start on an error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, why| Err(ConfigError { key, why });
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return err("public_url", "scheme must be http or https");
        }
        if self.public_url.host_str().is_none() {
            return err("public_url", "needs a host");
        }
        for (key, d) in [
            ("attach_deadline", self.attach_deadline),
            ("nonce_ttl", self.nonce_ttl),
            ("idle_timeout", self.idle_timeout),
            ("max_duration", self.max_duration),
            ("ping_interval", self.ping_interval),
            ("edge_call_timeout", self.edge_call_timeout),
        ] {
            if d.is_zero() {
                return err(key, "must be greater than zero");
            }
        }
        if self.initial_window < 1024 {
            return err("initial_window", "must be at least 1024 bytes");
        }
        if self.max_payload < 1024 || self.max_payload > tunnel::HARD_MAX_PAYLOAD {
            return err("max_payload", "must be between 1 KiB and 1 MiB");
        }
        if self.max_sessions_per_user == 0 || self.max_sessions == 0 {
            return err("max_sessions", "must be at least 1");
        }
        if self.max_streams_per_session == 0 {
            return err("max_streams_per_session", "must be at least 1");
        }
        if self.queue_messages == 0 {
            return err("queue_messages", "must be at least 1");
        }
        if !(1..=MAX_LEGACY_NUM_CONNECTS).contains(&self.legacy_num_connects) {
            return err("legacy_num_connects", "must be between 1 and 1000");
        }
        Ok(())
    }

    /// The WebSocket URL of one side's endpoint for session `id`.
    pub fn endpoint_url(&self, id: &str, side: crate::Side) -> String {
        let scheme = if self.public_url.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let base = self.public_url.as_str().trim_end_matches('/');
        let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
        format!(
            "{scheme}://{rest}/remote-access/v1/sessions/{id}/{}",
            side.as_str()
        )
    }

    /// The `tether://open?...` URL that hands the nonce to the RAC.
    pub fn launch_url(&self, id: &str, nonce: &str) -> String {
        let mut u = String::from("tether://open?");
        let base = self.public_url.as_str().trim_end_matches('/');
        u.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("platform", base)
                .append_pair("session", id)
                .append_pair("nonce", nonce)
                .finish(),
        );
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BrokerConfig {
        BrokerConfig::new(Url::parse("https://p.example:8443/").unwrap())
    }

    #[test]
    fn urls() {
        let c = cfg();
        assert_eq!(
            c.endpoint_url("abc", crate::Side::Server),
            "wss://p.example:8443/remote-access/v1/sessions/abc/server"
        );
        assert_eq!(
            c.launch_url("abc", "n-1"),
            "tether://open?platform=https%3A%2F%2Fp.example%3A8443&session=abc&nonce=n-1"
        );
        let mut plain = cfg();
        plain.public_url = Url::parse("http://127.0.0.1:99").unwrap();
        assert_eq!(
            plain.endpoint_url("x", crate::Side::Client),
            "ws://127.0.0.1:99/remote-access/v1/sessions/x/client"
        );
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(cfg().validate().is_ok());
        let mut c = cfg();
        c.idle_timeout = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().key, "idle_timeout");
        let mut c = cfg();
        c.max_payload = 10 * 1024 * 1024;
        assert_eq!(c.validate().unwrap_err().key, "max_payload");
        let mut c = cfg();
        c.public_url = Url::parse("ftp://x").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "public_url");
    }
}
