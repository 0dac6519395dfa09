//! Error types of the codec and the multiplexer.

use crate::frame::{Kind, StreamId};

/// A message that is not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer than the 5 header bytes.
    #[error("message of {len} bytes is shorter than the 5-byte frame header")]
    ShortHeader { len: usize },
    /// The kind byte names no frame kind.
    #[error("unknown frame kind 0x{0:02x}")]
    UnknownKind(u8),
    /// A session frame with a stream id, or a stream frame with stream 0.
    #[error("{kind} frame on stream {stream}: {}", if kind.is_session() { "session frames use stream 0" } else { "stream frames need a stream id other than 0" })]
    BadStream { kind: Kind, stream: u32 },
    /// The body is longer than the payload limit.
    #[error("{kind} frame body of {len} bytes exceeds max_payload {max}")]
    TooLarge { kind: Kind, len: usize, max: usize },
    /// The body is shorter than the kind requires.
    #[error("{kind} frame body of {len} bytes is too short, needs {need}")]
    ShortBody { kind: Kind, len: usize, need: usize },
    /// A fixed-size body followed by extra bytes.
    #[error("{kind} frame has {extra} unexpected trailing bytes")]
    TrailingBytes { kind: Kind, extra: usize },
    /// A label or reason that is not UTF-8.
    #[error("{kind} frame text is not valid UTF-8")]
    BadUtf8 { kind: Kind },
    /// A label or reason longer than [`crate::MAX_TEXT_LEN`].
    #[error("{kind} frame text of {len} bytes exceeds {max} bytes", max = crate::frame::MAX_TEXT_LEN)]
    TextTooLong { kind: Kind, len: usize },
    /// A PEER state other than 0 or 1.
    #[error("PEER state {0} is neither 0 (left) nor 1 (attached)")]
    BadPeerState(u8),
}

/// A call on the [`crate::Mux`] that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MuxError {
    /// The session is closed or closing.
    #[error("the tunnel session is closed")]
    Closed,
    /// No live stream has this id.
    #[error("no open stream {0}")]
    UnknownStream(StreamId),
    /// Only the client role opens streams.
    #[error("only the client side opens streams")]
    NotClient,
    /// `accept` on a stream that is not waiting to be accepted.
    #[error("stream {0} is not waiting to be accepted")]
    NotPending(StreamId),
    /// The stream limit is reached.
    #[error("too many open streams (limit {0})")]
    TooManyStreams(usize),
    /// Every odd stream id has been used.
    #[error("stream ids exhausted")]
    IdsExhausted,
    /// `send` after `finish` on the stream.
    #[error("stream {0} is already finished for sending")]
    SendAfterFin(StreamId),
    /// `send` of more bytes than [`crate::Mux::send_capacity`] allows.
    #[error("stream {stream}: {len} bytes exceed the send capacity {capacity}")]
    OverCapacity {
        stream: StreamId,
        len: usize,
        capacity: usize,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}
