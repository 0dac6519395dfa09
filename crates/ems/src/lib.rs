//! Tether Edge MicroServer (`tether-ems`): the edge agent that runs on each device.
//! A ThingWorx EMS `config.json` works unchanged.
//!
//! - `config`: `config.json` (ThingWorx groups, keys, defaults + Tether keys) → [`Config`].
//! - `secret`: secrets in the config (plain or `enc:v1:`), [`Secret`], [`SecretKey`].
//! - `uplink`: the AlwaysOn client (connect, AUTH, BIND, pings, reconnect, duty cycle).
//! - `things`: the things this EMS answers for and which of them are bound.
//! - `dispatch`: platform → EMS requests routed to the EMS itself or a script resource.
//! - `gateway`: HTTP forwarding to script resources and their keep-alive probes.
//! - `localems`: the EMS's own services (`LocalEms`: AddEdgeThing, …).
//! - `rest`: the local REST server (`/Thingworx/...` → AlwaysOn).
//! - `jsonform`: JSON InfoTable forms of the EMS's HTTP sides.
//! - `tunnel`: the tunnel services (StartTunnel → native tunnel to the broker).
//! - `offline`: the offline message store (disk or memory, bounded).
//! - `run`: wiring everything together: [`run`].

pub mod config;
mod dispatch;
mod gateway;
mod jsonform;
mod localems;
pub mod offline;
mod rest;
mod run;
pub mod secret;
mod things;
mod tunnel;
mod uplink;

pub use config::{Config, ConfigError, EXIT_CONFIG, Loaded, load};
pub use gateway::convert_answer;
pub use jsonform::to_rest_json;
pub use localems::LOCAL_EMS;
pub use run::{RunError, bind_http, run};
pub use secret::{Secret, SecretError, SecretKey};
pub use uplink::{GaveUp, Outcome, Reply, UplinkError};
