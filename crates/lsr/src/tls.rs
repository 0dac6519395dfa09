//! HTTPS on the script resource (`scripts.script_resource_ssl`): a certificate chain and
//! key from PEM files, or a self-signed certificate made at start when
//! `script_resource_use_default_certificate` is true or no files are given.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::ConfigError;

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_name: &str,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::invalid(key_name, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ConfigError::invalid(key_name, e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A self-signed certificate for `host` (and localhost / 127.0.0.1).
pub(crate) fn self_signed(host: &str) -> Result<Arc<ServerConfig>, ConfigError> {
    const KEY: &str = "scripts.script_resource_use_default_certificate";
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !names.iter().any(|n| n == host) && !host.is_empty() && host != "0.0.0.0" {
        names.push(host.to_string());
    }
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ConfigError::invalid(KEY, format!("cannot make a certificate: {e}")))?;
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    server_config(vec![cert], key, KEY)
}

/// Loads a PEM certificate chain and private key.
pub(crate) fn from_files(chain: &Path, key: &Path) -> Result<Arc<ServerConfig>, ConfigError> {
    const CHAIN_KEY: &str = "scripts.script_resource_certificate_chain";
    const KEY_KEY: &str = "scripts.script_resource_private_key";
    let read = |p: &Path, k: &str| {
        std::fs::read(p).map_err(|e| ConfigError::invalid(k, format!("{}: {e}", p.display())))
    };
    let chain_pem = read(chain, CHAIN_KEY)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut chain_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| ConfigError::invalid(CHAIN_KEY, format!("{}: {e}", chain.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            CHAIN_KEY,
            format!("{}: no PEM certificate found", chain.display()),
        ));
    }
    let key_pem = read(key, KEY_KEY)?;
    let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ConfigError::invalid(KEY_KEY, format!("{}: {e}", key.display())))?
        .ok_or_else(|| {
            ConfigError::invalid(
                KEY_KEY,
                format!(
                    "{}: no unencrypted PEM private key found (encrypted keys are not supported)",
                    key.display()
                ),
            )
        })?;
    server_config(certs, private, KEY_KEY)
}
