//! The SQL shared by both backends. Every statement is written once, with
//! `$N` placeholders (PostgreSQL's syntax, which sqlx also accepts for
//! SQLite) and booleans always bound, never written as literals, so the same
//! text runs on SQLite (INTEGER 0/1 columns) and PostgreSQL (BOOLEAN). The
//! `sql_backend!` macro expands these methods for one backend's pool and row
//! types; the few differences are its arguments.

/// Maps a UNIQUE violation to `Conflict(what)`.
pub(super) fn unique(e: sqlx::Error, what: impl Into<String>) -> super::StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            super::StoreError::Conflict(what.into())
        }
        _ => super::StoreError::Database(e),
    }
}

pub(super) fn corrupt(e: impl std::fmt::Display) -> super::StoreError {
    super::StoreError::Corrupt(e.to_string())
}

pub(super) fn not_found_if_zero(
    rows: u64,
    what: impl Into<String>,
) -> Result<(), super::StoreError> {
    if rows == 0 {
        Err(super::StoreError::NotFound(what.into()))
    } else {
        Ok(())
    }
}

pub(super) const APP_KEY_COLUMNS: &str = "k.id, k.name, u.name AS user_name, u.role, k.expires_at, \
     k.allowed_addresses, k.thing_patterns, k.revoked, k.created_at";
pub(super) const THING_COLUMNS: &str = "id, name, identifier, template, description, is_connected, last_connection, ephemeral, created_at";
pub(super) const AUDIT_COLUMNS: &str = "id, time, kind, actor, subject, detail, peer";

/// Expands the store methods for one backend.
///
/// - `$store`: the backend struct (with a `pool` field),
/// - `$db`: the sqlx database type,
/// - `$row`: its row type,
/// - `$strpos`: the SQL function `f(haystack, needle)` giving the 1-based
///   position of `needle` in `haystack`, 0 when absent (`instr` in SQLite,
///   `strpos` in PostgreSQL),
/// - `$after_copy`: statements run after rows were copied in with their ids
///   (PostgreSQL moves its identity sequences past them; SQLite's
///   AUTOINCREMENT follows by itself).
macro_rules! sql_backend {
    ($store:ident, $db:ty, $row:ty, $strpos:literal, $after_copy:expr) => {
        use std::str::FromStr as _;

        use sqlx::Row as _;

        use super::sql::{
            APP_KEY_COLUMNS, AUDIT_COLUMNS, THING_COLUMNS, corrupt, not_found_if_zero, unique,
        };
        use super::{AuditFilter, Dump, StoreError};
        use crate::model::{
            AppKey, AuditEntry, NewAppKey, NewThing, PropertyValue, RemoteInterface, Role, Thing,
            User, now_ms,
        };

        fn user_from_row(row: &$row) -> Result<User, StoreError> {
            Ok(User {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                role: Role::from_str(row.try_get::<&str, _>("role")?).map_err(corrupt)?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn app_key_from_row(row: &$row) -> Result<(AppKey, Role), StoreError> {
            let list = |col: &str| -> Result<Vec<String>, StoreError> {
                serde_json::from_str(row.try_get::<&str, _>(col)?).map_err(corrupt)
            };
            let key = AppKey {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                user: row.try_get("user_name")?,
                expires_at: row.try_get("expires_at")?,
                allowed_addresses: list("allowed_addresses")?,
                thing_patterns: list("thing_patterns")?,
                revoked: row.try_get("revoked")?,
                created_at: row.try_get("created_at")?,
            };
            let role = Role::from_str(row.try_get::<&str, _>("role")?).map_err(corrupt)?;
            Ok((key, role))
        }

        fn thing_from_row(row: &$row) -> Result<Thing, StoreError> {
            Ok(Thing {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                identifier: row.try_get("identifier")?,
                template: row
                    .try_get::<&str, _>("template")?
                    .parse()
                    .map_err(corrupt)?,
                description: row.try_get("description")?,
                is_connected: row.try_get("is_connected")?,
                last_connection: row.try_get("last_connection")?,
                ephemeral: row.try_get("ephemeral")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn audit_from_row(r: &$row) -> Result<AuditEntry, StoreError> {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                time: r.try_get("time")?,
                kind: r.try_get("kind")?,
                actor: r.try_get("actor")?,
                subject: r.try_get("subject")?,
                detail: r.try_get("detail")?,
                peer: r.try_get("peer")?,
            })
        }

        impl $store {
            pub(super) async fn close(&self) {
                self.pool.close().await;
            }

            async fn user_id(&self, name: &str) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("user `{name}`")))
            }

            async fn thing_id(&self, name: &str) -> Result<i64, StoreError> {
                sqlx::query_scalar("SELECT id FROM things WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("thing `{name}`")))
            }

            pub(super) async fn create_user(
                &self,
                name: &str,
                hash: &str,
                role: Role,
            ) -> Result<User, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO users (name, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
                     RETURNING id, name, role, created_at",
                )
                .bind(name)
                .bind(hash)
                .bind(role.as_str())
                .bind(now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| unique(e, format!("user `{name}`")))?;
                user_from_row(&row)
            }

            pub(super) async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                sqlx::query("SELECT id, name, role, created_at FROM users ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }

            pub(super) async fn user_with_hash(
                &self,
                name: &str,
            ) -> Result<Option<(User, String)>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, name, role, created_at, password_hash FROM users WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
                    .transpose()
            }

            pub(super) async fn update_user(
                &self,
                name: &str,
                hash: Option<&str>,
                role: Option<Role>,
            ) -> Result<User, StoreError> {
                let row = sqlx::query(
                    "UPDATE users SET password_hash = COALESCE($1, password_hash), role = COALESCE($2, role) \
                     WHERE name = $3 RETURNING id, name, role, created_at",
                )
                .bind(hash)
                .bind(role.map(Role::as_str))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user `{name}`")))?;
                user_from_row(&row)
            }

            pub(super) async fn create_web_session(
                &self,
                new: &super::NewWebSession<'_>,
            ) -> Result<(), StoreError> {
                let now = now_ms();
                sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                let user_id = self.user_id(new.user).await?;
                sqlx::query(
                    "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(new.token_hash)
                .bind(user_id)
                .bind(new.csrf)
                .bind(now)
                .bind(new.expires_at)
                .execute(&self.pool)
                .await
                .map_err(|e| unique(e, "web session"))?;
                // Bounded: past `max`, the sessions closest to expiry go.
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
                    .fetch_one(&self.pool)
                    .await?;
                if count > new.max {
                    sqlx::query(
                        "DELETE FROM web_sessions WHERE token_hash IN \
                         (SELECT token_hash FROM web_sessions ORDER BY expires_at ASC LIMIT $1)",
                    )
                    .bind(count - new.max)
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            }

            pub(super) async fn web_session(
                &self,
                token_hash: &str,
            ) -> Result<Option<super::StoredWebSession>, StoreError> {
                let row = sqlx::query(
                    "SELECT u.name AS user_name, u.role, s.csrf, s.expires_at \
                     FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(super::StoredWebSession {
                        user: r.try_get("user_name")?,
                        role: Role::from_str(r.try_get::<&str, _>("role")?).map_err(corrupt)?,
                        csrf: r.try_get("csrf")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            pub(super) async fn delete_web_session(&self, token_hash: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub(super) async fn delete_web_sessions_of(&self, user: &str) -> Result<u64, StoreError> {
                let r = sqlx::query(
                    "DELETE FROM web_sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
                )
                .bind(user)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected())
            }

            pub(super) async fn delete_user(&self, name: &str) -> Result<(), StoreError> {
                let r = sqlx::query("DELETE FROM users WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                not_found_if_zero(r.rows_affected(), format!("user `{name}`"))
            }

            async fn app_key_by_name(&self, name: &str) -> Result<AppKey, StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {APP_KEY_COLUMNS} FROM app_keys k JOIN users u ON u.id = k.user_id WHERE k.name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("app key `{name}`")))?;
                Ok(app_key_from_row(&row)?.0)
            }

            pub(super) async fn create_app_key(
                &self,
                new: &NewAppKey,
                key_hash: &str,
            ) -> Result<AppKey, StoreError> {
                let user_id = self.user_id(&new.user).await?;
                let addresses = serde_json::to_string(&new.allowed_addresses).map_err(corrupt)?;
                let patterns = serde_json::to_string(&new.thing_patterns).map_err(corrupt)?;
                sqlx::query(
                    "INSERT INTO app_keys (name, key_hash, user_id, expires_at, allowed_addresses, thing_patterns, revoked, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&new.name)
                .bind(key_hash)
                .bind(user_id)
                .bind(new.expires_at)
                .bind(addresses)
                .bind(patterns)
                .bind(false)
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .map_err(|e| unique(e, format!("app key `{}`", new.name)))?;
                self.app_key_by_name(&new.name).await
            }

            pub(super) async fn list_app_keys(&self) -> Result<Vec<AppKey>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {APP_KEY_COLUMNS} FROM app_keys k JOIN users u ON u.id = k.user_id ORDER BY k.name"
                ))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| app_key_from_row(r).map(|(k, _)| k))
                .collect()
            }

            pub(super) async fn app_key_by_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<(AppKey, Role)>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {APP_KEY_COLUMNS} FROM app_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
                ))
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(app_key_from_row)
                .transpose()
            }

            pub(super) async fn revoke_app_key(&self, name: &str) -> Result<(), StoreError> {
                let r = sqlx::query("UPDATE app_keys SET revoked = $1 WHERE name = $2")
                    .bind(true)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                not_found_if_zero(r.rows_affected(), format!("app key `{name}`"))
            }

            pub(super) async fn set_app_key_expiry(
                &self,
                name: &str,
                expires_at: Option<i64>,
            ) -> Result<AppKey, StoreError> {
                let r = sqlx::query("UPDATE app_keys SET expires_at = $1 WHERE name = $2")
                    .bind(expires_at)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                not_found_if_zero(r.rows_affected(), format!("app key `{name}`"))?;
                self.app_key_by_name(name).await
            }

            pub(super) async fn delete_app_key(&self, name: &str) -> Result<(), StoreError> {
                let r = sqlx::query("DELETE FROM app_keys WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                not_found_if_zero(r.rows_affected(), format!("app key `{name}`"))
            }

            pub(super) async fn create_thing(
                &self,
                new: &NewThing,
                ephemeral: bool,
            ) -> Result<Thing, StoreError> {
                let row = sqlx::query(&format!(
                    "INSERT INTO things (name, identifier, template, description, is_connected, ephemeral, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {THING_COLUMNS}"
                ))
                .bind(&new.name)
                .bind(&new.identifier)
                .bind(new.template.as_str())
                .bind(&new.description)
                .bind(false)
                .bind(ephemeral)
                .bind(now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| unique(e, format!("thing `{}` (or its identifier)", new.name)))?;
                thing_from_row(&row)
            }

            pub(super) async fn list_things(&self) -> Result<Vec<Thing>, StoreError> {
                sqlx::query(&format!("SELECT {THING_COLUMNS} FROM things ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(thing_from_row)
                    .collect()
            }

            pub(super) async fn thing(&self, name: &str) -> Result<Option<Thing>, StoreError> {
                sqlx::query(&format!("SELECT {THING_COLUMNS} FROM things WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(thing_from_row)
                    .transpose()
            }

            pub(super) async fn thing_by_identifier(
                &self,
                identifier: &str,
            ) -> Result<Option<Thing>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {THING_COLUMNS} FROM things WHERE identifier = $1"
                ))
                .bind(identifier)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(thing_from_row)
                .transpose()
            }

            pub(super) async fn delete_thing(&self, name: &str) -> Result<(), StoreError> {
                let r = sqlx::query("DELETE FROM things WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                not_found_if_zero(r.rows_affected(), format!("thing `{name}`"))
            }

            pub(super) async fn set_connected(
                &self,
                name: &str,
                connected: bool,
                at: i64,
            ) -> Result<(), StoreError> {
                let r = sqlx::query(
                    "UPDATE things SET is_connected = $1, \
                     last_connection = CASE WHEN $1 THEN $2 ELSE last_connection END WHERE name = $3",
                )
                .bind(connected)
                .bind(at)
                .bind(name)
                .execute(&self.pool)
                .await?;
                not_found_if_zero(r.rows_affected(), format!("thing `{name}`"))
            }

            pub(super) async fn disconnect_all(&self) -> Result<u64, StoreError> {
                let r = sqlx::query("UPDATE things SET is_connected = $1 WHERE is_connected = $2")
                    .bind(false)
                    .bind(true)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            pub(super) async fn upsert_properties(
                &self,
                thing: &str,
                values: &[PropertyValue],
            ) -> Result<(), StoreError> {
                let id = self.thing_id(thing).await?;
                let mut tx = self.pool.begin().await?;
                for v in values {
                    sqlx::query(
                        "INSERT INTO properties (thing_id, name, base_type, value, time, quality) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (thing_id, name) DO UPDATE SET base_type = excluded.base_type, \
                         value = excluded.value, time = excluded.time, quality = excluded.quality",
                    )
                    .bind(id)
                    .bind(&v.name)
                    .bind(&v.base_type)
                    .bind(v.value.to_string())
                    .bind(v.time)
                    .bind(&v.quality)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn properties(
                &self,
                thing: &str,
            ) -> Result<Vec<PropertyValue>, StoreError> {
                let id = self.thing_id(thing).await?;
                sqlx::query(
                    "SELECT name, base_type, value, time, quality FROM properties WHERE thing_id = $1 ORDER BY name",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(PropertyValue {
                        name: r.try_get("name")?,
                        base_type: r.try_get("base_type")?,
                        value: serde_json::from_str(r.try_get::<&str, _>("value")?)
                            .map_err(corrupt)?,
                        time: r.try_get("time")?,
                        quality: r.try_get("quality")?,
                    })
                })
                .collect()
            }

            pub(super) async fn put_interface(
                &self,
                thing: &str,
                iface: &RemoteInterface,
            ) -> Result<(), StoreError> {
                let id = self.thing_id(thing).await?;
                sqlx::query(
                    "INSERT INTO remote_interfaces (thing_id, name, host, port, protocol, description) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (thing_id, name) DO UPDATE SET host = excluded.host, port = excluded.port, \
                     protocol = excluded.protocol, description = excluded.description",
                )
                .bind(id)
                .bind(&iface.name)
                .bind(&iface.host)
                .bind(i64::from(iface.port))
                .bind(iface.protocol.as_str())
                .bind(&iface.description)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub(super) async fn interfaces(
                &self,
                thing: &str,
            ) -> Result<Vec<RemoteInterface>, StoreError> {
                let id = self.thing_id(thing).await?;
                sqlx::query(
                    "SELECT name, host, port, protocol, description FROM remote_interfaces WHERE thing_id = $1 ORDER BY name",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(RemoteInterface {
                        name: r.try_get("name")?,
                        host: r.try_get("host")?,
                        port: u16::try_from(r.try_get::<i64, _>("port")?).map_err(corrupt)?,
                        protocol: r.try_get::<&str, _>("protocol")?.parse().map_err(corrupt)?,
                        description: r.try_get("description")?,
                    })
                })
                .collect()
            }

            pub(super) async fn delete_interface(
                &self,
                thing: &str,
                name: &str,
            ) -> Result<(), StoreError> {
                let id = self.thing_id(thing).await?;
                let r = sqlx::query("DELETE FROM remote_interfaces WHERE thing_id = $1 AND name = $2")
                    .bind(id)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                not_found_if_zero(r.rows_affected(), format!("interface `{name}` of `{thing}`"))
            }

            pub(super) async fn audit(
                &self,
                kind: &str,
                actor: &str,
                subject: &str,
                detail: &str,
                peer: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (time, kind, actor, subject, detail, peer) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(now_ms())
                .bind(kind)
                .bind(actor)
                .bind(subject)
                .bind(detail)
                .bind(peer)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub(super) async fn audit_query(
                &self,
                f: &AuditFilter,
            ) -> Result<Vec<AuditEntry>, StoreError> {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"
                ));
                if let Some(kind) = &f.kind {
                    q.push(" AND kind = ").push_bind(kind.clone());
                }
                if let Some(prefix) = &f.kind_prefix {
                    q.push(concat!(" AND ", $strpos, "(kind, "))
                        .push_bind(prefix.clone())
                        .push(") = 1");
                }
                if let Some(actor) = &f.actor {
                    q.push(" AND actor = ").push_bind(actor.clone());
                }
                if let Some(subject) = &f.subject {
                    q.push(" AND subject = ").push_bind(subject.clone());
                }
                if let Some(prefix) = &f.subject_prefix {
                    q.push(concat!(" AND ", $strpos, "(subject, "))
                        .push_bind(prefix.clone())
                        .push(") = 1");
                }
                if let Some(since) = f.since {
                    q.push(" AND time >= ").push_bind(since);
                }
                if let Some(until) = f.until {
                    q.push(" AND time < ").push_bind(until);
                }
                if let Some(text) = &f.text {
                    q.push(" AND (");
                    for (i, col) in ["kind", "actor", "subject", "detail"].iter().enumerate() {
                        if i > 0 {
                            q.push(" OR ");
                        }
                        q.push(format!(concat!($strpos, "(lower({}), lower("), col))
                            .push_bind(text.clone())
                            .push(")) > 0");
                    }
                    q.push(")");
                }
                q.push(" ORDER BY id DESC LIMIT ")
                    .push_bind(f.limit)
                    .push(" OFFSET ")
                    .push_bind(f.offset);
                q.build()
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(audit_from_row)
                    .collect()
            }

            /// Rows in users, app keys, things and the audit log.
            pub(super) async fn row_count(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM app_keys) \
                     + (SELECT COUNT(*) FROM things) + (SELECT COUNT(*) FROM audit_log)",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            /// Every row except the audit log, ids and secrets' hashes included.
            pub(super) async fn dump(&self) -> Result<Dump, StoreError> {
                let mut d = Dump::default();
                for r in sqlx::query(
                    "SELECT id, name, password_hash, role, created_at FROM users ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?
                {
                    d.users.push(super::UserRow {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        password_hash: r.try_get("password_hash")?,
                        role: r.try_get("role")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                for r in sqlx::query(
                    "SELECT id, name, key_hash, user_id, expires_at, allowed_addresses, thing_patterns, \
                     revoked, created_at FROM app_keys ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?
                {
                    d.app_keys.push(super::AppKeyRow {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        key_hash: r.try_get("key_hash")?,
                        user_id: r.try_get("user_id")?,
                        expires_at: r.try_get("expires_at")?,
                        allowed_addresses: r.try_get("allowed_addresses")?,
                        thing_patterns: r.try_get("thing_patterns")?,
                        revoked: r.try_get("revoked")?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                for r in sqlx::query(&format!("SELECT {THING_COLUMNS} FROM things ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?
                {
                    d.things.push(thing_from_row(&r)?);
                }
                for r in sqlx::query(
                    "SELECT thing_id, name, base_type, value, time, quality FROM properties ORDER BY thing_id, name",
                )
                .fetch_all(&self.pool)
                .await?
                {
                    d.properties.push(super::PropertyRow {
                        thing_id: r.try_get("thing_id")?,
                        name: r.try_get("name")?,
                        base_type: r.try_get("base_type")?,
                        value: r.try_get("value")?,
                        time: r.try_get("time")?,
                        quality: r.try_get("quality")?,
                    });
                }
                for r in sqlx::query(
                    "SELECT thing_id, name, host, port, protocol, description FROM remote_interfaces ORDER BY thing_id, name",
                )
                .fetch_all(&self.pool)
                .await?
                {
                    d.interfaces.push(super::InterfaceRow {
                        thing_id: r.try_get("thing_id")?,
                        name: r.try_get("name")?,
                        host: r.try_get("host")?,
                        port: r.try_get("port")?,
                        protocol: r.try_get("protocol")?,
                        description: r.try_get("description")?,
                    });
                }
                Ok(d)
            }

            /// Audit entries with an id above `after`, oldest first.
            pub(super) async fn audit_page(
                &self,
                after: i64,
                limit: i64,
            ) -> Result<Vec<AuditEntry>, StoreError> {
                sqlx::query(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(audit_from_row)
                .collect()
            }

            /// Writes a dump (ids kept) in one transaction.
            pub(super) async fn load(&self, d: &Dump) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for u in &d.users {
                    sqlx::query(
                        "INSERT INTO users (id, name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(u.id)
                    .bind(&u.name)
                    .bind(&u.password_hash)
                    .bind(&u.role)
                    .bind(u.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique(e, format!("user `{}`", u.name)))?;
                }
                for k in &d.app_keys {
                    sqlx::query(
                        "INSERT INTO app_keys (id, name, key_hash, user_id, expires_at, allowed_addresses, \
                         thing_patterns, revoked, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(k.id)
                    .bind(&k.name)
                    .bind(&k.key_hash)
                    .bind(k.user_id)
                    .bind(k.expires_at)
                    .bind(&k.allowed_addresses)
                    .bind(&k.thing_patterns)
                    .bind(k.revoked)
                    .bind(k.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique(e, format!("app key `{}`", k.name)))?;
                }
                for t in &d.things {
                    sqlx::query(
                        "INSERT INTO things (id, name, identifier, template, description, is_connected, \
                         last_connection, ephemeral, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(t.id)
                    .bind(&t.name)
                    .bind(&t.identifier)
                    .bind(t.template.as_str())
                    .bind(&t.description)
                    .bind(t.is_connected)
                    .bind(t.last_connection)
                    .bind(t.ephemeral)
                    .bind(t.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| unique(e, format!("thing `{}`", t.name)))?;
                }
                for p in &d.properties {
                    sqlx::query(
                        "INSERT INTO properties (thing_id, name, base_type, value, time, quality) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(p.thing_id)
                    .bind(&p.name)
                    .bind(&p.base_type)
                    .bind(&p.value)
                    .bind(p.time)
                    .bind(&p.quality)
                    .execute(&mut *tx)
                    .await?;
                }
                for i in &d.interfaces {
                    sqlx::query(
                        "INSERT INTO remote_interfaces (thing_id, name, host, port, protocol, description) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(i.thing_id)
                    .bind(&i.name)
                    .bind(&i.host)
                    .bind(i.port)
                    .bind(&i.protocol)
                    .bind(&i.description)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// Appends audit entries with their ids and times.
            pub(super) async fn load_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for e in entries {
                    sqlx::query(
                        "INSERT INTO audit_log (id, time, kind, actor, subject, detail, peer) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(e.id)
                    .bind(e.time)
                    .bind(&e.kind)
                    .bind(&e.actor)
                    .bind(&e.subject)
                    .bind(&e.detail)
                    .bind(&e.peer)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// Runs the backend's statements after a copy (identity sequences).
            pub(super) async fn after_copy(&self) -> Result<(), StoreError> {
                let statements: &[&str] = $after_copy;
                for sql in statements {
                    sqlx::query(sql).execute(&self.pool).await?;
                }
                Ok(())
            }
        }
    };
}

pub(super) use sql_backend;
