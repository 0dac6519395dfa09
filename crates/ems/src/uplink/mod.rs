//! The AlwaysOn client ("uplink"): one actor task owns the websocket to the
//! platform; everything else talks to it through a cloneable [`Uplink`] handle.
//!
//! - `actor`: connect with fail-over over `ws_servers`, exponential back-off with
//!   jitter, duty cycle, offline storing while disconnected.
//! - `session`: one authenticated connection: AUTH, BIND all, offline flush,
//!   pings, requests both ways, BIND/UNBIND on changes, UNBIND all on the way out.
//! - `trust`: `certificates` → rustls client configuration.

mod actor;
mod session;
mod trust;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use alwayson::{Code, InfoTable, RequestBody};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) use actor::Actor;
pub use actor::GaveUp;
pub use trust::client_tls;

/// The platform's answer to an edge request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Response code.
    pub code: Code,
    /// Reason string, when the platform sent one.
    pub reason: Option<String>,
    /// Content, when the platform sent one.
    pub content: Option<InfoTable>,
}

/// What became of an edge request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The platform answered.
    Answered(Reply),
    /// Not connected: kept in the offline store, sent after the next authentication.
    Stored,
}

/// Why an edge request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UplinkError {
    /// Not connected and the request cannot be stored (a read, or the store is disabled).
    #[error("not connected to the platform")]
    NotConnected,
    /// Not connected and the offline store has no room for it.
    #[error("{0}")]
    StoreFull(String),
    /// The offline store failed (disk error).
    #[error("offline message store: {0}")]
    Store(String),
    /// No answer within `ws_connection.msg_timeout`.
    #[error("no answer from the platform within the message timeout")]
    Timeout,
    /// The connection dropped before the answer came.
    #[error("connection to the platform lost before the answer")]
    ConnectionLost,
    /// `ws_connection.max_messages` requests are already waiting.
    #[error("too many requests waiting for the platform")]
    Busy,
    /// The request cannot be encoded (too large, bad string).
    #[error("request cannot be encoded: {0}")]
    Encode(String),
    /// The EMS is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

pub(crate) struct Command {
    pub code: Code,
    pub body: RequestBody,
    /// May go to the offline store when not connected.
    pub storable: bool,
    pub reply: oneshot::Sender<Result<Outcome, UplinkError>>,
}

/// Handle to the uplink actor.
#[derive(Debug, Clone)]
pub struct Uplink {
    tx: mpsc::Sender<Command>,
    connected: watch::Receiver<bool>,
    ids: Arc<AtomicU32>,
}

impl Uplink {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        connected: watch::Receiver<bool>,
        ids: Arc<AtomicU32>,
    ) -> Uplink {
        Uplink { tx, connected, ids }
    }

    /// Sends a request to the platform and waits for the answer. When not connected,
    /// a `storable` request (property push, service call, event) goes to the offline store.
    pub async fn request(
        &self,
        code: Code,
        body: RequestBody,
        storable: bool,
    ) -> Result<Outcome, UplinkError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command {
            code,
            body,
            storable,
            reply,
        };
        self.tx
            .send(cmd)
            .await
            .map_err(|_| UplinkError::ShuttingDown)?;
        rx.await.map_err(|_| UplinkError::ShuttingDown)?
    }

    /// Connected and authenticated right now?
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// The next request id of this process (a global counter starting at 1, §12.2).
    pub(crate) fn next_id(&self) -> u32 {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        if id == 0 {
            self.ids.fetch_add(1, Ordering::Relaxed)
        } else {
            id
        }
    }
}
