-- Vigil schema 013: what a clinician reviews of remote patients (issue 15,
-- vigil_core::remote::review).

-- Findings to review: a remote patient's reading outside the bed's limits, or a care plan's
-- change rule that turned true (weight gain, systolic above target on N of the last M). Home
-- readings arrive hours late as often as live: a breach is kept here whatever its age, and one
-- that reached the station too late to sound (`stale`: received more than the live window after
-- it was taken) is only here, never a live alarm. A finding awaits review until a clinician
-- reviews the patient (`review`).
CREATE TABLE remote_findings (
    id           INTEGER PRIMARY KEY,
    patient      INTEGER NOT NULL REFERENCES remote_patients (id),
    -- limit | rule
    kind         TEXT NOT NULL,
    -- the limit's code (SPO2_low) or the rule's id
    rule         TEXT NOT NULL,
    -- the vital (contract code)
    code         TEXT NOT NULL,
    -- the reading: when taken (device time), when the station received it, its value
    t_ms         INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    value        REAL NOT NULL,
    -- the limit's priority (high | medium | low); a rule's finding is medium
    priority     TEXT NOT NULL,
    detail       TEXT NOT NULL,
    stale        INTEGER NOT NULL CHECK (stale IN (0, 1)),
    found_ms     INTEGER NOT NULL,
    review       INTEGER REFERENCES remote_reviews (id),
    UNIQUE (patient, kind, rule, t_ms)
);
CREATE INDEX remote_findings_open ON remote_findings (patient) WHERE review IS NULL;

-- A clinician's review of a remote patient (audited): what they did, with a note. It closes the
-- findings standing when it was made. The latest review's action says whether the patient is
-- escalated.
CREATE TABLE remote_reviews (
    id       INTEGER PRIMARY KEY,
    patient  INTEGER NOT NULL REFERENCES remote_patients (id),
    -- reviewed_no_action | called_patient | escalated
    action   TEXT NOT NULL,
    note     TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    by       TEXT NOT NULL
);
CREATE INDEX remote_reviews_patient ON remote_reviews (patient, at_ms);

-- Time a clinician had a remote patient's record open (opened and closed, both audited): the
-- review minutes remote-monitoring programmes count. `to_ms` NULL while open.
CREATE TABLE remote_record_views (
    id       INTEGER PRIMARY KEY,
    patient  INTEGER NOT NULL REFERENCES remote_patients (id),
    user     TEXT NOT NULL,
    from_ms  INTEGER NOT NULL,
    to_ms    INTEGER
);
CREATE INDEX remote_record_views_patient ON remote_record_views (patient, from_ms);

-- How far the findings scan has read the numerics table (its row id): each reading is checked
-- once, when it is stored, whatever its age.
CREATE TABLE remote_scan (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    numerics_id INTEGER NOT NULL
);

-- The stays the scan has caught up with: a stay enrolled after its bed's readings were stored
-- (a history uploaded first, a device registered before the enrolment) has the readings of its
-- stay stored before the scan's cursor checked once, when the scan first sees it.
CREATE TABLE remote_scan_stays (
    patient     INTEGER PRIMARY KEY REFERENCES remote_patients (id),
    numerics_id INTEGER NOT NULL
);
