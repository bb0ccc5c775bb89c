-- Vigil schema v3: users and the tamper-evident audit trail (docs/security.md).
-- Times are milliseconds since the Unix epoch (UTC).

-- Station users. Names are unique whatever their case ("Alice" and "alice" are one user).
-- password_hash is an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash);
-- the password itself is never stored.
CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role                 TEXT NOT NULL CHECK (role IN ('nurse', 'charge-nurse', 'admin')),
    password_hash        TEXT NOT NULL,
    enabled              INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    -- consecutive failed log-ins since the last success or lockout
    failed_count         INTEGER NOT NULL DEFAULT 0,
    -- locked out (too many failures) until this time; NULL = not locked out
    locked_until_ms      INTEGER,
    created_ms           INTEGER NOT NULL,
    updated_ms           INTEGER NOT NULL
);

-- The audit trail: append-only, each entry chained to the previous one.
-- hash = SHA-256 over the previous entry's hash and this entry's fields (encoding in
-- docs/security.md and vigil_core::audit::entry_hash); the first entry's prev_hash is 64 zeros.
-- ids are assigned by the writer as previous id + 1, so a deleted entry leaves a gap.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    t_ms      INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_time ON audit_log (t_ms);
CREATE INDEX audit_log_actor ON audit_log (actor, t_ms);

-- Defence in depth: the database itself refuses to change or remove an entry. Whoever can write
-- the file can still drop these triggers; `vigilctl audit verify` detects what they then change.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be changed');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END;
-- New entries only at the end, numbered previous id + 1: no gaps, and no overwriting an entry
-- with INSERT OR REPLACE (whose implicit delete does not fire the delete trigger).
CREATE TRIGGER audit_log_append_only BEFORE INSERT ON audit_log
WHEN NEW.id IS NOT (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: new entries take the next id');
END;
