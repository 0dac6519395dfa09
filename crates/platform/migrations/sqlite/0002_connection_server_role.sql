-- Adds the `connection-server` role (tether-cxserver links). SQLite cannot
-- change a CHECK constraint in place: users is rebuilt, and app_keys with it
-- (its foreign key must follow the new table; dropping users while app_keys
-- still referenced it would cascade-delete every key). Ids are kept.
CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('administrator', 'operator', 'viewer', 'connection-server')),
    created_at    INTEGER NOT NULL
);
INSERT INTO users_new (id, name, password_hash, role, created_at)
    SELECT id, name, password_hash, role, created_at FROM users;

CREATE TABLE app_keys_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL UNIQUE,
    key_hash          TEXT NOT NULL UNIQUE,
    user_id           INTEGER NOT NULL REFERENCES users_new(id) ON DELETE CASCADE,
    expires_at        INTEGER,
    allowed_addresses TEXT NOT NULL DEFAULT '[]',
    thing_patterns    TEXT NOT NULL DEFAULT '[]',
    revoked           INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);
INSERT INTO app_keys_new (id, name, key_hash, user_id, expires_at, allowed_addresses,
                          thing_patterns, revoked, created_at)
    SELECT id, name, key_hash, user_id, expires_at, allowed_addresses,
           thing_patterns, revoked, created_at FROM app_keys;

DROP TABLE app_keys;
DROP TABLE users;
-- Renaming also rewrites app_keys_new's REFERENCES users_new → users.
ALTER TABLE users_new RENAME TO users;
ALTER TABLE app_keys_new RENAME TO app_keys;
