//! Admit, discharge, transfer (schema 006, 008): who is in which bed. Admission takes two
//! identifiers (MRN and date of birth) and the header a nurse checks (sex, pacemaker). Every
//! change needs an
//! [`Authorized`] proof for [`Permission::AdmitDischargeTransfer`] and is recorded in the audit
//! trail in the same transaction (the entry names the MRN, not the patient's name).
//!
//! Identity is shown only to a session allowed to see the ward: [`Patient::masked`] gives what a
//! locked or logged-out screen may show (initials, no MRN). The masking itself is decided by the
//! caller from the session state.

use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

use crate::audit::{Audit, AuditError};
use crate::auth::{AuthError, Authorized, Permission};
use crate::store::in_tx;
use crate::telemetry::BedId;

/// Longest name or MRN accepted.
const MAX_TEXT: usize = 100;

#[derive(Debug, Error)]
pub enum PatientError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("bed {0} already has a patient; discharge or transfer first")]
    BedOccupied(String),
    #[error("no patient in bed {0}")]
    NoPatient(String),
    #[error("MRN {0} is already admitted to bed {1}")]
    MrnInUse(String, String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A patient currently in a bed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub bed: BedId,
    pub mrn: String,
    pub name: String,
    /// Date of birth, `YYYY-MM-DD` (required at admission since schema 008).
    pub dob: Option<String>,
    /// `F`, `M`, `X` (other) or `U` (unknown).
    pub sex: Option<String>,
    /// A pacemaker is fitted (the ECG shows pacer spikes; the heart rate may be the pacer's).
    pub pacemaker: bool,
    pub admitted_ms: i64,
}

/// What an admission records.
#[derive(Debug, Clone, Default)]
pub struct NewPatient<'a> {
    pub mrn: &'a str,
    pub name: &'a str,
    /// `YYYY-MM-DD`: the second identifier, required.
    pub dob: &'a str,
    /// `F`, `M`, `X` or `U`.
    pub sex: &'a str,
    pub pacemaker: bool,
}

/// A date of birth as typed: `YYYY-MM-DD`, a real date, not in the future, at most 130 years
/// before `now_ms`.
pub fn parse_dob(s: &str, now_ms: i64) -> Result<chrono::NaiveDate, PatientError> {
    let s = s.trim();
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| PatientError::Invalid(format!("date of birth {s:?}: expected YYYY-MM-DD")))?;
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.date_naive())
        .ok_or_else(|| PatientError::Invalid("station clock out of range".into()))?;
    if d > today {
        return Err(PatientError::Invalid(format!(
            "date of birth {s} is in the future"
        )));
    }
    if today.years_since(d).is_none_or(|y| y > 130) {
        return Err(PatientError::Invalid(format!(
            "date of birth {s} is more than 130 years ago"
        )));
    }
    Ok(d)
}

/// Age in whole years on the day of `now_ms` (None without a readable date of birth).
pub fn age_years(dob: &str, now_ms: i64) -> Option<u32> {
    let d = chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").ok()?;
    let today = chrono::DateTime::from_timestamp_millis(now_ms)?.date_naive();
    today.years_since(d)
}

impl Patient {
    /// What may be shown without the right to see identities: the initials, no MRN, no birth
    /// date ("Jane Q. Doe" → "J. Q. D.").
    pub fn masked(&self) -> Patient {
        Patient {
            bed: self.bed.clone(),
            mrn: String::new(),
            name: initials(&self.name),
            dob: None,
            // Not identifying, and clinically needed at a glance.
            sex: self.sex.clone(),
            pacemaker: self.pacemaker,
            admitted_ms: self.admitted_ms,
        }
    }
}

/// "Jane Q. Doe" → "J. Q. D."; "" → "".
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn clean(what: &str, s: &str) -> Result<String, PatientError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(PatientError::Invalid(format!("{what} is required")));
    }
    if s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(PatientError::Invalid(format!(
            "{what} must be at most {MAX_TEXT} printable characters"
        )));
    }
    Ok(s.to_string())
}

/// The patient in `bed` now, if any.
pub fn in_bed(conn: &Connection, bed: &BedId) -> Result<Option<Patient>, PatientError> {
    Ok(conn
        .query_row(
            "SELECT mrn, name, dob, admitted_ms, sex, pacemaker FROM patients
             WHERE ward = ?1 AND bed = ?2 AND discharged_ms IS NULL",
            params![bed.ward, bed.bed],
            |r| patient_from_row(bed.clone(), r, 0),
        )
        .optional()?)
}

/// The patient in `bed` from a row whose columns from `first` on are `mrn, name, dob,
/// admitted_ms, sex, pacemaker`.
fn patient_from_row(bed: BedId, r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Patient> {
    Ok(Patient {
        bed,
        mrn: r.get(first)?,
        name: r.get(first + 1)?,
        dob: r.get(first + 2)?,
        admitted_ms: r.get(first + 3)?,
        sex: r.get(first + 4)?,
        pacemaker: r.get(first + 5)?,
    })
}

/// Every patient currently admitted, by bed.
pub fn current(conn: &Connection) -> Result<Vec<Patient>, PatientError> {
    let mut q = conn.prepare(
        "SELECT ward, bed, mrn, name, dob, admitted_ms, sex, pacemaker FROM patients
         WHERE discharged_ms IS NULL ORDER BY ward, bed",
    )?;
    let rows = q.query_map([], |r| {
        let bed = BedId::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        patient_from_row(bed, r, 2)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Admit a patient to an empty bed: two identifiers (MRN and date of birth) required.
pub fn admit(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    new: &NewPatient<'_>,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    let user = auth.require(Permission::AdmitDischargeTransfer)?;
    let mrn = clean("MRN", new.mrn)?;
    let name = clean("name", new.name)?;
    if new.dob.trim().is_empty() {
        return Err(PatientError::Invalid(
            "date of birth is required (the second identifier)".into(),
        ));
    }
    let dob = Some(parse_dob(new.dob, now_ms)?.format("%Y-%m-%d").to_string());
    let sex = match new.sex.trim().to_ascii_uppercase().as_str() {
        "" | "U" => "U",
        "F" => "F",
        "M" => "M",
        "X" => "X",
        other => {
            return Err(PatientError::Invalid(format!(
                "sex {other:?}: expected F, M, X or U"
            )))
        }
    }
    .to_string();
    let pacemaker = new.pacemaker;
    in_tx(conn, |conn| {
        if in_bed(conn, bed)?.is_some() {
            return Err(PatientError::BedOccupied(bed.key()));
        }
        let other: Option<(String, String)> = conn
            .query_row(
                "SELECT ward, bed FROM patients WHERE mrn = ?1 AND discharged_ms IS NULL",
                [&mrn],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((w, b)) = other {
            return Err(PatientError::MrnInUse(mrn, BedId::new(w, b).key()));
        }
        conn.execute(
            "INSERT INTO patients (ward, bed, mrn, name, dob, admitted_ms, admitted_by, sex, pacemaker)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![bed.ward, bed.bed, mrn, name, dob, now_ms, user, sex, pacemaker],
        )?;
        Audit::append(
            conn,
            user,
            "patient_admit",
            &bed.key(),
            &format!("mrn={mrn}"),
            now_ms,
        )?;
        Ok(Patient {
            bed: bed.clone(),
            mrn,
            name,
            dob,
            sex: Some(sex),
            pacemaker,
            admitted_ms: now_ms,
        })
    })
}

/// Discharge the patient in `bed`.
pub fn discharge(
    conn: &Connection,
    auth: &Authorized,
    bed: &BedId,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    let user = auth.require(Permission::AdmitDischargeTransfer)?;
    in_tx(conn, |conn| {
        let p = in_bed(conn, bed)?.ok_or_else(|| PatientError::NoPatient(bed.key()))?;
        conn.execute(
            "UPDATE patients SET discharged_ms = ?3, discharged_by = ?4
             WHERE ward = ?1 AND bed = ?2 AND discharged_ms IS NULL",
            params![bed.ward, bed.bed, now_ms, user],
        )?;
        Audit::append(
            conn,
            user,
            "patient_discharge",
            &bed.key(),
            &format!("mrn={}", p.mrn),
            now_ms,
        )?;
        Ok(p)
    })
}

/// Move the patient in `from` to the empty bed `to`.
pub fn transfer(
    conn: &Connection,
    auth: &Authorized,
    from: &BedId,
    to: &BedId,
    now_ms: i64,
) -> Result<Patient, PatientError> {
    let user = auth.require(Permission::AdmitDischargeTransfer)?;
    if from == to {
        return Err(PatientError::Invalid(
            "transfer to the same bed: nothing to do".into(),
        ));
    }
    in_tx(conn, |conn| {
        let p = in_bed(conn, from)?.ok_or_else(|| PatientError::NoPatient(from.key()))?;
        if in_bed(conn, to)?.is_some() {
            return Err(PatientError::BedOccupied(to.key()));
        }
        conn.execute(
            "UPDATE patients SET ward = ?3, bed = ?4
             WHERE ward = ?1 AND bed = ?2 AND discharged_ms IS NULL",
            params![from.ward, from.bed, to.ward, to.bed],
        )?;
        Audit::append(
            conn,
            user,
            "patient_transfer",
            &from.key(),
            &format!("mrn={} to {}", p.mrn, to.key()),
            now_ms,
        )?;
        Ok(Patient {
            bed: to.clone(),
            ..p
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditFilter;
    use crate::auth::{Actor, AuthConfig, AuthService, Role};

    const PW: &str = "Ward4-station-test-2026!";
    /// 2026-06-01T00:00:00Z.
    const T: i64 = 1_780_272_000_000;

    /// A database with a charge nurse and a nurse, and the charge nurse's ADT proof.
    fn setup() -> (tempfile::TempDir, AuthService, Authorized) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut svc =
            AuthService::open(&dir.path().join("p.db"), AuthConfig::default()).expect("auth");
        let it = Actor::Local("test".into());
        svc.create_user(&it, "charge1", Role::ChargeNurse, PW, 0)
            .expect("user");
        let s = svc.login("charge1", PW, 1).expect("login");
        let ok = svc
            .authorize(Some(&s), Permission::AdmitDischargeTransfer, 2)
            .expect("authorized");
        (dir, svc, ok)
    }

    #[test]
    fn admit_transfer_discharge_with_audit() {
        let (_dir, svc, ok) = setup();
        let conn = svc.connection();
        let b1 = BedId::new("4W", "01");
        let b2 = BedId::new("4W", "02");
        let jane = NewPatient {
            mrn: " MRN-1 ",
            name: "Jane Q. Doe",
            dob: "1950-02-03",
            sex: "f",
            pacemaker: true,
        };
        let p = admit(conn, &ok, &b1, &jane, T).expect("admit");
        assert_eq!((p.sex.as_deref(), p.pacemaker), (Some("F"), true));
        assert_eq!(p.dob.as_deref(), Some("1950-02-03"));
        let john = |mrn: &'static str, dob: &'static str| NewPatient {
            mrn,
            name: "John Roe",
            dob,
            ..NewPatient::default()
        };
        assert_eq!((p.mrn.as_str(), p.name.as_str()), ("MRN-1", "Jane Q. Doe"));
        assert!(matches!(
            admit(conn, &ok, &b1, &john("MRN-2", "1960-01-01"), T),
            Err(PatientError::BedOccupied(_))
        ));
        assert!(matches!(
            admit(conn, &ok, &b2, &john("MRN-1", "1960-01-01"), T),
            Err(PatientError::MrnInUse(..))
        ));
        assert!(matches!(
            admit(conn, &ok, &b2, &john("  ", "1960-01-01"), T),
            Err(PatientError::Invalid(_))
        ));
        // Two identifiers: no date of birth, or an impossible one, is refused.
        for bad in ["", "1960-02-30", "03/02/1950", "2999-01-01", "1800-01-01"] {
            assert!(
                matches!(
                    admit(conn, &ok, &b2, &john("MRN-2", bad), T),
                    Err(PatientError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        let moved = transfer(conn, &ok, &b1, &b2, T + 20).expect("transfer");
        assert_eq!(moved.bed, b2);
        assert_eq!(in_bed(conn, &b1).expect("read"), None);
        assert_eq!(current(conn).expect("list"), vec![moved.clone()]);
        assert!(matches!(
            discharge(conn, &ok, &b1, T + 30),
            Err(PatientError::NoPatient(_))
        ));
        discharge(conn, &ok, &b2, T + 30).expect("discharge");
        assert!(current(conn).expect("list").is_empty());
        // The same MRN can be admitted again after discharge.
        let again = NewPatient {
            mrn: "MRN-1",
            name: "Jane Q. Doe",
            dob: "1950-02-03",
            ..NewPatient::default()
        };
        admit(conn, &ok, &b1, &again, T + 40).expect("readmit");
        let actions: Vec<String> = Audit::list(conn, &AuditFilter::default())
            .expect("audit")
            .into_iter()
            .filter(|e| e.action.starts_with("patient_"))
            .map(|e| format!("{} {} {}", e.action, e.target, e.detail))
            .collect();
        assert_eq!(
            actions,
            [
                "patient_admit 4W/01 mrn=MRN-1",
                "patient_transfer 4W/01 mrn=MRN-1 to 4W/02",
                "patient_discharge 4W/02 mrn=MRN-1",
                "patient_admit 4W/01 mrn=MRN-1",
            ]
        );
        assert!(Audit::verify(conn).expect("verify").is_intact());
    }

    #[test]
    fn a_proof_for_another_permission_is_refused() {
        let (_dir, mut svc, _) = setup();
        let s = svc.login("charge1", PW, 3).expect("login");
        let wrong = svc
            .authorize(Some(&s), Permission::ChangePatientLimits, 4)
            .expect("authorized");
        let n = NewPatient {
            mrn: "M",
            name: "N",
            dob: "1970-01-01",
            ..NewPatient::default()
        };
        let e = admit(svc.connection(), &wrong, &BedId::new("4W", "01"), &n, T).unwrap_err();
        assert!(matches!(e, PatientError::Auth(_)), "{e}");
        assert!(current(svc.connection()).expect("list").is_empty());
    }

    #[test]
    fn masking_keeps_only_initials() {
        let p = Patient {
            bed: BedId::new("4W", "01"),
            mrn: "MRN-1".into(),
            name: "jane  q. doe".into(),
            dob: Some("1950-01-01".into()),
            sex: Some("F".into()),
            pacemaker: true,
            admitted_ms: 1,
        };
        let m = p.masked();
        assert_eq!(
            (m.name.as_str(), m.mrn.as_str(), m.dob),
            ("J. Q. D.", "", None)
        );
        assert_eq!((m.sex.as_deref(), m.pacemaker), (Some("F"), true));
        assert_eq!(age_years("1950-02-03", T), Some(76));
        assert_eq!(age_years("not a date", T), None);
        assert_eq!(initials(""), "");
    }
}
