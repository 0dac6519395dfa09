//! The things this EMS answers for: the gateway (the EMS itself), `auto_bind`
//! entries and things registered at run time through `LocalEms/AddEdgeThing`.
//!
//! This is the desired state. The uplink compares it with what is bound on the
//! current session and sends BIND/UNBIND for the difference whenever
//! [`Things::changed`] fires. A short, non-async lock guards the map; it is
//! never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::config::{Config, Endpoint};

/// Most things one EMS answers for (registrations beyond are refused).
pub const MAX_THINGS: usize = 10_000;

/// Where a thing comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `gateway: true` auto_bind entry: the EMS itself.
    Gateway,
    /// Any other `auto_bind` entry.
    AutoBind,
    /// Registered by a script resource (`AddEdgeThing`).
    Registered,
}

/// One thing and how to reach it.
#[derive(Debug, Clone)]
pub struct Thing {
    /// Where it comes from.
    pub origin: Origin,
    /// Where platform requests for it are forwarded (None for the gateway).
    pub endpoint: Option<Endpoint>,
    /// Last keep-alive result; a thing that is not alive is not bound.
    pub alive: bool,
    /// Bumped on each (re-)registration, so an older probe task knows to stop.
    pub generation: u64,
}

/// Shared handle to the thing table.
#[derive(Debug, Clone)]
pub struct Things {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    gateway: Option<String>,
    things: BTreeMap<String, Thing>,
    generation: u64,
}

impl Things {
    /// The table at start-up: the gateway and every auto_bind entry.
    pub fn from_config(config: &Config) -> Things {
        let mut state = State::default();
        for b in &config.auto_bind {
            let origin = if b.gateway {
                state.gateway = Some(b.name.clone());
                Origin::Gateway
            } else {
                Origin::AutoBind
            };
            state.things.insert(
                b.name.clone(),
                Thing {
                    origin,
                    endpoint: b.endpoint.clone(),
                    alive: true,
                    generation: 0,
                },
            );
        }
        Things {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                changed: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data (single inserts/removes).
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gateway name, if configured.
    pub fn gateway(&self) -> Option<String> {
        self.lock().gateway.clone()
    }

    /// One thing by name.
    pub fn get(&self, name: &str) -> Option<Thing> {
        self.lock().things.get(name).cloned()
    }

    /// Names that should be bound now, the gateway first, then by name.
    pub fn bound_names(&self) -> Vec<String> {
        let st = self.lock();
        let mut out: Vec<String> = st.gateway.iter().cloned().collect();
        out.extend(
            st.things
                .iter()
                .filter(|(n, t)| t.alive && Some(*n) != st.gateway.as_ref())
                .map(|(n, _)| n.clone()),
        );
        out
    }

    /// All known names (bound or not), for `GetEdgeThings`.
    pub fn all_names(&self) -> Vec<String> {
        self.lock().things.keys().cloned().collect()
    }

    /// Registers (or re-registers) a thing answered by `endpoint`; returns its generation.
    /// Re-registering an auto_bind thing updates its endpoint but keeps it auto-bound.
    /// The gateway name cannot be registered.
    pub fn register(&self, name: &str, endpoint: Endpoint) -> Result<u64, String> {
        let mut st = self.lock();
        if st.gateway.as_deref() == Some(name) {
            return Err(format!("{name} is the gateway of this EMS"));
        }
        if !st.things.contains_key(name) && st.things.len() >= MAX_THINGS {
            return Err(format!("this EMS already answers for {MAX_THINGS} things"));
        }
        st.generation += 1;
        let generation = st.generation;
        let origin = match st.things.get(name) {
            Some(t) if t.origin == Origin::AutoBind => Origin::AutoBind,
            _ => Origin::Registered,
        };
        st.things.insert(
            name.to_owned(),
            Thing {
                origin,
                endpoint: Some(endpoint),
                alive: true,
                generation,
            },
        );
        drop(st);
        self.inner.changed.notify_one();
        Ok(generation)
    }

    /// Removes a thing (any origin but the gateway). Returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        let mut st = self.lock();
        if st.gateway.as_deref() == Some(name) {
            return false;
        }
        let existed = st.things.remove(name).is_some();
        drop(st);
        if existed {
            self.inner.changed.notify_one();
        }
        existed
    }

    /// Records a keep-alive result for `name` at `generation`. Returns false when the
    /// registration is gone or newer (the probe should stop).
    pub fn set_alive(&self, name: &str, generation: u64, alive: bool) -> bool {
        let mut st = self.lock();
        let Some(t) = st.things.get_mut(name) else {
            return false;
        };
        if t.generation != generation {
            return false;
        }
        let changed = t.alive != alive;
        t.alive = alive;
        drop(st);
        if changed {
            self.inner.changed.notify_one();
        }
        true
    }

    /// Completes when the bound set may have changed since the last call.
    /// Cancel-safe: a change that happens while nobody waits is kept (one permit).
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }
}
