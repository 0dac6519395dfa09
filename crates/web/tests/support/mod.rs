//! Test support: the server harness and the WebDriver client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod server;
pub mod webdriver;
