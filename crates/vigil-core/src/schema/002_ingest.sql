-- Vigil schema v2: result status, gaps, the device registry, retention indexes.

-- Result status of each reading (FHIR status / HL7 OBX-11). Only final, amended, corrected and
-- unverified (live device) readings are alarmed on; the others are kept for the record. A later
-- status of the same reading (e.g. a cancellation) is a new row: the key includes the status.
CREATE TABLE numerics_v2 (
    id      INTEGER PRIMARY KEY,
    ward    TEXT NOT NULL,
    bed     TEXT NOT NULL,
    device  TEXT NOT NULL,
    t_ms    INTEGER NOT NULL,
    mdc     INTEGER NOT NULL,
    code    TEXT NOT NULL,
    value   REAL,
    unit    TEXT NOT NULL,
    status  TEXT NOT NULL DEFAULT 'final',
    UNIQUE (device, mdc, t_ms, status)
);
INSERT INTO numerics_v2 (id, ward, bed, device, t_ms, mdc, code, value, unit)
    SELECT id, ward, bed, device, t_ms, mdc, code, value, unit FROM numerics;
DROP TABLE numerics;
ALTER TABLE numerics_v2 RENAME TO numerics;
CREATE INDEX numerics_bed_code_time ON numerics (ward, bed, code, t_ms);

-- Waveform chunks that never arrived: a jump in a device's per-channel sequence numbers.
-- Chunks from first_seq to last_seq (inclusive) are missing.
CREATE TABLE gaps (
    id          INTEGER PRIMARY KEY,
    ward        TEXT NOT NULL,
    bed         TEXT NOT NULL,
    device      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    -- end of the last chunk before the gap and start of the first chunk after it
    from_ms     INTEGER NOT NULL,
    to_ms       INTEGER NOT NULL,
    detected_ms INTEGER NOT NULL
);
CREATE INDEX gaps_bed_channel_time ON gaps (ward, bed, channel, from_ms);

-- Devices allowed to send, and the bed each one feeds. When the registry is enforced, data
-- from a device not listed here (or listed for another bed) is rejected.
CREATE TABLE device_registry (
    device      TEXT PRIMARY KEY,
    ward        TEXT NOT NULL,
    bed         TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_ms  INTEGER NOT NULL
);

-- Retention prunes by time.
CREATE INDEX wave_chunks_time ON wave_chunks (t0_ms);
CREATE INDEX numerics_time ON numerics (t_ms);
