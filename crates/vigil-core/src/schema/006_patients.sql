-- Admit / discharge / transfer (issue 6). One row per stay; a transfer moves the current row
-- to the new bed. At most one current (not discharged) patient per bed and per MRN.
CREATE TABLE patients (
    id            INTEGER PRIMARY KEY,
    ward          TEXT NOT NULL,
    bed           TEXT NOT NULL,
    mrn           TEXT NOT NULL,
    name          TEXT NOT NULL,
    dob           TEXT,
    admitted_ms   INTEGER NOT NULL,
    admitted_by   TEXT NOT NULL,
    discharged_ms INTEGER,
    discharged_by TEXT
);
CREATE UNIQUE INDEX patients_current_bed ON patients (ward, bed) WHERE discharged_ms IS NULL;
CREATE UNIQUE INDEX patients_current_mrn ON patients (mrn) WHERE discharged_ms IS NULL;
