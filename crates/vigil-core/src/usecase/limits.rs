//! A bed's alarm limits and standby: changed by a charge nurse, or following its patient
//! (`adt`).

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::{commit_applied, set_member, setting_changed, ActionError, Entry, Live, Step};
use crate::alarms::limits::validate;
use crate::alarms::Limit;
use crate::audit::actions;
use crate::auth::{AuthService, Authorized, Permission};
use crate::settings::{List, StationSettings};
use crate::telemetry::BedId;

/// One threshold of a bed's limits to change, by its code (`HR_LOW`).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdChange {
    pub code: String,
    pub threshold: f64,
}

/// `current` with `changes` applied: each code at most once and one the bed has; only
/// thresholds change. The result passes the one limits validator. Returns the new limits and
/// the change in words ("HR_LOW 50 → 45"), empty when nothing changes.
pub fn with_thresholds(
    bed: &BedId,
    current: &[Limit],
    changes: &[ThresholdChange],
) -> Result<(Vec<Limit>, Vec<String>), ActionError> {
    if changes.is_empty() {
        return Err(ActionError::Invalid("no limit to change".into()));
    }
    let mut new = current.to_vec();
    let mut diff = Vec::new();
    let mut seen = Vec::new();
    for c in changes {
        if seen.contains(&c.code) {
            return Err(ActionError::Invalid(format!("{} given twice", c.code)));
        }
        seen.push(c.code.clone());
        let l = new
            .iter_mut()
            .find(|l| l.code() == c.code)
            .ok_or_else(|| ActionError::Invalid(format!("bed {bed} has no limit {}", c.code)))?;
        if l.threshold != c.threshold {
            diff.push(format!(
                "{} {} → {}",
                c.code,
                fmt_threshold(l.threshold),
                fmt_threshold(c.threshold)
            ));
            l.threshold = c.threshold;
        }
    }
    validate(&new).map_err(ActionError::Invalid)?;
    Ok((new, diff))
}

fn fmt_threshold(v: f64) -> String {
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// Save `new` as `bed`'s limits (`None`: forget them, the ward's `defaults` apply) with their
/// audit entry, in one transaction that commits only once `apply` has put them into the live
/// engine. If the commit fails, `apply` puts `old` back, so that what is shown, evaluated and
/// stored agree. `auth` must allow changing a patient's limits.
#[allow(clippy::too_many_arguments)]
pub fn replace_limits(
    svc: &AuthService,
    auth: &Authorized,
    bed: &BedId,
    old: &[Limit],
    new: Option<&[Limit]>,
    defaults: &[Limit],
    detail: &str,
    apply: &dyn Fn(Vec<Limit>) -> Result<(), ActionError>,
    now_ms: i64,
) -> Result<(), ActionError> {
    let user = auth.require(Permission::ChangePatientLimits)?;
    let change = LimitsChange::new(bed, old, new.map(<[Limit]>::to_vec), defaults, detail)?;
    let step = Step::new(
        format!("limits of {bed}"),
        || apply(change.in_force.clone()),
        || apply(change.old.clone()),
    );
    commit_applied(svc.connection(), |c| change.write(c, user, now_ms), &[step])?;
    tracing::info!(%bed, user, change = detail, "alarm limits changed");
    Ok(())
}

/// Change thresholds of `bed`'s limits (a charge nurse): [`with_thresholds`], then saved with
/// the audit entry "CODE old → new, …" and applied ([`replace_limits`]). Returns the limits now
/// in force (unchanged, and nothing written, when no threshold changes).
pub fn set_bed_limits(
    svc: &AuthService,
    auth: &Authorized,
    live: &dyn Live,
    bed: &BedId,
    changes: &[ThresholdChange],
    now_ms: i64,
) -> Result<Vec<Limit>, ActionError> {
    auth.require(Permission::ChangePatientLimits)?;
    let old = live.limits(bed);
    let (new, diff) = with_thresholds(bed, &old, changes)?;
    if diff.is_empty() {
        return Ok(old);
    }
    replace_limits(
        svc,
        auth,
        bed,
        &old,
        Some(&new),
        &live.default_limits(),
        &diff.join(", "),
        &|l| live.set_limits(bed, l, auth),
        now_ms,
    )?;
    Ok(new)
}

/// Put `bed` in standby (no patient: physiological alarms off) or back to monitoring: the
/// standby beds saved (a restart keeps them) with the audit entry `bed_standby` ("standby" or
/// "monitoring"), applied to the engine before the commit.
pub fn set_standby(
    svc: &AuthService,
    auth: &Authorized,
    live: &dyn Live,
    bed: &BedId,
    on: bool,
    now_ms: i64,
) -> Result<(), ActionError> {
    let user = auth.require(Permission::ChangePatientLimits)?;
    let change = StandbyChange::new(live, bed, on);
    let entry = Entry {
        user,
        action: actions::BED_STANDBY,
        target: &bed.key(),
        detail: if on { "standby" } else { "monitoring" },
    };
    let save = |c: &Connection| change.write(c, user, now_ms);
    let step = change.step(live, auth);
    setting_changed(svc, &entry, save, std::slice::from_ref(&step), None, now_ms)
}

/// A bed's limits replaced: saved (or forgotten, `new` = `None`: the ward's defaults apply)
/// with their audit entry `limits_change`, and put into the running station.
pub(crate) struct LimitsChange {
    bed: BedId,
    old: Vec<Limit>,
    new: Option<Vec<Limit>>,
    in_force: Vec<Limit>,
    detail: String,
}

impl LimitsChange {
    /// Checked by the one limits validator.
    fn new(
        bed: &BedId,
        old: &[Limit],
        new: Option<Vec<Limit>>,
        defaults: &[Limit],
        detail: &str,
    ) -> Result<LimitsChange, ActionError> {
        let in_force = new.clone().unwrap_or_else(|| defaults.to_vec());
        validate(&in_force).map_err(ActionError::Invalid)?;
        Ok(LimitsChange {
            bed: bed.clone(),
            old: old.to_vec(),
            new,
            in_force,
            detail: detail.to_string(),
        })
    }

    /// What a change of patient does to `bed`'s limits: they belong to the patient, not the
    /// bed. The bed gets `limits` (the patient's own; `None`: the ward's defaults), audited as
    /// "limits of the patient {why}" or "defaults: {why}"; nothing when it has them already.
    pub(crate) fn follow(
        live: &dyn Live,
        bed: &BedId,
        limits: Option<Vec<Limit>>,
        why: &str,
    ) -> Result<Option<LimitsChange>, ActionError> {
        let old = live.limits(bed);
        let defaults = live.default_limits();
        if old == *limits.as_ref().unwrap_or(&defaults) {
            return Ok(None);
        }
        let detail = match &limits {
            Some(_) => format!("limits of the patient {why}"),
            None => format!("defaults: {why}"),
        };
        LimitsChange::new(bed, &old, limits, &defaults, &detail).map(Some)
    }

    /// Saved and audited (inside the action's transaction).
    pub(crate) fn write(&self, c: &Connection, user: &str, now_ms: i64) -> Result<(), ActionError> {
        match &self.new {
            Some(l) => crate::limits_db::save(c, &self.bed, l, user, now_ms)?,
            None => crate::limits_db::clear(c, &self.bed)?,
        }
        let entry = Entry {
            user,
            action: actions::LIMITS_CHANGE,
            target: &self.bed.key(),
            detail: &self.detail,
        };
        Ok(entry.append(c, now_ms)?)
    }

    /// Into the engine (and back).
    pub(crate) fn step<'a>(&'a self, live: &'a dyn Live, auth: &'a Authorized) -> Step<'a> {
        Step::new(
            format!("limits of {}", self.bed),
            move || live.set_limits(&self.bed, self.in_force.clone(), auth),
            move || live.set_limits(&self.bed, self.old.clone(), auth),
        )
    }
}

/// A bed into standby or back to monitoring: the standby beds saved, and the engine told.
pub(crate) struct StandbyChange {
    bed: BedId,
    on: bool,
    was: bool,
    /// The beds in standby afterwards, as saved.
    beds: BTreeSet<String>,
}

impl StandbyChange {
    pub(crate) fn new(live: &dyn Live, bed: &BedId, on: bool) -> StandbyChange {
        let mut beds: BTreeSet<String> = live.standby_beds().iter().map(BedId::key).collect();
        let was = set_member(&mut beds, bed.key(), on);
        StandbyChange {
            bed: bed.clone(),
            on,
            was,
            beds,
        }
    }

    /// Saved, so that a restart keeps it (`StationSettings::standby`); not audited by itself.
    pub(crate) fn write(&self, c: &Connection, user: &str, now_ms: i64) -> Result<(), ActionError> {
        Ok(StationSettings::save_list(
            c,
            List::Standby,
            &self.beds,
            user,
            now_ms,
        )?)
    }

    pub(crate) fn step<'a>(&'a self, live: &'a dyn Live, auth: &'a Authorized) -> Step<'a> {
        Step::new(
            format!("standby of {}", self.bed),
            move || live.set_standby(&self.bed, self.on, auth),
            move || live.set_standby(&self.bed, self.was, auth),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;
    use crate::auth::Actor;
    use crate::usecase::testkit::{it, service};

    /// The limits saved for `bed`.
    fn stored(svc: &AuthService, bed: &BedId) -> Option<Vec<Limit>> {
        crate::limits_db::load(svc.connection())
            .expect("load")
            .get(bed)
            .cloned()
    }

    #[test]
    fn threshold_changes_are_checked_by_the_one_validator() {
        let bed = BedId::new("4W", "03");
        let current = crate::alarms::default_limits();
        let ch = |code: &str, t: f64| ThresholdChange {
            code: code.into(),
            threshold: t,
        };
        let (new, diff) = with_thresholds(&bed, &current, &[ch("HR_LOW", 45.0)]).expect("ok");
        assert_eq!(diff, ["HR_LOW 50 → 45"]);
        assert!(new
            .iter()
            .any(|l| l.code() == "HR_LOW" && l.threshold == 45.0));
        let (_, none) = with_thresholds(&bed, &current, &[ch("HR_LOW", 50.0)]).expect("ok");
        assert!(none.is_empty(), "nothing changes");
        for bad in [
            vec![],
            vec![ch("HR_LOW", 45.0), ch("HR_LOW", 46.0)],
            vec![ch("NO_SUCH", 1.0)],
            vec![ch("HR_LOW", 130.0)],
            vec![ch("HR_HIGH", 1200.0)],
        ] {
            assert!(
                matches!(
                    with_thresholds(&bed, &current, &bad),
                    Err(ActionError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_are_saved_audited_and_applied_together_or_not_at_all() {
        let (_dir, mut svc) = service();
        let now = 1_000;
        svc.create_user(
            &Actor::Local("t".into()),
            "carl",
            crate::auth::Role::ChargeNurse,
            "Ward4-limits-test-2026!",
            now,
        )
        .expect("user");
        let session = svc
            .login("carl", "Ward4-limits-test-2026!", now)
            .expect("login");
        let auth = svc
            .authorize(Some(&session), Permission::ChangePatientLimits, now)
            .expect("charge nurse");
        let bed = BedId::new("4W", "03");
        let old = crate::alarms::default_limits();
        let (new, _) = with_thresholds(
            &bed,
            &old,
            &[ThresholdChange {
                code: "SPO2_LOW".into(),
                threshold: 88.0,
            }],
        )
        .expect("new");
        let live = std::cell::RefCell::new(old.clone());
        let apply = |l: Vec<Limit>| -> Result<(), ActionError> {
            *live.borrow_mut() = l;
            Ok(())
        };
        let limits_entries = |svc: &AuthService| {
            Audit::list(svc.connection(), &Default::default())
                .expect("trail")
                .into_iter()
                .filter(|e| e.action == actions::LIMITS_CHANGE)
                .count()
        };
        replace_limits(
            &svc,
            &auth,
            &bed,
            &old,
            Some(&new),
            &old,
            "SPO2_LOW 90 → 88",
            &apply,
            now,
        )
        .expect("replaced");
        assert_eq!(*live.borrow(), new);
        assert_eq!(stored(&svc, &bed).as_ref(), Some(&new));
        assert_eq!(limits_entries(&svc), 1);

        // The engine refuses: nothing saved, nothing audited, the engine unchanged.
        let refuse = |_: Vec<Limit>| -> Result<(), ActionError> {
            Err(ActionError::Invalid("engine refused".into()))
        };
        assert!(
            replace_limits(&svc, &auth, &bed, &new, None, &old, "defaults", &refuse, now).is_err()
        );
        assert_eq!(stored(&svc, &bed).as_ref(), Some(&new));
        assert_eq!(limits_entries(&svc), 1);

        // Another permission's proof: refused before anything.
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            replace_limits(&svc, &wrong, &bed, &new, None, &old, "defaults", &apply, now),
            Err(ActionError::Auth(_))
        ));
        // Back to the defaults.
        replace_limits(&svc, &auth, &bed, &new, None, &old, "defaults", &apply, now)
            .expect("defaults");
        assert_eq!(*live.borrow(), old);
        assert_eq!(stored(&svc, &bed).as_ref(), None);
        assert_eq!(limits_entries(&svc), 2);
    }

    #[test]
    fn standby_is_saved_audited_and_applied_together_or_not_at_all() {
        use crate::usecase::testkit::{
            allow_audit, charge_nurse, entries, refuse_audit, standby_saved, FakeLive,
        };
        let (_dir, svc, mut p) = charge_nurse(&[Permission::ChangePatientLimits]);
        let auth = p.remove(0);
        let live = FakeLive::default();
        let bed = BedId::new("4W", "05");
        let saved = standby_saved;
        let standby_entries = |svc: &AuthService| {
            entries(svc)
                .into_iter()
                .filter(|e| e.action == actions::BED_STANDBY)
                .map(|e| format!("{} {} {}", e.actor, e.target, e.detail))
                .collect::<Vec<_>>()
        };
        // The audit entry cannot be written: not saved, and the engine never told.
        refuse_audit(&svc);
        assert!(set_standby(&svc, &auth, &live, &bed, true, 2_000).is_err());
        allow_audit(&svc);
        // The engine refuses: not saved, not audited.
        live.set_refuse(true);
        assert!(set_standby(&svc, &auth, &live, &bed, true, 2_000).is_err());
        live.set_refuse(false);
        // Another permission's proof.
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            set_standby(&svc, &wrong, &live, &bed, true, 2_000),
            Err(ActionError::Auth(_))
        ));
        assert!(live.standby_beds().is_empty() && saved(&svc).is_empty());
        assert!(standby_entries(&svc).is_empty());

        set_standby(&svc, &auth, &live, &bed, true, 2_001).expect("standby");
        assert_eq!(live.standby_beds(), std::slice::from_ref(&bed));
        assert_eq!(saved(&svc).into_iter().collect::<Vec<_>>(), ["4W/05"]);
        set_standby(&svc, &auth, &live, &bed, false, 2_002).expect("monitoring");
        assert!(live.standby_beds().is_empty() && saved(&svc).is_empty());
        assert_eq!(
            standby_entries(&svc),
            ["carl 4W/05 standby", "carl 4W/05 monitoring"]
        );
    }

    #[test]
    fn a_charge_nurse_changes_thresholds_in_the_engine_and_the_database_together() {
        use crate::usecase::testkit::{charge_nurse, FakeLive};
        let (_dir, svc, mut p) = charge_nurse(&[Permission::ChangePatientLimits]);
        let auth = p.remove(0);
        let live = FakeLive::default();
        let bed = BedId::new("4W", "02");
        let ch = [ThresholdChange {
            code: "HR_HIGH".into(),
            threshold: 125.0,
        }];
        live.set_refuse(true);
        assert!(set_bed_limits(&svc, &auth, &live, &bed, &ch, 2_000).is_err());
        live.set_refuse(false);
        assert_eq!(stored(&svc, &bed), None);
        let new = set_bed_limits(&svc, &auth, &live, &bed, &ch, 2_001).expect("changed");
        assert_eq!(
            (live.limits(&bed), stored(&svc, &bed)),
            (new.clone(), Some(new))
        );
        // Nothing to change: nothing written.
        let n = crate::usecase::testkit::entries(&svc).len();
        set_bed_limits(&svc, &auth, &live, &bed, &ch, 2_002).expect("same");
        assert_eq!(crate::usecase::testkit::entries(&svc).len(), n);
    }
}
