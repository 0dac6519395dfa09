//! Attach to the client endpoint and run the tunnel: a local listener that
//! opens a stream per TCP connection, or one stream over stdin/stdout.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tunnel::driver::{Io, Session, SessionEnd, SessionOptions, SessionStatus, serve_listener};
use tunnel::{Initiator, Mux, Role, close};

use crate::error::{EXIT_ENDED, EXIT_LOST, EXIT_OK, RacError};
use crate::platform::Joined;

/// The WebSocket subprotocol of the native tunnel.
pub const SUBPROTOCOL: &str = "tether-tunnel.v1";
/// Default ping interval: a broker or edge silent for twice this is gone.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Default deadline of HTTP calls and the WebSocket connect.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings of the tunnel client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// PING interval; two missed intervals end the session.
    pub ping_interval: Duration,
    /// Deadline of the WebSocket connect (DNS, TCP, TLS, upgrade).
    pub connect_timeout: Duration,
    /// OPEN label for every stream (the interface name, or empty).
    pub label: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ping_interval: DEFAULT_PING_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            label: String::new(),
        }
    }
}

/// How a session ended, from the RAC's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// CLOSE code, if there was one.
    pub code: Option<u16>,
    /// The reason given.
    pub reason: String,
    /// We ended it (Ctrl-C, stdin closed).
    pub by_us: bool,
    /// Bytes sent into the tunnel.
    pub bytes_sent: u64,
    /// Bytes received from the tunnel.
    pub bytes_received: u64,
}

impl Ended {
    fn from_end(end: SessionEnd) -> Self {
        Self {
            code: end.code,
            // Ended here on purpose (Ctrl-C, stdio done); a local protocol
            // error or a silent peer is not "by us".
            by_us: end.initiator == Some(Initiator::Local)
                && matches!(end.code, Some(close::NORMAL | close::GOING_AWAY)),
            reason: end.reason,
            bytes_sent: end.stats.bytes_sent,
            bytes_received: end.stats.bytes_received,
        }
    }

    /// 0 when we or the user ended it, [`EXIT_LOST`] when the platform or
    /// edge went silent or the connection broke, [`EXIT_ENDED`] otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.by_us {
            return EXIT_OK;
        }
        match self.code {
            Some(close::ENDED | close::NORMAL) => EXIT_OK,
            None | Some(close::PEER_GONE) => EXIT_LOST,
            Some(_) => EXIT_ENDED,
        }
    }

    /// One line for the user: `session ended: <reason>`.
    pub fn message(&self) -> String {
        match self.code {
            Some(code) => format!("session ended: {} (code {code})", self.reason),
            None => format!("session ended: {}", self.reason),
        }
    }
}

/// An attached client side, not yet running.
pub struct Tunnel {
    ws: net::ws::ClientWs,
    session: Session,
    label: String,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("label", &self.label)
            .finish()
    }
}

impl Tunnel {
    /// Attach to `joined.client_url` with the client token (header, never
    /// the URL). A refused token is [`RacError::Refused`] with status 401.
    pub async fn attach(
        joined: &Joined,
        tls: std::sync::Arc<rustls::ClientConfig>,
        opts: &ClientOptions,
    ) -> Result<Self, RacError> {
        let auth = format!("Bearer {}", joined.client_token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Sec-WebSocket-Protocol", SUBPROTOCOL),
        ];
        let (ws, resp) = net::ws::connect_with_response(
            &joined.client_url,
            &headers,
            tls,
            net::ws::WsConfig::bulk(),
            opts.connect_timeout,
        )
        .await
        .map_err(|e| match e {
            net::NetError::WsRefused { status, .. } => RacError::Refused {
                status: status.as_u16(),
                message: if status.as_u16() == 401 {
                    "the client token was refused (used, expired or wrong)".into()
                } else {
                    format!("the tunnel endpoint answered {status}")
                },
            },
            other => RacError::Unreachable(other.to_string()),
        })?;
        let chosen = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if chosen != Some(SUBPROTOCOL) {
            return Err(RacError::Unreachable(format!(
                "the platform did not accept the {SUBPROTOCOL} subprotocol"
            )));
        }
        let mut cfg = tunnel::Config::new(Role::Client);
        cfg.ping_interval = opts.ping_interval;
        let mux = Mux::new(cfg, Instant::now())
            .map_err(|e| RacError::Usage(format!("tunnel settings: {e}")))?;
        Ok(Self {
            ws,
            session: Session::new(mux, SessionOptions::default()),
            label: opts.label.clone(),
        })
    }

    /// Watch the session: negotiated values, PEER notices, RTT, closed.
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.session.handle().status()
    }

    /// Accept connections on `listener`, one stream each, until the session
    /// ends or `shutdown` fires (CLOSE 1001 "shutting down"). The listener
    /// is closed before this returns, so the port is free at once.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> Ended {
        let handle = self.session.handle();
        let stop = CancellationToken::new();
        let accept = tokio::spawn(serve_listener(listener, handle, self.label, stop.clone()));
        let end = self.session.run(self.ws, shutdown).await;
        stop.cancel();
        let _ = accept.await;
        Ended::from_end(end)
    }

    /// Pipe `io` (stdin/stdout) through one stream; the session ends when
    /// the stream is done both ways, or earlier on `shutdown` or a CLOSE.
    pub async fn pipe<T: Io>(self, io: T, shutdown: CancellationToken) -> Ended {
        let handle = self.session.handle();
        let label = self.label;
        let piping = async move {
            let result = handle.pipe(io, &label).await;
            let reason = match &result {
                Ok(_) => "stream finished".to_owned(),
                Err(e) => e.to_string(),
            };
            tracing::debug!(%reason, "stdio stream ended");
            handle.close(close::NORMAL, &reason).await;
        };
        let (end, ()) = tokio::join!(self.session.run(self.ws, shutdown), piping);
        Ended::from_end(end)
    }
}

/// The TLS client configuration for `trust` (HTTP/1.1 ALPN).
pub fn tls_config(trust: &net::Trust) -> Result<std::sync::Arc<rustls::ClientConfig>, RacError> {
    Ok(net::tls::client_config(trust, &[net::tls::ALPN_HTTP1])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunnel::Stats;

    fn end(code: Option<u16>, initiator: Option<Initiator>) -> Ended {
        Ended::from_end(SessionEnd {
            code,
            reason: "r".into(),
            initiator,
            stats: Stats::default(),
        })
    }

    #[test]
    fn exit_codes() {
        let local = Some(Initiator::Local);
        let peer = Some(Initiator::Peer);
        assert_eq!(end(Some(close::GOING_AWAY), local).exit_code(), EXIT_OK);
        assert_eq!(end(Some(close::NORMAL), local).exit_code(), EXIT_OK);
        assert_eq!(end(Some(close::ENDED), peer).exit_code(), EXIT_OK);
        assert_eq!(end(Some(close::IDLE), peer).exit_code(), EXIT_ENDED);
        assert_eq!(end(Some(close::PEER_LEFT), peer).exit_code(), EXIT_ENDED);
        assert_eq!(
            end(Some(close::PROTOCOL_ERROR), local).exit_code(),
            EXIT_ENDED
        );
        assert_eq!(end(Some(close::PEER_GONE), local).exit_code(), EXIT_LOST);
        assert_eq!(end(Some(close::PEER_GONE), peer).exit_code(), EXIT_LOST);
        assert_eq!(end(None, None).exit_code(), EXIT_LOST);
        assert_eq!(
            end(Some(close::IDLE), peer).message(),
            "session ended: r (code 4003)"
        );
    }
}
