-- Per-patient alarm limits (issue 6): the limits a charge nurse set for a bed, loaded by the
-- engine on start so that they survive a restart. A bed listed in bed_limit_sets uses exactly
-- its rows in bed_limits (maybe none); any other bed uses the ward profile's defaults.
CREATE TABLE bed_limit_sets (
    ward   TEXT NOT NULL,
    bed    TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_ms INTEGER NOT NULL,
    PRIMARY KEY (ward, bed)
);
CREATE TABLE bed_limits (
    ward       TEXT NOT NULL,
    bed        TEXT NOT NULL,
    vital      TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('low', 'high')),
    threshold  REAL NOT NULL,
    priority   TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
    delay_ms   INTEGER NOT NULL,
    hysteresis REAL NOT NULL,
    PRIMARY KEY (ward, bed, vital, direction),
    FOREIGN KEY (ward, bed) REFERENCES bed_limit_sets (ward, bed) ON DELETE CASCADE
);
