//! Gateway forwarding (spec §6.3, §12.6, §12.9, §12.10, §12.13): platform requests
//! for a thing answered by a script resource go over HTTP to
//! `<protocol>://<host>:<port><path>/<EntityType>/<thing>/<Characteristic>/<name>`,
//! and the answer comes back as AlwaysOn:
//!
//! - 2xx with an InfoTable JSON body → that table; other JSON → `{result: JSON}`;
//!   empty → no content.
//! - other statuses → code `class<<5 | detail` (404 → 0x84) with `{error: STRING body}`.
//! - connection refused, unreachable or no answer within `timeout` → 0xA4 at once.
//!
//! Keep-alive: a registered thing with a `keepalive` rate is probed with a bare TCP
//! connect (no HTTP, as the real EMS does); a failed probe unbinds the thing, the
//! next good one binds it again.

use std::time::Duration;

use alwayson::{Code, InfoTable, Limits, Primitive, RequestBody};
use reqwest::Method;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Endpoint;
use crate::jsonform;
use crate::things::Things;

/// Longest a keep-alive TCP connect may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP clients for script resources: one validating, one for loopback HTTPS
/// resources with self-signed certificates (the LSR's default).
#[derive(Debug, Clone)]
pub struct HttpClients {
    strict: reqwest::Client,
    loopback: reqwest::Client,
}

impl HttpClients {
    /// Builds both clients.
    pub fn new() -> Result<HttpClients, reqwest::Error> {
        Ok(HttpClients {
            strict: reqwest::Client::builder().build()?,
            loopback: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()?,
        })
    }

    fn for_endpoint(&self, ep: &Endpoint) -> &reqwest::Client {
        let loopback = ep.host == "localhost"
            || ep
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if ep.https && loopback {
            &self.loopback
        } else {
            &self.strict
        }
    }
}

/// The resource URL of a request.
pub fn resource_url(ep: &Endpoint, body: &RequestBody) -> Result<reqwest::Url, String> {
    let scheme = if ep.https { "https" } else { "http" };
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    };
    let mut url = reqwest::Url::parse(&format!("{scheme}://{host}:{}/", ep.port))
        .map_err(|e| e.to_string())?;
    let entity = body
        .entity_type
        .path_segment()
        .ok_or_else(|| format!("entity type 0x{:02x}", body.entity_type.0))?;
    let characteristic = body
        .characteristic
        .path_segment()
        .ok_or_else(|| format!("characteristic {}", body.characteristic.0))?;
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|()| "bad base URL".to_owned())?;
        segs.clear();
        for p in ep.path.split('/').filter(|p| !p.is_empty()) {
            segs.push(p);
        }
        segs.push(entity);
        segs.push(&body.entity_name);
        segs.push(characteristic);
        segs.push(&body.target);
    }
    Ok(url)
}

/// Forwards one platform request to `ep` and converts the answer.
pub async fn forward(
    http: &HttpClients,
    ep: &Endpoint,
    code: Code,
    body: &RequestBody,
    limits: &Limits,
) -> (Code, Option<InfoTable>) {
    let url = match resource_url(ep, body) {
        Ok(u) => u,
        Err(e) => return (Code::NOT_FOUND, Some(jsonform::error_table(&e))),
    };
    let method = match code {
        Code::GET => Method::GET,
        Code::PUT => Method::PUT,
        Code::DELETE => Method::DELETE,
        _ => Method::POST,
    };
    let mut req = http
        .for_endpoint(ep)
        .request(method, url.clone())
        .timeout(ep.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some((user, pw)) = &ep.basic_auth {
        req = req.basic_auth(user, Some(pw.expose()));
    }
    req = match &body.params {
        Some(p) => req.body(jsonform::params_for_resource(p, limits).to_string()),
        None => req.body(Vec::new()),
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%url, error = %e, "script resource unreachable");
            return (Code::GATEWAY_TIMEOUT, None);
        }
    };
    let status = resp.status().as_u16();
    let bytes = match read_capped(resp, limits.max_message_size).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(%url, error = %e, "script resource answer unreadable");
            return (Code::GATEWAY_TIMEOUT, None);
        }
    };
    convert_answer(status, &bytes, limits)
}

async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("answer larger than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// HTTP status and body of a script resource → AlwaysOn code and content.
pub fn convert_answer(status: u16, body: &[u8], limits: &Limits) -> (Code, Option<InfoTable>) {
    let code = Code::from_http_status(status);
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if !code.is_success() {
        if trimmed.is_empty() {
            return (code, None);
        }
        return (code, Some(jsonform::error_table(trimmed)));
    }
    if trimmed.is_empty() {
        return (code, None);
    }
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(v) if jsonform::is_infotable(&v) => match InfoTable::from_json(&v, limits) {
            Ok(t) => (code, Some(t)),
            Err(e) => {
                tracing::warn!(error = %e, "script resource sent a bad InfoTable");
                (
                    Code::BAD_GATEWAY,
                    Some(jsonform::error_table(&e.to_string())),
                )
            }
        },
        Ok(v) => (code, Some(jsonform::json_result(&v))),
        Err(_) => (
            code,
            Some(jsonform::one(
                "result",
                Primitive::String(trimmed.to_owned()),
            )),
        ),
    }
}

/// Starts the keep-alive probe of a registered thing; it stops on shutdown, on
/// removal and when the thing is registered again (newer generation).
pub fn spawn_keepalive(
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    things: Things,
    name: String,
    generation: u64,
    ep: &Endpoint,
    every: Duration,
) {
    let host = ep.host.clone();
    let port = ep.port;
    let span = tracing::info_span!("keepalive", thing = %name);
    tracker.spawn(tracing::Instrument::instrument(
        async move {
            let mut was_alive = true;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let probe = tokio::net::TcpStream::connect((host.as_str(), port));
                let alive = matches!(
                    tokio::time::timeout(every.min(PROBE_TIMEOUT), probe).await,
                    Ok(Ok(_))
                );
                if alive != was_alive {
                    if alive {
                        tracing::info!("script resource answers again: binding");
                    } else {
                        tracing::warn!("script resource stopped answering: unbinding");
                    }
                    was_alive = alive;
                }
                if !things.set_alive(&name, generation, alive) {
                    return;
                }
            }
        },
        span,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use alwayson::{Characteristic, EntityType};

    fn ep(path: &str) -> Endpoint {
        Endpoint {
            https: false,
            host: "127.0.0.1".into(),
            port: 8001,
            path: path.into(),
            timeout: Duration::from_secs(1),
            basic_auth: None,
        }
    }

    #[test]
    fn urls_follow_the_lsr_layout() {
        let b = RequestBody::new(
            EntityType::THING,
            "LsrThing",
            Characteristic::PROPERTIES,
            "Temperature",
        );
        assert_eq!(
            resource_url(&ep("/scripts/Thingworx"), &b)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8001/scripts/Thingworx/Things/LsrThing/Properties/Temperature"
        );
        let all = RequestBody::new(
            EntityType::THING,
            "LsrThing",
            Characteristic::PROPERTIES,
            "",
        );
        assert_eq!(
            resource_url(&ep("/scripts/Thingworx/"), &all)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8001/scripts/Thingworx/Things/LsrThing/Properties/"
        );
        let svc = RequestBody::new(
            EntityType::THING,
            "My Thing",
            Characteristic::SERVICES,
            "Add",
        );
        assert_eq!(
            resource_url(&ep("/"), &svc).unwrap().as_str(),
            "http://127.0.0.1:8001/Things/My%20Thing/Services/Add"
        );
    }

    #[test]
    fn answers_map_like_the_real_ems() {
        let l = Limits::default();
        let (c, t) = convert_answer(404, b"Property 'NoSuchProp' not found", &l);
        assert_eq!(c, Code::NOT_FOUND);
        assert_eq!(
            jsonform::error_text(&t.unwrap()).unwrap(),
            "Property 'NoSuchProp' not found"
        );
        let (c, t) = convert_answer(200, br#"{"rows":[{"result":5.5}],"dataShape":{"fieldDefinitions":{"result":{"aspects":{"persist":false},"baseType":"NUMBER","name":"result","description":""}}}}"#, &l);
        assert_eq!(c, Code::SUCCESS);
        assert_eq!(
            t.unwrap().value("result").and_then(Primitive::as_f64),
            Some(5.5)
        );
        let (c, t) = convert_answer(200, br#"{"name":"LsrThing","isSystemObject":false}"#, &l);
        assert_eq!(c, Code::SUCCESS);
        let t = t.unwrap();
        assert_eq!(t.shape.fields[0].name, "result");
        assert_eq!(t.shape.fields[0].base_type, alwayson::BaseType::Json);
        assert_eq!(convert_answer(200, b"", &l), (Code::SUCCESS, None));
        assert_eq!(convert_answer(503, b"", &l).0, Code::SERVICE_UNAVAILABLE);
    }
}
