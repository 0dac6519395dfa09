//! The tunnel module: the platform's tunnel services (spec/alwayson.md §8.1)
//! for every thing this EMS answers for.
//!
//! - `StartTunnel` with the native `server_url` and `server_token`: check
//!   the target against `tunnel.allowed_targets` and `tunnel.max_concurrent`,
//!   answer at once, then (in a task) attach to the broker's server endpoint
//!   (`Authorization: Bearer`, subprotocol `tether-tunnel.v1`, the uplink's
//!   TLS trust) and run the tunnel driver as the server side: every OPEN is
//!   connected to the target, again checked against the allow-list (a
//!   refused target gets `RESET` with the reason).
//! - `CompleteTunnel`: close that tunnel (`CLOSE` with the platform's reason).
//! - Without the native parameters (a ThingWorx platform), or always with
//!   `tunnel.mode = "legacy"`: the legacy ThingWorx tunnel (see `legacy`):
//!   `/Thingworx/WSTunnelServer/<tid>` with the `appKey` header, base64
//!   text frames, `TunnelCommandToEdge CONNECT/DISCONNECT`,
//!   `TunnelCommandFromEdge CANCEL/DISCONNECT` back to the platform.
//!   `tunnel.mode = "native"` refuses such a request with `0xA1`.
//!
//! Native and legacy tunnels share `tunnel.max_concurrent` and the
//! allow-list. Every tunnel logs why it ended (code, reason, who, bytes).
//! The edge ends a tunnel itself after `idle_timeout` without a byte either
//! way (the smaller of the platform's value and `tunnel.idle_timeout`).
//! `read_timeout` is the ThingWorx socket poll interval: reads here are
//! event driven, so bytes go out as soon as they are read, never later than
//! `read_timeout`.

mod activity;
mod legacy;
mod params;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use alwayson::{Code, InfoTable};
use net::rustls::ClientConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tunnel::driver::{Connector, Refusal, SessionHandle, SessionOptions};
use tunnel::{Mux, Role, close, reset};

use crate::config::{Config, TunnelConfig, TunnelMode};
use crate::jsonform::error_table;
use crate::uplink::Uplink;

pub(crate) use params::StartParams;

/// Deadline of the WebSocket connect to the broker.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the idle watcher looks at the activity clock.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// The live tunnels of this EMS. Cheap to clone.
#[derive(Clone)]
pub struct Tunnels {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: TunnelConfig,
    tls: Arc<ClientConfig>,
    /// How legacy tunnels reach the platform.
    link: legacy::Link,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// tid → the running session (None while it is still attaching).
    live: Mutex<HashMap<String, Live>>,
}

struct Live {
    thing: String,
    handle: Option<SessionHandle>,
    stop: CancellationToken,
    /// Legacy tunnels only.
    legacy: Option<legacy::LiveLegacy>,
}

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnels")
            .field("live", &lock(&self.inner.live).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Answer = (Code, Option<InfoTable>);

fn refuse(code: Code, message: &str) -> Answer {
    (code, Some(error_table(message)))
}

impl Tunnels {
    /// Tunnels under the `tunnel` config group, attaching with `tls` (the
    /// uplink's trust); legacy tunnels attach to the servers of `config`
    /// with its app key and report to the platform through `uplink`.
    pub fn new(
        config: &Config,
        uplink: Uplink,
        tls: Arc<ClientConfig>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Tunnels {
            inner: Arc::new(Inner {
                cfg: config.tunnel.clone(),
                link: legacy::Link::new(config, uplink),
                tls,
                tracker,
                shutdown,
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Answer one tunnel service call on `thing`.
    pub async fn handle(&self, thing: &str, service: &str, params: Option<&InfoTable>) -> Answer {
        match service {
            "StartTunnel" => self.start(thing, params),
            "CompleteTunnel" => self.complete(thing, params),
            "TunnelCommandToEdge" => self.command(thing, params).await,
            other => refuse(Code::NOT_FOUND, &format!("{other} is not a tunnel service")),
        }
    }

    fn start(&self, thing: &str, params: Option<&InfoTable>) -> Answer {
        let p = match StartParams::parse(params) {
            Ok(p) => p,
            Err(e) => return refuse(Code::BAD_REQUEST, &e),
        };
        let native = match (self.inner.cfg.mode, p.native.clone()) {
            (TunnelMode::Legacy, _) => None,
            (_, Some(native)) => Some(native),
            (TunnelMode::Native, None) => {
                return refuse(
                    Code::NOT_IMPLEMENTED,
                    "tunnel.mode is \"native\" and StartTunnel has no server_url/server_token (legacy ThingWorx tunnels are switched off on this edge)",
                );
            }
            (TunnelMode::Auto, None) => None,
        };
        if !self.inner.cfg.allows(&p.host, p.port) {
            tracing::warn!(tid = %p.tid, thing, host = %p.host, port = p.port, "StartTunnel refused: target not in tunnel.allowed_targets");
            return refuse(
                Code::FORBIDDEN,
                &format!(
                    "target {}:{} is not in this edge's tunnel.allowed_targets",
                    p.host, p.port
                ),
            );
        }
        let stop = self.inner.shutdown.child_token();
        {
            let mut live = lock(&self.inner.live);
            if live.contains_key(&p.tid) {
                return refuse(
                    Code::BAD_REQUEST,
                    &format!("tunnel {} already exists", p.tid),
                );
            }
            if live.len() >= self.inner.cfg.max_concurrent {
                return refuse(
                    Code::SERVICE_UNAVAILABLE,
                    &format!(
                        "too many tunnels: tunnel.max_concurrent is {}",
                        self.inner.cfg.max_concurrent
                    ),
                );
            }
            let (legacy, control) = match native {
                Some(_) => (None, None),
                None => {
                    let (l, rx) = legacy::LiveLegacy::new(&p);
                    (Some(l), Some(rx))
                }
            };
            live.insert(
                p.tid.clone(),
                Live {
                    thing: thing.to_owned(),
                    handle: None,
                    stop: stop.clone(),
                    legacy,
                },
            );
            drop(live);
            let mode = if native.is_some() { "native" } else { "legacy" };
            tracing::info!(tid = %p.tid, thing, host = %p.host, port = p.port, mode, "StartTunnel accepted");
            let me = self.clone();
            let thing = thing.to_owned();
            self.inner.tracker.spawn(async move {
                let tid = p.tid.clone();
                let span = tracing::info_span!("tunnel", tid = %tid, thing = %thing, mode);
                let run = async {
                    match (native, control) {
                        (Some(native), _) => me.run(p, native, stop).await,
                        (None, Some(control)) => {
                            me.run_legacy(p, thing.clone(), control, stop).await
                        }
                        (None, None) => {}
                    }
                };
                tracing::Instrument::instrument(run, span).await;
                lock(&me.inner.live).remove(&tid);
            });
        }
        (Code::SUCCESS, None)
    }

    fn complete(&self, thing: &str, params: Option<&InfoTable>) -> Answer {
        let Some(tid) = params::string(params, "tid") else {
            return refuse(Code::BAD_REQUEST, "CompleteTunnel needs tid");
        };
        let reason = params::string(params, "connection")
            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "completed by the platform".to_owned());
        let found = {
            let live = lock(&self.inner.live);
            live.get(&tid)
                .filter(|l| l.thing == thing)
                .map(|l| (l.handle.clone(), l.stop.clone(), l.legacy.clone()))
        };
        match found {
            Some((handle, stop, legacy)) => {
                tracing::info!(%tid, thing, %reason, "CompleteTunnel");
                match handle {
                    _ if legacy.is_some() => {
                        if let Some(l) = legacy {
                            l.complete(reason);
                        }
                        stop.cancel();
                    }
                    Some(h) => {
                        self.inner.tracker.spawn(async move {
                            h.close(close::NORMAL, &reason).await;
                        });
                    }
                    None => stop.cancel(),
                }
            }
            // Already ended on this side: nothing to do.
            None => tracing::debug!(%tid, thing, "CompleteTunnel for an unknown tunnel"),
        }
        (Code::SUCCESS, None)
    }

    async fn run(&self, p: StartParams, native: params::Native, stop: CancellationToken) {
        let auth = format!("Bearer {}", native.token.expose());
        let headers = [
            ("Authorization", auth.as_str()),
            ("Sec-WebSocket-Protocol", tunnel::SUBPROTOCOL),
        ];
        let connect = net::ws::connect_with_response(
            &native.url,
            &headers,
            self.inner.tls.clone(),
            net::ws::WsConfig::bulk(),
            ATTACH_TIMEOUT,
        );
        let ws = tokio::select! {
            _ = stop.cancelled() => {
                tracing::info!("tunnel ended before attaching: completed or shutting down");
                return;
            }
            r = connect => match r {
                Ok((ws, resp)) => {
                    let chosen = resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                    if chosen != Some(tunnel::SUBPROTOCOL) {
                        tracing::warn!("tunnel ended: the platform did not accept the {} subprotocol", tunnel::SUBPROTOCOL);
                        return;
                    }
                    ws
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel ended: cannot attach to the platform's tunnel endpoint");
                    return;
                }
            },
        };
        let mut cfg = tunnel::Config::new(Role::Server);
        cfg.max_payload = p
            .max_payload
            .clamp(tunnel::MIN_WINDOW, tunnel::HARD_MAX_PAYLOAD);
        let mux = match Mux::new(cfg, std::time::Instant::now()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "tunnel ended: bad tunnel settings");
                return;
            }
        };
        let clock = activity::Clock::new();
        let options = SessionOptions {
            connector: Some(self.connector(p.host.clone(), p.port, clock.clone())),
            ..SessionOptions::default()
        };
        let session = tunnel::driver::Session::new(mux, options);
        let handle = session.handle();
        if let Some(l) = lock(&self.inner.live).get_mut(&p.tid) {
            l.handle = Some(handle.clone());
        }
        let idle = self.inner.cfg.idle_timeout.min(p.idle_timeout);
        let watcher = {
            let (handle, clock, stop) = (handle.clone(), clock.clone(), stop.clone());
            tokio::spawn(async move {
                let mut status = handle.status();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        r = status.changed() => if r.is_err() || status.borrow().closed { return },
                        _ = tokio::time::sleep(IDLE_CHECK) => {}
                    }
                    if clock.idle_for() >= idle {
                        tracing::info!(idle_ms = idle.as_millis() as u64, "tunnel idle: closing");
                        handle.close(close::IDLE, "idle timeout on the edge").await;
                        return;
                    }
                }
            })
        };
        tracing::info!("tunnel attached");
        let end = session.run(ws, stop.clone()).await;
        watcher.abort();
        tracing::info!(
            code = ?end.code,
            reason = %end.reason,
            initiator = ?end.initiator,
            stats = ?end.stats,
            "tunnel ended"
        );
    }

    /// Connect each OPEN to the one target of this tunnel, if still allowed.
    fn connector(&self, host: String, port: u16, clock: activity::Clock) -> Connector {
        let inner = self.inner.clone();
        Connector::new(move |label: String| {
            let (inner, host, clock) = (inner.clone(), host.clone(), clock.clone());
            async move {
                if !inner.cfg.allows(&host, port) {
                    tracing::warn!(%label, %host, port, "stream refused: target not in tunnel.allowed_targets");
                    return Err(Refusal::new(
                        reset::NOT_ALLOWED,
                        format!(
                            "target {host}:{port} is not in this edge's tunnel.allowed_targets"
                        ),
                    ));
                }
                let addr = resolve(&host, port).await?;
                let tcp = tunnel::driver::tcp_connect(addr).await?;
                tracing::info!(%label, %addr, "stream connected");
                clock.touch();
                Ok(activity::Counted::new(tcp, clock))
            }
        })
    }
}

async fn resolve(host: &str, port: u16) -> Result<std::net::SocketAddr, Refusal> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Refusal::new(reset::UNREACHABLE, format!("cannot resolve {host}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| Refusal::new(reset::UNREACHABLE, format!("{host} has no address")))
}
