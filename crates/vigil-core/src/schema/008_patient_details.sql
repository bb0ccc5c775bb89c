-- Issue 12: the patient header a nurse checks (sex, pacemaker); date of birth becomes the
-- second identifier required at admission (checked in patients.rs, so older rows stay valid).
ALTER TABLE patients ADD COLUMN sex TEXT;
ALTER TABLE patients ADD COLUMN pacemaker INTEGER NOT NULL DEFAULT 0;
