//! Test helpers shared by Tether's integration tests.
//!
//! - `platform`: [`spawn_platform`] runs a real platform (TLS, SQLite file in
//!   a temp dir) on 127.0.0.1:0 and returns a [`PlatformHandle`] with the
//!   address, the certificate pin, an administrator and an edge app key.
//! - `edge`: [`TestEdge`], a minimal AlwaysOn edge over a real websocket:
//!   connect, AUTH, BIND, answer platform requests via a closure, push
//!   property values.
//! - [`broker`]: a broker with in-memory hooks on 127.0.0.1:0, a fake
//!   tunnel edge, an echo target (the broker's and the RAC's tests).
//!
//! This is test code: functions return `anyhow::Result` and may be blunt.

pub mod broker;
mod edge;
mod platform;

pub use edge::{Event, Handler, TestEdge};
pub use platform::{ADMIN_PASSWORD, ADMIN_USER, PlatformHandle, PlatformOptions, spawn_platform};

/// Waits until `cond` holds, checking every 10 ms, for at most `timeout`.
pub async fn wait_for<F, Fut>(timeout: std::time::Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
