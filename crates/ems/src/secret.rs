//! Secrets in `config.json` (`appKey`, passwords, passphrases).
//!
//! A value is either plain text or `enc:v1:<base64(nonce ‖ ciphertext)>`,
//! AES-256-GCM under a 32-byte key kept in a separate key file (64 hex
//! characters), produced by `tether-ems encrypt`. ThingWorx's own `AES:` form
//! uses a key that is not public and cannot be read: such a value is refused
//! with a message saying so.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Prefix of a value encrypted by `tether-ems encrypt`.
pub const ENCRYPTED_PREFIX: &str = "enc:v1:";
/// Prefix of a value encrypted by the ThingWorx EMS (`wsems -encrypt`).
pub const THINGWORX_PREFIX: &str = "AES:";
const NONCE_LEN: usize = 12;

/// A secret string whose `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a plain-text secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: use only where it is sent, never to log.
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

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// A ThingWorx `AES:` value: its key is not public.
    #[error(
        "value is encrypted by the ThingWorx EMS (AES:), whose key is not public; \
         store it in plain text or re-encrypt it with `tether-ems encrypt`"
    )]
    ThingWorxEncrypted,
    /// An `enc:v1:` value but no key file configured.
    #[error("value is encrypted (enc:v1:) but no `secrets_key_file` is configured")]
    NoKey,
    /// The key file cannot be read or is not 64 hex characters.
    #[error("key file {path}: {reason}")]
    BadKeyFile {
        /// The key file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The cipher refused the input (longer than AES-GCM allows).
    #[error("value cannot be encrypted")]
    EncryptFailed,
    /// Not base64, too short, wrong key or tampered with.
    #[error("encrypted value cannot be decrypted (wrong key file or damaged value)")]
    Undecryptable,
}

/// A 256-bit key read from a key file.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> SecretKey {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        SecretKey(key)
    }

    /// Reads a key file: 64 hex characters, surrounding whitespace ignored.
    pub fn load(path: &Path) -> Result<SecretKey, SecretError> {
        let bad = |reason: String| SecretError::BadKeyFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let bytes = hex::decode(text.trim()).map_err(|e| bad(format!("not hex: {e}")))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("must hold 32 bytes (64 hex characters)".into()))?;
        Ok(SecretKey(key))
    }

    /// The key file content (64 hex characters and a newline).
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    /// Encrypts `plain` into the `enc:v1:` form.
    pub fn encrypt(&self, plain: &str) -> Result<String, SecretError> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| SecretError::EncryptFailed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{ENCRYPTED_PREFIX}{}", STANDARD.encode(out)))
    }

    fn decrypt(&self, encoded: &str) -> Result<String, SecretError> {
        let raw = STANDARD
            .decode(encoded.trim())
            .map_err(|_| SecretError::Undecryptable)?;
        if raw.len() <= NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)
    }
}

/// Reads a configured secret value: plain text or `enc:v1:`.
pub fn reveal(value: &str, key: Option<&SecretKey>) -> Result<Secret, SecretError> {
    if let Some(encoded) = value.strip_prefix(ENCRYPTED_PREFIX) {
        let key = key.ok_or(SecretError::NoKey)?;
        return key.decrypt(encoded).map(Secret);
    }
    if value.starts_with(THINGWORX_PREFIX) {
        return Err(SecretError::ThingWorxEncrypted);
    }
    Ok(Secret(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = SecretKey::generate();
        let enc = key.encrypt("d0b0c0a0-1111").unwrap();
        assert!(enc.starts_with(ENCRYPTED_PREFIX));
        assert_eq!(reveal(&enc, Some(&key)).unwrap().expose(), "d0b0c0a0-1111");
        let other = SecretKey::generate();
        assert!(matches!(
            reveal(&enc, Some(&other)),
            Err(SecretError::Undecryptable)
        ));
        assert!(matches!(reveal(&enc, None), Err(SecretError::NoKey)));
        assert!(matches!(
            reveal("AES:xyz", None),
            Err(SecretError::ThingWorxEncrypted)
        ));
        assert_eq!(reveal("plain", None).unwrap().expose(), "plain");
        assert_eq!(format!("{:?}", Secret::new("x")), "***");
    }

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = SecretKey::generate();
        std::fs::write(&path, key.to_file_text()).unwrap();
        let loaded = SecretKey::load(&path).unwrap();
        let enc = key.encrypt("v").unwrap();
        assert_eq!(reveal(&enc, Some(&loaded)).unwrap().expose(), "v");
        std::fs::write(&path, "abcd").unwrap();
        assert!(SecretKey::load(&path).is_err());
    }
}
