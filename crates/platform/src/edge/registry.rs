//! The binding registry: which edge socket holds which thing. A short
//! `std::sync::Mutex` around two maps; every method locks, edits and
//! returns without awaiting, so the lock is never held across `.await`.
//! Binding is first-in-wins.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::conn::EdgeConn;

/// A thing's binding: the socket and the name the edge bound it by (the
/// thing name or `*identifier`), which requests to the edge must use.
#[derive(Clone, Debug)]
pub struct Binding {
    pub conn: Arc<EdgeConn>,
    pub bound_as: String,
}

/// Why a bind was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// Another socket bound the thing first.
    #[error("already bound by another connection")]
    AlreadyBound,
}

#[derive(Default)]
struct Inner {
    bindings: HashMap<String, Binding>,
    by_conn: HashMap<u64, HashSet<String>>,
    connections: HashMap<u64, Arc<EdgeConn>>,
}

/// Bindings and live edge connections.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a live, authenticated connection.
    pub fn add_connection(&self, conn: Arc<EdgeConn>) {
        self.lock().connections.insert(conn.id, conn);
    }

    /// Forgets a connection and returns the things it had bound (now unbound).
    pub fn remove_connection(&self, conn_id: u64) -> Vec<String> {
        let mut inner = self.lock();
        inner.connections.remove(&conn_id);
        let names = inner.by_conn.remove(&conn_id).unwrap_or_default();
        for name in &names {
            if inner
                .bindings
                .get(name)
                .is_some_and(|b| b.conn.id == conn_id)
            {
                inner.bindings.remove(name);
            }
        }
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names
    }

    /// Binds `thing` to `conn`. Re-binding on the same socket succeeds.
    /// Returns whether the binding is new.
    pub fn bind(
        &self,
        thing: &str,
        conn: &Arc<EdgeConn>,
        bound_as: &str,
    ) -> Result<bool, BindError> {
        let mut inner = self.lock();
        if let Some(existing) = inner.bindings.get(thing) {
            return if existing.conn.id == conn.id {
                Ok(false)
            } else {
                Err(BindError::AlreadyBound)
            };
        }
        inner.bindings.insert(
            thing.to_owned(),
            Binding {
                conn: conn.clone(),
                bound_as: bound_as.to_owned(),
            },
        );
        inner
            .by_conn
            .entry(conn.id)
            .or_default()
            .insert(thing.to_owned());
        Ok(true)
    }

    /// Unbinds `thing` if `conn_id` holds it; returns whether it did.
    pub fn unbind(&self, thing: &str, conn_id: u64) -> bool {
        let mut inner = self.lock();
        if inner
            .bindings
            .get(thing)
            .is_none_or(|b| b.conn.id != conn_id)
        {
            return false;
        }
        inner.bindings.remove(thing);
        if let Some(set) = inner.by_conn.get_mut(&conn_id) {
            set.remove(thing);
        }
        true
    }

    /// The binding of `thing`, if any.
    pub fn binding(&self, thing: &str) -> Option<Binding> {
        self.lock().bindings.get(thing).cloned()
    }

    /// Whether `conn_id` holds `thing`.
    pub fn is_bound_on(&self, thing: &str, conn_id: u64) -> bool {
        self.lock()
            .bindings
            .get(thing)
            .is_some_and(|b| b.conn.id == conn_id)
    }

    /// Number of bound things.
    pub fn bound_count(&self) -> usize {
        self.lock().bindings.len()
    }

    /// Number of live authenticated connections.
    pub fn connection_count(&self) -> usize {
        self.lock().connections.len()
    }

    /// Every live connection (for shutdown).
    pub fn connections(&self) -> Vec<Arc<EdgeConn>> {
        self.lock().connections.values().cloned().collect()
    }
}
