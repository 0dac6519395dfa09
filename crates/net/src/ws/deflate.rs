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

mod frame;
mod inbound;
mod layer;
mod offer;
mod outbound;
mod zlib;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use ::http::{HeaderMap, HeaderValue, header::SEC_WEBSOCKET_EXTENSIONS};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) use layer::Layer;
pub use offer::DeflateParams;

use super::WsConfig;

/// Default smallest message the server compresses.
pub const DEFAULT_MIN_SIZE: usize = 64;
/// Default deflate level (0–9).
pub const DEFAULT_LEVEL: u32 = 6;

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

    pub(crate) fn close_reason(&self) -> &'static str {
        match self {
            DeflateError::TooBig { .. } => "message too big after inflating",
            DeflateError::Corrupt(_) => "invalid deflate data",
            DeflateError::Protocol(_) => "permessage-deflate protocol error",
        }
    }
}

pub(crate) type Slot = Arc<Mutex<Option<DeflateParams>>>;

/// Used from the websocket handshake callback: reads the client's offer and
/// records what was agreed for the stream it came from.
#[derive(Clone, Debug)]
pub struct Negotiator {
    pub(crate) slot: Slot,
    pub(crate) config: DeflateConfig,
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
