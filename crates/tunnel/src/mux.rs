//! The sans-IO stream multiplexer: one tunnel session seen from one side.
//!
//! The [`Mux`] owns no socket and reads no clock. The caller feeds it what
//! arrives and drains what it wants to say:
//!
//! | direction | call |
//! |---|---|
//! | message in | [`Mux::handle_message`] (or [`Mux::handle_frame`]) with `now` |
//! | what happened | [`Mux::poll_event`] until `None`, after every input |
//! | frames out | [`Mux::poll_transmit`] until `None`; encode each with [`Frame::encode`] |
//! | timers | sleep until [`Mux::poll_timeout`], then [`Mux::handle_timeout`] |
//! | application | [`Mux::open`], [`Mux::accept`], [`Mux::send`], [`Mux::finish`], [`Mux::reset`], [`Mux::consumed`], [`Mux::close`] |
//!
//! Rules it keeps (docs/protocol-tunnel.md has the why):
//! - HELLO first; the session values are the minimum of both HELLOs.
//!   Streams may be opened before the peer's HELLO; their OPEN waits for it.
//! - The client opens odd, increasing ids; the server [`Mux::accept`]s
//!   (OPEN_OK) or [`Mux::reset`]s each [`Event::StreamOpened`]. DATA flows
//!   only after OPEN_OK.
//! - Flow control: [`Mux::send`] takes at most [`Mux::send_capacity`] bytes,
//!   which is the credit the peer granted minus what is already queued, so
//!   the queue per stream never exceeds the window. Received bytes are
//!   granted back (WINDOW) only when the application reports them written
//!   out with [`Mux::consumed`]. A stream alone in its session may hold the
//!   whole negotiated window; while other streams share the session the
//!   receiver holds grants back so the stream's credit stays within
//!   [`SHARED_WINDOW`](crate::SHARED_WINDOW).
//! - Scheduling: control frames first, then one DATA (or FIN) frame per
//!   stream per turn, round-robin.
//! - Any protocol violation queues CLOSE(1002) with a reason, emits
//!   [`Event::Closed`] and ignores all further input.
//!
//! Everything is bounded: streams by [`Config::max_streams`], queued data
//! per stream by the window, control frames by a fixed limit, events by the
//! input that caused them (drain them after each call).
//!
//! This file is longer than the house norm because the state machine reads
//! best in one place.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::code;
use crate::error::{FrameError, MuxError};
use crate::frame::{
    DEFAULT_MAX_PAYLOAD, DEFAULT_WINDOW, Frame, HARD_MAX_PAYLOAD, Hello, KNOWN_CAPABILITIES,
    PROTOCOL_VERSION, PeerState, SHARED_WINDOW, StreamId, clamp_text,
};

/// The smallest `initial_window` and `max_payload` a HELLO may carry.
pub const MIN_WINDOW: u32 = 1024;
/// The largest window credit a stream may hold (the u32 range).
pub const MAX_CREDIT: u64 = u32::MAX as u64;
/// Default interval between PINGs.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Default limit of concurrent streams.
pub const DEFAULT_MAX_STREAMS: usize = 1024;
/// Control frames that may wait for transmission before the session is
/// considered stuck (the peer floods, or the caller never drains).
const MAX_CONTROL_QUEUE: usize = 16 * 1024;

/// Which end of the tunnel this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The RAC side: opens streams.
    Client,
    /// The edge side: accepts streams and connects to targets.
    Server,
}

/// Settings of one side.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    /// Window this side offers per stream (HELLO `initial_window`).
    pub initial_window: u32,
    /// Largest body this side accepts (HELLO `max_payload`).
    pub max_payload: u32,
    /// Capability bits this side offers.
    pub capabilities: u32,
    /// PING interval; silence for twice this means the peer is gone.
    /// `Duration::ZERO` disables pings and the silence check.
    pub ping_interval: Duration,
    /// Concurrent streams; OPENs beyond it are RESET with `BUSY`.
    pub max_streams: usize,
}

impl Config {
    /// Defaults of the spec for `role`.
    pub fn new(role: Role) -> Self {
        Config {
            role,
            initial_window: DEFAULT_WINDOW,
            max_payload: DEFAULT_MAX_PAYLOAD,
            capabilities: 0,
            ping_interval: DEFAULT_PING_INTERVAL,
            max_streams: DEFAULT_MAX_STREAMS,
        }
    }

    fn validate(&self) -> Result<(), MuxError> {
        if self.initial_window < MIN_WINDOW {
            return Err(MuxError::Config("initial_window below 1024"));
        }
        if !(MIN_WINDOW..=HARD_MAX_PAYLOAD).contains(&self.max_payload) {
            return Err(MuxError::Config("max_payload outside 1024..=1 MiB"));
        }
        if self.max_streams == 0 {
            return Err(MuxError::Config("max_streams is 0"));
        }
        Ok(())
    }
}

/// What both HELLOs agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u8,
    /// Per-stream window both ways.
    pub window: u32,
    /// Largest DATA payload both ways.
    pub max_payload: u32,
    /// Capabilities both offered and this crate knows.
    pub capabilities: u32,
}

/// Who ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    Local,
    Peer,
}

/// Something the application must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer's HELLO arrived; streams can flow.
    Ready(Negotiated),
    /// Server: the client opened a stream; [`Mux::accept`] or [`Mux::reset`] it.
    StreamOpened { stream: StreamId, label: String },
    /// Client: the server connected the stream (OPEN_OK); data may flow.
    StreamAccepted { stream: StreamId },
    /// Bytes from the peer; report them with [`Mux::consumed`] once written.
    Data { stream: StreamId, payload: Bytes },
    /// [`Mux::send_capacity`] of the stream grew by `added` bytes.
    Writable { stream: StreamId, added: usize },
    /// The peer will send no more on the stream.
    Fin { stream: StreamId },
    /// The peer aborted the stream.
    Reset {
        stream: StreamId,
        code: u16,
        reason: String,
    },
    /// PEER notice from the broker.
    Peer(PeerState),
    /// The session is over; every stream is gone.
    Closed {
        code: u16,
        reason: String,
        initiator: Initiator,
    },
}

/// Counters for audit and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// DATA payload bytes queued by [`Mux::send`] and sent.
    pub bytes_sent: u64,
    /// DATA payload bytes received.
    pub bytes_received: u64,
    /// Streams opened (client) or accepted (server).
    pub streams_opened: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    /// Client: opened before the peer's HELLO; OPEN not yet queued.
    Requested,
    /// Client: OPEN queued, waiting for OPEN_OK. Server: OPEN received,
    /// waiting for `accept`.
    Opening,
    /// Data may flow.
    Open,
}

#[derive(Debug)]
struct Stream {
    state: StreamState,
    label: String,
    /// Credit left for `send` (granted by the peer, minus bytes queued).
    send_credit: u64,
    send_buf: VecDeque<Bytes>,
    fin_queued: bool,
    fin_sent: bool,
    /// Bytes the peer may still send before a WINDOW.
    recv_window: u64,
    /// Bytes consumed but not yet granted back.
    pending_grant: u64,
    fin_received: bool,
    in_ready: bool,
}

impl Stream {
    fn new(state: StreamState, label: String, recv_window: u64) -> Self {
        Stream {
            state,
            label,
            send_credit: 0,
            send_buf: VecDeque::new(),
            fin_queued: false,
            fin_sent: false,
            recv_window,
            pending_grant: 0,
            fin_received: false,
            in_ready: false,
        }
    }

    fn has_output(&self) -> bool {
        !self.send_buf.is_empty() || (self.fin_queued && !self.fin_sent)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Running,
    /// CLOSE queued, not yet taken by `poll_transmit`.
    Closing,
    Closed,
}

/// One side of a tunnel session (see the module doc).
#[derive(Debug)]
pub struct Mux {
    config: Config,
    state: SessionState,
    hello_sent: bool,
    negotiated: Option<Negotiated>,
    streams: HashMap<StreamId, Stream>,
    /// Client: the next id to open. Server: the last id the client opened.
    next_id: u32,
    last_peer_id: u32,
    control: VecDeque<Frame>,
    close_frame: Option<Frame>,
    ready: VecDeque<StreamId>,
    events: VecDeque<Event>,
    pending_pong: Option<u64>,
    /// Set by the timer: a PING is due, fired at this instant.
    ping_due: Option<Instant>,
    ping_counter: u64,
    outstanding_ping: Option<(u64, Instant)>,
    next_ping_at: Option<Instant>,
    last_heard: Instant,
    rtt: Option<Duration>,
    peer: Option<PeerState>,
    stats: Stats,
}

impl Mux {
    /// A new session side; its HELLO is the first frame out.
    pub fn new(config: Config, now: Instant) -> Result<Self, MuxError> {
        config.validate()?;
        let next_ping_at = (!config.ping_interval.is_zero()).then_some(now);
        Ok(Mux {
            config,
            state: SessionState::Running,
            hello_sent: false,
            negotiated: None,
            streams: HashMap::new(),
            next_id: 1,
            last_peer_id: 0,
            control: VecDeque::new(),
            close_frame: None,
            ready: VecDeque::new(),
            events: VecDeque::new(),
            pending_pong: None,
            ping_due: None,
            ping_counter: 0,
            outstanding_ping: None,
            next_ping_at,
            last_heard: now,
            rtt: None,
            peer: None,
            stats: Stats::default(),
        })
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The agreed values, once the peer's HELLO arrived.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// The last measured round-trip time (PING to PONG).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The last PEER notice.
    pub fn peer_state(&self) -> Option<PeerState> {
        self.peer
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// True once the session is over (CLOSE sent or received).
    pub fn is_closed(&self) -> bool {
        self.state != SessionState::Running
    }

    /// True once closed and the CLOSE (if any) has been handed out.
    pub fn is_finished(&self) -> bool {
        self.state == SessionState::Closed
    }

    // ----- input -----------------------------------------------------------

    /// Decode one WebSocket binary message and handle it. A message that is
    /// not a valid frame closes the session with a protocol error.
    pub fn handle_message(&mut self, now: Instant, msg: Bytes) {
        if self.is_closed() {
            return;
        }
        let limit = self
            .negotiated
            .map_or(self.config.max_payload, |n| n.max_payload);
        match Frame::decode_with_limit(msg, limit) {
            Ok(frame) => self.handle_frame(now, frame),
            Err(err) => self.on_bad_frame(now, &err),
        }
    }

    fn on_bad_frame(&mut self, now: Instant, err: &FrameError) {
        self.last_heard = now;
        self.protocol_error(&err.to_string());
    }

    /// Handle one decoded frame.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.is_closed() {
            return;
        }
        self.last_heard = now;
        match frame {
            Frame::Hello(h) => self.on_hello(h),
            Frame::Open { stream, label } => self.on_open(stream, label),
            Frame::OpenOk { stream } => self.on_open_ok(stream),
            Frame::Data { stream, payload } => self.on_data(stream, payload),
            Frame::Window { stream, increment } => self.on_window(stream, increment),
            Frame::Fin { stream } => self.on_fin(stream),
            Frame::Reset {
                stream,
                code,
                reason,
            } => {
                if self.lookup(stream, "RESET").is_some() {
                    self.drop_stream(stream);
                    self.events.push_back(Event::Reset {
                        stream,
                        code,
                        reason,
                    });
                }
            }
            Frame::Ping { opaque } => self.pending_pong = Some(opaque),
            Frame::Pong { opaque } => {
                if let Some((sent, at)) = self.outstanding_ping {
                    if sent == opaque {
                        self.rtt = Some(now.saturating_duration_since(at));
                        self.outstanding_ping = None;
                    }
                }
            }
            Frame::Peer { state } => {
                self.peer = Some(state);
                self.events.push_back(Event::Peer(state));
            }
            Frame::Close { code, reason } => {
                self.end(code, reason, Initiator::Peer);
                self.state = SessionState::Closed;
            }
        }
        if self.control.len() > MAX_CONTROL_QUEUE {
            self.protocol_error("too many control frames waiting: the peer floods or nobody reads");
        }
    }

    fn on_hello(&mut self, h: Hello) {
        if self.negotiated.is_some() {
            return self.protocol_error("second HELLO");
        }
        if h.version == 0 {
            return self.close(
                code::close::UNSUPPORTED_VERSION,
                "HELLO version 0 is not supported",
            );
        }
        if h.initial_window < MIN_WINDOW || h.max_payload < MIN_WINDOW {
            return self.protocol_error("HELLO initial_window or max_payload below 1024");
        }
        let n = Negotiated {
            version: h.version.min(PROTOCOL_VERSION),
            window: h.initial_window.min(self.config.initial_window),
            max_payload: h.max_payload.min(self.config.max_payload),
            capabilities: h.capabilities & self.config.capabilities & KNOWN_CAPABILITIES,
        };
        self.negotiated = Some(n);
        self.events.push_back(Event::Ready(n));
        // Streams opened before the HELLO: their OPEN goes out now, in id order.
        let mut waiting: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.state == StreamState::Requested)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        for id in waiting {
            if let Some(s) = self.streams.get_mut(&id) {
                s.state = StreamState::Opening;
                s.recv_window = u64::from(n.window);
                self.control.push_back(Frame::Open {
                    stream: id,
                    label: s.label.clone(),
                });
            }
        }
    }

    fn on_open(&mut self, stream: StreamId, label: String) {
        if self.config.role != Role::Server {
            return self.protocol_error("OPEN received by the client side");
        }
        let Some(n) = self.negotiated else {
            return self.protocol_error("OPEN before HELLO");
        };
        if !stream.is_client_initiated() || stream.get() <= self.last_peer_id {
            return self.protocol_error(&format!(
                "OPEN of stream {stream}: ids must be odd and increasing (last {})",
                self.last_peer_id
            ));
        }
        self.last_peer_id = stream.get();
        if self.streams.len() >= self.config.max_streams {
            self.control.push_back(Frame::Reset {
                stream,
                code: code::reset::BUSY,
                reason: format!("too many streams (limit {})", self.config.max_streams),
            });
            return;
        }
        self.streams.insert(
            stream,
            Stream::new(StreamState::Opening, String::new(), u64::from(n.window)),
        );
        self.events.push_back(Event::StreamOpened { stream, label });
    }

    fn on_open_ok(&mut self, stream: StreamId) {
        if self.config.role != Role::Client {
            return self.protocol_error("OPEN_OK received by the server side");
        }
        let window = self.negotiated.map_or(0, |n| u64::from(n.window));
        let Some(s) = self.lookup(stream, "OPEN_OK") else {
            return;
        };
        if s.state != StreamState::Opening {
            return self.protocol_error(&format!("unexpected OPEN_OK for stream {stream}"));
        }
        s.state = StreamState::Open;
        s.send_credit = window;
        let fin_queued = s.fin_queued;
        self.stats.streams_opened += 1;
        self.events.push_back(Event::StreamAccepted { stream });
        if fin_queued {
            self.schedule(stream);
        }
    }

    fn on_data(&mut self, stream: StreamId, payload: Bytes) {
        let Some(s) = self.lookup(stream, "DATA") else {
            return;
        };
        let len = payload.len() as u64;
        if s.state != StreamState::Open {
            return self.protocol_error(&format!("DATA on stream {stream} before OPEN_OK"));
        }
        if s.fin_received {
            return self.protocol_error(&format!("DATA on stream {stream} after FIN"));
        }
        if len > s.recv_window {
            let window = s.recv_window;
            return self.protocol_error(&format!(
                "DATA of {len} bytes on stream {stream} beyond the window ({window} bytes left)"
            ));
        }
        s.recv_window -= len;
        self.stats.bytes_received += len;
        if !payload.is_empty() {
            self.events.push_back(Event::Data { stream, payload });
        }
    }

    fn on_window(&mut self, stream: StreamId, increment: u32) {
        let Some(s) = self.lookup(stream, "WINDOW") else {
            return;
        };
        if s.state != StreamState::Open {
            return self.protocol_error(&format!("WINDOW on stream {stream} before OPEN_OK"));
        }
        let queued: u64 = s.send_buf.iter().map(|b| b.len() as u64).sum();
        let credit = s.send_credit + queued + u64::from(increment);
        if credit > MAX_CREDIT {
            return self.protocol_error(&format!(
                "WINDOW on stream {stream} overflows the credit ({credit} bytes)"
            ));
        }
        s.send_credit += u64::from(increment);
        if increment > 0 && !s.fin_queued {
            self.events.push_back(Event::Writable {
                stream,
                added: increment as usize,
            });
        }
    }

    fn on_fin(&mut self, stream: StreamId) {
        let Some(s) = self.lookup(stream, "FIN") else {
            return;
        };
        if s.state != StreamState::Open {
            return self.protocol_error(&format!("FIN on stream {stream} before OPEN_OK"));
        }
        if s.fin_received {
            return self.protocol_error(&format!("second FIN on stream {stream}"));
        }
        s.fin_received = true;
        let done = s.fin_sent;
        self.events.push_back(Event::Fin { stream });
        if done {
            self.drop_stream(stream);
        }
    }

    /// The live stream `id`, or `None` when the frame is to be ignored (a
    /// stream that existed and is gone: frames crossing a RESET) or is a
    /// protocol error (a stream that never existed; the session is closed).
    fn lookup(&mut self, id: StreamId, what: &str) -> Option<&mut Stream> {
        if self.streams.contains_key(&id) {
            return self.streams.get_mut(&id);
        }
        let existed = id.is_client_initiated()
            && match self.config.role {
                Role::Client => id.get() < self.next_id,
                Role::Server => id.get() <= self.last_peer_id,
            };
        if !existed {
            self.protocol_error(&format!("{what} for stream {id}, which was never opened"));
        }
        None
    }

    // ----- timers ----------------------------------------------------------

    /// When [`Mux::handle_timeout`] should be called next; `None` when no
    /// timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let ping = self.next_ping_at?;
        Some(ping.min(self.last_heard + self.config.ping_interval * 2))
    }

    /// Run the timers due at `now`: send a PING, or declare the peer gone.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let Some(next_ping) = self.next_ping_at else {
            return;
        };
        let silence = now.saturating_duration_since(self.last_heard);
        let limit = self.config.ping_interval * 2;
        if silence >= limit {
            let reason = format!("nothing heard from the peer for {} ms", silence.as_millis());
            return self.close(code::close::PEER_GONE, &reason);
        }
        if now >= next_ping {
            self.ping_due = Some(now);
            self.next_ping_at = Some(now + self.config.ping_interval);
        }
    }

    // ----- output ----------------------------------------------------------

    /// The next frame to send, control frames first, then DATA round-robin.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        match self.state {
            SessionState::Closed => return None,
            SessionState::Closing => {
                self.state = SessionState::Closed;
                return self.close_frame.take();
            }
            SessionState::Running => {}
        }
        if !self.hello_sent {
            self.hello_sent = true;
            return Some(Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                initial_window: self.config.initial_window,
                max_payload: self.config.max_payload,
                capabilities: self.config.capabilities,
            }));
        }
        if let Some(opaque) = self.pending_pong.take() {
            return Some(Frame::Pong { opaque });
        }
        if let Some(fired) = self.ping_due.take() {
            self.ping_counter = self.ping_counter.wrapping_add(1);
            // The caller transmits right after the timer, so the timer's
            // instant is the send time.
            self.outstanding_ping = Some((self.ping_counter, fired));
            return Some(Frame::Ping {
                opaque: self.ping_counter,
            });
        }
        if let Some(f) = self.control.pop_front() {
            return Some(f);
        }
        self.next_data_frame()
    }

    fn next_data_frame(&mut self) -> Option<Frame> {
        let max = self
            .negotiated
            .map_or(self.config.max_payload, |n| n.max_payload) as usize;
        while let Some(id) = self.ready.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.in_ready = false;
            if s.state != StreamState::Open {
                continue;
            }
            let frame = if let Some(front) = s.send_buf.front_mut() {
                let payload = if front.len() > max {
                    front.split_to(max)
                } else {
                    s.send_buf.pop_front().unwrap_or_default()
                };
                self.stats.bytes_sent += payload.len() as u64;
                Frame::Data {
                    stream: id,
                    payload,
                }
            } else if s.fin_queued && !s.fin_sent {
                s.fin_sent = true;
                if s.fin_received {
                    self.drop_stream(id);
                }
                return Some(Frame::Fin { stream: id });
            } else {
                continue;
            };
            if s.has_output() {
                s.in_ready = true;
                self.ready.push_back(id);
            }
            return Some(frame);
        }
        None
    }

    /// The next event, if any. Drain after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- application -----------------------------------------------------

    /// Client: open a stream to the interface named `label` (may be empty).
    pub fn open(&mut self, label: &str) -> Result<StreamId, MuxError> {
        if self.is_closed() {
            return Err(MuxError::Closed);
        }
        if self.config.role != Role::Client {
            return Err(MuxError::NotClient);
        }
        if self.streams.len() >= self.config.max_streams {
            return Err(MuxError::TooManyStreams(self.config.max_streams));
        }
        let id = StreamId::new(self.next_id).ok_or(MuxError::IdsExhausted)?;
        self.next_id = self.next_id.checked_add(2).ok_or(MuxError::IdsExhausted)?;
        let label = clamp_text(label).to_owned();
        match self.negotiated {
            Some(n) => {
                self.control.push_back(Frame::Open {
                    stream: id,
                    label: label.clone(),
                });
                self.streams.insert(
                    id,
                    Stream::new(StreamState::Opening, label, u64::from(n.window)),
                );
            }
            None => {
                self.streams
                    .insert(id, Stream::new(StreamState::Requested, label, 0));
            }
        }
        Ok(id)
    }

    /// Server: the target is connected; send OPEN_OK and let data flow.
    pub fn accept(&mut self, stream: StreamId) -> Result<(), MuxError> {
        if self.is_closed() {
            return Err(MuxError::Closed);
        }
        let window = self.negotiated.map_or(0, |n| u64::from(n.window));
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(MuxError::UnknownStream(stream))?;
        if self.config.role != Role::Server || s.state != StreamState::Opening {
            return Err(MuxError::NotPending(stream));
        }
        s.state = StreamState::Open;
        s.send_credit = window;
        self.stats.streams_opened += 1;
        self.control.push_back(Frame::OpenOk { stream });
        Ok(())
    }

    /// Bytes [`Mux::send`] accepts now on `stream` (0 for unknown streams,
    /// before OPEN_OK and after `finish`).
    pub fn send_capacity(&self, stream: StreamId) -> usize {
        match self.streams.get(&stream) {
            Some(s) if s.state == StreamState::Open && !s.fin_queued && !self.is_closed() => {
                usize::try_from(s.send_credit).unwrap_or(usize::MAX)
            }
            _ => 0,
        }
    }

    /// Queue `data` on `stream`. Fails, queueing nothing, when `data` is
    /// longer than [`Mux::send_capacity`].
    pub fn send(&mut self, stream: StreamId, data: Bytes) -> Result<(), MuxError> {
        if self.is_closed() {
            return Err(MuxError::Closed);
        }
        let capacity = self.send_capacity(stream);
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(MuxError::UnknownStream(stream))?;
        if s.fin_queued {
            return Err(MuxError::SendAfterFin(stream));
        }
        if data.len() > capacity {
            return Err(MuxError::OverCapacity {
                stream,
                len: data.len(),
                capacity,
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        s.send_credit -= data.len() as u64;
        s.send_buf.push_back(data);
        self.schedule(stream);
        Ok(())
    }

    /// Half-close: FIN goes out after the data already queued.
    pub fn finish(&mut self, stream: StreamId) -> Result<(), MuxError> {
        if self.is_closed() {
            return Err(MuxError::Closed);
        }
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(MuxError::UnknownStream(stream))?;
        if s.fin_queued {
            return Ok(());
        }
        s.fin_queued = true;
        self.schedule(stream);
        Ok(())
    }

    /// Abort `stream`: queued data is dropped and RESET goes out. Also the
    /// server's refusal of an OPEN.
    pub fn reset(&mut self, stream: StreamId, code: u16, reason: &str) -> Result<(), MuxError> {
        if self.is_closed() {
            return Err(MuxError::Closed);
        }
        let s = self
            .streams
            .remove(&stream)
            .ok_or(MuxError::UnknownStream(stream))?;
        // A client stream whose OPEN never went out needs no RESET.
        if s.state != StreamState::Requested {
            self.control.push_back(Frame::Reset {
                stream,
                code,
                reason: clamp_text(reason).to_owned(),
            });
        }
        Ok(())
    }

    /// The application wrote `n` bytes of [`Event::Data`] out; grant them
    /// back to the peer. Unknown (finished) streams are ignored.
    pub fn consumed(&mut self, stream: StreamId, n: usize) {
        if self.is_closed() {
            return;
        }
        let Some(window) = self.negotiated.map(|neg| u64::from(neg.window)) else {
            return;
        };
        let shared = self.streams.len() > 1;
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if s.fin_received {
            return;
        }
        // Never grant more than the peer can have used.
        let outstanding = window.saturating_sub(s.recv_window + s.pending_grant);
        s.pending_grant += (n as u64).min(outstanding);
        // A stream alone in its session may hold the whole window; one that
        // shares it holds at most SHARED_WINDOW, so an interactive stream's
        // frames do not queue behind a window's worth of bulk data. Grants
        // are only held back, never made beyond the bytes written.
        let target = if shared {
            window.min(u64::from(SHARED_WINDOW))
        } else {
            window
        };
        let room = target.saturating_sub(s.recv_window);
        let inc = s.pending_grant.min(room);
        // Coalesce: one WINDOW per quarter of the target, so small reads do
        // not become one frame each. The peer still holds ≥ 3/4 of it.
        if inc >= (target / 4).max(1) {
            s.pending_grant -= inc;
            s.recv_window += inc;
            self.control.push_back(Frame::Window {
                stream,
                increment: u32::try_from(inc).unwrap_or(u32::MAX),
            });
        }
    }

    /// End the session: CLOSE is the next (and last) frame out.
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.is_closed() {
            return;
        }
        let reason = clamp_text(reason).to_owned();
        self.close_frame = Some(Frame::Close {
            code,
            reason: reason.clone(),
        });
        self.end(code, reason, Initiator::Local);
    }

    fn protocol_error(&mut self, reason: &str) {
        self.close(code::close::PROTOCOL_ERROR, reason);
    }

    fn end(&mut self, code: u16, reason: String, initiator: Initiator) {
        self.state = SessionState::Closing;
        self.streams.clear();
        self.ready.clear();
        self.control.clear();
        self.pending_pong = None;
        self.ping_due = None;
        self.events.push_back(Event::Closed {
            code,
            reason,
            initiator,
        });
    }

    fn schedule(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.in_ready && s.state == StreamState::Open && s.has_output() {
                s.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    fn drop_stream(&mut self, id: StreamId) {
        // `ready` may still hold the id; next_data_frame skips missing ids.
        self.streams.remove(&id);
    }
}
