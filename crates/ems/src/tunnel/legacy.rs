//! The legacy ThingWorx tunnel (spec/alwayson.md §8.1-8.2), spoken when
//! `StartTunnel` carries no native URL and token (a ThingWorx platform) or
//! when `tunnel.mode = "legacy"`.
//!
//! - One WebSocket per tunnel to `/Thingworx/WSTunnelServer/<tid>` on the
//!   AlwaysOn servers (same host, port, scheme and TLS trust, tried in the
//!   configured order), with the `appKey` header. A failed attach reports
//!   `TunnelCommandFromEdge CANCEL`.
//! - One local TCP connection at a time: `TunnelCommandToEdge CONNECT`
//!   connects it (allow-list checked again, `num_connects` counted down:
//!   "Exceeded allowable number of connect attempts" once spent) and is
//!   answered only once connected, so a refusal reaches the client.
//!   Data arriving while no connection is open connects one, if attempts
//!   remain.
//! - Local bytes go out as base64 text frames of at most `chunksize − 16`
//!   bytes; text frames from the platform are decoded and written to the
//!   local socket.
//! - Ordering across the two channels (tunnel socket, AlwaysOn): when the
//!   local socket closes, the edge sends a WebSocket ping after its last
//!   data frame and reports `TunnelCommandFromEdge DISCONNECT` only once
//!   the pong came back, i.e. once the platform has read every byte before
//!   it. Likewise a `DISCONNECT` from the platform closes the local socket
//!   only after a ping round trip, so data the platform sent before the
//!   command still reaches the target.
//! - `CompleteTunnel` closes the tunnel; `idle_timeout` without a byte
//!   either way reports `CANCEL` and closes it ("Tunnel stopped by edge").
//!   The end is logged with its reason, who ended it and the byte counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alwayson::{Characteristic, Code, EntityType, InfoTable, Primitive, RequestBody};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::params::{self, StartParams};
use super::{Answer, IDLE_CHECK, Tunnels, activity, lock, refuse};
use crate::config::Config;
use crate::secret::Secret;
use crate::uplink::{Outcome, Uplink};

/// Resource of the tunnel endpoint on the platform.
pub(crate) const RESOURCE: &str = "/Thingworx/WSTunnelServer/";
/// Bytes the C SDK keeps back from `chunksize` per frame.
const CHUNK_RESERVE: usize = 16;
/// Bounds of the raw bytes per text frame.
const MIN_CHUNK: usize = 256;
const MAX_CHUNK: usize = 48 * 1024;
/// Largest text message accepted from the platform.
const MAX_MESSAGE: usize = 256 * 1024;
/// Deadline of one local TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of one WebSocket send or one local write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The platform pings every 15 s: four times that in silence is a dead socket.
const SILENCE: Duration = Duration::from_secs(60);
/// The edge pings the platform this often, so a quiet tunnel is not taken
/// for a dead one by either side.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Deadline of a `TunnelCommandFromEdge` call.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued towards the platform (each ≤ `MAX_CHUNK` raw bytes).
const OUT_QUEUE: usize = 16;
/// Commands queued towards one tunnel.
const CONTROL_QUEUE: usize = 8;
/// Close reason the edge sends (as the C SDK).
const STOPPED_BY_EDGE: &str = "Tunnel stopped by edge";
/// Connect attempts exhausted (as the C SDK).
const EXHAUSTED: &str = "Exceeded allowable number of connect attempts";

/// How legacy tunnels reach the platform: the AlwaysOn servers, the app
/// key, and the uplink for `TunnelCommandFromEdge`.
pub(crate) struct Link {
    /// `ws[s]://host:port` of each configured server, in order.
    bases: Vec<String>,
    app_key: Secret,
    uplink: Uplink,
    connect_timeout: Duration,
}

impl Link {
    pub fn new(config: &Config, uplink: Uplink) -> Self {
        let scheme = if config.connection.tls { "wss" } else { "ws" };
        let bases = config
            .servers
            .iter()
            .map(|s| {
                let host = if s.host.contains(':') && !s.host.starts_with('[') {
                    format!("[{}]", s.host)
                } else {
                    s.host.clone()
                };
                format!("{scheme}://{host}:{}", s.port)
            })
            .collect();
        Link {
            bases,
            app_key: config.app_key.clone(),
            uplink,
            connect_timeout: config.connection.connect_timeout,
        }
    }

    /// `TunnelCommandFromEdge {tid, command}` on `thing`.
    async fn report(&self, thing: &str, tid: &str, command: &str) -> Result<(), String> {
        let body = RequestBody::new(
            EntityType::THING,
            thing.to_owned(),
            Characteristic::SERVICES,
            "TunnelCommandFromEdge",
        )
        .with_params(InfoTable::single_row([
            ("tid", Primitive::String(tid.to_owned())),
            ("command", Primitive::String(command.to_owned())),
        ]));
        match timeout(REPORT_TIMEOUT, self.uplink.request(Code::POST, body, false)).await {
            Ok(Ok(Outcome::Answered(r))) if r.code.is_success() => Ok(()),
            Ok(Ok(Outcome::Answered(r))) => Err(format!(
                "the platform answered {}{}",
                r.code,
                r.reason.map(|s| format!(" ({s})")).unwrap_or_default()
            )),
            Ok(Ok(Outcome::Stored)) => Err("stored offline".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in time".to_owned()),
        }
    }
}

/// The legacy part of a live tunnel (shared with the service handlers).
#[derive(Clone)]
pub(crate) struct LiveLegacy {
    control: mpsc::Sender<Control>,
    host: String,
    port: u16,
    /// CONNECTs left; None = no limit.
    connects_left: Arc<std::sync::Mutex<Option<u32>>>,
    /// Why the platform completed the tunnel.
    completed: Arc<std::sync::Mutex<Option<String>>>,
}

impl LiveLegacy {
    pub fn new(p: &StartParams) -> (Self, mpsc::Receiver<Control>) {
        let (control, rx) = mpsc::channel(CONTROL_QUEUE);
        (
            LiveLegacy {
                control,
                host: p.host.clone(),
                port: p.port,
                connects_left: Arc::new(std::sync::Mutex::new(p.num_connects)),
                completed: Arc::new(std::sync::Mutex::new(None)),
            },
            rx,
        )
    }

    /// Record the platform's `CompleteTunnel` reason.
    pub fn complete(&self, reason: String) {
        *lock(&self.completed) = Some(reason);
    }

    /// Spend one connect attempt.
    fn spend_attempt(&self) -> Result<(), String> {
        let mut left = lock(&self.connects_left);
        match *left {
            None => Ok(()),
            Some(0) => Err(EXHAUSTED.to_owned()),
            Some(n) => {
                *left = Some(n - 1);
                Ok(())
            }
        }
    }
}

/// What the service handlers tell a running legacy tunnel.
pub(crate) enum Control {
    /// CONNECT succeeded: this is the new local connection.
    Attach(TcpStream),
    /// DISCONNECT: close the local connection.
    Disconnect,
}

/// The local connection of a tunnel.
struct Local {
    /// Numbers the connections of this tunnel (ping markers carry it).
    n: u64,
    write: OwnedWriteHalf,
    reader: JoinHandle<()>,
    /// A DISCONNECT (or the end of the local socket) is waiting for its
    /// ping round trip.
    closing: bool,
}

impl Local {
    async fn close(mut self) {
        self.reader.abort();
        let _ = timeout(Duration::from_secs(2), self.write.shutdown()).await;
    }
}

/// Ping payloads used as ordering barriers.
fn marker(kind: &str, n: u64) -> Bytes {
    Bytes::from(format!("tether-{kind}-{n}"))
}

/// Who ended a tunnel.
#[derive(Debug, Clone, Copy)]
enum Initiator {
    Platform,
    Edge,
}

/// Percent-encode a tid for the URL path (it holds no `/` or controls).
fn path_segment(tid: &str) -> String {
    let mut out = String::with_capacity(tid.len());
    for b in tid.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The WebSocket configuration of a tunnel: direct writes, small messages.
fn ws_config() -> net::ws::WsConfig {
    net::ws::WsConfig {
        read_buffer_size: 64 * 1024,
        write_buffer_size: 0,
        max_write_buffer_size: 4 * 1024 * 1024,
        max_message_size: MAX_MESSAGE,
        max_frame_size: MAX_MESSAGE,
        accept_unmasked_frames: false,
    }
}

impl Tunnels {
    /// `TunnelCommandToEdge {tid, command}`.
    pub(super) async fn command(&self, thing: &str, params: Option<&InfoTable>) -> Answer {
        let Some(tid) = params::string(params, "tid") else {
            return refuse(Code::BAD_REQUEST, "TunnelCommandToEdge needs tid");
        };
        let command = params::string(params, "command")
            .unwrap_or_default()
            .to_ascii_uppercase();
        let found = lock(&self.inner.live)
            .get(&tid)
            .filter(|l| l.thing == thing)
            .map(|l| l.legacy.clone());
        let legacy = match found {
            None => return refuse(Code::NOT_FOUND, &format!("no tunnel {tid} on {thing}")),
            Some(None) => {
                return refuse(
                    Code::BAD_REQUEST,
                    &format!("tunnel {tid} is a native tunnel: TunnelCommandToEdge does not apply"),
                );
            }
            Some(Some(l)) => l,
        };
        match command.as_str() {
            "CONNECT" => match self.connect_local(&legacy).await {
                Ok(tcp) => {
                    let sent =
                        timeout(CONNECT_TIMEOUT, legacy.control.send(Control::Attach(tcp))).await;
                    if matches!(sent, Ok(Ok(()))) {
                        tracing::info!(%tid, thing, "CONNECT: local connection open");
                        (Code::SUCCESS, None)
                    } else {
                        refuse(Code::NOT_FOUND, &format!("tunnel {tid} has ended"))
                    }
                }
                Err((code, why)) => {
                    tracing::warn!(%tid, thing, %why, "CONNECT refused");
                    refuse(code, &why)
                }
            },
            "DISCONNECT" => {
                let _ = timeout(CONNECT_TIMEOUT, legacy.control.send(Control::Disconnect)).await;
                (Code::SUCCESS, None)
            }
            other => refuse(
                Code::BAD_REQUEST,
                &format!("TunnelCommandToEdge: unknown command {other:?} (CONNECT or DISCONNECT)"),
            ),
        }
    }

    /// Connect the tunnel's target: allow-list, attempts, then TCP.
    async fn connect_local(&self, legacy: &LiveLegacy) -> Result<TcpStream, (Code, String)> {
        let (host, port) = (legacy.host.as_str(), legacy.port);
        if !self.inner.cfg.allows(host, port) {
            return Err((
                Code::FORBIDDEN,
                format!("target {host}:{port} is not in this edge's tunnel.allowed_targets"),
            ));
        }
        legacy.spend_attempt().map_err(|e| (Code::BAD_REQUEST, e))?;
        let connect = async {
            let addr = super::resolve(host, port).await.map_err(|r| r.reason)?;
            TcpStream::connect(addr)
                .await
                .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))
        };
        let tcp = timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| format!("cannot connect to {host}:{port}: timed out"))
            .and_then(|r| r)
            .map_err(|e| (Code::BAD_GATEWAY, e))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Attach to the platform's tunnel endpoint and carry the local
    /// connection until the tunnel ends.
    pub(super) async fn run_legacy(
        &self,
        p: StartParams,
        thing: String,
        mut control: mpsc::Receiver<Control>,
        stop: CancellationToken,
    ) {
        let link = &self.inner.link;
        let headers = [
            ("appKey", link.app_key.expose()),
            ("User-Agent", "tether-ems"),
        ];
        let path = format!("{RESOURCE}{}", path_segment(&p.tid));
        let attach = async {
            let mut errors = Vec::new();
            for base in &link.bases {
                let url = format!("{base}{path}");
                match net::ws::connect(
                    &url,
                    &headers,
                    self.inner.tls.clone(),
                    ws_config(),
                    link.connect_timeout,
                )
                .await
                {
                    Ok(ws) => return Ok(ws),
                    Err(e) => errors.push(format!("{url}: {e}")),
                }
            }
            Err(errors.join("; "))
        };
        let ws = tokio::select! {
            _ = stop.cancelled() => {
                tracing::info!("tunnel ended before attaching: completed or shutting down");
                return;
            }
            r = attach => match r {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel ended: cannot attach to the platform's tunnel endpoint");
                    if let Err(why) = link.report(&thing, &p.tid, "CANCEL").await {
                        tracing::debug!(%why, "CANCEL not delivered");
                    }
                    return;
                }
            },
        };
        tracing::info!(
            read_timeout_ms = p.read_timeout.map(|d| d.as_millis() as u64),
            "legacy tunnel attached"
        );
        let chunk = p
            .chunksize
            .unwrap_or(self.inner.cfg.buffer_size)
            .saturating_sub(CHUNK_RESERVE)
            .clamp(MIN_CHUNK, MAX_CHUNK);
        let idle = self.inner.cfg.idle_timeout.min(p.idle_timeout);
        let legacy = lock(&self.inner.live)
            .get(&p.tid)
            .and_then(|l| l.legacy.clone());
        let Some(legacy) = legacy else {
            return;
        };
        let mut t = Running {
            tunnels: self.clone(),
            legacy,
            tid: p.tid.clone(),
            thing,
            chunk,
            clock: activity::Clock::new(),
            up: Arc::new(AtomicU64::new(0)),
            down: 0,
            connections: 0,
            local: None,
            stop: stop.clone(),
        };
        let (sink, stream) = ws.split();
        let (out, out_rx) = mpsc::channel::<Message>(OUT_QUEUE);
        let mut writer = tokio::spawn(write_loop(sink, out_rx));
        let (reason, initiator, cancel) = t
            .serve(stream, &out, &mut control, &mut writer, &stop, idle)
            .await;
        if let Some(local) = t.local.take() {
            local.close().await;
        }
        if cancel {
            if let Err(why) = self.inner.link.report(&t.thing, &t.tid, "CANCEL").await {
                tracing::debug!(%why, "CANCEL not delivered");
            }
        }
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: STOPPED_BY_EDGE.into(),
        }));
        let _ = out.try_send(close);
        drop(out);
        if timeout(Duration::from_secs(2), &mut writer).await.is_err() {
            writer.abort();
        }
        tracing::info!(
            %reason,
            initiator = ?initiator,
            bytes_edge_to_platform = t.up.load(Ordering::Relaxed),
            bytes_platform_to_edge = t.down,
            connections = t.connections,
            "tunnel ended"
        );
    }
}

/// The state of one attached legacy tunnel.
struct Running {
    tunnels: Tunnels,
    legacy: LiveLegacy,
    tid: String,
    thing: String,
    chunk: usize,
    clock: activity::Clock,
    up: Arc<AtomicU64>,
    down: u64,
    connections: u64,
    local: Option<Local>,
    stop: CancellationToken,
}

type WsStream = futures_util::stream::SplitStream<net::ws::ClientWs>;
type WsSink = futures_util::stream::SplitSink<net::ws::ClientWs, Message>;

impl Running {
    /// The tunnel's loop. Returns (why it ended, who ended it, whether to
    /// report CANCEL).
    async fn serve(
        &mut self,
        mut stream: WsStream,
        out: &mpsc::Sender<Message>,
        control: &mut mpsc::Receiver<Control>,
        writer: &mut JoinHandle<Result<(), String>>,
        stop: &CancellationToken,
        idle: Duration,
    ) -> (String, Initiator, bool) {
        let mut tick = tokio::time::interval(IDLE_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Control first: an Attach is queued before the CONNECT
                // answer, so it is seen before the data that follows it.
                biased;
                _ = stop.cancelled() => {
                    let completed = lock(&self.legacy.completed).clone();
                    return match completed {
                        Some(r) => (format!("completed by the platform: {r}"), Initiator::Platform, false),
                        None => ("the EMS is shutting down".to_owned(), Initiator::Edge, false),
                    };
                }
                c = control.recv() => match c {
                    Some(Control::Attach(tcp)) => self.attach(tcp, out).await,
                    Some(Control::Disconnect) => {
                        if let Some(l) = self.local.as_mut().filter(|l| !l.closing) {
                            l.closing = true;
                            let _ = out.send(Message::Ping(marker("disconnect", l.n))).await;
                        }
                    }
                    None => return ("the tunnel was removed".to_owned(), Initiator::Edge, false),
                },
                w = &mut *writer => {
                    let why = match w {
                        Ok(Err(e)) => e,
                        _ => "writer stopped".to_owned(),
                    };
                    return (format!("connection to the platform lost: {why}"), Initiator::Platform, false);
                }
                m = timeout(SILENCE, stream.next()) => {
                    let msg = match m {
                        Err(_) => return ("the platform went silent".to_owned(), Initiator::Platform, true),
                        Ok(None) => return ("the platform closed the connection".to_owned(), Initiator::Platform, false),
                        Ok(Some(Err(e))) => return (format!("connection to the platform lost: {e}"), Initiator::Platform, false),
                        Ok(Some(Ok(m))) => m,
                    };
                    if let Some(end) = self.on_message(msg, out).await {
                        return end;
                    }
                }
                _ = keepalive.tick() => {
                    let _ = out.try_send(Message::Ping(Bytes::from_static(b"tether-keepalive")));
                }
                _ = tick.tick() => {
                    if self.clock.idle_for() >= idle {
                        return (format!("idle timeout ({} ms without data)", idle.as_millis()), Initiator::Edge, true);
                    }
                }
            }
        }
    }

    /// A new local connection (CONNECT, or data with none open).
    async fn attach(&mut self, tcp: TcpStream, out: &mpsc::Sender<Message>) {
        if let Some(old) = self.local.take() {
            tracing::info!("a new connection replaces the open one");
            old.close().await;
        }
        self.connections += 1;
        let n = self.connections;
        let (read, write) = tcp.into_split();
        let reader = tokio::spawn(read_loop(
            read,
            out.clone(),
            self.chunk,
            n,
            self.clock.clone(),
            self.up.clone(),
        ));
        self.clock.touch();
        self.local = Some(Local {
            n,
            write,
            reader,
            closing: false,
        });
    }

    /// One message from the platform; Some when the tunnel ends.
    async fn on_message(
        &mut self,
        msg: Message,
        out: &mpsc::Sender<Message>,
    ) -> Option<(String, Initiator, bool)> {
        match msg {
            Message::Text(t) => {
                let Ok(bytes) = STANDARD.decode(t.as_str().trim()) else {
                    return Some((
                        "protocol error: a text frame is not base64".to_owned(),
                        Initiator::Edge,
                        true,
                    ));
                };
                self.down += bytes.len() as u64;
                self.clock.touch();
                self.write_local(&bytes, out).await;
            }
            Message::Binary(_) => {
                return Some((
                    "protocol error: binary frame on a legacy tunnel".to_owned(),
                    Initiator::Edge,
                    true,
                ));
            }
            Message::Pong(p) => self.on_pong(&p).await,
            Message::Close(c) => {
                let detail = c
                    .map(|c| format!(" ({} {})", u16::from(c.code), c.reason))
                    .unwrap_or_default();
                return Some((
                    format!("the platform closed the tunnel{detail}"),
                    Initiator::Platform,
                    false,
                ));
            }
            Message::Ping(_) | Message::Frame(_) => {}
        }
        None
    }

    /// Write platform bytes to the local connection, connecting one when
    /// none is open and attempts remain.
    async fn write_local(&mut self, bytes: &[u8], out: &mpsc::Sender<Message>) {
        if self.local.as_ref().is_none_or(|l| l.closing) {
            if self.local.is_some() {
                // Closing: the target still gets what came before DISCONNECT.
            } else {
                match self.tunnels.connect_local(&self.legacy).await {
                    Ok(tcp) => {
                        tracing::info!("data with no connection open: connected");
                        self.attach(tcp, out).await;
                    }
                    Err((_, why)) => {
                        tracing::debug!(%why, len = bytes.len(), "data with no connection open: dropped");
                        return;
                    }
                }
            }
        }
        let Some(local) = self.local.as_mut() else {
            return;
        };
        let written = tokio::select! {
            w = timeout(WRITE_TIMEOUT, local.write.write_all(bytes)) => w,
            // Completed or shutting down while the target is not reading.
            _ = self.stop.cancelled() => return,
        };
        if !matches!(written, Ok(Ok(()))) && !local.closing {
            // The target stopped taking bytes: as if it closed.
            tracing::info!("local write failed: disconnecting");
            local.closing = true;
            local.reader.abort();
            let _ = out.send(Message::Ping(marker("eof", local.n))).await;
        }
    }

    /// A pong: the barrier of a local close or of a DISCONNECT.
    async fn on_pong(&mut self, payload: &[u8]) {
        let Some(n) = self.local.as_ref().map(|l| l.n) else {
            return;
        };
        if payload == marker("eof", n).as_ref() {
            // Everything the target sent is with the platform: report.
            if let Some(l) = self.local.take() {
                l.close().await;
            }
            tracing::info!("local connection closed: DISCONNECT");
            let link = self.tunnels.clone();
            let (thing, tid) = (self.thing.clone(), self.tid.clone());
            self.tunnels.inner.tracker.spawn(async move {
                if let Err(why) = link.inner.link.report(&thing, &tid, "DISCONNECT").await {
                    tracing::warn!(%why, "DISCONNECT not delivered");
                }
            });
        } else if payload == marker("disconnect", n).as_ref() {
            // Everything the platform sent before DISCONNECT is written.
            if let Some(l) = self.local.take() {
                l.close().await;
            }
            tracing::info!("DISCONNECT: local connection closed");
        }
    }
}

/// Local bytes → base64 text frames; at the end a ping as the barrier.
async fn read_loop(
    mut read: OwnedReadHalf,
    out: mpsc::Sender<Message>,
    chunk: usize,
    n: u64,
    clock: activity::Clock,
    up: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; chunk];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                clock.touch();
                up.fetch_add(k as u64, Ordering::Relaxed);
                let text = STANDARD.encode(&buf[..k]);
                if out.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = out.send(Message::Ping(marker("eof", n))).await;
}

/// Frames to the platform, in order.
async fn write_loop(mut sink: WsSink, mut rx: mpsc::Receiver<Message>) -> Result<(), String> {
    while let Some(m) = rx.recv().await {
        let closing = matches!(m, Message::Close(_));
        match timeout(WRITE_TIMEOUT, sink.send(m)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("write timed out".to_owned()),
        }
        if closing {
            break;
        }
    }
    let _ = timeout(Duration::from_secs(2), sink.close()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids_are_path_safe() {
        assert_eq!(path_segment("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(path_segment("a b?#%"), "a%20b%3F%23%25");
    }

    #[test]
    fn markers_differ_per_kind_and_connection() {
        assert_ne!(marker("eof", 1), marker("eof", 2));
        assert_ne!(marker("eof", 1), marker("disconnect", 1));
    }
}
