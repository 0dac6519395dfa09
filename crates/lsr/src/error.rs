//! Error types of the LSR.

use std::path::PathBuf;

/// A problem in `config.lua` or in a template it names. `tether-lsr` exits with status 64.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid Lua or failed while running.
    #[error("{path}: {message}")]
    Lua {
        /// The file.
        path: PathBuf,
        /// The Lua error.
        message: String,
    },
    /// A key has a value that cannot be used.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key, e.g. `scripts.rap_port` or `scripts.Pump1.template`.
        key: String,
        /// Why it was refused.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// An error that stops the LSR.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad configuration or template (exit status 64).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client towards the EMS could not be built.
    #[error("EMS client: {0}")]
    Client(String),
    /// A thing's Lua thread could not be started.
    #[error("thing {thing}: {reason}")]
    Thing {
        /// The thing.
        thing: String,
        /// Why.
        reason: String,
    },
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Server(#[from] std::io::Error),
}
