//! HTTP client towards the EMS local REST ("rap"): registration, keep-alive,
//! subscriptions and property pushes, shaped as the ThingWorx LSR sends them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{PushType, RapConfig, Secret};
use crate::error::Error;
use crate::json::{PushedValue, push_body};

/// Connect timeout towards the EMS.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest EMS reply read.
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A failed exchange with the EMS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmsError {
    /// The EMS could not be reached (refused, timed out, TLS).
    #[error("EMS unreachable: {0}")]
    Unreachable(String),
    /// The EMS answered with an error status.
    #[error("EMS answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body text (shortened).
        body: String,
    },
    /// The EMS reply could not be understood.
    #[error("bad EMS reply: {0}")]
    BadReply(String),
}

/// Client for one EMS.
pub(crate) struct EmsClient {
    http: reqwest::Client,
    base: String,
    credentials: Option<(String, Secret)>,
}

/// Percent-encodes a path segment (thing names may contain spaces or `*`).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl EmsClient {
    pub fn new(rap: &RapConfig, timeout: Duration) -> Result<EmsClient, Error> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .pool_max_idle_per_host(0);
        if rap.ssl {
            if !rap.validate || !rap.deny_selfsigned {
                b = b.danger_accept_invalid_certs(true);
            }
            if let Some(path) = &rap.cert_file {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::Client(format!("scripts.rap_cert_file {}: {e}", path.display()))
                })?;
                let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                    Error::Client(format!("scripts.rap_cert_file {}: {e}", path.display()))
                })?;
                b = b.add_root_certificate(cert);
            }
        }
        let http = b.build().map_err(|e| Error::Client(e.to_string()))?;
        Ok(EmsClient {
            http,
            base: rap.base_url(),
            credentials: rap.credentials.clone(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), EmsError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::CONNECTION, "close")
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some((u, p)) = &self.credentials {
            req = req.basic_auth(u, Some(p.expose()));
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| EmsError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| EmsError::Unreachable(e.to_string()))?
        {
            if buf.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(EmsError::BadReply("reply too large".into()));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((status, buf))
    }

    async fn post_ok(&self, path: &str, body: &Value) -> Result<Vec<u8>, EmsError> {
        let (status, buf) = self.send(reqwest::Method::POST, path, Some(body)).await?;
        if status != 200 {
            let text = String::from_utf8_lossy(&buf);
            return Err(EmsError::Status {
                status,
                body: text.chars().take(200).collect(),
            });
        }
        Ok(buf)
    }

    /// `LocalEms/Services/AddEdgeThing`.
    pub async fn add_edge_thing(&self, body: &Value) -> Result<(), EmsError> {
        self.post_ok("/Thingworx/Things/LocalEms/Services/AddEdgeThing", body)
            .await
            .map(|_| ())
    }

    /// `LocalEms/Services/RemoveEdgeThing`.
    pub async fn remove_edge_thing(&self, name: &str) -> Result<(), EmsError> {
        self.post_ok(
            "/Thingworx/Things/LocalEms/Services/RemoveEdgeThing",
            &json!({"name": name}),
        )
        .await
        .map(|_| ())
    }

    /// `LocalEms/Services/HasEdgeThing`: is the thing still registered?
    pub async fn has_edge_thing(&self, name: &str) -> Result<bool, EmsError> {
        let buf = self
            .post_ok(
                "/Thingworx/Things/LocalEms/Services/HasEdgeThing",
                &json!({"name": name}),
            )
            .await?;
        let v: Value =
            serde_json::from_slice(&buf).map_err(|e| EmsError::BadReply(e.to_string()))?;
        let row = crate::json::first_row(&v).unwrap_or_default();
        row.get("result")
            .and_then(crate::basetype::to_boolean)
            .ok_or_else(|| EmsError::BadReply("HasEdgeThing reply without result".into()))
    }

    /// `<thing>/Services/GetPropertySubscriptions` → (edgeName, pushType, pushThreshold).
    pub async fn get_property_subscriptions(
        &self,
        thing: &str,
    ) -> Result<Vec<(String, PushType, f64)>, EmsError> {
        let path = format!(
            "/Thingworx/Things/{}/Services/GetPropertySubscriptions",
            encode_segment(thing)
        );
        let buf = self.post_ok(&path, &json!({})).await?;
        if buf.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        let v: Value =
            serde_json::from_slice(&buf).map_err(|e| EmsError::BadReply(e.to_string()))?;
        let rows = v
            .get("rows")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for r in rows {
            let Some(name) = r.get("edgeName").and_then(Value::as_str) else {
                continue;
            };
            let pt = r
                .get("pushType")
                .and_then(Value::as_str)
                .and_then(PushType::parse)
                .unwrap_or(PushType::Never);
            let thr = r
                .get("pushThreshold")
                .and_then(|t| t.as_f64().or_else(|| t.as_str()?.parse().ok()))
                .unwrap_or(0.0);
            out.push((name.to_string(), pt, thr));
        }
        Ok(out)
    }

    /// `<thing>/Services/UpdateSubscribedPropertyValues`.
    pub async fn push(&self, thing: &str, values: &[PushedValue]) -> Result<(), EmsError> {
        let path = format!(
            "/Thingworx/Things/{}/Services/UpdateSubscribedPropertyValues",
            encode_segment(thing)
        );
        self.post_ok(&path, &push_body(values)).await.map(|_| ())
    }

    /// `POST <thing>/Events/<event>` with the event's InfoTable.
    pub async fn fire_event(&self, thing: &str, event: &str, data: &Value) -> Result<(), EmsError> {
        let path = format!(
            "/Thingworx/Things/{}/Events/{}",
            encode_segment(thing),
            encode_segment(event)
        );
        self.post_ok(&path, data).await.map(|_| ())
    }

    /// `POST <thing>/Services/<service>` with `params`; returns the reply body.
    pub async fn invoke(
        &self,
        thing: &str,
        service: &str,
        params: &Value,
    ) -> Result<String, EmsError> {
        let path = format!(
            "/Thingworx/Things/{}/Services/{}",
            encode_segment(thing),
            encode_segment(service)
        );
        let body = self.post_ok(&path, params).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET LocalEms/Properties/isConnected`: is the EMS connected to its platform?
    pub async fn is_connected(&self) -> Result<bool, EmsError> {
        let (status, buf) = self
            .send(
                reqwest::Method::GET,
                "/Thingworx/Things/LocalEms/Properties/isConnected",
                None,
            )
            .await?;
        if status != 200 {
            return Err(EmsError::Status {
                status,
                body: String::new(),
            });
        }
        let v: Value =
            serde_json::from_slice(&buf).map_err(|e| EmsError::BadReply(e.to_string()))?;
        let row = crate::json::first_row(&v).unwrap_or_default();
        Ok(row
            .get("isConnected")
            .or_else(|| row.get("result"))
            .and_then(crate::basetype::to_boolean)
            .unwrap_or(false))
    }
}
