//! Numeric codes carried by CLOSE and RESET frames.
//!
//! spec/tunnel.md names the reasons but not the numbers; these are ours
//! (docs/protocol-tunnel.md). CLOSE codes reuse the WebSocket close-code
//! space (RFC 6455 §7.4, application range 4000–4999), so a driver can close
//! the WebSocket with the same code and reason.

/// CLOSE codes.
pub mod close {
    /// Normal end (user request, both sides done).
    pub const NORMAL: u16 = 1000;
    /// The side is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol; the reason says how.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Refused by policy (authorisation, allow-list).
    pub const POLICY: u16 = 1008;
    /// An internal error on the closing side.
    pub const INTERNAL: u16 = 1011;
    /// Nothing heard from the peer for 2 × the ping interval.
    pub const PEER_GONE: u16 = 4000;
    /// Broker: no side attached before the attach deadline.
    pub const ATTACH_TIMEOUT: u16 = 4001;
    /// Broker: the second side did not attach in time.
    pub const PEER_TIMEOUT: u16 = 4002;
    /// Broker: no DATA either way for the idle timeout.
    pub const IDLE: u16 = 4003;
    /// Broker: the maximum session duration was reached.
    pub const MAX_DURATION: u16 = 4004;
    /// Ended by a user or an administrator.
    pub const ENDED: u16 = 4005;
    /// No common protocol version.
    pub const UNSUPPORTED_VERSION: u16 = 4006;
    /// The other side left and did not come back.
    pub const PEER_LEFT: u16 = 4007;
}

/// RESET codes.
pub mod reset {
    /// The local application aborted the stream.
    pub const CANCELLED: u16 = 0;
    /// The target refused the connection.
    pub const REFUSED: u16 = 1;
    /// The target is not in the allow-list.
    pub const NOT_ALLOWED: u16 = 2;
    /// The target did not answer in time or is unreachable.
    pub const UNREACHABLE: u16 = 3;
    /// The stream was idle too long.
    pub const IDLE: u16 = 4;
    /// An I/O error on the stream's socket.
    pub const ERROR: u16 = 5;
    /// No more streams accepted (limit reached, or a legacy edge that allows
    /// one connection at a time).
    pub const BUSY: u16 = 6;
}
