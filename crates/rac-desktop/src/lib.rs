//! Desktop side of the Remote Access Client (`tether-rac tray`). The tunnel
//! work stays in `rac` (GUI-free); this crate adds what a desktop needs.
//!
//! - `settings`: [`Settings`], `rac.toml` in the user's config directory.
//! - `trust`: [`decide`] which TLS trust a platform gets; unknown platforms
//!   are asked about ([`UnknownPlatform`]), never trusted silently.
//! - `instance`: single instance over a Unix socket ([`InstanceServer`],
//!   [`hand_over`]).
//! - `engine`: the session actor on a tokio runtime, [`Command`]s in,
//!   [`Event`]s out; [`spawn_thread`] runs it off the UI thread.
//! - `launchers`: SSH / VNC clients from the settings or `PATH` ([`Clients`]).
//! - `notify`: desktop notifications over D-Bus ([`Notifier`]).
//! - `icons`: the two tray icons drawn in code.
//! - `tray` (feature `tray`): the GTK tray icon and menu, [`run_tray`].

mod engine;
pub mod icons;
mod instance;
mod launchers;
mod notify;
mod settings;
#[cfg(feature = "tray")]
mod tray;
mod trust;

pub use engine::{
    CHANNEL, Command, EngineConfig, EngineHandle, Event, MAX_PENDING, MAX_SESSIONS, SessionInfo,
    run, spawn_thread,
};
pub use instance::{
    HANDOVER_TIMEOUT, InstanceError, InstanceServer, MAX_LINE, SOCKET_NAME, default_socket_path,
    hand_over, socket_dir,
};
pub use launchers::{Clients, command_for, launch, which};
pub use notify::Notifier;
pub use settings::{
    MAX_SETTINGS_BYTES, PortRange, Settings, SettingsError, TrustedPlatform, default_path, origin,
};
#[cfg(feature = "tray")]
pub use tray::{TrayError, run_tray};
pub use trust::{Decision, ProbeError, UnknownPlatform, decide, probe};

/// What `tether-rac open` should do with a launch URL when a tray app may
/// be running: `Ok(true)` if it was handed over (exit), `Ok(false)` if no
/// instance runs (handle it here), `Err` if the instance refused it.
/// Creates no directory and no file.
pub fn try_hand_over(url: &str) -> Result<bool, InstanceError> {
    let dir = match dirs::runtime_dir() {
        Some(d) => d,
        None => match dirs::cache_dir() {
            Some(c) => c.join("tether").join("run"),
            None => return Ok(false),
        },
    };
    let path = dir.join(SOCKET_NAME);
    if !path.exists() {
        return Ok(false);
    }
    match hand_over(&path, url, HANDOVER_TIMEOUT) {
        Ok(()) => Ok(true),
        Err(InstanceError::NotRunning(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The trust the CLI uses for `platform` when no `--pin-sha256` or
/// `--insecure` is given: the settings' entry if there is one; else CA
/// validation when the certificate is CA-valid (or the URL is plain HTTP);
/// else a refusal with the fingerprint telling how to pin (the CLI never
/// asks and never trusts a self-signed certificate silently). A platform
/// that cannot be probed gets CA validation: the run then reports the
/// unreachable platform with its own error and exit code.
pub async fn cli_trust(
    settings: &Settings,
    platform: &url::Url,
    timeout: std::time::Duration,
) -> Result<net::Trust, String> {
    let shown = default_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "rac.toml".into());
    match decide(settings, platform, timeout).await {
        Ok(Decision::Use(t)) => Ok(t),
        Ok(Decision::Ask(u)) if u.ca_valid || u.fingerprint.is_none() => Ok(net::Trust::default()),
        Ok(Decision::Ask(u)) => Err(u.cli_refusal(&shown)),
        Err(e) => {
            tracing::debug!(error = %e, "probe failed; validating as usual");
            Ok(net::Trust::default())
        }
    }
}
