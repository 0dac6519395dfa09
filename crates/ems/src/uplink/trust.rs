//! `certificates` → the rustls client configuration of the uplink.
//!
//! | config | trust |
//! |---|---|
//! | `pinned_sha256` (Tether) non-empty | exactly those server certificates (chain and name not checked) |
//! | `validate: false` or `allow_self_signed: true` | any certificate (logged as a warning) |
//! | otherwise | Mozilla roots + the PEM files of `cert_chain`, host name checked |

use std::sync::Arc;

use net::rustls::ClientConfig;
use net::tls::{ALPN_HTTP1, Trust, client_config, read_pem_file};
use net::{Fingerprint, TlsError};

use crate::config::{CertificatesConfig, ConfigError};

/// Builds the uplink's TLS client configuration; errors name the config key.
pub fn client_tls(certs: &CertificatesConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    if certs.client_cert.is_some() {
        return Err(ConfigError::new(
            "certificates.client_cert",
            "client certificates are not supported yet",
        ));
    }
    let trust = if !certs.pinned_sha256.is_empty() {
        Trust::Pinned(
            certs
                .pinned_sha256
                .iter()
                .map(|fp| Fingerprint(*fp))
                .collect(),
        )
    } else if !certs.validate || certs.allow_self_signed {
        Trust::InsecureAllowSelfSigned
    } else {
        let mut extra_roots_pem = Vec::with_capacity(certs.cert_chain.len());
        for (i, path) in certs.cert_chain.iter().enumerate() {
            let pem = read_pem_file(path, "CA certificate").map_err(|e| {
                ConfigError::new(format!("certificates.cert_chain[{i}]"), e.to_string())
            })?;
            extra_roots_pem.push(pem);
        }
        Trust::WebPki { extra_roots_pem }
    };
    client_config(&trust, &[ALPN_HTTP1])
        .map_err(|e: TlsError| ConfigError::new("certificates", e.to_string()))
}
