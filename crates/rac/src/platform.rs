//! The platform's session API as the RAC uses it: trade a launch nonce for
//! the client token, or create a session with an app key or a password.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::error::RacError;
use crate::launch::valid_session_id;

/// Largest API response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// How a CLI caller authenticates to create a session.
#[derive(Clone)]
pub enum Credentials {
    /// An app key, sent as the `appKey` header.
    AppKey(String),
    /// A user and password, sent as HTTP Basic.
    Password { user: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::AppKey(_) => f.write_str("AppKey(***)"),
            Credentials::Password { user, .. } => write!(f, "Password({user}, ***)"),
        }
    }
}

/// A session the RAC may attach to: where, and with which token.
#[derive(Clone)]
pub struct Joined {
    /// Session id.
    pub session: String,
    /// The client endpoint, derived from the platform URL.
    pub client_url: String,
    /// The single-use client token.
    pub client_token: String,
}

impl fmt::Debug for Joined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joined")
            .field("session", &self.session)
            .field("client_url", &self.client_url)
            .field("client_token", &"***")
            .finish()
    }
}

/// What the session reaches, as the platform says (for labels). Empty
/// when the platform does not say (an older platform's nonce trade).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTarget {
    /// The thing (device).
    pub thing: Option<String>,
    /// Its interface, e.g. `ssh`.
    pub interface: Option<String>,
}

/// Longest thing or interface name taken from the platform for labels.
const MAX_LABEL: usize = 256;

fn label(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty() && s.len() <= MAX_LABEL && !s.chars().any(char::is_control))
}

/// A client of one platform's session API.
#[derive(Debug, Clone)]
pub struct Platform {
    base: Url,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenAnswer {
    client_token: String,
    #[serde(default)]
    thing: Option<String>,
    #[serde(default)]
    interface: Option<String>,
}

#[derive(Deserialize)]
struct CreatedAnswer {
    id: String,
    client_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

impl Platform {
    /// A client for `base` (`https://host:port`), trusting per `tls`.
    pub fn new(base: Url, tls: &rustls::ClientConfig, timeout: Duration) -> Result<Self, RacError> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RacError::Usage(format!("HTTP client: {e}")))?;
        Ok(Self { base, http })
    }

    /// The platform's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url, RacError> {
        self.base
            .join(path)
            .map_err(|e| RacError::Usage(format!("platform URL: {e}")))
    }

    /// The client endpoint of session `id` on this platform.
    pub fn client_url(&self, id: &str) -> String {
        let scheme = if self.base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let base = self.base.as_str().trim_end_matches('/');
        let rest = base.split_once("://").map_or(base, |(_, r)| r);
        format!("{scheme}://{rest}/remote-access/v1/sessions/{id}/client")
    }

    /// Trade the launch nonce of session `id` for its client token.
    pub async fn trade_nonce(&self, id: &str, nonce: &str) -> Result<Joined, RacError> {
        Ok(self.trade_nonce_for(id, nonce).await?.0)
    }

    /// [`Platform::trade_nonce`], also returning what the session reaches.
    pub async fn trade_nonce_for(
        &self,
        id: &str,
        nonce: &str,
    ) -> Result<(Joined, SessionTarget), RacError> {
        if !valid_session_id(id) {
            return Err(RacError::Usage("invalid session id".into()));
        }
        let url = self.url(&format!("/api/v1/sessions/{id}/client-token"))?;
        let req = self
            .http
            .post(url)
            .json(&serde_json::json!({ "nonce": nonce }));
        let answer: TokenAnswer = send(req).await?;
        let target = SessionTarget {
            thing: label(answer.thing),
            interface: label(answer.interface),
        };
        let joined = Joined {
            session: id.to_owned(),
            client_url: self.client_url(id),
            client_token: answer.client_token,
        };
        Ok((joined, target))
    }

    /// Tell the platform the local address the RAC listens on for session
    /// `joined` (shown on the web page), authenticated with the client
    /// token it attached with.
    pub async fn report_local_address(
        &self,
        joined: &Joined,
        local: std::net::SocketAddr,
    ) -> Result<(), RacError> {
        if !valid_session_id(&joined.session) {
            return Err(RacError::Usage("invalid session id".into()));
        }
        let url = self.url(&format!("/api/v1/sessions/{}/client-info", joined.session))?;
        let req = self
            .http
            .post(url)
            .bearer_auth(&joined.client_token)
            .json(&serde_json::json!({ "local_address": local.to_string() }));
        let _: serde_json::Value = send(req).await?;
        Ok(())
    }

    /// Create a session to `interface` on `thing` and take its client token.
    pub async fn create_session(
        &self,
        thing: &str,
        interface: &str,
        creds: &Credentials,
    ) -> Result<Joined, RacError> {
        let url = self.url("/api/v1/sessions")?;
        let mut req = self.http.post(url).json(&serde_json::json!({
            "thing": thing,
            "interface": interface,
            "client_token": true,
        }));
        req = match creds {
            Credentials::AppKey(k) => req.header("appKey", k),
            Credentials::Password { user, password } => req.basic_auth(user, Some(password)),
        };
        let answer: CreatedAnswer = send(req).await?;
        if !valid_session_id(&answer.id) {
            return Err(RacError::Unreachable(
                "the platform returned an invalid session id".into(),
            ));
        }
        let token = answer
            .client_token
            .ok_or_else(|| RacError::Unreachable("the platform returned no client token".into()))?;
        Ok(Joined {
            client_url: self.client_url(&answer.id),
            session: answer.id,
            client_token: token,
        })
    }
}

async fn send<T: serde::de::DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T, RacError> {
    let resp = req
        .send()
        .await
        .map_err(|e| RacError::Unreachable(describe(&e)))?;
    let status = resp.status();
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| RacError::Unreachable(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(RacError::Unreachable("response too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorAnswer>(&body)
            .map(|e| e.error)
            .unwrap_or_else(|_| {
                status
                    .canonical_reason()
                    .unwrap_or("unexpected status")
                    .to_owned()
            });
        return Err(RacError::Refused {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&body)
        .map_err(|e| RacError::Unreachable(format!("unexpected answer from the platform: {e}")))
}

/// The error and its causes on one line (reqwest hides the TLS cause).
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
