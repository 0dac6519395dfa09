//! Platform → EMS requests, routed to the right handler:
//!
//! - the gateway thing (the EMS itself): its own services (see `localems`),
//!   `GetMetadata`, property `isConnected`, and `NotifyPropertyUpdate`, answered
//!   by calling `GetPropertySubscriptions` back on the platform;
//! - a thing answered by a script resource: forwarded over HTTP (see `gateway`),
//!   `0xA4` at once when its keep-alive failed;
//! - tunnel services on any thing: the tunnel module (`tunnel`);
//! - anything else: `0x84`.

use alwayson::{Characteristic, Code, EntityType, Header, InfoTable, Limits, Message, RequestBody};

use crate::gateway::{self, HttpClients};
use crate::jsonform::{error_table, params_object};
use crate::localems::LocalEms;
use crate::things::Origin;

/// Tunnel services (spec §8.1), handled by the EMS for every bound thing.
const TUNNEL_SERVICES: &[&str] = &["StartTunnel", "TunnelCommandToEdge", "CompleteTunnel"];

/// Routes platform requests.
#[derive(Debug)]
pub struct Dispatcher {
    pub(crate) local: LocalEms,
    pub(crate) http: HttpClients,
    pub(crate) limits: Limits,
    pub(crate) tunnels: crate::tunnel::Tunnels,
}

impl Dispatcher {
    /// The response message to one platform request.
    pub async fn handle(&self, header: Header, body: RequestBody) -> Message {
        let (code, content) = self.answer(header.code, &body).await;
        Message::response(&header, code, content)
    }

    async fn answer(&self, code: Code, body: &RequestBody) -> (Code, Option<InfoTable>) {
        if body.entity_type != EntityType::THING {
            return (Code::NOT_FOUND, None);
        }
        let Some(thing) = self.local.things.get(&body.entity_name) else {
            return (Code::NOT_FOUND, None);
        };
        if body.characteristic == Characteristic::SERVICES
            && TUNNEL_SERVICES.contains(&body.target.as_str())
        {
            return self
                .tunnels
                .handle(&body.entity_name, &body.target, body.params.as_ref())
                .await;
        }
        if thing.origin == Origin::Gateway {
            return self.gateway_thing(code, body);
        }
        if !thing.alive {
            return (Code::GATEWAY_TIMEOUT, None);
        }
        match &thing.endpoint {
            Some(ep) => gateway::forward(&self.http, ep, code, body, &self.limits).await,
            None => (Code::NOT_FOUND, None),
        }
    }

    fn gateway_thing(&self, code: Code, body: &RequestBody) -> (Code, Option<InfoTable>) {
        match (code, body.characteristic) {
            (Code::GET, Characteristic::PROPERTIES) => self.local.property(&body.target),
            (Code::POST, Characteristic::SERVICES) => match body.target.as_str() {
                "GetMetadata" => self.local.metadata(&body.entity_name),
                "NotifyPropertyUpdate" => {
                    self.subscriptions(body.entity_name.clone());
                    (Code::SUCCESS, None)
                }
                name => self
                    .local
                    .service(name, &params_object(body.params.as_ref())),
            },
            (Code::PUT, Characteristic::PROPERTIES) => (
                Code::FORBIDDEN,
                Some(error_table(&format!(
                    "Property '{}' is read-only",
                    body.target
                ))),
            ),
            _ => (Code::METHOD_NOT_ALLOWED, None),
        }
    }

    /// Calls `GetPropertySubscriptions` for `thing` on the platform, as the real EMS
    /// does after `NotifyPropertyUpdate` (the EMS's own thing has no pushed properties,
    /// so the answer is only logged).
    fn subscriptions(&self, thing: String) {
        let uplink = self.local.uplink.clone();
        self.local.tracker.spawn(async move {
            let body = RequestBody::new(
                EntityType::THING,
                thing.clone(),
                Characteristic::SERVICES,
                "GetPropertySubscriptions",
            )
            .with_params(InfoTable::content(&serde_json::json!({})));
            match uplink.request(Code::POST, body, false).await {
                Ok(out) => tracing::debug!(thing, ?out, "GetPropertySubscriptions"),
                Err(e) => tracing::warn!(thing, error = %e, "GetPropertySubscriptions failed"),
            }
        });
    }
}
