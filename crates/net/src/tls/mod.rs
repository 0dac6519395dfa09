//! TLS material and rustls configurations.
//!
//! Every configuration is built with the `ring` provider passed explicitly
//! ([`provider`]); nothing here installs or relies on a process-wide default.
//! Client trust is validating by default ([`Trust::WebPki`]); accepting a
//! self-signed server is always an explicit choice ([`Trust::Pinned`] or
//! [`Trust::InsecureAllowSelfSigned`]).
//!
//! ```
//! use net::tls::{self, ALPN_HTTP1};
//! use net::{SelfSigned, Trust};
//!
//! # fn main() -> Result<(), net::TlsError> {
//! // Server: generate (or load with `server_config_from_files`).
//! let cert = SelfSigned::generate(&["platform.local", "127.0.0.1"])?;
//! println!("fingerprint: {}", cert.sha256_fingerprint_hex);
//! let server = cert.server_config(&[ALPN_HTTP1])?;
//!
//! // Client: validating by default, or pin the server's fingerprint.
//! let webpki = tls::client_config(&Trust::default(), &[ALPN_HTTP1])?;
//! let pinned = tls::client_config(
//!     &Trust::pinned_from_strs(&[cert.sha256_fingerprint_hex.as_str()])?,
//!     &[ALPN_HTTP1],
//! )?;
//! # let _ = (server, webpki, pinned);
//! # Ok(())
//! # }
//! ```

mod fingerprint;
mod self_signed;
mod verify;

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

pub use fingerprint::{Fingerprint, fingerprint_sha256};
pub use self_signed::SelfSigned;

use crate::{NetError, TlsError};

/// ALPN id for HTTP/1.1 (websockets over TLS).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
/// ALPN id for HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN id of the QUIC tunnel transport.
pub const ALPN_TUNNEL: &[u8] = b"tether-tunnel/1";

/// Largest PEM input accepted from a string or file (chains are a few KiB).
pub const MAX_PEM_BYTES: usize = 1024 * 1024;

/// The crypto provider used for every configuration: rustls' `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parse every `CERTIFICATE` block of a PEM text (leaf first for a chain).
/// `what` names the input in errors.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(pem_too_big(what));
    }
    let certs = rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: what.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what: what.to_owned(),
        });
    }
    Ok(certs)
}

/// Parse the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM text.
pub fn key_from_pem(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(pem_too_big(what));
    }
    rustls_pemfile::private_key(&mut BufReader::new(pem.as_bytes()))
        .map_err(|source| TlsError::Pem {
            what: what.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            what: what.to_owned(),
        })
}

fn pem_too_big(what: &str) -> TlsError {
    TlsError::Pem {
        what: what.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_PEM_BYTES} bytes"),
        ),
    }
}

/// Read a PEM file (blocking: call at startup or in `spawn_blocking`).
pub fn read_pem_file(path: &Path, what: &'static str) -> Result<String, TlsError> {
    let read_err = |source| TlsError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_PEM_BYTES as u64 {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_PEM_BYTES} bytes"),
        )));
    }
    std::fs::read_to_string(path).map_err(read_err)
}

/// A server configuration presenting `chain` (leaf first) with `key`,
/// offering the given ALPN protocols (e.g. `&[ALPN_HTTP1]` for websockets;
/// empty for none). TLS 1.2 and 1.3, no client authentication.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let rustls_err = |context| move |source| TlsError::Rustls { context, source };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err("choosing TLS versions"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rustls_err(
            "certificate and private key do not form a usable pair",
        ))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// [`server_config`] from PEM texts (certificate chain, private key).
pub fn server_config_from_pem(
    cert_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs_from_pem(cert_pem, "certificate PEM")?;
    let key = key_from_pem(key_pem, "private key PEM")?;
    server_config(chain, key, alpn)
}

/// [`server_config`] from PEM files (blocking: call at startup or in
/// `spawn_blocking`). Errors name the file.
pub fn server_config_from_files(
    cert_path: &Path,
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs_from_pem(
        &read_pem_file(cert_path, "certificate")?,
        &cert_path.display().to_string(),
    )?;
    let key = key_from_pem(
        &read_pem_file(key_path, "private key")?,
        &key_path.display().to_string(),
    )?;
    server_config(chain, key, alpn)
}

/// How a client decides to trust a server certificate.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Validate the chain against the Mozilla roots (webpki-roots) plus the
    /// given extra CA certificates (PEM texts), and check the host name.
    /// The default.
    WebPki {
        /// Extra trusted CA certificates, each a PEM text (may hold several).
        extra_roots_pem: Vec<String>,
    },
    /// Accept exactly a server certificate whose SHA-256 fingerprint is in
    /// the list; chain, validity dates and host name are not checked. The
    /// handshake signature is still verified, so the server must hold the
    /// private key.
    Pinned(Vec<Fingerprint>),
    /// Accept any server certificate (handshake signatures are still checked).
    /// Protects against passive eavesdropping only: use for tests and labs.
    InsecureAllowSelfSigned,
}

impl Default for Trust {
    fn default() -> Self {
        Trust::WebPki {
            extra_roots_pem: Vec::new(),
        }
    }
}

impl Trust {
    /// Pinned trust from fingerprint texts (any form [`Fingerprint`] parses).
    pub fn pinned_from_strs<S: AsRef<str>>(pins: &[S]) -> Result<Self, TlsError> {
        let pins = pins
            .iter()
            .map(|p| p.as_ref().parse())
            .collect::<Result<Vec<Fingerprint>, _>>()?;
        if pins.is_empty() {
            return Err(TlsError::NoPins);
        }
        Ok(Trust::Pinned(pins))
    }
}

/// A client configuration for `trust`, offering the given ALPN protocols
/// (`&[ALPN_HTTP1]` for websockets). No client certificate.
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_identity(trust, alpn, None)
}

/// A client certificate chain and key, presented to servers that ask for
/// one (mutual TLS). `Debug` does not print the key.
#[derive(Clone)]
pub struct ClientIdentity {
    /// Certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: Arc<PrivateKeyDer<'static>>,
}

impl ClientIdentity {
    /// From PEM texts.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        Ok(ClientIdentity {
            chain: certs_from_pem(cert_pem, "client certificate PEM")?,
            key: Arc::new(key_from_pem(key_pem, "client key PEM")?),
        })
    }

    /// From PEM files (blocking: call at startup or in `spawn_blocking`).
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        Ok(ClientIdentity {
            chain: certs_from_pem(
                &read_pem_file(cert_path, "client certificate")?,
                &cert_path.display().to_string(),
            )?,
            key: Arc::new(key_from_pem(
                &read_pem_file(key_path, "client key")?,
                &key_path.display().to_string(),
            )?),
        })
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let leaf = self.chain.first().map(|c| Fingerprint::of(c));
        f.debug_struct("ClientIdentity")
            .field("leaf_sha256", &leaf)
            .field("key", &"***")
            .finish()
    }
}

/// [`client_config`] that also presents `identity` when the server asks for
/// a client certificate.
pub fn client_config_with_identity(
    trust: &Trust,
    alpn: &[&[u8]],
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            context: "choosing TLS versions",
            source,
        })?;
    let builder = match trust {
        Trust::WebPki { extra_roots_pem } => {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            for (i, pem) in extra_roots_pem.iter().enumerate() {
                let what = format!("extra CA #{}", i + 1);
                for cert in certs_from_pem(pem, &what)? {
                    roots.add(cert).map_err(|source| TlsError::Rustls {
                        context: "adding an extra CA certificate",
                        source,
                    })?;
                }
            }
            builder.with_root_certificates(roots)
        }
        Trust::Pinned(pins) => {
            if pins.is_empty() {
                return Err(TlsError::NoPins);
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::FingerprintVerifier::pinned(
                    pins.clone(),
                    provider,
                )))
        }
        Trust::InsecureAllowSelfSigned => {
            tracing::warn!("TLS certificate validation disabled (allow_self_signed)");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::FingerprintVerifier::any(
                    provider,
                )))
        }
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|source| TlsError::Rustls {
                context: "client certificate and key do not form a usable pair",
                source,
            })?,
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A readable description of a TLS failure carried in an I/O error (as
/// tokio-rustls and tokio-tungstenite report them).
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => describe(tls),
        None => e.to_string(),
    }
}

/// A readable description of a rustls error, with a hint for the common
/// certificate failures.
pub(crate) fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::Other(other)) => {
            format!("invalid peer certificate: {}", other.0)
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => "invalid peer certificate: \
             UnknownIssuer (not signed by a trusted CA; for a self-signed server pin its \
             SHA-256 fingerprint or add its CA)"
            .to_owned(),
        other => other.to_string(),
    }
}

/// Client TLS handshake over `tcp` with a deadline. `server_name` is a DNS
/// name or an IP literal (used for SNI and, with [`Trust::WebPki`], checked).
pub async fn connect(
    config: Arc<ClientConfig>,
    server_name: &str,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<client::TlsStream<TcpStream>, NetError> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| NetError::InvalidUrl {
        url: server_name.to_owned(),
        reason: format!("not a valid TLS server name: {e}"),
    })?;
    let what = || format!("TLS handshake with {server_name}");
    match tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(NetError::Handshake {
            what: what(),
            reason: describe_io(&e),
            source: e,
        }),
        Err(_) => Err(NetError::Timeout {
            what: what(),
            after: timeout,
        }),
    }
}

/// Server TLS handshake over `tcp` with a deadline.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<server::TlsStream<TcpStream>, NetError> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(NetError::Handshake {
            what: "TLS handshake with client".to_owned(),
            reason: describe_io(&e),
            source: e,
        }),
        Err(_) => Err(NetError::Timeout {
            what: "TLS handshake with client".to_owned(),
            after: timeout,
        }),
    }
}
