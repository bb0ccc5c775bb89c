-- Vigil schema 015: medication dose events from connected dispensers (issue 15; contract
-- `vigil/v1/{ward}/{bed}/{device}/dose`, vigil_contract::dose). Kept like trends (pruned with
-- numerics); a care plan's dose item is met by a `taken` or `late` event of its medication
-- (vigil_core::remote::watch).
CREATE TABLE doses (
    id           INTEGER PRIMARY KEY,
    ward         TEXT NOT NULL,
    bed          TEXT NOT NULL,
    device       TEXT NOT NULL,
    -- the medication id (vigil_contract::dose::parse_medication)
    medication   TEXT NOT NULL,
    -- taken | late | missed, as the dispenser reports it
    event        TEXT NOT NULL CHECK (event IN ('taken', 'late', 'missed')),
    -- when it happened on the dispenser (UTC ms)
    t_ms         INTEGER NOT NULL,
    -- when the dispenser had it scheduled, if it says
    due_ms       INTEGER,
    -- when the station received it: a buffered upload is told from an event sent on time
    received_ms  INTEGER NOT NULL
);
-- A QoS 1 redelivery (or a dispenser's re-upload) is the same event: stored once.
CREATE UNIQUE INDEX doses_event ON doses (device, medication, event, t_ms);
CREATE INDEX doses_bed_time ON doses (ward, bed, t_ms);
CREATE INDEX doses_time ON doses (t_ms);
