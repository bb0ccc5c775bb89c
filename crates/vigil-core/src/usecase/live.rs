//! The running engine as the station actions' [`Live`] station.

use std::future::Future;

use super::{ActionError, Live};
use crate::alarms::{Limit, WardProfile};
use crate::auth::Authorized;
use crate::engine::{EngineError, EngineHandle};
use crate::telemetry::BedId;

/// Wait for one of the engine's entry points. The actions run on a blocking thread of the
/// engine's Tokio runtime (the window's command pool), never on one of its async workers.
fn wait<T>(f: impl Future<Output = Result<T, EngineError>>) -> Result<T, ActionError> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| ActionError::Unreachable(e.to_string()))?;
    Ok(rt.block_on(f)?)
}

impl Live for EngineHandle {
    fn has_bed(&self, bed: &BedId) -> bool {
        self.snapshot().beds.contains(bed)
    }

    fn limits(&self, bed: &BedId) -> Vec<Limit> {
        EngineHandle::limits(self, bed)
    }

    fn default_limits(&self) -> Vec<Limit> {
        EngineHandle::default_limits(self)
    }

    fn set_limits(
        &self,
        bed: &BedId,
        limits: Vec<Limit>,
        auth: &Authorized,
    ) -> Result<(), ActionError> {
        wait(EngineHandle::set_limits(self, bed, limits, auth)).map_err(|e| match e {
            // Limits the engine refuses are bad input (they passed the same validator first).
            ActionError::Engine(EngineError::Alarm(a)) => ActionError::Invalid(a.to_string()),
            other => other,
        })
    }

    fn standby_beds(&self) -> Vec<BedId> {
        EngineHandle::standby_beds(self)
    }

    fn set_standby(&self, bed: &BedId, on: bool, auth: &Authorized) -> Result<(), ActionError> {
        wait(EngineHandle::set_standby(self, bed, on, auth))
    }

    fn acknowledge(&self, alarm_id: &str, auth: &Authorized) -> Result<(), ActionError> {
        wait(EngineHandle::acknowledge(self, alarm_id, auth))
    }

    fn audio_pause(&self, bed: Option<&BedId>, auth: &Authorized) -> Result<(), ActionError> {
        wait(EngineHandle::audio_pause(self, bed.cloned(), auth))
    }

    fn end_audio_pause(&self, bed: Option<&BedId>, auth: &Authorized) -> Result<(), ActionError> {
        wait(EngineHandle::end_audio_pause(self, bed.cloned(), auth))
    }

    fn set_ward_profile(&self, profile: WardProfile, auth: &Authorized) -> Result<(), ActionError> {
        Ok(EngineHandle::set_ward_profile(self, profile, auth)?)
    }

    fn set_latching(&self, code: &str, on: bool, auth: &Authorized) -> Result<(), ActionError> {
        Ok(EngineHandle::set_latching(self, code, on, auth)?)
    }

    fn set_latch_high(&self, on: bool, auth: &Authorized) -> Result<(), ActionError> {
        Ok(EngineHandle::set_latch_high(self, on, auth)?)
    }
}
