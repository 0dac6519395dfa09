//! Remote Access Client engine (no GUI): joins a session, opens a local
//! port, pipes bytes. `apps/tether-rac` is a thin CLI over it.
//!
//! - `launch`: [`LaunchUrl`], the `tether://open?...` URL from the web page.
//! - `platform`: [`Platform`], the session API (nonce trade, creation with
//!   [`Credentials`]).
//! - `client`: [`Tunnel`], attach to the client endpoint and run a local
//!   listener ([`Tunnel::serve`]) or one stdio stream ([`Tunnel::pipe`]).
//! - `run`: the flows end to end: [`listen`] (open/connect) and [`stdio`].
//! - `error`: [`RacError`] and the exit codes.

mod client;
mod error;
mod launch;
mod platform;
mod run;

pub use client::{
    ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PING_INTERVAL, Ended, SUBPROTOCOL, Tunnel,
    tls_config,
};
pub use error::{
    EXIT_ENDED, EXIT_LOST, EXIT_OK, EXIT_OSERR, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE,
    RacError,
};
pub use launch::{LaunchUrl, valid_session_id};
pub use net::Trust;
pub use platform::{Credentials, Joined, Platform, SessionTarget};
pub use run::{Join, Notice, Notify, RunOptions, listen, listen_on, stdio};

/// Parse a platform base URL: `http` or `https`, a host, no query.
pub fn parse_platform(text: &str) -> Result<url::Url, RacError> {
    let bad = |why: String| RacError::Usage(format!("platform URL {text:?}: {why}"));
    let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http:// or https://".into()));
    }
    if url.host_str().is_none() || url.query().is_some() || !url.username().is_empty() {
        return Err(bad("needs a host and no query or user info".into()));
    }
    Ok(url)
}
