//! Alarm handling from the window: acknowledge (charge nurse), audio pause and its early end
//! (every role on duty), the alarm volume, a bed's standby. The permission check happens here,
//! in Rust, and yields the [`Authorized`] proof the use cases (`vigil_core::usecase`) demand;
//! they take the action in the engine, which checks the proof again, and audit it.

use vigil_core::auth::{Authorized, Permission};
use vigil_core::telemetry::BedId;
use vigil_core::usecase::{self, Live};

use crate::error::ApiError;
use crate::session::{self, AuthState};

/// The proof that the current session may do `permission` now (deny by default).
pub fn authorize(st: &AuthState, permission: Permission) -> Result<Authorized, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    session::authorized(&mut g, permission, now)
}

/// The proof for an audio pause: the session's when it may act; from a locked screen or
/// with nobody logged in, the station's own (audio pause needs no log-in; it is audited under
/// the locked session's user, or "station (not logged in)").
pub fn authorize_pause(st: &AuthState) -> Result<Authorized, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    match session::authorized(&mut g, Permission::AudioPause, now) {
        Ok(p) => Ok(p),
        Err(e)
            if matches!(
                e.code,
                "locked" | "no_session" | "session_ended" | "session_expired"
            ) =>
        {
            Ok(g.svc.authorize_unattended_pause(g.session.as_ref(), now)?)
        }
        Err(e) => Err(e),
    }
}

/// Acknowledge an alarm ([`usecase::acknowledge_alarm`]). The session is not held while the
/// engine records it.
pub fn acknowledge(st: &AuthState, live: &dyn Live, id: &str) -> Result<(), ApiError> {
    let proof = authorize(st, Permission::AcknowledgeAlarm)?;
    Ok(usecase::acknowledge_alarm(st, live, &proof, id, st.now())?)
}

/// Pause alarm audio for one bed or all, or end the pause early (`on` false)
/// ([`usecase::audio_pause`]); from a locked screen too.
pub fn audio_pause(
    st: &AuthState,
    live: &dyn Live,
    bed: Option<&BedId>,
    on: bool,
) -> Result<(), ApiError> {
    let proof = authorize_pause(st)?;
    Ok(usecase::audio_pause(st, live, &proof, bed, on, st.now())?)
}

/// Set the alarm volume ([`usecase::set_alarm_volume`]: clamped, saved, audited). Returns it.
pub fn set_volume(st: &AuthState, percent: i64) -> Result<u8, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::AudioPause, now)?;
    Ok(usecase::set_alarm_volume(&g.svc, &proof, percent, now)?)
}

/// Put a bed in standby or back to monitoring ([`usecase::set_standby`]).
pub fn set_standby(st: &AuthState, live: &dyn Live, bed: &BedId, on: bool) -> Result<(), ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ChangePatientLimits, now)?;
    Ok(usecase::set_standby(&g.svc, &proof, live, bed, on, now)?)
}

/// A bed key as the window sends it (`ward/bed`): [`BedId::parse`].
pub fn parse_bed(key: &str) -> Result<BedId, ApiError> {
    Ok(BedId::parse(key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bed_keys_are_checked() {
        assert_eq!(parse_bed("sim/03").unwrap(), BedId::new("sim", "03"));
        for bad in [
            "", "sim", "/03", "sim/", "a/b/c", "sim/_03", "sim/+", "#/03", "sim/0 3",
        ] {
            assert_eq!(parse_bed(bad).unwrap_err().code, "bad_request", "{bad:?}");
        }
    }
}
