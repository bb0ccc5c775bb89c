-- Station settings made by hospital IT in the window (ward profile, latching alarm codes): one
-- row per key, with who changed it last. Read at start-up; every change is also audited.
CREATE TABLE station_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
