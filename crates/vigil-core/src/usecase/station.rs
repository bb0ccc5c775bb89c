//! The station's settings changed in the window: the ward profile, latching alarms, the yes/no
//! ward settings (high alarms latch, nurses acknowledge), the alarm volume, and the broker in
//! the config file. Each is saved with its audit entry in one transaction and applied to the
//! running station before the commit ([`setting_changed`]).

use std::path::{Path, PathBuf};

use super::{set_member, setting_changed, ActionError, Entry, Live, Step};
use crate::alarms::WardProfile;
use crate::audit::actions;
use crate::auth::{AuthService, Authorized, Permission, WardPolicy};
use crate::config;
use crate::settings::{self, clamp_volume, Flag, List, StationSettings};

/// An alarm code the ward may make latch: one of [`settings::latchable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatchCode(String);

impl LatchCode {
    pub fn parse(code: &str) -> Result<LatchCode, ActionError> {
        if settings::latchable().iter().any(|c| c == code) {
            Ok(LatchCode(code.to_string()))
        } else {
            Err(ActionError::Invalid(format!(
                "{code:?} is not an alarm code that can latch"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Set the ward profile (the default limits of beds without their own): `ward_profile_change`
/// "old -> new"; a configuration change.
pub fn set_ward_profile(
    svc: &AuthService,
    auth: &Authorized,
    live: &dyn Live,
    profile: WardProfile,
    now_ms: i64,
) -> Result<(), ActionError> {
    let user = auth.require(Permission::ManageWardProfiles)?;
    let old = StationSettings::load(svc.connection())?.profile;
    let change = format!("{} -> {}", old.as_str(), profile.as_str());
    let entry = Entry {
        user,
        action: actions::WARD_PROFILE_CHANGE,
        target: "station",
        detail: &change,
    };
    let save = |c: &_| Ok(StationSettings::save_profile(c, profile, user, now_ms)?);
    let step = Step::new(
        "ward profile",
        move || live.set_ward_profile(profile, auth),
        move || live.set_ward_profile(old, auth),
    );
    let report = format!("ward profile {change}");
    setting_changed(svc, &entry, save, &[step], Some(report), now_ms)
}

/// Make `code` latch (stay shown until acknowledged) or not: `alarm_latching_change`; a
/// configuration change.
pub fn set_latching(
    svc: &AuthService,
    auth: &Authorized,
    live: &dyn Live,
    code: &LatchCode,
    latching: bool,
    now_ms: i64,
) -> Result<(), ActionError> {
    let user = auth.require(Permission::ManageWardProfiles)?;
    let code = code.as_str();
    let mut set = StationSettings::load(svc.connection())?.latching;
    let was = set_member(&mut set, code.to_string(), latching);
    let what = if latching { "latching" } else { "not latching" };
    let entry = Entry {
        user,
        action: actions::ALARM_LATCHING_CHANGE,
        target: code,
        detail: what,
    };
    let save = |c: &_| {
        Ok(StationSettings::save_list(
            c,
            List::Latching,
            &set,
            user,
            now_ms,
        )?)
    };
    let step = Step::new(
        format!("latching of {code}"),
        move || live.set_latching(code, latching, auth),
        move || live.set_latching(code, was, auth),
    );
    let report = format!("alarm {code} {what}");
    setting_changed(svc, &entry, save, &[step], Some(report), now_ms)
}

/// Save a yes/no ward setting (`station_setting`, target the setting's key): high alarms
/// latch (applied to the engine), or nurses acknowledge (applied to the permission check).
pub fn set_flag(
    svc: &mut AuthService,
    auth: &Authorized,
    live: &dyn Live,
    flag: Flag,
    on: bool,
    now_ms: i64,
) -> Result<(), ActionError> {
    let user = auth.require(Permission::ManageWardProfiles)?;
    let was = StationSettings::load(svc.connection())?.latch_high;
    let entry = Entry {
        user,
        action: actions::STATION_SETTING,
        target: flag.key(),
        detail: flag.describe(on),
    };
    let save = |c: &_| Ok(StationSettings::save_flag(c, flag, on, user, now_ms)?);
    let latch_high = Step::new(
        "high alarms latch",
        move || live.set_latch_high(on, auth),
        move || live.set_latch_high(was, auth),
    );
    let steps = match flag {
        Flag::LatchHigh => std::slice::from_ref(&latch_high),
        Flag::NursesAcknowledge => &[],
    };
    setting_changed(svc, &entry, save, steps, None, now_ms)?;
    if flag == Flag::NursesAcknowledge {
        svc.set_policy(WardPolicy {
            nurses_acknowledge: on,
        });
    }
    Ok(())
}

/// Set the alarm volume (every role on duty), clamped so that it is never below
/// [`settings::MIN_VOLUME`]: `station_setting` "alarm_volume" "N %". Returns the volume saved,
/// for the player.
pub fn set_alarm_volume(
    svc: &AuthService,
    auth: &Authorized,
    percent: i64,
    now_ms: i64,
) -> Result<u8, ActionError> {
    let user = auth.require(Permission::AudioPause)?;
    let v = clamp_volume(percent);
    let entry = Entry {
        user,
        action: actions::STATION_SETTING,
        target: "alarm_volume",
        detail: &format!("{v} %"),
    };
    let save = |c: &_| Ok(StationSettings::save_volume(c, v, user, now_ms)?);
    setting_changed(svc, &entry, save, &[], None, now_ms)?;
    Ok(v)
}

/// Write the broker URL and ward (empty: none, the embedded broker / all wards) to the config
/// file at `path` (default: the platform's), used from the next start: `broker_settings_change`
/// "url=… ward=…", a configuration change. The file is written inside the audit entry's
/// transaction and put back as it was if the commit fails. Returns the file written.
pub fn save_broker(
    svc: &AuthService,
    auth: &Authorized,
    path: Option<&Path>,
    url: Option<&str>,
    ward: Option<&str>,
    now_ms: i64,
) -> Result<PathBuf, ActionError> {
    let user = auth.require(Permission::BrokerSettings)?;
    let path = path
        .map(Path::to_path_buf)
        .or_else(config::default_config_path)
        .ok_or_else(|| ActionError::ConfigFile("no config file location on this system".into()))?;
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    let ward = ward.map(str::trim).filter(|w| !w.is_empty());
    let change = format!(
        "url={} ward={}",
        url.unwrap_or("(embedded)"),
        ward.unwrap_or("(all)")
    );
    let before = std::fs::read(&path).ok();
    let file = Step::new(
        format!("config file {}", path.display()),
        || config::write_broker(&path, url, ward).map_err(|e| ActionError::Invalid(e.to_string())),
        || {
            match &before {
                Some(text) => crate::secure_fs::replace_private(&path, text),
                None => std::fs::remove_file(&path),
            }
            .map_err(|e| ActionError::ConfigFile(e.to_string()))
        },
    );
    let entry = Entry {
        user,
        action: actions::BROKER_SETTINGS_CHANGE,
        target: &path.display().to_string(),
        detail: &change,
    };
    let report = format!("broker settings saved: {change}");
    setting_changed(svc, &entry, |_| Ok(()), &[file], Some(report), now_ms)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::usecase::testkit::{
        allow_audit, entries, it, proofs, refuse_audit, service, FakeLive,
    };

    fn settings_of(svc: &AuthService) -> StationSettings {
        StationSettings::load(svc.connection()).expect("settings")
    }

    /// "actor action target detail" of the entries from `t` on.
    fn trail_since(svc: &AuthService, t: i64) -> Vec<String> {
        entries(svc)
            .into_iter()
            .filter(|e| e.t_ms >= t)
            .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.detail))
            .collect()
    }

    #[test]
    fn ward_settings_are_saved_audited_and_applied_together_or_not_at_all() {
        let (_dir, mut svc) = service();
        let auth = it(&svc, Permission::ManageWardProfiles);
        let live = FakeLive::default();
        let code = LatchCode::parse("SPO2_LOW").expect("latchable");
        assert!(matches!(
            LatchCode::parse("NO_SUCH"),
            Err(ActionError::Invalid(_))
        ));
        let untouched = |svc: &AuthService, live: &FakeLive| {
            assert_eq!(settings_of(svc), StationSettings::default());
            assert_eq!(*live.profile.lock().expect("fake"), None);
            assert!(live.latching.lock().expect("fake").is_empty());
            assert_eq!(*live.latch_high.lock().expect("fake"), None);
            assert!(trail_since(svc, 2_000).is_empty());
        };
        // The audit entry cannot be written: nothing saved, the engine never told.
        refuse_audit(&svc);
        let profile = WardProfile::Neonatal;
        assert!(set_ward_profile(&svc, &auth, &live, profile, 2_000).is_err());
        assert!(set_latching(&svc, &auth, &live, &code, true, 2_000).is_err());
        assert!(set_flag(&mut svc, &auth, &live, Flag::LatchHigh, false, 2_000).is_err());
        allow_audit(&svc);
        untouched(&svc, &live);
        // The engine refuses: nothing saved, nothing audited.
        live.set_refuse(true);
        assert!(set_ward_profile(&svc, &auth, &live, profile, 2_000).is_err());
        assert!(set_latching(&svc, &auth, &live, &code, true, 2_000).is_err());
        assert!(set_flag(&mut svc, &auth, &live, Flag::LatchHigh, false, 2_000).is_err());
        live.set_refuse(false);
        untouched(&svc, &live);
        // Another permission's proof.
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            set_ward_profile(&svc, &wrong, &live, profile, 2_000),
            Err(ActionError::Auth(_))
        ));
        assert!(matches!(
            set_flag(
                &mut svc,
                &wrong,
                &live,
                Flag::NursesAcknowledge,
                false,
                2_000
            ),
            Err(ActionError::Auth(_))
        ));
        untouched(&svc, &live);

        set_ward_profile(&svc, &auth, &live, profile, 2_001).expect("profile");
        set_latching(&svc, &auth, &live, &code, true, 2_002).expect("latching");
        set_flag(&mut svc, &auth, &live, Flag::LatchHigh, false, 2_003).expect("flag");
        set_flag(
            &mut svc,
            &auth,
            &live,
            Flag::NursesAcknowledge,
            false,
            2_004,
        )
        .expect("flag");
        let s = settings_of(&svc);
        assert_eq!(s.profile, profile);
        assert!(s.latching.contains("SPO2_LOW"));
        assert!(!s.latch_high && !s.nurses_acknowledge);
        assert_eq!(*live.profile.lock().expect("fake"), Some(profile));
        assert!(live.latching.lock().expect("fake").contains("SPO2_LOW"));
        assert_eq!(*live.latch_high.lock().expect("fake"), Some(false));
        assert!(
            !svc.policy().nurses_acknowledge,
            "applied to the permission check"
        );
        assert_eq!(
            trail_since(&svc, 2_000),
            [
                "cli:it ward_profile_change station adult -> neonatal",
                "cli:it alarm_latching_change SPO2_LOW latching",
                "cli:it station_setting latch_high high-priority alarms do not latch",
                "cli:it station_setting nurses_acknowledge only charge nurses acknowledge",
            ]
        );
    }

    #[test]
    fn the_alarm_volume_is_never_below_the_minimum() {
        let (_dir, mut svc) = service();
        let nurse = proofs(&mut svc, "nina", Role::Nurse, &[Permission::AudioPause]).remove(0);
        assert_eq!(
            set_alarm_volume(&svc, &nurse, 0, 2_000).expect("set"),
            settings::MIN_VOLUME
        );
        assert_eq!(settings_of(&svc).alarm_volume, settings::MIN_VOLUME);
        refuse_audit(&svc);
        assert!(set_alarm_volume(&svc, &nurse, 500, 2_001).is_err());
        allow_audit(&svc);
        assert_eq!(
            settings_of(&svc).alarm_volume,
            settings::MIN_VOLUME,
            "rolled back"
        );
        assert_eq!(
            set_alarm_volume(&svc, &nurse, 500, 2_002).expect("set"),
            100
        );
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(set_alarm_volume(&svc, &wrong, 50, 2_003).is_err());
        assert_eq!(
            trail_since(&svc, 2_000),
            [
                "nina station_setting alarm_volume 30 %",
                "nina station_setting alarm_volume 100 %",
            ]
        );
    }

    #[test]
    fn the_broker_file_is_written_only_with_its_audit_entry() {
        let (dir, svc) = service();
        let auth = it(&svc, Permission::BrokerSettings);
        let file = dir.path().join("vigil.toml");
        std::fs::write(&file, "# kept\n").expect("file");
        refuse_audit(&svc);
        assert!(save_broker(&svc, &auth, Some(&file), Some("mqtt://b:1883"), None, 2_000).is_err());
        allow_audit(&svc);
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "# kept\n");
        // Bad input: refused by the config file's own check, nothing audited.
        assert!(matches!(
            save_broker(&svc, &auth, Some(&file), Some("ftp://x"), None, 2_001),
            Err(ActionError::Invalid(_))
        ));
        let wrong = it(&svc, Permission::ManageDevices);
        assert!(matches!(
            save_broker(&svc, &wrong, Some(&file), None, None, 2_001),
            Err(ActionError::Auth(_))
        ));
        assert!(trail_since(&svc, 2_000).is_empty());
        let written = save_broker(
            &svc,
            &auth,
            Some(&file),
            Some(" mqtt://b:1883 "),
            Some(""),
            2_002,
        )
        .expect("saved");
        let text = std::fs::read_to_string(&written).expect("read");
        assert!(
            text.contains("# kept") && text.contains("mqtt://b:1883"),
            "{text}"
        );
        assert_eq!(
            trail_since(&svc, 2_000),
            [format!(
                "cli:it broker_settings_change {} url=mqtt://b:1883 ward=(all)",
                file.display()
            )]
        );
    }
}
