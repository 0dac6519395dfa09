//! Which TLS trust to use for a platform: the settings decide; a platform
//! not in the settings is never trusted silently, the user is asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use url::Url;

use crate::settings::{Settings, TrustedPlatform, origin};

/// A platform that is not in the settings yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlatform {
    /// `scheme://host:port`.
    pub origin: String,
    /// SHA-256 of its certificate (`None` for plain `http`).
    pub fingerprint: Option<net::Fingerprint>,
    /// The certificate validates against the CA roots for this host name.
    pub ca_valid: bool,
}

impl UnknownPlatform {
    /// The settings entry that trusts this platform: pinned to the seen
    /// certificate unless it is CA-valid (pins would break on renewal).
    pub fn entry(&self) -> TrustedPlatform {
        TrustedPlatform {
            url: self.origin.clone(),
            pin_sha256: match (self.ca_valid, self.fingerprint) {
                (false, Some(fp)) => vec![fp.to_string()],
                _ => Vec::new(),
            },
        }
    }

    /// One line for a menu entry: `Trust platform X (fingerprint …)?`.
    pub fn question(&self) -> String {
        match (&self.fingerprint, self.ca_valid) {
            (Some(fp), false) => format!("Trust platform {} (fingerprint {fp})?", self.origin),
            (Some(_), true) => format!("Trust platform {} (CA-signed certificate)?", self.origin),
            (None, _) => format!(
                "Trust platform {} (plain HTTP, not encrypted)?",
                self.origin
            ),
        }
    }

    /// What the CLI says when it refuses an unknown platform.
    pub fn cli_refusal(&self, settings_path: &str) -> String {
        let how = match self.fingerprint {
            Some(fp) if !self.ca_valid => format!(
                "If this is your platform's certificate, run again with --pin-sha256 {fp}\n\
                 or add to {settings_path}:\n\n[[platform]]\nurl = \"{}\"\npin_sha256 = [\"{fp}\"]",
                self.origin
            ),
            _ => format!(
                "If you trust it, add to {settings_path}:\n\n[[platform]]\nurl = \"{}\"",
                self.origin
            ),
        };
        let seen = match self.fingerprint {
            Some(fp) => format!("its certificate's SHA-256 fingerprint is {fp}"),
            None => "it is plain HTTP".to_owned(),
        };
        format!(
            "the platform {} is not trusted yet; {seen}.\n{how}",
            self.origin
        )
    }
}

/// The decision for one platform.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Trusted by the settings: connect with this trust.
    Use(net::Trust),
    /// Not in the settings: ask the user first.
    Ask(UnknownPlatform),
}

/// Why a platform could not even be probed.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {origin}: {reason}")]
pub struct ProbeError {
    /// `scheme://host:port`.
    pub origin: String,
    /// Why.
    pub reason: String,
}

/// Decide the trust for `platform`: pinned or CA-validated from the
/// settings, else probe its certificate and ask.
pub async fn decide(
    settings: &Settings,
    platform: &Url,
    timeout: Duration,
) -> Result<Decision, ProbeError> {
    if let Some(entry) = settings.platform(platform) {
        if entry.pin_sha256.is_empty() {
            return Ok(Decision::Use(net::Trust::default()));
        }
        return net::Trust::pinned_from_strs(&entry.pin_sha256)
            .map(Decision::Use)
            .map_err(|e| ProbeError {
                origin: origin(platform),
                reason: e.to_string(),
            });
    }
    probe(platform, timeout).await.map(Decision::Ask)
}

/// Connect to `platform` and look at its certificate without trusting it.
pub async fn probe(platform: &Url, timeout: Duration) -> Result<UnknownPlatform, ProbeError> {
    let origin = origin(platform);
    let fail = |reason: String| ProbeError {
        origin: origin.clone(),
        reason,
    };
    if platform.scheme() != "https" {
        return Ok(UnknownPlatform {
            origin,
            fingerprint: None,
            ca_valid: false,
        });
    }
    let host = platform
        .host_str()
        .ok_or_else(|| fail("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = platform.port_or_known_default().unwrap_or(443);
    let handshake = |trust: net::Trust| {
        let host = host.clone();
        async move {
            let cfg = net::tls::client_config(&trust, &[net::tls::ALPN_HTTP1])
                .map_err(|e| e.to_string())?;
            let tcp = tokio::time::timeout(
                timeout,
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            .map_err(|_| format!("no TCP connection within {timeout:?}"))?
            .map_err(|e| e.to_string())?;
            net::tls::connect(cfg, &host, tcp, timeout)
                .await
                .map_err(|e| e.to_string())
        }
    };
    // Look at the certificate without trusting it: a verifier that only
    // records it (the handshake signature is still checked).
    let seen = Arc::new(Recorder::default());
    let cfg = rustls::ClientConfig::builder_with_provider(net::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(seen.clone())
        .with_no_client_auth();
    let tcp = tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| fail(format!("no TCP connection within {timeout:?}")))?
    .map_err(|e| fail(e.to_string()))?;
    let tls = net::tls::connect(Arc::new(cfg), &host, tcp, timeout)
        .await
        .map_err(|e| fail(e.to_string()))?;
    drop(tls);
    let leaf = seen
        .leaf
        .lock()
        .map_err(|_| fail("poisoned".into()))?
        .clone()
        .ok_or_else(|| fail("the server sent no certificate".into()))?;
    let fingerprint = net::Fingerprint::of(&leaf);
    let ca_valid = handshake(net::Trust::default()).await.is_ok();
    Ok(UnknownPlatform {
        origin,
        fingerprint: Some(fingerprint),
        ca_valid,
    })
}

/// Records the server's end-entity certificate and accepts it; only used
/// to read the fingerprint, never to carry a session.
#[derive(Debug, Default)]
struct Recorder {
    leaf: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut leaf) = self.leaf.lock() {
            *leaf = Some(end_entity.as_ref().to_vec());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &net::tls::provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &net::tls::provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        net::tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
