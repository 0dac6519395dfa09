//! Single instance: the running app listens on a Unix socket in the user's
//! runtime directory; a second `tether-rac open URL` hands the URL over and
//! exits.
//!
//! Protocol: the client sends one line of JSON, `{"open":"tether://open?…"}`,
//! at most [`MAX_LINE`] bytes; the app answers one line,
//! `{"status":"accepted"}` or `{"status":"error","error":"…"}`, and closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

/// Longest request or reply line, newline included.
pub const MAX_LINE: usize = 8 * 1024;
/// Deadline for one hand-over, both sides.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Most hand-over connections served at once.
pub const MAX_CLIENTS: usize = 8;
/// File name of the socket.
pub const SOCKET_NAME: &str = "tether-rac.sock";

/// What goes wrong with the single-instance socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// Another instance answers on the socket.
    #[error("another tether-rac is already running ({0})")]
    AlreadyRunning(PathBuf),
    /// No instance is running (nothing answers on the socket).
    #[error("no running tether-rac at {0}")]
    NotRunning(PathBuf),
    /// The running instance refused the URL.
    #[error("the running tether-rac refused: {0}")]
    Refused(String),
    /// The other side broke the protocol.
    #[error("bad hand-over reply: {0}")]
    Protocol(String),
    /// No directory for the socket.
    #[error("no runtime or cache directory for the instance socket")]
    NoDirectory,
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstanceError {
    let what = what.into();
    move |source| InstanceError::Io { what, source }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    open: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Reply {
    Accepted,
    Error { error: String },
}

/// The directory of the socket: `runtime_dir`, else `<cache_dir>/tether/run`
/// created with mode 0700 (and tightened to 0700 if it exists).
pub fn socket_dir(
    runtime_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> Result<PathBuf, InstanceError> {
    if let Some(dir) = runtime_dir {
        return Ok(dir);
    }
    let dir = cache_dir
        .ok_or(InstanceError::NoDirectory)?
        .join("tether")
        .join("run");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod 0700 {}", dir.display())))?;
    Ok(dir)
}

/// The socket path for this user (`dirs::runtime_dir()` or the fallback).
pub fn default_socket_path() -> Result<PathBuf, InstanceError> {
    Ok(socket_dir(dirs::runtime_dir(), dirs::cache_dir())?.join(SOCKET_NAME))
}

/// The listening side, owned by the running app. Removes its socket file
/// when dropped.
#[derive(Debug)]
pub struct InstanceServer {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl InstanceServer {
    /// Listen on `path` (mode 0600). A socket file nobody answers on is
    /// stale and replaced; one that answers is [`InstanceError::AlreadyRunning`].
    /// The mode is set right after `bind` (no umask call: unsafe code is
    /// denied); the directory (runtime dir or our 0700 fallback) keeps
    /// other users out in between.
    pub fn bind(path: &Path) -> Result<Self, InstanceError> {
        let listener = match std::os::unix::net::UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if UnixStream::connect(path).is_ok() {
                    return Err(InstanceError::AlreadyRunning(path.to_owned()));
                }
                debug!(path = %path.display(), "replacing a stale instance socket");
                std::fs::remove_file(path)
                    .map_err(io(format!("removing stale {}", path.display())))?;
                std::os::unix::net::UnixListener::bind(path)
                    .map_err(io(format!("listening on {}", path.display())))?
            }
            Err(e) => return Err(io(format!("listening on {}", path.display()))(e)),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("chmod 0600 {}", path.display())))?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serve hand-overs until `shutdown`: each URL goes to `accept`, whose
    /// `Err` text is sent back to the client. Must run inside a tokio runtime.
    pub async fn serve<F>(self, accept: F, shutdown: CancellationToken) -> Result<(), InstanceError>
    where
        F: Fn(String) -> Result<(), String> + Send + Sync + 'static,
    {
        self.listener
            .set_nonblocking(true)
            .map_err(io("instance socket"))?;
        let listener = tokio::net::UnixListener::from_std(
            self.listener.try_clone().map_err(io("instance socket"))?,
        )
        .map_err(io("instance socket"))?;
        let accept = Arc::new(accept);
        let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let stream = match conn {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(error = %e, "instance socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                warn!("too many hand-over connections; dropping one");
                continue;
            };
            let accept = accept.clone();
            tokio::spawn(
                async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDOVER_TIMEOUT, serve_one(stream, &*accept)).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => debug!(error = %e, "hand-over failed"),
                        Err(_) => debug!("hand-over timed out"),
                    }
                }
                .instrument(info_span!("handover")),
            );
        }
    }
}

impl Drop for InstanceServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_one(
    stream: tokio::net::UnixStream,
    accept: &(dyn Fn(String) -> Result<(), String> + Send + Sync),
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut line = Vec::new();
    (&mut r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    let too_long = !line.ends_with(b"\n");
    let reply = if too_long {
        Reply::Error {
            error: format!("request longer than {MAX_LINE} bytes or not ended by a newline"),
        }
    } else {
        match serde_json::from_slice::<Request>(&line) {
            Ok(req) => match accept(req.open) {
                Ok(()) => Reply::Accepted,
                Err(error) => Reply::Error { error },
            },
            Err(e) => Reply::Error {
                error: format!("bad request: {e}"),
            },
        }
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    w.write_all(&out).await?;
    w.shutdown().await?;
    if too_long {
        // Closing with unread input resets the connection and the client
        // may lose the reply: read what is left (bounded, and the caller's
        // deadline applies).
        tokio::io::copy(&mut r.take(16 * MAX_LINE as u64), &mut tokio::io::sink()).await?;
    }
    Ok(())
}

/// Hand `url` to the instance listening on `path` (blocking, bounded by
/// `timeout`). [`InstanceError::NotRunning`] when nothing answers.
pub fn hand_over(path: &Path, url: &str, timeout: Duration) -> Result<(), InstanceError> {
    let mut stream =
        UnixStream::connect(path).map_err(|_| InstanceError::NotRunning(path.to_owned()))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(io("instance socket"))?;
    let mut req = serde_json::to_vec(&Request {
        open: url.to_owned(),
    })
    .map_err(|e| InstanceError::Protocol(e.to_string()))?;
    req.push(b'\n');
    if req.len() > MAX_LINE {
        return Err(InstanceError::Refused(format!(
            "URL too long (limit {MAX_LINE} bytes)"
        )));
    }
    stream
        .write_all(&req)
        .map_err(io("sending to the running tether-rac"))?;
    let mut line = Vec::new();
    BufReader::new(stream)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(io("reading the running tether-rac's reply"))?;
    match serde_json::from_slice::<Reply>(&line) {
        Ok(Reply::Accepted) => Ok(()),
        Ok(Reply::Error { error }) => Err(InstanceError::Refused(error)),
        Err(e) => Err(InstanceError::Protocol(e.to_string())),
    }
}
