//! What the research exports share: the export's header and subject, the items fed to a writer
//! ([`ExportReading`], [`ExportWave`]), the counts and errors, and the rules both writers apply
//! to every item (see [`super::fhir_export`] and [`super::csv_export`]).
//!
//! - **Streaming**: a writer writes to the caller's [`std::io::Write`] as it is fed and never
//!   holds the export (24 h of full-disclosure waveforms is about 10^8 samples). Writers issue
//!   many small writes: pass a [`std::io::BufWriter`].
//! - **Order**: readings must come in time order (non-decreasing `t_ms`, all vitals together);
//!   the stretches of one waveform channel in time order (non-decreasing `t0_ms`; channels may
//!   come one after the other). Anything else is [`ExportError::OutOfOrder`].
//! - **Times** are checked after the de-identification shift: years 1900 to 2200 (the
//!   decoders' [`super::YEAR_RANGE`]); outside is [`ExportError::TimeOutOfRange`].
//! - **Numbers**: NaN and infinities are refused ([`ExportError::NotFinite`]), never written.
//! - **De-identification** ([`Subject::Deidentified`]): every time (items, period, generation
//!   time) is shifted by `shift_ms`; device ids become `device-1`, `device-2`, ... in order of
//!   first appearance in this writer; the bed is left out; the subject is only the pseudonym.
//!   The bundle id is written as given: the caller must not derive it from the patient.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use thiserror::Error;

use super::YEAR_RANGE;
use crate::codes::{ChannelInfo, Vital};
use crate::telemetry::{BedId, ObsStatus, MAX_SAMPLE_RATE};

/// Whose data an export holds, and whether it is identified.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// Identified export. FHIR: a Patient resource (name, the MRN as an identifier with the
    /// caller's `mrn_system`, birth date, gender) is the first entry and every Observation
    /// references it. `sex`: `F`, `M`, `X` or `U` (FHIR gender female, male, other, unknown).
    /// `dob`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. `id`: the Patient's FHIR id
    /// (`[A-Za-z0-9.-]{1,64}`).
    Identified {
        id: String,
        name: String,
        mrn: String,
        mrn_system: String,
        dob: Option<String>,
        sex: Option<String>,
    },
    /// De-identified export: no identity at all; Observations reference `Patient/{pseudonym}`
    /// (a FHIR id, `[A-Za-z0-9.-]{1,64}`), every time is shifted by `shift_ms` (the per-export
    /// offset the caller draws and keeps secret), devices are renamed `device-1`, `device-2`,
    /// ... and the bed is left out.
    Deidentified { pseudonym: String, shift_ms: i64 },
    /// No patient admitted: the Observations have no subject. Otherwise as identified.
    None,
}

/// The head of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportHeader {
    /// FHIR `Bundle.id` (`[A-Za-z0-9.-]{1,64}`), also named in the CSV metadata. Written as
    /// given, also when de-identified.
    pub bundle_id: String,
    /// When the export was made, ms since the Unix epoch (`Bundle.timestamp`); shifted when
    /// de-identified.
    pub generated_ms: i64,
    /// The period the export covers (start, end), ms since the Unix epoch; `start <= end`.
    /// Shifted when de-identified and checked like any time. Written in the CSV metadata; a
    /// FHIR `collection` Bundle has no element for it. Items are not checked against it.
    pub period_ms: (i64, i64),
    /// Whose data these are, identified or not.
    pub subject: Subject,
    /// The bed the data come from. Identified (and no-patient) exports only: FHIR writes it as
    /// the R4 core extension `event-location` on every Observation, CSV in the metadata. Left
    /// out when de-identified.
    pub bed: Option<BedId>,
}

/// One numeric reading to export (in its vital's Vigil unit, [`Vital::unit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReading {
    /// Measurement time, ms since the Unix epoch.
    pub t_ms: i64,
    /// What was measured.
    pub vital: Vital,
    /// `None` = no reading (FHIR `dataAbsentReason` `unknown`, an empty CSV cell).
    pub value: Option<f64>,
    /// The result status as stored.
    pub status: ObsStatus,
    /// The device that measured it (empty = unknown).
    pub device: String,
}

/// One contiguous stretch of waveform samples: sample `i` is at `t0_ms + i × 1000 / rate` and
/// its value is `origin + factor × data[i]`, in the channel's unit ([`ChannelInfo::unit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportWave {
    /// The channel (from [`crate::codes::CHANNELS`]).
    pub channel: &'static ChannelInfo,
    /// Time of the first sample, ms since the Unix epoch.
    pub t0_ms: i64,
    /// Samples per second, in (0, [`MAX_SAMPLE_RATE`]].
    pub rate: f64,
    /// Physical value of a raw 0.
    pub origin: f64,
    /// Physical value of one raw step; non-zero.
    pub factor: f64,
    /// Raw samples, in time order without gaps.
    pub data: Vec<i32>,
    /// The device that recorded it (empty = unknown).
    pub device: String,
}

/// What a writer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportCounts {
    /// FHIR Observation resources (a blood pressure panel is one; a long stretch may be
    /// several). 0 for CSV.
    pub observations: u64,
    /// Readings written (each of a panel's components counts).
    pub readings: u64,
    /// Waveform stretches fed and written (empty stretches are skipped and not counted).
    pub stretches: u64,
    /// Waveform samples written.
    pub samples: u64,
}

/// Why an export failed. The output written so far is incomplete and must be discarded.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The caller's writer failed.
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    /// serde_json refused to encode a resource (not expected: every number is checked).
    #[error("encoding the export as JSON failed: {0}")]
    Json(String),
    /// The header is unusable (an id that is no FHIR id, an unknown sex, a bad birth date,
    /// a period that ends before it starts).
    #[error("invalid export header: {field}: {why}")]
    Header { field: &'static str, why: String },
    /// A value, origin, factor or scaled sample is NaN or infinite.
    #[error("{what} at t = {t_ms} ms is not a finite number")]
    NotFinite { what: String, t_ms: i64 },
    /// A time is outside the years 1900 to 2200 once shifted.
    #[error(
        "{what}: time {t_ms} ms (after any de-identification shift) is outside the years \
         {}..={}",
        YEAR_RANGE.0,
        YEAR_RANGE.1
    )]
    TimeOutOfRange { what: String, t_ms: i64 },
    /// An item earlier than the one before it (readings; or stretches of one channel).
    #[error(
        "{what} at t = {t_ms} ms comes after one at {last_ms} ms: items must be fed in time order"
    )]
    OutOfOrder {
        what: String,
        t_ms: i64,
        last_ms: i64,
    },
    /// A waveform stretch that cannot be written (rate out of range, factor 0).
    #[error("waveform {channel} at t0 = {t0_ms} ms: {why}")]
    Wave {
        channel: &'static str,
        t0_ms: i64,
        why: String,
    },
}

impl From<serde_json::Error> for ExportError {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            ExportError::Io(std::io::Error::other(e.to_string()))
        } else {
            ExportError::Json(e.to_string())
        }
    }
}

/// Whether `s` is a FHIR `id`: 1 to 64 of `A-Z a-z 0-9 - .`.
pub(crate) fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The time as a UTC date-time, if its year is within [`YEAR_RANGE`].
pub(crate) fn in_range(t_ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(t_ms)
        .filter(|t| (YEAR_RANGE.0..=YEAR_RANGE.1).contains(&t.year()))
}

/// ISO 8601 UTC with milliseconds and `Z` (`2026-11-23T10:00:00.000Z`), a FHIR `instant`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The rules every item goes through, shared by both writers: time shift and range, order,
/// device pseudonyms, finiteness.
#[derive(Debug)]
pub(crate) struct Rules {
    /// `Some(shift)` when de-identified.
    shift: Option<i64>,
    /// Real device id → pseudonym (de-identified only).
    devices: HashMap<String, String>,
    last_reading: Option<i64>,
    last_wave: HashMap<&'static str, i64>,
}

impl Rules {
    pub(crate) fn new(subject: &Subject) -> Rules {
        Rules {
            shift: match subject {
                Subject::Deidentified { shift_ms, .. } => Some(*shift_ms),
                _ => None,
            },
            devices: HashMap::new(),
            last_reading: None,
            last_wave: HashMap::new(),
        }
    }

    pub(crate) fn deidentified(&self) -> bool {
        self.shift.is_some()
    }

    /// The time to write: shifted when de-identified, within [`YEAR_RANGE`].
    pub(crate) fn time(&self, t_ms: i64, what: &str) -> Result<DateTime<Utc>, ExportError> {
        let out_of_range = |t_ms| ExportError::TimeOutOfRange {
            what: what.to_string(),
            t_ms,
        };
        let shifted = t_ms
            .checked_add(self.shift.unwrap_or(0))
            .ok_or_else(|| out_of_range(t_ms))?;
        in_range(shifted).ok_or_else(|| out_of_range(shifted))
    }

    /// The device id to write: the pseudonym when de-identified (empty stays empty).
    pub(crate) fn device(&mut self, device: &str) -> String {
        if !self.deidentified() || device.trim().is_empty() {
            return device.trim().to_string();
        }
        let next = self.devices.len() + 1;
        self.devices
            .entry(device.trim().to_string())
            .or_insert_with(|| format!("device-{next}"))
            .clone()
    }

    /// Check a reading (order, finiteness) before anything of it is written.
    pub(crate) fn check_reading(&mut self, r: &ExportReading) -> Result<(), ExportError> {
        if let Some(last) = self.last_reading {
            if r.t_ms < last {
                return Err(ExportError::OutOfOrder {
                    what: format!("reading {}", r.vital.name()),
                    t_ms: r.t_ms,
                    last_ms: last,
                });
            }
        }
        if r.value.is_some_and(|v| !v.is_finite()) {
            return Err(ExportError::NotFinite {
                what: format!("reading {}", r.vital.name()),
                t_ms: r.t_ms,
            });
        }
        self.time(r.t_ms, r.vital.name())?;
        self.last_reading = Some(r.t_ms);
        Ok(())
    }

    /// Check a waveform stretch (order, rate, finiteness, time range of both ends) before
    /// anything of it is written. `Ok(false)`: empty, nothing to write.
    pub(crate) fn check_wave(&mut self, w: &ExportWave) -> Result<bool, ExportError> {
        let name = w.channel.name;
        let bad = |why: String| ExportError::Wave {
            channel: name,
            t0_ms: w.t0_ms,
            why,
        };
        if let Some(&last) = self.last_wave.get(name) {
            if w.t0_ms < last {
                return Err(ExportError::OutOfOrder {
                    what: format!("waveform {name}"),
                    t_ms: w.t0_ms,
                    last_ms: last,
                });
            }
        }
        if !(w.rate.is_finite() && w.rate > 0.0 && w.rate <= MAX_SAMPLE_RATE) {
            return Err(bad(format!(
                "sample rate {} Hz is not in (0, {MAX_SAMPLE_RATE}]",
                w.rate
            )));
        }
        if !w.origin.is_finite() || !w.factor.is_finite() {
            return Err(ExportError::NotFinite {
                what: format!("waveform {name} origin or factor"),
                t_ms: w.t0_ms,
            });
        }
        if w.factor == 0.0 {
            return Err(bad("factor 0 (every sample would be the origin)".into()));
        }
        let (Some(&lo), Some(&hi)) = (w.data.iter().min(), w.data.iter().max()) else {
            return Ok(false);
        };
        for d in [lo, hi] {
            if !(w.origin + w.factor * f64::from(d)).is_finite() {
                return Err(ExportError::NotFinite {
                    what: format!("waveform {name} sample {d}"),
                    t_ms: w.t0_ms,
                });
            }
        }
        self.time(w.t0_ms, name)?;
        self.time(end_ms(w.t0_ms, w.rate, w.data.len()), name)?;
        self.last_wave.insert(name, w.t0_ms);
        Ok(true)
    }
}

/// `t0_ms + n × 1000 / rate`, rounded to the millisecond (the time of sample `n`, or for `n` =
/// the length, the end of the last sample's interval). Saturates rather than overflowing.
pub(crate) fn end_ms(t0_ms: i64, rate: f64, n: usize) -> i64 {
    let offset = (n as f64 * 1000.0 / rate).round();
    // Float to int casts saturate; an absurd offset is then caught by the time range check.
    t0_ms.saturating_add(offset as i64)
}

/// A deterministic export to feed the writers in tests: an hour of every vital (blood pressure
/// pairs, lone systolics, missing values, every status, three devices) and waveform stretches
/// at 360, 125, 250, 256 and 500 Hz, one of them longer than a decoder chunk.
#[cfg(test)]
pub(crate) mod testdata {
    use super::*;
    use crate::codes;

    /// 2026-11-23T10:00:00Z.
    pub const T0: i64 = 1_795_428_000_000;

    /// A small linear congruential generator (Knuth's MMIX constants).
    pub struct Lcg(pub u64);

    impl Lcg {
        pub fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        /// A value in the vital's plausible range with two decimals.
        pub fn value(&mut self, v: Vital) -> f64 {
            let (lo, hi) = v.info().plausible;
            let span = ((hi - lo) * 100.0) as u64;
            ((lo * 100.0).round() + (self.next() % span) as f64) / 100.0
        }

        pub fn status(&mut self) -> ObsStatus {
            ObsStatus::ALL[(self.next() % ObsStatus::ALL.len() as u64) as usize]
        }
    }

    pub const DEVICES: [&str; 3] = ["PHL-MX800-SN4471", "GE-B650-SN9931", "MAS-RAD97-SN0032"];

    fn reading(
        t_ms: i64,
        vital: Vital,
        value: Option<f64>,
        status: ObsStatus,
        device: &str,
    ) -> ExportReading {
        ExportReading {
            t_ms,
            vital,
            value,
            status,
            device: device.to_string(),
        }
    }

    /// Readings of `minutes` minutes, in time order.
    pub fn readings(minutes: i64, seed: u64) -> Vec<ExportReading> {
        let mut rng = Lcg(seed);
        let mut out = Vec::new();
        for m in 0..minutes {
            let t = T0 + m * 60_000 + (m % 7) * 13;
            for v in Vital::ALL {
                if matches!(v, Vital::NibpSys | Vital::NibpDia) {
                    continue;
                }
                let dev = if matches!(v, Vital::SpO2 | Vital::Pr) {
                    DEVICES[2]
                } else {
                    DEVICES[0]
                };
                let value = if (m + v as i64) % 17 == 0 {
                    None
                } else {
                    Some(rng.value(v))
                };
                let status = if m < 3 {
                    [ObsStatus::Final, ObsStatus::Amended, ObsStatus::Preliminary][m as usize]
                } else {
                    rng.status()
                };
                out.push(reading(t, v, value, status, dev));
            }
            // Blood pressure: a pair, a lone systolic every 10 minutes, a missing diastolic
            // every 13, a second device's pair and a systolic of another status every 11.
            let status = rng.status();
            let sys = rng.value(Vital::NibpSys);
            out.push(reading(t, Vital::NibpSys, Some(sys), status, DEVICES[0]));
            if m % 10 != 5 {
                let dia = (m % 13 != 4).then(|| rng.value(Vital::NibpDia));
                out.push(reading(t, Vital::NibpDia, dia, status, DEVICES[0]));
            }
            if m % 11 == 3 {
                out.push(reading(
                    t,
                    Vital::NibpDia,
                    Some(rng.value(Vital::NibpDia)),
                    ObsStatus::Final,
                    DEVICES[1],
                ));
                out.push(reading(
                    t,
                    Vital::NibpSys,
                    Some(rng.value(Vital::NibpSys)),
                    ObsStatus::Final,
                    DEVICES[1],
                ));
                let other = if status == ObsStatus::Cancelled {
                    ObsStatus::Final
                } else {
                    ObsStatus::Cancelled
                };
                out.push(reading(
                    t,
                    Vital::NibpSys,
                    Some(rng.value(Vital::NibpSys)),
                    other,
                    DEVICES[0],
                ));
            }
        }
        out
    }

    /// Waveform stretches; `long`: add a 125 s ECG stretch (45 000 samples at 360 Hz).
    pub fn waves(long: bool, seed: u64) -> Vec<ExportWave> {
        let mut rng = Lcg(seed);
        // (channel, t0 after T0, rate, origin, factor, samples, device)
        let specs: [(&str, i64, f64, f64, f64, usize, &str); 7] = [
            ("ECG_II", 1, 360.0, 0.0, 0.005, 45_000, DEVICES[0]),
            ("ECG_II", 200_000, 360.0, 0.0, 0.005, 1_000, DEVICES[0]),
            ("ECG_II", 210_003, 360.0, -0.125, 0.005, 7, DEVICES[0]),
            ("PLETH", 5, 125.0, 0.0, 0.001, 3_000, DEVICES[2]),
            ("RESP", 7, 250.0, -1.5, 0.0025, 2_500, DEVICES[0]),
            ("ECG_III", 9, 256.0, 0.25, 0.0009765625, 512, DEVICES[0]),
            ("ECG_I", 11, 500.0, 0.0, 0.0012, 1_500, DEVICES[0]),
        ];
        let mut out = Vec::new();
        for (name, dt, rate, origin, factor, n, device) in
            specs.into_iter().skip(usize::from(!long))
        {
            out.push(ExportWave {
                channel: codes::channel(name).unwrap_or_else(|| panic!("channel {name}")),
                t0_ms: T0 + dt,
                rate,
                origin,
                factor,
                data: (0..n).map(|_| (rng.next() % 4001) as i32 - 2000).collect(),
                device: device.to_string(),
            });
        }
        out
    }
}
