//! WebSocket, TLS and QUIC plumbing shared by Tether's components.
//!
//! - [`tls`]: self-signed certificates, fingerprints, server and client
//!   configurations (web PKI, pinned fingerprint, explicit insecure mode).
//!   Always the `ring` provider, never a process-wide default.
//! - [`accept`]: a bounded accept loop (connection cap, TLS handshake
//!   deadline, one task per connection with a span, graceful shutdown).
//! - [`http`]: serve an axum `Router` (websocket upgrades included) over the
//!   accept loop, plain or TLS.
//! - [`ws`]: websocket client connect with custom headers, buffer presets,
//!   and a server-side accept on a raw stream for components outside axum.
//! - [`quic`]: quinn endpoints for the QUIC tunnel transport.
//! - [`shutdown`]: Ctrl-C/SIGTERM into a `CancellationToken`, waiting with a
//!   grace period.

pub mod accept;
mod error;
pub mod http;
pub mod quic;
pub mod shutdown;
pub mod tls;
pub mod ws;

pub use error::{NetError, TlsError};
pub use tls::{Fingerprint, SelfSigned, Trust, fingerprint_sha256};

// Re-exported so users name the exact versions this crate is built on.
pub use quinn;
pub use rustls;
pub use tokio_rustls;
pub use tokio_tungstenite;
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;
