//! Alarm handling from the window: acknowledge (charge nurse), audio pause and its early end
//! (every role on duty). The permission check happens here, in Rust, and yields the
//! [`Authorized`] proof the engine's entry points demand; the engine checks it again. What a user
//! did to an alarm is written to the audit trail as well as to the alarm log.

use vigil_core::audit::{actions, Audit};
use vigil_core::auth::{Authorized, Permission};
use vigil_core::telemetry::BedId;

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

/// Set the alarm volume (clamped to the allowed range), saved and audited. Returns it.
pub fn set_volume(st: &AuthState, percent: i64) -> Result<u8, ApiError> {
    let proof = authorize(st, Permission::AudioPause)?;
    let v = crate::sound::clamp_volume(percent);
    let now = st.now();
    {
        let g = st.lock();
        vigil_core::settings::StationSettings::save_volume(
            g.svc.connection(),
            v,
            proof.user(),
            now,
        )
        .map_err(ApiError::internal)?;
    }
    audit(
        st,
        &proof,
        actions::STATION_SETTING,
        "alarm_volume",
        &format!("{v} %"),
    );
    Ok(v)
}

/// A bed key as the window sends it (`ward/bed`): [`BedId::parse`].
pub fn parse_bed(key: &str) -> Result<BedId, ApiError> {
    Ok(BedId::parse(key)?)
}

/// Record what `proof`'s user did. The action already took effect, so a failure to write the
/// trail is logged loudly rather than reported as a failed action.
pub fn audit(st: &AuthState, proof: &Authorized, action: &str, target: &str, detail: &str) {
    let now = st.now();
    let g = st.lock();
    if let Err(e) = Audit::append(
        g.svc.connection(),
        proof.user(),
        action,
        target,
        detail,
        now,
    ) {
        tracing::error!(error = %e, action, target, "writing the audit trail failed");
    }
}

/// The audit action and target of an audio pause (or its end) for `bed` (`None`: all beds).
pub fn pause_target(bed: Option<&BedId>) -> String {
    bed.map_or_else(|| "all beds".to_string(), BedId::key)
}

/// Audit action names used by the commands in `mod.rs`.
pub const ACK: &str = actions::ALARM_ACKNOWLEDGE;
pub const PAUSE: &str = actions::AUDIO_PAUSE;
pub const PAUSE_END: &str = actions::AUDIO_PAUSE_END;
pub const STANDBY: &str = actions::BED_STANDBY;

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
