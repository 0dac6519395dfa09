//! The routing table shared by edge tasks and upstream links.
//!
//! Edges are kept in sharded maps keyed by the AlwaysOn `endpointId` this server assigned.
//! Each lock is a short, non-async `std::sync::Mutex` held for one map operation, never across
//! an `.await` (clippy's `await_holding_lock` is denied). Links are a fixed array; a link's
//! outgoing queue is a bounded `mpsc` drained by that link's writer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use alwayson::{Code, Gateway, HEADER_LEN, Header, Message};
use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc};

use crate::metrics::Metrics;

const SHARDS: usize = 64;
/// Frames queued towards one edge; more and the frame is refused (requests answered 0xA3).
pub(crate) const EDGE_QUEUE: usize = 32;
/// Frames queued towards one upstream link.
pub(crate) const LINK_QUEUE: usize = 8192;

/// Something for an edge task to do.
#[derive(Debug)]
pub(crate) enum ToEdge {
    /// A frame from the platform (header still carries upstream ids).
    Frame(Bytes),
    /// Close the edge socket with this code and reason.
    Close(u16, &'static str),
}

/// What the link knows about one edge for replays and UNBIND-on-close.
#[derive(Default)]
pub(crate) struct EdgeState {
    /// The edge's AUTH as forwarded (endpointId set). Holds the edge's credential.
    pub(crate) auth: Option<Bytes>,
    /// The platform accepted the AUTH on the current link connection.
    pub(crate) authenticated: bool,
    /// The platform accepted the edge's AUTH once (replays happen only then).
    pub(crate) accepted: bool,
    /// Session id the edge was given in its AUTH reply (it puts it in every message).
    pub(crate) edge_session: u32,
    /// Session id the platform gave on the current link connection (differs after a replay).
    pub(crate) upstream_session: u32,
    /// Gateway of the latest successful BIND.
    pub(crate) gateway: Option<Gateway>,
    /// Names bound and not unbound.
    pub(crate) names: Vec<String>,
}

impl std::fmt::Debug for EdgeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `auth` holds the edge's credential: never printed.
        f.debug_struct("EdgeState")
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .field("authenticated", &self.authenticated)
            .field("accepted", &self.accepted)
            .field("edge_session", &self.edge_session)
            .field("upstream_session", &self.upstream_session)
            .field("gateway", &self.gateway)
            .field("names", &self.names)
            .finish()
    }
}

/// One edge socket as seen by the hub.
#[derive(Debug)]
pub(crate) struct EdgeEntry {
    /// Assigned AlwaysOn endpointId (never 0).
    pub(crate) id: u32,
    /// Index of the upstream link carrying this edge (changes on fail-over).
    link: AtomicUsize,
    /// Queue into the edge task.
    pub(crate) queue: EdgeQueue,
    /// Replay and unbind state.
    pub(crate) state: Mutex<EdgeState>,
}

/// A small bounded queue into one edge task that holds no allocation while empty (a tokio
/// `mpsc` channel costs ~1.5 KiB per edge even when idle).
#[derive(Debug, Default)]
pub(crate) struct EdgeQueue {
    items: Mutex<VecDeque<ToEdge>>,
    ready: Notify,
}

impl EdgeQueue {
    /// Queues without waiting; gives the item back when [`EDGE_QUEUE`] items are waiting.
    pub(crate) fn try_send(&self, item: ToEdge) -> Result<(), ToEdge> {
        let mut q = lock(&self.items);
        if q.len() >= EDGE_QUEUE {
            return Err(item);
        }
        q.push_back(item);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item. Cancel-safe: an item leaves the queue only when returned, and the
    /// queue is checked before every wait.
    pub(crate) async fn recv(&self) -> ToEdge {
        loop {
            if let Some(item) = self.pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    fn pop(&self) -> Option<ToEdge> {
        let mut q = lock(&self.items);
        let item = q.pop_front();
        if q.is_empty() && q.capacity() > 0 {
            *q = VecDeque::new();
        }
        item
    }
}

impl EdgeEntry {
    /// Index of the upstream link carrying this edge.
    pub(crate) fn link(&self) -> usize {
        self.link.load(Ordering::Acquire)
    }

    pub(crate) fn set_link(&self, link: usize) {
        self.link.store(link, Ordering::Release);
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, EdgeState> {
        lock(&self.state)
    }
}

/// A message the server itself sent on a link whose answer must not reach the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Internal {
    /// Replayed AUTH after a link reconnect: on success, re-BIND.
    ReAuth,
    /// Replayed BIND.
    ReBind,
}

/// One upstream link slot.
#[derive(Debug)]
pub(crate) struct LinkSlot {
    pub(crate) tx: mpsc::Sender<Bytes>,
    pub(crate) up: AtomicBool,
    pub(crate) internal: Mutex<HashMap<(u32, u32), Internal>>,
    next_request: AtomicU32,
}

impl LinkSlot {
    /// A request id for a message this server originates (high bit set to keep clear of the
    /// small counters edges use).
    pub(crate) fn request_id(&self) -> u32 {
        0x8000_0000 | (self.next_request.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF)
    }
}

/// The link is down or its queue is closed.
#[derive(Debug)]
pub(crate) struct Unavailable;

/// Shared routing state.
#[derive(Debug)]
pub(crate) struct Hub {
    shards: Vec<Mutex<HashMap<u32, Arc<EdgeEntry>>>>,
    next_endpoint: AtomicU32,
    pub(crate) links: Vec<LinkSlot>,
    round_robin: AtomicUsize,
    pub(crate) metrics: Arc<Metrics>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the maps inconsistent
    // (single operations), so a poisoned lock is used as is.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// A hub with `links` link slots; returns the receivers for the link tasks.
    pub(crate) fn new(
        links: usize,
        metrics: Arc<Metrics>,
    ) -> (Arc<Hub>, Vec<mpsc::Receiver<Bytes>>) {
        let mut slots = Vec::with_capacity(links);
        let mut rxs = Vec::with_capacity(links);
        for _ in 0..links {
            let (tx, rx) = mpsc::channel(LINK_QUEUE);
            slots.push(LinkSlot {
                tx,
                up: AtomicBool::new(false),
                internal: Mutex::new(HashMap::new()),
                next_request: AtomicU32::new(1),
            });
            rxs.push(rx);
        }
        let hub = Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_endpoint: AtomicU32::new(1),
            links: slots,
            round_robin: AtomicUsize::new(0),
            metrics,
        };
        (Arc::new(hub), rxs)
    }

    fn shard(&self, id: u32) -> &Mutex<HashMap<u32, Arc<EdgeEntry>>> {
        &self.shards[id as usize % SHARDS]
    }

    /// Number of links that are up.
    pub(crate) fn links_up(&self) -> usize {
        self.links
            .iter()
            .filter(|l| l.up.load(Ordering::Acquire))
            .count()
    }

    /// Picks an up link, round robin; `None` when all are down.
    pub(crate) fn pick_link(&self) -> Option<usize> {
        let n = self.links.len();
        let start = self.round_robin.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.links[i].up.load(Ordering::Acquire))
    }

    /// Registers a new edge on `link` with a fresh endpointId.
    pub(crate) fn register(&self, link: usize) -> Arc<EdgeEntry> {
        loop {
            let id = self.next_endpoint.fetch_add(1, Ordering::Relaxed);
            if id == 0 {
                continue;
            }
            let mut shard = lock(self.shard(id));
            if shard.contains_key(&id) {
                continue; // wrapped around onto a live edge
            }
            let entry = Arc::new(EdgeEntry {
                id,
                link: AtomicUsize::new(link),
                queue: EdgeQueue::default(),
                state: Mutex::new(EdgeState::default()),
            });
            shard.insert(id, entry.clone());
            return entry;
        }
    }

    pub(crate) fn unregister(&self, id: u32) {
        lock(self.shard(id)).remove(&id);
    }

    pub(crate) fn edge(&self, id: u32) -> Option<Arc<EdgeEntry>> {
        lock(self.shard(id)).get(&id).cloned()
    }

    /// Every edge carried by `link`.
    pub(crate) fn edges_on(&self, link: usize) -> Vec<Arc<EdgeEntry>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            out.extend(lock(shard).values().filter(|e| e.link() == link).cloned());
        }
        out
    }

    /// Every edge.
    pub(crate) fn all_edges(&self) -> Vec<Arc<EdgeEntry>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            out.extend(lock(shard).values().cloned());
        }
        out
    }

    /// Queues a frame for `link`, waiting while the queue is full.
    /// Cancel-safe: a cancelled send queues nothing.
    pub(crate) async fn send_up(&self, link: usize, frame: Bytes) -> Result<(), Unavailable> {
        let slot = &self.links[link];
        if !slot.up.load(Ordering::Acquire) {
            return Err(Unavailable);
        }
        slot.tx.send(frame).await.map_err(|_| Unavailable)
    }

    /// Queues a frame for `link` without waiting; false if down or full.
    pub(crate) fn try_send_up(&self, link: usize, frame: Bytes) -> bool {
        let slot = &self.links[link];
        slot.up.load(Ordering::Acquire) && slot.tx.try_send(frame).is_ok()
    }
}

/// Rewrites the endpointId (bytes 6..10) of a frame of at least [`HEADER_LEN`] bytes.
pub(crate) fn set_endpoint(frame: &mut [u8], id: u32) {
    if frame.len() >= HEADER_LEN {
        frame[6..10].copy_from_slice(&id.to_be_bytes());
    }
}

/// Rewrites the sessionId (bytes 10..14).
pub(crate) fn set_session(frame: &mut [u8], id: u32) {
    if frame.len() >= HEADER_LEN {
        frame[10..14].copy_from_slice(&id.to_be_bytes());
    }
}

/// Rewrites the requestId (bytes 2..6).
pub(crate) fn set_request_id(frame: &mut [u8], id: u32) {
    if frame.len() >= HEADER_LEN {
        frame[2..6].copy_from_slice(&id.to_be_bytes());
    }
}

/// A mutable copy of a frame (no copy when the buffer is not shared).
pub(crate) fn to_mut(frame: Bytes) -> BytesMut {
    match frame.try_into_mut() {
        Ok(m) => m,
        Err(shared) => BytesMut::from(&shared[..]),
    }
}

/// An error response to `req` with a reason, as bytes (falls back to no reason).
pub(crate) fn error_reply(req: &Header, code: Code, reason: &str) -> Bytes {
    match Message::error(req, code, reason).to_bytes() {
        Ok(b) => b,
        Err(_) => {
            let mut out = BytesMut::with_capacity(HEADER_LEN + 2);
            out.extend_from_slice(&[1, code.0]);
            out.extend_from_slice(&req.request_id.to_be_bytes());
            out.extend_from_slice(&req.endpoint_id.to_be_bytes());
            out.extend_from_slice(&req.session_id.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0xFF]);
            out.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rewrites() {
        let mut f = Message::keep_alive(7, 9).to_bytes().unwrap().to_vec();
        set_endpoint(&mut f, 0xABCD);
        set_session(&mut f, 0x1234);
        set_request_id(&mut f, 0x8000_0001);
        let h = Header::peek(&f).unwrap();
        assert_eq!(
            (h.request_id, h.endpoint_id, h.session_id),
            (0x8000_0001, 0xABCD, 0x1234)
        );
        let mut short = vec![1u8; 5];
        set_endpoint(&mut short, 1);
        assert_eq!(short, vec![1u8; 5]);
    }

    #[test]
    fn register_assigns_unique_nonzero_ids() {
        let (hub, _rx) = Hub::new(1, Arc::new(Metrics::new()));
        hub.next_endpoint.store(u32::MAX, Ordering::Relaxed);
        let a = hub.register(0);
        let b = hub.register(0);
        assert_eq!(a.id, u32::MAX);
        assert_eq!(b.id, 1, "0 is skipped on wrap-around");
        hub.next_endpoint.store(1, Ordering::Relaxed);
        let c = hub.register(0);
        assert_eq!(c.id, 2, "a live id is not reused");
        assert!(hub.edge(1).is_some());
        a.state().auth = Some(Bytes::from_static(b"secret-key"));
        assert!(!format!("{a:?}").contains("secret-key"));
        hub.unregister(1);
        assert!(hub.edge(1).is_none());
    }

    #[tokio::test]
    async fn edge_queue_is_bounded_and_frees_its_buffer() {
        let q = EdgeQueue::default();
        for i in 0..EDGE_QUEUE {
            q.try_send(ToEdge::Close(1000 + i as u16, "x")).unwrap();
        }
        assert!(q.try_send(ToEdge::Close(1, "full")).is_err());
        for i in 0..EDGE_QUEUE {
            assert!(matches!(q.recv().await, ToEdge::Close(c, _) if c == 1000 + i as u16));
        }
        assert_eq!(lock(&q.items).capacity(), 0, "no allocation while empty");
        let waiter = q.recv();
        q.try_send(ToEdge::Close(7, "late")).unwrap();
        assert!(matches!(waiter.await, ToEdge::Close(7, _)));
    }

    #[test]
    fn error_reply_echoes_ids() {
        let h = Header {
            code: Code::GET,
            request_id: 5,
            endpoint_id: 6,
            session_id: 7,
        };
        let b = error_reply(&h, Code::SERVICE_UNAVAILABLE, "platform unavailable");
        let m = Message::decode(&b, &alwayson::Limits::default()).unwrap();
        assert_eq!(m.header.code, Code::SERVICE_UNAVAILABLE);
        assert_eq!(
            (
                m.header.request_id,
                m.header.endpoint_id,
                m.header.session_id
            ),
            (5, 6, 7)
        );
    }
}
