//! The PostgreSQL backend: a connection pool over a `postgres://` URL,
//! migrations from `migrations/postgres` embedded at compile time and applied
//! at open (under sqlx's advisory lock, so several platforms may start at
//! once). The queries are shared with SQLite (`sql.rs`). The schema is the
//! first one in the connection's `search_path` (`public` unless the URL sets
//! `options[search_path]=…`).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a query waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the first connection may take (the server may be starting).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) struct PgStore {
    pool: PgPool,
}

/// Parses a `postgres://` / `postgresql://` URL (without connecting).
pub(super) fn parse_url(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    PgConnectOptions::from_str(url)
}

impl PgStore {
    pub(super) async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // client_min_messages: no NOTICE lines ("relation … already exists,
        // skipping") in the log at every start.
        let opts = parse_url(url)?
            .application_name("tether-platform")
            .options([("client_min_messages", "warning")]);
        // One direct connection first: a wrong host, port, password or
        // database fails at once with the server's reason (the pool would
        // retry until its acquire timeout and report only that).
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts))
            .await
            .map_err(|_| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to PostgreSQL timed out",
                )))
            })??;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }
}

/// After rows were copied in with their ids, identity sequences continue
/// above the largest id.
const AFTER_COPY: &[&str] = &[
    "SELECT setval(pg_get_serial_sequence('users', 'id'), COALESCE((SELECT MAX(id) FROM users), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('app_keys', 'id'), COALESCE((SELECT MAX(id) FROM app_keys), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('things', 'id'), COALESCE((SELECT MAX(id) FROM things), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1, false)",
];

super::sql::sql_backend!(
    PgStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    "strpos",
    AFTER_COPY
);
