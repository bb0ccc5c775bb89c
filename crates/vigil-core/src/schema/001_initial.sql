-- Vigil schema v1. Times are milliseconds since the Unix epoch (UTC).

-- Devices seen on the ward, with their last reported status.
CREATE TABLE devices (
    device      TEXT PRIMARY KEY,
    ward        TEXT NOT NULL,
    bed         TEXT NOT NULL,
    online      INTEGER NOT NULL,
    conditions  TEXT NOT NULL DEFAULT '',
    updated_ms  INTEGER NOT NULL
);

-- Numeric readings. value NULL = "no reading" (never stored as 0).
-- One reading per device, code and time: a QoS 1 redelivery is ignored.
CREATE TABLE numerics (
    id      INTEGER PRIMARY KEY,
    ward    TEXT NOT NULL,
    bed     TEXT NOT NULL,
    device  TEXT NOT NULL,
    t_ms    INTEGER NOT NULL,
    mdc     INTEGER NOT NULL,
    code    TEXT NOT NULL,
    value   REAL,
    unit    TEXT NOT NULL,
    UNIQUE (device, mdc, t_ms)
);
CREATE INDEX numerics_bed_code_time ON numerics (ward, bed, code, t_ms);

-- Full-disclosure waveform chunks. Physical value = origin + factor * sample.
-- enc names the packing of data (i16le / i32le).
CREATE TABLE wave_chunks (
    id      INTEGER PRIMARY KEY,
    ward    TEXT NOT NULL,
    bed     TEXT NOT NULL,
    device  TEXT NOT NULL,
    channel TEXT NOT NULL,
    mdc     INTEGER NOT NULL,
    unit    TEXT NOT NULL,
    t0_ms   INTEGER NOT NULL,
    rate    REAL NOT NULL,
    seq     INTEGER NOT NULL,
    origin  REAL NOT NULL,
    factor  REAL NOT NULL,
    n       INTEGER NOT NULL,
    enc     TEXT NOT NULL,
    data    BLOB NOT NULL,
    UNIQUE (device, channel, t0_ms)
);
CREATE INDEX wave_bed_channel_time ON wave_chunks (ward, bed, channel, t0_ms);

-- Every alarm event (raise, clear, ...), append-only.
CREATE TABLE alarm_events (
    id          INTEGER PRIMARY KEY,
    t_ms        INTEGER NOT NULL,
    ward        TEXT NOT NULL,
    bed         TEXT NOT NULL,
    alarm_id    TEXT NOT NULL,
    code        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    priority    TEXT NOT NULL,
    value       REAL,
    limit_value REAL,
    message     TEXT NOT NULL
);
CREATE INDEX alarm_events_bed_time ON alarm_events (ward, bed, t_ms);

-- Refused payloads and observations, counted per reason.
CREATE TABLE rejects (
    reason      TEXT PRIMARY KEY,
    count       INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    last_detail TEXT NOT NULL
);
