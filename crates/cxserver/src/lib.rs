//! `cxserver`: the Tether connection server. Edges connect to it instead of to the platform;
//! it terminates their AlwaysOn websockets and multiplexes them over a few upstream links,
//! routing by AlwaysOn `endpointId` (docs/cxserver.md, DESIGN.md flow 6).
//!
//! Modules:
//! - `config`: the TOML file and its validated form ([`Config`], [`ConfigError`]).
//! - `secret`: [`Secret`], the app key that never reaches logs.
//! - `metrics`: Prometheus metrics ([`Metrics`], `tether_cx_` prefix).
//! - `hub`: routing table shared by edge tasks and links (endpointId → edge, link slots).
//! - `edge`: edge websocket upgrade and routing by path.
//! - `session`: the per-edge AlwaysOn relay task (AUTH, BIND bookkeeping, UNBIND on close).
//! - `link`: upstream links to the platform: AUTH, relay, reconnect, replay.
//! - `tunnel`: tunnel endpoint pass-through (websocket to websocket).
//! - `health`: health check (200/504) and `/metrics` on their own port.
//! - `server`: [`CxServer`]: wiring and graceful shutdown.

mod config;
mod edge;
mod health;
mod hub;
mod link;
mod metrics;
mod secret;
mod server;
mod session;
mod tunnel;
mod tunnel_url;

pub use config::{
    Config, ConfigError, DEFAULT_AUTH_REQUEST_TIMEOUT, DEFAULT_IDLE_TIMEOUT, EdgeSettings,
    PlatformSettings, UpstreamTrust,
};
pub use edge::ALWAYSON_PATH;
pub use metrics::{Flow, Metrics};
pub use secret::Secret;
pub use server::{CxError, CxServer, Listeners, Status, Tls};
pub use session::PEER_CLAIM;
pub use tunnel::TUNNEL_IDLE_TIMEOUT;
