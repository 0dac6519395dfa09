//! Lifecycle timers with the default values, on tokio's paused clock (no
//! sockets: sessions are created through the library API).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use broker::memory::{MemoryAudit, MemoryAuthorizer, MemoryEdge};
use broker::{Broker, BrokerConfig, CreateSession, Hooks, Principal};
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn default_attach_deadline_is_sixty_seconds() {
    let (edge, mut starts) = MemoryEdge::new();
    let audit = Arc::new(MemoryAudit::new());
    let auth =
        MemoryAuthorizer::new()
            .user("alice", "pw", false)
            .target("Pump1", "ssh", "127.0.0.1", 22);
    let broker = Broker::new(
        BrokerConfig::new("https://p.example".parse().unwrap()),
        Hooks {
            auth: Arc::new(auth),
            edge: Arc::new(edge),
            audit: audit.clone(),
        },
        CancellationToken::new(),
    )
    .unwrap();
    let alice = Principal {
        user: "alice".into(),
        admin: false,
        cli: false,
    };
    let began = tokio::time::Instant::now();
    let created = broker
        .create(
            &alice,
            CreateSession {
                thing: "Pump1".into(),
                interface: "ssh".into(),
                client_token: false,
            },
        )
        .await
        .unwrap();
    let start = starts.recv().await.unwrap();
    assert_eq!(start.attach_deadline, Duration::from_secs(60));
    assert_eq!(
        start.server_url,
        format!(
            "wss://p.example/remote-access/v1/sessions/{}/server",
            created.id
        )
    );
    assert!(created.launch_url.as_deref().unwrap().contains(&created.id));
    // Still pending just before the deadline.
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(
        broker.get(&alice, &created.id).unwrap().state,
        broker::State::Pending
    );
    let rec = audit
        .wait_for(&created.id, Duration::from_secs(120))
        .await
        .unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(61),
        "{took:?}"
    );
    assert_eq!(rec.reason, "attach_timeout");
    assert!(broker.get(&alice, &created.id).is_err());
    // The nonce died with the session.
    let nonce = created.launch_url.unwrap();
    let nonce = nonce.rsplit("nonce=").next().unwrap();
    assert!(broker.trade_nonce(&created.id, nonce).is_err());
}
