-- Vigil schema v8: keyed audit entries and security events (docs/security.md).

-- HMAC-SHA256 of the entry's hash under the station's audit key, which is kept outside the
-- database (vigil_core::keys). NULL for entries written before the trail was keyed.
ALTER TABLE audit_log ADD COLUMN mac TEXT;

-- Suspicious activity, aggregated: one row per (kind, source) occurrence run that grows
-- (count, last_ms) instead of a row per message. IT acknowledges an event with a note; the next
-- occurrence after that opens a new event.
CREATE TABLE security_events (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    -- what the occurrences have in common: device, peer address, user, bed (empty if none)
    source     TEXT NOT NULL,
    bed        TEXT NOT NULL DEFAULT '',
    device     TEXT NOT NULL DEFAULT '',
    peer       TEXT NOT NULL DEFAULT '',
    user       TEXT NOT NULL DEFAULT '',
    first_ms   INTEGER NOT NULL,
    last_ms    INTEGER NOT NULL,
    count      INTEGER NOT NULL CHECK (count >= 1),
    -- the latest occurrence, for people
    detail     TEXT NOT NULL,
    ack_by     TEXT,
    ack_ms     INTEGER,
    ack_note   TEXT
);
CREATE INDEX security_events_last ON security_events (last_ms);
CREATE INDEX security_events_open ON security_events (ack_ms, severity);
