//! The tunnel engine of the desktop app: an actor on a tokio runtime that
//! runs `rac` sessions. The UI sends [`Command`]s and receives [`Event`]s;
//! the two never share state. [`spawn_thread`] runs it on its own thread so
//! the UI thread can run the GTK loop.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rac::{Join, LaunchUrl, Notice, RunOptions};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::settings::{Settings, origin};
use crate::trust::{Decision, UnknownPlatform, decide};

/// Capacity of the command and event channels.
pub const CHANNEL: usize = 64;
/// Most sessions at once.
pub const MAX_SESSIONS: usize = 32;
/// Most launch URLs waiting for a trust answer.
pub const MAX_PENDING: usize = 16;

/// What the UI asks the engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Join the session of a launch URL.
    Open(LaunchUrl),
    /// The user trusts this platform (origin): save it, run what waits on it.
    Trust(String),
    /// The user does not trust it: drop what waits on it.
    Distrust(String),
    /// End session `id`.
    End(u64),
    /// End everything and stop.
    Quit,
}

/// A running session as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Engine-local id (menu entries, [`Command::End`]).
    pub id: u64,
    /// The platform's session id.
    pub session: String,
    /// `scheme://host:port` of the platform.
    pub platform: String,
    /// The local address to connect to.
    pub addr: SocketAddr,
    /// The device, when the platform said (its nonce trade does).
    pub thing: Option<String>,
    /// The device's interface, e.g. `ssh`, when the platform said.
    pub interface: Option<String>,
}

impl SessionInfo {
    /// `device / interface → 127.0.0.1:P`, or `session S @ host → 127.0.0.1:P`
    /// when the platform did not name the device.
    pub fn label(&self) -> String {
        match (&self.thing, &self.interface) {
            (Some(t), Some(i)) => format!("{t} / {i} \u{2192} {}", self.addr),
            _ => format!(
                "session {} @ {} \u{2192} {}",
                self.session, self.platform, self.addr
            ),
        }
    }

    /// `device / interface` or `session S`, for notifications.
    pub fn name(&self) -> String {
        match (&self.thing, &self.interface) {
            (Some(t), Some(i)) => format!("{t} / {i}"),
            _ => format!("session {}", self.session),
        }
    }
}

/// What the engine tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A session's local port is open.
    Ready(SessionInfo),
    /// The device is attached (`true`) or left (`false`).
    Peer { id: u64, attached: bool },
    /// A session that was [`Event::Ready`] (or starting) ended; `why` is one line.
    Ended { id: u64, why: String, clean: bool },
    /// A launch could not start (`why` is one line for the user).
    Failed { why: String },
    /// A platform not in the settings: ask the user.
    AskTrust(UnknownPlatform),
    /// A platform was added to the settings.
    Trusted(String),
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The user's settings.
    pub settings: Settings,
    /// Where to save trusted platforms (`None`: keep them in memory only).
    pub settings_path: Option<PathBuf>,
    /// Options of every run (trust is replaced per platform).
    pub run: RunOptions,
}

enum Internal {
    Decided(LaunchUrl, Result<Decision, String>),
    Done(u64),
}

struct Engine {
    cfg: EngineConfig,
    events: mpsc::Sender<Event>,
    internal: mpsc::Sender<Internal>,
    sessions: HashMap<u64, CancellationToken>,
    pending: HashMap<String, (UnknownPlatform, Vec<LaunchUrl>)>,
    next_id: u64,
    shutdown: CancellationToken,
}

/// Run the engine until [`Command::Quit`], the command channel closes or
/// `shutdown`. Every session is ended on the way out.
pub async fn run(
    cfg: EngineConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let (internal, mut internal_rx) = mpsc::channel(CHANNEL);
    let mut e = Engine {
        cfg,
        events,
        internal,
        sessions: HashMap::new(),
        pending: HashMap::new(),
        next_id: 1,
        shutdown: shutdown.child_token(),
    };
    loop {
        tokio::select! {
            c = commands.recv() => match c {
                None | Some(Command::Quit) => break,
                Some(c) => e.command(c).await,
            },
            Some(i) = internal_rx.recv() => e.internal(i).await,
            _ = shutdown.cancelled() => break,
        }
    }
    e.shutdown.cancel();
    // Let the session tasks report their ends (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !e.sessions.is_empty() {
        match tokio::time::timeout_at(deadline, internal_rx.recv()).await {
            Ok(Some(Internal::Done(id))) => {
                e.sessions.remove(&id);
            }
            Ok(Some(Internal::Decided(..))) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

impl Engine {
    async fn emit(&self, ev: Event) {
        if self.events.send(ev).await.is_err() {
            warn!("the UI is gone; event dropped");
        }
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::Open(launch) => {
                let settings = self.cfg.settings.clone();
                let timeout = self.cfg.run.http_timeout;
                let tx = self.internal.clone();
                tokio::spawn(async move {
                    let d = decide(&settings, &launch.platform, timeout)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Internal::Decided(launch, d)).await;
                });
            }
            Command::Trust(o) => {
                let Some((unknown, waiting)) = self.pending.remove(&o) else {
                    return;
                };
                self.cfg.settings.trust(unknown.entry());
                if let Some(path) = &self.cfg.settings_path {
                    let (s, p) = (self.cfg.settings.clone(), path.clone());
                    let saved = tokio::task::spawn_blocking(move || s.save(&p)).await;
                    match saved {
                        Ok(Ok(())) => info!(platform = %o, "trusted and saved"),
                        Ok(Err(e)) => warn!(error = %e, "could not save the settings"),
                        Err(e) => warn!(error = %e, "saving the settings panicked"),
                    }
                }
                self.emit(Event::Trusted(o)).await;
                for launch in waiting {
                    Box::pin(self.command(Command::Open(launch))).await;
                }
            }
            Command::Distrust(o) => {
                self.pending.remove(&o);
            }
            Command::End(id) => {
                if let Some(stop) = self.sessions.get(&id) {
                    stop.cancel();
                }
            }
            Command::Quit => self.shutdown.cancel(),
        }
    }

    async fn internal(&mut self, i: Internal) {
        match i {
            Internal::Done(id) => {
                self.sessions.remove(&id);
            }
            Internal::Decided(launch, Err(why)) => {
                let why = format!("session {}: {why}", launch.session);
                self.emit(Event::Failed { why }).await
            }
            Internal::Decided(launch, Ok(Decision::Ask(unknown))) => {
                let o = unknown.origin.clone();
                if !self.pending.contains_key(&o) && self.pending.len() >= MAX_PENDING {
                    let why = format!("too many platforms waiting for a trust answer; {o} dropped");
                    self.emit(Event::Failed { why }).await;
                    return;
                }
                let slot = self
                    .pending
                    .entry(o)
                    .or_insert_with(|| (unknown.clone(), Vec::new()));
                slot.0 = unknown.clone();
                if slot.1.len() < MAX_PENDING {
                    slot.1.push(launch);
                }
                self.emit(Event::AskTrust(unknown)).await;
            }
            Internal::Decided(launch, Ok(Decision::Use(trust))) => self.start(launch, trust).await,
        }
    }

    async fn start(&mut self, launch: LaunchUrl, trust: net::Trust) {
        if self.sessions.len() >= MAX_SESSIONS {
            let why = format!("already {MAX_SESSIONS} sessions; end one first");
            return self.emit(Event::Failed { why }).await;
        }
        let listener = match bind_in_range(self.cfg.settings.ports).await {
            Ok(l) => l,
            Err(why) => return self.emit(Event::Failed { why }).await,
        };
        let id = self.next_id;
        self.next_id += 1;
        let stop = self.shutdown.child_token();
        self.sessions.insert(id, stop.clone());
        let opts = RunOptions {
            trust,
            ..self.cfg.run.clone()
        };
        let (events, internal) = (self.events.clone(), self.internal.clone());
        let span = info_span!("session", id, session = %launch.session);
        tokio::spawn(
            async move {
                run_session(id, launch, listener, opts, stop, &events).await;
                let _ = internal.send(Internal::Done(id)).await;
            }
            .instrument(span),
        );
    }
}

/// Bind 127.0.0.1 on the first free port of `range`, or any free port.
async fn bind_in_range(range: Option<crate::settings::PortRange>) -> Result<TcpListener, String> {
    let Some(r) = range else {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| format!("cannot open a local port: {e}"));
    };
    for port in r.first..=r.last {
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return Ok(l);
        }
    }
    Err(format!("no free local port in {}-{}", r.first, r.last))
}

async fn run_session(
    id: u64,
    launch: LaunchUrl,
    listener: TcpListener,
    opts: RunOptions,
    stop: CancellationToken,
    events: &mpsc::Sender<Event>,
) {
    // Notices come from a sync callback: a small bounded queue, forwarded
    // in order by a task (peer flapping beyond it is dropped, harmless).
    let (ntx, mut nrx) = mpsc::channel::<Notice>(32);
    let notify: rac::Notify = Arc::new(move |n| {
        if ntx.try_send(n).is_err() {
            warn!("notice queue full; notice dropped");
        }
    });
    let mut info = SessionInfo {
        id,
        thing: None,
        interface: None,
        session: launch.session.clone(),
        platform: origin(&launch.platform),
        addr: match listener.local_addr() {
            Ok(a) => a,
            Err(e) => {
                let why = format!("local port: {e}");
                let _ = events.send(Event::Failed { why }).await;
                return;
            }
        },
    };
    let fwd_events = events.clone();
    let forward = tokio::spawn(async move {
        while let Some(n) = nrx.recv().await {
            let ev = match n {
                Notice::Joined {
                    thing, interface, ..
                } => {
                    info.thing = thing;
                    info.interface = interface;
                    continue;
                }
                Notice::Listening(_) => Event::Ready(info.clone()),
                Notice::PeerAttached => Event::Peer { id, attached: true },
                Notice::PeerLeft => Event::Peer {
                    id,
                    attached: false,
                },
                _ => continue,
            };
            if fwd_events.send(ev).await.is_err() {
                return;
            }
        }
    });
    let result = rac::listen_on(Join::Launch(launch), listener, opts, stop, notify).await;
    // The notify closure (and its sender) is dropped with listen_on's
    // future, so the forwarder drains and stops.
    let _ = forward.await;
    let ev = match result {
        Ok(ended) => Event::Ended {
            id,
            clean: ended.exit_code() == rac::EXIT_OK,
            why: ended.message(),
        },
        Err(e) => Event::Ended {
            id,
            clean: false,
            why: format!("could not start: {e}"),
        },
    };
    let _ = events.send(ev).await;
}

/// The UI side of a running engine thread.
#[derive(Debug)]
pub struct EngineHandle {
    /// Send commands (`try_send` from the UI thread; never blocks).
    pub commands: mpsc::Sender<Command>,
    /// Receive events (`try_recv` from the UI loop).
    pub events: mpsc::Receiver<Event>,
    /// Cancels the engine and the instance server.
    pub shutdown: CancellationToken,
    /// The engine thread.
    pub thread: std::thread::JoinHandle<()>,
}

/// Start a tokio runtime on a new thread running the engine and, if given,
/// the single-instance server feeding it.
pub fn spawn_thread(
    cfg: EngineConfig,
    instance: Option<crate::instance::InstanceServer>,
) -> std::io::Result<EngineHandle> {
    let (ctx, crx) = mpsc::channel(CHANNEL);
    let (etx, erx) = mpsc::channel(CHANNEL);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rac-engine")
        .build()?;
    let hand = ctx.clone();
    let thread = std::thread::Builder::new()
        .name("rac-engine".into())
        .spawn(move || {
            rt.block_on(async move {
                if let Some(server) = instance {
                    let accept = move |url: String| {
                        let launch = LaunchUrl::parse(&url).map_err(|e| e.to_string())?;
                        hand.try_send(Command::Open(launch))
                            .map_err(|_| "busy, try again".to_owned())
                    };
                    let s = stop.clone();
                    tokio::spawn(async move {
                        if let Err(e) = server.serve(accept, s).await {
                            warn!(error = %e, "instance socket stopped");
                        }
                    });
                }
                run(cfg, crx, etx, stop).await;
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        })?;
    Ok(EngineHandle {
        commands: ctx,
        events: erx,
        shutdown,
        thread,
    })
}
