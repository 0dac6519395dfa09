//! The entity store: one interface (`Store`) over a backend enum. SQLite is
//! the embedded default: one file (`tether.db`) in the data directory.
//! PostgreSQL is the second backend, picked by a `postgres://` database URL.
//! Both run the same SQL (`sql.rs`) with their own migrations
//! (`migrations/sqlite`, `migrations/postgres`) applied at open, and the same
//! semantics: a UNIQUE violation is `Conflict`, a missing entity `NotFound`,
//! times are milliseconds since the Unix epoch (`i64`), list columns hold
//! JSON text.

mod postgres;
mod sql;
mod sqlite;

use std::path::{Path, PathBuf};

use crate::model::{
    AppKey, AuditEntry, NewAppKey, NewThing, PropertyValue, RemoteInterface, Role, Template, Thing,
    User,
};

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "tether.db";
/// Default PostgreSQL pool size (`database.max_connections`).
pub const DEFAULT_POSTGRES_POOL_SIZE: u32 = 10;
/// Largest accepted `database.max_connections`.
pub const MAX_POSTGRES_POOL_SIZE: u32 = 1000;

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
    /// The database URL is not one the store understands.
    #[error("database URL: {0}")]
    Url(String),
}

/// Where the entity store lives. `Debug` and [`Database::redacted`] hide a
/// password in a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// An SQLite database file (created if missing).
    Sqlite { path: PathBuf },
    /// A PostgreSQL server: `postgres://user:password@host:port/dbname`.
    Postgres { url: String, max_connections: u32 },
}

impl Database {
    /// The default: `tether.db` in the data directory.
    pub fn sqlite_in(data_dir: &Path) -> Database {
        Database::Sqlite {
            path: data_dir.join(SQLITE_FILE),
        }
    }

    /// Picks the backend by scheme: `sqlite:PATH` / `sqlite://PATH` (a file
    /// path; relative to the working directory) or `postgres://…` /
    /// `postgresql://…`. `max_connections` applies to PostgreSQL only
    /// (default [`DEFAULT_POSTGRES_POOL_SIZE`]). The PostgreSQL URL is
    /// checked without connecting.
    pub fn from_url(url: &str, max_connections: Option<u32>) -> Result<Database, String> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            postgres::parse_url(url).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
            let max_connections = max_connections.unwrap_or(DEFAULT_POSTGRES_POOL_SIZE);
            if !(1..=MAX_POSTGRES_POOL_SIZE).contains(&max_connections) {
                return Err(format!(
                    "max_connections {max_connections} is outside 1..={MAX_POSTGRES_POOL_SIZE}"
                ));
            }
            return Ok(Database::Postgres {
                url: url.to_owned(),
                max_connections,
            });
        }
        if lower.starts_with("sqlite:") {
            let rest = &url["sqlite:".len()..];
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.starts_with(':') || path.contains('?') {
                return Err(format!(
                    "`{url}`: want sqlite:PATH to a database file (no in-memory database, no query options)"
                ));
            }
            if max_connections.is_some() {
                return Err("max_connections applies to PostgreSQL only".into());
            }
            return Ok(Database::Sqlite {
                path: PathBuf::from(path),
            });
        }
        Err(format!(
            "`{}`: want sqlite:PATH or postgres://user:password@host:port/database",
            redact(url)
        ))
    }

    /// A description safe for logs (no password).
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite { path } => format!("sqlite:{}", path.display()),
            Database::Postgres { url, .. } => redact(url),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "sqlite",
            Database::Postgres { .. } => "postgres",
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// Which audit entries to read: every set field must match; newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// At most this many entries.
    pub limit: i64,
    /// Skip this many (newest first).
    pub offset: i64,
    /// Kind, exactly.
    pub kind: Option<String>,
    /// Kind starts with this.
    pub kind_prefix: Option<String>,
    /// Actor, exactly.
    pub actor: Option<String>,
    /// Subject, exactly.
    pub subject: Option<String>,
    /// Subject starts with this.
    pub subject_prefix: Option<String>,
    /// Time (ms) at or after this.
    pub since: Option<i64>,
    /// Time (ms) before this.
    pub until: Option<i64>,
    /// Substring of kind, actor, subject or detail; ASCII letters match
    /// regardless of case (PostgreSQL folds other letters too).
    pub text: Option<String>,
}

impl AuditFilter {
    /// The newest `limit` entries, unfiltered.
    pub fn newest(limit: i64) -> AuditFilter {
        AuditFilter {
            limit,
            offset: 0,
            kind: None,
            kind_prefix: None,
            actor: None,
            subject: None,
            subject_prefix: None,
            since: None,
            until: None,
            text: None,
        }
    }
}

/// How many audit entries a copy moves per transaction.
const COPY_AUDIT_BATCH: i64 = 1000;

/// What [`Store::copy_into`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyCounts {
    pub users: usize,
    pub app_keys: usize,
    pub things: usize,
    pub properties: usize,
    pub interfaces: usize,
    pub audit_entries: usize,
}

/// A web session to store.
#[derive(Debug, Clone, Copy)]
pub struct NewWebSession<'a> {
    /// Hash of the cookie token (the token itself is never stored).
    pub token_hash: &'a str,
    pub user: &'a str,
    pub csrf: &'a str,
    /// ms since the epoch.
    pub expires_at: i64,
    /// Most sessions kept in the store.
    pub max: i64,
}

/// A stored web session, with the user's current role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebSession {
    pub user: String,
    pub role: crate::model::Role,
    pub csrf: String,
    /// ms since the epoch.
    pub expires_at: i64,
}

/// Raw rows for a copy between stores (ids and hashes kept).
#[derive(Default)]
struct Dump {
    users: Vec<UserRow>,
    app_keys: Vec<AppKeyRow>,
    things: Vec<Thing>,
    properties: Vec<PropertyRow>,
    interfaces: Vec<InterfaceRow>,
}

struct UserRow {
    id: i64,
    name: String,
    password_hash: String,
    role: String,
    created_at: i64,
}

struct AppKeyRow {
    id: i64,
    name: String,
    key_hash: String,
    user_id: i64,
    expires_at: Option<i64>,
    allowed_addresses: String,
    thing_patterns: String,
    revoked: bool,
    created_at: i64,
}

struct PropertyRow {
    thing_id: i64,
    name: String,
    base_type: String,
    value: String,
    time: i64,
    quality: String,
}

struct InterfaceRow {
    thing_id: i64,
    name: String,
    host: String,
    port: i64,
    protocol: String,
    description: String,
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
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
            Backend::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens the store `db` says and applies migrations (an SQLite file and
    /// its directory are created if missing).
    pub async fn open(db: &Database) -> Result<Store, StoreError> {
        match db {
            Database::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await?;
                }
                Self::open_sqlite_file(path).await
            }
            Database::Postgres {
                url,
                max_connections,
            } => Self::open_postgres_with(url, *max_connections).await,
        }
    }

    /// Opens the store at a database URL (`sqlite:PATH` or `postgres://…`).
    pub async fn open_url(url: &str) -> Result<Store, StoreError> {
        let db = Database::from_url(url, None).map_err(StoreError::Url)?;
        Self::open(&db).await
    }

    /// Opens a PostgreSQL store with the default pool size.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Self::open_postgres_with(url, DEFAULT_POSTGRES_POOL_SIZE).await
    }

    /// Opens a PostgreSQL store with at most `max_connections` connections.
    pub async fn open_postgres_with(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let s = postgres::PgStore::open(url, max_connections).await?;
        Ok(Store {
            backend: std::sync::Arc::new(Backend::Postgres(s)),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

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

    /// Deletes a user (and their app keys and web sessions).
    pub async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_user(name))
    }

    // web log-in sessions

    /// Stores a web session (expired ones are dropped first; past
    /// `new.max` sessions, those closest to expiry go).
    pub async fn create_web_session(&self, new: &NewWebSession<'_>) -> Result<(), StoreError> {
        dispatch!(self.create_web_session(new))
    }

    /// The session stored under a cookie token's hash, with the user's
    /// current role (expired or not: the caller checks `expires_at`).
    pub async fn web_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredWebSession>, StoreError> {
        dispatch!(self.web_session(token_hash))
    }

    /// Ends one web session.
    pub async fn delete_web_session(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch!(self.delete_web_session(token_hash))
    }

    /// Ends every web session of `user`; returns how many ended.
    pub async fn delete_web_sessions_of(&self, user: &str) -> Result<u64, StoreError> {
        dispatch!(self.delete_web_sessions_of(user))
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

    /// Sets (or, with `None`, clears) a key's expiry time (ms since the epoch).
    pub async fn set_app_key_expiry(
        &self,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<AppKey, StoreError> {
        dispatch!(self.set_app_key_expiry(name, expires_at))
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
        self.audit_query(&AuditFilter::newest(limit)).await
    }

    /// Copies everything in this store (users with their password hashes,
    /// app keys with their key hashes, things, properties, interfaces, the
    /// audit log; ids and times kept) into `target`, which must be empty
    /// (else `Conflict`). Entities go in one transaction; the audit log
    /// follows in batches. Run it with the platform stopped.
    pub async fn copy_into(&self, target: &Store) -> Result<CopyCounts, StoreError> {
        if dispatch!(target.row_count())? != 0 {
            return Err(StoreError::Conflict(
                "data in the target store (it must be empty)".into(),
            ));
        }
        let dump = dispatch!(self.dump())?;
        dispatch!(target.load(&dump))?;
        let mut counts = CopyCounts {
            users: dump.users.len(),
            app_keys: dump.app_keys.len(),
            things: dump.things.len(),
            properties: dump.properties.len(),
            interfaces: dump.interfaces.len(),
            audit_entries: 0,
        };
        let mut after = 0;
        loop {
            let page = dispatch!(self.audit_page(after, COPY_AUDIT_BATCH))?;
            let Some(last) = page.last() else { break };
            after = last.id;
            dispatch!(target.load_audit(&page))?;
            counts.audit_entries += page.len();
        }
        dispatch!(target.after_copy())?;
        Ok(counts)
    }

    /// The audit entries matching `filter`, newest first.
    pub async fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self.audit_query(filter))
    }
}

#[cfg(test)]
mod tests;
