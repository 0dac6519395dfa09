//! SHA-256 certificate fingerprints in the form openssl prints them.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::TlsError;

/// SHA-256 over a certificate's DER bytes.
///
/// Displays as colon-separated upper-case hex (`AB:CD:…`, 95 characters), the
/// form `openssl x509 -noout -fingerprint -sha256` prints. Parsing accepts
/// that form, plain hex, either case, and an optional `sha256:` or
/// `SHA256 Fingerprint=` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }
}

/// Colon-separated upper-case hex SHA-256 of a DER certificate, like openssl's.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    Fingerprint::of(der).to_string()
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    fn from_str(input: &str) -> Result<Self, TlsError> {
        let bad = |reason| TlsError::BadFingerprint {
            input: input.chars().take(120).collect(),
            reason,
        };
        let mut s = input.trim();
        for prefix in ["sha256 fingerprint=", "sha256:", "sha256="] {
            if s.len() >= prefix.len()
                && s.is_char_boundary(prefix.len())
                && s[..prefix.len()].eq_ignore_ascii_case(prefix)
            {
                s = s[prefix.len()..].trim();
                break;
            }
        }
        if s.len() > 200 {
            return Err(bad("too long"));
        }
        let hex_digits: String = if s.contains(':') {
            let parts: Vec<&str> = s.split(':').collect();
            if parts.iter().any(|p| p.len() != 2) {
                return Err(bad(
                    "colon-separated form needs exactly two hex digits per byte",
                ));
            }
            parts.concat()
        } else {
            s.to_owned()
        };
        if hex_digits.len() != 64 {
            return Err(bad("a SHA-256 fingerprint is 32 bytes (64 hex digits)"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hex_digits, &mut out).map_err(|_| bad("not hexadecimal"))?;
        Ok(Fingerprint(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_openssl_style() {
        let fp = Fingerprint::of(b"abc");
        let s = fp.to_string();
        // SHA-256("abc") starts with BA7816BF.
        assert!(s.starts_with("BA:78:16:BF:"), "{s}");
        assert_eq!(s.len(), 32 * 3 - 1);
        assert_eq!(fingerprint_sha256(b"abc"), s);
    }

    #[test]
    fn parses_all_accepted_forms() {
        let fp = Fingerprint::of(b"abc");
        let colon = fp.to_string();
        let plain = hex::encode(fp.0);
        for text in [
            colon.clone(),
            colon.to_lowercase(),
            plain.clone(),
            format!("sha256:{plain}"),
            format!("SHA256 Fingerprint={colon}"),
            format!("  {colon}\n"),
        ] {
            assert_eq!(text.parse::<Fingerprint>().unwrap(), fp, "{text}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        for text in [
            "",
            "AB:CD",
            "zz",
            &"A".repeat(64 * 4),
            "ABC:D",
            &"g".repeat(64),
        ] {
            let err = text.parse::<Fingerprint>().unwrap_err();
            assert!(
                err.to_string().contains("invalid SHA-256 fingerprint"),
                "{err}"
            );
        }
    }
}
