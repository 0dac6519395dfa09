//! QUIC endpoints (quinn) for the reserved QUIC tunnel transport, ALPN
//! `tether-tunnel/1`. The TLS side comes from [`crate::tls`]: the same
//! certificates and trust rules as the websocket transport.
//!
//! ```no_run
//! use net::quic::{self, QuicOptions};
//! use net::{SelfSigned, Trust, tls};
//! use std::time::Duration;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let cert = SelfSigned::generate(&["127.0.0.1"])?;
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! let server = quic::server_endpoint(socket, &*cert.server_config(&[])?, QuicOptions::default())?;
//! let addr = server.local_addr()?;
//!
//! let trust = tls::client_config(&Trust::Pinned(vec![cert.fingerprint()]), &[])?;
//! let client = quic::client_endpoint("0.0.0.0:0".parse()?, &trust, QuicOptions::default())?;
//! let conn = quic::connect(&client, addr, "127.0.0.1", Duration::from_secs(10)).await?;
//! let (mut send, mut recv) = conn.open_bi().await?;
//! send.write_all(b"hello").await?;
//! send.finish()?;
//! let echoed = recv.read_to_end(1024).await?;
//! # let _ = echoed;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, EndpointConfig, TransportConfig};
use rustls::{ClientConfig, ServerConfig};

use crate::tls::ALPN_TUNNEL;
use crate::{NetError, TlsError};

/// Transport limits of a QUIC endpoint.
#[derive(Clone, Copy, Debug)]
pub struct QuicOptions {
    /// Close a connection after this long without any packet.
    pub idle_timeout: Duration,
    /// Send keep-alives this often (must be below the peer's idle timeout).
    pub keep_alive: Duration,
    /// Bidirectional streams the peer may have open at once.
    pub max_bidi_streams: u32,
    /// Server only: connections handled at once.
    pub max_connections: u32,
}

impl Default for QuicOptions {
    fn default() -> Self {
        QuicOptions {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            max_bidi_streams: 256,
            max_connections: 10_000,
        }
    }
}

fn transport(opts: &QuicOptions) -> Result<Arc<TransportConfig>, TlsError> {
    let mut t = TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(opts.idle_timeout)
        .map_err(|e| TlsError::Quic(format!("idle timeout {:?}: {e}", opts.idle_timeout)))?;
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(opts.keep_alive))
        .max_concurrent_bidi_streams(opts.max_bidi_streams.into())
        .max_concurrent_uni_streams(0u32.into());
    Ok(Arc::new(t))
}

/// A QUIC server endpoint on an already bound UDP socket, presenting the
/// certificate of `tls` (its ALPN list is replaced by `tether-tunnel/1`).
/// Must be called inside a tokio runtime.
pub fn server_endpoint(
    socket: std::net::UdpSocket,
    tls: &ServerConfig,
    opts: QuicOptions,
) -> Result<Endpoint, NetError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN_TUNNEL.to_vec()];
    let crypto =
        QuicServerConfig::try_from(Arc::new(tls)).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(&opts)?);
    config.max_incoming(opts.max_connections as usize);
    let runtime = quinn::default_runtime().ok_or_else(|| {
        NetError::io(
            "starting a QUIC endpoint",
            std::io::Error::other("no async runtime found (call inside tokio)"),
        )
    })?;
    Endpoint::new(EndpointConfig::default(), Some(config), socket, runtime)
        .map_err(|e| NetError::io("starting the QUIC server endpoint", e))
}

/// A QUIC client endpoint bound to `bind` (e.g. `0.0.0.0:0`), trusting
/// servers per `tls` (from [`crate::tls::client_config`]; its ALPN list is
/// replaced by `tether-tunnel/1`). Must be called inside a tokio runtime.
pub fn client_endpoint(
    bind: SocketAddr,
    tls: &ClientConfig,
    opts: QuicOptions,
) -> Result<Endpoint, NetError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN_TUNNEL.to_vec()];
    let crypto =
        QuicClientConfig::try_from(Arc::new(tls)).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(&opts)?);
    let mut endpoint = Endpoint::client(bind)
        .map_err(|e| NetError::io(format!("binding QUIC client to {bind}"), e))?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// Connect to `addr` as `server_name` (used for SNI and web-PKI checks)
/// within `timeout`.
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> Result<Connection, NetError> {
    let failed = |reason: String| NetError::QuicConnect {
        addr,
        server_name: server_name.to_owned(),
        reason,
    };
    let connecting = endpoint
        .connect(addr, server_name)
        .map_err(|e| failed(e.to_string()))?;
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(failed(tidy(&e.to_string()))),
        Err(_) => Err(NetError::Timeout {
            what: format!("QUIC connect to {addr}"),
            after: timeout,
        }),
    }
}

/// quinn reports rustls errors as text; `CertificateError::Other` shows up
/// as `Other(OtherError(<message>))`: keep just the message.
fn tidy(text: &str) -> String {
    const WRAP: &str = "Other(OtherError(";
    match text.find(WRAP) {
        Some(start) if text.ends_with("))") => {
            let inner = &text[start + WRAP.len()..text.len() - 2];
            format!("{}{inner}", &text[..start])
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy_unwraps_other_errors_only() {
        assert_eq!(
            super::tidy(
                "handshake failed: invalid peer certificate: Other(OtherError(pin mismatch))"
            ),
            "handshake failed: invalid peer certificate: pin mismatch"
        );
        assert_eq!(super::tidy("timed out"), "timed out");
    }
}
