//! Database URL parsing. The store's behaviour is tested on every backend in
//! `tests/store_backends.rs`.

use super::*;

#[test]
fn urls_pick_the_backend() {
    assert_eq!(
        Database::from_url("sqlite:/var/lib/tether/t.db", None).unwrap(),
        Database::Sqlite {
            path: "/var/lib/tether/t.db".into()
        }
    );
    assert_eq!(
        Database::from_url("sqlite://rel/t.db", None).unwrap(),
        Database::Sqlite {
            path: "rel/t.db".into()
        }
    );
    let pg = Database::from_url("postgres://u:pw@db.example:5433/tether", None).unwrap();
    assert_eq!(
        pg,
        Database::Postgres {
            url: "postgres://u:pw@db.example:5433/tether".into(),
            max_connections: DEFAULT_POSTGRES_POOL_SIZE,
        }
    );
    assert_eq!(pg.backend_name(), "postgres");
    assert!(matches!(
        Database::from_url("postgresql://h/db", Some(3)).unwrap(),
        Database::Postgres {
            max_connections: 3,
            ..
        }
    ));
    for bad in [
        "",
        "tether.db",
        "mysql://h/db",
        "sqlite:",
        "sqlite::memory:",
        "sqlite:/x.db?mode=ro",
        "postgres://h:99999999/db",
    ] {
        assert!(Database::from_url(bad, None).is_err(), "{bad}");
    }
    assert!(Database::from_url("postgres://h/db", Some(0)).is_err());
    assert!(Database::from_url("sqlite:/x.db", Some(2)).is_err());
}

#[test]
fn passwords_are_not_shown() {
    let pg = Database::from_url("postgres://tether:hunter2@db/tether", None).unwrap();
    assert_eq!(pg.redacted(), "postgres://tether:***@db/tether");
    assert!(!format!("{pg:?}").contains("hunter2"));
    let e = Database::from_url("mongodb://u:hunter2@h/x", None).unwrap_err();
    assert!(!e.contains("hunter2"), "{e}");
}
