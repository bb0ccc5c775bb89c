//! Hospital IT's station settings in the window: the device registry (which device feeds which
//! bed), the ward profile and latching alarms, and the broker. Each function checks its
//! permission first (manage_devices, manage_ward_profiles, broker_settings), writes the change
//! to the station database or config file, and audits it; the Tauri wrappers in `mod.rs` then
//! apply it to the running engine with the [`Authorized`] proof returned here.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use vigil_core::alarms::WardProfile;
use vigil_core::audit::Audit;
use vigil_core::auth::{Authorized, Permission};
use vigil_core::config::{self, BrokerSection};
use vigil_core::ingest::{self, Registry};
use vigil_core::settings::{self, Flag, StationSettings};
use vigil_core::telemetry::{BedId, DeviceId, DeviceStatus};
use vigil_core::usecase;

use crate::error::ApiError;
use crate::session::{self, AuthState};

/// Audit action names of this module (beside `device_register` / `device_remove`).
pub mod actions {
    pub const WARD_PROFILE: &str = "ward_profile_change";
    pub const LATCHING: &str = "alarm_latching_change";
    pub const BROKER: &str = "broker_settings_change";
    pub use vigil_core::audit::actions::STATION_SETTING;
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

/// One row of the devices screen: a registered device, or one heard on the broker that is not
/// registered (`registered` false), with its live state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceRow {
    pub device: String,
    pub bed: String,
    pub label: String,
    pub registered: bool,
    pub enabled: bool,
    /// `online`, `offline`, or `unknown` (not heard since the station started).
    pub live: &'static str,
}

/// The registry and the devices heard live (`seen`, from the engine).
pub fn list_devices(st: &AuthState, seen: &[DeviceStatus]) -> Result<Vec<DeviceRow>, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, _) = session::require(&mut g, Permission::ManageDevices, now)?;
    let live = |device: &str| {
        seen.iter()
            .find(|d| d.device == device)
            .map_or("unknown", |d| if d.online { "online" } else { "offline" })
    };
    let mut rows: Vec<DeviceRow> = ingest::list_devices(svc.connection())
        .map_err(internal)?
        .into_iter()
        .map(|d| DeviceRow {
            live: live(&d.device),
            bed: d.bed.key(),
            device: d.device,
            label: d.label,
            registered: true,
            enabled: d.enabled,
        })
        .collect();
    for d in seen {
        if !rows.iter().any(|r| r.device == d.device) {
            rows.push(DeviceRow {
                device: d.device.clone(),
                bed: d.bed.key(),
                label: String::new(),
                registered: false,
                enabled: false,
                live: if d.online { "online" } else { "offline" },
            });
        }
    }
    Ok(rows)
}

/// Register `device` to `bed` (or move it there); returns the new registry for the engine.
pub fn register_device(
    st: &AuthState,
    device: &str,
    bed: &str,
    label: &str,
) -> Result<Registry, ApiError> {
    let input = usecase::RegisterDevice {
        device: DeviceId::parse(device.trim())?,
        bed: BedId::parse(bed.trim())?,
        label: usecase::Label::parse(label)?,
    };
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageDevices, now)?;
    Ok(usecase::register_device(&g.svc, &proof, &input, now)?)
}

/// Remove `device` from the registry; returns the new registry.
pub fn remove_device(st: &AuthState, device: &str) -> Result<Registry, ApiError> {
    let device = DeviceId::parse(device.trim())?;
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageDevices, now)?;
    Ok(usecase::remove_device(&g.svc, &proof, &device, now)?)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WardSettingsOut {
    pub profile: &'static str,
    pub profiles: Vec<&'static str>,
    pub latching: Vec<String>,
    pub latchable: Vec<String>,
    /// Every high-priority alarm latches.
    pub latch_high: bool,
    /// Nurses may acknowledge alarms.
    pub nurses_acknowledge: bool,
}

pub fn ward_settings(st: &AuthState) -> Result<WardSettingsOut, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, _) = session::require(&mut g, Permission::ManageWardProfiles, now)?;
    let s = StationSettings::load(svc.connection()).map_err(internal)?;
    Ok(WardSettingsOut {
        profile: s.profile.as_str(),
        profiles: WardProfile::ALL.iter().map(|p| p.as_str()).collect(),
        latching: s.latching.into_iter().collect(),
        latchable: settings::latchable(),
        latch_high: s.latch_high,
        nurses_acknowledge: s.nurses_acknowledge,
    })
}

/// Save a yes/no ward setting (audited); nurse acknowledgement applies to the permission
/// check at once. Returns the proof (the engine applies latching itself).
pub fn set_flag(st: &AuthState, flag: Flag, on: bool) -> Result<Authorized, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageWardProfiles, now)?;
    let conn = g.svc.connection();
    StationSettings::save_flag(conn, flag, on, proof.user(), now).map_err(internal)?;
    Audit::append(
        conn,
        proof.user(),
        actions::STATION_SETTING,
        flag.key(),
        flag.describe(on),
        now,
    )?;
    if flag == Flag::NursesAcknowledge {
        g.svc.set_policy(vigil_core::auth::WardPolicy {
            nurses_acknowledge: on,
        });
    }
    Ok(proof)
}

/// Save the ward profile; returns the proof and the profile for the engine.
pub fn set_ward_profile(st: &AuthState, name: &str) -> Result<(Authorized, WardProfile), ApiError> {
    let profile = WardProfile::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown ward profile {name:?} (adult, paediatric, neonatal)"
        ))
    })?;
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageWardProfiles, now)?;
    let conn = g.svc.connection();
    let old = StationSettings::load(conn).map_err(internal)?.profile;
    StationSettings::save_profile(conn, profile, proof.user(), now).map_err(internal)?;
    Audit::append(
        conn,
        proof.user(),
        actions::WARD_PROFILE,
        "station",
        &format!("{} -> {}", old.as_str(), profile.as_str()),
        now,
    )?;
    config_changed(
        &g.svc,
        proof.user(),
        format!("ward profile {} -> {}", old.as_str(), profile.as_str()),
        now,
    );
    Ok((proof, profile))
}

/// Make `code` latch or not; returns the proof for the engine.
pub fn set_latching(st: &AuthState, code: &str, latching: bool) -> Result<Authorized, ApiError> {
    if !settings::latchable().iter().any(|c| c == code) {
        return Err(ApiError::bad_request(format!(
            "{code:?} is not an alarm code that can latch"
        )));
    }
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageWardProfiles, now)?;
    let conn = g.svc.connection();
    let mut set: BTreeSet<String> = StationSettings::load(conn).map_err(internal)?.latching;
    if latching {
        set.insert(code.to_string());
    } else {
        set.remove(code);
    }
    StationSettings::save_latching(conn, &set, proof.user(), now).map_err(internal)?;
    Audit::append(
        conn,
        proof.user(),
        actions::LATCHING,
        code,
        if latching { "latching" } else { "not latching" },
        now,
    )?;
    config_changed(
        &g.svc,
        proof.user(),
        format!(
            "alarm {code} {}",
            if latching { "latching" } else { "not latching" }
        ),
        now,
    );
    Ok(proof)
}

/// What the broker screen shows (never a password).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BrokerOut {
    /// `embedded` (built-in broker and simulated ward) or `external`.
    pub mode: &'static str,
    /// The URL in use now.
    pub url: String,
    pub connected: bool,
    pub last_error: Option<String>,
    /// What the config file says (takes effect at the next start).
    pub config_path: Option<String>,
    pub configured_url: Option<String>,
    pub ward: Option<String>,
    pub client_id: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub username: Option<String>,
    pub password_set: bool,
}

/// What the station knows of its broker, for [`broker_settings`].
pub struct BrokerNow<'a> {
    pub mode: &'static str,
    pub url: String,
    pub connected: bool,
    pub last_error: Option<String>,
    pub config_path: Option<&'a Path>,
    pub section: &'a BrokerSection,
}

pub fn broker_settings(st: &AuthState, now_state: &BrokerNow<'_>) -> Result<BrokerOut, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    session::require(&mut g, Permission::BrokerSettings, now)?;
    let s = now_state.section;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    Ok(BrokerOut {
        mode: now_state.mode,
        url: now_state.url.clone(),
        connected: now_state.connected,
        last_error: now_state.last_error.clone(),
        config_path: now_state.config_path.map(|p| p.display().to_string()),
        configured_url: s.url.clone(),
        ward: s.ward.clone(),
        client_id: s.client_id.clone(),
        ca_file: path(&s.ca_file),
        cert_file: path(&s.cert_file),
        username: s.username.clone(),
        password_set: s.password.is_some() || s.password_env.is_some(),
    })
}

/// The broker settings to test: the config file's section with `url` in place of its own. The
/// station's credentials go only to the configured broker ([`BrokerSection::probe_settings`]);
/// returns whether they were withheld.
pub fn candidate(
    st: &AuthState,
    section: &BrokerSection,
    url: &str,
) -> Result<(config::BrokerSettings, bool), ApiError> {
    let now = st.now();
    let mut g = st.lock();
    session::require(&mut g, Permission::BrokerSettings, now)?;
    section
        .probe_settings(url)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A setting changed by `user`: a security event (info) besides its audit entry.
fn config_changed(svc: &vigil_core::auth::AuthService, user: &str, detail: String, now: i64) {
    svc.report_security(vigil_core::security::Occurrence::new(
        vigil_core::security::Kind::ConfigChange,
        vigil_core::security::Source::user(user),
        detail,
        now,
    ));
}

/// Write the broker URL and ward to the config file (restart needed), audited.
pub fn save_broker(
    st: &AuthState,
    config_path: Option<&Path>,
    url: Option<&str>,
    ward: Option<&str>,
) -> Result<String, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = session::require(&mut g, Permission::BrokerSettings, now)?;
    let user = s.user().to_string();
    let path = config_path
        .map(Path::to_path_buf)
        .or_else(config::default_config_path)
        .ok_or_else(|| ApiError::internal("no config file location on this system"))?;
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    let ward = ward.map(str::trim).filter(|w| !w.is_empty());
    config::write_broker(&path, url, ward).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Audit::append(
        svc.connection(),
        &user,
        actions::BROKER,
        &path.display().to_string(),
        &format!(
            "url={} ward={}",
            url.unwrap_or("(embedded)"),
            ward.unwrap_or("(all)")
        ),
        now,
    )?;
    config_changed(
        svc,
        &user,
        format!(
            "broker settings saved: url={} ward={}",
            url.unwrap_or("(embedded)"),
            ward.unwrap_or("(all)")
        ),
        now,
    );
    Ok(path.display().to_string())
}
