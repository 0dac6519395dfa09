//! Self-signed certificate generation (rcgen, ECDSA P-256 via ring).

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{Fingerprint, server_config};
use crate::TlsError;

/// A freshly generated self-signed certificate and its private key.
///
/// `Debug` does not print the private key.
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM. Secret: never log it.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// `fingerprint_sha256(der)`: colon-separated upper-case hex.
    pub sha256_fingerprint_hex: String,
    key_der: Vec<u8>,
}

impl SelfSigned {
    /// Generate a certificate valid for the given host names and IP addresses
    /// (IP literals become IP subject alternative names). The first name is
    /// also the subject common name.
    pub fn generate<S: AsRef<str>>(names: &[S]) -> Result<Self, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().trim().to_owned()).collect();
        let Some(first) = names.first().cloned() else {
            return Err(TlsError::NoNames);
        };
        let mut params = rcgen::CertificateParams::new(names)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, first);
        dn.push(rcgen::DnType::OrganizationName, "Tether self-signed");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        let der = cert.der().clone();
        Ok(SelfSigned {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            sha256_fingerprint_hex: Fingerprint::of(&der).to_string(),
            der,
            key_der: key.serialize_der(),
        })
    }

    /// The certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.der)
    }

    /// The private key, DER (PKCS#8).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A server configuration presenting this certificate.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        server_config(vec![self.der.clone()], self.key_der(), alpn)
    }
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned")
            .field("sha256_fingerprint_hex", &self.sha256_fingerprint_hex)
            .field("key_pem", &"***")
            .finish_non_exhaustive()
    }
}
