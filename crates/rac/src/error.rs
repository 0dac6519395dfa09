//! Errors of the RAC and the process exit codes they map to.

/// Exit status: the session ended because we or the user ended it.
pub const EXIT_OK: u8 = 0;
/// Exit status: the platform or the other side ended the session (idle,
/// maximum duration, the edge left, ...).
pub const EXIT_ENDED: u8 = 3;
/// Exit status: the platform refused (bad credentials, token, nonce,
/// not allowed, unknown thing).
pub const EXIT_REFUSED: u8 = 4;
/// Exit status: the connection to the platform was lost, or the platform
/// or edge stopped answering.
pub const EXIT_LOST: u8 = 5;
/// Exit status: bad arguments or configuration (sysexits `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Exit status: the platform could not be reached (sysexits `EX_UNAVAILABLE`).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit status: a local resource failed, e.g. the port is taken
/// (sysexits `EX_OSERR`).
pub const EXIT_OSERR: u8 = 71;

/// Why the RAC could not start or run a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RacError {
    /// The launch URL is malformed.
    #[error("bad launch URL: {0}")]
    BadLaunchUrl(String),
    /// A bad argument or setting.
    #[error("{0}")]
    Usage(String),
    /// TLS settings could not be built.
    #[error("TLS: {0}")]
    Tls(#[from] net::TlsError),
    /// The platform answered with an error status.
    #[error("the platform refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The platform's message.
        message: String,
    },
    /// The platform could not be reached or answered nonsense.
    #[error("cannot reach the platform: {0}")]
    Unreachable(String),
    /// A local socket failed.
    #[error("local socket: {0}")]
    Io(#[from] std::io::Error),
}

impl RacError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RacError::BadLaunchUrl(_) | RacError::Usage(_) | RacError::Tls(_) => EXIT_USAGE,
            RacError::Refused { status, .. } if (400..500).contains(status) => EXIT_REFUSED,
            RacError::Refused { .. } | RacError::Unreachable(_) => EXIT_UNAVAILABLE,
            RacError::Io(_) => EXIT_OSERR,
        }
    }
}
