//! Test databases for the store tests: SQLite in a temp dir, or a fresh
//! PostgreSQL database on the server named by `TETHER_TEST_DATABASE_URL`
//! (dropped when the `TestDb` is dropped, also on panic), so tests run in
//! parallel and leave nothing behind. Without the variable the PostgreSQL
//! variant is skipped, unless `TETHER_REQUIRE_POSTGRES=1`.

#![allow(dead_code)]

use platform::store::{Database, Store};
use sqlx::Connection as _;

/// The server URL variable.
pub const URL_VAR: &str = "TETHER_TEST_DATABASE_URL";
/// Set to 1 to fail instead of skipping without a server.
pub const REQUIRE_VAR: &str = "TETHER_REQUIRE_POSTGRES";

/// The backends the shared tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database.
pub struct TestDb {
    pub database: Database,
    pub kind: Kind,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgDatabase>,
}

impl TestDb {
    /// A fresh database of `kind`; `None` (after printing why) when
    /// PostgreSQL is not configured and not required.
    pub async fn new(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                Some(TestDb {
                    database: Database::sqlite_in(dir.path()),
                    kind,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Kind::Postgres => {
                let server = server_url()?;
                let pg = PgDatabase::create(&server).await;
                Some(TestDb {
                    database: Database::from_url(&pg.url, Some(4)).unwrap(),
                    kind,
                    _dir: None,
                    pg: Some(pg),
                })
            }
        }
    }

    /// Opens (again) a store on this database.
    pub async fn open(&self) -> Store {
        Store::open(&self.database).await.unwrap()
    }

    /// The database URL (`sqlite:…` or `postgres://…`).
    pub fn url(&self) -> String {
        match &self.database {
            Database::Sqlite { path } => format!("sqlite:{}", path.display()),
            Database::Postgres { url, .. } => url.clone(),
            other => panic!("unknown backend {other:?}"),
        }
    }
}

/// The PostgreSQL server URL, or `None` (skip) when unset and not required.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!("{URL_VAR} is not set but {REQUIRE_VAR}=1: PostgreSQL tests must run");
            }
            eprintln!("skipped: {URL_VAR} not set");
            None
        }
    }
}

/// A database created for one test (the role needs CREATEDB) and dropped,
/// with any connection still open to it, on drop.
pub struct PgDatabase {
    pub name: String,
    /// The URL of the new database.
    pub url: String,
    server: String,
}

impl PgDatabase {
    pub async fn create(server: &str) -> PgDatabase {
        let name = format!(
            "tether_test_{}",
            platform::secret::random_token(9).to_lowercase()
        )
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
        let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&format!("/{name}"));
        // test data need not survive a crash: no fsync wait per commit
        url.query_pairs_mut()
            .append_pair("options[synchronous_commit]", "off");
        PgDatabase {
            url: url.to_string(),
            name,
            server: server.to_owned(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // A thread with its own runtime: Drop may run inside (or outside) a runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&server).await.ok()?;
                let r = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
                r.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
