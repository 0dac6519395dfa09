//! The Tether platform.
//!
//! - `model`: users, app keys, things, properties, remote interfaces, audit entries
//! - `secret`: the `Secret` newtype, password and app-key hashing, random tokens
//! - `store`: the entity store (SQLite embedded; one interface for other backends)

pub mod admin;
pub mod config;
pub mod model;
pub mod secret;
pub mod store;

pub use store::{Store, StoreError};
