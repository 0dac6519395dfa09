-- Tether platform entity store, SQLite flavour. Times are milliseconds since the Unix epoch.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('administrator', 'operator', 'viewer')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE app_keys (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL UNIQUE,
    key_hash          TEXT NOT NULL UNIQUE,
    user_id           INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at        INTEGER,
    allowed_addresses TEXT NOT NULL DEFAULT '[]',
    thing_patterns    TEXT NOT NULL DEFAULT '[]',
    revoked           INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);

CREATE TABLE things (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    identifier      TEXT UNIQUE,
    template        TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    is_connected    INTEGER NOT NULL DEFAULT 0,
    last_connection INTEGER,
    ephemeral       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE TABLE properties (
    thing_id  INTEGER NOT NULL REFERENCES things(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    base_type TEXT NOT NULL,
    value     TEXT NOT NULL,
    time      INTEGER NOT NULL,
    quality   TEXT NOT NULL,
    PRIMARY KEY (thing_id, name)
);

CREATE TABLE remote_interfaces (
    thing_id    INTEGER NOT NULL REFERENCES things(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    protocol    TEXT NOT NULL CHECK (protocol IN ('ssh', 'vnc', 'tcp')),
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (thing_id, name)
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT '',
    peer    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log(time);
