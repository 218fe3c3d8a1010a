-- Palaver schema, SQLite flavour. Keep in step with ../postgres/0001_initial.sql:
-- same tables, columns and constraints; only the types and identity syntax differ.
-- Timestamps are Unix milliseconds (INTEGER); booleans are BOOLEAN (0/1).
-- AUTOINCREMENT so an id is never reused after a delete (ids appear in URLs).

CREATE TABLE lines (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    extension    TEXT    NOT NULL UNIQUE,
    display_name TEXT    NOT NULL,
    password     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE rooms (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL,
    extension           TEXT    UNIQUE,
    access_pin          TEXT,
    host_pin            TEXT,
    max_participants    INTEGER NOT NULL DEFAULT 25 CHECK (max_participants BETWEEN 2 AND 1000),
    language            TEXT    NOT NULL DEFAULT 'en',
    mute_on_entry       BOOLEAN NOT NULL DEFAULT FALSE,
    wait_for_host       BOOLEAN NOT NULL DEFAULT FALSE,
    announce_join_leave BOOLEAN NOT NULL DEFAULT FALSE,
    announcement_upload TEXT,
    moh_upload          TEXT,
    allow_anonymous     BOOLEAN NOT NULL DEFAULT TRUE,
    recording_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    recording_autostart BOOLEAN NOT NULL DEFAULT FALSE,
    report_email        TEXT,
    follow_token_hash   TEXT    UNIQUE,
    control_token_hash  TEXT    UNIQUE,
    created_at          INTEGER NOT NULL
);

-- One namespace for the extensions of lines and rooms: the primary key makes
-- "already used by the other kind" a unique violation, race-free.
CREATE TABLE extensions (
    extension TEXT PRIMARY KEY,
    line_id   INTEGER UNIQUE REFERENCES lines(id) ON DELETE CASCADE,
    room_id   INTEGER UNIQUE REFERENCES rooms(id) ON DELETE CASCADE,
    CHECK ((line_id IS NULL) <> (room_id IS NULL))
);

CREATE TABLE bindings (
    line_id    INTEGER NOT NULL REFERENCES lines(id) ON DELETE CASCADE,
    contact    TEXT    NOT NULL,
    received   TEXT    NOT NULL,
    transport  TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    call_id    TEXT    NOT NULL,
    cseq       INTEGER NOT NULL,
    user_agent TEXT    NOT NULL DEFAULT '',
    instance   TEXT,
    PRIMARY KEY (line_id, contact)
);
CREATE INDEX bindings_expires_at ON bindings (expires_at);

CREATE TABLE trunks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    addresses  TEXT    NOT NULL DEFAULT '',
    host       TEXT,
    transport  TEXT    NOT NULL DEFAULT 'udp',
    username   TEXT,
    password   TEXT,
    register   BOOLEAN NOT NULL DEFAULT FALSE,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at INTEGER NOT NULL
);

-- destination_kind/destination_id instead of one foreign key per kind, so
-- queues, voicemail boxes and IVRs can become destinations without a
-- migration; the store checks the target exists inside the writing transaction.
CREATE TABLE numbers (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    number           TEXT    NOT NULL UNIQUE,
    destination_kind TEXT    NOT NULL,
    destination_id   TEXT    NOT NULL,
    trunk_id         INTEGER REFERENCES trunks(id) ON DELETE SET NULL,
    description      TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL
);
CREATE INDEX numbers_destination ON numbers (destination_kind, destination_id);

CREATE TABLE recordings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id      INTEGER REFERENCES rooms(id) ON DELETE SET NULL,
    room_name    TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    size_bytes   INTEGER NOT NULL DEFAULT 0,
    participants TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX recordings_room ON recordings (room_id, started_at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);

CREATE TABLE admin_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE cdrs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id          TEXT    NOT NULL,
    from_uri         TEXT    NOT NULL,
    to_uri           TEXT    NOT NULL,
    caller           TEXT    NOT NULL,
    callee           TEXT    NOT NULL,
    destination_kind TEXT    NOT NULL,
    started_at       INTEGER NOT NULL,
    answered_at      INTEGER,
    ended_at         INTEGER NOT NULL,
    disposition      TEXT    NOT NULL,
    duration_ms      INTEGER NOT NULL
);
CREATE INDEX cdrs_started_at ON cdrs (started_at);
