//! Hospital IT's station settings in the window: the device registry (which device feeds which
//! bed), the ward profile and latching alarms, and the broker. Each function checks its
//! permission first (manage_devices, manage_ward_profiles, broker_settings) and hands the
//! [`Authorized`](vigil_core::auth::Authorized) proof to its use case (`vigil_core::usecase`),
//! which saves the change with its audit entry and applies it to the running engine.

use std::path::Path;

use serde::Serialize;
use vigil_core::alarms::WardProfile;
use vigil_core::auth::Permission;
use vigil_core::config::{self, BrokerSection};
use vigil_core::ingest::{self, Registry};
use vigil_core::settings::{self, Flag, StationSettings};
use vigil_core::telemetry::{BedId, DeviceId, DeviceStatus};
use vigil_core::usecase::{self, Live};

use crate::error::ApiError;
use crate::session::{self, AuthState};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

/// One row of the devices screen: a registered device, or one heard on the broker that is not
/// registered (`registered` false), with its live state.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
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

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
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

/// Save a yes/no ward setting ([`usecase::set_flag`]); nurse acknowledgement applies to the
/// permission check at once, high alarms latching to the engine.
pub fn set_flag(st: &AuthState, live: &dyn Live, flag: Flag, on: bool) -> Result<(), ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageWardProfiles, now)?;
    Ok(usecase::set_flag(&mut g.svc, &proof, live, flag, on, now)?)
}

/// Set the ward profile ([`usecase::set_ward_profile`]).
pub fn set_ward_profile(st: &AuthState, live: &dyn Live, name: &str) -> Result<(), ApiError> {
    let profile = WardProfile::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown ward profile {name:?} (adult, paediatric, neonatal)"
        ))
    })?;
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageWardProfiles, now)?;
    Ok(usecase::set_ward_profile(
        &g.svc, &proof, live, profile, now,
    )?)
}

/// Make `code` latch or not ([`usecase::set_latching`]).
pub fn set_latching(
    st: &AuthState,
    live: &dyn Live,
    code: &str,
    latching: bool,
) -> Result<(), ApiError> {
    let code = usecase::LatchCode::parse(code)?;
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ManageWardProfiles, now)?;
    Ok(usecase::set_latching(
        &g.svc, &proof, live, &code, latching, now,
    )?)
}

/// What the broker screen shows (never a password).
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
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

/// Write the broker URL and ward to the config file (restart needed), audited
/// ([`usecase::save_broker`]). Returns the file written.
pub fn save_broker(
    st: &AuthState,
    config_path: Option<&Path>,
    url: Option<&str>,
    ward: Option<&str>,
) -> Result<String, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::BrokerSettings, now)?;
    let path = usecase::save_broker(&g.svc, &proof, config_path, url, ward, now)?;
    Ok(path.display().to_string())
}
