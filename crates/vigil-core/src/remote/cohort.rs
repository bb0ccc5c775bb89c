//! The simulated remote cohort's enrolment (issue 15): the zero-config station
//! (`vigil_sim::remote::run_station`) and `vigilctl remote cohort-enrol` enrol the simulated home
//! patients (`vigil_sim::cohort`, whose
//! script the faces turn into [`Member`]s: the engine never depends on the simulator) so that a
//! new user's remote worklist has patients, plans, history and findings within a minute.
//!
//! Everything goes through the station actions a charge nurse and IT would use —
//! [`super::enrol`], [`super::set_plan`], `usecase::register_device` — each with its audit
//! entry, joining one transaction per member (a member is enrolled with its plan and devices,
//! or not at all). The actor is the simulation, `sim:cohort`
//! ([`crate::auth::SIMULATION_USER`]): `AuthService::authorize_simulation`, crate-private, used
//! here only.
//!
//! - **Once per bed**: a bed that has or had a stay is left alone (an existing stay keeps its
//!   plan, pauses and alerts across restarts; a simulated patient a charge nurse discharged
//!   stays discharged).
//! - **Backdated**: the stay and its first plan start at `from_ms`, the start of the history the
//!   publisher uploads (its backfill), so that the history's slots are expected and the ones it
//!   misses are raised. Their audit entries carry that instant (the actions' one time), after
//!   entries recorded later; the device registrations are dated `now_ms`.

use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;
use vigil_schedule::ItemSpec;

use super::{NewRemotePatient, RemoteError};
use crate::auth::{AuthError, AuthService, Permission};
use crate::store::{in_tx, StoreError};
use crate::telemetry::{BedId, DeviceId};
use crate::usecase::{self, ActionError, Label, RegisterDevice};

#[derive(Debug, Error)]
pub enum CohortError {
    #[error("simulated patient in {bed}: {source}")]
    Remote {
        bed: String,
        #[source]
        source: Box<RemoteError>,
    },
    #[error("simulated patient in {bed}, device {device}: {source}")]
    Device {
        bed: String,
        device: String,
        #[source]
        source: Box<ActionError>,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One simulated patient to enrol: identity, care plan, home devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub bed: BedId,
    pub mrn: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub dob: String,
    /// IANA name.
    pub tz: String,
    /// The care plan's items.
    pub items: Vec<ItemSpec>,
    /// The change rules set with the plan (weight gain, sustained hypertension).
    pub rules: Vec<vigil_schedule::RuleSpec>,
    /// Home devices with their registry label.
    pub devices: Vec<(DeviceId, String)>,
}

/// What [`seed`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Enrolled now.
    pub enrolled: Vec<BedId>,
    /// Left alone: the bed has or had a stay.
    pub present: Vec<BedId>,
}

/// Whether `bed` has or ever had a remote stay.
fn ever_enrolled(conn: &Connection, bed: &BedId) -> Result<bool, CohortError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM remote_patients WHERE ward = ?1 AND bed = ?2 LIMIT 1",
            params![bed.ward, bed.bed],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// When the simulated cohort's story started on this station: the earliest enrolment by the
/// simulation of one of `beds`, if it was ever seeded. A publisher restarted later plays the
/// same script from there.
pub fn origin(conn: &Connection, beds: &[BedId]) -> Result<Option<i64>, CohortError> {
    let mut q = conn.prepare_cached(
        "SELECT MIN(enrolled_ms) FROM remote_patients
         WHERE ward = ?1 AND bed = ?2 AND enrolled_by = ?3",
    )?;
    let mut first: Option<i64> = None;
    for bed in beds {
        let t: Option<i64> = q.query_row(
            params![bed.ward, bed.bed, crate::auth::SIMULATION_USER],
            |r| r.get(0),
        )?;
        first = match (first, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(first)
}

/// Enrol every member whose bed never had a stay, as the simulation (`sim:cohort`): the stay
/// and its plan from `from_ms` (the history's start), its devices registered to its bed at
/// `now_ms`. Idempotent: members already (or once) enrolled are left alone.
pub fn seed(
    svc: &AuthService,
    members: &[Member],
    from_ms: i64,
    now_ms: i64,
) -> Result<Seeded, CohortError> {
    let manage = svc.authorize_simulation(super::MANAGE)?;
    let plan = svc.authorize_simulation(super::PLAN)?;
    let devices = svc.authorize_simulation(Permission::ManageDevices)?;
    let conn = svc.connection();
    let mut out = Seeded::default();
    for m in members {
        let bed = &m.bed;
        let key = bed.key();
        let remote = |source: RemoteError| CohortError::Remote {
            bed: key.clone(),
            source: Box::new(source),
        };
        let done = in_tx(conn, |conn| -> Result<bool, CohortError> {
            if ever_enrolled(conn, bed)? {
                return Ok(false);
            }
            let new = NewRemotePatient {
                mrn: &m.mrn,
                name: &m.name,
                dob: &m.dob,
                tz: &m.tz,
            };
            super::enrol(conn, &manage, bed, &new, from_ms).map_err(remote)?;
            // The weight-climb patient (home/h-04): weight rise ≥ 2 kg within 3d; the
            // hypertensive ones (home/h-01, h-11, h-20): NIBP_SYS above 140 on 3 of the last 5.
            super::set_plan(conn, &plan, bed, &m.items, &m.rules, from_ms).map_err(remote)?;
            for (device, label) in &m.devices {
                let dev_err = |source: ActionError| CohortError::Device {
                    bed: key.clone(),
                    device: device.to_string(),
                    source: Box::new(source),
                };
                let input = RegisterDevice {
                    device: device.clone(),
                    bed: bed.clone(),
                    label: Label::parse(label).map_err(dev_err)?,
                };
                usecase::register_device(svc, &devices, &input, now_ms).map_err(dev_err)?;
            }
            Ok(true)
        })?;
        if done {
            out.enrolled.push(bed.clone());
        } else {
            out.present.push(bed.clone());
        }
    }
    if !out.enrolled.is_empty() {
        tracing::info!(
            enrolled = out.enrolled.len(),
            present = out.present.len(),
            "simulated remote cohort enrolled"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;
    use crate::auth::{AuthConfig, SIMULATION_USER};
    use vigil_schedule::Kind;

    const T0: i64 = 1_780_290_000_000;
    const H: i64 = 3_600_000;

    fn member(n: u32) -> Member {
        Member {
            bed: BedId::new("home", format!("h-{n:02}")),
            mrn: format!("SIM-H{n:02}"),
            name: format!("Test Patient {n}"),
            dob: "1950-01-02".into(),
            tz: "Europe/London".into(),
            items: vec![ItemSpec::new(
                "bp",
                Kind::Reading,
                "NIBP_SYS",
                "07:00-10:00, 18:00-21:00",
            )],
            rules: Vec::new(),
            devices: vec![(
                DeviceId::parse(&format!("cuff-h-{n:02}")).expect("id"),
                "home BP cuff".into(),
            )],
        }
    }

    #[test]
    fn the_cohort_is_enrolled_once_backdated_and_audited_as_the_simulation() {
        let dir = tempfile::tempdir().expect("dir");
        let svc = AuthService::open(&dir.path().join("s.db"), AuthConfig::default()).expect("svc");
        let members = [member(1), member(2)];
        let seeded = seed(&svc, &members, T0 - 72 * H, T0).expect("seed");
        assert_eq!(seeded.enrolled.len(), 2);
        let conn = svc.connection();
        let all = super::super::load(conn).expect("load");
        assert_eq!(all.len(), 2);
        for e in &all {
            assert_eq!(e.patient.enrolled_ms, T0 - 72 * H);
            assert_eq!(e.patient.enrolled_by, SIMULATION_USER);
            let plan = e.plan.as_ref().expect("a plan");
            assert_eq!(
                (plan.set_ms, plan.set_by.as_str()),
                (T0 - 72 * H, "sim:cohort")
            );
            assert_eq!(e.devices.len(), 1);
            assert_eq!(e.devices[0].bed, e.patient.bed);
        }
        // Every entry of the enrolment is the simulation's.
        let entries = Audit::list(conn, &Default::default()).expect("audit");
        let actors: std::collections::BTreeSet<&str> =
            entries.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, [SIMULATION_USER].into());
        assert_eq!(entries.len(), 6, "enrol, plan and device for each");

        // Again (a restart), and after a charge nurse discharged one: nothing changes.
        let manage = svc
            .authorize_simulation(super::super::MANAGE)
            .expect("proof");
        super::super::discharge(conn, &manage, &members[1].bed, T0).expect("discharge");
        let again = seed(&svc, &members, T0 - 72 * H, T0 + H).expect("seed again");
        assert!(again.enrolled.is_empty());
        assert_eq!(again.present.len(), 2);
        assert_eq!(super::super::load(conn).expect("load").len(), 1);
        let beds: Vec<BedId> = members.iter().map(|m| m.bed.clone()).collect();
        assert_eq!(origin(conn, &beds).expect("origin"), Some(T0 - 72 * H));
        assert_eq!(
            origin(conn, &[BedId::new("home", "x")]).expect("origin"),
            None
        );
    }

    #[test]
    fn the_simulation_proof_covers_the_enrolment_permissions_only() {
        let dir = tempfile::tempdir().expect("dir");
        let svc = AuthService::open(&dir.path().join("s.db"), AuthConfig::default()).expect("svc");
        for p in Permission::ALL {
            let ok = matches!(
                p,
                Permission::AdmitDischargeTransfer
                    | Permission::ChangePatientLimits
                    | Permission::ManageDevices
            );
            assert_eq!(svc.authorize_simulation(p).is_ok(), ok, "{p:?}");
        }
    }
}
