//! The I/O side of the layer: watches the HTTP upgrade go by, then moves
//! bytes between the socket and tungstenite through [`Inbound`] and
//! [`Outbound`]. Shared by [`super::DeflateStream`] and
//! [`crate::accept::ServerStream`].

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::inbound::Inbound;
use super::outbound::Outbound;
use super::{DeflateConfig, DeflateError, DeflateParams, Negotiator, Slot};

/// Close opcode.
const OP_CLOSE: u8 = 0x8;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes queued for the socket before writes from tungstenite wait.
const HIGH_WATER: usize = 64 * 1024;

/// Matches the end of an HTTP head across chunks: an empty line, ended by
/// `\r\n` or by a bare `\n` (which httparse also accepts).
#[derive(Clone, Copy, Debug, Default)]
struct HeadEnd(u8);

impl HeadEnd {
    /// Feeds bytes; returns the index just past the terminator if found.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        // 0: inside a line, 1: just after '\n', 2: after "\n\r".
        for (i, &b) in data.iter().enumerate() {
            self.0 = match (self.0, b) {
                (1 | 2, b'\n') => return Some(i + 1),
                (_, b'\n') => 1,
                (1, b'\r') => 2,
                _ => 0,
            };
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

#[cfg(test)]
mod tests {
    use super::HeadEnd;

    fn end_of(chunks: &[&[u8]]) -> Option<(usize, usize)> {
        let mut h = HeadEnd::default();
        chunks
            .iter()
            .enumerate()
            .find_map(|(n, c)| h.scan(c).map(|at| (n, at)))
    }

    #[test]
    fn head_end_across_chunks() {
        assert_eq!(
            end_of(&[b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"]),
            Some((0, 24))
        );
        assert_eq!(
            end_of(&[b"GET / HTTP/1.1\r\nA: b\r", b"\n\r", b"\nx"]),
            Some((2, 1))
        );
        assert_eq!(end_of(&[b"GET / HTTP/1.1\nA: b\n\nrest"]), Some((0, 21)));
        assert_eq!(end_of(&[b"GET / HTTP/1.1\r\nA: b\r\n"]), None);
        assert_eq!(end_of(&[b"A: \r\r\n", b"B: c\r\n"]), None);
    }
}
