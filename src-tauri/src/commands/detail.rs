//! The bed detail screen: alarm limits (view, change), history (trends, full-disclosure
//! waveforms, alarm history) and admit / discharge / transfer. Plain functions over
//! [`AuthState`] (the Tauri wrappers are in `commands/mod.rs`); each starts with its permission
//! check ([`require`]) and then delegates to vigil-core.
//!
//! History is read on a read-only connection of its own, opened after the check, so that a long
//! query never holds the session lock.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vigil_core::alarms::{Direction, Limit};
use vigil_core::auth::{Permission, PhiRead};
use vigil_core::codes::{self, Vital};
use vigil_core::patients::{self, Patient};
use vigil_core::telemetry::BedId;
use vigil_core::{query, store, usecase};

use crate::commands::alarms::parse_bed;
use crate::error::ApiError;
use crate::session::{self, require, AuthState};

/// Longest trend span in one call.
pub const MAX_TREND_SPAN_MS: i64 = 31 * 24 * 3_600_000;
/// Most buckets a trend may ask for.
pub const MAX_TREND_BUCKETS: u32 = 2000;
/// Longest full-disclosure window in one call.
pub const MAX_SAMPLES_SPAN_MS: i64 = 60_000;
/// Longest alarm-history span in one call, and most rows returned (the newest).
pub const MAX_ALARM_SPAN_MS: i64 = 31 * 24 * 3_600_000;
pub const MAX_ALARM_ROWS: usize = 1000;

/// What the detail screen needs of the running engine: the use cases' live station (a fake in
/// the tests).
pub use vigil_core::usecase::Live as Monitor;

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Low => "low",
        Direction::High => "high",
    }
}

/// One alarm limit as the window shows and edits it.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct LimitOut {
    /// "SPO2_LOW".
    pub code: String,
    /// "SPO2".
    pub vital: &'static str,
    /// "SpO2 LOW".
    pub label: String,
    /// `low` or `high`.
    pub direction: &'static str,
    pub threshold: f64,
    /// [`vigil_core::alarms::Priority::as_str`].
    #[ts(as = "vigil_core::alarms::Priority")]
    pub priority: &'static str,
    pub delay_ms: i64,
    pub hysteresis: f64,
    pub unit: &'static str,
    /// The range the threshold may be set to.
    pub min: f64,
    pub max: f64,
}

impl From<&Limit> for LimitOut {
    fn from(l: &Limit) -> Self {
        let (min, max) = vigil_core::alarms::limits::settable_range(l.vital);
        LimitOut {
            code: l.code(),
            vital: l.vital.name(),
            label: l.label(),
            direction: direction_str(l.direction),
            threshold: l.threshold,
            priority: l.priority.as_str(),
            delay_ms: l.delay_ms,
            hysteresis: l.hysteresis,
            unit: l.vital.unit(),
            min,
            max,
        }
    }
}

/// The bed's alarm limits. Open like the live ward: limits are no patient identity, and the
/// screen that shows the alarms shows what they are measured against.
pub fn bed_limits(st: &AuthState, mon: &dyn Monitor, bed: &str) -> Result<Vec<LimitOut>, ApiError> {
    super::auth::ward_access(st)?;
    let bed = parse_bed(bed)?;
    Ok(mon.limits(&bed).iter().map(LimitOut::from).collect())
}

/// A new threshold for one of the bed's limits.
#[derive(Debug, Clone, Deserialize, PartialEq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct ThresholdChange {
    pub code: String,
    pub threshold: f64,
}

/// Change thresholds of the bed's limits (charge nurse): [`usecase::set_bed_limits`] (checked,
/// saved with an audit entry "CODE old → new" in one transaction that commits only once the
/// engine applied them); returns the limits now in force.
pub fn set_bed_limits(
    st: &AuthState,
    mon: &dyn Monitor,
    bed: &str,
    changes: &[ThresholdChange],
) -> Result<Vec<LimitOut>, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let proof = session::authorized(&mut g, Permission::ChangePatientLimits, now)?;
    let bed = parse_bed(bed)?;
    let changes: Vec<usecase::ThresholdChange> = changes
        .iter()
        .map(|c| usecase::ThresholdChange {
            code: c.code.clone(),
            threshold: c.threshold,
        })
        .collect();
    let now_in_force = usecase::set_bed_limits(&g.svc, &proof, mon, &bed, &changes, now)?;
    Ok(now_in_force.iter().map(LimitOut::from).collect())
}

/// The steps every read of a bed's history takes first, in order: the right to view history,
/// the bed, what is read (`kind` parses it and names it for the trail), a window of at most
/// `max_span_ms`, and the read recorded in the audit trail (one entry per run of reads: see
/// `vigil_core::auth::PhiRead`).
fn history_read<K>(
    st: &AuthState,
    bed: &str,
    (from_ms, to_ms, max_span_ms): (i64, i64, i64),
    kind: impl FnOnce() -> Result<(K, String), ApiError>,
) -> Result<(BedId, K), ApiError> {
    {
        let now = st.now();
        let mut g = st.lock();
        require(&mut g, Permission::ViewHistory, now)?;
    }
    let bed = parse_bed(bed)?;
    let (k, what) = kind()?;
    check_span(from_ms, to_ms, max_span_ms)?;
    let now = st.now();
    let mut g = st.lock();
    let (svc, s) = require(&mut g, Permission::ViewHistory, now)?;
    let read = PhiRead {
        bed: &bed.key(),
        what: &what,
        from_ms,
        to_ms,
    };
    svc.audit_read(s, read, now)?;
    Ok((bed, k))
}

fn check_span(from_ms: i64, to_ms: i64, max: i64) -> Result<(), ApiError> {
    if to_ms <= from_ms {
        return Err(ApiError::bad_request(
            "the time range ends before it starts",
        ));
    }
    if to_ms.saturating_sub(from_ms) > max {
        return Err(ApiError::bad_request(format!(
            "the time range is longer than {} s",
            max / 1000
        )));
    }
    Ok(())
}

/// Trend bucket sizes, ms: the smallest at least span / buckets is used.
const NICE_BUCKETS_MS: [i64; 18] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 7_200_000, 14_400_000, 21_600_000, 43_200_000, 86_400_000,
];

/// The bucket for a trend of `span_ms` in at most `buckets` buckets.
pub fn bucket_ms(span_ms: i64, buckets: u32) -> i64 {
    let n = i64::from(buckets.max(1));
    let want = (span_ms.max(1) + n - 1) / n;
    NICE_BUCKETS_MS
        .iter()
        .copied()
        .find(|&b| b >= want)
        .unwrap_or(NICE_BUCKETS_MS[NICE_BUCKETS_MS.len() - 1])
}

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct TrendPoint {
    pub t: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub n: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct TrendOut {
    pub vital: &'static str,
    pub unit: &'static str,
    pub from_ms: i64,
    pub to_ms: i64,
    pub bucket_ms: i64,
    /// Buckets with readings only: a missing bucket is a gap.
    pub points: Vec<TrendPoint>,
}

/// Min / max / mean of a vital per bucket (view_history).
pub fn trend(
    st: &AuthState,
    db: &Path,
    bed: &str,
    vital: &str,
    from_ms: i64,
    to_ms: i64,
    buckets: u32,
) -> Result<TrendOut, ApiError> {
    let (bed, vital) = history_read(st, bed, (from_ms, to_ms, MAX_TREND_SPAN_MS), || {
        let v = Vital::from_name(vital)
            .ok_or_else(|| ApiError::bad_request(format!("unknown vital {vital:?}")))?;
        Ok((v, format!("trend {}", v.name())))
    })?;
    let b = bucket_ms(to_ms - from_ms, buckets.clamp(1, MAX_TREND_BUCKETS));
    let conn = store::open_read_only(db)?;
    let rows = query::trend(&conn, &bed, vital, from_ms, to_ms, b)?;
    Ok(TrendOut {
        vital: vital.name(),
        unit: vital.unit(),
        from_ms,
        to_ms,
        bucket_ms: b,
        points: rows
            .into_iter()
            .map(|r| TrendPoint {
                t: r.t_ms,
                min: r.min,
                max: r.max,
                mean: r.mean,
                n: r.n,
            })
            .collect(),
    })
}

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct SamplesOut {
    pub channel: &'static str,
    pub unit: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Contiguous stretches of samples inside the window, in time order.
    pub segments: Vec<query::Stretch>,
    /// Where there is no signal inside the window (recorded gaps and stretches with nothing
    /// stored), merged, in time order: `[from_ms, to_ms]`.
    pub gaps: Vec<[i64; 2]>,
}

/// Stored samples of one channel for full-disclosure review (view_history): at most
/// [`MAX_SAMPLES_SPAN_MS`] per call, with the gaps said explicitly. A window reaching past now
/// counts as a gap only up to now.
pub fn samples(
    st: &AuthState,
    db: &Path,
    bed: &str,
    channel: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<SamplesOut, ApiError> {
    let now = st.now();
    let (bed, info) = history_read(st, bed, (from_ms, to_ms, MAX_SAMPLES_SPAN_MS), || {
        let c = codes::channel(channel)
            .ok_or_else(|| ApiError::bad_request(format!("unknown channel {channel:?}")))?;
        Ok((c, format!("samples {}", c.name)))
    })?;
    let conn = store::open_read_only(db)?;
    let got = query::disclosure(&conn, &bed, info.name, from_ms, to_ms, now)?;
    Ok(SamplesOut {
        channel: info.name,
        unit: got.unit,
        from_ms,
        to_ms,
        segments: got.segments,
        gaps: got.gaps,
    })
}

/// One raised alarm and what became of it, with its priority's marker ("***", "**", "*").
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct AlarmHistoryOut {
    #[serde(flatten)]
    pub episode: query::AlarmEpisode,
    pub marker: &'static str,
}

/// The alarms raised on a bed in `[from_ms, to_ms)`, newest first, with who acknowledged them
/// and when they ended (view_history).
pub fn alarm_history(
    st: &AuthState,
    db: &Path,
    bed: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<AlarmHistoryOut>, ApiError> {
    let now = st.now();
    let (bed, ()) = history_read(st, bed, (from_ms, to_ms, MAX_ALARM_SPAN_MS), || {
        Ok(((), "alarm history".to_string()))
    })?;
    let conn = store::open_read_only(db)?;
    let episodes = query::alarm_episodes(&conn, &bed, from_ms, to_ms, now, MAX_ALARM_ROWS)?;
    Ok(episodes
        .into_iter()
        .map(|episode| AlarmHistoryOut {
            marker: episode.priority.marker(),
            episode,
        })
        .collect())
}

/// A patient as the window gets one; `masked`: identity withheld (initials only, no MRN).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct PatientOut {
    pub bed: String,
    pub mrn: String,
    pub name: String,
    pub dob: Option<String>,
    /// Whole years today (from the date of birth; none while masked).
    pub age: Option<u32>,
    /// `F`, `M`, `X`, `U`.
    pub sex: Option<String>,
    pub pacemaker: bool,
    pub admitted_ms: i64,
    pub masked: bool,
}

impl PatientOut {
    fn new(p: &Patient, masked: bool) -> PatientOut {
        let p = if masked { p.masked() } else { p.clone() };
        let now = vigil_core::store::now_ms();
        PatientOut {
            bed: p.bed.key(),
            mrn: p.mrn,
            age: p.dob.as_deref().and_then(|d| patients::age_years(d, now)),
            name: p.name,
            dob: p.dob,
            sex: p.sex,
            pacemaker: p.pacemaker,
            admitted_ms: p.admitted_ms,
            masked,
        }
    }
}

/// An admission as the window sends it: two identifiers (MRN, date of birth) and the header.
#[derive(Debug, Clone, Default, serde::Deserialize, ts_rs::TS)]
pub struct AdmitIn {
    pub mrn: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub dob: String,
    #[serde(default)]
    #[ts(as = "Option<_>", optional)]
    pub sex: String,
    #[serde(default)]
    #[ts(as = "Option<_>", optional)]
    pub pacemaker: bool,
}

/// The patients in the ward's beds. Open to every state like the ward itself, but the backend
/// masks identities (initials, no MRN) unless the session may see the ward: no session,
/// locked, password change pending, administrator.
pub fn list_patients(st: &AuthState) -> Result<Vec<PatientOut>, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let masked = g
        .svc
        .screen_state(g.session.as_ref(), now)
        .mask_patient_identity;
    let all = patients::current(g.svc.connection())?;
    if !masked {
        // Names and MRNs shown: who saw them is recorded (one entry per run of reads).
        let crate::session::AuthInner { svc, session } = &mut *g;
        if let Some(s) = session.as_ref() {
            svc.audit_read(
                s,
                PhiRead {
                    bed: "*",
                    what: "patient list",
                    from_ms: now,
                    to_ms: now,
                },
                now,
            )?;
        }
    }
    Ok(all.iter().map(|p| PatientOut::new(p, masked)).collect())
}

/// An admission, discharge or transfer as the window asks for it (beds as "ward/bed").
#[derive(Debug, Clone, Copy)]
pub enum Adt<'a> {
    /// Admit a patient to an empty bed: [`usecase::admit_patient`].
    Admit { bed: &'a str, patient: &'a AdmitIn },
    /// Discharge the patient in a bed (its limits go back to the defaults and the bed to
    /// standby): [`usecase::discharge_patient`].
    Discharge { bed: &'a str },
    /// Move a patient to an empty bed (the patient's limits move along):
    /// [`usecase::transfer_patient`].
    Transfer { from_bed: &'a str, to_bed: &'a str },
}

/// Admit, discharge or transfer a patient: admit_discharge_transfer, and change_patient_limits
/// for the limits and standby that follow the patient (both checked before the beds); the
/// patient as it then stands.
pub fn adt(st: &AuthState, mon: &dyn Monitor, change: Adt<'_>) -> Result<PatientOut, ApiError> {
    let now = st.now();
    let mut g = st.lock();
    let adt = session::authorized(&mut g, Permission::AdmitDischargeTransfer, now)?;
    let monitoring = g
        .svc
        .authorize(g.session.as_ref(), Permission::ChangePatientLimits, now)?;
    let (svc, a, m) = (&g.svc, &adt, &monitoring);
    let p = match change {
        Adt::Admit { bed, patient } => {
            let bed = parse_bed(bed)?;
            let np = patients::NewPatient {
                mrn: &patient.mrn,
                name: &patient.name,
                dob: &patient.dob,
                sex: &patient.sex,
                pacemaker: patient.pacemaker,
            };
            usecase::admit_patient(svc, mon, a, m, &bed, &np, now)?
        }
        Adt::Discharge { bed } => {
            usecase::discharge_patient(svc, mon, a, m, &parse_bed(bed)?, now)?
        }
        Adt::Transfer { from_bed, to_bed } => {
            let (from, to) = (parse_bed(from_bed)?, parse_bed(to_bed)?);
            usecase::transfer_patient(svc, mon, a, m, &from, &to, now)?
        }
    };
    Ok(PatientOut::new(&p, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bed_keys() {
        assert_eq!(parse_bed("4W/03").unwrap(), BedId::new("4W", "03"));
        for bad in ["", "4W", "/03", "4W/", "4W/03/x", "4W/\n"] {
            assert_eq!(parse_bed(bad).unwrap_err().code, "bad_request", "{bad:?}");
        }
    }

    #[test]
    fn trend_buckets_follow_the_span() {
        const H: i64 = 3_600_000;
        assert_eq!(bucket_ms(H, 600), 10_000);
        assert_eq!(bucket_ms(8 * H, 600), 60_000);
        assert_eq!(bucket_ms(24 * H, 600), 300_000);
        assert_eq!(bucket_ms(72 * H, 600), 600_000);
        assert_eq!(bucket_ms(60_000, 600), 1_000);
        assert_eq!(bucket_ms(400 * 24 * H, 10), 86_400_000);
        assert_eq!(bucket_ms(H, 0), 3_600_000);
    }
}
