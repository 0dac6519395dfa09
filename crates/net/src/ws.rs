//! Websocket client connect, buffer presets, and a server-side accept on a
//! raw stream for components that do not go through axum, optionally with
//! permessage-deflate ([`deflate`], [`accept_deflate`]).
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use net::tls::{self, ALPN_HTTP1};
//! use net::ws::{self, WsConfig};
//! use net::Trust;
//! use std::time::Duration;
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let trust = tls::client_config(&Trust::pinned_from_strs(&["AB:CD:…"])?, &[ALPN_HTTP1])?;
//! let mut socket = ws::connect(
//!     "wss://platform.local:8443/Thingworx/WS",
//!     &[("appKey", "…")],
//!     trust,
//!     WsConfig::small(),
//!     ws::DEFAULT_CONNECT_TIMEOUT,
//! )
//! .await?;
//! socket.send(Message::Binary(vec![0x01].into())).await?;
//! let reply = socket.next().await;
//! # let _ = reply;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Error as WsError};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::NetError;

pub mod deflate;

pub use deflate::{DeflateConfig, DeflateParams, DeflateStream};

/// A client websocket over plain TCP or TLS.
pub type ClientWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The server's answer to a client handshake (status 101 and headers).
pub type HandshakeResponse = ::http::Response<Option<Vec<u8>>>;

/// Default deadline for a websocket client connect (DNS + TCP + TLS + HTTP).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Buffer sizes and message limits of a websocket. Use [`WsConfig::small`]
/// for many mostly idle connections and [`WsConfig::bulk`] (the default) for
/// data transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Read buffer capacity (allocated per connection) and read chunk size.
    pub read_buffer_size: usize,
    /// Bytes buffered before a write is flushed to the socket (0 = write
    /// each message at once).
    pub write_buffer_size: usize,
    /// Upper bound of the write buffer; sending past it is an error.
    /// Must be larger than `write_buffer_size`.
    pub max_write_buffer_size: usize,
    /// Largest message accepted (after reassembling fragments).
    pub max_message_size: usize,
    /// Largest single frame accepted.
    pub max_frame_size: usize,
    /// Accept unmasked client frames on the server side (RFC 6455 says no).
    pub accept_unmasked_frames: bool,
}

impl WsConfig {
    /// For tens of thousands of mostly idle connections (AlwaysOn edges):
    /// 4 KiB read buffer, direct writes, 1 MiB messages, 64 KiB frames.
    pub const fn small() -> Self {
        WsConfig {
            read_buffer_size: 4 * 1024,
            write_buffer_size: 0,
            max_write_buffer_size: 1024 * 1024,
            max_message_size: 1024 * 1024,
            max_frame_size: 64 * 1024,
            accept_unmasked_frames: false,
        }
    }

    /// For bulk transfer (tunnels): 32 KiB read buffer, 64 KiB write
    /// buffer, 16 MiB messages and frames, 32 MiB write buffer bound.
    ///
    /// Not bigger: tungstenite zero-fills its spare read buffer before each
    /// read while TLS hands over at most one 16 KiB record per read, and a
    /// write buffer above rustls' 64 KiB send limit turns into partial writes
    /// and buffer shifts. Measured with `tether-bench tunnel` (one stream,
    /// idle machine): 128/128 KiB 2.15 Gbit/s, 16/32 KiB 2.18, 32/64 KiB
    /// 2.40–2.42 (three runs), 64/64 KiB 1.86.
    pub const fn bulk() -> Self {
        WsConfig {
            read_buffer_size: 32 * 1024,
            write_buffer_size: 64 * 1024,
            max_write_buffer_size: 32 * 1024 * 1024,
            max_message_size: 16 * 1024 * 1024,
            max_frame_size: 16 * 1024 * 1024,
            accept_unmasked_frames: false,
        }
    }

    /// The tokio-tungstenite configuration.
    pub fn to_tungstenite(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(self.max_write_buffer_size.max(self.write_buffer_size + 1))
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
            .accept_unmasked_frames(self.accept_unmasked_frames)
    }

    /// Apply these sizes to an axum upgrade:
    /// `cfg.apply_axum(upgrade).on_upgrade(...)`.
    pub fn apply_axum(
        &self,
        upgrade: axum::extract::ws::WebSocketUpgrade,
    ) -> axum::extract::ws::WebSocketUpgrade {
        upgrade
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(self.max_write_buffer_size.max(self.write_buffer_size + 1))
            .max_message_size(self.max_message_size)
            .max_frame_size(self.max_frame_size)
            .accept_unmasked_frames(self.accept_unmasked_frames)
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig::bulk()
    }
}

/// Connect to a `ws://` or `wss://` URL, adding `extra_headers` to the
/// upgrade request (e.g. `("appKey", key)`, `("Authorization", "Bearer …")`,
/// `("Sec-WebSocket-Protocol", "…")`). `trust` is used for `wss://` (build it
/// with [`crate::tls::client_config`] and ALPN `http/1.1`). The whole connect
/// (DNS, TCP, TLS, upgrade) must finish within `timeout`.
pub async fn connect(
    url: &str,
    extra_headers: &[(&str, &str)],
    trust: Arc<ClientConfig>,
    cfg: WsConfig,
    timeout: Duration,
) -> Result<ClientWs, NetError> {
    connect_with_response(url, extra_headers, trust, cfg, timeout)
        .await
        .map(|(ws, _)| ws)
}

/// [`connect`], also returning the server's handshake response (e.g. to read
/// the selected `Sec-WebSocket-Protocol`).
pub async fn connect_with_response(
    url: &str,
    extra_headers: &[(&str, &str)],
    trust: Arc<ClientConfig>,
    cfg: WsConfig,
    timeout: Duration,
) -> Result<(ClientWs, HandshakeResponse), NetError> {
    let shown = redact_url(url);
    let parsed = url::Url::parse(url).map_err(|e| NetError::InvalidUrl {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(NetError::InvalidUrl {
            url: shown,
            reason: format!("scheme must be ws or wss, not {}", parsed.scheme()),
        });
    }
    let mut request = url
        .into_client_request()
        .map_err(|e| NetError::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
    for (name, value) in extra_headers {
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| NetError::InvalidHeader {
                name: (*name).to_owned(),
                reason: e.to_string(),
            })?;
        let mut value = HeaderValue::from_str(value).map_err(|e| NetError::InvalidHeader {
            name: (*name).to_owned(),
            reason: e.to_string(),
        })?;
        value.set_sensitive(true);
        request.headers_mut().append(header, value);
    }
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(cfg.to_tungstenite()),
        true,
        Some(Connector::Rustls(trust)),
    );
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(WsError::Http(response))) => Err(NetError::WsRefused {
            url: shown,
            status: response.status(),
        }),
        Ok(Err(e)) => Err(NetError::WsConnect {
            url: shown,
            reason: describe(&e),
            source: Box::new(e),
        }),
        Err(_) => Err(NetError::Timeout {
            what: format!("websocket connect to {shown}"),
            after: timeout,
        }),
    }
}

/// Drop the query string and user info from a URL before showing it.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.query().is_some() {
                u.set_query(Some("redacted"));
            }
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => url.chars().take(200).collect(),
    }
}

/// A readable description, reaching into I/O errors for the TLS cause.
fn describe(e: &WsError) -> String {
    match e {
        WsError::Io(io) => crate::tls::describe_io(io),
        WsError::Tls(tungstenite::error::TlsError::Rustls(tls)) => crate::tls::describe(tls),
        other => other.to_string(),
    }
}

/// The client's upgrade request as seen by [`accept`].
#[derive(Clone, Debug)]
pub struct Handshake {
    /// Request target (path and query).
    pub uri: Uri,
    /// Request headers (e.g. `appKey`, `Sec-WebSocket-Protocol`).
    pub headers: HeaderMap,
}

/// What to do with an upgrade request, decided by the caller of
/// [`accept_with`].
#[derive(Clone, Debug)]
pub enum Decision {
    /// Upgrade; answer with this `Sec-WebSocket-Protocol` if given.
    Accept {
        /// The subprotocol to select (must be one the client offered).
        subprotocol: Option<String>,
    },
    /// Refuse with this status and a short plain-text reason.
    Reject {
        /// HTTP status (e.g. 401, 403, 404).
        status: StatusCode,
        /// Body text.
        reason: String,
    },
}

/// Accept a websocket on an established stream (plain or TLS) with a
/// deadline, accepting every request. Returns the socket and the request.
pub async fn accept<S>(
    stream: S,
    cfg: WsConfig,
    timeout: Duration,
) -> Result<(WebSocketStream<S>, Handshake), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, cfg, timeout, |_| Decision::Accept {
        subprotocol: None,
    })
    .await
}

/// Accept a websocket on an established stream with a deadline, letting
/// `decide` inspect the request (path, `appKey` header, offered
/// subprotocols) and accept or reject it before the upgrade.
pub async fn accept_with<S, F>(
    stream: S,
    cfg: WsConfig,
    timeout: Duration,
    decide: F,
) -> Result<(WebSocketStream<S>, Handshake), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Handshake) -> Decision,
{
    accept_inner(stream, cfg, timeout, decide, |_, _| {}).await
}

/// [`accept_with`] with permessage-deflate (RFC 7692) under the websocket:
/// if `deflate` is given and the client offers the extension in a form this
/// server can honour, the `101` carries the accepted parameters and messages
/// are compressed both ways from then on; otherwise the stream passes bytes
/// through unchanged. Also returns what was agreed.
pub async fn accept_deflate<S, F>(
    stream: S,
    cfg: WsConfig,
    deflate: Option<DeflateConfig>,
    timeout: Duration,
    decide: F,
) -> Result<
    (
        WebSocketStream<DeflateStream<S>>,
        Handshake,
        Option<DeflateParams>,
    ),
    NetError,
>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Handshake) -> Decision,
{
    let (stream, negotiator) = DeflateStream::server(
        stream,
        deflate.unwrap_or_else(|| DeflateConfig::for_ws(&cfg)),
    );
    let enabled = deflate.is_some();
    let add_extension = |request: &Request, response: &mut Response| {
        if !enabled {
            return;
        }
        if let Some(v) = negotiator.negotiate(request.headers()) {
            response
                .headers_mut()
                .insert(::http::header::SEC_WEBSOCKET_EXTENSIONS, v);
        }
    };
    let (ws, handshake) = accept_inner(stream, cfg, timeout, decide, add_extension).await?;
    let params = ws.get_ref().params();
    Ok((ws, handshake, params))
}

async fn accept_inner<S, F, H>(
    stream: S,
    cfg: WsConfig,
    timeout: Duration,
    decide: F,
    on_accept: H,
) -> Result<(WebSocketStream<S>, Handshake), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Handshake) -> Decision,
    H: FnOnce(&Request, &mut Response),
{
    // Boxed so the callbacks are `Unpin` whatever `F` and `H` are.
    let decide = Box::new(decide);
    let on_accept = Box::new(on_accept);
    let mut seen: Option<Handshake> = None;
    let mut rejected: Option<(StatusCode, String)> = None;
    // The error type is tungstenite's, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        let handshake = Handshake {
            uri: request.uri().clone(),
            headers: request.headers().clone(),
        };
        let decision = decide(&handshake);
        seen = Some(handshake);
        match decision {
            Decision::Accept { subprotocol } => {
                if let Some(p) = subprotocol {
                    match HeaderValue::from_str(&p) {
                        Ok(v) => {
                            response
                                .headers_mut()
                                .insert(::http::header::SEC_WEBSOCKET_PROTOCOL, v);
                        }
                        Err(_) => {
                            return Err(reject(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "bad subprotocol",
                                &mut rejected,
                            ));
                        }
                    }
                }
                on_accept(request, &mut response);
                Ok(response)
            }
            Decision::Reject { status, reason } => Err(reject(status, &reason, &mut rejected)),
        }
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(cfg.to_tungstenite()),
    );
    let result = tokio::time::timeout(timeout, handshake).await;
    match result {
        Ok(Ok(ws)) => match seen {
            Some(h) => Ok((ws, h)),
            None => Err(NetError::WsAccept(Box::new(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::HandshakeIncomplete,
            )))),
        },
        Ok(Err(e)) => match rejected {
            Some((status, reason)) => Err(NetError::WsRejected { status, reason }),
            None => Err(NetError::WsAccept(Box::new(e))),
        },
        Err(_) => Err(NetError::Timeout {
            what: "websocket handshake from client".to_owned(),
            after: timeout,
        }),
    }
}

fn reject(
    status: StatusCode,
    reason: &str,
    slot: &mut Option<(StatusCode, String)>,
) -> ErrorResponse {
    *slot = Some((status, reason.to_owned()));
    let mut response = ErrorResponse::new(Some(reason.to_owned()));
    *response.status_mut() = status;
    response
}
