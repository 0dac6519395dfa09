//! The main loop of one thing, as in the ThingWorx LSR's `template.lua start()`: every
//! `scanRateResolution` it pushes due properties (once registered and subscribed), checks
//! the registration with `HasEdgeThing` every `keepAliveRate`, (re-)registers with
//! `AddEdgeThing` when needed and runs the tasks every `taskRate`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::ems::EmsClient;
use crate::json::now_ms;
use crate::thing::Thing;

/// Time allowed for `RemoveEdgeThing` at shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the EMS should reach this LSR.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    /// `http` or `https`.
    pub proto: &'static str,
    pub user: Option<String>,
    pub password: Option<String>,
}

fn add_edge_thing_body(thing: &Thing, ep: &Endpoint) -> Value {
    // Key order as captured (TCP stream 1); port is a string as in the ThingWorx LSR.
    let mut b = Map::new();
    b.insert(
        "keepalive".into(),
        Value::from(thing.config.keep_alive_rate),
    );
    b.insert("port".into(), Value::from(ep.port.to_string()));
    b.insert("timeout".into(), Value::from(thing.config.request_timeout));
    let host = if ep.host == "0.0.0.0" || ep.host == "::" {
        "127.0.0.1".to_string()
    } else {
        ep.host.clone()
    };
    b.insert("host".into(), Value::from(host));
    b.insert("proto".into(), Value::from(ep.proto));
    b.insert("name".into(), Value::from(thing.config.registered_name()));
    b.insert("path".into(), Value::from("/scripts/Thingworx"));
    if let Some(u) = &ep.user {
        b.insert("user".into(), Value::from(u.as_str()));
    }
    if let Some(p) = &ep.password {
        b.insert("password".into(), Value::from(p.as_str()));
    }
    Value::Object(b)
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / 4)
}

/// Runs until `shutdown`; deregisters on the way out.
pub(crate) async fn drive(
    thing: Arc<Thing>,
    ems: Arc<EmsClient>,
    ep: Endpoint,
    shutdown: CancellationToken,
) {
    let cfg = thing.config.clone();
    let name = cfg.name.clone();
    let reg_name = cfg.registered_name();
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.scan_rate_resolution));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registered = false;
    let mut ems_available = true;
    let mut next_register: i64 = 0;
    let mut next_keepalive: i64 = 0;
    let mut next_task: i64 = 0;
    let mut next_subscriptions: i64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = thing.wake.notified() => {}
        }
        let now = now_ms();

        // 1. property scan and push (only once registered and, with registration, subscribed)
        let may_push = registered && (!cfg.register || thing.model().subscriptions_acquired);
        if may_push {
            let values = thing.model().collect_pushes(now);
            for batch in values.chunks(cfg.max_concurrent_property_updates) {
                match ems.push(&reg_name, batch).await {
                    Ok(()) => tracing::debug!(thing = %name, count = batch.len(), "pushed"),
                    Err(e) => {
                        tracing::warn!(thing = %name, error = %e, "property push failed");
                        match ems.is_connected().await {
                            Ok(c) => {
                                tracing::info!(thing = %name, connected = c, "EMS isConnected")
                            }
                            Err(e) => tracing::warn!(thing = %name, error = %e, "EMS unavailable"),
                        }
                        break;
                    }
                }
            }
        }

        // 2. keep-alive: does the EMS still know us?
        if cfg.register && registered && now >= next_keepalive {
            next_keepalive = now + ms(cfg.keep_alive_rate);
            match ems.has_edge_thing(&reg_name).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(thing = %name, "not registered with the EMS any more; re-registering");
                    registered = false;
                    next_register = 0;
                }
                Err(e) => {
                    tracing::warn!(thing = %name, error = %e, "EMS not available; re-registering");
                    registered = false;
                    ems_available = false;
                    next_register = 0;
                }
            }
        }

        // 3. registration
        let now = now_ms();
        if now >= next_register {
            if !cfg.register {
                registered = true;
                next_register = i64::MAX;
            } else {
                match ems.add_edge_thing(&add_edge_thing_body(&thing, &ep)).await {
                    Ok(()) => {
                        next_register = now + ms(cfg.register_rate);
                        next_keepalive = 0;
                        if !registered {
                            tracing::info!(thing = %name, "registered with the EMS");
                            let acquired = thing.model().subscriptions_acquired;
                            if !acquired
                                || (cfg.get_property_subscriptions_on_reconnect && !ems_available)
                            {
                                refresh_subscriptions(&thing, &ems, &reg_name).await;
                            }
                            thing.model().force_value_pushes();
                        }
                        registered = true;
                        ems_available = true;
                    }
                    Err(e) => {
                        if registered || next_register == 0 {
                            tracing::warn!(thing = %name, error = %e, "cannot register with the EMS");
                        }
                        if matches!(e, crate::ems::EmsError::Unreachable(_)) {
                            ems_available = false;
                        }
                        registered = false;
                        next_register = now + ms(cfg.register_retry_rate);
                    }
                }
            }
        }

        // 4. subscriptions asked for by NotifyPropertyUpdate
        let stale = !thing.model().up_to_date;
        if cfg.register && registered && stale && now_ms() >= next_subscriptions {
            refresh_subscriptions(&thing, &ems, &reg_name).await;
            if !thing.model().up_to_date {
                next_subscriptions = now_ms() + ms(cfg.task_rate);
            }
        }

        // 5. tasks
        let now = now_ms();
        if now >= next_task {
            next_task = now + ms(cfg.task_rate);
            thing.run_tasks().await;
        }
    }
    if cfg.register && registered {
        match tokio::time::timeout(DEREGISTER_TIMEOUT, ems.remove_edge_thing(&reg_name)).await {
            Ok(Ok(())) => tracing::info!(thing = %name, "deregistered from the EMS"),
            Ok(Err(e)) => tracing::warn!(thing = %name, error = %e, "RemoveEdgeThing failed"),
            Err(_) => tracing::warn!(thing = %name, "RemoveEdgeThing timed out"),
        }
    }
    tracing::info!(thing = %name, "stopped");
}

async fn refresh_subscriptions(thing: &Thing, ems: &EmsClient, reg_name: &str) {
    match ems.get_property_subscriptions(reg_name).await {
        Ok(rows) => {
            let n = thing.model().apply_subscriptions(&rows, now_ms());
            tracing::info!(thing = %thing.config.name, properties = n, "property subscriptions updated");
        }
        Err(e) => {
            thing.model().up_to_date = false;
            tracing::warn!(thing = %thing.config.name, error = %e, "GetPropertySubscriptions failed");
        }
    }
}
