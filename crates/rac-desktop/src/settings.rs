//! The user's settings: `dirs::config_dir()/tether/rac.toml`.
//!
//! ```toml
//! ssh_client = "x-terminal-emulator -e ssh -p {port} {host}"
//! vnc_client = "vncviewer {host}::{port}"
//!
//! [ports]            # local ports for sessions (default: any free port)
//! first = 20000
//! last = 20099
//!
//! [[platform]]       # a trusted platform
//! url = "https://platform.example:8443"
//! pin_sha256 = ["AB:CD:…"]   # empty or absent: the certificate must be CA-valid
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// Largest settings file read.
pub const MAX_SETTINGS_BYTES: u64 = 256 * 1024;
/// Most trusted platforms kept.
pub const MAX_PLATFORMS: usize = 256;

/// Everything in `rac.toml`. Unknown keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Command that opens an SSH client, `{host}` and `{port}` substituted;
    /// split on whitespace, no shell. Default: detected on `PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_client: Option<String>,
    /// Command that opens a VNC viewer (same rules as `ssh_client`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnc_client: Option<String>,
    /// Local port range for sessions; absent: any free port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// Trusted platforms (`[[platform]]` tables).
    #[serde(rename = "platform", skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<TrustedPlatform>,
}

/// An inclusive range of local ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port tried.
    pub first: u16,
    /// Last port tried.
    pub last: u16,
}

/// A platform the user trusts, with optional certificate pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedPlatform {
    /// Base URL; only scheme, host and port count.
    pub url: String,
    /// SHA-256 fingerprints of accepted certificates. Empty: validate the
    /// certificate against the system's CA roots instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pin_sha256: Vec<String>,
}

/// A settings file that cannot be used. `key` names the offending key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The settings file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys (toml's message names the
    /// key and the line).
    #[error("{path}: {message}")]
    Parse {
        /// The settings file.
        path: PathBuf,
        /// toml's message.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The settings file.
        path: PathBuf,
        /// The key, e.g. `platform[1].pin_sha256[0]`.
        key: String,
        /// Why.
        message: String,
    },
}

/// `dirs::config_dir()/tether/rac.toml`, if the platform has a config dir.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("tether").join("rac.toml"))
}

/// `scheme://host:port` of a platform URL, the key platforms are matched by.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Settings {
    /// Read and validate `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        use std::io::Read;
        let io = |source| SettingsError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io(e)),
        };
        let mut text = String::new();
        file.take(MAX_SETTINGS_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_SETTINGS_BYTES {
            return Err(SettingsError::Parse {
                path: path.to_owned(),
                message: format!("larger than {MAX_SETTINGS_BYTES} bytes"),
            });
        }
        Self::parse(&text, path)
    }

    /// Parse and validate a settings text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        let settings: Settings = toml::from_str(text).map_err(|e| SettingsError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        settings.validate(path)?;
        Ok(settings)
    }

    /// Check every value; the error names the key.
    pub fn validate(&self, path: &Path) -> Result<(), SettingsError> {
        let bad = |key: String, message: String| SettingsError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        if let Some(r) = self.ports {
            if r.first == 0 {
                return Err(bad("ports.first".into(), "must be 1..65535".into()));
            }
            if r.first > r.last {
                return Err(bad(
                    "ports.last".into(),
                    format!("{} is below ports.first ({})", r.last, r.first),
                ));
            }
        }
        for (key, cmd) in [
            ("ssh_client", &self.ssh_client),
            ("vnc_client", &self.vnc_client),
        ] {
            if let Some(cmd) = cmd {
                if cmd.split_whitespace().next().is_none() {
                    return Err(bad(key.into(), "is empty".into()));
                }
                if !cmd.contains("{port}") {
                    return Err(bad(key.into(), "must contain {port}".into()));
                }
            }
        }
        if self.platforms.len() > MAX_PLATFORMS {
            return Err(bad(
                "platform".into(),
                format!("more than {MAX_PLATFORMS} entries"),
            ));
        }
        for (i, p) in self.platforms.iter().enumerate() {
            rac::parse_platform(&p.url)
                .map_err(|e| bad(format!("platform[{i}].url"), e.to_string()))?;
            for (j, pin) in p.pin_sha256.iter().enumerate() {
                pin.parse::<net::Fingerprint>()
                    .map_err(|e| bad(format!("platform[{i}].pin_sha256[{j}]"), e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The entry for `platform` (matched by origin), if trusted.
    pub fn platform(&self, platform: &Url) -> Option<&TrustedPlatform> {
        let want = origin(platform);
        self.platforms.iter().find(|p| {
            Url::parse(&p.url)
                .map(|u| origin(&u) == want)
                .unwrap_or(false)
        })
    }

    /// Add or replace the entry of `entry.url`'s origin.
    pub fn trust(&mut self, entry: TrustedPlatform) {
        if let Ok(u) = Url::parse(&entry.url) {
            let want = origin(&u);
            self.platforms.retain(|p| {
                Url::parse(&p.url)
                    .map(|x| origin(&x) != want)
                    .unwrap_or(true)
            });
        }
        self.platforms.push(entry);
    }

    /// Write to `path` (via a temporary file and a rename), creating the
    /// directory.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let io = |source| SettingsError::Io {
            path: path.to_owned(),
            source,
        };
        let text = toml::to_string_pretty(self).map_err(|e| SettingsError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    fn parse(text: &str) -> Result<Settings, SettingsError> {
        Settings::parse(text, Path::new("rac.toml"))
    }

    #[test]
    fn full_file_parses_and_round_trips() {
        let text = format!(
            "ssh_client = \"x-terminal-emulator -e ssh -p {{port}} {{host}}\"\n\
             vnc_client = \"vncviewer {{host}}::{{port}}\"\n\
             [ports]\nfirst = 20000\nlast = 20010\n\
             [[platform]]\nurl = \"https://p.example:8443\"\npin_sha256 = [\"{FP}\"]\n\
             [[platform]]\nurl = \"https://ca.example\"\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(
            s.ports,
            Some(PortRange {
                first: 20000,
                last: 20010
            })
        );
        assert_eq!(s.platforms.len(), 2);
        let u = Url::parse("https://p.example:8443/some/path").unwrap();
        assert_eq!(s.platform(&u).unwrap().pin_sha256, vec![FP.to_owned()]);
        assert!(
            s.platform(&Url::parse("https://p.example:9443").unwrap())
                .is_none()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rac.toml");
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
    }

    #[test]
    fn missing_file_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Settings::load(&dir.path().join("none.toml")).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn errors_name_the_key() {
        for (text, want) in [
            ("colour = 1", "colour"),
            ("[ports]\nfirst = 1\nlast = 2\nstep = 3", "step"),
            ("[ports]\nfirst = 0\nlast = 2", "ports.first"),
            ("[ports]\nfirst = 30\nlast = 2", "ports.last"),
            ("[ports]\nfirst = 70000\nlast = 2", "first"),
            ("ssh_client = \"ssh\"", "ssh_client"),
            ("vnc_client = \"  \"", "vnc_client"),
            ("[[platform]]\nurl = \"ftp://x\"", "platform[0].url"),
            (
                "[[platform]]\nurl = \"https://x\"\n[[platform]]\nurl = \"https://y\"\npin_sha256 = [\"zz\"]",
                "platform[1].pin_sha256[0]",
            ),
            ("[[platform]]\npin_sha256 = []", "url"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("rac.toml:"), "{err}");
        }
    }

    #[test]
    fn trust_replaces_the_same_origin() {
        let mut s = Settings::default();
        s.trust(TrustedPlatform {
            url: "https://p.example:8443".into(),
            pin_sha256: vec![FP.into()],
        });
        s.trust(TrustedPlatform {
            url: "https://p.example:8443/".into(),
            pin_sha256: vec![],
        });
        assert_eq!(s.platforms.len(), 1);
        assert!(s.platforms[0].pin_sha256.is_empty());
    }
}
