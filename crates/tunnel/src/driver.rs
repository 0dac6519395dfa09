//! Async driver (feature `tokio`): runs a [`Mux`] over a tokio-tungstenite
//! WebSocket and pipes each stream to a socket. Used by the RAC (client side)
//! and the EMS tunnel module (server side).
//!
//! ```text
//!            ┌──────────── session task (owns the Mux) ─────────────┐
//! WebSocket ─┤ read: handle_message   timers   commands from pipes  ├─ writer task ─► WebSocket
//!            └──┬───────────────────────────────────────▲───────────┘
//!               │ Inbound (data, FIN, RESET)             │ Command (data, FIN, consumed)
//!           pipe task per stream: socket ⇄ stream, reads only with credit
//! ```
//!
//! - Client: [`Session::new`] with a client [`Mux`], keep a
//!   [`SessionHandle`], run [`Session::run`]; [`serve_listener`] accepts
//!   local TCP connections and [`SessionHandle::pipe`]s each into a stream.
//! - Server: [`SessionOptions::connector`] is called for every OPEN with the
//!   label; it returns a connected socket (OPEN_OK, then bytes flow) or a
//!   [`Refusal`] (RESET with its code and reason). [`tcp_connect`] maps
//!   connect errors to RESET codes.
//!
//! Flow control end to end: a pipe reads from its socket only as many bytes
//! as the stream's credit (a semaphore counting bytes), and reports
//! "consumed" only after `write_all` to its socket returned, which
//! is when the mux grants WINDOW. Memory per stream is thus bounded by the
//! window in both directions.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt, StreamExt};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::{
    Event, Initiator, Mux, MuxError, Negotiated, PeerState, Stats, StreamId, close, reset,
};

/// Largest read of a pipe (also bounded by the stream's credit). The mux
/// cuts it into DATA frames of `max_payload` without copying.
const READ_CHUNK: usize = 256 * 1024;
/// Commands the session handles per wake-up before it looks at its other
/// inputs again.
const COMMAND_BATCH: usize = 64;
/// Frames waiting for the WebSocket writer.
const OUT_QUEUE: usize = 64;
/// The longest reason a WebSocket close frame carries.
const WS_CLOSE_REASON_MAX: usize = 123;

/// Anything a stream can be piped to.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// Why the server side will not connect a stream: sent as RESET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A [`crate::reset`] code.
    pub code: u16,
    pub reason: String,
}

impl Refusal {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<BoxIo, Refusal>> + Send>>;

/// Server side: turns an OPEN label into a connected socket, or refuses.
#[derive(Clone)]
pub struct Connector(Arc<dyn Fn(String) -> ConnectFuture + Send + Sync>);

impl Connector {
    /// Wrap an async function `label -> Result<socket, Refusal>`.
    pub fn new<F, Fut, T>(f: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Refusal>> + Send + 'static,
        T: Io,
    {
        Connector(Arc::new(move |label| {
            let fut = f(label);
            Box::pin(async move { fut.await.map(|io| Box::new(io) as BoxIo) })
        }))
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// Connect to `addr` over TCP, mapping failures to RESET codes.
pub async fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, Refusal> {
    match TcpStream::connect(addr).await {
        Ok(s) => {
            // Interactive streams: no Nagle delay.
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(Refusal::new(
            reset::REFUSED,
            format!("connection to {addr} refused"),
        )),
        Err(e) => Err(Refusal::new(
            reset::UNREACHABLE,
            format!("cannot connect to {addr}: {e}"),
        )),
    }
}

/// WebSocket settings for a tunnel socket: messages and frames capped at
/// one frame of [`crate::HARD_MAX_PAYLOAD`] plus its header.
pub fn websocket_config() -> WebSocketConfig {
    let max = crate::HEADER_LEN + crate::HARD_MAX_PAYLOAD as usize;
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Server side: connects OPENed streams. `None` refuses every OPEN.
    pub connector: Option<Connector>,
    /// Deadline of one `connector` call.
    pub connect_timeout: Duration,
    /// How long closing may take (flush CLOSE, WebSocket close handshake).
    pub close_grace: Duration,
    /// Capacity of the command channel from pipes to the session.
    pub command_capacity: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            connector: None,
            connect_timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(2),
            command_capacity: 256,
        }
    }
}

/// What a [`SessionHandle::status`] watcher sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStatus {
    pub negotiated: Option<Negotiated>,
    pub peer: Option<PeerState>,
    pub rtt: Option<Duration>,
    pub closed: bool,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// CLOSE code (or WebSocket close code) when there was one.
    pub code: Option<u16>,
    pub reason: String,
    /// `None` when the transport failed without a CLOSE.
    pub initiator: Option<Initiator>,
    pub stats: Stats,
}

/// How one piped stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    pub stream: StreamId,
    /// Bytes read from the local socket and sent into the tunnel.
    pub bytes_sent: u64,
    /// Bytes received from the tunnel and written to the local socket.
    pub bytes_received: u64,
}

/// Why a piped stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer reset the stream (for a new stream: refused the target).
    #[error("stream reset by the peer ({code}): {reason}")]
    Reset { code: u16, reason: String },
    /// The session ended before the stream did.
    #[error("the tunnel session ended")]
    SessionClosed,
    /// The mux refused the call (session closed, stream limit).
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The local socket failed.
    #[error("local socket: {0}")]
    Io(#[from] io::Error),
}

/// Pipe → session.
#[derive(Debug)]
enum Command {
    Open {
        label: String,
        reply: oneshot::Sender<Result<StreamLink, MuxError>>,
    },
    Accept(StreamId),
    Data(StreamId, Bytes),
    Fin(StreamId),
    Reset(StreamId, u16, String),
    Consumed(StreamId, usize),
    Done(StreamId),
    Close(u16, String),
}

/// Session → pipe.
#[derive(Debug)]
enum Inbound {
    Data(Bytes),
    Fin,
    Reset { code: u16, reason: String },
}

/// What a pipe needs to talk to the session about its stream.
#[derive(Debug)]
struct StreamLink {
    id: StreamId,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    credit: Arc<Semaphore>,
    cancel: CancellationToken,
}

/// The session's side of a stream.
#[derive(Debug)]
struct Entry {
    // Unbounded, yet bounded by flow control: the peer cannot send more
    // than the window before we grant, and we grant only after the pipe
    // wrote the bytes out. Empty DATA is never forwarded.
    tx: mpsc::UnboundedSender<Inbound>,
    credit: Arc<Semaphore>,
}

/// A cloneable handle to a running [`Session`].
#[derive(Debug, Clone)]
pub struct SessionHandle {
    cmd: mpsc::Sender<Command>,
    status: watch::Receiver<SessionStatus>,
}

impl SessionHandle {
    /// Client: open a stream named `label` and pipe `io` through it until
    /// both directions are finished or the stream is reset.
    pub async fn pipe<T: Io>(&self, io: T, label: &str) -> Result<StreamReport, StreamError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Command::Open {
                label: label.to_owned(),
                reply,
            })
            .await
            .map_err(|_| StreamError::SessionClosed)?;
        let link = rx.await.map_err(|_| StreamError::SessionClosed)??;
        pipe_stream(io, link, self.cmd.clone()).await
    }

    /// End the session with CLOSE(code, reason).
    pub async fn close(&self, code: u16, reason: &str) {
        let _ = self.cmd.send(Command::Close(code, reason.to_owned())).await;
    }

    /// Negotiated values, peer state, RTT and whether the session ended.
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }
}

/// Client: accept connections on `listener` and pipe each into a new stream
/// named `label`, until `shutdown` or the end of the session.
pub async fn serve_listener(
    listener: TcpListener,
    handle: SessionHandle,
    label: String,
    shutdown: CancellationToken,
) {
    let mut status = handle.status();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = status.wait_for(|s| s.closed) => {
                let _ = r;
                return;
            }
            a = listener.accept() => a,
        };
        match accepted {
            Ok((sock, peer)) => {
                let _ = sock.set_nodelay(true);
                let handle = handle.clone();
                let label = label.clone();
                let span = tracing::info_span!("tunnel_local", %peer);
                tokio::spawn(
                    async move {
                        match handle.pipe(sock, &label).await {
                            Ok(r) => debug!(stream = %r.stream, sent = r.bytes_sent, received = r.bytes_received, "stream done"),
                            Err(err) => info!(%err, "stream ended"),
                        }
                    }
                    .instrument(span),
                );
            }
            Err(err) => {
                warn!(%err, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Run `mux` over `ws` until the session ends (server-side convenience:
/// nobody else needs a handle).
pub async fn run_session<S>(
    ws: WebSocketStream<S>,
    mux: Mux,
    options: SessionOptions,
    shutdown: CancellationToken,
) -> SessionEnd
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    Session::new(mux, options).run(ws, shutdown).await
}

/// One session: the [`Mux`], its streams and the command channel.
#[derive(Debug)]
pub struct Session {
    mux: Mux,
    options: SessionOptions,
    cmd_tx: mpsc::Sender<Command>,
    cmd_rx: mpsc::Receiver<Command>,
    status_tx: watch::Sender<SessionStatus>,
    status_rx: watch::Receiver<SessionStatus>,
    entries: HashMap<StreamId, Entry>,
    streams_cancel: CancellationToken,
    /// The transport ended: leave the loop now.
    end: Option<SessionEnd>,
    /// The mux closed: leave the loop once CLOSE is handed out.
    mux_end: Option<SessionEnd>,
}

impl Session {
    pub fn new(mux: Mux, options: SessionOptions) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel(options.command_capacity.max(1));
        let (status_tx, status_rx) = watch::channel(SessionStatus::default());
        Session {
            mux,
            options,
            cmd_tx,
            cmd_rx,
            status_tx,
            status_rx,
            entries: HashMap::new(),
            streams_cancel: CancellationToken::new(),
            end: None,
            mux_end: None,
        }
    }

    /// A handle for opening streams and watching the session.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            cmd: self.cmd_tx.clone(),
            status: self.status_rx.clone(),
        }
    }

    /// Pump frames between `ws` and the mux until the session ends or
    /// `shutdown` fires (then CLOSE 1001 is sent).
    pub async fn run<S>(mut self, ws: WebSocketStream<S>, shutdown: CancellationToken) -> SessionEnd
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sink, mut source) = ws.split();
        let (out_tx, out_rx) = mpsc::channel::<Message>(OUT_QUEUE);
        let writer = tokio::spawn(write_loop(sink, out_rx).in_current_span());
        let mut pending: Option<Message> = None;
        let mut shutting_down = false;
        loop {
            self.dispatch_events();
            // Hand the writer every frame its queue takes now; wait (below)
            // only when it is full.
            loop {
                if pending.is_none() {
                    pending = self
                        .mux
                        .poll_transmit()
                        .map(|f| Message::Binary(f.to_bytes()));
                }
                let Some(m) = pending.take() else { break };
                match out_tx.try_reserve() {
                    Ok(permit) => permit.send(m),
                    Err(mpsc::error::TrySendError::Full(())) => {
                        pending = Some(m);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(())) => {
                        pending = Some(m);
                        self.lost("websocket writer stopped".into());
                        break;
                    }
                }
            }
            if self.end.is_some() || (self.mux.is_finished() && pending.is_none()) {
                break;
            }
            let deadline = self.mux.poll_timeout();
            tokio::select! {
                permit = out_tx.reserve(), if pending.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(m) = pending.take() {
                            permit.send(m);
                        }
                    }
                    Err(_) => self.lost("websocket writer stopped".into()),
                },
                msg = source.next() => self.on_ws_message(msg),
                cmd = self.cmd_rx.recv() => {
                    if let Some(cmd) = cmd {
                        self.on_command(cmd);
                        // Take what else the pipes queued in one go.
                        for _ in 1..COMMAND_BATCH {
                            match self.cmd_rx.try_recv() {
                                Ok(cmd) => self.on_command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.mux.handle_timeout(Instant::now());
                }
                () = shutdown.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    self.mux.close(close::GOING_AWAY, "shutting down");
                }
            }
        }
        self.finish_streams();
        let end = self
            .mux_end
            .take()
            .or(self.end.take())
            .unwrap_or_else(|| SessionEnd {
                code: None,
                reason: "session ended".into(),
                initiator: None,
                stats: self.mux.stats(),
            });
        // WebSocket close with the CLOSE code, then wait for the peer's close.
        let grace = self.options.close_grace;
        if let Some(code) = end.code.filter(|_| end.initiator == Some(Initiator::Local)) {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: ws_reason(&end.reason).into(),
            };
            let _ = tokio::time::timeout(grace, out_tx.send(Message::Close(Some(frame)))).await;
        }
        drop(out_tx);
        let drain = async {
            let _ = writer.await;
            while let Some(Ok(_)) = source.next().await {}
        };
        let _ = tokio::time::timeout(grace, drain).await;
        info!(code = ?end.code, reason = %end.reason, sent = end.stats.bytes_sent, received = end.stats.bytes_received, "tunnel session ended");
        end
    }

    fn on_ws_message(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        match msg {
            Some(Ok(Message::Binary(b))) => self.mux.handle_message(Instant::now(), b),
            Some(Ok(Message::Text(_))) => self
                .mux
                .close(close::PROTOCOL_ERROR, "text message on a native tunnel"),
            Some(Ok(Message::Close(frame))) => {
                if !self.mux.is_closed() {
                    let (code, reason) = frame.map_or((None, "websocket closed".to_owned()), |f| {
                        (Some(u16::from(f.code)), f.reason.to_string())
                    });
                    self.end = Some(SessionEnd {
                        code,
                        reason,
                        initiator: Some(Initiator::Peer),
                        stats: self.mux.stats(),
                    });
                }
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => self.lost(format!("websocket error: {err}")),
            None => self.lost("websocket closed without a close frame".into()),
        }
    }

    fn lost(&mut self, reason: String) {
        if self.end.is_none() && !self.mux.is_finished() {
            self.end = Some(SessionEnd {
                code: None,
                reason,
                initiator: None,
                stats: self.mux.stats(),
            });
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Open { label, reply } => {
                let r = self.mux.open(&label).map(|id| self.register(id));
                let _ = reply.send(r);
            }
            Command::Accept(id) => match self.mux.accept(id) {
                Ok(()) => {
                    if let Some(e) = self.entries.get(&id) {
                        e.credit.add_permits(self.mux.send_capacity(id));
                    }
                }
                Err(err) => debug!(stream = %id, %err, "accept after the stream ended"),
            },
            Command::Data(id, data) => {
                if let Err(err) = self.mux.send(id, data) {
                    debug!(stream = %id, %err, "data for an ended stream dropped");
                }
            }
            Command::Fin(id) => {
                let _ = self.mux.finish(id);
            }
            Command::Reset(id, code, reason) => {
                self.entries.remove(&id);
                let _ = self.mux.reset(id, code, &reason);
            }
            Command::Consumed(id, n) => self.mux.consumed(id, n),
            Command::Done(id) => {
                self.entries.remove(&id);
            }
            Command::Close(code, reason) => self.mux.close(code, &reason),
        }
    }

    fn register(&mut self, id: StreamId) -> StreamLink {
        let (tx, inbound) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(0));
        self.entries.insert(
            id,
            Entry {
                tx,
                credit: credit.clone(),
            },
        );
        StreamLink {
            id,
            inbound,
            credit,
            cancel: self.streams_cancel.child_token(),
        }
    }

    fn dispatch_events(&mut self) {
        while let Some(ev) = self.mux.poll_event() {
            match ev {
                Event::Ready(n) => self.status_tx.send_modify(|s| s.negotiated = Some(n)),
                Event::StreamOpened { stream, label } => self.on_stream_opened(stream, label),
                Event::StreamAccepted { stream } => {
                    if let Some(e) = self.entries.get(&stream) {
                        e.credit.add_permits(self.mux.send_capacity(stream));
                    }
                }
                Event::Data { stream, payload } => self.forward(stream, Inbound::Data(payload)),
                Event::Writable { stream, added } => {
                    if let Some(e) = self.entries.get(&stream) {
                        e.credit.add_permits(added);
                    }
                }
                Event::Fin { stream } => self.forward(stream, Inbound::Fin),
                Event::Reset {
                    stream,
                    code,
                    reason,
                } => {
                    if let Some(e) = self.entries.remove(&stream) {
                        let _ = e.tx.send(Inbound::Reset { code, reason });
                    }
                }
                Event::Peer(p) => self.status_tx.send_modify(|s| s.peer = Some(p)),
                Event::Closed {
                    code,
                    reason,
                    initiator,
                } => {
                    // The loop goes on until a local CLOSE frame is handed out.
                    self.mux_end = Some(SessionEnd {
                        code: Some(code),
                        reason,
                        initiator: Some(initiator),
                        stats: self.mux.stats(),
                    });
                }
            }
        }
        let rtt = self.mux.rtt();
        self.status_tx.send_if_modified(|s| {
            let changed = s.rtt != rtt;
            s.rtt = rtt;
            changed
        });
    }

    fn forward(&mut self, stream: StreamId, msg: Inbound) {
        let Some(e) = self.entries.get(&stream) else {
            // Nobody pipes this stream any more: abort it.
            let _ = self.mux.reset(stream, reset::CANCELLED, "local side gone");
            return;
        };
        if e.tx.send(msg).is_err() {
            self.entries.remove(&stream);
            let _ = self.mux.reset(stream, reset::CANCELLED, "local side gone");
        }
    }

    fn on_stream_opened(&mut self, stream: StreamId, label: String) {
        let Some(connector) = self.options.connector.clone() else {
            let _ = self
                .mux
                .reset(stream, reset::NOT_ALLOWED, "this side accepts no streams");
            return;
        };
        let link = self.register(stream);
        let cmd = self.cmd_tx.clone();
        let timeout = self.options.connect_timeout;
        let span = tracing::info_span!("tunnel_stream", %stream, %label);
        tokio::spawn(
            async move {
                let connected = match tokio::time::timeout(timeout, (connector.0)(label)).await {
                    Ok(r) => r,
                    Err(_) => Err(Refusal::new(reset::UNREACHABLE, "connect timed out")),
                };
                match connected {
                    Ok(io) => {
                        if cmd.send(Command::Accept(stream)).await.is_err() {
                            return;
                        }
                        match pipe_stream(io, link, cmd).await {
                            Ok(r) => debug!(
                                sent = r.bytes_sent,
                                received = r.bytes_received,
                                "stream done"
                            ),
                            Err(err) => info!(%err, "stream ended"),
                        }
                    }
                    Err(refusal) => {
                        info!(code = refusal.code, reason = %refusal.reason, "stream refused");
                        let _ = cmd
                            .send(Command::Reset(stream, refusal.code, refusal.reason))
                            .await;
                    }
                }
            }
            .instrument(span),
        );
    }

    fn finish_streams(&mut self) {
        self.streams_cancel.cancel();
        for (_, e) in self.entries.drain() {
            e.credit.close();
        }
        self.status_tx.send_modify(|s| s.closed = true);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

fn ws_reason(reason: &str) -> String {
    let mut end = reason.len().min(WS_CLOSE_REASON_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// Feed messages to the sink, flushing whenever the queue runs dry.
async fn write_loop<K>(mut sink: K, mut rx: mpsc::Receiver<Message>)
where
    K: Sink<Message> + Unpin,
    K::Error: std::fmt::Display,
{
    while let Some(msg) = rx.recv().await {
        if let Err(err) = sink.feed(msg).await {
            debug!(%err, "websocket write failed");
            return;
        }
        while let Ok(msg) = rx.try_recv() {
            if let Err(err) = sink.feed(msg).await {
                debug!(%err, "websocket write failed");
                return;
            }
        }
        if let Err(err) = sink.flush().await {
            debug!(%err, "websocket flush failed");
            return;
        }
    }
    let _ = sink.close().await;
}

/// Pipe `io` through the stream of `link` until both directions finished
/// (FIN each way) or either side reset.
async fn pipe_stream<T: Io>(
    io: T,
    link: StreamLink,
    cmd: mpsc::Sender<Command>,
) -> Result<StreamReport, StreamError> {
    let StreamLink {
        id,
        mut inbound,
        credit,
        cancel,
    } = link;
    let (mut rd, mut wr) = tokio::io::split(io);

    let up = async {
        let mut sent = 0u64;
        let mut buf = BytesMut::new();
        loop {
            // Take at least one byte of credit, then all that is free.
            let first = credit
                .acquire()
                .await
                .map_err(|_| StreamError::SessionClosed)?;
            first.forget();
            let extra = credit.available_permits().min(READ_CHUNK - 1);
            if extra > 0 {
                if let Ok(p) = credit.try_acquire_many(u32::try_from(extra).unwrap_or(u32::MAX)) {
                    p.forget();
                }
            }
            let want = 1 + extra;
            // Read into spare capacity (no zeroing); `take` keeps the read
            // within the credit.
            buf.reserve(want);
            let n = match (&mut rd).take(want as u64).read_buf(&mut buf).await {
                Ok(n) => n,
                Err(err) => {
                    let _ = cmd
                        .send(Command::Reset(id, reset::ERROR, format!("read: {err}")))
                        .await;
                    return Err(StreamError::Io(err));
                }
            };
            if n < want {
                credit.add_permits(want - n);
            }
            if n == 0 {
                cmd.send(Command::Fin(id))
                    .await
                    .map_err(|_| StreamError::SessionClosed)?;
                return Ok(sent);
            }
            sent += n as u64;
            let data = buf.split_to(n).freeze();
            cmd.send(Command::Data(id, data))
                .await
                .map_err(|_| StreamError::SessionClosed)?;
        }
    };

    let down = async {
        let mut received = 0u64;
        loop {
            match inbound.recv().await {
                Some(Inbound::Data(b)) => {
                    if let Err(err) = wr.write_all(&b).await {
                        let _ = cmd
                            .send(Command::Reset(id, reset::ERROR, format!("write: {err}")))
                            .await;
                        return Err(StreamError::Io(err));
                    }
                    received += b.len() as u64;
                    cmd.send(Command::Consumed(id, b.len()))
                        .await
                        .map_err(|_| StreamError::SessionClosed)?;
                }
                Some(Inbound::Fin) => {
                    // The peer finished: half-close our socket.
                    let _ = wr.shutdown().await;
                    return Ok(received);
                }
                Some(Inbound::Reset { code, reason }) => {
                    return Err(StreamError::Reset { code, reason });
                }
                None => return Err(StreamError::SessionClosed),
            }
        }
    };

    let result = tokio::select! {
        r = async { tokio::try_join!(up, down) } => r,
        () = cancel.cancelled() => Err(StreamError::SessionClosed),
    };
    let _ = cmd.send(Command::Done(id)).await;
    let (bytes_sent, bytes_received) = result?;
    Ok(StreamReport {
        stream: id,
        bytes_sent,
        bytes_received,
    })
}
