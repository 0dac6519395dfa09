//! The native tunnel frame: one frame per WebSocket binary message
//! (spec/tunnel.md, "Native frames").
//!
//! ```text
//! u8   kind
//! u32  stream      0 = the session itself, otherwise a stream id
//! ...  kind-specific body, integers big-endian
//! ```
//!
//! A message is decoded whole: the transport (WebSocket) already delimits
//! frames, so there is no "need more bytes" state. Decoding a [`Bytes`]
//! message is zero-copy for the DATA payload (a slice of the message), so a
//! broker can forward DATA without copying it. Every length is bounded: the
//! body by the `max_payload` given to [`Frame::decode_with_limit`] (at most
//! [`HARD_MAX_PAYLOAD`]), labels and reasons by [`MAX_TEXT_LEN`].

use std::fmt;
use std::num::NonZeroU32;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::FrameError;

/// Length of the common header: kind (1) + stream (4).
pub const HEADER_LEN: usize = 5;
/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Default `max_payload` (64 KiB − 16).
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 * 1024 - 16;
/// Default per-stream window announced in HELLO (1 MiB): the credit a
/// stream may use while it is the only one in its session.
pub const DEFAULT_WINDOW: u32 = 1024 * 1024;
/// The most credit a receiver lets a stream hold while other streams share
/// its session (256 KiB, or the negotiated window if smaller). A bulk
/// stream's bytes in flight sit in the FIFOs every stream shares (socket
/// buffers, the broker's queues), so this bounds how long an interactive
/// stream's frames wait behind them.
pub const SHARED_WINDOW: u32 = 256 * 1024;
/// The largest body any frame may have, whatever a HELLO says (1 MiB). A
/// WebSocket transport should cap messages at `HEADER_LEN + HARD_MAX_PAYLOAD`.
pub const HARD_MAX_PAYLOAD: u32 = 1024 * 1024;
/// The longest OPEN label or RESET/CLOSE reason, in bytes.
pub const MAX_TEXT_LEN: usize = 512;

/// DATA payloads from this size on get an aligned copy in `to_bytes`.
const ALIGN_THRESHOLD: usize = 4096;

/// Capability bit 0: session resume (reserved, not implemented).
pub const CAP_RESUME: u32 = 1 << 0;
/// Capability bit 1: QUIC transport (reserved, not implemented).
pub const CAP_QUIC: u32 = 1 << 1;
/// The capability bits this crate knows; others are ignored on receipt.
pub const KNOWN_CAPABILITIES: u32 = CAP_RESUME | CAP_QUIC;

/// A stream id: never 0 (0 names the session itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(NonZeroU32);

impl StreamId {
    /// `None` for 0, which is the session, not a stream.
    pub const fn new(id: u32) -> Option<Self> {
        match NonZeroU32::new(id) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The id on the wire.
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// Client-opened streams have odd ids.
    pub const fn is_client_initiated(self) -> bool {
        self.0.get() % 2 == 1
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The frame kinds of spec/tunnel.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Hello = 0x01,
    Open = 0x02,
    OpenOk = 0x03,
    Data = 0x04,
    Window = 0x05,
    Fin = 0x06,
    Reset = 0x07,
    Ping = 0x08,
    Pong = 0x09,
    Peer = 0x0A,
    Close = 0x0B,
}

impl Kind {
    /// The kind for a wire byte; `None` for an unknown kind.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Kind::Hello,
            0x02 => Kind::Open,
            0x03 => Kind::OpenOk,
            0x04 => Kind::Data,
            0x05 => Kind::Window,
            0x06 => Kind::Fin,
            0x07 => Kind::Reset,
            0x08 => Kind::Ping,
            0x09 => Kind::Pong,
            0x0A => Kind::Peer,
            0x0B => Kind::Close,
            _ => return None,
        })
    }

    /// True for kinds that address the session (stream 0).
    pub const fn is_session(self) -> bool {
        matches!(
            self,
            Kind::Hello | Kind::Ping | Kind::Pong | Kind::Peer | Kind::Close
        )
    }

    /// The spec's upper-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Hello => "HELLO",
            Kind::Open => "OPEN",
            Kind::OpenOk => "OPEN_OK",
            Kind::Data => "DATA",
            Kind::Window => "WINDOW",
            Kind::Fin => "FIN",
            Kind::Reset => "RESET",
            Kind::Ping => "PING",
            Kind::Pong => "PONG",
            Kind::Peer => "PEER",
            Kind::Close => "CLOSE",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of a HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub version: u8,
    pub initial_window: u32,
    pub max_payload: u32,
    pub capabilities: u32,
}

/// PEER state: the other side came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Left = 0,
    Attached = 1,
}

/// One native frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    Hello(Hello),
    Open {
        stream: StreamId,
        label: String,
    },
    OpenOk {
        stream: StreamId,
    },
    Data {
        stream: StreamId,
        payload: Bytes,
    },
    Window {
        stream: StreamId,
        increment: u32,
    },
    Fin {
        stream: StreamId,
    },
    Reset {
        stream: StreamId,
        code: u16,
        reason: String,
    },
    Ping {
        opaque: u64,
    },
    Pong {
        opaque: u64,
    },
    Peer {
        state: PeerState,
    },
    Close {
        code: u16,
        reason: String,
    },
}

/// The header of a message, read without decoding the body (the broker's
/// forwarding path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// 0 for session frames.
    pub stream: u32,
    /// Length of the body after the header.
    pub body_len: usize,
}

/// Read kind and stream id of a message; checks only the header (known kind,
/// stream 0 exactly for session kinds), not the body.
pub fn peek_header(msg: &[u8]) -> Result<Header, FrameError> {
    if msg.len() < HEADER_LEN {
        return Err(FrameError::ShortHeader { len: msg.len() });
    }
    let kind = Kind::from_u8(msg[0]).ok_or(FrameError::UnknownKind(msg[0]))?;
    let stream = u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]);
    if kind.is_session() != (stream == 0) {
        return Err(FrameError::BadStream { kind, stream });
    }
    Ok(Header {
        kind,
        stream,
        body_len: msg.len() - HEADER_LEN,
    })
}

/// Truncate `s` to at most [`MAX_TEXT_LEN`] bytes on a char boundary.
pub fn clamp_text(s: &str) -> &str {
    if s.len() <= MAX_TEXT_LEN {
        return s;
    }
    let mut end = MAX_TEXT_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Frame {
    /// The frame's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Hello(_) => Kind::Hello,
            Frame::Open { .. } => Kind::Open,
            Frame::OpenOk { .. } => Kind::OpenOk,
            Frame::Data { .. } => Kind::Data,
            Frame::Window { .. } => Kind::Window,
            Frame::Fin { .. } => Kind::Fin,
            Frame::Reset { .. } => Kind::Reset,
            Frame::Ping { .. } => Kind::Ping,
            Frame::Pong { .. } => Kind::Pong,
            Frame::Peer { .. } => Kind::Peer,
            Frame::Close { .. } => Kind::Close,
        }
    }

    /// The stream the frame addresses; `None` for session frames.
    pub fn stream(&self) -> Option<StreamId> {
        match self {
            Frame::Open { stream, .. }
            | Frame::OpenOk { stream }
            | Frame::Data { stream, .. }
            | Frame::Window { stream, .. }
            | Frame::Fin { stream }
            | Frame::Reset { stream, .. } => Some(*stream),
            Frame::Hello(_)
            | Frame::Ping { .. }
            | Frame::Pong { .. }
            | Frame::Peer { .. }
            | Frame::Close { .. } => None,
        }
    }

    /// Length of the body once encoded.
    pub fn body_len(&self) -> usize {
        match self {
            Frame::Hello(_) => 13,
            Frame::Open { label, .. } => label.len(),
            Frame::OpenOk { .. } | Frame::Fin { .. } => 0,
            Frame::Data { payload, .. } => payload.len(),
            Frame::Window { .. } => 4,
            Frame::Reset { reason, .. } | Frame::Close { reason, .. } => 2 + reason.len(),
            Frame::Ping { .. } | Frame::Pong { .. } => 8,
            Frame::Peer { .. } => 1,
        }
    }

    /// Length of the whole frame once encoded.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    /// Append the frame to `dst`. Encoding never fails; limits are the
    /// producer's business (the [`crate::Mux`] keeps them, and
    /// [`clamp_text`] trims labels and reasons).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u8(self.kind() as u8);
        dst.put_u32(self.stream().map_or(0, StreamId::get));
        match self {
            Frame::Hello(h) => {
                dst.put_u8(h.version);
                dst.put_u32(h.initial_window);
                dst.put_u32(h.max_payload);
                dst.put_u32(h.capabilities);
            }
            Frame::Open { label, .. } => dst.put_slice(label.as_bytes()),
            Frame::OpenOk { .. } | Frame::Fin { .. } => {}
            Frame::Data { payload, .. } => dst.put_slice(payload),
            Frame::Window { increment, .. } => dst.put_u32(*increment),
            Frame::Reset { code, reason, .. } | Frame::Close { code, reason } => {
                dst.put_u16(*code);
                dst.put_slice(reason.as_bytes());
            }
            Frame::Ping { opaque } | Frame::Pong { opaque } => dst.put_u64(*opaque),
            Frame::Peer { state } => dst.put_u8(*state as u8),
        }
    }

    /// Encode into a fresh buffer (one WebSocket message).
    ///
    /// For a large DATA payload the buffer start is chosen so the payload's
    /// copy has the same alignment modulo 64 as its source: on some CPUs
    /// (measured on AMD EPYC) `memcpy` is several times slower when source
    /// and destination are misaligned relative to each other, and the 5-byte
    /// header would make them so. Costs at most 63 bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = match self {
            Frame::Data { payload, .. } if payload.len() >= ALIGN_THRESHOLD => {
                let mut b = BytesMut::with_capacity(self.encoded_len() + 63);
                let want = payload.as_ptr() as usize;
                let have = b.as_ptr() as usize + HEADER_LEN;
                let pad = want.wrapping_sub(have) % 64;
                b.put_bytes(0, pad);
                b.advance(pad);
                b
            }
            _ => BytesMut::with_capacity(self.encoded_len()),
        };
        self.encode(&mut b);
        b.freeze()
    }

    /// Decode one message with the hard limit [`HARD_MAX_PAYLOAD`].
    pub fn decode(msg: Bytes) -> Result<Frame, FrameError> {
        Self::decode_with_limit(msg, HARD_MAX_PAYLOAD)
    }

    /// Decode one message from a slice (copies a DATA payload).
    pub fn decode_slice(msg: &[u8]) -> Result<Frame, FrameError> {
        Self::decode(Bytes::copy_from_slice(msg))
    }

    /// Decode one message whose body may be at most `max_payload` bytes
    /// (clamped to [`HARD_MAX_PAYLOAD`]). A DATA payload is a zero-copy
    /// slice of `msg`.
    pub fn decode_with_limit(mut msg: Bytes, max_payload: u32) -> Result<Frame, FrameError> {
        let header = peek_header(&msg)?;
        let max = max_payload.min(HARD_MAX_PAYLOAD) as usize;
        if header.body_len > max {
            return Err(FrameError::TooLarge {
                kind: header.kind,
                len: header.body_len,
                max,
            });
        }
        msg.advance(HEADER_LEN);
        let kind = header.kind;
        let sid = StreamId::new(header.stream);
        let stream = || sid.ok_or(FrameError::BadStream { kind, stream: 0 });
        let frame = match kind {
            Kind::Hello => {
                // Trailing bytes after the v1 fields are ignored: a later
                // version may append fields (docs/protocol-tunnel.md).
                need(kind, &msg, 13)?;
                Frame::Hello(Hello {
                    version: msg.get_u8(),
                    initial_window: msg.get_u32(),
                    max_payload: msg.get_u32(),
                    capabilities: msg.get_u32(),
                })
            }
            Kind::Open => Frame::Open {
                stream: stream()?,
                label: text(kind, &msg)?,
            },
            Kind::OpenOk => {
                exact(kind, &msg, 0)?;
                Frame::OpenOk { stream: stream()? }
            }
            Kind::Data => Frame::Data {
                stream: stream()?,
                payload: msg,
            },
            Kind::Window => {
                exact(kind, &msg, 4)?;
                Frame::Window {
                    stream: stream()?,
                    increment: msg.get_u32(),
                }
            }
            Kind::Fin => {
                exact(kind, &msg, 0)?;
                Frame::Fin { stream: stream()? }
            }
            Kind::Reset => {
                need(kind, &msg, 2)?;
                let code = msg.get_u16();
                Frame::Reset {
                    stream: stream()?,
                    code,
                    reason: text(kind, &msg)?,
                }
            }
            Kind::Ping | Kind::Pong => {
                exact(kind, &msg, 8)?;
                let opaque = msg.get_u64();
                if kind == Kind::Ping {
                    Frame::Ping { opaque }
                } else {
                    Frame::Pong { opaque }
                }
            }
            Kind::Peer => {
                exact(kind, &msg, 1)?;
                let state = match msg.get_u8() {
                    0 => PeerState::Left,
                    1 => PeerState::Attached,
                    other => return Err(FrameError::BadPeerState(other)),
                };
                Frame::Peer { state }
            }
            Kind::Close => {
                need(kind, &msg, 2)?;
                let code = msg.get_u16();
                Frame::Close {
                    code,
                    reason: text(kind, &msg)?,
                }
            }
        };
        Ok(frame)
    }
}

fn need(kind: Kind, body: &[u8], n: usize) -> Result<(), FrameError> {
    if body.len() < n {
        return Err(FrameError::ShortBody {
            kind,
            len: body.len(),
            need: n,
        });
    }
    Ok(())
}

fn exact(kind: Kind, body: &[u8], n: usize) -> Result<(), FrameError> {
    need(kind, body, n)?;
    if body.len() > n {
        return Err(FrameError::TrailingBytes {
            kind,
            extra: body.len() - n,
        });
    }
    Ok(())
}

fn text(kind: Kind, body: &[u8]) -> Result<String, FrameError> {
    if body.len() > MAX_TEXT_LEN {
        return Err(FrameError::TextTooLong {
            kind,
            len: body.len(),
        });
    }
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|_| FrameError::BadUtf8 { kind })
}
