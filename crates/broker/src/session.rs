//! Session vocabulary: sides, states, end reasons, the public view, and the
//! state shared between a session's actor and its relay tasks.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;
use tunnel::close;

/// One end of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The RAC.
    Client,
    /// The edge.
    Server,
}

impl Side {
    /// `client` or `server`, as in the endpoint path.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    /// The other side.
    pub const fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    pub(crate) const fn idx(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle state (spec/tunnel.md, "Session lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created, no side attached.
    Pending,
    /// One side attached.
    Half,
    /// Both sides attached.
    Active,
    /// Over (terminal).
    Ended,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// No side attached before the attach deadline.
    AttachTimeout,
    /// One side attached, the other did not before the attach deadline.
    PeerTimeout(Side),
    /// No DATA either way for the idle timeout.
    IdleTimeout,
    /// The maximum duration was reached.
    MaxDuration,
    /// Ended by its owner (`DELETE`).
    EndedByUser(String),
    /// Ended by an administrator who does not own it.
    EndedByAdmin(String),
    /// A side closed its socket or sent CLOSE.
    SideLeft { side: Side, detail: String },
    /// Nothing heard from a side for twice the ping interval.
    SideGone(Side),
    /// A side broke the protocol.
    ProtocolError { side: Side, detail: String },
    /// A side speaks no version the broker knows.
    UnsupportedVersion { side: Side, version: u8 },
    /// `start_tunnel` failed.
    EdgeRefused(String),
    /// The broker is shutting down.
    Shutdown,
}

impl EndReason {
    /// Machine-readable name, e.g. `idle_timeout`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::AttachTimeout => "attach_timeout",
            EndReason::PeerTimeout(_) => "peer_timeout",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxDuration => "max_duration",
            EndReason::EndedByUser(_) => "ended_by_user",
            EndReason::EndedByAdmin(_) => "ended_by_admin",
            EndReason::SideLeft {
                side: Side::Client, ..
            } => "client_left",
            EndReason::SideLeft {
                side: Side::Server, ..
            } => "server_left",
            EndReason::SideGone(Side::Client) => "client_gone",
            EndReason::SideGone(Side::Server) => "server_gone",
            EndReason::ProtocolError { .. } => "protocol_error",
            EndReason::UnsupportedVersion { .. } => "unsupported_version",
            EndReason::EdgeRefused(_) => "edge_refused",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// The CLOSE (and WebSocket close) code sent to the sides.
    pub fn code(&self) -> u16 {
        match self {
            EndReason::AttachTimeout => close::ATTACH_TIMEOUT,
            EndReason::PeerTimeout(_) => close::PEER_TIMEOUT,
            EndReason::IdleTimeout => close::IDLE,
            EndReason::MaxDuration => close::MAX_DURATION,
            EndReason::EndedByUser(_) | EndReason::EndedByAdmin(_) => close::ENDED,
            EndReason::SideLeft { .. } => close::PEER_LEFT,
            EndReason::SideGone(_) => close::PEER_GONE,
            EndReason::ProtocolError { .. } => close::PROTOCOL_ERROR,
            EndReason::UnsupportedVersion { .. } => close::UNSUPPORTED_VERSION,
            EndReason::EdgeRefused(_) => close::POLICY,
            EndReason::Shutdown => close::GOING_AWAY,
        }
    }

    /// Human-readable sentence (CLOSE reason text, audit detail).
    pub fn detail(&self) -> String {
        match self {
            EndReason::AttachTimeout => "no side attached before the attach deadline".into(),
            EndReason::PeerTimeout(side) => {
                format!("the {} side did not attach in time", side.peer())
            }
            EndReason::IdleTimeout => "idle timeout: no data either way".into(),
            EndReason::MaxDuration => "maximum session duration reached".into(),
            EndReason::EndedByUser(u) => format!("ended by {u}"),
            EndReason::EndedByAdmin(u) => format!("ended by administrator {u}"),
            EndReason::SideLeft { side, detail } => format!("the {side} side left: {detail}"),
            EndReason::SideGone(side) => format!("the {side} side stopped answering"),
            EndReason::ProtocolError { side, detail } => {
                format!("protocol error from the {side} side: {detail}")
            }
            EndReason::UnsupportedVersion { side, version } => {
                format!("the {side} side speaks unsupported version {version}")
            }
            EndReason::EdgeRefused(why) => format!("the edge refused: {why}"),
            EndReason::Shutdown => "the platform is shutting down".into(),
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.as_str(), self.detail())
    }
}

/// What the session API shows about a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub id: String,
    pub user: String,
    pub thing: String,
    pub interface: String,
    pub state: State,
    pub client_attached: bool,
    pub server_attached: bool,
    pub created: DateTime<Utc>,
    /// When the attach deadline passes.
    pub expires: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub end_detail: Option<String>,
    pub bytes_client_to_server: u64,
    pub bytes_server_to_client: u64,
    pub streams_opened: u64,
    pub streams_open: usize,
    /// The local address the RAC listens on (`127.0.0.1:P`), once it has
    /// reported it (`POST /api/v1/sessions/{id}/client-info`).
    pub client_address: Option<String>,
}

/// The immutable facts of a session.
#[derive(Debug)]
pub(crate) struct SessionInfo {
    pub id: String,
    pub user: String,
    pub thing: String,
    pub interface: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub created_at: Instant,
}

/// Mutable status, behind a short lock never held across `.await`.
#[derive(Debug)]
pub(crate) struct Status {
    pub state: State,
    pub attached: [bool; 2],
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<(DateTime<Utc>, EndReason)>,
    /// The RAC's local listening address, as it reported it.
    pub client_address: Option<String>,
}

/// State shared by a session's actor and relay tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub status: Mutex<Status>,
    pub streams: Mutex<crate::streams::Streams>,
    pub hellos: Mutex<crate::hello::Hellos>,
    /// DATA payload bytes sent by each side (index: [`Side::idx`]).
    pub bytes: [AtomicU64; 2],
    pub streams_opened: AtomicU64,
    /// Milliseconds after `created_at` of the last DATA either way.
    pub last_data_ms: AtomicU64,
    /// Bytes queued in the broker towards each side, and the high-water mark.
    pub queued: [AtomicUsize; 2],
    pub queued_max: [AtomicUsize; 2],
}

impl Shared {
    pub(crate) fn new(window: u32, max_streams: usize) -> Self {
        Self {
            status: Mutex::new(Status {
                state: State::Pending,
                attached: [false; 2],
                started: None,
                ended: None,
                client_address: None,
            }),
            streams: Mutex::new(crate::streams::Streams::new(window, max_streams)),
            hellos: Mutex::new(crate::hello::Hellos::default()),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            streams_opened: AtomicU64::new(0),
            last_data_ms: AtomicU64::new(0),
            queued: [AtomicUsize::new(0), AtomicUsize::new(0)],
            queued_max: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    pub(crate) fn view(&self, info: &SessionInfo) -> SessionView {
        let (state, attached, started, ended, client_address) = {
            let s = lock(&self.status);
            (
                s.state,
                s.attached,
                s.started,
                s.ended.clone(),
                s.client_address.clone(),
            )
        };
        let streams_open = lock(&self.streams).open_count();
        SessionView {
            id: info.id.clone(),
            user: info.user.clone(),
            thing: info.thing.clone(),
            interface: info.interface.clone(),
            state,
            client_attached: attached[Side::Client.idx()],
            server_attached: attached[Side::Server.idx()],
            created: info.created,
            expires: info.expires,
            started,
            ended: ended.as_ref().map(|(t, _)| *t),
            end_reason: ended.as_ref().map(|(_, r)| r.as_str().to_owned()),
            end_detail: ended.as_ref().map(|(_, r)| r.detail()),
            bytes_client_to_server: self.bytes[Side::Client.idx()].load(Ordering::Relaxed),
            bytes_server_to_client: self.bytes[Side::Server.idx()].load(Ordering::Relaxed),
            streams_opened: self.streams_opened.load(Ordering::Relaxed),
            streams_open,
            client_address,
        }
    }

    /// Most bytes ever queued in the broker towards `side` at once.
    pub(crate) fn queued_high_water(&self, side: Side) -> usize {
        self.queued_max[side.idx()].load(Ordering::Relaxed)
    }
}

/// Lock a std mutex, recovering from poisoning (the data stay consistent:
/// every critical section is a few plain assignments).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
