//! The entity store's tests, run on every backend: SQLite (a temp file) and
//! PostgreSQL (a fresh database on the server in `TETHER_TEST_DATABASE_URL`;
//! skipped with a message when unset, failed when `TETHER_REQUIRE_POSTGRES=1`),
//! plus one whole platform flow (REST, management API, an AlwaysOn edge,
//! restart) over each backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use platform::model::{
    NewAppKey, NewThing, PropertyValue, Protocol, RemoteInterface, Role, Template, now_ms,
};
use platform::store::{AuditFilter, NewWebSession, Store, StoreError, StoredWebSession};
use support::db::{Kind, TestDb};
use support::platform::{ADMIN, ADMIN_PASSWORD};

/// One `#[tokio::test]` per backend for each shared test function.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::new(super::Kind::Sqlite).await.unwrap();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::TestDb::new(super::Kind::Postgres).await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

on_every_backend!(
    users_keys_things_round_trip_and_survive_reopen,
    property_upsert_replaces,
    conflicts_and_not_found,
    app_key_expiry_set_and_cleared,
    web_sessions_survive_reopen_follow_the_role_and_are_bounded,
    audit_filters,
    text_round_trips_exactly,
    concurrent_writers,
    platform_flow_over_rest_and_an_edge,
    admin_cli_by_database_url,
    copy_from_sqlite_keeps_everything,
);

fn thing(name: &str, identifier: Option<&str>) -> NewThing {
    NewThing {
        name: name.into(),
        identifier: identifier.map(str::to_owned),
        template: Template::RemoteThingWithTunnels,
        description: String::new(),
    }
}

fn key(name: &str, user: &str) -> NewAppKey {
    NewAppKey {
        name: name.into(),
        user: user.into(),
        ..Default::default()
    }
}

async fn users_keys_things_round_trip_and_survive_reopen(db: &TestDb) {
    let store = db.open().await;
    let u = store
        .create_user("alice", "hash", Role::Operator)
        .await
        .unwrap();
    assert_eq!(u.role, Role::Operator);
    assert!(u.created_at > 1_600_000_000_000, "ms since the epoch");
    let key = store
        .create_app_key(
            &NewAppKey {
                name: "edge".into(),
                user: "alice".into(),
                thing_patterns: vec!["Pump*".into()],
                allowed_addresses: vec!["10.0.0.0/8".into(), "127.0.0.1".into()],
                expires_at: Some(4_000_000_000_000),
            },
            "kh",
        )
        .await
        .unwrap();
    assert_eq!(key.user, "alice");
    assert!(!key.revoked);
    let t = store
        .create_thing(&thing("Pump1", Some("SN1")))
        .await
        .unwrap();
    assert!(!t.is_connected && !t.ephemeral);
    assert_eq!(t.last_connection, None);
    store.set_connected("Pump1", true, 1234).await.unwrap();
    store
        .upsert_properties(
            "Pump1",
            &[PropertyValue {
                name: "Temp".into(),
                base_type: "NUMBER".into(),
                value: serde_json::json!(21.5),
                time: 99,
                quality: "GOOD".into(),
            }],
        )
        .await
        .unwrap();
    store
        .put_interface(
            "Pump1",
            &RemoteInterface {
                name: "ssh".into(),
                host: "127.0.0.1".into(),
                port: 65535,
                protocol: Protocol::Ssh,
                description: "shell".into(),
            },
        )
        .await
        .unwrap();
    store
        .audit("bind", "edge", "Pump1", "", "127.0.0.1")
        .await
        .unwrap();
    store.close().await;

    let store = db.open().await;
    let (k, role) = store.app_key_by_hash("kh").await.unwrap().unwrap();
    assert_eq!((k.name.as_str(), role), ("edge", Role::Operator));
    assert_eq!(k.thing_patterns, vec!["Pump*".to_string()]);
    assert_eq!(k.allowed_addresses, vec!["10.0.0.0/8", "127.0.0.1"]);
    assert_eq!(k.expires_at, Some(4_000_000_000_000));
    assert_eq!(store.list_app_keys().await.unwrap(), vec![k.clone()]);
    let t = store.thing_by_identifier("SN1").await.unwrap().unwrap();
    assert_eq!(t.name, "Pump1");
    assert!(t.is_connected);
    assert_eq!(t.last_connection, Some(1234));
    assert_eq!(store.disconnect_all().await.unwrap(), 1);
    assert_eq!(store.disconnect_all().await.unwrap(), 0);
    let t = store.thing("Pump1").await.unwrap().unwrap();
    assert!(!t.is_connected);
    assert_eq!(
        t.last_connection,
        Some(1234),
        "disconnecting keeps the time"
    );
    store.set_connected("Pump1", false, 5678).await.unwrap();
    assert_eq!(
        store.thing("Pump1").await.unwrap().unwrap().last_connection,
        Some(1234)
    );
    let props = store.properties("Pump1").await.unwrap();
    assert_eq!(props.len(), 1);
    assert_eq!(props[0].value, serde_json::json!(21.5));
    assert_eq!((props[0].time, props[0].quality.as_str()), (99, "GOOD"));
    let ifaces = store.interfaces("Pump1").await.unwrap();
    assert_eq!(
        (
            ifaces[0].port,
            ifaces[0].protocol,
            ifaces[0].description.as_str()
        ),
        (65535, Protocol::Ssh, "shell")
    );
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].kind.as_str(),
            log[0].actor.as_str(),
            log[0].peer.as_str()
        ),
        ("bind", "edge", "127.0.0.1")
    );

    store.revoke_app_key("edge").await.unwrap();
    assert!(
        store
            .app_key_by_hash("kh")
            .await
            .unwrap()
            .unwrap()
            .0
            .revoked
    );
    store.delete_user("alice").await.unwrap();
    assert!(
        store.app_key_by_hash("kh").await.unwrap().is_none(),
        "keys go with their user"
    );
    store.delete_thing("Pump1").await.unwrap();
    assert!(matches!(
        store.properties("Pump1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_thing("Pump1").await,
        Err(StoreError::NotFound(_))
    ));
    // interfaces and properties went with the thing: a new thing of that name has none
    store.create_thing(&thing("Pump1", None)).await.unwrap();
    assert!(store.interfaces("Pump1").await.unwrap().is_empty());
    assert!(store.properties("Pump1").await.unwrap().is_empty());
    store.close().await;
}

async fn property_upsert_replaces(db: &TestDb) {
    let store = db.open().await;
    store
        .create_ephemeral_thing("GW", Template::EmsGateway)
        .await
        .unwrap();
    for (v, t) in [(1, 10), (2, 20)] {
        let pv = PropertyValue {
            name: "p".into(),
            base_type: "INTEGER".into(),
            value: serde_json::json!(v),
            time: t,
            quality: "GOOD".into(),
        };
        store.upsert_properties("GW", &[pv]).await.unwrap();
    }
    let props = store.properties("GW").await.unwrap();
    assert_eq!(props.len(), 1);
    assert_eq!(
        (props[0].value.clone(), props[0].time),
        (serde_json::json!(2), 20)
    );
    let gw = store.thing("GW").await.unwrap().unwrap();
    assert!(gw.ephemeral);
    assert_eq!(gw.template, Template::EmsGateway);
    // several at once, sorted by name on the way out
    let many: Vec<PropertyValue> = ["b", "a", "c"]
        .iter()
        .map(|n| PropertyValue {
            name: (*n).into(),
            base_type: "STRING".into(),
            value: serde_json::json!(format!("v-{n}")),
            time: 1,
            quality: "UNKNOWN".into(),
        })
        .collect();
    store.upsert_properties("GW", &many).await.unwrap();
    let names: Vec<String> = store
        .properties("GW")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["a", "b", "c", "p"]);
    assert!(matches!(
        store.upsert_properties("Nope", &many).await,
        Err(StoreError::NotFound(_))
    ));
    store.close().await;
}

async fn conflicts_and_not_found(db: &TestDb) {
    let store = db.open().await;
    store.create_user("bob", "h", Role::Viewer).await.unwrap();
    assert!(matches!(
        store.create_user("bob", "h", Role::Viewer).await,
        Err(StoreError::Conflict(_))
    ));
    store.create_app_key(&key("k1", "bob"), "h1").await.unwrap();
    assert!(matches!(
        store.create_app_key(&key("k1", "bob"), "h2").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_app_key(&key("k2", "nobody"), "h3").await,
        Err(StoreError::NotFound(_))
    ));
    store.create_thing(&thing("T1", Some("ID1"))).await.unwrap();
    assert!(matches!(
        store.create_thing(&thing("T1", None)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_thing(&thing("T2", Some("ID1"))).await,
        Err(StoreError::Conflict(_)),
    ));
    // several things without an identifier are fine
    store.create_thing(&thing("T3", None)).await.unwrap();
    store.create_thing(&thing("T4", None)).await.unwrap();
    assert!(matches!(
        store.update_user("nobody", Some("x"), None).await,
        Err(StoreError::NotFound(_))
    ));
    let u = store
        .update_user("bob", None, Some(Role::Administrator))
        .await
        .unwrap();
    assert_eq!(u.role, Role::Administrator);
    let (_, hash) = store.user_with_hash("bob").await.unwrap().unwrap();
    assert_eq!(hash, "h", "a role change keeps the password");
    store.update_user("bob", Some("h2"), None).await.unwrap();
    let (u, hash) = store.user_with_hash("bob").await.unwrap().unwrap();
    assert_eq!((u.role, hash.as_str()), (Role::Administrator, "h2"));
    assert!(store.user_with_hash("nobody").await.unwrap().is_none());
    for r in [
        store.delete_user("nobody").await,
        store.revoke_app_key("nope").await,
        store.delete_app_key("nope").await,
        store.delete_thing("nope").await,
        store.set_connected("nope", true, 1).await,
        store.delete_interface("T1", "nope").await,
        store.delete_interface("nope", "ssh").await,
    ] {
        assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    }
    assert!(matches!(
        store.interfaces("nope").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.thing("nope").await.unwrap().is_none());
    assert!(store.thing_by_identifier("nope").await.unwrap().is_none());
    assert!(store.app_key_by_hash("nope").await.unwrap().is_none());
    let names: Vec<String> = store
        .list_things()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["T1", "T3", "T4"]);
    // names sort by bytes on every backend (upper case first), whatever the locale
    for n in ["b", "B", "a", "_x"] {
        store.create_thing(&thing(n, None)).await.unwrap();
    }
    let names: Vec<String> = store
        .list_things()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["B", "T1", "T3", "T4", "_x", "a", "b"]);
    store.delete_app_key("k1").await.unwrap();
    assert!(store.list_app_keys().await.unwrap().is_empty());
    store.close().await;
}

async fn app_key_expiry_set_and_cleared(db: &TestDb) {
    let store = db.open().await;
    store
        .create_user("carol", "h", Role::Operator)
        .await
        .unwrap();
    store
        .create_app_key(&key("ck", "carol"), "chash")
        .await
        .unwrap();
    let k = store
        .set_app_key_expiry("ck", Some(4_102_444_800_000))
        .await
        .unwrap();
    assert_eq!((k.name.as_str(), k.user.as_str()), ("ck", "carol"));
    assert_eq!(k.expires_at, Some(4_102_444_800_000));
    assert_eq!(store.app_key_by_hash("chash").await.unwrap().unwrap().0, k);
    let k = store.set_app_key_expiry("ck", None).await.unwrap();
    assert_eq!(k.expires_at, None);
    assert!(matches!(
        store.set_app_key_expiry("nope", None).await,
        Err(StoreError::NotFound(_))
    ));
    store.close().await;
}

async fn web_sessions_survive_reopen_follow_the_role_and_are_bounded(db: &TestDb) {
    let store = db.open().await;
    store.create_user("wes", "h", Role::Operator).await.unwrap();
    store.create_user("wanda", "h", Role::Viewer).await.unwrap();
    let far = now_ms() + 3_600_000;
    let new = |hash: &'static str, user: &'static str, expires_at: i64| NewWebSession {
        token_hash: hash,
        user,
        csrf: "csrf-1",
        expires_at,
        max: 3,
    };
    store
        .create_web_session(&new("t1", "wes", far))
        .await
        .unwrap();
    store
        .create_web_session(&new("t2", "wanda", far + 1))
        .await
        .unwrap();
    let s = store.web_session("t1").await.unwrap().unwrap();
    assert_eq!(
        s,
        StoredWebSession {
            user: "wes".into(),
            role: Role::Operator,
            csrf: "csrf-1".into(),
            expires_at: far,
        }
    );
    assert!(store.web_session("nope").await.unwrap().is_none());
    assert!(matches!(
        store.create_web_session(&new("t9", "nobody", far)).await,
        Err(StoreError::NotFound(_))
    ));
    // The role is the user's current one.
    store
        .update_user("wes", None, Some(Role::Administrator))
        .await
        .unwrap();
    assert_eq!(
        store.web_session("t1").await.unwrap().unwrap().role,
        Role::Administrator
    );
    store.close().await;

    // Reopened: still there.
    let store = db.open().await;
    assert_eq!(
        store.web_session("t2").await.unwrap().unwrap().user,
        "wanda"
    );
    // Bounded: past `max` (3) the ones closest to expiry go; expired ones go
    // on the next create.
    store
        .create_web_session(&new("t3", "wes", far + 2))
        .await
        .unwrap();
    store
        .create_web_session(&new("t4", "wes", far + 3))
        .await
        .unwrap();
    assert!(
        store.web_session("t1").await.unwrap().is_none(),
        "closest to expiry dropped"
    );
    for t in ["t2", "t3", "t4"] {
        assert!(store.web_session(t).await.unwrap().is_some(), "{t}");
    }
    let roomy = |s: NewWebSession<'static>| NewWebSession { max: 100, ..s };
    store
        .create_web_session(&roomy(new("old", "wes", 1)))
        .await
        .unwrap();
    assert!(store.web_session("old").await.unwrap().is_some());
    store
        .create_web_session(&roomy(new("t5", "wanda", far + 4)))
        .await
        .unwrap();
    assert!(
        store.web_session("old").await.unwrap().is_none(),
        "expired dropped"
    );
    // A user's sessions end together; deleting a user ends theirs.
    assert_eq!(store.delete_web_sessions_of("wes").await.unwrap(), 2);
    assert!(store.web_session("t3").await.unwrap().is_none());
    assert!(store.web_session("t5").await.unwrap().is_some());
    store.delete_user("wanda").await.unwrap();
    assert!(store.web_session("t5").await.unwrap().is_none());
    store.delete_web_session("t2").await.unwrap();
    store.close().await;
}

async fn audit_filters(db: &TestDb) {
    let store = db.open().await;
    let entries = [
        ("session.ended", "alice", "Pump1/ssh", "{\"bytes\":1}"),
        ("session.ended", "bob", "Pump2/vnc", "{\"bytes\":2}"),
        ("login", "alice", "alice", ""),
        ("admin.user.add", "admin", "bob", "viewer"),
        ("session.started", "alice", "Pump1/ssh", "Hello World"),
        ("auth.failure", "-", "app key", "invalid app key"),
        ("sessionless", "carol", "x", "100%_done"),
    ];
    for (kind, actor, subject, detail) in entries {
        store
            .audit(kind, actor, subject, detail, "127.0.0.1")
            .await
            .unwrap();
    }
    let all = store.audit_log(100).await.unwrap();
    assert_eq!(all.len(), entries.len());
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(all[0].kind, "sessionless");
    let q = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit_query(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.kind, e.actor, e.subject))
                .collect::<Vec<_>>()
        }
    };
    let base = AuditFilter::newest(100);
    let kinds = |v: Vec<(String, String, String)>| v.into_iter().map(|e| e.0).collect::<Vec<_>>();

    let exact = q(AuditFilter {
        kind: Some("session.ended".into()),
        ..base.clone()
    })
    .await;
    assert_eq!(exact.len(), 2);
    assert_eq!(exact[0].1, "bob", "newest first");
    let prefix = q(AuditFilter {
        kind_prefix: Some("session.".into()),
        ..base.clone()
    })
    .await;
    assert_eq!(
        kinds(prefix),
        ["session.started", "session.ended", "session.ended"]
    );
    // an empty prefix (`kind=*`) matches everything
    assert_eq!(
        q(AuditFilter {
            kind_prefix: Some(String::new()),
            ..base.clone()
        })
        .await
        .len(),
        entries.len()
    );
    // `_` and `%` are not wildcards
    assert!(
        q(AuditFilter {
            kind_prefix: Some("session_".into()),
            ..base.clone()
        })
        .await
        .is_empty()
    );
    let alice = q(AuditFilter {
        actor: Some("alice".into()),
        ..base.clone()
    })
    .await;
    assert_eq!(alice.len(), 3);
    let pump1 = q(AuditFilter {
        subject: Some("Pump1/ssh".into()),
        kind: Some("session.ended".into()),
        ..base.clone()
    })
    .await;
    assert_eq!(pump1.len(), 1);
    let by_thing = q(AuditFilter {
        subject_prefix: Some("Pump2/".into()),
        ..base.clone()
    })
    .await;
    assert_eq!(by_thing.len(), 1);
    // text: case-insensitive over kind, actor, subject, detail; literal % and _
    assert_eq!(
        kinds(
            q(AuditFilter {
                text: Some("hello world".into()),
                ..base.clone()
            })
            .await
        ),
        ["session.started"]
    );
    assert_eq!(
        q(AuditFilter {
            text: Some("CAROL".into()),
            ..base.clone()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        kinds(
            q(AuditFilter {
                text: Some("0%_".into()),
                ..base.clone()
            })
            .await
        ),
        ["sessionless"]
    );
    assert_eq!(
        q(AuditFilter {
            text: Some("pump".into()),
            ..base.clone()
        })
        .await
        .len(),
        3
    );
    assert!(
        q(AuditFilter {
            text: Some("%".into()),
            kind: Some("login".into()),
            ..base.clone()
        })
        .await
        .is_empty()
    );
    // paging
    let page = store
        .audit_query(&AuditFilter {
            limit: 2,
            offset: 1,
            ..base.clone()
        })
        .await
        .unwrap();
    assert_eq!(page, all[1..3].to_vec());
    // time window: since inclusive, until exclusive
    let t = all[3].time;
    let since = store
        .audit_query(&AuditFilter {
            since: Some(t),
            ..base.clone()
        })
        .await
        .unwrap();
    let want: Vec<_> = all.iter().filter(|e| e.time >= t).cloned().collect();
    assert_eq!(since, want);
    let until = store
        .audit_query(&AuditFilter {
            until: Some(t),
            ..base.clone()
        })
        .await
        .unwrap();
    let want: Vec<_> = all.iter().filter(|e| e.time < t).cloned().collect();
    assert_eq!(until, want);
    assert!(
        store
            .audit_query(&AuditFilter {
                since: Some(t),
                until: Some(t),
                ..base.clone()
            })
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

async fn text_round_trips_exactly(db: &TestDb) {
    let store = db.open().await;
    let odd = "Ünïcødé 'quoted' \"double\" \\ back; DROP TABLE things; -- 🚀";
    store
        .create_thing(&NewThing {
            name: odd.into(),
            identifier: Some(format!("id {odd}")),
            template: Template::RemoteThing,
            description: odd.into(),
        })
        .await
        .unwrap();
    let t = store.thing(odd).await.unwrap().unwrap();
    assert_eq!((t.name.as_str(), t.description.as_str()), (odd, odd));
    let value = serde_json::json!({"s": odd, "n": [1.5, -2, null], "b": true, "big": i64::MAX});
    store
        .upsert_properties(
            odd,
            &[PropertyValue {
                name: odd.into(),
                base_type: "JSON".into(),
                value: value.clone(),
                time: i64::MAX,
                quality: "GOOD".into(),
            }],
        )
        .await
        .unwrap();
    let p = &store.properties(odd).await.unwrap()[0];
    assert_eq!(
        (&p.name, &p.value, p.time),
        (&odd.to_owned(), &value, i64::MAX)
    );
    store.audit(odd, odd, odd, odd, odd).await.unwrap();
    let e = &store.audit_log(1).await.unwrap()[0];
    assert_eq!(
        (&e.kind, &e.actor, &e.subject, &e.detail, &e.peer),
        (
            &odd.to_owned(),
            &odd.to_owned(),
            &odd.to_owned(),
            &odd.to_owned(),
            &odd.to_owned()
        )
    );
    store.close().await;
}

async fn concurrent_writers(db: &TestDb) {
    let store = db.open().await;
    store.create_thing(&thing("Busy", None)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store: Store = store.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    let v = PropertyValue {
                        name: format!("p{i}"),
                        base_type: "INTEGER".into(),
                        value: serde_json::json!(j),
                        time: j,
                        quality: "GOOD".into(),
                    };
                    store.upsert_properties("Busy", &[v]).await.unwrap();
                    store.audit("write", "t", "Busy", "", "").await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let props = store.properties("Busy").await.unwrap();
    assert_eq!(props.len(), 16);
    assert!(props.iter().all(|p| p.value == serde_json::json!(9)));
    assert_eq!(store.audit_log(1000).await.unwrap().len(), 160);
    store.close().await;
}

#[tokio::test]
async fn backends_are_picked_by_url_scheme() {
    let db = TestDb::new(Kind::Sqlite).await.unwrap();
    let store = Store::open_url(&db.url()).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    store.close().await;
    assert!(matches!(
        Store::open_url("mysql://localhost/x").await,
        Err(StoreError::Url(_))
    ));
    if let Some(db) = TestDb::new(Kind::Postgres).await {
        let store = Store::open_url(&db.url()).await.unwrap();
        assert_eq!(store.backend_name(), "postgres");
        store.close().await;
    }
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error_not_a_hang() {
    // a port nothing listens on: bind one, note it, close it
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let r = Store::open_postgres(&format!("postgres://u:p@127.0.0.1:{port}/db")).await;
    assert!(matches!(r, Err(StoreError::Database(_))), "{:?}", r.err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "fails fast"
    );
}

/// The platform over this backend, through its public interfaces: things
/// and properties over REST, an AlwaysOn edge binding and pushing, audit
/// filters, app-key expiry, and a restart that keeps it all.
async fn platform_flow_over_rest_and_an_edge(db: &TestDb) {
    use alwayson::{Code, InfoTable, Primitive};
    use serde_json::{Value, json};

    const T: std::time::Duration = std::time::Duration::from_secs(5);
    let p = support::platform::spawn(db, |_| {}).await;
    let http = p.http();
    let admin = |r: reqwest::RequestBuilder| r.basic_auth(ADMIN, Some(ADMIN_PASSWORD));

    let r = admin(http.post(p.url("/api/v1/things")))
        .json(&json!({"name": "Pump9", "identifier": "SN9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = admin(http.post(p.url("/api/v1/things")))
        .json(&json!({"name": "Pump9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a duplicate thing is a conflict");

    // a disconnected thing stores what is written
    let r = http
        .put(p.url("/Thingworx/Things/Pump9/Properties/Speed"))
        .header("appKey", &p.app_key)
        .json(&json!({"Speed": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .put(p.url("/Thingworx/Things/Pump9/Properties/*"))
        .header("appKey", &p.app_key)
        .json(&json!({"Mode": "auto", "On": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = http
        .get(p.url("/Thingworx/Things/Pump9/Properties"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"][0]["Speed"], json!(7.0));
    assert_eq!(v["rows"][0]["Mode"], json!("auto"));
    assert_eq!(v["rows"][0]["On"], json!(true));
    assert!(v["rows"][0].get("*").is_none());

    // an edge binds: reads go to it, its pushes are stored
    let e = test_support::TestEdge::connect_auth(&p.ws_url, p.client_tls.clone(), &p.app_key)
        .await
        .unwrap();
    e.set_handler(|code, req| match (code, req.target.as_str()) {
        (Code::GET, "Temp") => (
            Code::SUCCESS,
            Some(InfoTable::single_row([("Temp", Primitive::Number(22.5))])),
        ),
        _ => (Code::NOT_FOUND, None),
    });
    assert_eq!(e.bind(&["Pump9"]).await.unwrap().header.code, Code::SUCCESS);
    assert!(
        p.platform
            .store()
            .thing("Pump9")
            .await
            .unwrap()
            .unwrap()
            .is_connected
    );
    let v: Value = http
        .get(p.url("/Thingworx/Things/Pump9/Properties/Temp"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"][0]["Temp"], json!(22.5));
    e.push_properties(
        "Pump9",
        &[alwayson::PropertyValue {
            name: "Temp".into(),
            value: Primitive::Number(19.0),
            time: 7,
            quality: "GOOD".into(),
        }],
    )
    .await
    .unwrap();
    e.close().await.unwrap();
    assert!(
        test_support::wait_for(T, || async {
            p.platform.registry().binding("Pump9").is_none()
        })
        .await
    );
    let v: Value = http
        .get(p.url("/Thingworx/Things/Pump9/Properties/Temp"))
        .header("appKey", &p.app_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"][0]["Temp"], json!(19.0));

    // audit filters and an app-key expiry change
    let log: Value = admin(http.get(p.url("/api/v1/audit?kind=admin.*&q=pump9")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["kind"], "admin.thing.add");
    let r = admin(http.post(p.url("/api/v1/appkeys")))
        .json(&json!({"name": "script"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let until = platform::model::now_ms() + 3_600_000;
    let k: Value = admin(http.patch(p.url("/api/v1/appkeys/script")))
        .json(&json!({"expires_at": until}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(k["expires_at"], json!(until));
    let platform = p.platform.clone();
    p.shutdown().await;
    platform.store().close().await;

    // a restart on the same database keeps it all
    let p = support::platform::spawn(db, |_| {}).await;
    let t = p
        .platform
        .store()
        .thing_by_identifier("SN9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.name, "Pump9");
    assert!(!t.is_connected, "no socket survives a restart");
    assert!(t.last_connection.is_some());
    let names: Vec<String> = p
        .platform
        .store()
        .properties("Pump9")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["Mode", "On", "Speed", "Temp"]);
    let keys = p.platform.store().list_app_keys().await.unwrap();
    assert!(
        keys.iter()
            .any(|k| k.name == "script" && k.expires_at == Some(until))
    );
    p.shutdown().await;
}

/// `tether-platform admin --database-url …` works on this backend.
async fn admin_cli_by_database_url(db: &TestDb) {
    use platform::admin::{AdminArgs, AdminCommand, ThingCommand, run};
    let args = |command| AdminArgs {
        data_dir: None,
        database_url: Some(db.url()),
        config: None,
        json: false,
        command,
    };
    let out = run(args(AdminCommand::Thing(ThingCommand::Add {
        name: "CliThing".into(),
        identifier: None,
        template: Template::RemoteThing,
        description: String::new(),
    })))
    .await
    .unwrap();
    assert!(out.contains("CliThing"), "{out}");
    let out = run(args(AdminCommand::Thing(ThingCommand::List)))
        .await
        .unwrap();
    assert!(out.contains("CliThing"), "{out}");
    let store = db.open().await;
    assert!(store.thing("CliThing").await.unwrap().is_some());
    store.close().await;
    let mut bad = args(AdminCommand::Audit { limit: 1 });
    bad.database_url = Some("mysql://x/y".into());
    assert!(matches!(
        run(bad).await,
        Err(platform::admin::AdminError::Invalid(m)) if m.contains("--database-url")
    ));
    let mut none = args(AdminCommand::Audit { limit: 1 });
    none.database_url = None;
    assert!(matches!(
        run(none).await,
        Err(platform::admin::AdminError::Invalid(_))
    ));
}

#[tokio::test]
async fn admin_cli_reads_the_database_from_the_config_file() {
    let db = TestDb::new(Kind::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("platform.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[database]\nurl = \"{}\"\n",
            dir.path().join("unused").display(),
            db.url()
        ),
    )
    .unwrap();
    let store = db.open().await;
    store.create_user("zoe", "h", Role::Viewer).await.unwrap();
    store.close().await;
    let out = platform::admin::run(platform::admin::AdminArgs {
        data_dir: None,
        database_url: None,
        config: Some(config),
        json: false,
        command: platform::admin::AdminCommand::User(platform::admin::UserCommand::List),
    })
    .await
    .unwrap();
    assert!(out.contains("zoe"), "{out}");
}

/// `sslmode=require` works (TLS over rustls/ring) when the server has TLS on.
#[tokio::test]
async fn postgres_over_tls() {
    use sqlx::Connection as _;
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let url = db.url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    if ssl != "on" {
        eprintln!("skipped: the PostgreSQL server has ssl = {ssl}");
        return;
    }
    let store = Store::open_url(&format!("{url}&sslmode=require"))
        .await
        .unwrap();
    store.create_user("tls", "h", Role::Viewer).await.unwrap();
    assert!(store.user_with_hash("tls").await.unwrap().is_some());
    store.close().await;
    // and a server certificate that no root vouches for is refused under verify-full
    let r = Store::open_url(&format!("{url}&sslmode=verify-full")).await;
    assert!(
        r.is_err(),
        "a self-signed server certificate must not verify"
    );
}

/// `admin copy-to`: an SQLite store copied into this backend keeps every
/// entity, hash, id and time; new rows get fresh ids; a non-empty target is
/// refused.
async fn copy_from_sqlite_keeps_everything(db: &TestDb) {
    let src_db = TestDb::new(Kind::Sqlite).await.unwrap();
    let src = src_db.open().await;
    src.create_user("ann", "hash-a", Role::Administrator)
        .await
        .unwrap();
    src.create_user("ben", "hash-b", Role::Viewer)
        .await
        .unwrap();
    src.delete_user("ben").await.unwrap(); // a gap in the ids
    src.create_user("cat", "hash-c", Role::Operator)
        .await
        .unwrap();
    src.create_app_key(
        &NewAppKey {
            name: "k".into(),
            user: "cat".into(),
            expires_at: Some(4_000_000_000_000),
            allowed_addresses: vec!["10.0.0.0/8".into()],
            thing_patterns: vec!["P*".into()],
        },
        "khash",
    )
    .await
    .unwrap();
    src.revoke_app_key("k").await.unwrap();
    src.create_thing(&thing("P1", Some("SN1"))).await.unwrap();
    src.create_ephemeral_thing("GW", Template::EmsGateway)
        .await
        .unwrap();
    src.set_connected("P1", true, 777).await.unwrap();
    src.upsert_properties(
        "P1",
        &[PropertyValue {
            name: "T".into(),
            base_type: "NUMBER".into(),
            value: serde_json::json!(1.5),
            time: 5,
            quality: "GOOD".into(),
        }],
    )
    .await
    .unwrap();
    src.put_interface(
        "P1",
        &RemoteInterface {
            name: "vnc".into(),
            host: "10.1.2.3".into(),
            port: 5900,
            protocol: Protocol::Vnc,
            description: "screen".into(),
        },
    )
    .await
    .unwrap();
    for i in 0..1205 {
        src.audit("k", "a", &format!("s{i}"), "", "").await.unwrap();
    }

    let out = platform::admin::run_with_store(
        &src,
        platform::admin::AdminCommand::CopyTo { url: db.url() },
        true,
    )
    .await
    .unwrap();
    let counts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        counts,
        serde_json::json!({"users": 2, "app_keys": 1, "things": 2, "properties": 1,
            "interfaces": 1, "audit_entries": 1205})
    );

    let dst = db.open().await;
    assert_eq!(
        dst.list_users().await.unwrap(),
        src.list_users().await.unwrap()
    );
    assert_eq!(
        dst.user_with_hash("cat").await.unwrap(),
        src.user_with_hash("cat").await.unwrap()
    );
    assert_eq!(
        dst.app_key_by_hash("khash").await.unwrap(),
        src.app_key_by_hash("khash").await.unwrap()
    );
    assert_eq!(
        dst.list_things().await.unwrap(),
        src.list_things().await.unwrap()
    );
    assert_eq!(
        dst.properties("P1").await.unwrap(),
        src.properties("P1").await.unwrap()
    );
    assert_eq!(
        dst.interfaces("P1").await.unwrap(),
        src.interfaces("P1").await.unwrap()
    );
    assert_eq!(
        dst.audit_log(10_000).await.unwrap(),
        src.audit_log(10_000).await.unwrap()
    );
    // new rows continue above the copied ids
    let max_user = src
        .list_users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .max()
        .unwrap();
    assert!(dst.create_user("dan", "h", Role::Viewer).await.unwrap().id > max_user);
    let max_thing = src
        .list_things()
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .max()
        .unwrap();
    assert!(dst.create_thing(&thing("P2", None)).await.unwrap().id > max_thing);
    dst.create_app_key(&key("k2", "dan"), "k2hash")
        .await
        .unwrap();
    dst.audit("after", "a", "s", "", "").await.unwrap();
    let newest = &dst.audit_log(1).await.unwrap()[0];
    assert_eq!(newest.kind, "after");
    dst.close().await;

    // the target is not empty now: refused, nothing written
    let r = platform::admin::run_with_store(
        &src,
        platform::admin::AdminCommand::CopyTo { url: db.url() },
        false,
    )
    .await;
    assert!(
        matches!(
            r,
            Err(platform::admin::AdminError::Store(StoreError::Conflict(_)))
        ),
        "{r:?}"
    );
    src.close().await;
}
