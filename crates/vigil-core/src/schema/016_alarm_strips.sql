-- Vigil schema 016: alarm strips saved automatically (issue 16, vigil_core::report::auto). One
-- row per alarm episode (bed, alarm id, onset) whose strip the station saved, or failed to save
-- (`error`): each is tried once, and a restart does not save a strip twice.
CREATE TABLE alarm_strips (
    id        INTEGER PRIMARY KEY,
    ward      TEXT NOT NULL,
    bed       TEXT NOT NULL,
    alarm_id  TEXT NOT NULL,
    onset_ms  INTEGER NOT NULL,
    saved_ms  INTEGER NOT NULL,
    -- the file's name in the strip directory; NULL when it could not be saved
    file      TEXT,
    error     TEXT,
    UNIQUE (ward, bed, alarm_id, onset_ms)
);
-- The strip saver looks for the raises of the last day.
CREATE INDEX alarm_events_time ON alarm_events (t_ms);
