-- Vigil schema 010: the ward's other stations, enrolled by IT, whose signed alarm state
-- (acknowledgements, audio pauses) this station accepts (vigil_core::stations, alarms::sync).
CREATE TABLE stations (
    -- the station's id: its MQTT client id, as it signs its messages
    station     TEXT PRIMARY KEY,
    -- its Ed25519 public key, 64 hex digits (`vigilctl station key` at that station)
    public_key  TEXT NOT NULL,
    -- the wards whose alarm state it may send, comma-separated
    wards       TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    enrolled_ms INTEGER NOT NULL,
    enrolled_by TEXT NOT NULL
);
