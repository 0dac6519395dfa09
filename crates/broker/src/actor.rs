//! One task per session: owns the lifecycle (pending → half → active →
//! ended), the timers (attach deadline, idle timeout, maximum duration),
//! starts each side's relay when it attaches, and on the end closes both
//! sides, calls `complete_tunnel` and writes the audit record.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tunnel::{Frame, PeerState};

use crate::broker::Inner;
use crate::hooks::{CompleteTunnelRequest, EdgeCommand, SessionRecord};
use crate::legacy;
use crate::relay::{self, Limits, Link, Out, QueueRx, Queues};
use crate::session::{EndReason, SessionInfo, SessionView, Shared, Side, State, lock};

/// Commands queued to a session actor.
pub(crate) const COMMAND_QUEUE: usize = 8;
/// How long the actor waits for a side's writer to flush CLOSE.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// A request to a session actor.
pub(crate) enum Command {
    /// A side's socket, after its token was accepted; `legacy` for a
    /// ThingWorx edge on `/Thingworx/WSTunnelServer/<tid>`.
    Attach {
        side: Side,
        ws: Box<WebSocket>,
        legacy: bool,
    },
    /// `TunnelCommandFromEdge`, reported by the platform.
    FromEdge(EdgeCommand),
    /// End the session; `done` gets the final view.
    End {
        reason: EndReason,
        done: Option<oneshot::Sender<SessionView>>,
    },
}

pub(crate) struct Actor {
    pub inner: Arc<Inner>,
    pub info: Arc<SessionInfo>,
    pub shared: Arc<Shared>,
    pub commands: mpsc::Receiver<Command>,
    pub queues: [Queues; 2],
    pub rx: [Option<QueueRx>; 2],
}

impl Actor {
    pub(crate) async fn run(mut self) {
        let cfg = &self.inner.config;
        let created = self.info.created_at;
        let attach_deadline = created + cfg.attach_deadline;
        let max_deadline = created + cfg.max_duration;
        let idle = cfg.idle_timeout;
        let (events_tx, mut events) = mpsc::channel::<EndReason>(4);
        let cancel = CancellationToken::new();
        let mut writers: Vec<JoinHandle<()>> = Vec::new();
        let mut waiters = Vec::new();
        let shutdown = self.inner.shutdown.clone();
        let mut legacy_tx: Option<mpsc::Sender<EdgeCommand>> = None;

        let reason = loop {
            let (state, attached) = {
                let s = lock(&self.shared.status);
                (s.state, s.attached)
            };
            let last = self.shared.last_data_ms.load(Ordering::Relaxed);
            let idle_deadline = created + Duration::from_millis(last) + idle;
            tokio::select! {
                _ = shutdown.cancelled() => break EndReason::Shutdown,
                cmd = self.commands.recv() => match cmd {
                    None => break EndReason::Shutdown,
                    Some(Command::End { reason, done }) => {
                        waiters.extend(done);
                        break reason;
                    }
                    Some(Command::Attach { side, ws, legacy }) => {
                        let legacy = legacy.then(|| {
                            let (tx, rx) = mpsc::channel(legacy::EDGE_COMMANDS);
                            legacy_tx = Some(tx);
                            rx
                        });
                        if let Some(w) = self.attach(side, *ws, legacy, &events_tx, &cancel) {
                            writers.push(w);
                        }
                    }
                    Some(Command::FromEdge(EdgeCommand::Cancel)) => {
                        break EndReason::SideLeft {
                            side: Side::Server,
                            detail: "the edge cancelled the tunnel".to_owned(),
                        };
                    }
                    Some(Command::FromEdge(cmd)) => {
                        if let Some(tx) = &legacy_tx {
                            let _ = tx.try_send(cmd);
                        }
                    }
                },
                Some(reason) = events.recv() => break reason,
                _ = sleep_until(attach_deadline), if state != State::Active => {
                    break if attached.contains(&true) {
                        let side = if attached[Side::Client.idx()] { Side::Client } else { Side::Server };
                        EndReason::PeerTimeout(side)
                    } else {
                        EndReason::AttachTimeout
                    };
                }
                _ = sleep_until(idle_deadline), if state == State::Active => {
                    let last = self.shared.last_data_ms.load(Ordering::Relaxed);
                    if Instant::now() >= created + Duration::from_millis(last) + idle {
                        break EndReason::IdleTimeout;
                    }
                }
                _ = sleep_until(max_deadline) => break EndReason::MaxDuration,
            }
        };
        self.finish(reason, cancel, writers, waiters).await;
    }

    /// Start a side's relay. Returns the writer's handle.
    fn attach(
        &mut self,
        side: Side,
        ws: WebSocket,
        legacy: Option<mpsc::Receiver<EdgeCommand>>,
        events: &mpsc::Sender<EndReason>,
        cancel: &CancellationToken,
    ) -> Option<JoinHandle<()>> {
        let Some(rx) = self.rx[side.idx()].take() else {
            tracing::warn!(%side, "second attach for one side ignored");
            return None;
        };
        let now_active = {
            let mut s = lock(&self.shared.status);
            s.attached[side.idx()] = true;
            if s.attached == [true, true] {
                s.state = State::Active;
                s.started = Some(Utc::now());
                true
            } else {
                s.state = State::Half;
                false
            }
        };
        if now_active {
            // The idle clock starts when the session becomes active.
            let ms = u64::try_from(self.info.created_at.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.shared.last_data_ms.store(ms, Ordering::Relaxed);
        }
        let cfg = &self.inner.config;
        let link = Link {
            side,
            shared: self.shared.clone(),
            created_at: self.info.created_at,
            limits: Limits {
                window: cfg.initial_window,
                max_payload: cfg.max_payload,
                max_streams: cfg.max_streams_per_session,
                ping_interval: cfg.ping_interval,
            },
            own: self.queues[side.idx()].clone(),
            peer: self.queues[side.peer().idx()].clone(),
            events: events.clone(),
            cancel: cancel.clone(),
            metrics: self.inner.metrics.clone(),
        };
        let writer = match legacy {
            None => relay::start(ws, rx, link, &self.inner.tracker),
            Some(commands) => {
                let legacy = legacy::Legacy {
                    edge: self.inner.hooks.edge.clone(),
                    thing: self.info.thing.clone(),
                    session: self.info.id.clone(),
                    call_timeout: cfg.edge_call_timeout,
                    commands,
                };
                let writer = legacy::start(ws, rx, link, legacy, &self.inner.tracker);
                let broker = (cfg.initial_window, cfg.max_payload);
                let queues = [&self.queues[0], &self.queues[1]];
                crate::hello::legacy_server(&self.shared, broker, queues);
                writer
            }
        };
        tracing::info!(%side, active = now_active, "side attached");
        if now_active {
            let peer = Frame::Peer {
                state: PeerState::Attached,
            }
            .to_bytes();
            for q in &self.queues {
                let _ = q.ctrl.try_send(Out::Frame(peer.clone()));
            }
        }
        Some(writer)
    }

    async fn finish(
        self,
        reason: EndReason,
        cancel: CancellationToken,
        writers: Vec<JoinHandle<()>>,
        waiters: Vec<oneshot::Sender<SessionView>>,
    ) {
        let ended = Utc::now();
        let (attached, started) = {
            let mut s = lock(&self.shared.status);
            s.state = State::Ended;
            s.ended = Some((ended, reason.clone()));
            (s.attached, s.started)
        };
        tracing::info!(reason = %reason, "session ended");
        // Tell the remaining sides: PEER left (when a side went), then CLOSE.
        let gone = match &reason {
            EndReason::SideLeft { side, .. }
            | EndReason::SideGone(side)
            | EndReason::ProtocolError { side, .. }
            | EndReason::UnsupportedVersion { side, .. } => Some(*side),
            _ => None,
        };
        for side in [Side::Client, Side::Server] {
            if !attached[side.idx()] {
                continue;
            }
            let q = &self.queues[side.idx()].ctrl;
            if gone == Some(side.peer()) {
                let left = Frame::Peer {
                    state: PeerState::Left,
                };
                let _ = timeout(CLOSE_GRACE, q.send(Out::Frame(left.to_bytes()))).await;
            }
            let close = Out::Close {
                code: reason.code(),
                reason: reason.detail(),
            };
            let _ = timeout(CLOSE_GRACE, q.send(close)).await;
        }
        cancel.cancel();
        for mut w in writers {
            if timeout(CLOSE_GRACE, &mut w).await.is_err() {
                w.abort();
            }
        }
        self.inner.remove(&self.info.id);
        self.inner.metrics.session_ended(reason.as_str());

        let complete = CompleteTunnelRequest {
            session_id: self.info.id.clone(),
            thing: self.info.thing.clone(),
            reason: reason.clone(),
        };
        // An edge that refused StartTunnel has nothing to complete.
        if !matches!(reason, EndReason::EdgeRefused(_)) {
            let call = self.inner.hooks.edge.complete_tunnel(complete);
            match timeout(self.inner.config.edge_call_timeout, call).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(%err, "complete_tunnel failed"),
                Err(_) => tracing::warn!("complete_tunnel timed out"),
            }
        }

        let view = self.shared.view(&self.info);
        let record = SessionRecord {
            id: self.info.id.clone(),
            user: self.info.user.clone(),
            thing: self.info.thing.clone(),
            interface: self.info.interface.clone(),
            created: self.info.created,
            started,
            ended,
            bytes_client_to_server: view.bytes_client_to_server,
            bytes_server_to_client: view.bytes_server_to_client,
            streams: view.streams_opened,
            reason: reason.as_str().to_owned(),
            detail: reason.detail(),
            client_address: view.client_address.clone(),
        };
        self.inner.hooks.audit.session_ended(record).await;
        for w in waiters {
            let _ = w.send(view.clone());
        }
    }
}
