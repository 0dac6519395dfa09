//! The broker harness of `test_support::broker` (a real broker on
//! 127.0.0.1:0 with in-memory hooks, a fake edge, a TCP echo target) as the
//! tray app's tests use it.
#![allow(dead_code)]

use broker::StartTunnelRequest;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tunnel::Role;
use tunnel::driver::SessionEnd;

pub use test_support::broker::{Harness, echo_server};

/// A broker over plain HTTP; interface `ssh` of `Pump1` is 127.0.0.1:`target`.
pub async fn broker(target: u16) -> Harness {
    test_support::broker::spawn(target, |_| {}).await
}

/// The fake edge, with the tunnel's default ping interval, until `stop`.
pub fn spawn_edge(
    start: StartTunnelRequest,
    stop: CancellationToken,
) -> JoinHandle<Result<SessionEnd, net::NetError>> {
    let ping = tunnel::Config::new(Role::Server).ping_interval;
    test_support::broker::spawn_edge_until(start, ping, stop)
}
