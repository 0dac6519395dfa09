//! Error types. Every message names what failed; the underlying error is
//! included in the message because operators usually see only `Display`.

use std::path::PathBuf;
use std::time::Duration;

/// Errors while building TLS material or configurations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    ReadFile {
        /// What the file should contain ("certificate", "private key", "CA").
        what: &'static str,
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PEM text could not be parsed.
    #[error("invalid PEM in {what}: {source}")]
    Pem {
        /// Which input was being parsed.
        what: String,
        /// The parse error.
        source: std::io::Error,
    },
    /// The PEM input contained no `CERTIFICATE` block.
    #[error("no certificate found in {what} (expected a PEM block `-----BEGIN CERTIFICATE-----`)")]
    NoCertificate {
        /// Which input was being parsed.
        what: String,
    },
    /// The PEM input contained no private key block.
    #[error(
        "no private key found in {what} (expected PKCS#8, PKCS#1 or SEC1 PEM, e.g. `-----BEGIN PRIVATE KEY-----`)"
    )]
    NoPrivateKey {
        /// Which input was being parsed.
        what: String,
    },
    /// rustls rejected the material or configuration.
    #[error("{context}: {source}")]
    Rustls {
        /// What was being built.
        context: &'static str,
        /// The rustls error.
        source: rustls::Error,
    },
    /// Certificate generation failed.
    #[error("cannot generate self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A self-signed certificate was requested without any name.
    #[error("a self-signed certificate needs at least one host name or IP address")]
    NoNames,
    /// A pinned fingerprint could not be parsed.
    #[error("invalid SHA-256 fingerprint {input:?}: {reason}")]
    BadFingerprint {
        /// The text that was given.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// `Trust::Pinned` was given an empty list.
    #[error("pinned trust needs at least one certificate fingerprint")]
    NoPins,
    /// The configuration cannot be used for QUIC (needs TLS 1.3).
    #[error("TLS configuration is not usable for QUIC: {0}")]
    Quic(String),
}

/// Errors from sockets, handshakes and connections.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// TLS configuration problem.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A TLS handshake failed.
    #[error("{what} failed: {reason}")]
    Handshake {
        /// Which handshake ("TLS handshake with host").
        what: String,
        /// A readable description (certificate problem, pin mismatch, …).
        reason: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A deadline passed.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// A URL was malformed or had an unsupported scheme.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A header name or value was not valid HTTP.
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The websocket client handshake failed (TCP, TLS or HTTP).
    #[error("websocket connect to {url} failed: {reason}")]
    WsConnect {
        /// The URL (never carries secrets: tokens go in headers).
        url: String,
        /// A readable description, including the HTTP status if there was one.
        reason: String,
        /// The underlying error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The server refused the websocket upgrade with an HTTP status.
    #[error("websocket connect to {url} refused: HTTP {status}")]
    WsRefused {
        /// The URL.
        url: String,
        /// The HTTP status the server answered.
        status: ::http::StatusCode,
    },
    /// A server-side websocket handshake failed.
    #[error("websocket handshake from client failed: {0}")]
    WsAccept(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// A server-side websocket handshake was rejected by the caller's decision.
    #[error("websocket upgrade rejected with HTTP {status}: {reason}")]
    WsRejected {
        /// Status sent to the client.
        status: ::http::StatusCode,
        /// Reason sent to the client.
        reason: String,
    },
    /// A QUIC connection could not be started (bad address or name).
    #[error("QUIC connect to {addr} ({server_name}) failed: {reason}")]
    QuicConnect {
        /// Peer address.
        addr: std::net::SocketAddr,
        /// TLS server name used.
        server_name: String,
        /// Why.
        reason: String,
    },
}

impl NetError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetError::Io {
            context: context.into(),
            source,
        }
    }
}
