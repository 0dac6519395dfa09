//! Test harness: the shared broker harness of `test-support` (a broker on
//! 127.0.0.1:0 with in-memory hooks, a fake edge, a TCP echo target).
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

pub use test_support::broker::*;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Attach a RAC client (the `rac` crate) to a session created with
/// [`Harness::create_cli`], given that answer.
pub async fn attach_client(created: &serde_json::Value) -> rac::Tunnel {
    let joined = rac::Joined {
        session: created["id"].as_str().unwrap().to_owned(),
        client_url: created["client_url"].as_str().unwrap().to_owned(),
        client_token: created["client_token"].as_str().unwrap().to_owned(),
    };
    let tls = rac::tls_config(&net::Trust::default()).unwrap();
    rac::Tunnel::attach(&joined, tls, &rac::ClientOptions::default())
        .await
        .unwrap()
}

/// [`attach_client`], then serve it on a fresh local port until `stop`.
pub async fn serve_client(
    created: &serde_json::Value,
    stop: CancellationToken,
) -> (SocketAddr, JoinHandle<rac::Ended>) {
    let tunnel = attach_client(created).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    (local, tokio::spawn(tunnel.serve(listener, stop)))
}
