//! Process shutdown helpers: signals into a token, waiting with a grace period.
//!
//! ```no_run
//! use net::shutdown::{cancel_on_signal, wait_with_grace};
//! use net::{CancellationToken, TaskTracker};
//! use std::time::Duration;
//!
//! # async fn example() {
//! let root = CancellationToken::new();
//! cancel_on_signal(root.clone());
//! let tracker = TaskTracker::new();
//! let token = root.child_token();
//! tracker.spawn(async move { token.cancelled().await /* a subsystem */ });
//! root.cancelled().await;
//! if !wait_with_grace(&tracker, Duration::from_secs(10)).await {
//!     tracing::warn!("some tasks did not finish in time");
//! }
//! # }
//! ```

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Spawn a task that cancels `token` on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
/// The task also ends if `token` is cancelled by someone else.
pub fn cancel_on_signal(token: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            () = token.cancelled() => return,
            signal = wait_for_signal() => info!(signal, "shutting down"),
        }
        token.cancel();
    })
}

async fn wait_for_signal() -> &'static str {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(%e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                () = ctrl_c => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(e) => {
                warn!(%e, "cannot listen for SIGTERM");
                ctrl_c.await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c.await;
        "Ctrl-C"
    }
}

/// Close `tracker` (no new tasks are expected) and wait up to `grace` for all
/// its tasks and tokens to finish. Returns `true` if they all did.
pub async fn wait_with_grace(tracker: &TaskTracker, grace: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(grace, tracker.wait()).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grace_expires_with_a_stuck_task() {
        let tracker = TaskTracker::new();
        let token = tracker.token();
        assert!(!wait_with_grace(&tracker, Duration::from_millis(20)).await);
        drop(token);
        assert!(wait_with_grace(&tracker, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn signal_task_ends_when_token_cancelled() {
        let token = CancellationToken::new();
        let task = cancel_on_signal(token.clone());
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
