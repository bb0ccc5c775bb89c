-- Vigil schema 011: remote patients (issue 15), at home or seen by a mobile clinic
-- (vigil_core::remote). A remote ward's beds are patients: `ward`/`bed` is the BedId their
-- readings are stored and alarmed under. The devices that feed one are the device registry's
-- rows for that bed (schema 002), registered as for a ward bed.

-- One row per remote stay, as `patients` has one per admission: enrolled, then discharged. At
-- most one current (not discharged) stay per bed and per MRN. A bed key is never given to
-- another MRN (checked in remote.rs): its history and its devices stay one patient's.
CREATE TABLE remote_patients (
    id            INTEGER PRIMARY KEY,
    ward          TEXT NOT NULL,
    bed           TEXT NOT NULL,
    mrn           TEXT NOT NULL,
    name          TEXT NOT NULL,
    -- YYYY-MM-DD, the second identifier
    dob           TEXT NOT NULL,
    -- the patient's IANA time zone: the clock of their care plan's windows
    tz            TEXT NOT NULL,
    enrolled_ms   INTEGER NOT NULL,
    enrolled_by   TEXT NOT NULL,
    discharged_ms INTEGER,
    discharged_by TEXT
);
CREATE UNIQUE INDEX remote_patients_current_bed ON remote_patients (ward, bed)
    WHERE discharged_ms IS NULL;
CREATE UNIQUE INDEX remote_patients_current_mrn ON remote_patients (mrn)
    WHERE discharged_ms IS NULL;
CREATE INDEX remote_patients_bed ON remote_patients (ward, bed);

-- Monitoring paused (a hospital stay, travel): one row per pause, open while to_ms is NULL; a
-- paused stay's slots are neither due nor missed. At most one open pause per stay.
CREATE TABLE remote_pauses (
    id       INTEGER PRIMARY KEY,
    patient  INTEGER NOT NULL REFERENCES remote_patients (id),
    from_ms  INTEGER NOT NULL,
    from_by  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    to_ms    INTEGER,
    to_by    TEXT
);
CREATE UNIQUE INDEX remote_pauses_open ON remote_pauses (patient) WHERE to_ms IS NULL;

-- Care plans: every version of a stay's plan is kept as set (slot outcomes name the version
-- they were evaluated under). `plan` is a vigil_schedule::Plan as JSON (its zone and items),
-- read back through the schedule's one validator. Versions count from 1 per stay.
CREATE TABLE care_plans (
    patient  INTEGER NOT NULL REFERENCES remote_patients (id),
    version  INTEGER NOT NULL CHECK (version >= 1),
    plan     TEXT NOT NULL,
    set_ms   INTEGER NOT NULL,
    set_by   TEXT NOT NULL,
    PRIMARY KEY (patient, version)
);
CREATE TRIGGER care_plans_kept_update BEFORE UPDATE ON care_plans
BEGIN SELECT RAISE(ABORT, 'care plan versions are kept as set'); END;
CREATE TRIGGER care_plans_kept_delete BEFORE DELETE ON care_plans
BEGIN SELECT RAISE(ABORT, 'care plan versions are kept as set'); END;
