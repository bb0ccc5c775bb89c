//! What a person does to an alarm at this station: acknowledge it, pause the audio (one bed or
//! all), end the pause early. The engine takes the action first (it checks the proof again;
//! an acknowledgement returns once it is in the alarm log, which records the user too), then
//! the audit entry follows. An alarm action is never refused, nor undone, because the audit
//! trail cannot be written: that is logged loudly instead, so that a nurse can always act on
//! an alarm (a pause from a locked screen, or with nobody logged in, included: its proof names
//! "(locked screen)" or "station (not logged in)"). Nothing is audited that the engine refused.

use super::{ActionError, Entry, Live};
use crate::audit::{actions, AuditError};
use crate::auth::{AuthService, Authorized, Permission};
use crate::telemetry::BedId;

/// Where an alarm action's audit entry goes. The action reaches the station database only for
/// that entry, after the engine took it: the window keeps the database behind its session lock,
/// which must not be held while the engine works (an acknowledgement waits for its record).
pub trait Trail {
    fn append(&self, entry: &Entry<'_>, now_ms: i64) -> Result<(), AuditError>;
}

impl Trail for AuthService {
    fn append(&self, entry: &Entry<'_>, now_ms: i64) -> Result<(), AuditError> {
        entry.append(self.connection(), now_ms)
    }
}

/// The audit target of an audio pause (or its end) for `bed` (`None`: all beds).
pub fn pause_target(bed: Option<&BedId>) -> String {
    bed.map_or_else(|| "all beds".to_string(), BedId::key)
}

/// Acknowledge an alarm shown now (`alarm_acknowledge`, target the alarm's id): silent until
/// it re-triggers.
pub fn acknowledge_alarm(
    trail: &dyn Trail,
    live: &dyn Live,
    auth: &Authorized,
    alarm_id: &str,
    now_ms: i64,
) -> Result<(), ActionError> {
    let action = (Permission::AcknowledgeAlarm, actions::ALARM_ACKNOWLEDGE);
    taken(trail, auth, action, alarm_id, now_ms, || {
        live.acknowledge(alarm_id, auth)
    })
}

/// Pause alarm audio for `bed` (`None`: all beds) for the configured time (`on`:
/// `audio_pause`), or end the pause early (`audio_pause_end`: tones return for conditions
/// still present).
pub fn audio_pause(
    trail: &dyn Trail,
    live: &dyn Live,
    auth: &Authorized,
    bed: Option<&BedId>,
    on: bool,
    now_ms: i64,
) -> Result<(), ActionError> {
    let action = if on {
        actions::AUDIO_PAUSE
    } else {
        actions::AUDIO_PAUSE_END
    };
    taken(
        trail,
        auth,
        (Permission::AudioPause, action),
        &pause_target(bed),
        now_ms,
        || {
            if on {
                live.audio_pause(bed, auth)
            } else {
                live.end_audio_pause(bed, auth)
            }
        },
    )
}

/// The proof checked, the action taken by the engine, then audited. The action took effect: a
/// trail that cannot be written is logged, not reported as a failure.
fn taken(
    trail: &dyn Trail,
    auth: &Authorized,
    (permission, action): (Permission, &str),
    target: &str,
    now_ms: i64,
    take: impl FnOnce() -> Result<(), ActionError>,
) -> Result<(), ActionError> {
    let user = auth.require(permission)?;
    take()?;
    let entry = Entry {
        user,
        action,
        target,
        detail: "",
    };
    if let Err(e) = trail.append(&entry, now_ms) {
        tracing::error!(error = %e, action, target, "writing the audit trail failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecase::testkit::{
        allow_audit, charge_nurse, entries, it, refuse_audit, service, FakeLive,
    };

    #[test]
    fn alarm_actions_are_taken_by_the_engine_then_audited() {
        let (_dir, svc, p) = charge_nurse(&[Permission::AcknowledgeAlarm, Permission::AudioPause]);
        let (ack, pause) = (&p[0], &p[1]);
        let live = FakeLive::default();
        let bed = BedId::new("4W", "03");
        acknowledge_alarm(&svc, &live, ack, "a-17", 2_000).expect("acknowledged");
        audio_pause(&svc, &live, pause, Some(&bed), true, 2_001).expect("paused");
        audio_pause(&svc, &live, pause, None, false, 2_002).expect("ended");
        assert_eq!(
            live.alarm_actions(),
            ["acknowledge a-17", "pause 4W/03", "end all beds"]
        );
        let trail: Vec<(String, String, String, String)> = entries(&svc)
            .into_iter()
            .filter(|e| e.t_ms >= 2_000)
            .map(|e| (e.actor, e.action, e.target, e.detail))
            .collect();
        let row = |a: &str, t: &str| ("carl".into(), a.into(), t.into(), String::new());
        assert_eq!(
            trail,
            [
                row("alarm_acknowledge", "a-17"),
                row("audio_pause", "4W/03"),
                row("audio_pause_end", "all beds"),
            ]
        );
    }

    #[test]
    fn a_refused_alarm_action_is_not_audited_and_the_wrong_proof_is_refused() {
        let (_dir, svc) = service();
        let live = FakeLive::default();
        let before = entries(&svc).len();
        // Another permission's proof: refused before the engine is asked.
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            acknowledge_alarm(&svc, &live, &wrong, "a-1", 1),
            Err(ActionError::Auth(_))
        ));
        assert!(matches!(
            audio_pause(&svc, &live, &wrong, None, true, 1),
            Err(ActionError::Auth(_))
        ));
        assert!(live.alarm_actions().is_empty());
        // The engine refuses (an alarm no longer shown): nothing audited.
        let unattended = svc.authorize_unattended_pause(None, 1).expect("pause");
        live.set_refuse(true);
        assert!(audio_pause(&svc, &live, &unattended, None, false, 2).is_err());
        assert_eq!(entries(&svc).len(), before);
    }

    #[test]
    fn an_alarm_action_stands_when_the_trail_cannot_be_written() {
        let (_dir, svc) = service();
        let live = FakeLive::default();
        // Nobody logged in: the station's own pause.
        let unattended = svc.authorize_unattended_pause(None, 1).expect("pause");
        assert_eq!(unattended.user(), "station (not logged in)");
        let before = entries(&svc).len();
        refuse_audit(&svc);
        audio_pause(&svc, &live, &unattended, None, true, 5).expect("the pause is taken");
        assert_eq!(live.alarm_actions(), ["pause all beds"]);
        allow_audit(&svc);
        assert_eq!(entries(&svc).len(), before, "(logged as an error)");
        audio_pause(&svc, &live, &unattended, None, true, 6).expect("paused");
        let e = entries(&svc).pop().expect("entry");
        assert_eq!(
            (e.actor.as_str(), e.action.as_str(), e.target.as_str()),
            ("station (not logged in)", "audio_pause", "all beds")
        );
    }
}
