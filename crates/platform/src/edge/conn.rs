//! `EdgeConn`: the handle to one authenticated edge socket. REST handlers
//! (through `Platform::request`) send AlwaysOn requests with it and await
//! the answer, correlated by request id, with a deadline. The socket task
//! owns the websocket; this handle only queues frames on a bounded channel
//! and keeps a short-lock map of pending requests (never held across
//! `.await`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alwayson::{Code, Header, Message, RequestBody, ResponseBody};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Frames queued for the socket writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// One binary websocket message (a whole AlwaysOn message or a chunk).
    Frame(Bytes),
    /// Close the socket with a code and reason, then stop writing.
    Close(u16, String),
}

/// Why a platform→edge request did not get a normal answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// No edge has bound the thing.
    #[error("thing `{0}` is not connected")]
    NotConnected(String),
    /// The edge did not answer in time.
    #[error("the edge did not answer within {0:?}")]
    Timeout(Duration),
    /// The socket closed before the answer came.
    #[error("the edge disconnected before answering")]
    Disconnected,
    /// Too many requests in flight on the socket.
    #[error("too many requests in flight to this edge (limit {0})")]
    Busy(usize),
    /// The request could not be encoded (too large for the chunk size…).
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// The answer could not be decoded.
    #[error("the edge sent an invalid answer: {0}")]
    BadAnswer(String),
}

/// What the edge answered: a response code and body.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeAnswer {
    pub code: Code,
    pub body: ResponseBody,
}

type PendingMap = HashMap<u32, oneshot::Sender<Result<EdgeAnswer, EdgeError>>>;

/// Where request ids come from: the socket's own counter, or (virtual edge
/// behind a connection-server link) the link's, so that ids are unique per link.
enum RequestIds {
    Own(AtomicU32),
    Link(Arc<AtomicU32>),
}

impl RequestIds {
    fn counter(&self) -> &AtomicU32 {
        match self {
            RequestIds::Own(c) => c,
            RequestIds::Link(c) => c,
        }
    }
}

/// Handle to one authenticated edge: a websocket of its own, or a virtual
/// edge connection (an endpointId on a connection-server link).
pub struct EdgeConn {
    pub(crate) id: u64,
    /// The edge's address (for a virtual edge: its `tether-peer` address, port 0).
    pub(crate) peer: SocketAddr,
    pub(crate) session_id: u32,
    /// The AlwaysOn endpointId written into every message to the edge: 0 on
    /// a socket of its own, the link's endpointId for a virtual edge.
    pub(crate) endpoint_id: u32,
    /// The app key name or user name that authenticated.
    pub(crate) principal: String,
    out: mpsc::Sender<Outbound>,
    pending: Mutex<PendingMap>,
    request_ids: RequestIds,
    /// Virtual edge: cancelled to end it (its link stays up).
    stop: Option<CancellationToken>,
    chunk_size: usize,
    max_pending: usize,
}

impl std::fmt::Debug for EdgeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConn")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("endpoint_id", &self.endpoint_id)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl EdgeConn {
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        session_id: u32,
        principal: String,
        out: mpsc::Sender<Outbound>,
        chunk_size: usize,
        max_pending: usize,
    ) -> EdgeConn {
        EdgeConn {
            id,
            peer,
            session_id,
            endpoint_id: 0,
            principal,
            out,
            pending: Mutex::new(HashMap::new()),
            request_ids: RequestIds::Own(AtomicU32::new(1)),
            stop: None,
            chunk_size,
            max_pending,
        }
    }

    /// A virtual edge connection: endpointId `endpoint_id` on a link whose
    /// writer is `out`. Request ids come from the link's `ids`; `stop` ends it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_virtual(
        id: u64,
        peer: SocketAddr,
        session_id: u32,
        endpoint_id: u32,
        principal: String,
        out: mpsc::Sender<Outbound>,
        ids: Arc<AtomicU32>,
        stop: CancellationToken,
        chunk_size: usize,
        max_pending: usize,
    ) -> EdgeConn {
        EdgeConn {
            id,
            peer,
            session_id,
            endpoint_id,
            principal,
            out,
            pending: Mutex::new(HashMap::new()),
            request_ids: RequestIds::Link(ids),
            stop: Some(stop),
            chunk_size,
            max_pending,
        }
    }

    /// The AlwaysOn endpointId of this edge (0 unless behind a connection server).
    pub fn endpoint_id(&self) -> u32 {
        self.endpoint_id
    }

    /// Whether this edge is a virtual connection on a connection-server link.
    pub fn is_virtual(&self) -> bool {
        self.stop.is_some()
    }

    /// The connection's id (unique in this process).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, PendingMap> {
        // A poisoned map only means a panic elsewhere; the map itself stays valid.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_id(&self) -> u32 {
        loop {
            let id = self.request_ids.counter().fetch_add(1, Ordering::Relaxed);
            if id != 0 && id != alwayson::SESSION_NONE {
                return id;
            }
        }
    }

    /// Sends `body` as request `code` and waits up to `timeout` for the
    /// answer. Cancel-safe: dropping the future forgets the pending entry.
    pub async fn request(
        &self,
        code: Code,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<EdgeAnswer, EdgeError> {
        let request_id = self.next_id();
        let mut msg = Message::request(code, request_id, self.session_id, body);
        msg.header.endpoint_id = self.endpoint_id;
        let frames =
            alwayson::split(&msg, self.chunk_size).map_err(|e| EdgeError::Encode(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.lock_pending();
            if pending.len() >= self.max_pending {
                return Err(EdgeError::Busy(self.max_pending));
            }
            pending.insert(request_id, tx);
        }
        let guard = PendingGuard {
            conn: self,
            request_id,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        for frame in frames {
            match tokio::time::timeout_at(deadline, self.out.send(Outbound::Frame(frame))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(EdgeError::Disconnected),
                Err(_) => return Err(EdgeError::Timeout(timeout)),
            }
        }
        let result = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(EdgeError::Disconnected),
            Err(_) => Err(EdgeError::Timeout(timeout)),
        };
        drop(guard);
        result
    }

    /// Delivers an answer from the edge to its waiting request. Returns false
    /// when no request waits for that id (late or unsolicited answer).
    pub(crate) fn complete(&self, header: &Header, body: Result<ResponseBody, EdgeError>) -> bool {
        let waiter = self.lock_pending().remove(&header.request_id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(body.map(|body| EdgeAnswer {
                    code: header.code,
                    body,
                }));
                true
            }
            None => false,
        }
    }

    /// Fails every waiting request (the socket is closing).
    pub(crate) fn fail_all(&self) {
        let drained: Vec<_> = self.lock_pending().drain().collect();
        for (_, tx) in drained {
            let _ = tx.send(Err(EdgeError::Disconnected));
        }
    }

    /// Queues a message for the edge without waiting for an answer (responses).
    pub(crate) async fn send_message(&self, msg: &Message) -> Result<(), EdgeError> {
        let frames =
            alwayson::split(msg, self.chunk_size).map_err(|e| EdgeError::Encode(e.to_string()))?;
        for frame in frames {
            self.out
                .send(Outbound::Frame(frame))
                .await
                .map_err(|_| EdgeError::Disconnected)?;
        }
        Ok(())
    }

    /// Asks the socket task to close with `code` and `reason`. A virtual
    /// edge is ended instead (its link stays up; the connection server
    /// closes the edge's socket when the link goes).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        match &self.stop {
            Some(stop) => stop.cancel(),
            None => {
                let _ = self.out.try_send(Outbound::Close(code, reason.to_owned()));
            }
        }
    }

    /// Number of requests waiting for an answer.
    pub fn pending(&self) -> usize {
        self.lock_pending().len()
    }
}

/// Removes a pending entry when the request future ends or is dropped.
struct PendingGuard<'a> {
    conn: &'a EdgeConn,
    request_id: u32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.conn.lock_pending().remove(&self.request_id);
    }
}
