-- Vigil schema 014: what the station tells remote patients (issue 15,
-- vigil_core::remote::engage): care-plan reminders (a reading due, a reading missed) and
-- clinicians' messages, published to the patient's own topic
-- (`vigil/v1/{ward}/{bed}/_patient/notice`); the patient's app or dispenser answers each with a
-- receipt (`.../_patient/receipt`), which records it as delivered.
CREATE TABLE remote_messages (
    id            INTEGER PRIMARY KEY,
    patient       INTEGER NOT NULL REFERENCES remote_patients (id),
    -- reminder | message
    kind          TEXT NOT NULL,
    -- a reminder's reason (due | missed) and slot; empty for a message
    reason        TEXT NOT NULL DEFAULT '',
    item          TEXT NOT NULL DEFAULT '',
    slot_date     TEXT NOT NULL DEFAULT '',
    slot_index    INTEGER NOT NULL DEFAULT 0,
    -- a reminder's measure (a vital's code) and window (UTC ms)
    measure       TEXT NOT NULL DEFAULT '',
    from_ms       INTEGER,
    to_ms         INTEGER,
    text          TEXT NOT NULL,
    -- who wrote a message (a reminder: the station)
    by            TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    -- handed to the broker (QoS 1); NULL until then
    sent_ms       INTEGER,
    -- the patient's receipt arrived
    delivered_ms  INTEGER
);
-- A reminder is sent once per slot and reason.
CREATE UNIQUE INDEX remote_messages_reminder ON remote_messages
    (patient, reason, item, slot_date, slot_index) WHERE kind = 'reminder';
CREATE INDEX remote_messages_unsent ON remote_messages (id) WHERE sent_ms IS NULL;
CREATE INDEX remote_messages_patient ON remote_messages (patient, created_ms);
