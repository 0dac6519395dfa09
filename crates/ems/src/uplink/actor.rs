//! The uplink actor between sessions: waits (back-off, duty-cycle off time),
//! connects with fail-over, and serves edge requests offline meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alwayson::{Message, SESSION_NONE};
use net::rustls::ClientConfig;
use net::ws::{ClientWs, WsConfig};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{Command, Outcome, Uplink, UplinkError};
use crate::config::{Config, ServerAddr};
use crate::dispatch::Dispatcher;
use crate::offline::{OfflineStore, StoreError};
use crate::things::Things;

/// Back-off never grows past this (or `connect_retry_interval` when larger).
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A session shorter than this counts as a failed attempt (no hot reconnect loop).
const MIN_HEALTHY_SESSION: Duration = Duration::from_secs(2);

/// `connect_retries` consecutive attempts failed.
#[derive(Debug, thiserror::Error)]
#[error("gave up connecting after {attempts} attempt(s): {last}")]
pub struct GaveUp {
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub last: String,
}

/// How a session ended.
pub(crate) enum End {
    Shutdown,
    DutyOff,
    Lost(String),
}

pub(crate) struct Actor {
    pub cfg: Arc<Config>,
    pub things: Things,
    pub store: Arc<Mutex<OfflineStore>>,
    pub rx: mpsc::Receiver<Command>,
    pub connected: watch::Sender<bool>,
    pub uplink: Uplink,
    pub dispatcher: Arc<Dispatcher>,
    pub tls: Arc<ClientConfig>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Actor {
    /// Runs until shutdown (Ok) or until `connect_retries` is exhausted (Err).
    pub async fn run(mut self) -> Result<(), GaveUp> {
        let conn = self.cfg.connection.clone();
        let delay = random_upto(conn.max_connect_delay);
        let mut wait_until = Instant::now() + delay;
        let mut failures: u32 = 0;
        loop {
            if !self.idle_until(wait_until).await {
                return Ok(());
            }
            let attempt = match self.connect_serving().await {
                None => return Ok(()),
                Some(r) => r,
            };
            let (ws, server) = match attempt {
                Ok(pair) => pair,
                Err(last) => {
                    failures += 1;
                    if conn.connect_retries.is_some_and(|max| failures > max) {
                        return Err(GaveUp {
                            attempts: failures,
                            last,
                        });
                    }
                    let wait = backoff(conn.connect_retry_interval, failures);
                    tracing::warn!(error = %last, retry_in_ms = wait.as_millis() as u64, "connect failed");
                    wait_until = Instant::now() + wait;
                    continue;
                }
            };
            let started = Instant::now();
            let span = tracing::info_span!("session", server = %format!("{}:{}", server.host, server.port));
            tracing::info!(parent: &span, "connected");
            let end = self.session(ws).instrument(span.clone()).await;
            let _ = self.connected.send(false);
            match end {
                End::Shutdown => return Ok(()),
                End::DutyOff => {
                    failures = 0;
                    let off = conn.duty_cycle.map(|d| d.off).unwrap_or_default();
                    tracing::info!(parent: &span, off_ms = off.as_millis() as u64, "duty cycle: off");
                    wait_until = Instant::now() + off;
                }
                End::Lost(reason) => {
                    if started.elapsed() >= MIN_HEALTHY_SESSION {
                        failures = 0;
                        tracing::warn!(parent: &span, %reason, "connection lost; reconnecting");
                        wait_until = Instant::now();
                    } else {
                        failures += 1;
                        if conn.connect_retries.is_some_and(|max| failures > max) {
                            return Err(GaveUp {
                                attempts: failures,
                                last: reason,
                            });
                        }
                        let wait = backoff(conn.connect_retry_interval, failures);
                        tracing::warn!(parent: &span, %reason, retry_in_ms = wait.as_millis() as u64, "session failed");
                        wait_until = Instant::now() + wait;
                    }
                }
            }
        }
    }

    /// Serves requests offline until `deadline`. False on shutdown.
    async fn idle_until(&mut self, deadline: Instant) -> bool {
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return false,
                _ = tokio::time::sleep_until(deadline) => return true,
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.offline(cmd).await,
                    None => return false,
                },
            }
        }
    }

    /// One connect attempt over every server in order, serving requests offline
    /// meanwhile. None on shutdown.
    async fn connect_serving(&mut self) -> Option<Result<(ClientWs, ServerAddr), String>> {
        let attempt = connect_any(self.cfg.clone(), self.tls.clone());
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                r = &mut attempt => return Some(r),
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.offline(cmd).await,
                    None => return None,
                },
            }
        }
    }

    /// A request while not connected: store it or refuse it.
    pub(crate) async fn offline(&mut self, cmd: Command) {
        let result = self.store_request(&cmd).await;
        let _ = cmd.reply.send(result);
    }

    async fn store_request(&self, cmd: &Command) -> Result<Outcome, UplinkError> {
        if !cmd.storable {
            return Err(UplinkError::NotConnected);
        }
        let msg = Message::request(cmd.code, 0, SESSION_NONE, cmd.body.clone());
        let bytes = msg
            .to_bytes()
            .map_err(|e| UplinkError::Encode(e.to_string()))?;
        if bytes.len() > self.cfg.connection.max_msg_size {
            return Err(UplinkError::Encode(format!(
                "{} bytes exceed ws_connection.max_msg_size",
                bytes.len()
            )));
        }
        let store = self.store.clone();
        let pushed = tokio::task::spawn_blocking(move || {
            store.lock().unwrap_or_else(|p| p.into_inner()).push(bytes)
        })
        .await
        .map_err(|e| UplinkError::Store(e.to_string()))?;
        match pushed {
            Ok(_) => Ok(Outcome::Stored),
            Err(StoreError::Disabled) => Err(UplinkError::NotConnected),
            Err(e @ StoreError::Full { .. }) => Err(UplinkError::StoreFull(e.to_string())),
            Err(e) => Err(UplinkError::Store(e.to_string())),
        }
    }
}

/// Tries each server in order; the first that upgrades wins.
async fn connect_any(
    cfg: Arc<Config>,
    tls: Arc<ClientConfig>,
) -> Result<(ClientWs, ServerAddr), String> {
    let conn = &cfg.connection;
    let mut ws_cfg = WsConfig::small();
    ws_cfg.max_message_size = conn.max_msg_size + 1024;
    ws_cfg.max_frame_size = ws_cfg.max_message_size;
    let frame = conn.max_frame_size.to_string();
    let headers = [
        ("User-Agent", "ThingWorx C SDK"),
        ("Max-Frame-Size", frame.as_str()),
        ("appKey", cfg.app_key.expose()),
    ];
    let mut errors = Vec::new();
    for server in &cfg.servers {
        let url = server_url(conn.tls, server, &cfg.resource);
        match net::ws::connect(&url, &headers, tls.clone(), ws_cfg, conn.connect_timeout).await {
            Ok(ws) => return Ok((ws, server.clone())),
            Err(e) => {
                tracing::debug!(%url, error = %e, "server unreachable");
                errors.push(format!("{}:{}: {e}", server.host, server.port));
            }
        }
    }
    Err(errors.join("; "))
}

fn server_url(tls: bool, server: &ServerAddr, resource: &str) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    let host = if server.host.contains(':') && !server.host.starts_with('[') {
        format!("[{}]", server.host)
    } else {
        server.host.clone()
    };
    format!("{scheme}://{host}:{}{resource}", server.port)
}

/// `interval · 2^(n-1)`, capped, with ±20 % jitter.
pub(crate) fn backoff(interval: Duration, failures: u32) -> Duration {
    let cap = MAX_BACKOFF.max(interval);
    let exp = failures.saturating_sub(1).min(20);
    let base = interval.saturating_mul(1u32 << exp).min(cap);
    let jitter = rand::thread_rng().gen_range(0.8..=1.2);
    base.mul_f64(jitter)
}

fn random_upto(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::thread_rng().gen_range(0..=max.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let i = Duration::from_secs(10);
        let b1 = backoff(i, 1);
        assert!(
            b1 >= Duration::from_secs(8) && b1 <= Duration::from_secs(12),
            "{b1:?}"
        );
        let b3 = backoff(i, 3);
        assert!(
            b3 >= Duration::from_secs(32) && b3 <= Duration::from_secs(48),
            "{b3:?}"
        );
        let b30 = backoff(i, 30);
        assert!(b30 <= Duration::from_secs(360), "{b30:?}");
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(i, 2)).collect();
        assert!(samples.len() > 1, "jitter varies the delay");
    }

    #[test]
    fn urls() {
        let s = ServerAddr {
            host: "::1".into(),
            port: 8443,
        };
        assert_eq!(
            server_url(true, &s, "/Thingworx/WS"),
            "wss://[::1]:8443/Thingworx/WS"
        );
        let s = ServerAddr {
            host: "tw".into(),
            port: 80,
        };
        assert_eq!(
            server_url(false, &s, "/Thingworx/WS"),
            "ws://tw:80/Thingworx/WS"
        );
    }
}
