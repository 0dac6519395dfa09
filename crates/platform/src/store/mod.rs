//! The entity store: one interface (`Store`) over a backend enum, so a
//! PostgreSQL backend can be added as a second variant without touching
//! callers. SQLite is the embedded default: one file (`tether.db`) in the data
//! directory, migrations applied at open.

mod sqlite;

use std::path::Path;

use crate::model::{
    AppKey, AuditEntry, NewAppKey, NewThing, PropertyValue, RemoteInterface, Role, Template, Thing,
    User,
};

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "tether.db";

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named entity does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An entity with that name already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value could not be read back (hand-edited database?).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
}

/// Handle to the entity store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<Backend>,
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.backend {
            Backend::Sqlite(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite store in `data_dir` and applies
    /// migrations.
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Store, StoreError> {
        tokio::fs::create_dir_all(data_dir).await?;
        Self::open_sqlite_file(&data_dir.join(SQLITE_FILE)).await
    }

    /// Opens (creating if needed) the SQLite database file at `path`.
    pub async fn open_sqlite_file(path: &Path) -> Result<Store, StoreError> {
        let s = sqlite::SqliteStore::open(path).await?;
        Ok(Store {
            backend: std::sync::Arc::new(Backend::Sqlite(s)),
        })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        dispatch!(self.close())
    }

    // users

    /// Creates a user with an already hashed password.
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        dispatch!(self.create_user(name, password_hash, role))
    }

    /// All users, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        dispatch!(self.list_users())
    }

    /// A user and the stored password hash.
    pub async fn user_with_hash(&self, name: &str) -> Result<Option<(User, String)>, StoreError> {
        dispatch!(self.user_with_hash(name))
    }

    /// Replaces a user's password hash and/or role.
    pub async fn update_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        role: Option<Role>,
    ) -> Result<User, StoreError> {
        dispatch!(self.update_user(name, password_hash, role))
    }

    /// Deletes a user (and their app keys).
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_user(name))
    }

    // app keys

    /// Stores a new app key under its hash.
    pub async fn create_app_key(
        &self,
        new: &NewAppKey,
        key_hash: &str,
    ) -> Result<AppKey, StoreError> {
        dispatch!(self.create_app_key(new, key_hash))
    }

    /// All app keys, by name.
    pub async fn list_app_keys(&self) -> Result<Vec<AppKey>, StoreError> {
        dispatch!(self.list_app_keys())
    }

    /// The app key with this hash and its owner's role.
    pub async fn app_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<(AppKey, Role)>, StoreError> {
        dispatch!(self.app_key_by_hash(key_hash))
    }

    /// Marks a key revoked; it can no longer authenticate.
    pub async fn revoke_app_key(&self, name: &str) -> Result<(), StoreError> {
        dispatch!(self.revoke_app_key(name))
    }

    /// Deletes a key.
    pub async fn delete_app_key(&self, name: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_app_key(name))
    }

    // things

    /// Creates a configured thing.
    pub async fn create_thing(&self, new: &NewThing) -> Result<Thing, StoreError> {
        dispatch!(self.create_thing(new, false))
    }

    /// Creates an ephemeral thing (a gateway that bound with no configured thing).
    pub async fn create_ephemeral_thing(
        &self,
        name: &str,
        template: Template,
    ) -> Result<Thing, StoreError> {
        let new = NewThing {
            name: name.to_owned(),
            identifier: None,
            template,
            description: "created by a gateway bind".to_owned(),
        };
        dispatch!(self.create_thing(&new, true))
    }

    /// All things, by name.
    pub async fn list_things(&self) -> Result<Vec<Thing>, StoreError> {
        dispatch!(self.list_things())
    }

    /// The thing called `name`.
    pub async fn thing(&self, name: &str) -> Result<Option<Thing>, StoreError> {
        dispatch!(self.thing(name))
    }

    /// The thing with identifier `identifier` (without the leading `*`).
    pub async fn thing_by_identifier(&self, identifier: &str) -> Result<Option<Thing>, StoreError> {
        dispatch!(self.thing_by_identifier(identifier))
    }

    /// Deletes a thing with its properties and interfaces.
    pub async fn delete_thing(&self, name: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_thing(name))
    }

    /// Sets `isConnected`; when connecting, `lastConnection = at`.
    pub async fn set_connected(
        &self,
        name: &str,
        connected: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.set_connected(name, connected, at))
    }

    /// Marks every thing disconnected (at start: no socket survives a restart).
    pub async fn disconnect_all(&self) -> Result<u64, StoreError> {
        dispatch!(self.disconnect_all())
    }

    // properties

    /// Stores property values (insert or replace), atomically.
    pub async fn upsert_properties(
        &self,
        thing: &str,
        values: &[PropertyValue],
    ) -> Result<(), StoreError> {
        dispatch!(self.upsert_properties(thing, values))
    }

    /// All stored property values of a thing.
    pub async fn properties(&self, thing: &str) -> Result<Vec<PropertyValue>, StoreError> {
        dispatch!(self.properties(thing))
    }

    // remote interfaces

    /// Adds or replaces a remote interface on a thing.
    pub async fn put_interface(
        &self,
        thing: &str,
        iface: &RemoteInterface,
    ) -> Result<(), StoreError> {
        dispatch!(self.put_interface(thing, iface))
    }

    /// A thing's remote interfaces, by name.
    pub async fn interfaces(&self, thing: &str) -> Result<Vec<RemoteInterface>, StoreError> {
        dispatch!(self.interfaces(thing))
    }

    /// Removes a remote interface.
    pub async fn delete_interface(&self, thing: &str, name: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_interface(thing, name))
    }

    // audit

    /// Appends an audit entry.
    pub async fn audit(
        &self,
        kind: &str,
        actor: &str,
        subject: &str,
        detail: &str,
        peer: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self.audit(kind, actor, subject, detail, peer))
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self.audit_log(limit))
    }
}

#[cfg(test)]
mod tests;
