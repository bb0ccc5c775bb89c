-- Vigil schema 012: silence is an alarm (issue 15, vigil_core::remote::watch).

-- When the station received each reading (ms since the epoch, its own clock): a reading taken
-- inside a schedule window but received after it (a buffered upload) resolves the slot as
-- "received late", not on time. NULL for readings stored before this column existed (read as
-- received when taken).
ALTER TABLE numerics ADD COLUMN received_ms INTEGER;

-- The alerts of remote patients' care plans, apart from the physiological alarms (acknowledging
-- one never silences the other). One row per missed slot (`item` and the slot's local date and
-- index: a slot is missed at most once) and per silence of a patient's devices (`item` is
-- `devices`, `slot_date` the instant the silence began, RFC 3339). Raised as a warning,
-- escalated to urgent, resolved when what was missing arrives (or the stay ends); the row stays
-- as history.
CREATE TABLE remote_alerts (
    id            INTEGER PRIMARY KEY,
    patient       INTEGER NOT NULL REFERENCES remote_patients (id),
    -- missed_reading | missed_dose | device_silent
    kind          TEXT NOT NULL,
    item          TEXT NOT NULL,
    slot_date     TEXT NOT NULL,
    slot_index    INTEGER NOT NULL,
    -- the care plan version the slot was evaluated under (NULL for device_silent)
    plan_version  INTEGER,
    -- the slot's window (UTC ms); for device_silent, the last data and when silence was declared
    from_ms       INTEGER NOT NULL,
    to_ms         INTEGER NOT NULL,
    -- warning | urgent
    level         TEXT NOT NULL,
    raised_ms     INTEGER NOT NULL,
    urgent_ms     INTEGER,
    resolved_ms   INTEGER,
    -- received_late | taken_late | data_received | discharged
    resolution    TEXT,
    -- the reading that resolved it: when it was taken
    resolved_by_ms INTEGER,
    UNIQUE (patient, item, slot_date, slot_index)
);
CREATE INDEX remote_alerts_open ON remote_alerts (patient) WHERE resolved_ms IS NULL;
