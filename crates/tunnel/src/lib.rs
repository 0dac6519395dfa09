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
//!
//! Two sides back to back, frames shuttled by hand where a WebSocket would
//! carry them:
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use tunnel::{Config, Event, Mux, Role};
//!
//! fn shuttle(from: &mut Mux, to: &mut Mux, now: Instant) {
//!     while let Some(frame) = from.poll_transmit() {
//!         to.handle_message(now, frame.to_bytes());
//!     }
//! }
//!
//! let now = Instant::now();
//! let mut rac = Mux::new(Config::new(Role::Client), now)?;
//! let mut edge = Mux::new(Config::new(Role::Server), now)?;
//! let id = rac.open("ssh")?; // OPEN goes out once the edge's HELLO is in
//! shuttle(&mut rac, &mut edge, now);
//! shuttle(&mut edge, &mut rac, now);
//! shuttle(&mut rac, &mut edge, now);
//! while let Some(ev) = edge.poll_event() {
//!     if let Event::StreamOpened { stream, label } = ev {
//!         assert_eq!(label, "ssh");
//!         edge.accept(stream)?; // connected to the target: OPEN_OK
//!     }
//! }
//! shuttle(&mut edge, &mut rac, now);
//! rac.send(id, Bytes::from_static(b"hello"))?;
//! rac.finish(id)?;
//! shuttle(&mut rac, &mut edge, now);
//! let mut got = Vec::new();
//! while let Some(ev) = edge.poll_event() {
//!     if let Event::Data { stream, payload } = ev {
//!         got.extend_from_slice(&payload);
//!         edge.consumed(stream, payload.len()); // written to the target
//!     }
//! }
//! assert_eq!(got, b"hello");
//! # Ok::<(), tunnel::MuxError>(())
//! ```

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
    Header, Hello, KNOWN_CAPABILITIES, Kind, MAX_TEXT_LEN, PROTOCOL_VERSION, PeerState,
    SHARED_WINDOW, StreamId, clamp_text, peek_header,
};
pub use mux::{
    Config, DEFAULT_MAX_STREAMS, DEFAULT_PING_INTERVAL, Event, Initiator, MAX_CREDIT, MIN_WINDOW,
    Mux, Negotiated, Role, Stats,
};

/// The WebSocket subprotocol of the native tunnel (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "tether-tunnel.v1";
