//! permessage-deflate (RFC 7692) for server websockets, as a byte-stream
//! layer placed **under** tokio-tungstenite.
//!
//! tungstenite 0.29 has no extension support and refuses frames with RSV1
//! set, so compression happens below it: [`DeflateStream`] wraps the socket
//! before the HTTP upgrade, lets the handshake through unchanged, and from
//! the `101` on rewrites frames in both directions:
//!
//! - client → server: a message whose first frame has RSV1 is unmasked,
//!   inflated (raw DEFLATE, `00 00 FF FF` appended at the end of the
//!   message, §7.2.2) and handed to tungstenite as plain frames (masked with
//!   a zero key, split at the frame-size limit). Control frames interleaved
//!   in a fragmented message pass through at once; uncompressed messages
//!   pass through unchanged.
//! - server → client: data messages of at least
//!   [`DeflateConfig::min_size`] bytes are deflated with a sync flush, the
//!   trailing `00 00 FF FF` stripped, RSV1 set (fragmented messages too:
//!   RSV1 on the first frame only). Smaller ones go out plain, as the RFC
//!   allows.
//!
//! The server side is negotiated through a [`Negotiator`] used from the
//! tungstenite handshake callback ([`crate::ws::accept_deflate`] does it
//! all). Context takeover is supported both ways: the client's window is
//! always kept unless it offered `client_no_context_takeover` (the ThingWorx
//! C SDK needs it kept), the server keeps its window when
//! [`DeflateConfig::server_context_takeover`] is set, and otherwise answers
//! `server_no_context_takeover` and borrows a compressor from a small
//! process-wide pool per message. Memory: an idle connection holds no
//! buffers; a kept inflate window costs ~43 KiB and a kept deflate window
//! ~310 KiB (miniz_oxide, measured), each allocated at first use.
//!
//! Limits: a compressed frame larger than [`DeflateConfig::max_frame_size`]
//! or a message that inflates past [`DeflateConfig::max_message_size`] fails
//! the connection: a close frame (1009, or 1002/1007 for bad data) is sent
//! and the read returns an I/O error wrapping a [`DeflateError`].

mod codec;
mod offer;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use ::http::{HeaderMap, HeaderValue, header::SEC_WEBSOCKET_EXTENSIONS};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use codec::{Inbound, Outbound};
pub use offer::DeflateParams;

use super::WsConfig;

/// Default smallest message the server compresses.
pub const DEFAULT_MIN_SIZE: usize = 64;
/// Default deflate level (0–9).
pub const DEFAULT_LEVEL: u32 = 6;
/// Bytes queued for the socket before writes from tungstenite wait.
const HIGH_WATER: usize = 64 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Close opcode.
const OP_CLOSE: u8 = 0x8;

/// What this server accepts and how it compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Keep the deflate window across messages sent to the client (better
    /// ratio for small similar messages, ~310 KiB per connection). When
    /// false the server always answers `server_no_context_takeover`.
    pub server_context_takeover: bool,
    /// Deflate level, 0 (store) to 9.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed.
    pub min_size: usize,
    /// Largest message after inflating; past it the connection is closed
    /// with 1009.
    pub max_message_size: usize,
    /// Largest compressed frame accepted from the client, and the size of
    /// the plain frames handed to tungstenite.
    pub max_frame_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig::for_ws(&WsConfig::default())
    }
}

impl DeflateConfig {
    /// Server context takeover, level 6, 64-byte threshold, and the message
    /// and frame limits of `ws`.
    pub fn for_ws(ws: &WsConfig) -> Self {
        DeflateConfig {
            server_context_takeover: true,
            level: DEFAULT_LEVEL,
            min_size: DEFAULT_MIN_SIZE,
            max_message_size: ws.max_message_size,
            max_frame_size: ws.max_frame_size,
        }
    }
}

/// Why a compressed connection was failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateError {
    /// A message inflated past the limit, or a compressed frame was too large.
    #[error("message larger than {limit} bytes (permessage-deflate)")]
    TooBig {
        /// The limit that was hit.
        limit: usize,
    },
    /// The compressed data is not valid DEFLATE.
    #[error("invalid deflate data: {0}")]
    Corrupt(String),
    /// A frame breaks RFC 7692 (e.g. RSV1 on a control frame).
    #[error("permessage-deflate protocol error: {0}")]
    Protocol(&'static str),
}

impl DeflateError {
    /// The close code sent to the client.
    pub fn close_code(&self) -> u16 {
        match self {
            DeflateError::TooBig { .. } => 1009,
            DeflateError::Corrupt(_) => 1007,
            DeflateError::Protocol(_) => 1002,
        }
    }

    fn close_reason(&self) -> &'static str {
        match self {
            DeflateError::TooBig { .. } => "message too big after inflating",
            DeflateError::Corrupt(_) => "invalid deflate data",
            DeflateError::Protocol(_) => "permessage-deflate protocol error",
        }
    }
}

type Slot = Arc<Mutex<Option<DeflateParams>>>;

/// Used from the websocket handshake callback: reads the client's offer and
/// records what was agreed for the stream it came from.
#[derive(Clone, Debug)]
pub struct Negotiator {
    slot: Slot,
    config: DeflateConfig,
}

impl Negotiator {
    /// Picks the first acceptable `permessage-deflate` offer in the request
    /// headers. On success the stream will compress after the `101` and the
    /// returned value must be put in the response as
    /// `Sec-WebSocket-Extensions`. `None`: no offer, or none acceptable
    /// (the extension is then declined and the stream passes bytes through).
    pub fn negotiate(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let offers = headers
            .get_all(SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .map(HeaderValue::as_bytes);
        let params = offer::negotiate(offers, &self.config)?;
        let value = HeaderValue::from_str(&params.response_value()).ok()?;
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(params);
        }
        Some(value)
    }

    /// What was agreed, if anything (yet).
    pub fn agreed(&self) -> Option<DeflateParams> {
        self.slot.lock().ok().and_then(|s| *s)
    }
}

/// Matches the end of an HTTP head (`\r\n\r\n`) across chunks.
#[derive(Clone, Copy, Debug, Default)]
struct HeadEnd(u8);

impl HeadEnd {
    /// Feeds bytes; returns the index just past the terminator if found.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        const T: &[u8; 4] = b"\r\n\r\n";
        for (i, &b) in data.iter().enumerate() {
            self.0 = if b == T[self.0 as usize] {
                self.0 + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if self.0 == 4 {
                return Some(i + 1);
            }
        }
        None
    }
}

struct Codec {
    params: DeflateParams,
    inbound: Inbound,
    outbound: Outbound,
}

enum Mode {
    /// Negotiation not looked at yet.
    Unresolved,
    /// No extension: bytes pass through.
    Plain,
    /// permessage-deflate agreed.
    Deflate(Box<Codec>),
}

/// The layer's state, apart from the stream it runs on. Shared by
/// [`DeflateStream`] and [`crate::accept::ServerStream`].
pub(crate) struct Layer {
    config: DeflateConfig,
    slot: Option<Slot>,
    /// Set while the HTTP request is being read.
    read_head: Option<HeadEnd>,
    /// Set while the HTTP response is being written.
    write_head: Option<HeadEnd>,
    /// Bytes read past the request head before frames were expected.
    early: Vec<u8>,
    mode: Mode,
    failed: bool,
}

impl Layer {
    /// Watches a server handshake; returns the negotiator for its callback.
    pub(crate) fn server(config: DeflateConfig) -> (Layer, Negotiator) {
        let slot: Slot = Arc::new(Mutex::new(None));
        let layer = Layer {
            config,
            slot: Some(slot.clone()),
            read_head: Some(HeadEnd::default()),
            write_head: Some(HeadEnd::default()),
            early: Vec::new(),
            mode: Mode::Unresolved,
            failed: false,
        };
        (layer, Negotiator { slot, config })
    }

    /// Frames from the first byte, with `params` agreed (or none).
    pub(crate) fn established(params: Option<DeflateParams>, config: DeflateConfig) -> Layer {
        let mut layer = Layer {
            config,
            slot: None,
            read_head: None,
            write_head: None,
            early: Vec::new(),
            mode: Mode::Unresolved,
            failed: false,
        };
        layer.mode = layer.build(params);
        layer
    }

    fn build(&self, params: Option<DeflateParams>) -> Mode {
        match params {
            None => Mode::Plain,
            Some(p) => Mode::Deflate(Box::new(Codec {
                params: p,
                inbound: Inbound::new(p, &self.config),
                outbound: Outbound::new(p, &self.config),
            })),
        }
    }

    fn resolve(&mut self) {
        if let Mode::Unresolved = self.mode {
            let params = self
                .slot
                .take()
                .and_then(|s| s.lock().ok().and_then(|g| *g));
            self.mode = self.build(params);
        }
    }

    /// What was agreed, once the handshake is over.
    pub(crate) fn params(&self) -> Option<DeflateParams> {
        match &self.mode {
            Mode::Deflate(c) => Some(c.params),
            _ => None,
        }
    }

    pub(crate) fn poll_read<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Some(head) = &mut self.read_head {
            // Hand out the request up to its end only: what follows is frames.
            let before = buf.filled().len();
            ready!(Pin::new(&mut *io).poll_read(cx, buf))?;
            let fresh = &buf.filled()[before..];
            if let Some(end) = head.scan(fresh) {
                self.early.extend_from_slice(&fresh[end..]);
                buf.set_filled(before + end);
                self.read_head = None;
            }
            return Poll::Ready(Ok(()));
        }
        self.resolve();
        let codec = match &mut self.mode {
            Mode::Deflate(c) => c,
            _ => {
                if !self.early.is_empty() {
                    let n = self.early.len().min(buf.remaining());
                    buf.put_slice(&self.early[..n]);
                    self.early.drain(..n);
                    if self.early.is_empty() {
                        self.early = Vec::new();
                    }
                    return Poll::Ready(Ok(()));
                }
                return Pin::new(io).poll_read(cx, buf);
            }
        };
        if self.failed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "permessage-deflate stream failed",
            )));
        }
        if !self.early.is_empty() {
            codec.inbound.push(&self.early);
            self.early = Vec::new();
            if let Err(e) = codec.inbound.process() {
                return Poll::Ready(Err(fail(&mut self.failed, codec, io, cx, e)));
            }
        }
        loop {
            let ready = codec.inbound.ready();
            if !ready.is_empty() {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                codec.inbound.consume(n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                if codec.inbound.has_partial() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a compressed frame",
                    )));
                }
                return Poll::Ready(Ok(()));
            }
            codec.inbound.push(rb.filled());
            if let Err(e) = codec.inbound.process() {
                return Poll::Ready(Err(fail(&mut self.failed, codec, io, cx, e)));
            }
        }
    }

    pub(crate) fn poll_write<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Some(head) = &mut self.write_head {
            let mut probe = *head;
            let limit = probe.scan(buf).unwrap_or(buf.len());
            let n = ready!(Pin::new(&mut *io).poll_write(cx, &buf[..limit]))?;
            if head.scan(&buf[..n]).is_some() {
                self.write_head = None;
                // The handshake callback has run: settle the mode now.
                self.resolve();
            }
            return Poll::Ready(Ok(n));
        }
        self.resolve();
        let codec = match &mut self.mode {
            Mode::Deflate(c) => c,
            _ => return Pin::new(io).poll_write(cx, buf),
        };
        if self.failed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "permessage-deflate stream failed",
            )));
        }
        if drain(&mut codec.outbound, io, cx)?.is_pending()
            && codec.outbound.ready().len() >= HIGH_WATER
        {
            return Poll::Pending;
        }
        let n = codec
            .outbound
            .push(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // Start sending at once; the rest goes out on flush.
        let _ = drain(&mut codec.outbound, io, cx)?;
        Poll::Ready(Ok(n))
    }

    pub(crate) fn poll_flush<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Mode::Deflate(codec) = &mut self.mode {
            ready!(drain(&mut codec.outbound, io, cx))?;
        }
        Pin::new(io).poll_flush(cx)
    }

    pub(crate) fn poll_shutdown<S>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Mode::Deflate(codec) = &mut self.mode {
            ready!(drain(&mut codec.outbound, io, cx))?;
        }
        Pin::new(io).poll_shutdown(cx)
    }
}

/// Writes queued bytes until done (`Ready`) or the socket is full (`Pending`).
fn drain<S>(out: &mut Outbound, io: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>
where
    S: AsyncWrite + Unpin,
{
    while !out.ready().is_empty() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, out.ready()))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        out.consume(n);
    }
    Poll::Ready(Ok(()))
}

/// Fails the connection: queue a close frame if possible, push it out
/// without waiting, and return the error for the reader.
fn fail<S>(
    failed: &mut bool,
    codec: &mut Codec,
    io: &mut S,
    cx: &mut Context<'_>,
    e: DeflateError,
) -> io::Error
where
    S: AsyncWrite + Unpin,
{
    *failed = true;
    if codec.outbound.at_boundary() {
        let mut payload = e.close_code().to_be_bytes().to_vec();
        payload.extend_from_slice(e.close_reason().as_bytes());
        codec.outbound.queue_frame(OP_CLOSE, &payload);
        if let Poll::Ready(Ok(())) = drain(&mut codec.outbound, io, cx) {
            let _ = Pin::new(&mut *io).poll_flush(cx);
        }
    }
    tracing::debug!(error = %e, "permessage-deflate: failing the connection");
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// A server byte stream with permessage-deflate underneath tungstenite.
/// Build it with [`DeflateStream::server`] before the HTTP upgrade and use
/// the [`Negotiator`] in the handshake callback, or with
/// [`DeflateStream::established`] when the handshake was done elsewhere.
pub struct DeflateStream<S> {
    io: S,
    layer: Layer,
}

impl<S> DeflateStream<S> {
    /// Wraps a fresh server stream: the HTTP upgrade passes through, and what
    /// the [`Negotiator`] agrees on applies from the `101` on.
    pub fn server(io: S, config: DeflateConfig) -> (Self, Negotiator) {
        let (layer, negotiator) = Layer::server(config);
        (DeflateStream { io, layer }, negotiator)
    }

    /// Wraps a server stream whose handshake is done: frames from the first
    /// byte, compressed with `params` (`None`: plain pass-through).
    pub fn established(io: S, params: Option<DeflateParams>, config: DeflateConfig) -> Self {
        DeflateStream {
            io,
            layer: Layer::established(params, config),
        }
    }

    /// What was agreed (`None` before the `101` or when declined).
    pub fn params(&self) -> Option<DeflateParams> {
        self.layer.params()
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The wrapped stream (writing to it directly corrupts the websocket).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.layer.poll_read(&mut this.io, cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.layer.poll_write(&mut this.io, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.layer.poll_flush(&mut this.io, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.layer.poll_shutdown(&mut this.io, cx)
    }
}

#[cfg(test)]
mod tests;
