//! Which TLS trust to use for a platform: the settings decide; a platform
//! not in the settings is never trusted silently, the user is asked.

use std::time::Duration;

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
    let tls = handshake(net::Trust::InsecureAllowSelfSigned)
        .await
        .map_err(fail)?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| fail("the server sent no certificate".into()))?;
    let fingerprint = net::Fingerprint::of(leaf.as_ref());
    drop(tls);
    let ca_valid = handshake(net::Trust::default()).await.is_ok();
    Ok(UnknownPlatform {
        origin,
        fingerprint: Some(fingerprint),
        ca_valid,
    })
}
