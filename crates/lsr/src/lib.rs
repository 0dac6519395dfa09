//! Lua Script Resource: things written in Lua, registered with an EMS.
//!
//! A ThingWorx LSR `config.lua` and its templates run unchanged (spec/alwayson.md §6.2–§7,
//! §12): each `scripts.<Thing> = { template = ... }` becomes a thing whose properties,
//! services and tasks are written in Lua, registered with the EMS by `AddEdgeThing`, kept
//! alive with `HasEdgeThing` and pushing property changes with
//! `UpdateSubscribedPropertyValues`.
//!
//! Modules:
//! - `config`: `config.lua` read by Lua, validated into [`Config`] (exit 64 on error).
//! - `sandbox`: the Lua state: whitelisted API, instruction/time budget, memory limit.
//! - `thing`: handle on a thing: its job queue and shared model.
//! - `template`: loading a template, reading properties and service definitions.
//! - `worker`: a thing's Lua thread: service calls, writes, tasks, model sync.
//! - `model`: property values and definitions, subscriptions, the push decision, metadata.
//! - `driver`: a thing's main loop: push, keep-alive, (re-)registration, tasks.
//! - `ems`: the HTTP client towards the EMS local REST.
//! - `http`: the axum routes answering the EMS; `serve`: the accept loop with deadlines.
//! - `tls`: HTTPS certificates for the script resource.
//! - `json`, `basetype`: JSON shapes as captured, base type rules.

mod basetype;
mod config;
mod driver;
mod ems;
mod error;
mod http;
mod json;
mod model;
mod sandbox;
mod serve;
mod template;
mod thing;
mod tls;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, PushType, RapConfig, ResourceConfig, SandboxLimits, Secret, ThingConfig};
pub use ems::EmsError;
pub use error::{ConfigError, Error};

/// Runs the LSR on an already bound `listener` until `shutdown` is cancelled.
///
/// Loads every thing's template first: a template error returns
/// [`Error::Config`] before anything is served.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let port = listener.local_addr()?.port();
    for s in &config.skipped_scripts {
        tracing::warn!(
            script = %s,
            "scripts.{s} has no template: plain integration scripts are not run by tether-lsr"
        );
    }
    let max_timeout = config
        .things
        .iter()
        .map(|t| t.request_timeout)
        .max()
        .unwrap_or(config::DEFAULT_REQUEST_TIMEOUT);
    let ems = Arc::new(ems::EmsClient::new(
        &config.rap,
        Duration::from_millis(max_timeout),
    )?);
    let handle = tokio::runtime::Handle::current();
    let mut things = Vec::new();
    for tc in &config.things {
        let sink = event_sink(ems.clone(), handle.clone(), tc);
        things.push(thing::Thing::start(&config, tc.clone(), Some(sink)).await?);
    }
    let endpoint = driver::Endpoint {
        host: config.resource.host.clone(),
        port,
        proto: if config.resource.tls.is_some() {
            "https"
        } else {
            "http"
        },
        user: config.resource.credentials.as_ref().map(|c| c.0.clone()),
        password: config
            .resource
            .credentials
            .as_ref()
            .map(|c| c.1.expose().to_string()),
    };

    let mut by_name = HashMap::new();
    for t in &things {
        by_name.insert(t.config.name.clone(), t.clone());
        by_name.insert(t.config.registered_name(), t.clone());
    }
    let state = http::AppState {
        things: Arc::new(by_name),
        names: Arc::new(things.iter().map(|t| t.config.name.clone()).collect()),
        credentials: config.resource.credentials.clone(),
        permits: Arc::new(tokio::sync::Semaphore::new(http::MAX_CONCURRENT_REQUESTS)),
    };

    let tracker = TaskTracker::new();
    for t in &things {
        let span = tracing::info_span!("thing", name = %t.config.name);
        tracker.spawn(tracing::Instrument::instrument(
            driver::drive(
                t.clone(),
                ems.clone(),
                endpoint.clone(),
                shutdown.child_token(),
            ),
            span,
        ));
    }
    tracker.close();
    tracing::info!(%port, things = things.len(), "tether-lsr listening");
    let acceptor = config
        .resource
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    let served = serve::serve(listener, http::router(state), acceptor, shutdown.clone()).await;
    shutdown.cancel();
    tracker.wait().await;
    served.map_err(Error::Server)
}

/// Events and service calls made by a thing's script: sent to the EMS from the thing's
/// own (non-runtime) thread, waiting at most `requestTimeout`.
fn event_sink(
    ems: Arc<ems::EmsClient>,
    handle: tokio::runtime::Handle,
    tc: &ThingConfig,
) -> sandbox::EventSink {
    let thing = tc.registered_name();
    let timeout = Duration::from_millis(tc.request_timeout);
    Arc::new(move |call: sandbox::RapCall| {
        let fut = async {
            match &call {
                sandbox::RapCall::Event(name, data) => {
                    tokio::time::timeout(timeout, ems.fire_event(&thing, name, data))
                        .await
                        .map(|r| r.map(|()| String::new()))
                }
                sandbox::RapCall::Service(name, params) => {
                    tokio::time::timeout(timeout, ems.invoke(&thing, name, params)).await
                }
            }
        };
        match handle.block_on(fut) {
            Ok(Ok(body)) => (200, body),
            Ok(Err(ems::EmsError::Status { status, body })) => (status, body),
            Ok(Err(e)) => (503, e.to_string()),
            Err(_) => (504, "EMS did not answer in time".to_string()),
        }
    })
}
