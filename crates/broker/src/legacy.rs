//! The legacy ThingWorx server side (spec/alwayson.md §8, spec/tunnel.md
//! "Legacy ThingWorx tunnel"): an edge that does not speak the native
//! protocol attaches to `/Thingworx/WSTunnelServer/<tid>` and carries the
//! bytes of one TCP connection as base64 text frames. The broker maps the
//! client's first stream onto it (`TunnelCommandToEdge CONNECT` /
//! `DISCONNECT`), refuses concurrent streams with RESET (busy), and does the
//! flow control the legacy edge lacks: client DATA is granted back (WINDOW)
//! once written to the edge's socket, and edge bytes go to the client only
//! within the credit the client granted.
//!
//! Ordering contract for edges: the edge's frames are read and forwarded
//! strictly in order, and a WebSocket ping is answered (tungstenite queues
//! the pong while reading) only after every frame before it was forwarded.
//! An edge that pings after its last frame and sends `TunnelCommandFromEdge
//! DISCONNECT` (over AlwaysOn) after the pong therefore loses no bytes; the
//! Tether EMS does so. tests/legacy.rs checks it (without the ping round
//! trip that test loses bytes).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout};
use tunnel::{Frame, StreamId, reset};

use crate::hooks::{EdgeCommand, EdgeControl, TunnelCommand, TunnelCommandRequest};
use crate::relay::{Link, MAX_WS_CLOSE_REASON, Out, QueueRx, clamp};
use crate::session::{EndReason, Side, lock};

/// Raw bytes per text frame towards the edge: 8 KiB once base64-encoded,
/// within every ThingWorx edge's message limit.
pub(crate) const LEGACY_CHUNK: usize = 6 * 1024;
/// Largest text message accepted from a legacy edge.
pub(crate) const LEGACY_MAX_MESSAGE: usize = 256 * 1024;
/// Edge commands queued from the platform.
pub(crate) const EDGE_COMMANDS: usize = 8;

/// The one stream mapped onto the edge's TCP connection.
#[derive(Debug, Clone, Copy)]
struct Current {
    id: u32,
    /// CONNECT succeeded and OPEN_OK went to the client.
    ready: bool,
}

struct Ctx {
    link: Link,
    edge: Arc<dyn EdgeControl>,
    thing: String,
    session: String,
    call_timeout: Duration,
    current: Mutex<Option<Current>>,
    /// Woken when the client grants credit or the stream becomes ready.
    wake: Notify,
}

/// What the actor needs to start a legacy server side.
pub(crate) struct Legacy {
    pub edge: Arc<dyn EdgeControl>,
    pub thing: String,
    pub session: String,
    pub call_timeout: Duration,
    pub commands: mpsc::Receiver<EdgeCommand>,
}

/// Start the reader and writer of a legacy edge. Returns the writer.
pub(crate) fn start(
    ws: WebSocket,
    rx: QueueRx,
    link: Link,
    legacy: Legacy,
    tracker: &tokio_util::task::TaskTracker,
) -> tokio::task::JoinHandle<()> {
    let (sink, stream) = ws.split();
    let ctx = Arc::new(Ctx {
        link,
        edge: legacy.edge,
        thing: legacy.thing,
        session: legacy.session,
        call_timeout: legacy.call_timeout,
        current: Mutex::new(None),
        wake: Notify::new(),
    });
    let span = tracing::info_span!("side", side = "server", legacy = true);
    tracker.spawn(tracing::Instrument::instrument(
        read_loop(stream, ctx.clone()),
        span.clone(),
    ));
    tracker.spawn(tracing::Instrument::instrument(
        write_loop(sink, rx, ctx, legacy.commands),
        span,
    ))
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: QueueRx,
    ctx: Arc<Ctx>,
    mut commands: mpsc::Receiver<EdgeCommand>,
) {
    let ping_interval = ctx.link.limits.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cancel = ctx.link.cancel.clone();
    loop {
        // Every branch is cancel-safe (mpsc `recv`, `cancelled`, `tick`).
        let result = tokio::select! {
            biased;
            out = rx.ctrl.recv() => match out {
                Some(Out::Close { code, reason }) => {
                    let frame = CloseFrame {
                        code,
                        reason: clamp(&reason, MAX_WS_CLOSE_REASON).to_owned().into(),
                    };
                    let _ = timeout(Duration::from_secs(2), sink.send(Message::Close(Some(frame)))).await;
                    return;
                }
                // HELLO, PEER and PONG are native frames: not for this edge.
                Some(Out::Frame(_)) => Ok(()),
                None => return,
            },
            _ = cancel.cancelled() => return,
            cmd = commands.recv() => match cmd {
                Some(EdgeCommand::Disconnect) => ctx.edge_disconnected().await,
                // CANCEL ends the session in the actor.
                Some(EdgeCommand::Cancel) | None => Ok(()),
            },
            data = rx.data.recv() => match data {
                Some(b) => {
                    ctx.link.shared.queued[Side::Server.idx()].fetch_sub(b.len(), Ordering::Relaxed);
                    ctx.on_client_frame(&mut sink, b).await
                }
                None => return,
            },
            _ = ping.tick() => ctx.send(&mut sink, Message::Ping(Bytes::new())).await,
        };
        if let Err(reason) = result {
            if !cancel.is_cancelled() {
                let _ = ctx.link.events.send(reason).await;
            }
            return;
        }
    }
}

impl Ctx {
    async fn send(
        &self,
        sink: &mut SplitSink<WebSocket, Message>,
        msg: Message,
    ) -> Result<(), EndReason> {
        match timeout(self.link.limits.ping_interval * 2, sink.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.link.left(&format!("write failed: {err}"))),
            Err(_) => Err(EndReason::SideGone(Side::Server)),
        }
    }

    async fn command(&self, command: TunnelCommand) -> Result<(), String> {
        let req = TunnelCommandRequest {
            session_id: self.session.clone(),
            thing: self.thing.clone(),
            command,
        };
        match timeout(self.call_timeout, self.edge.tunnel_command(req)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("the edge did not answer in time".to_owned()),
        }
    }

    fn current(&self) -> Option<Current> {
        *lock(&self.current)
    }

    /// A frame to the client, ahead of queued data.
    async fn send_client_ctrl(&self, frame: Frame) {
        let _ = self.link.peer.ctrl.send(Out::Frame(frame.to_bytes())).await;
    }

    async fn refuse(&self, id: u32, code: u16, reason: &str) {
        let _ = lock(&self.link.shared.streams).reset(id);
        if let Some(stream) = StreamId::new(id) {
            let reason = tunnel::clamp_text(reason).to_owned();
            self.send_client_ctrl(Frame::Reset {
                stream,
                code,
                reason,
            })
            .await;
        }
    }

    /// A frame from the client (already checked by its reader).
    async fn on_client_frame(
        &self,
        sink: &mut SplitSink<WebSocket, Message>,
        msg: Bytes,
    ) -> Result<(), EndReason> {
        let Ok(frame) = Frame::decode(msg) else {
            return Ok(());
        };
        let current = self.current().map(|c| c.id);
        match frame {
            Frame::Open { stream, .. } => {
                let id = stream.get();
                if current.is_some() {
                    self.refuse(id, reset::BUSY, "the edge allows one connection at a time")
                        .await;
                    return Ok(());
                }
                *lock(&self.current) = Some(Current { id, ready: false });
                match self.command(TunnelCommand::Connect).await {
                    Ok(()) => {
                        let _ = lock(&self.link.shared.streams).open_ok(Side::Server, id);
                        self.send_client_ctrl(Frame::OpenOk { stream }).await;
                        *lock(&self.current) = Some(Current { id, ready: true });
                        self.wake.notify_one();
                    }
                    Err(why) => {
                        *lock(&self.current) = None;
                        self.refuse(id, reset::UNREACHABLE, &why).await;
                    }
                }
            }
            Frame::Data { stream, payload } if current == Some(stream.get()) => {
                let len = payload.len();
                for chunk in payload.chunks(LEGACY_CHUNK) {
                    self.send(sink, Message::Text(STANDARD.encode(chunk).into()))
                        .await?;
                }
                // Written to the edge's socket: grant it back.
                let increment = u32::try_from(len).unwrap_or(u32::MAX);
                let _ =
                    lock(&self.link.shared.streams).window(Side::Server, stream.get(), increment);
                self.send_client_ctrl(Frame::Window { stream, increment })
                    .await;
            }
            Frame::Fin { stream } if current == Some(stream.get()) => {
                *lock(&self.current) = None;
                if let Err(why) = self.command(TunnelCommand::Disconnect).await {
                    tracing::debug!(%why, "DISCONNECT failed");
                }
                self.fin_to_client(stream).await?;
            }
            Frame::Reset { stream, .. } if current == Some(stream.get()) => {
                *lock(&self.current) = None;
                if let Err(why) = self.command(TunnelCommand::Disconnect).await {
                    tracing::debug!(%why, "DISCONNECT failed");
                }
            }
            Frame::Window { .. } => self.wake.notify_one(),
            _ => {}
        }
        Ok(())
    }

    /// FIN to the client unless the edge side of the stream already sent one.
    async fn fin_to_client(&self, stream: StreamId) -> Result<(), EndReason> {
        let send = {
            let mut t = lock(&self.link.shared.streams);
            if t.credit(Side::Server, stream.get()).is_some()
                && !t.finished(Side::Server, stream.get())
            {
                let _ = t.fin(Side::Server, stream.get());
                true
            } else {
                false
            }
        };
        if send {
            self.link.forward(Frame::Fin { stream }.to_bytes()).await?;
        }
        Ok(())
    }

    /// `TunnelCommandFromEdge DISCONNECT`: the edge's socket closed.
    async fn edge_disconnected(&self) -> Result<(), EndReason> {
        let Some(c) = lock(&self.current).take() else {
            return Ok(());
        };
        match StreamId::new(c.id) {
            Some(stream) => self.fin_to_client(stream).await,
            None => Ok(()),
        }
    }

    /// Bytes from the edge: DATA to the client within its credit.
    async fn on_edge_bytes(&self, mut rest: Bytes) -> Result<(), EndReason> {
        let max = self.link.limits.max_payload as usize;
        while !rest.is_empty() {
            let (id, take) = loop {
                let woken = self.wake.notified();
                let ready = match self.current() {
                    // No connection: the bytes have nowhere to go.
                    None => return Ok(()),
                    Some(c) if !c.ready => None,
                    Some(c) => match lock(&self.link.shared.streams).credit(Side::Server, c.id) {
                        None => return Ok(()),
                        Some(0) => None,
                        Some(k) => Some((
                            c.id,
                            rest.len().min(max).min(usize::try_from(k).unwrap_or(max)),
                        )),
                    },
                };
                if let Some(r) = ready {
                    break r;
                }
                tokio::select! {
                    _ = self.link.cancel.cancelled() => return Ok(()),
                    _ = woken => {}
                }
            };
            let chunk = rest.split_to(take);
            let len = chunk.len() as u64;
            if lock(&self.link.shared.streams)
                .data(Side::Server, id, len)
                .is_err()
            {
                return Ok(());
            }
            self.link.shared.bytes[Side::Server.idx()].fetch_add(len, Ordering::Relaxed);
            self.link.metrics.bytes[Side::Server.idx()].fetch_add(len, Ordering::Relaxed);
            let now_ms =
                u64::try_from(self.link.created_at.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.link
                .shared
                .last_data_ms
                .fetch_max(now_ms, Ordering::Relaxed);
            if let Some(stream) = StreamId::new(id) {
                let frame = Frame::Data {
                    stream,
                    payload: chunk,
                };
                self.link.forward(frame.to_bytes()).await?;
            }
        }
        Ok(())
    }
}

async fn read_loop(mut stream: SplitStream<WebSocket>, ctx: Arc<Ctx>) {
    let silence = ctx.link.limits.ping_interval * 2;
    let reason = loop {
        let next = tokio::select! {
            _ = ctx.link.cancel.cancelled() => return,
            r = timeout(silence, stream.next()) => r,
        };
        let msg = match next {
            Err(_) => break EndReason::SideGone(Side::Server),
            Ok(None) => break ctx.link.left("connection closed"),
            Ok(Some(Err(err))) => break ctx.link.left(&format!("read failed: {err}")),
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Text(t) => match STANDARD.decode(t.as_str().trim()) {
                Ok(bytes) => {
                    if let Err(reason) = ctx.on_edge_bytes(Bytes::from(bytes)).await {
                        break reason;
                    }
                }
                Err(_) => break ctx.link.protocol("legacy tunnel text frame is not base64"),
            },
            Message::Binary(_) => break ctx.link.protocol("binary message on a legacy tunnel"),
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(c) => {
                let detail = c.map_or_else(
                    || "closed the connection".to_owned(),
                    |c| format!("closed the connection ({} {})", c.code, c.reason),
                );
                break ctx.link.left(&detail);
            }
        }
    };
    if !ctx.link.cancel.is_cancelled() {
        let _ = ctx.link.events.send(reason).await;
    }
}
