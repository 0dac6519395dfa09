//! The Tether platform: things, app keys, users, the AlwaysOn endpoint
//! `/Thingworx/WS`, the ThingWorx-compatible REST API and the management API.
//!
//! - `model`: users, app keys, things, properties, remote interfaces, audit entries
//! - `secret`: the `Secret` newtype, password and app-key hashing, random tokens
//! - `store`: the entity store (SQLite embedded; one interface for other backends)
//! - `config`: TOML configuration, validated, defaults as constants
//! - `admin`: the admin CLI (users, app keys, things, interfaces)
//! - `certs`: TLS identity from PEM files or generated once
//! - `state`: `Platform`, the shared state and internal API (`request`, auth)
//! - `edge`: the AlwaysOn endpoint: sockets, bindings, dispatch
//! - `http`: router, REST, management API, OpenAPI, errors
//! - `convert`: JSON ⇄ InfoTable helpers
//! - `ratelimit`: failed-authentication limiter per address
//! - `metrics`: Prometheus metrics
//! - `quickstart`: first-run bootstrap
//! - `remote_access`: the session broker's hooks and routes, the web console
//! - `server`: `run(config, listener, shutdown)`

pub mod admin;
pub mod certs;
pub mod config;
mod convert;
pub mod edge;
pub mod http;
pub mod metrics;
pub mod model;
pub mod quickstart;
mod ratelimit;
pub mod remote_access;
pub mod secret;
mod server;
mod state;
pub mod store;

pub use config::{Config, ConfigError, RawConfig};
pub use edge::{EdgeAnswer, EdgeError};
pub use server::{Prepared, RunError, prepare, run};
pub use state::{AuthError, Platform, Principal};
pub use store::{Store, StoreError};
