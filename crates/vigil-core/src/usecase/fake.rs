//! A fake of the running station for tests (of vigil-core, and of the window's commands with
//! the `testkit` feature): it records what the actions did to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{set_member, ActionError, Live};
use crate::alarms::{default_limits, Limit, WardProfile};
use crate::auth::{Authorized, Permission};
use crate::telemetry::BedId;

/// The engine as the actions see it: beds 4W/01 to 4W/08, the adult defaults; `refuse` makes
/// it refuse every change. Each change checks the proof again, as the engine does.
#[derive(Default)]
pub struct FakeLive {
    pub limits: Mutex<BTreeMap<BedId, Vec<Limit>>>,
    pub standby: Mutex<BTreeSet<BedId>>,
    pub profile: Mutex<Option<WardProfile>>,
    pub latching: Mutex<BTreeSet<String>>,
    pub latch_high: Mutex<Option<bool>>,
    /// Alarm actions taken: "acknowledge ID", "pause all beds", "end 4W/01".
    pub alarm_actions: Mutex<Vec<String>>,
    pub refuse: Mutex<bool>,
}

impl FakeLive {
    /// From now on refuse every change (`true`), or take them again.
    pub fn set_refuse(&self, on: bool) {
        *self.refuse.lock().expect("fake") = on;
    }

    /// The alarm actions taken so far.
    pub fn alarm_actions(&self) -> Vec<String> {
        self.alarm_actions.lock().expect("fake").clone()
    }

    fn change(&self, auth: &Authorized, p: Permission) -> Result<(), ActionError> {
        auth.require(p)?;
        if *self.refuse.lock().expect("fake") {
            return Err(ActionError::Invalid("engine refused".into()));
        }
        Ok(())
    }

    fn alarm(&self, auth: &Authorized, p: Permission, what: String) -> Result<(), ActionError> {
        self.change(auth, p)?;
        self.alarm_actions.lock().expect("fake").push(what);
        Ok(())
    }
}

impl Live for FakeLive {
    fn has_bed(&self, bed: &BedId) -> bool {
        bed.ward == "4W" && (1..=8).any(|i| bed.bed == format!("{i:02}"))
    }

    fn limits(&self, bed: &BedId) -> Vec<Limit> {
        self.limits
            .lock()
            .expect("fake")
            .get(bed)
            .cloned()
            .unwrap_or_else(default_limits)
    }

    fn default_limits(&self) -> Vec<Limit> {
        default_limits()
    }

    fn set_limits(
        &self,
        bed: &BedId,
        limits: Vec<Limit>,
        auth: &Authorized,
    ) -> Result<(), ActionError> {
        self.change(auth, Permission::ChangePatientLimits)?;
        self.limits
            .lock()
            .expect("fake")
            .insert(bed.clone(), limits);
        Ok(())
    }

    fn standby_beds(&self) -> Vec<BedId> {
        self.standby.lock().expect("fake").iter().cloned().collect()
    }

    fn set_standby(&self, bed: &BedId, on: bool, auth: &Authorized) -> Result<(), ActionError> {
        self.change(auth, Permission::ChangePatientLimits)?;
        set_member(&mut self.standby.lock().expect("fake"), bed.clone(), on);
        Ok(())
    }

    fn acknowledge(&self, alarm_id: &str, auth: &Authorized) -> Result<(), ActionError> {
        self.alarm(
            auth,
            Permission::AcknowledgeAlarm,
            format!("acknowledge {alarm_id}"),
        )
    }

    fn audio_pause(&self, bed: Option<&BedId>, auth: &Authorized) -> Result<(), ActionError> {
        let what = format!("pause {}", super::pause_target(bed));
        self.alarm(auth, Permission::AudioPause, what)
    }

    fn end_audio_pause(&self, bed: Option<&BedId>, auth: &Authorized) -> Result<(), ActionError> {
        let what = format!("end {}", super::pause_target(bed));
        self.alarm(auth, Permission::AudioPause, what)
    }

    fn set_ward_profile(&self, profile: WardProfile, auth: &Authorized) -> Result<(), ActionError> {
        self.change(auth, Permission::ManageWardProfiles)?;
        *self.profile.lock().expect("fake") = Some(profile);
        Ok(())
    }

    fn set_latching(&self, code: &str, on: bool, auth: &Authorized) -> Result<(), ActionError> {
        self.change(auth, Permission::ManageWardProfiles)?;
        let mut latching = self.latching.lock().expect("fake");
        set_member(&mut latching, code.into(), on);
        Ok(())
    }

    fn set_latch_high(&self, on: bool, auth: &Authorized) -> Result<(), ActionError> {
        self.change(auth, Permission::ManageWardProfiles)?;
        *self.latch_high.lock().expect("fake") = Some(on);
        Ok(())
    }
}
