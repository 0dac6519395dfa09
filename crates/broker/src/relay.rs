//! The data path of one side: a reader task that checks each frame and
//! forwards it to the peer's queue as the same `Bytes` it arrived in (DATA
//! payloads are never copied or re-encoded), and a writer task that drains
//! this side's queues onto its socket and pings it. The writer feeds
//! whatever is queued (up to 512 KiB) and flushes once per burst, so bulk
//! data reaches TLS and the socket in large writes.
//!
//! Per direction the broker holds at most `queue_messages` frames, and per
//! stream no more than the window: the broker tracks every stream's credit
//! each way and ends the session if a side sends DATA beyond it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tunnel::{Frame, Kind, PROTOCOL_VERSION, peek_header};

use crate::metrics::Metrics;
use crate::session::{EndReason, Shared, Side, lock};
use crate::streams::{Route, Streams};

/// Control frames queued towards one side (HELLO, PEER, PONG, RESET, CLOSE).
pub(crate) const CTRL_QUEUE: usize = 16;
/// Bytes a writer hands the WebSocket before it flushes (see
/// `Writer::write_batch`).
const WRITE_BATCH: usize = 512 * 1024;
/// A WebSocket close reason is at most 123 bytes.
pub(crate) const MAX_WS_CLOSE_REASON: usize = 123;

/// Something to write to a side.
#[derive(Debug)]
pub(crate) enum Out {
    /// An encoded frame.
    Frame(Bytes),
    /// Send CLOSE with this code and reason, close the socket, stop.
    Close { code: u16, reason: String },
}

/// The sending ends of one side's queues.
#[derive(Debug, Clone)]
pub(crate) struct Queues {
    pub ctrl: mpsc::Sender<Out>,
    pub data: mpsc::Sender<Bytes>,
}

/// The receiving ends, handed to the writer when the side attaches.
#[derive(Debug)]
pub(crate) struct QueueRx {
    pub ctrl: mpsc::Receiver<Out>,
    pub data: mpsc::Receiver<Bytes>,
}

pub(crate) fn queues(data_messages: usize) -> (Queues, QueueRx) {
    let (ctrl_tx, ctrl_rx) = mpsc::channel(CTRL_QUEUE);
    let (data_tx, data_rx) = mpsc::channel(data_messages);
    (
        Queues {
            ctrl: ctrl_tx,
            data: data_tx,
        },
        QueueRx {
            ctrl: ctrl_rx,
            data: data_rx,
        },
    )
}

/// Session limits the relay enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub window: u32,
    pub max_payload: u32,
    pub max_streams: usize,
    pub ping_interval: Duration,
}

/// Everything one side's tasks need.
pub(crate) struct Link {
    pub side: Side,
    pub shared: Arc<Shared>,
    pub created_at: Instant,
    pub limits: Limits,
    pub own: Queues,
    pub peer: Queues,
    pub events: mpsc::Sender<EndReason>,
    pub cancel: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// Start the reader and writer of a freshly attached side. Returns the
/// writer's handle (the actor waits for it to flush CLOSE).
pub(crate) fn start(
    ws: WebSocket,
    rx: QueueRx,
    link: Link,
    tracker: &tokio_util::task::TaskTracker,
) -> tokio::task::JoinHandle<()> {
    let (sink, stream) = ws.split();
    let writer = Writer {
        side: link.side,
        shared: link.shared.clone(),
        events: link.events.clone(),
        cancel: link.cancel.clone(),
        ping_interval: link.limits.ping_interval,
    };
    let span = tracing::info_span!("side", side = %link.side);
    tracker.spawn(tracing::Instrument::instrument(
        read_loop(stream, link),
        span.clone(),
    ));
    tracker.spawn(tracing::Instrument::instrument(writer.run(sink, rx), span))
}

struct Writer {
    side: Side,
    shared: Arc<Shared>,
    events: mpsc::Sender<EndReason>,
    cancel: CancellationToken,
    ping_interval: Duration,
}

/// What the writer does with the next item of its queues.
enum Next {
    Send(Bytes),
    Close { code: u16, reason: String },
    Stop,
}

impl Writer {
    async fn run(self, mut sink: SplitSink<WebSocket, Message>, mut rx: QueueRx) {
        let write_deadline = self.ping_interval * 2;
        let mut ping =
            tokio::time::interval_at(Instant::now() + self.ping_interval, self.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut opaque: u64 = 0;
        let mut next: Option<Message> = None;
        // A CLOSE met while batching: sent once the batch is flushed.
        let mut close: Option<(u16, String)> = None;
        loop {
            if let Some(msg) = next.take() {
                let batch = self.write_batch(&mut sink, msg, &mut rx, &mut close);
                match timeout(write_deadline, batch).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        self.ended(EndReason::SideLeft {
                            side: self.side,
                            detail: format!("write failed: {err}"),
                        })
                        .await;
                        return;
                    }
                    Err(_) => {
                        self.ended(EndReason::SideGone(self.side)).await;
                        return;
                    }
                }
            }
            if let Some((code, reason)) = close.take() {
                self.close(&mut sink, code, reason).await;
                return;
            }
            // Every branch is cancel-safe (mpsc `recv`, `cancelled`,
            // `Interval::tick`): a message is either taken whole or left in
            // its queue. Control frames go first, so CLOSE overtakes data.
            tokio::select! {
                biased;
                out = rx.ctrl.recv() => match out {
                    Some(Out::Frame(b)) => next = Some(Message::Binary(b)),
                    Some(Out::Close { code, reason }) => {
                        self.close(&mut sink, code, reason).await;
                        return;
                    }
                    None => return,
                },
                _ = self.cancel.cancelled() => return,
                data = rx.data.recv() => match data {
                    Some(b) => {
                        self.shared.queued[self.side.idx()].fetch_sub(b.len(), Ordering::Relaxed);
                        next = Some(Message::Binary(b));
                    }
                    None => return,
                },
                _ = ping.tick() => {
                    opaque = opaque.wrapping_add(1);
                    next = Some(Message::Binary(Frame::Ping { opaque }.to_bytes()));
                }
            }
        }
    }

    /// Write `first` and whatever is already queued (control frames first,
    /// at most [`WRITE_BATCH`] bytes), then flush once: one flush per burst
    /// instead of one per frame, so the TLS layer and the socket see large
    /// writes under bulk load, while a lone frame still goes out at once.
    async fn write_batch(
        &self,
        sink: &mut SplitSink<WebSocket, Message>,
        first: Message,
        rx: &mut QueueRx,
        close: &mut Option<(u16, String)>,
    ) -> Result<(), axum::Error> {
        let mut written = match &first {
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        sink.feed(first).await?;
        while written < WRITE_BATCH && close.is_none() {
            let frame = match self.try_next(rx) {
                Next::Send(b) => b,
                Next::Close { code, reason } => {
                    *close = Some((code, reason));
                    break;
                }
                Next::Stop => break,
            };
            written += frame.len();
            sink.feed(Message::Binary(frame)).await?;
        }
        sink.flush().await
    }

    /// The next queued item without waiting: a control frame before data.
    fn try_next(&self, rx: &mut QueueRx) -> Next {
        match rx.ctrl.try_recv() {
            Ok(Out::Frame(b)) => return Next::Send(b),
            Ok(Out::Close { code, reason }) => return Next::Close { code, reason },
            Err(_) => {}
        }
        match rx.data.try_recv() {
            Ok(b) => {
                self.shared.queued[self.side.idx()].fetch_sub(b.len(), Ordering::Relaxed);
                Next::Send(b)
            }
            Err(_) => Next::Stop,
        }
    }

    async fn close(&self, sink: &mut SplitSink<WebSocket, Message>, code: u16, reason: String) {
        let reason = tunnel::clamp_text(&reason).to_owned();
        let frame = Frame::Close {
            code,
            reason: reason.clone(),
        }
        .to_bytes();
        let ws_reason = clamp(&reason, MAX_WS_CLOSE_REASON).to_owned();
        let deadline = Duration::from_secs(2).min(self.ping_interval);
        let _ = timeout(deadline, async {
            sink.send(Message::Binary(frame)).await?;
            sink.send(Message::Close(Some(CloseFrame {
                code,
                reason: ws_reason.into(),
            })))
            .await
        })
        .await;
    }

    async fn ended(&self, reason: EndReason) {
        if !self.cancel.is_cancelled() {
            let _ = self.events.send(reason).await;
        }
    }
}

pub(crate) fn clamp(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

async fn read_loop(mut stream: SplitStream<WebSocket>, link: Link) {
    let silence = link.limits.ping_interval * 2;
    let mut hello_seen = false;
    let reason = loop {
        // `StreamExt::next` is cancel-safe: a timeout or cancellation loses
        // no message.
        let next = tokio::select! {
            _ = link.cancel.cancelled() => return,
            r = timeout(silence, stream.next()) => r,
        };
        let msg = match next {
            Err(_) => break EndReason::SideGone(link.side),
            Ok(None) => {
                break link.left("connection closed");
            }
            Ok(Some(Err(err))) => break link.left(&format!("read failed: {err}")),
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Binary(b) => {
                if let Err(reason) = link.on_frame(b, &mut hello_seen).await {
                    break reason;
                }
            }
            Message::Text(_) => {
                break link.protocol("text message: tether-tunnel.v1 uses binary frames");
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(c) => {
                let detail = c.map_or_else(
                    || "closed the connection".to_owned(),
                    |c| format!("closed the connection ({} {})", c.code, c.reason),
                );
                break link.left(&detail);
            }
        }
    };
    if !link.cancel.is_cancelled() {
        tracing::debug!(reason = %reason, "side reader ended");
        let _ = link.events.send(reason).await;
    }
}

impl Link {
    pub(crate) fn left(&self, detail: &str) -> EndReason {
        EndReason::SideLeft {
            side: self.side,
            detail: detail.to_owned(),
        }
    }

    pub(crate) fn protocol(&self, detail: &str) -> EndReason {
        self.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
        EndReason::ProtocolError {
            side: self.side,
            detail: detail.to_owned(),
        }
    }

    /// Check one frame, update the stream table and counters, forward it.
    async fn on_frame(&self, msg: Bytes, hello_seen: &mut bool) -> Result<(), EndReason> {
        let h = peek_header(&msg).map_err(|e| self.protocol(&e.to_string()))?;
        if h.body_len > self.limits.max_payload as usize {
            return Err(self.protocol(&format!(
                "{} frame of {} bytes exceeds max_payload {}",
                h.kind, h.body_len, self.limits.max_payload
            )));
        }
        if !*hello_seen && h.kind != Kind::Hello {
            return Err(self.protocol(&format!("first frame is {}, not HELLO", h.kind)));
        }
        let me = self.side.idx();
        let (side, id) = (self.side, h.stream);
        let route = match h.kind {
            Kind::Data => {
                let len = h.body_len as u64;
                let route = self.streams(|t| t.data(side, id, len))?;
                if route == Route::Forward {
                    self.shared.bytes[me].fetch_add(len, Ordering::Relaxed);
                    self.metrics.bytes[me].fetch_add(len, Ordering::Relaxed);
                    let now_ms =
                        u64::try_from(self.created_at.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.shared
                        .last_data_ms
                        .fetch_max(now_ms, Ordering::Relaxed);
                }
                route
            }
            Kind::Window => match self.decode(msg.clone())? {
                Frame::Window { increment, .. } => {
                    self.streams(|t| t.window(side, id, increment))?
                }
                _ => Route::Drop,
            },
            Kind::Open => {
                self.decode(msg.clone())?;
                match self.streams(|t| t.open(side, id))? {
                    Route::Refuse => {
                        self.refuse_open(id).await;
                        Route::Drop
                    }
                    other => {
                        self.shared.streams_opened.fetch_add(1, Ordering::Relaxed);
                        self.metrics.streams_opened.fetch_add(1, Ordering::Relaxed);
                        other
                    }
                }
            }
            Kind::OpenOk => self.streams(|t| t.open_ok(side, id))?,
            Kind::Fin => self.streams(|t| t.fin(side, id))?,
            Kind::Reset => {
                self.decode(msg.clone())?;
                self.streams(|t| t.reset(id))?
            }
            Kind::Hello => {
                if *hello_seen {
                    return Err(self.protocol("second HELLO"));
                }
                if let Frame::Hello(hello) = self.decode(msg.clone())? {
                    if hello.version != PROTOCOL_VERSION {
                        return Err(EndReason::UnsupportedVersion {
                            side: self.side,
                            version: hello.version,
                        });
                    }
                    if hello.initial_window < 1024 || hello.max_payload < 1024 {
                        return Err(self.protocol("HELLO window or max_payload below 1024"));
                    }
                    let queues = match self.side {
                        Side::Client => [&self.own, &self.peer],
                        Side::Server => [&self.peer, &self.own],
                    };
                    let broker = (self.limits.window, self.limits.max_payload);
                    crate::hello::offered(&self.shared, self.side, &hello, broker, queues);
                }
                *hello_seen = true;
                Route::Drop
            }
            Kind::Ping => {
                if let Frame::Ping { opaque } = self.decode(msg.clone())? {
                    // A side that does not read its socket misses a PONG:
                    // never wait for it.
                    let _ = self
                        .own
                        .ctrl
                        .try_send(Out::Frame(Frame::Pong { opaque }.to_bytes()));
                }
                Route::Drop
            }
            Kind::Pong => Route::Drop,
            Kind::Peer => return Err(self.protocol("PEER is sent by the broker only")),
            Kind::Close => {
                let detail = match self.decode(msg.clone())? {
                    Frame::Close { code, reason } if reason.is_empty() => {
                        format!("CLOSE {code}")
                    }
                    Frame::Close { code, reason } => format!("CLOSE {code}: {reason}"),
                    _ => "CLOSE".to_owned(),
                };
                return Err(self.left(&detail));
            }
        };
        match route {
            Route::Forward => self.forward(msg).await,
            Route::Drop | Route::Refuse => Ok(()),
        }
    }

    fn decode(&self, msg: Bytes) -> Result<Frame, EndReason> {
        Frame::decode_with_limit(msg, self.limits.max_payload)
            .map_err(|e| self.protocol(&e.to_string()))
    }

    /// Run a stream-table check under the lock; a violation ends the session.
    fn streams(
        &self,
        f: impl FnOnce(&mut Streams) -> Result<Route, crate::streams::Violation>,
    ) -> Result<Route, EndReason> {
        let r = f(&mut lock(&self.shared.streams));
        r.map_err(|v| self.protocol(&v))
    }

    /// Answer an OPEN over the stream limit with RESET (busy).
    async fn refuse_open(&self, id: u32) {
        if let Some(stream) = tunnel::StreamId::new(id) {
            let reset = Frame::Reset {
                stream,
                code: tunnel::reset::BUSY,
                reason: format!(
                    "too many streams in this session (limit {})",
                    self.limits.max_streams
                ),
            };
            let _ = self.own.ctrl.send(Out::Frame(reset.to_bytes())).await;
        }
    }

    /// Queue `msg` for the peer, waiting while its queue is full (this is
    /// the backpressure that bounds the broker's memory).
    pub(crate) async fn forward(&self, msg: Bytes) -> Result<(), EndReason> {
        let peer = self.side.peer().idx();
        let len = msg.len();
        let now = self.shared.queued[peer].fetch_add(len, Ordering::Relaxed) + len;
        self.shared.queued_max[peer].fetch_max(now, Ordering::Relaxed);
        if self.peer.data.send(msg).await.is_err() {
            self.shared.queued[peer].fetch_sub(len, Ordering::Relaxed);
            return Err(EndReason::SideLeft {
                side: self.side.peer(),
                detail: "gone".to_owned(),
            });
        }
        Ok(())
    }
}
