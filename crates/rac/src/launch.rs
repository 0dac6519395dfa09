//! The `tether://open?platform=...&session=...&nonce=...` launch URL the
//! platform's web page hands to the RAC.

use std::fmt;

use url::Url;

use crate::error::RacError;

/// Longest launch URL accepted.
pub const MAX_LAUNCH_URL: usize = 4096;
/// Longest session id accepted.
pub const MAX_SESSION_ID: usize = 64;

/// A parsed launch URL.
#[derive(Clone, PartialEq, Eq)]
pub struct LaunchUrl {
    /// The platform's base URL (`https://host:port`).
    pub platform: Url,
    /// Session id.
    pub session: String,
    /// The single-use nonce to trade for the client token.
    pub nonce: String,
}

impl fmt::Debug for LaunchUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchUrl")
            .field("platform", &self.platform.as_str())
            .field("session", &self.session)
            .field("nonce", &"***")
            .finish()
    }
}

/// A session id as it may appear in a URL path: letters, digits and `-`.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SESSION_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl LaunchUrl {
    /// Parse and check a launch URL.
    pub fn parse(text: &str) -> Result<Self, RacError> {
        let bad = |why: &str| RacError::BadLaunchUrl(why.to_owned());
        if text.len() > MAX_LAUNCH_URL {
            return Err(bad("longer than 4096 characters"));
        }
        let url = Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "tether" || url.host_str() != Some("open") {
            return Err(bad("must start with tether://open?"));
        }
        let (mut platform, mut session, mut nonce) = (None, None, None);
        for (k, v) in url.query_pairs() {
            let slot = match k.as_ref() {
                "platform" => &mut platform,
                "session" => &mut session,
                "nonce" => &mut nonce,
                _ => continue,
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(bad(&format!("{k} appears twice")));
            }
        }
        let platform = platform.ok_or_else(|| bad("platform is missing"))?;
        let platform = crate::parse_platform(&platform)?;
        let session = session.ok_or_else(|| bad("session is missing"))?;
        if !valid_session_id(&session) {
            return Err(bad("session is not a valid id"));
        }
        let nonce = nonce.ok_or_else(|| bad("nonce is missing"))?;
        if nonce.is_empty() || nonce.len() > 128 {
            return Err(bad("nonce is not valid"));
        }
        Ok(Self {
            platform,
            session,
            nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_platform_format() {
        let l = LaunchUrl::parse(
            "tether://open?platform=https%3A%2F%2Fp.example%3A8443&session=0b1e-42&nonce=abc_-1",
        )
        .unwrap();
        assert_eq!(l.platform.as_str(), "https://p.example:8443/");
        assert_eq!(l.session, "0b1e-42");
        assert_eq!(l.nonce, "abc_-1");
        assert!(!format!("{l:?}").contains("abc_-1"));
    }

    #[test]
    fn rejects_bad_urls() {
        for (u, why) in [
            ("http://open?platform=x", "tether://open"),
            ("tether://open?session=a&nonce=b", "platform is missing"),
            (
                "tether://open?platform=https://p&session=../x&nonce=b",
                "not a valid id",
            ),
            (
                "tether://open?platform=https://p&session=a&session=b&nonce=c",
                "twice",
            ),
            ("tether://open?platform=ftp://p&session=a&nonce=c", "http"),
            (
                "tether://open?platform=https://p&session=a",
                "nonce is missing",
            ),
        ] {
            let err = LaunchUrl::parse(u).unwrap_err().to_string();
            assert!(err.contains(why), "{u}: {err}");
        }
    }
}
