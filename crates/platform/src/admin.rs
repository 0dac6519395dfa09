//! The admin CLI (`tether-platform admin --data-dir D …`): users, app keys,
//! things and remote interfaces, straight against the store (the data
//! directory's SQLite file, `--database-url`, or the `[database]` of
//! `--config`), so scripts and tests need no browser. Output is plain text (one entity per
//! line) or JSON with `--json`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::model::{NewAppKey, NewThing, Protocol, RemoteInterface, Role, Template};
use crate::secret;
use crate::store::{Database, Store, StoreError};

/// `tether-platform admin …`
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The platform's data directory (its SQLite database `tether.db`).
    #[arg(long, env = "TETHER_PLATFORM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store's database URL (`sqlite:PATH` or `postgres://…`); wins over
    /// --data-dir and --config.
    #[arg(long, env = "TETHER_PLATFORM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The platform's configuration file: its `[database]` (or data_dir) is used.
    #[arg(long, env = "TETHER_PLATFORM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The entity to act on.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Users who log in (web page, REST basic auth, AlwaysOn user/password).
    #[command(subcommand)]
    User(UserCommand),
    /// Application keys for edges and scripts.
    #[command(subcommand, name = "appkey")]
    AppKey(AppKeyCommand),
    /// Things.
    #[command(subcommand)]
    Thing(ThingCommand),
    /// Remote interfaces (tunnel targets) of a thing.
    #[command(subcommand)]
    Interface(InterfaceCommand),
    /// The newest audit-log entries.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Copy everything (users, app keys, things, properties, interfaces,
    /// audit log; password and key hashes, ids and times kept) into another,
    /// empty store, e.g. from SQLite to PostgreSQL. Stop the platform first.
    #[command(name = "copy-to")]
    CopyTo {
        /// The target database URL (`postgres://…` or `sqlite:PATH`).
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a generated password unless --password is given.
    Add {
        name: String,
        /// administrator, operator, viewer, or connection-server (a
        /// tether-cxserver's user: its app key opens AlwaysOn links).
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// The password (else generated and printed once). Prefer the env variable.
        #[arg(long, env = "TETHER_PLATFORM_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List users.
    List,
    /// Change a user's role and/or set a new password.
    Set {
        name: String,
        #[arg(long)]
        role: Option<Role>,
        #[arg(long, env = "TETHER_PLATFORM_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Delete a user and their app keys.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AppKeyCommand {
    /// Create a key; the key is printed once and only its hash is stored.
    Create {
        name: String,
        /// The user the key acts as.
        #[arg(long)]
        user: String,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Client address or CIDR allowed to use the key (repeatable; none = any).
        #[arg(long = "allow-address")]
        allow_address: Vec<String>,
        /// Thing-name pattern (`*` wildcard) the key may bind (repeatable; none = any).
        #[arg(long = "thing")]
        thing: Vec<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key: it can no longer authenticate.
    Revoke { name: String },
    /// Delete a key.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ThingCommand {
    /// Create a thing.
    Add {
        name: String,
        /// Identifier an edge may bind with (`*identifier`).
        #[arg(long)]
        identifier: Option<String>,
        #[arg(long, default_value = "RemoteThing")]
        template: Template,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List things.
    List,
    /// Delete a thing with its properties and interfaces.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum InterfaceCommand {
    /// Add or replace a remote interface on a thing.
    Add {
        thing: String,
        name: String,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "tcp")]
        protocol: Protocol,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a thing's remote interfaces.
    List { thing: String },
    /// Remove a remote interface.
    Delete { thing: String, name: String },
}

/// What can go wrong in an admin command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] secret::HashError),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Hashes a password off the async runtime.
pub async fn hash_password_blocking(password: String) -> Result<String, AdminError> {
    Ok(tokio::task::spawn_blocking(move || secret::hash_password(&password)).await??)
}

fn json_line(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The store the arguments name: `--database-url`, else `--config`'s
/// database (with `--data-dir` overriding its data_dir), else the SQLite file
/// in `--data-dir`.
pub fn database_of(args: &AdminArgs) -> Result<Database, AdminError> {
    if let Some(url) = &args.database_url {
        return Database::from_url(url, None)
            .map_err(|e| AdminError::Invalid(format!("--database-url: {e}")));
    }
    if let Some(path) = &args.config {
        let mut raw =
            crate::config::RawConfig::load(path).map_err(|e| AdminError::Invalid(e.to_string()))?;
        if args.data_dir.is_some() {
            raw.data_dir = args.data_dir.clone();
        }
        let config = raw
            .validate()
            .map_err(|e| AdminError::Invalid(format!("{}: {e}", path.display())))?;
        return Ok(config.database);
    }
    match &args.data_dir {
        Some(dir) => Ok(Database::sqlite_in(dir)),
        None => Err(AdminError::Invalid(
            "say where the store is: --data-dir, --database-url or --config".into(),
        )),
    }
}

/// Runs one admin command against the store the arguments name and returns
/// what to print.
pub async fn run(args: AdminArgs) -> Result<String, AdminError> {
    let store = Store::open(&database_of(&args)?).await?;
    let out = run_with_store(&store, args.command, args.json).await;
    store.close().await;
    out
}

/// Runs one admin command against an open store.
pub async fn run_with_store(
    store: &Store,
    cmd: AdminCommand,
    json: bool,
) -> Result<String, AdminError> {
    let mut out = String::new();
    match cmd {
        AdminCommand::User(UserCommand::Add {
            name,
            role,
            password,
        }) => {
            if name.trim().is_empty() {
                return Err(AdminError::Invalid("user name is empty".into()));
            }
            let (password, generated) = match password {
                Some(p) if !p.is_empty() => (secret::Secret::new(p), false),
                Some(_) => return Err(AdminError::Invalid("password is empty".into())),
                None => (secret::generate_password(), true),
            };
            let hash = hash_password_blocking(password.expose().to_owned()).await?;
            let user = store.create_user(&name, &hash, role).await?;
            store
                .audit("admin.user.add", "cli", &name, role.as_str(), "")
                .await?;
            if json {
                let mut v = serde_json::to_value(&user).unwrap_or_default();
                if generated {
                    v["password"] = serde_json::Value::String(password.expose().to_owned());
                }
                out = json_line(&v);
            } else {
                out.push_str(&format!("created user {} ({})", user.name, user.role));
                if generated {
                    out.push_str(&format!("\npassword: {}", password.expose()));
                }
            }
        }
        AdminCommand::User(UserCommand::List) => {
            let users = store.list_users().await?;
            out = if json {
                json_line(&users)
            } else {
                users
                    .iter()
                    .map(|u| format!("{}\t{}", u.name, u.role))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
        }
        AdminCommand::User(UserCommand::Set {
            name,
            role,
            password,
        }) => {
            let hash = match password {
                Some(p) if p.is_empty() => {
                    return Err(AdminError::Invalid("password is empty".into()));
                }
                Some(p) => Some(hash_password_blocking(p).await?),
                None => None,
            };
            let user = store.update_user(&name, hash.as_deref(), role).await?;
            store
                .audit("admin.user.set", "cli", &name, user.role.as_str(), "")
                .await?;
            out = if json {
                json_line(&user)
            } else {
                format!("updated user {} ({})", user.name, user.role)
            };
        }
        AdminCommand::User(UserCommand::Delete { name }) => {
            store.delete_user(&name).await?;
            store
                .audit("admin.user.delete", "cli", &name, "", "")
                .await?;
            out = format!("deleted user {name}");
        }
        AdminCommand::AppKey(AppKeyCommand::Create {
            name,
            user,
            expires_in_days,
            allow_address,
            thing,
        }) => {
            for a in &allow_address {
                if crate::model::Cidr::parse(a).is_none() {
                    return Err(AdminError::Invalid(format!(
                        "--allow-address `{a}` is not an address or CIDR"
                    )));
                }
            }
            let expires_at =
                expires_in_days.map(|d| crate::model::now_ms() + i64::from(d) * 86_400_000);
            let key = secret::generate_app_key();
            let new = NewAppKey {
                name,
                user,
                expires_at,
                allowed_addresses: allow_address,
                thing_patterns: thing,
            };
            let created = store
                .create_app_key(&new, &secret::hash_app_key(key.expose()))
                .await?;
            store
                .audit(
                    "admin.appkey.create",
                    "cli",
                    &created.name,
                    &created.user,
                    "",
                )
                .await?;
            out = if json {
                let mut v = serde_json::to_value(&created).unwrap_or_default();
                v["key"] = serde_json::Value::String(key.expose().to_owned());
                json_line(&v)
            } else {
                format!(
                    "created app key {} for {}\nkey: {}",
                    created.name,
                    created.user,
                    key.expose()
                )
            };
        }
        AdminCommand::AppKey(AppKeyCommand::List) => {
            let keys = store.list_app_keys().await?;
            out = if json {
                json_line(&keys)
            } else {
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}\t{}\t{}\texpires={}\tthings={}\taddresses={}",
                            k.name,
                            k.user,
                            if k.revoked { "revoked" } else { "active" },
                            k.expires_at
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "never".into()),
                            if k.thing_patterns.is_empty() {
                                "*".into()
                            } else {
                                k.thing_patterns.join(",")
                            },
                            if k.allowed_addresses.is_empty() {
                                "any".into()
                            } else {
                                k.allowed_addresses.join(",")
                            },
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
        }
        AdminCommand::AppKey(AppKeyCommand::Revoke { name }) => {
            store.revoke_app_key(&name).await?;
            store
                .audit("admin.appkey.revoke", "cli", &name, "", "")
                .await?;
            out = format!("revoked app key {name}");
        }
        AdminCommand::AppKey(AppKeyCommand::Delete { name }) => {
            store.delete_app_key(&name).await?;
            store
                .audit("admin.appkey.delete", "cli", &name, "", "")
                .await?;
            out = format!("deleted app key {name}");
        }
        AdminCommand::Thing(ThingCommand::Add {
            name,
            identifier,
            template,
            description,
        }) => {
            if name.trim().is_empty() || name.starts_with('*') {
                return Err(AdminError::Invalid(
                    "thing name is empty or starts with `*`".into(),
                ));
            }
            let identifier = identifier.map(|i| i.trim_start_matches('*').to_owned());
            let t = store
                .create_thing(&NewThing {
                    name,
                    identifier,
                    template,
                    description,
                })
                .await?;
            store
                .audit("admin.thing.add", "cli", &t.name, t.template.as_str(), "")
                .await?;
            out = if json {
                json_line(&t)
            } else {
                format!("created thing {} ({})", t.name, t.template)
            };
        }
        AdminCommand::Thing(ThingCommand::List) => {
            let things = store.list_things().await?;
            out = if json {
                json_line(&things)
            } else {
                things
                    .iter()
                    .map(|t| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            t.name,
                            t.template,
                            t.identifier.as_deref().unwrap_or("-"),
                            if t.is_connected {
                                "connected"
                            } else {
                                "disconnected"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
        }
        AdminCommand::Thing(ThingCommand::Delete { name }) => {
            store.delete_thing(&name).await?;
            store
                .audit("admin.thing.delete", "cli", &name, "", "")
                .await?;
            out = format!("deleted thing {name}");
        }
        AdminCommand::Interface(InterfaceCommand::Add {
            thing,
            name,
            host,
            port,
            protocol,
            description,
        }) => {
            if name.trim().is_empty() || host.trim().is_empty() || port == 0 {
                return Err(AdminError::Invalid(
                    "interface needs a name, a host and a non-zero port".into(),
                ));
            }
            let iface = RemoteInterface {
                name,
                host,
                port,
                protocol,
                description,
            };
            store.put_interface(&thing, &iface).await?;
            store
                .audit("admin.interface.add", "cli", &thing, &iface.name, "")
                .await?;
            out = if json {
                json_line(&iface)
            } else {
                format!(
                    "interface {} on {thing}: {} {}:{}",
                    iface.name, iface.protocol, iface.host, iface.port
                )
            };
        }
        AdminCommand::Interface(InterfaceCommand::List { thing }) => {
            let list = store.interfaces(&thing).await?;
            out = if json {
                json_line(&list)
            } else {
                list.iter()
                    .map(|i| format!("{}\t{}\t{}:{}", i.name, i.protocol, i.host, i.port))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
        }
        AdminCommand::Interface(InterfaceCommand::Delete { thing, name }) => {
            store.delete_interface(&thing, &name).await?;
            store
                .audit("admin.interface.delete", "cli", &thing, &name, "")
                .await?;
            out = format!("deleted interface {name} of {thing}");
        }
        AdminCommand::CopyTo { url } => {
            let db = Database::from_url(&url, None)
                .map_err(|e| AdminError::Invalid(format!("target URL: {e}")))?;
            let target = Store::open(&db).await?;
            let copied = store.copy_into(&target).await;
            target.close().await;
            let c = copied?;
            out = if json {
                json_line(&c)
            } else {
                format!(
                    "copied {} users, {} app keys, {} things, {} properties, {} interfaces, \
                     {} audit entries into {}",
                    c.users,
                    c.app_keys,
                    c.things,
                    c.properties,
                    c.interfaces,
                    c.audit_entries,
                    db.redacted()
                )
            };
        }
        AdminCommand::Audit { limit } => {
            let entries = store.audit_log(limit.clamp(1, 10_000)).await?;
            out = if json {
                json_line(&entries)
            } else {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            e.time, e.kind, e.actor, e.subject, e.detail, e.peer
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
        }
    }
    Ok(out)
}
