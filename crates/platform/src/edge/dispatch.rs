//! What the platform does with each message from an authenticated edge:
//! answers to its own requests, BIND/UNBIND (first-in-wins, identifiers,
//! ephemeral gateways, key patterns), property pushes, subscriptions,
//! property reads/writes, events and keep-alives. Every refusal is an
//! AlwaysOn error code with a reason; nothing here panics on bad input.

use std::sync::Arc;

use alwayson::{
    BaseType, BindBody, Body, Characteristic, Code, EntityType, FieldDef, Header, InfoTable,
    Message, Primitive, RequestBody,
};
use tracing::{Instrument as _, debug, info, warn};

use super::conn::EdgeConn;
use super::registry::BindError;
use super::socket::SocketEnd;
use crate::model::{Template, Thing, now_ms};
use crate::state::{Platform, Principal};
use crate::store::StoreError;

/// Handles one whole message; `Some(end)` closes the socket.
pub(crate) async fn handle(
    platform: &Platform,
    conn: &Arc<EdgeConn>,
    principal: &Principal,
    msg: Message,
) -> Option<SocketEnd> {
    let h = msg.header;
    let reply = match msg.body {
        Body::Response(body) => {
            if !conn.complete(&h, Ok(body)) {
                debug!(
                    request = h.request_id,
                    "answer to no pending request (late?)"
                );
            }
            return None;
        }
        Body::Auth(_) => {
            platform.shared.metrics.protocol_errors.inc();
            warn!("second AUTH on an authenticated socket");
            Message::error(&h, Code::BAD_REQUEST, "already authenticated")
        }
        Body::KeepAlive => Message::response(&h, Code::SUCCESS, None),
        Body::Bind(body) if h.code == Code::BIND => {
            let (code, reason, to_notify) = bind(platform, conn, principal, body).await;
            let reply = reply_with(&h, code, reason);
            let _ = conn.send_message(&reply).await;
            notify(platform, conn, to_notify);
            return None;
        }
        Body::Bind(body) => {
            unbind(platform, conn, principal, body).await;
            Message::response(&h, Code::SUCCESS, None)
        }
        Body::Request(req) => edge_request(platform, conn, &h, req).await,
    };
    if conn.send_message(&reply).await.is_err() {
        return Some(SocketEnd::policy("cannot queue a reply"));
    }
    None
}

fn reply_with(h: &Header, code: Code, reason: Option<String>) -> Message {
    match reason {
        Some(r) if !code.is_success() => Message::error(h, code, r),
        _ => Message::response(h, code, None),
    }
}

/// The thing an edge names: `*id` by identifier, else by name.
async fn resolve(platform: &Platform, name: &str) -> Result<Option<Thing>, StoreError> {
    match name.strip_prefix('*') {
        Some(identifier) => platform.shared.store.thing_by_identifier(identifier).await,
        None => platform.shared.store.thing(name).await,
    }
}

async fn bind(
    platform: &Platform,
    conn: &Arc<EdgeConn>,
    principal: &Principal,
    body: BindBody,
) -> (Code, Option<String>, Vec<String>) {
    let m = &platform.shared.metrics;
    let peer = conn.peer.to_string();
    let mut names = body.names;
    if let Some(gw) = &body.gateway {
        if !gw.name.is_empty() && !names.contains(&gw.name) {
            names.push(gw.name.clone());
        }
    }
    if names.is_empty() {
        return (
            Code::BAD_REQUEST,
            Some("BIND lists no things".into()),
            Vec::new(),
        );
    }
    let mut refused: Vec<(Code, String)> = Vec::new();
    let mut to_notify = Vec::new();
    for name in names {
        let thing = match resolve(platform, &name).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                let is_gateway =
                    body.gateway.as_ref().is_some_and(|g| g.name == name) && !name.starts_with('*');
                if !is_gateway {
                    refused.push((Code::NOT_FOUND, format!("thing `{name}` not found")));
                    continue;
                }
                if !principal.may_bind(&name) {
                    refused.push((Code::FORBIDDEN, format!("not allowed to bind `{name}`")));
                    continue;
                }
                match platform
                    .shared
                    .store
                    .create_ephemeral_thing(&name, Template::EmsGateway)
                    .await
                {
                    Ok(t) => {
                        info!(thing = %name, "created ephemeral gateway thing");
                        t
                    }
                    Err(StoreError::Conflict(_)) => {
                        match platform.shared.store.thing(&name).await {
                            Ok(Some(t)) => t,
                            _ => {
                                refused.push((
                                    Code::INTERNAL_SERVER_ERROR,
                                    format!("cannot create `{name}`"),
                                ));
                                continue;
                            }
                        }
                    }
                    Err(e) => {
                        warn!(%e, thing = %name, "cannot create ephemeral thing");
                        refused.push((
                            Code::INTERNAL_SERVER_ERROR,
                            format!("cannot create `{name}`"),
                        ));
                        continue;
                    }
                }
            }
            Err(e) => {
                warn!(%e, thing = %name, "store error during BIND");
                refused.push((
                    Code::INTERNAL_SERVER_ERROR,
                    format!("cannot look up `{name}`"),
                ));
                continue;
            }
        };
        if !principal.may_bind(&thing.name) && !principal.may_bind(&name) {
            m.bind_rejections.inc();
            warn!(thing = %thing.name, principal = %principal.label(), "bind refused: not allowed");
            platform
                .audit(
                    "bind.refused",
                    &principal.label(),
                    &thing.name,
                    "not allowed by app key",
                    &peer,
                )
                .await;
            refused.push((Code::FORBIDDEN, format!("not allowed to bind `{name}`")));
            continue;
        }
        match platform.shared.registry.bind(&thing.name, conn, &name) {
            Err(BindError::AlreadyBound) => {
                m.bind_rejections.inc();
                warn!(thing = %thing.name, "bind refused: already bound elsewhere (first-in-wins)");
                platform
                    .audit(
                        "bind.refused",
                        &principal.label(),
                        &thing.name,
                        "already bound",
                        &peer,
                    )
                    .await;
                refused.push((
                    Code::FORBIDDEN,
                    format!("`{name}` is already bound by another connection"),
                ));
                continue;
            }
            Ok(false) => {
                debug!(thing = %thing.name, "re-bind on the same socket");
            }
            Ok(true) => {
                m.binds.inc();
                if let Err(e) = platform
                    .shared
                    .store
                    .set_connected(&thing.name, true, now_ms())
                    .await
                {
                    warn!(%e, thing = %thing.name, "cannot mark connected");
                }
                platform
                    .audit("bind", &principal.label(), &thing.name, &name, &peer)
                    .await;
                info!(thing = %thing.name, bound_as = %name, "bound");
            }
        }
        to_notify.push(name);
    }
    m.bound_things
        .set(platform.shared.registry.bound_count() as i64);
    match refused.first() {
        None => (Code::SUCCESS, None, to_notify),
        Some((code, _)) => {
            let reason = refused
                .iter()
                .map(|(_, r)| r.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            (*code, Some(reason), to_notify)
        }
    }
}

/// Sends `NotifyPropertyUpdate` for each newly bound name, after the BIND reply.
fn notify(platform: &Platform, conn: &Arc<EdgeConn>, names: Vec<String>) {
    if names.is_empty() {
        return;
    }
    let conn = conn.clone();
    let timeout = platform.shared.config.alwayson.request_timeout;
    let shutdown = platform.shared.shutdown.clone();
    platform.shared.tracker.spawn(
        async move {
            for name in names {
                let body = RequestBody::new(
                    EntityType::THING,
                    name.clone(),
                    Characteristic::SERVICES,
                    "NotifyPropertyUpdate",
                );
                let r = tokio::select! {
                    r = conn.request(Code::POST, body, timeout) => r,
                    () = shutdown.cancelled() => return,
                };
                match r {
                    Ok(a) => debug!(thing = %name, code = %a.code, "NotifyPropertyUpdate answered"),
                    Err(e) => debug!(thing = %name, %e, "NotifyPropertyUpdate failed"),
                }
            }
        }
        .in_current_span(),
    );
}

async fn unbind(platform: &Platform, conn: &Arc<EdgeConn>, principal: &Principal, body: BindBody) {
    let mut names = body.names;
    if let Some(gw) = body.gateway {
        if !names.contains(&gw.name) {
            names.push(gw.name);
        }
    }
    let mut unbound = Vec::new();
    for name in names {
        let thing = match resolve(platform, &name).await {
            Ok(Some(t)) => t.name,
            _ => continue,
        };
        if platform.shared.registry.unbind(&thing, conn.id) {
            unbound.push(thing);
        }
    }
    on_unbound(
        platform,
        principal,
        &unbound,
        &conn.peer.to_string(),
        "UNBIND",
    )
    .await;
}

/// Marks things disconnected after an UNBIND or a closed socket; ephemeral
/// gateway things are deleted.
pub(crate) async fn on_unbound(
    platform: &Platform,
    principal: &Principal,
    things: &[String],
    peer: &str,
    why: &str,
) {
    for thing in things {
        match platform.shared.store.thing(thing).await {
            Ok(Some(t)) if t.ephemeral => {
                if let Err(e) = platform.shared.store.delete_thing(thing).await {
                    warn!(%e, %thing, "cannot delete ephemeral thing");
                }
            }
            _ => {
                if let Err(e) = platform
                    .shared
                    .store
                    .set_connected(thing, false, now_ms())
                    .await
                {
                    warn!(%e, %thing, "cannot mark disconnected");
                }
            }
        }
        platform
            .audit("unbind", &principal.label(), thing, why, peer)
            .await;
        info!(%thing, why, "unbound");
    }
    platform
        .shared
        .metrics
        .bound_things
        .set(platform.shared.registry.bound_count() as i64);
}

/// A request from the edge about one of its bound things.
async fn edge_request(
    platform: &Platform,
    conn: &Arc<EdgeConn>,
    h: &Header,
    req: RequestBody,
) -> Message {
    if req.entity_type != EntityType::THING {
        return Message::error(h, Code::NOT_FOUND, "this platform serves Things only");
    }
    let thing = match resolve(platform, &req.entity_name).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Message::error(
                h,
                Code::NOT_FOUND,
                format!("thing `{}` not found", req.entity_name),
            );
        }
        Err(e) => {
            warn!(%e, "store error");
            return Message::error(h, Code::INTERNAL_SERVER_ERROR, "store unavailable");
        }
    };
    if !platform.shared.registry.is_bound_on(&thing.name, conn.id) {
        return Message::error(
            h,
            Code::FORBIDDEN,
            format!("`{}` is not bound on this connection", req.entity_name),
        );
    }
    let target = req.target.as_str();
    match (h.code, req.characteristic) {
        (Code::POST, Characteristic::SERVICES) if target == "UpdateSubscribedPropertyValues" => {
            let values = match req.params.as_ref().map(push_values) {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Message::error(h, Code::BAD_REQUEST, e),
                None => {
                    return Message::error(
                        h,
                        Code::BAD_REQUEST,
                        "UpdateSubscribedPropertyValues needs `values`",
                    );
                }
            };
            match platform.store_pushed(&thing.name, &values).await {
                Ok(()) => {
                    debug!(thing = %thing.name, count = values.len(), "property values stored");
                    Message::response(h, Code::SUCCESS, None)
                }
                Err(e) => {
                    warn!(%e, "cannot store property values");
                    Message::error(
                        h,
                        Code::INTERNAL_SERVER_ERROR,
                        "cannot store property values",
                    )
                }
            }
        }
        (Code::POST, Characteristic::SERVICES) if target == "GetPropertySubscriptions" => {
            let mut table = InfoTable::new(vec![
                FieldDef::new("edgeName", BaseType::String),
                FieldDef::new("pushType", BaseType::String),
                FieldDef::new("pushThreshold", BaseType::Number),
            ]);
            if let Ok(values) = platform.shared.store.properties(&thing.name).await {
                for v in values {
                    table.rows.push(vec![
                        Primitive::String(v.name),
                        Primitive::String("VALUE".into()),
                        Primitive::Number(0.0),
                    ]);
                }
            }
            Message::response(h, Code::SUCCESS, Some(table))
        }
        // Legacy tunnels (spec/alwayson.md §8.1): the edge reports CANCEL or
        // DISCONNECT for one of its own tunnels; the broker acts on it.
        (Code::POST, Characteristic::SERVICES) if target == "TunnelCommandFromEdge" => {
            let text = |name: &str| match req.params.as_ref().and_then(|p| p.value(name)) {
                Some(Primitive::String(s)) | Some(Primitive::Text(_, s)) => Some(s.clone()),
                _ => None,
            };
            let command = match text("command").as_deref().map(str::to_ascii_uppercase) {
                Some(c) if c == "CANCEL" => broker::EdgeCommand::Cancel,
                Some(c) if c == "DISCONNECT" => broker::EdgeCommand::Disconnect,
                _ => {
                    return Message::error(
                        h,
                        Code::BAD_REQUEST,
                        "TunnelCommandFromEdge needs command CANCEL or DISCONNECT",
                    );
                }
            };
            let (Some(tid), Some(b)) = (text("tid"), platform.shared.broker.get()) else {
                return Message::error(h, Code::BAD_REQUEST, "TunnelCommandFromEdge needs tid");
            };
            // Only the thing the tunnel was started on may command it.
            let admin = broker::Principal {
                user: String::new(),
                admin: true,
                cli: false,
            };
            if b.get(&admin, &tid).ok().map(|v| v.thing).as_deref() != Some(thing.name.as_str()) {
                return Message::error(
                    h,
                    Code::NOT_FOUND,
                    format!("no tunnel {tid} on this thing"),
                );
            }
            match b.edge_command(&tid, command).await {
                Ok(()) => {
                    info!(thing = %thing.name, %tid, ?command, "TunnelCommandFromEdge");
                    Message::response(h, Code::SUCCESS, None)
                }
                Err(e) => Message::error(h, Code::NOT_FOUND, e.to_string()),
            }
        }
        (Code::POST, Characteristic::EVENTS) => {
            info!(thing = %thing.name, event = target, "event from edge");
            Message::response(h, Code::SUCCESS, None)
        }
        (Code::GET, Characteristic::PROPERTIES) => {
            let only = (!target.is_empty() && target != "*").then_some(target);
            match platform.stored_table(&thing.name, only).await {
                Ok(Some(t)) => Message::response(h, Code::SUCCESS, Some(t)),
                Ok(None) => {
                    Message::error(h, Code::NOT_FOUND, format!("property `{target}` not found"))
                }
                Err(e) => {
                    warn!(%e, "store error");
                    Message::error(h, Code::INTERNAL_SERVER_ERROR, "store unavailable")
                }
            }
        }
        (Code::PUT, Characteristic::PROPERTIES) => {
            let Some(params) = req.params.as_ref() else {
                return Message::error(h, Code::BAD_REQUEST, "PUT needs a value");
            };
            let values = written_values(platform, &thing.name, target, params).await;
            if values.is_empty() {
                return Message::error(h, Code::BAD_REQUEST, format!("no value for `{target}`"));
            }
            match platform.store_pushed(&thing.name, &values).await {
                Ok(()) => Message::response(h, Code::SUCCESS, None),
                Err(e) => {
                    warn!(%e, "cannot store property values");
                    Message::error(
                        h,
                        Code::INTERNAL_SERVER_ERROR,
                        "cannot store property values",
                    )
                }
            }
        }
        (code, ch) => Message::error(
            h,
            Code::NOT_FOUND,
            format!(
                "{} {}/{} is not available on this platform",
                code.name().unwrap_or("?"),
                ch.path_segment().unwrap_or("?"),
                target
            ),
        ),
    }
}

/// Property push values from the typed form or the `_content_` JSON form.
fn push_values(params: &InfoTable) -> Result<Vec<alwayson::PropertyValue>, String> {
    if let Some(json) = params.content_json() {
        let values = json.get("values").cloned().unwrap_or(json);
        let inner = InfoTable::from_json(&values, &alwayson::Limits::default())
            .map_err(|e| e.to_string())?;
        let mut outer = InfoTable::new(vec![FieldDef::new("values", BaseType::InfoTable)]);
        outer.rows.push(vec![Primitive::InfoTable(Box::new(inner))]);
        return outer.property_values().map_err(|e| e.to_string());
    }
    params.property_values().map_err(|e| e.to_string())
}

/// Values written by an edge PUT: typed fields, or `_content_` decoded by
/// the stored property type.
async fn written_values(
    platform: &Platform,
    thing: &str,
    target: &str,
    params: &InfoTable,
) -> Vec<alwayson::PropertyValue> {
    let now = now_ms();
    let mk = |name: &str, value: Primitive| alwayson::PropertyValue {
        name: name.to_owned(),
        value,
        time: now,
        quality: "GOOD".into(),
    };
    if let Some(json) = params.content_json() {
        let stored = platform
            .shared
            .store
            .properties(thing)
            .await
            .unwrap_or_default();
        let prefer = |n: &str| {
            stored
                .iter()
                .find(|v| v.name == n)
                .and_then(|v| BaseType::from_name(&v.base_type).ok())
        };
        let limits = &platform.shared.limits;
        return match (&json, target) {
            (serde_json::Value::Object(map), "*") => map
                .iter()
                .map(|(k, v)| mk(k, crate::convert::infer_primitive(v, prefer(k), limits)))
                .collect(),
            (serde_json::Value::Object(map), t) if map.contains_key(t) => map
                .get(t)
                .map(|v| vec![mk(t, crate::convert::infer_primitive(v, prefer(t), limits))])
                .unwrap_or_default(),
            (v, t) => vec![mk(t, crate::convert::infer_primitive(v, prefer(t), limits))],
        };
    }
    params
        .shape
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| target == "*" || f.name == target)
        .filter_map(|(i, f)| {
            params
                .rows
                .first()
                .and_then(|r| r.get(i))
                .map(|v| mk(&f.name, v.clone()))
        })
        .collect()
}
