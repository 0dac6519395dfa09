use super::*;
use crate::model::{Protocol, Template};

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_dir(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn users_keys_things_round_trip_and_survive_reopen() {
    let (dir, store) = open().await;
    let u = store
        .create_user("alice", "hash", Role::Operator)
        .await
        .unwrap();
    assert_eq!(u.role, Role::Operator);
    assert!(matches!(
        store.create_user("alice", "h", Role::Viewer).await,
        Err(StoreError::Conflict(_))
    ));
    let key = store
        .create_app_key(
            &NewAppKey {
                name: "edge".into(),
                user: "alice".into(),
                thing_patterns: vec!["Pump*".into()],
                ..Default::default()
            },
            "kh",
        )
        .await
        .unwrap();
    assert_eq!(key.user, "alice");
    assert!(matches!(
        store
            .create_app_key(
                &NewAppKey {
                    name: "x".into(),
                    user: "nobody".into(),
                    ..Default::default()
                },
                "kh2"
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    let t = store
        .create_thing(&NewThing {
            name: "Pump1".into(),
            identifier: Some("SN1".into()),
            template: Template::RemoteThingWithTunnels,
            description: String::new(),
        })
        .await
        .unwrap();
    assert!(!t.is_connected);
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
                port: 22,
                protocol: Protocol::Ssh,
                description: String::new(),
            },
        )
        .await
        .unwrap();
    store
        .audit("bind", "edge", "Pump1", "", "127.0.0.1")
        .await
        .unwrap();
    store.close().await;

    let store = Store::open_sqlite_dir(dir.path()).await.unwrap();
    let (k, role) = store.app_key_by_hash("kh").await.unwrap().unwrap();
    assert_eq!((k.name.as_str(), role), ("edge", Role::Operator));
    assert_eq!(k.thing_patterns, vec!["Pump*".to_string()]);
    let t = store.thing_by_identifier("SN1").await.unwrap().unwrap();
    assert_eq!(t.name, "Pump1");
    assert!(t.is_connected);
    assert_eq!(t.last_connection, Some(1234));
    assert_eq!(store.disconnect_all().await.unwrap(), 1);
    let t = store.thing("Pump1").await.unwrap().unwrap();
    assert!(!t.is_connected);
    assert_eq!(t.last_connection, Some(1234));
    let props = store.properties("Pump1").await.unwrap();
    assert_eq!(props.len(), 1);
    assert_eq!(props[0].value, serde_json::json!(21.5));
    assert_eq!(store.interfaces("Pump1").await.unwrap()[0].port, 22);
    assert_eq!(store.audit_log(10).await.unwrap().len(), 1);

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
}

#[tokio::test]
async fn property_upsert_replaces() {
    let (_dir, store) = open().await;
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
    assert!(store.thing("GW").await.unwrap().unwrap().ephemeral);
}
