//! Server certificate verifiers for pinned and explicitly insecure trust.
//! Both still verify the handshake signatures with the provider's
//! algorithms, so the server must hold the certificate's private key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::Fingerprint;

/// The presented certificate is not one of the pinned ones.
///
/// rustls shows `CertificateError::Other` with `Debug`, so `Debug` prints the
/// same readable text as `Display`.
struct PinMismatch {
    got: Fingerprint,
    pinned: Vec<Fingerprint>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server certificate SHA-256 fingerprint {} does not match the pinned fingerprint",
            self.got
        )?;
        if self.pinned.len() > 1 {
            write!(f, "s")?;
        }
        let list: Vec<String> = self.pinned.iter().map(|p| p.to_string()).collect();
        write!(f, " ({})", list.join(", "))
    }
}

impl std::fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PinMismatch {}

/// Checks the server certificate against `pins` (`None` = accept any certificate,
/// the explicit insecure mode). Handshake signatures are always verified.
#[derive(Debug)]
pub(super) struct FingerprintVerifier {
    pins: Option<Vec<Fingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl FingerprintVerifier {
    /// Accepts exactly the certificates with one of these fingerprints.
    pub(super) fn pinned(pins: Vec<Fingerprint>, provider: Arc<CryptoProvider>) -> Self {
        FingerprintVerifier {
            pins: Some(pins),
            provider,
        }
    }

    /// Accepts any certificate (still checks the handshake signatures).
    pub(super) fn any(provider: Arc<CryptoProvider>) -> Self {
        FingerprintVerifier {
            pins: None,
            provider,
        }
    }
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pins) = &self.pins else {
            return Ok(ServerCertVerified::assertion());
        };
        let got = Fingerprint::of(end_entity);
        if pins.contains(&got) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    got,
                    pinned: pins.clone(),
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
