//! Helpers shared by the integration tests of this crate.

pub mod db;
pub mod platform;
