//! The three ways to use a session, end to end: join (nonce trade or
//! creation), attach, then serve a local port or pipe stdio.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tunnel::PeerState;
use tunnel::driver::Io;
use url::Url;

use crate::client::{ClientOptions, Ended, Tunnel};
use crate::error::RacError;
use crate::launch::LaunchUrl;
use crate::platform::{Credentials, Joined, Platform, SessionTarget};

/// How to get into a session.
#[derive(Debug, Clone)]
pub enum Join {
    /// Trade the nonce of a launch URL (`tether-rac open`).
    Launch(LaunchUrl),
    /// Create the session (`tether-rac connect`).
    Create {
        platform: Url,
        thing: String,
        interface: String,
        credentials: Credentials,
    },
}

/// Where [`Notice`]s go (the CLI prints them, a tray app shows them).
pub type Notify = Arc<dyn Fn(Notice) + Send + Sync>;

/// Something worth telling the user while a session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Joined session `session`, reaching `interface` on `thing` (when
    /// the platform says).
    Joined {
        session: String,
        thing: Option<String>,
        interface: Option<String>,
    },
    /// The local port is open.
    Listening(SocketAddr),
    /// The other side (the edge) is attached.
    PeerAttached,
    /// The other side left.
    PeerLeft,
    /// The platform took the local address (it shows it on the web page).
    AddressReported(SocketAddr),
    /// The platform did not take the local address (an older platform, or
    /// it could not be reached); the session runs on regardless.
    AddressNotReported(String),
}

/// Everything a run needs besides the join.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// TLS trust for the platform (validate, pin, or explicitly insecure).
    pub trust: net::Trust,
    /// Tunnel client settings.
    pub client: ClientOptions,
    /// Deadline of each HTTP call.
    pub http_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            trust: net::Trust::default(),
            client: ClientOptions::default(),
            http_timeout: crate::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// A joined session: the platform's API, the client token, what it reaches.
struct Session {
    platform: Platform,
    joined: Joined,
    target: SessionTarget,
}

async fn join(
    how: &Join,
    tls: &rustls::ClientConfig,
    timeout: Duration,
) -> Result<Session, RacError> {
    match how {
        Join::Launch(l) => {
            let platform = Platform::new(l.platform.clone(), tls, timeout)?;
            let (joined, target) = platform.trade_nonce_for(&l.session, &l.nonce).await?;
            Ok(Session {
                platform,
                joined,
                target,
            })
        }
        Join::Create {
            platform,
            thing,
            interface,
            credentials,
        } => {
            let platform = Platform::new(platform.clone(), tls, timeout)?;
            let joined = platform
                .create_session(thing, interface, credentials)
                .await?;
            Ok(Session {
                platform,
                joined,
                target: SessionTarget {
                    thing: Some(thing.clone()),
                    interface: Some(interface.clone()),
                },
            })
        }
    }
}

async fn attach(
    how: &Join,
    opts: &RunOptions,
    notify: &(dyn Fn(Notice) + Send + Sync),
) -> Result<(Tunnel, Session), RacError> {
    let tls = crate::tls_config(&opts.trust)?;
    let session = join(how, &tls, opts.http_timeout).await?;
    notify(Notice::Joined {
        session: session.joined.session.clone(),
        thing: session.target.thing.clone(),
        interface: session.target.interface.clone(),
    });
    let tunnel = Tunnel::attach(&session.joined, tls, &opts.client).await?;
    Ok((tunnel, session))
}

/// Tell the platform where the RAC listens (in the background: the web
/// page shows it; a failure only costs that display).
fn report_address(session: Session, local: SocketAddr, notify: Notify, stop: CancellationToken) {
    tokio::spawn(async move {
        let report = session
            .platform
            .report_local_address(&session.joined, local);
        tokio::select! {
            r = report => match r {
                Ok(()) => notify(Notice::AddressReported(local)),
                Err(e) => {
                    tracing::debug!(error = %e, "local address not reported");
                    notify(Notice::AddressNotReported(e.to_string()));
                }
            },
            _ = stop.cancelled() => {}
        }
    });
}

fn watch_peer(tunnel: &Tunnel, notify: Notify) {
    let mut status = tunnel.status();
    tokio::spawn(async move {
        let mut last = None;
        while status.changed().await.is_ok() {
            let (peer, closed) = {
                let s = status.borrow_and_update();
                (s.peer, s.closed)
            };
            if closed {
                return;
            }
            if peer != last {
                last = peer;
                match peer {
                    Some(PeerState::Attached) => notify(Notice::PeerAttached),
                    Some(PeerState::Left) => notify(Notice::PeerLeft),
                    None => {}
                }
            }
        }
    });
}

/// Join, attach, listen on `127.0.0.1:local_port` (0 = any free port) and
/// serve until the session ends or `shutdown`. The port is closed when
/// this returns.
pub async fn listen(
    how: Join,
    local_port: u16,
    opts: RunOptions,
    shutdown: CancellationToken,
    notify: Notify,
) -> Result<Ended, RacError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, local_port))
        .await
        .map_err(|e| {
            RacError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot listen on 127.0.0.1:{local_port}: {e}"),
            ))
        })?;
    listen_on(how, listener, opts, shutdown, notify).await
}

/// [`listen`] on a listener already bound (tests bind `127.0.0.1:0`).
pub async fn listen_on(
    how: Join,
    listener: TcpListener,
    opts: RunOptions,
    shutdown: CancellationToken,
    notify: Notify,
) -> Result<Ended, RacError> {
    let (tunnel, session) = tokio::select! {
        t = attach(&how, &opts, notify.as_ref()) => t?,
        _ = shutdown.cancelled() => return Err(RacError::Usage("interrupted".into())),
    };
    let local = listener.local_addr()?;
    notify(Notice::Listening(local));
    let reporting = shutdown.child_token();
    report_address(session, local, notify.clone(), reporting.clone());
    watch_peer(&tunnel, notify);
    let ended = tunnel.serve(listener, shutdown).await;
    reporting.cancel();
    Ok(ended)
}

/// Join, attach and pipe `io` through one stream (`ssh -o ProxyCommand`).
pub async fn stdio<T: Io>(
    how: Join,
    io: T,
    opts: RunOptions,
    shutdown: CancellationToken,
    notify: Notify,
) -> Result<Ended, RacError> {
    let (tunnel, _session) = tokio::select! {
        t = attach(&how, &opts, notify.as_ref()) => t?,
        _ = shutdown.cancelled() => return Err(RacError::Usage("interrupted".into())),
    };
    watch_peer(&tunnel, notify);
    Ok(tunnel.pipe(io, shutdown).await)
}
