//! Secrets: a `Secret` newtype that never prints, password hashing (argon2),
//! app-key generation and hashing (sha256 of a 256-bit random key), and
//! random tokens.
//!
//! Argon2 is slow on purpose: call `hash_password` / `verify_password` from
//! `spawn_blocking` in async code.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// A string that must not reach logs: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; only for hashing, comparing or sending.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Hashing or verifying a password failed for a reason other than a mismatch.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Argon2id hash in PHC string form. Blocking (tens of milliseconds).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC `hash`. Blocking. A malformed hash is a
/// mismatch.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// An argon2 hash of a random password, computed once (blocking), used to
/// spend the same time on unknown user names as on known ones.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token(16)).unwrap_or_default())
}

/// `n` random bytes from the OS generator, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A fresh app key: `tk_` + 256 random bits.
pub fn generate_app_key() -> Secret {
    Secret(format!("tk_{}", random_token(32)))
}

/// A generated password for a first administrator (128 random bits).
pub fn generate_password() -> Secret {
    Secret(random_token(16))
}

/// The stored form of an app key: sha256, hex. Keys are high-entropy, so a
/// fast hash is enough and allows an indexed lookup.
pub fn hash_app_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Constant-time comparison of two strings.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn password_round_trip() {
        let h = hash_password("pw").unwrap();
        assert!(verify_password("pw", &h));
        assert!(!verify_password("pX", &h));
        assert!(!verify_password("pw", "not a hash"));
    }

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = generate_app_key();
        let b = generate_app_key();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("tk_") && a.expose().len() == 46);
        assert_eq!(hash_app_key("x"), hash_app_key("x"));
        assert_eq!(hash_app_key("x").len(), 64);
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
    }
}
