//! Admit, discharge, transfer: the patient register's change ([`crate::patients`], with its
//! audit entry) and what follows it for the monitoring, in one transaction. The limits belong
//! to the patient, not the bed: they go with a transferred patient, and the bed left behind (or
//! discharged) is back to the ward's defaults, each audited as `limits_change`; a bed with a
//! patient monitors, a discharged bed goes to standby (saved for a restart). The engine takes
//! those changes before the commit, and gets back what it had if the commit fails.
//!
//! Each needs two proofs of the same user: `admit_discharge_transfer` for the patient, and
//! `change_patient_limits` for the limits and standby that follow.

use rusqlite::Connection;

use super::limits::{LimitsChange, StandbyChange};
use super::{commit_applied, ActionError, Live, Step};
use crate::auth::{AuthService, Authorized, Permission};
use crate::patients::{self, NewPatient, Patient, PatientError};
use crate::telemetry::BedId;

/// Both proofs, checked before anything: the monitoring proof's user.
fn check<'a>(adt: &Authorized, monitoring: &'a Authorized) -> Result<&'a str, ActionError> {
    adt.require(Permission::AdmitDischargeTransfer)?;
    Ok(monitoring.require(Permission::ChangePatientLimits)?)
}

fn on_ward(live: &dyn Live, bed: &BedId) -> Result<(), ActionError> {
    if live.has_bed(bed) {
        Ok(())
    } else {
        Err(ActionError::Invalid(format!("no bed {bed} on this ward")))
    }
}

/// Admit a patient to an empty bed of the ward (`patient_admit`); the bed monitors (its
/// physiological alarms are on).
pub fn admit_patient(
    svc: &AuthService,
    live: &dyn Live,
    adt: &Authorized,
    monitoring: &Authorized,
    bed: &BedId,
    new: &NewPatient<'_>,
    now_ms: i64,
) -> Result<Patient, ActionError> {
    let user = check(adt, monitoring)?;
    on_ward(live, bed)?;
    let follows = Follows {
        limits: Vec::new(),
        standby: StandbyChange::new(live, bed, false),
    };
    follows.commit(svc, live, monitoring, user, now_ms, |c| {
        patients::admit(c, adt, bed, new, now_ms)
    })
}

/// Discharge the patient in `bed` (`patient_discharge`): the bed's limits go back to the
/// defaults for the next patient, and the bed goes to standby (no physiological alarms) until
/// the next admission.
pub fn discharge_patient(
    svc: &AuthService,
    live: &dyn Live,
    adt: &Authorized,
    monitoring: &Authorized,
    bed: &BedId,
    now_ms: i64,
) -> Result<Patient, ActionError> {
    let user = check(adt, monitoring)?;
    let follows = Follows {
        limits: LimitsChange::follow(live, bed, None, "patient discharged")?
            .into_iter()
            .collect(),
        standby: StandbyChange::new(live, bed, true),
    };
    follows.commit(svc, live, monitoring, user, now_ms, |c| {
        patients::discharge(c, adt, bed, now_ms)
    })
}

/// Move the patient in `from` to the empty bed `to` of the ward (`patient_transfer`): the
/// patient's own limits go along (the defaults if they had none), and `from` is back to the
/// defaults. The bed the patient comes to monitors, as at an admission: a bed left in standby
/// by its last discharge would otherwise raise no physiological alarm for them.
pub fn transfer_patient(
    svc: &AuthService,
    live: &dyn Live,
    adt: &Authorized,
    monitoring: &Authorized,
    from: &BedId,
    to: &BedId,
    now_ms: i64,
) -> Result<Patient, ActionError> {
    let user = check(adt, monitoring)?;
    on_ward(live, to)?;
    let theirs = live.limits(from);
    let own = (theirs != live.default_limits()).then_some(theirs);
    let follows = Follows {
        limits: [
            LimitsChange::follow(live, to, own, &format!("transferred from {from}"))?,
            LimitsChange::follow(live, from, None, &format!("patient transferred to {to}"))?,
        ]
        .into_iter()
        .flatten()
        .collect(),
        standby: StandbyChange::new(live, to, false),
    };
    follows.commit(svc, live, monitoring, user, now_ms, |c| {
        patients::transfer(c, adt, from, to, now_ms)
    })
}

/// What follows a change of the patient register for the monitoring: the limits that change
/// (in this order), and the bed that goes to standby or back to monitoring.
struct Follows {
    limits: Vec<LimitsChange>,
    standby: StandbyChange,
}

impl Follows {
    /// `patient` (the register's change, with its audit entry) and what follows, saved and
    /// audited as `user` in one transaction; the engine takes the limits and the standby before
    /// the commit (as `monitoring`), and gets back what it had if the commit fails.
    fn commit(
        &self,
        svc: &AuthService,
        live: &dyn Live,
        monitoring: &Authorized,
        user: &str,
        now_ms: i64,
        patient: impl FnOnce(&Connection) -> Result<Patient, PatientError>,
    ) -> Result<Patient, ActionError> {
        let mut steps: Vec<Step<'_>> = self
            .limits
            .iter()
            .map(|l| l.step(live, monitoring))
            .collect();
        steps.push(self.standby.step(live, monitoring));
        commit_applied(
            svc.connection(),
            |c| {
                let p = patient(c)?;
                for l in &self.limits {
                    l.write(c, user, now_ms)?;
                }
                self.standby.write(c, user, now_ms)?;
                Ok(p)
            },
            &steps,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::default_limits;
    use crate::usecase::testkit::{charge_nurse, entries, it, standby_saved, FakeLive};
    use crate::usecase::{set_bed_limits, ThresholdChange};

    /// 2026-06-01T00:00:00Z.
    const T: i64 = 1_780_272_000_000;

    fn jane() -> NewPatient<'static> {
        NewPatient {
            mrn: "MRN-1",
            name: "Jane Q. Doe",
            dob: "1950-02-03",
            sex: "F",
            pacemaker: false,
        }
    }

    /// Entries of these actions from `t` on: "action target detail".
    fn trail(svc: &AuthService) -> Vec<String> {
        entries(svc)
            .into_iter()
            .filter(|e| e.action.starts_with("patient_") || e.action == "limits_change")
            .map(|e| format!("{} {} {}", e.action, e.target, e.detail))
            .collect()
    }

    fn refuse_limits_entries(svc: &AuthService, on: bool) {
        svc.connection()
            .execute_batch(if on {
                "CREATE TEMP TRIGGER refuse_limits BEFORE INSERT ON audit_log
                 WHEN NEW.action = 'limits_change'
                 BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
            } else {
                "DROP TRIGGER temp.refuse_limits"
            })
            .expect("trigger");
    }

    /// A charge nurse's proofs for admissions and their monitoring, and the engine.
    fn station() -> (tempfile::TempDir, AuthService, Vec<Authorized>, FakeLive) {
        let (dir, svc, p) = charge_nurse(&[
            Permission::AdmitDischargeTransfer,
            Permission::ChangePatientLimits,
        ]);
        (dir, svc, p, FakeLive::default())
    }

    #[test]
    fn a_transfer_moves_the_patient_and_their_limits_in_one_transaction() {
        let (_dir, svc, p, live) = station();
        let (adt, mon) = (&p[0], &p[1]);
        let (b1, b2) = (BedId::new("4W", "01"), BedId::new("4W", "02"));
        admit_patient(&svc, &live, adt, mon, &b1, &jane(), T).expect("admitted");
        let spo2 = ThresholdChange {
            code: "SPO2_LOW".into(),
            threshold: 85.0,
        };
        let own = set_bed_limits(&svc, mon, &live, &b1, &[spo2], T).expect("limits");
        let saved = |svc: &AuthService| crate::limits_db::load(svc.connection()).expect("load");
        let in_bed = |svc: &AuthService, b: &BedId| {
            crate::patients::in_bed(svc.connection(), b)
                .expect("read")
                .map(|p| p.mrn)
        };

        // The limits' audit entry cannot be written: the patient stays where they were, and
        // neither bed's limits changed, stored or live.
        refuse_limits_entries(&svc, true);
        assert!(transfer_patient(&svc, &live, adt, mon, &b1, &b2, T + 1).is_err());
        refuse_limits_entries(&svc, false);
        assert_eq!(in_bed(&svc, &b1).as_deref(), Some("MRN-1"));
        assert_eq!(in_bed(&svc, &b2), None);
        assert_eq!(saved(&svc).get(&b1), Some(&own));
        assert_eq!(
            (live.limits(&b1), live.limits(&b2)),
            (own.clone(), default_limits())
        );

        // The engine refuses the limits: the same.
        live.set_refuse(true);
        assert!(transfer_patient(&svc, &live, adt, mon, &b1, &b2, T + 2).is_err());
        live.set_refuse(false);
        assert_eq!(in_bed(&svc, &b2), None);
        assert_eq!(saved(&svc).get(&b1), Some(&own));

        // Into a bed left in standby: it monitors again, for the patient it now has.
        live.standby.lock().expect("fake").insert(b2.clone());
        let moved = transfer_patient(&svc, &live, adt, mon, &b1, &b2, T + 3).expect("moved");
        assert_eq!(moved.bed, b2);
        assert!(live.standby_beds().is_empty() && standby_saved(&svc).is_empty());
        assert_eq!(in_bed(&svc, &b2).as_deref(), Some("MRN-1"));
        assert_eq!(saved(&svc).get(&b2), Some(&own));
        assert!(!saved(&svc).contains_key(&b1));
        assert_eq!(
            (live.limits(&b1), live.limits(&b2)),
            (default_limits(), own)
        );
        assert_eq!(
            trail(&svc),
            [
                "patient_admit 4W/01 mrn=MRN-1",
                "limits_change 4W/01 SPO2_LOW 90 → 85",
                "patient_transfer 4W/01 mrn=MRN-1 to 4W/02",
                "limits_change 4W/02 limits of the patient transferred from 4W/01",
                "limits_change 4W/01 defaults: patient transferred to 4W/02",
            ]
        );
        // Not to a bed of another ward, nor with another permission's proof.
        let far = BedId::new("5E", "01");
        assert!(matches!(
            transfer_patient(&svc, &live, adt, mon, &b2, &far, T + 4),
            Err(ActionError::Invalid(_))
        ));
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            transfer_patient(&svc, &live, &wrong, mon, &b2, &b1, T + 4),
            Err(ActionError::Auth(_))
        ));
        assert!(matches!(
            transfer_patient(&svc, &live, adt, adt, &b2, &b1, T + 4),
            Err(ActionError::Auth(_))
        ));
        assert_eq!(in_bed(&svc, &b2).as_deref(), Some("MRN-1"));
    }

    #[test]
    fn admission_and_discharge_take_the_standby_and_limits_with_them() {
        let (_dir, svc, p, live) = station();
        let (adt, mon) = (&p[0], &p[1]);
        let b1 = BedId::new("4W", "01");
        let standby = standby_saved;
        live.standby.lock().expect("fake").insert(b1.clone());

        // Admission into a bed in standby: refused by the engine, nobody is admitted.
        live.set_refuse(true);
        assert!(admit_patient(&svc, &live, adt, mon, &b1, &jane(), T).is_err());
        live.set_refuse(false);
        assert!(crate::patients::current(svc.connection())
            .expect("list")
            .is_empty());
        admit_patient(&svc, &live, adt, mon, &b1, &jane(), T).expect("admitted");
        assert!(
            live.standby_beds().is_empty(),
            "a patient in the bed: alarms on"
        );
        assert!(standby(&svc).is_empty());
        let spo2 = ThresholdChange {
            code: "SPO2_LOW".into(),
            threshold: 85.0,
        };
        set_bed_limits(&svc, mon, &live, &b1, &[spo2], T).expect("limits");

        // Discharge whose limits entry cannot be written: still admitted, nothing changed.
        refuse_limits_entries(&svc, true);
        assert!(discharge_patient(&svc, &live, adt, mon, &b1, T + 1).is_err());
        refuse_limits_entries(&svc, false);
        assert_eq!(
            crate::patients::current(svc.connection())
                .expect("list")
                .len(),
            1
        );
        assert!(live.standby_beds().is_empty() && standby(&svc).is_empty());
        assert_ne!(live.limits(&b1), default_limits());

        discharge_patient(&svc, &live, adt, mon, &b1, T + 2).expect("discharged");
        assert_eq!(live.standby_beds(), std::slice::from_ref(&b1));
        assert_eq!(standby(&svc).into_iter().collect::<Vec<_>>(), ["4W/01"]);
        assert_eq!(live.limits(&b1), default_limits());
        assert!(crate::limits_db::load(svc.connection())
            .expect("load")
            .is_empty());
        assert_eq!(
            trail(&svc),
            [
                "patient_admit 4W/01 mrn=MRN-1",
                "limits_change 4W/01 SPO2_LOW 90 → 85",
                "patient_discharge 4W/01 mrn=MRN-1",
                "limits_change 4W/01 defaults: patient discharged",
            ]
        );
        // A bed that is not on the ward, and another permission's proof, are refused.
        assert!(matches!(
            admit_patient(
                &svc,
                &live,
                adt,
                mon,
                &BedId::new("4W", "09"),
                &jane(),
                T + 3
            ),
            Err(ActionError::Invalid(_))
        ));
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            discharge_patient(&svc, &live, &wrong, mon, &b1, T + 3),
            Err(ActionError::Auth(_))
        ));
    }
}
