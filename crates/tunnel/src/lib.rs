//! Sans-IO tunnel frame codec and stream multiplexer (spec/tunnel.md,
//! docs/protocol-tunnel.md), shared by the RAC, the edge and the broker.
//!
//! - `frame`: the native frame, encode into `BytesMut`, decode one
//!   WebSocket message (zero-copy DATA), [`peek_header`] for forwarding.
//! - `mux`: the [`Mux`] state machine: HELLO negotiation, streams, credit
//!   flow control, round-robin scheduling, ping/pong, CLOSE.
//! - `code`: CLOSE and RESET code numbers.
//! - `error`: [`FrameError`] (bad bytes) and [`MuxError`] (bad calls).
//! - `driver` (feature `tokio`): runs a [`Mux`] over a WebSocket and pipes
//!   streams to sockets, for the RAC and the EMS tunnel module.

mod code;
#[cfg(feature = "tokio")]
pub mod driver;
mod error;
mod frame;
mod mux;

pub use code::{close, reset};
pub use error::{FrameError, MuxError};
pub use frame::{
    CAP_QUIC, CAP_RESUME, DEFAULT_MAX_PAYLOAD, DEFAULT_WINDOW, Frame, HARD_MAX_PAYLOAD, HEADER_LEN,
    Header, Hello, KNOWN_CAPABILITIES, Kind, MAX_TEXT_LEN, PROTOCOL_VERSION, PeerState, StreamId,
    clamp_text, peek_header,
};
pub use mux::{
    Config, DEFAULT_MAX_STREAMS, DEFAULT_PING_INTERVAL, Event, Initiator, MAX_CREDIT, MIN_WINDOW,
    Mux, Negotiated, Role, Stats,
};

/// The WebSocket subprotocol of the native tunnel (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "tether-tunnel.v1";
