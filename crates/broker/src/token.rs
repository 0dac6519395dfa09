//! Side tokens and client nonces: 256 bits of randomness, shown once,
//! stored only as a SHA-256 hash, compared in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Longest token text accepted from a request (a real one is 43 chars).
pub const MAX_TOKEN_LEN: usize = 128;

/// A secret string (token, nonce, password) whose `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret text, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A fresh 256-bit random token, base64url without padding (43 chars).
pub fn generate() -> Secret {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    Secret(URL_SAFE_NO_PAD.encode(raw))
}

/// The stored form of a token.
#[derive(Clone)]
pub(crate) struct TokenHash([u8; 32]);

impl TokenHash {
    pub(crate) fn of(token: &Secret) -> Self {
        Self(Sha256::digest(token.expose().as_bytes()).into())
    }

    /// Constant-time comparison of `presented` with the stored hash.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        if presented.is_empty() || presented.len() > MAX_TOKEN_LEN {
            return false;
        }
        let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.0.ct_eq(&h))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_checked() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        let h = TokenHash::of(&a);
        assert!(h.matches(a.expose()));
        assert!(!h.matches(b.expose()));
        assert!(!h.matches(""));
        assert!(!h.matches(&"x".repeat(MAX_TOKEN_LEN + 1)));
        assert_eq!(format!("{a:?}"), "***");
        assert!(!format!("{h:?}").contains(a.expose()));
    }
}
