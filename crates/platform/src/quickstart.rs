//! First-run bootstrap for `tether-platform quickstart`: an administrator
//! with a generated password, a demo thing with an SSH interface and an app
//! key for a demo edge, created once and printed once.

use std::path::PathBuf;

use crate::admin::{AdminError, hash_password_blocking};
use crate::model::{NewAppKey, NewThing, Protocol, RemoteInterface, Role, Template};
use crate::secret::{self, Secret};
use crate::store::{Store, StoreError};

/// The administrator quickstart creates.
pub const ADMIN_USER: &str = "admin";
/// The demo thing.
pub const DEMO_THING: &str = "DemoThing";
/// The demo edge's app key name.
pub const DEMO_KEY: &str = "demo-edge";
/// The gateway thing of the demo EMS that `tether-platform quickstart` runs.
pub const DEMO_EMS: &str = "DemoEms";
/// The demo Lua thing (docs/examples/lsr) that `tether-platform quickstart` runs.
pub const DEMO_LSR_THING: &str = "DemoLsrThing";

/// What the bootstrap created (secrets only on the first run).
#[derive(Debug)]
pub struct Bootstrap {
    pub first_run: bool,
    pub admin_user: String,
    pub admin_password: Option<Secret>,
    pub app_key: Option<Secret>,
}

/// The default data directory: `<user data dir>/tether-platform`.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("tether-platform")
}

/// Creates the administrator, demo thing and demo key if the store has no users.
pub async fn bootstrap(store: &Store) -> Result<Bootstrap, AdminError> {
    if !store.list_users().await?.is_empty() {
        return Ok(Bootstrap {
            first_run: false,
            admin_user: ADMIN_USER.into(),
            admin_password: None,
            app_key: None,
        });
    }
    let password = secret::generate_password();
    let hash = hash_password_blocking(password.expose().to_owned()).await?;
    store
        .create_user(ADMIN_USER, &hash, Role::Administrator)
        .await?;
    store
        .create_thing(&NewThing {
            name: DEMO_THING.into(),
            identifier: None,
            template: Template::RemoteThingWithTunnels,
            description: "demo edge thing created by quickstart".into(),
        })
        .await?;
    store
        .put_interface(
            DEMO_THING,
            &RemoteInterface {
                name: "ssh".into(),
                host: "127.0.0.1".into(),
                port: 22,
                protocol: Protocol::Ssh,
                description: "SSH on the demo edge".into(),
            },
        )
        .await?;
    let key = secret::generate_app_key();
    store
        .create_app_key(
            &NewAppKey {
                name: DEMO_KEY.into(),
                user: ADMIN_USER.into(),
                expires_at: None,
                allowed_addresses: Vec::new(),
                thing_patterns: vec!["Demo*".into()],
            },
            &secret::hash_app_key(key.expose()),
        )
        .await?;
    store
        .audit("quickstart", "cli", ADMIN_USER, "first run", "")
        .await?;
    Ok(Bootstrap {
        first_run: true,
        admin_user: ADMIN_USER.into(),
        admin_password: Some(password),
        app_key: Some(key),
    })
}

/// Creates the demo edge's things (the EMS gateway and the Lua thing) if absent;
/// both match the demo key's `Demo*` pattern.
pub async fn ensure_demo_edge_things(store: &Store) -> Result<(), StoreError> {
    for (name, description) in [
        (DEMO_EMS, "demo EMS run by quickstart"),
        (
            DEMO_LSR_THING,
            "demo Lua thing (docs/examples/lsr) run by quickstart",
        ),
    ] {
        if store.thing(name).await?.is_none() {
            store
                .create_thing(&NewThing {
                    name: name.into(),
                    identifier: None,
                    template: Template::RemoteThing,
                    description: description.into(),
                })
                .await?;
        }
    }
    // The demo EMS offers this machine's SSH server as a remote interface, so the
    // quickstart can open a real session (the EMS allow-list holds 127.0.0.1:22).
    if store.interfaces(DEMO_EMS).await?.is_empty() {
        store
            .put_interface(
                DEMO_EMS,
                &RemoteInterface {
                    name: "ssh".into(),
                    host: "127.0.0.1".into(),
                    port: 22,
                    protocol: Protocol::Ssh,
                    description: "SSH on the machine running the quickstart".into(),
                },
            )
            .await?;
    }
    Ok(())
}
