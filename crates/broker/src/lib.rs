//! Remote-access session broker (spec/tunnel.md): pairs one client side (the
//! RAC) with one server side (the edge) per session and forwards native
//! tunnel frames between them. The platform mounts [`Broker::router`] and
//! implements the hook traits ([`Authorizer`], [`EdgeControl`],
//! [`SessionAudit`]) over its store and AlwaysOn sockets.
//!
//! - `config`: [`BrokerConfig`] (timeouts, limits, public URL).
//! - `hooks`: [`Authorizer`], [`EdgeControl`], [`SessionAudit`], what the
//!   platform provides.
//! - `broker`: [`Broker`], the registry of live sessions and its operations.
//! - `actor`: one task per session (lifecycle and timers).
//! - `hello`: the broker's HELLO, min(client, server, broker) to both.
//! - `relay`: per-side reader and writer (frame checks, flow-control
//!   accounting, zero-copy forwarding).
//! - `legacy`: the ThingWorx server side (base64 text frames, one
//!   connection at a time) bridged to a native client.
//! - `http`: the axum routes ([`router`]).
//! - `streams`: the stream table (existence, FIN, per-direction credit).
//! - `session`: [`Side`], [`State`], [`EndReason`], [`SessionView`].
//! - `token`: 256-bit tokens, hashed, constant-time checks ([`Secret`]).
//! - `metrics`: `tether_platform_tunnel_*` counters.
//! - [`memory`]: in-memory hooks for tests.

mod actor;
mod broker;
mod config;
mod error;
mod hello;
mod hooks;
mod http;
mod legacy;
pub mod memory;
mod metrics;
mod relay;
mod session;
mod streams;
mod token;

pub use broker::{
    Broker, ClientToken, CreateSession, Created, MAX_CLIENT_ADDRESS_LEN, MAX_NAME_LEN,
    valid_client_address,
};
pub use config::{BrokerConfig, ConfigError, DEFAULT_LEGACY_NUM_CONNECTS, MAX_LEGACY_NUM_CONNECTS};
pub use error::BrokerError;
pub use hooks::{
    AuthError, Authorizer, CompleteTunnelRequest, EdgeCommand, EdgeControl, EdgeError, Hooks,
    Principal, SessionAudit, SessionRecord, StartTunnelRequest, Target, TunnelCommand,
    TunnelCommandRequest,
};
pub use http::{SUBPROTOCOL, router};
pub use session::{EndReason, SessionView, Side, State};
pub use token::Secret;
