//! Research export as one HL7 FHIR R4 `collection` Bundle, written as it is fed
//! ([`FhirWriter`]). What it writes is what [`super::fhir::decode`] reads back: every reading and
//! every sample round-trips exactly (tested), except the status `unverified` (see below).
//!
//! Shape (after the official R4 vital-signs examples):
//! - **Bundle**: `resourceType`, `id` (the caller's), `meta.security` `PSEUDED` (v3
//!   ObservationValue, "pseudonymized") when de-identified, `type` `collection`, `timestamp`,
//!   then `entry` (left out when there is nothing in it: FHIR JSON has no empty arrays). Each
//!   entry has a `fullUrl` `urn:uuid:…` and a `resource`. The UUIDs are not random (this crate
//!   has no randomness): version 8, a hash of the bundle id, and the entry's index, so unique
//!   within the Bundle and across Bundles with different ids.
//! - **Patient** (identified exports only, the first entry): `id`, `identifier` (type `MR`,
//!   the caller's system, the MRN), `name.text`, `gender` (`F`/`M`/`X`/`U` → female, male,
//!   other, unknown), `birthDate`. Observations reference it by its `fullUrl`, which R4 resolves
//!   inside the Bundle. De-identified Observations reference `Patient/{pseudonym}` (no Patient
//!   resource); with [`Subject::None`] they have no `subject`.
//! - **Readings**: one Observation each: `status`, `category` `vital-signs` (capillary glucose:
//!   `laboratory`, it is no vital sign), `code` with the LOINC coding first and the MDC coding
//!   (`urn:iso:std:iso:11073:10101`), `effectiveDateTime` (UTC, milliseconds, `Z`),
//!   `valueQuantity` (value, a readable `unit`, UCUM system and code) or, for a reading without a
//!   value, `dataAbsentReason` `unknown` (data-absent-reason code system: the value should exist
//!   but is not known; Vigil does not know why a device sent none, and `asked-declined` would
//!   claim the patient refused), and `device` (`type` Device, `identifier.value` = the device
//!   id, which is what the decoder reads).
//! - **Blood pressure**: NIBP systolic and diastolic readings of the same device, instant and
//!   status are one panel Observation `85354-9` (MDC 150020) with components `8480-6` and
//!   `8462-4`, as in the official example; a lone systolic or diastolic is a panel with one
//!   component. The writer holds the readings of the current instant until the time moves on
//!   (or [`FhirWriter::finish`]), so a panel is written after the other readings of its instant.
//!   Mean pressure is an Observation of its own. `meta.profile` is not claimed: the R4 BP
//!   profile requires both components, and subject-less observations fit no vital-signs profile.
//! - **Waveforms**: one Observation per stretch, or per piece of a stretch longer than
//!   [`MAX_CHUNK_SAMPLES`] (the decoder's chunk limit); pieces are cut where the sample time is
//!   a whole millisecond whenever the rate allows (every 9 samples at 360 Hz), so each piece's
//!   start is exact. `category` `procedure` (as the official ECG example), `code` = the
//!   channel's MDC code, `effectivePeriod` (`start` = the first sample, `end` = start + n ×
//!   period, the end of the last sample's interval, rounded to the ms), `valueSampledData`
//!   (`origin` as a Quantity in the channel's UCUM unit, `period` = 1000 / rate ms, `factor`,
//!   `dimensions` 1, `data` the integers separated by spaces). `status` `final`.
//! - **Status**: [`ObsStatus`] by its FHIR name; `unverified` (device data no person verified,
//!   HL7 OBX-11 `R`) is not an R4 status and is written `preliminary`, the R4 status whose
//!   definition covers unverified results (as the HL7 v2-to-FHIR mapping of OBX-11 `R` does).
//! - **Numbers**: serde_json's shortest representation that reads back as the same `f64`.
//! - **Bed**: identified and no-patient exports carry the bed on every Observation as the R4
//!   core extension `http://hl7.org/fhir/StructureDefinition/event-location`, a Location
//!   reference by identifier (`ward/bed`) and display.
//!
//! Common rules (order, time range, de-identification, errors): [`super::export`].

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use super::export::{end_ms, is_fhir_id, iso, Rules};
pub use super::export::{
    ExportCounts, ExportError, ExportHeader, ExportReading, ExportWave, Subject,
};
use super::fhir::{LOINC_SYSTEM, UCUM_SYSTEM};
use crate::codes::{ChannelInfo, Vital};
use crate::telemetry::{ObsStatus, MAX_CHUNK_SAMPLES};

/// MDC code system URI written (the FHIR one).
pub const MDC_SYSTEM: &str = "urn:iso:std:iso:11073:10101";
/// FHIR observation-category code system.
pub const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// FHIR data-absent-reason code system.
pub const DATA_ABSENT_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// R4 core extension naming where an event happened.
pub const EVENT_LOCATION_URL: &str = "http://hl7.org/fhir/StructureDefinition/event-location";
/// LOINC blood pressure panel.
pub const BP_PANEL_LOINC: &str = "85354-9";
/// MDC_PRESS_BLD_NONINV, the non-invasive blood pressure compound.
pub const BP_PANEL_MDC: u32 = 150020;

/// The FHIR R4 ObservationStatus written for a status (`unverified` → `preliminary`).
pub fn fhir_status(s: ObsStatus) -> &'static str {
    match s {
        ObsStatus::Unverified => "preliminary",
        s => s.as_str(),
    }
}

/// The LOINC display name of a vital's code.
pub fn loinc_display(v: Vital) -> &'static str {
    match v {
        Vital::Hr => "Heart rate",
        Vital::Pr => "Heart rate by Pulse oximetry",
        Vital::SpO2 => "Oxygen saturation in Arterial blood by Pulse oximetry",
        Vital::Rr => "Respiratory rate",
        Vital::NibpSys => "Systolic blood pressure",
        Vital::NibpDia => "Diastolic blood pressure",
        Vital::NibpMean => "Mean blood pressure",
        Vital::Temp => "Body temperature",
        Vital::EtCo2 => "Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration",
        Vital::Weight => "Body weight",
        Vital::Glucose => "Glucose [Mass/volume] in Capillary blood by Glucometer",
    }
}

/// The human-readable unit written next to a UCUM code (`Quantity.unit`).
fn unit_display(v: Vital) -> &'static str {
    match v {
        Vital::Hr | Vital::Pr => "beats/minute",
        Vital::Rr => "breaths/minute",
        Vital::Temp => "°C",
        Vital::NibpSys | Vital::NibpDia | Vital::NibpMean | Vital::EtCo2 => "mmHg",
        v => v.unit(),
    }
}

// ---------------------------------------------------------------------------------------------
// The resources, serialised in FHIR's element order.

#[derive(Serialize)]
struct Coding<'a> {
    system: &'a str,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Serialize)]
struct Concept<'a> {
    coding: Vec<Coding<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

impl<'a> Concept<'a> {
    fn one(system: &'a str, code: &str, display: &'a str) -> Concept<'a> {
        Concept {
            coding: vec![Coding {
                system,
                code: code.to_string(),
                display: Some(display),
            }],
            text: Some(display),
        }
    }

    fn vital(v: Vital) -> Concept<'static> {
        let info = v.info();
        Concept {
            coding: vec![
                Coding {
                    system: LOINC_SYSTEM,
                    code: info.loinc.to_string(),
                    display: Some(loinc_display(v)),
                },
                Coding {
                    system: MDC_SYSTEM,
                    code: info.mdc.to_string(),
                    display: Some(info.mdc_ref),
                },
            ],
            text: Some(loinc_display(v)),
        }
    }

    fn category(v: Option<Vital>) -> Concept<'static> {
        match v {
            Some(Vital::Glucose) => Concept::one(CATEGORY_SYSTEM, "laboratory", "Laboratory"),
            Some(_) => Concept::one(CATEGORY_SYSTEM, "vital-signs", "Vital Signs"),
            None => Concept::one(CATEGORY_SYSTEM, "procedure", "Procedure"),
        }
    }

    fn absent() -> Concept<'static> {
        Concept::one(DATA_ABSENT_SYSTEM, "unknown", "Unknown")
    }
}

#[derive(Serialize)]
struct Quantity<'a> {
    value: f64,
    unit: &'a str,
    system: &'a str,
    code: &'a str,
}

#[derive(Serialize)]
struct Identifier<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    value: &'a str,
}

#[derive(Serialize)]
struct Reference<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<Identifier<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Serialize)]
struct Extension<'a> {
    url: &'a str,
    #[serde(rename = "valueReference")]
    value_reference: Reference<'a>,
}

#[derive(Serialize)]
struct Period {
    start: String,
    end: String,
}

#[derive(Serialize)]
struct SampledData<'a> {
    origin: Quantity<'a>,
    period: f64,
    factor: f64,
    dimensions: u32,
    data: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component<'a> {
    code: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_quantity: Option<Quantity<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_absent_reason: Option<Concept<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Observation<'a> {
    resource_type: &'static str,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<[Extension<'a>; 1]>,
    status: &'static str,
    category: [Concept<'a>; 1],
    code: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<Reference<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_quantity: Option<Quantity<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_sampled_data: Option<SampledData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_absent_reason: Option<Concept<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<Reference<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    component: Vec<Component<'a>>,
}

#[derive(Serialize)]
struct HumanName<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Patient<'a> {
    resource_type: &'static str,
    id: &'a str,
    identifier: [PatientIdentifier<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<[HumanName<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gender: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    birth_date: Option<&'a str>,
}

#[derive(Serialize)]
struct PatientIdentifier<'a> {
    #[serde(rename = "use")]
    use_: &'static str,
    #[serde(rename = "type")]
    kind: Concept<'a>,
    system: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a, R> {
    full_url: &'a str,
    resource: &'a R,
}

// ---------------------------------------------------------------------------------------------
// The writer

/// NIBP readings of the current instant waiting to become panels.
#[derive(Debug)]
struct PendingBp {
    /// The device id as written (pseudonymised when de-identified).
    device: String,
    status: ObsStatus,
    sys: Option<Option<f64>>,
    dia: Option<Option<f64>>,
}

/// Writes one FHIR R4 Bundle of an export as it is fed. See the module documentation.
///
/// Feed readings in time order and each channel's stretches in time order, then call
/// [`FhirWriter::finish`]: without it the JSON is not closed (and pending blood pressure
/// panels are not written). After an error the output is incomplete: discard it.
#[derive(Debug)]
pub struct FhirWriter<W: Write> {
    w: W,
    rules: Rules,
    /// `Subject.reference` of every Observation.
    subject: Option<String>,
    /// `ward/bed`, identified exports only.
    bed: Option<String>,
    /// First 64 bits of every fullUrl UUID (a hash of the bundle id, with the version).
    uuid_hi: u64,
    entries: u64,
    observations: u64,
    bp_t: i64,
    bp: Vec<PendingBp>,
    counts: ExportCounts,
}

impl<W: Write> FhirWriter<W> {
    /// Check the header and write the Bundle's head (and the Patient entry when identified).
    pub fn new(w: W, header: ExportHeader) -> Result<Self, ExportError> {
        let rules = Rules::new(&header.subject);
        let bad = |field: &'static str, why: &str| ExportError::Header {
            field,
            why: why.to_string(),
        };
        if !is_fhir_id(&header.bundle_id) {
            return Err(bad("bundle_id", "not a FHIR id ([A-Za-z0-9.-], 1 to 64)"));
        }
        let generated = rules.time(header.generated_ms, "generation time")?;
        let (start, end) = header.period_ms;
        rules.time(start, "period start")?;
        rules.time(end, "period end")?;
        if start > end {
            return Err(bad("period_ms", "the start is after the end"));
        }
        let mut me = FhirWriter {
            w,
            subject: None,
            bed: None,
            uuid_hi: (fnv1a(header.bundle_id.as_bytes()) & !0xF000) | 0x8000,
            entries: 0,
            observations: 0,
            bp_t: i64::MIN,
            bp: Vec::new(),
            counts: ExportCounts::default(),
            rules,
        };
        let patient = match &header.subject {
            Subject::Identified {
                id,
                name,
                mrn,
                mrn_system,
                dob,
                sex,
            } => Some(patient(
                id,
                name,
                mrn,
                mrn_system,
                dob.as_deref(),
                sex.as_deref(),
            )?),
            Subject::Deidentified { pseudonym, .. } => {
                if !is_fhir_id(pseudonym) {
                    return Err(bad("pseudonym", "not a FHIR id ([A-Za-z0-9.-], 1 to 64)"));
                }
                me.subject = Some(format!("Patient/{pseudonym}"));
                None
            }
            Subject::None => None,
        };
        if !me.rules.deidentified() {
            me.bed = header.bed.as_ref().map(|b| b.key());
        }

        let mut head = String::from("{\"resourceType\":\"Bundle\",\"id\":");
        head.push_str(&serde_json::to_string(&header.bundle_id)?);
        if me.rules.deidentified() {
            head.push_str(
                ",\"meta\":{\"security\":[{\"system\":\
                 \"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\",\
                 \"code\":\"PSEUDED\",\"display\":\"pseudonymized\"}]}",
            );
        }
        let _ = write!(
            head,
            ",\"type\":\"collection\",\"timestamp\":\"{}\"",
            iso(generated)
        );
        me.w.write_all(head.as_bytes())?;
        if let Some(p) = patient {
            let url = me.entry(&p)?;
            me.subject = Some(url);
        }
        Ok(me)
    }

    /// Write one reading (a systolic or diastolic one waits for its partner of the same
    /// instant). Errors: NaN or infinite value, time out of range, out of time order, I/O.
    pub fn reading(&mut self, r: &ExportReading) -> Result<(), ExportError> {
        self.rules.check_reading(r)?;
        if r.t_ms != self.bp_t {
            self.flush_bp()?;
        }
        let device = self.rules.device(&r.device);
        match r.vital {
            Vital::NibpSys | Vital::NibpDia => {
                self.bp_t = r.t_ms;
                let sys = r.vital == Vital::NibpSys;
                let free = self.bp.iter_mut().find(|p| {
                    p.device == device
                        && p.status == r.status
                        && if sys {
                            p.sys.is_none()
                        } else {
                            p.dia.is_none()
                        }
                });
                let p = match free {
                    Some(p) => p,
                    None => {
                        self.bp.push(PendingBp {
                            device,
                            status: r.status,
                            sys: None,
                            dia: None,
                        });
                        let last = self.bp.len() - 1;
                        &mut self.bp[last]
                    }
                };
                if sys {
                    p.sys = Some(r.value);
                } else {
                    p.dia = Some(r.value);
                }
                Ok(())
            }
            v => {
                let t = iso(self.rules.time(r.t_ms, v.name())?);
                let (value_quantity, data_absent_reason) = value(v, r.value);
                let obs = Observation {
                    value_quantity,
                    data_absent_reason,
                    ..self.observation(
                        Concept::category(Some(v)),
                        Concept::vital(v),
                        r.status,
                        &device,
                    )
                };
                let obs = Observation {
                    effective_date_time: Some(t),
                    ..obs
                };
                let json = self.json(&obs)?;
                self.commit(&json)?;
                self.counts.readings += 1;
                Ok(())
            }
        }
    }

    /// Write one waveform stretch (several Observations when longer than
    /// [`MAX_CHUNK_SAMPLES`]; nothing when empty). Errors: NaN or infinite origin, factor or
    /// sample value, factor 0, rate outside (0, 10 000] Hz, time out of range, out of time
    /// order for its channel, I/O.
    pub fn wave(&mut self, w: &ExportWave) -> Result<(), ExportError> {
        if !self.rules.check_wave(w)? {
            return Ok(());
        }
        let device = self.rules.device(&w.device);
        let ch = w.channel;
        let period = 1000.0 / w.rate;
        let piece = piece_len(w.rate);
        let mut start = 0usize;
        for chunk in w.data.chunks(piece) {
            let t0 = end_ms(w.t0_ms, w.rate, start);
            let t1 = end_ms(w.t0_ms, w.rate, start + chunk.len());
            start += chunk.len();
            let mut data = String::with_capacity(chunk.len() * 6);
            for (i, d) in chunk.iter().enumerate() {
                if i > 0 {
                    data.push(' ');
                }
                let _ = write!(data, "{d}");
            }
            let code = Concept {
                coding: vec![Coding {
                    system: MDC_SYSTEM,
                    code: ch.mdc.to_string(),
                    display: Some(ch.mdc_ref),
                }],
                text: Some(ch.name),
            };
            let obs = Observation {
                effective_period: Some(Period {
                    start: iso(self.rules.time(t0, ch.name)?),
                    end: iso(self.rules.time(t1, ch.name)?),
                }),
                value_sampled_data: Some(SampledData {
                    origin: origin(ch, w.origin),
                    period,
                    factor: w.factor,
                    dimensions: 1,
                    data,
                }),
                ..self.observation(Concept::category(None), code, ObsStatus::Final, &device)
            };
            let json = self.json(&obs)?;
            self.commit(&json)?;
        }
        self.counts.stretches += 1;
        self.counts.samples += w.data.len() as u64;
        Ok(())
    }

    /// Write the pending blood pressure panels, close the Bundle, flush, and hand back the
    /// writer with the counts.
    pub fn finish(mut self) -> Result<(W, ExportCounts), ExportError> {
        self.flush_bp()?;
        if self.entries > 0 {
            self.w.write_all(b"\n]")?;
        }
        self.w.write_all(b"}\n")?;
        self.w.flush()?;
        Ok((self.w, self.counts))
    }

    /// An Observation with what every one has (no time, no value).
    fn observation<'a>(
        &'a self,
        category: Concept<'a>,
        code: Concept<'a>,
        status: ObsStatus,
        device: &'a str,
    ) -> Observation<'a> {
        Observation {
            resource_type: "Observation",
            id: format!("obs-{}", self.observations + 1),
            extension: self.bed.as_deref().map(|bed| {
                [Extension {
                    url: EVENT_LOCATION_URL,
                    value_reference: Reference {
                        reference: None,
                        kind: "Location",
                        identifier: Some(Identifier {
                            system: None,
                            value: bed,
                        }),
                        display: Some(bed),
                    },
                }]
            }),
            status: fhir_status(status),
            category: [category],
            code,
            subject: self.subject.as_deref().map(|s| Reference {
                reference: Some(s),
                kind: "Patient",
                identifier: None,
                display: None,
            }),
            effective_date_time: None,
            effective_period: None,
            value_quantity: None,
            value_sampled_data: None,
            data_absent_reason: None,
            device: (!device.is_empty()).then_some(Reference {
                reference: None,
                kind: "Device",
                identifier: Some(Identifier {
                    system: None,
                    value: device,
                }),
                display: None,
            }),
            component: Vec::new(),
        }
    }

    /// An Observation's entry as JSON (kept apart from writing so that `obs` may borrow
    /// from `self`).
    fn json(&self, obs: &Observation<'_>) -> Result<Vec<u8>, ExportError> {
        let url = uuid(self.uuid_hi, self.entries);
        Ok(serde_json::to_vec(&Entry {
            full_url: &url,
            resource: obs,
        })?)
    }

    /// Write an Observation's entry made by [`Self::json`].
    fn commit(&mut self, json: &[u8]) -> Result<(), ExportError> {
        self.write_entry(json)?;
        self.observations += 1;
        self.counts.observations += 1;
        Ok(())
    }

    /// Write an entry; returns its fullUrl.
    fn entry<R: Serialize>(&mut self, resource: &R) -> Result<String, ExportError> {
        let url = uuid(self.uuid_hi, self.entries);
        let text = serde_json::to_vec(&Entry {
            full_url: &url,
            resource,
        })?;
        self.write_entry(&text)?;
        Ok(url)
    }

    fn write_entry(&mut self, json: &[u8]) -> Result<(), ExportError> {
        let sep: &[u8] = if self.entries == 0 {
            b",\"entry\":[\n"
        } else {
            b",\n"
        };
        self.w.write_all(sep)?;
        self.w.write_all(json)?;
        self.entries += 1;
        Ok(())
    }

    /// Write the blood pressure panels of the current instant.
    fn flush_bp(&mut self) -> Result<(), ExportError> {
        if self.bp.is_empty() {
            return Ok(());
        }
        let t = iso(self.rules.time(self.bp_t, "blood pressure")?);
        for p in std::mem::take(&mut self.bp) {
            let mut component = Vec::new();
            for (v, slot) in [(Vital::NibpSys, p.sys), (Vital::NibpDia, p.dia)] {
                if let Some(reading) = slot {
                    let (value_quantity, data_absent_reason) = value(v, reading);
                    component.push(Component {
                        code: Concept::vital(v),
                        value_quantity,
                        data_absent_reason,
                    });
                }
            }
            let n = component.len() as u64;
            let code = Concept {
                coding: vec![
                    Coding {
                        system: LOINC_SYSTEM,
                        code: BP_PANEL_LOINC.to_string(),
                        display: Some("Blood pressure panel with all children optional"),
                    },
                    Coding {
                        system: MDC_SYSTEM,
                        code: BP_PANEL_MDC.to_string(),
                        display: Some("MDC_PRESS_BLD_NONINV"),
                    },
                ],
                text: Some("Blood pressure systolic & diastolic"),
            };
            let obs = Observation {
                effective_date_time: Some(t.clone()),
                component,
                ..self.observation(
                    Concept::category(Some(Vital::NibpSys)),
                    code,
                    p.status,
                    &p.device,
                )
            };
            let json = self.json(&obs)?;
            self.commit(&json)?;
            self.counts.readings += n;
        }
        Ok(())
    }
}

/// `valueQuantity` or `dataAbsentReason` of a reading (its value is finite: checked).
fn value(v: Vital, value: Option<f64>) -> (Option<Quantity<'static>>, Option<Concept<'static>>) {
    match value {
        Some(x) => (
            Some(Quantity {
                value: x,
                unit: unit_display(v),
                system: UCUM_SYSTEM,
                code: v.unit(),
            }),
            None,
        ),
        None => (None, Some(Concept::absent())),
    }
}

fn origin(ch: &'static ChannelInfo, value: f64) -> Quantity<'static> {
    Quantity {
        value,
        unit: ch.unit,
        system: UCUM_SYSTEM,
        code: ch.unit,
    }
}

fn patient<'a>(
    id: &'a str,
    name: &'a str,
    mrn: &'a str,
    mrn_system: &'a str,
    dob: Option<&'a str>,
    sex: Option<&str>,
) -> Result<Patient<'a>, ExportError> {
    let bad = |field: &'static str, why: String| ExportError::Header { field, why };
    if !is_fhir_id(id) {
        return Err(bad("id", "not a FHIR id ([A-Za-z0-9.-], 1 to 64)".into()));
    }
    if mrn.trim().is_empty() {
        return Err(bad("mrn", "empty".into()));
    }
    if mrn_system.is_empty() || mrn_system.chars().any(char::is_whitespace) {
        return Err(bad("mrn_system", "not a URI".into()));
    }
    if let Some(d) = dob {
        if d.contains('T') {
            return Err(bad("dob", "a date (YYYY-MM-DD) has no time".into()));
        }
        super::fhir::parse_datetime(d).map_err(|why| bad("dob", why))?;
    }
    let gender = match sex {
        None => None,
        Some("F") => Some("female"),
        Some("M") => Some("male"),
        Some("X") => Some("other"),
        Some("U") => Some("unknown"),
        Some(_) => return Err(bad("sex", "not F, M, X or U".into())),
    };
    let name = name.trim();
    Ok(Patient {
        resource_type: "Patient",
        id,
        identifier: [PatientIdentifier {
            use_: "usual",
            kind: Concept::one(
                "http://terminology.hl7.org/CodeSystem/v2-0203",
                "MR",
                "Medical record number",
            ),
            system: mrn_system,
            value: mrn.trim(),
        }],
        name: (!name.is_empty()).then_some([HumanName { text: name }]),
        gender,
        birth_date: dob,
    })
}

/// Samples per Observation for a rate: at most [`MAX_CHUNK_SAMPLES`], and for an integral
/// rate a multiple of the samples in a whole number of milliseconds (9 at 360 Hz), so that
/// every piece starts on an exact millisecond.
fn piece_len(rate: f64) -> usize {
    let max = MAX_CHUNK_SAMPLES;
    if rate.fract() == 0.0 && rate >= 1.0 {
        let r = rate as u64;
        let step = (r / gcd(r, 1000)) as usize;
        if step <= max {
            return max - max % step;
        }
    }
    max
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// FNV-1a, 64 bits, then a SplitMix64 finaliser to spread the bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `urn:uuid:` of entry `index`: version 8 (`hi` carries it), variant 10, the index in the low
/// 62 bits.
fn uuid(hi: u64, index: u64) -> String {
    let lo = (index & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "urn:uuid:{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use serde_json::Value;

    use super::*;
    use crate::interop::export::testdata::{self, DEVICES, T0};
    use crate::interop::fhir::decode;
    use crate::telemetry::{BedId, Samples, MAX_PAYLOAD_BYTES};

    const NAME: &str = "Johanna Vermeulen";
    const MRN: &str = "MRN-7734512";
    const DOB: &str = "1948-03-17";
    const SHIFT: i64 = -(417 * 86_400_000 + 3_600_000 * 5 + 12_345);

    fn identified() -> Subject {
        Subject::Identified {
            id: "pat-1".into(),
            name: NAME.into(),
            mrn: MRN.into(),
            mrn_system: "urn:oid:1.2.3.4.5".into(),
            dob: Some(DOB.into()),
            sex: Some("F".into()),
        }
    }

    fn header(subject: Subject) -> ExportHeader {
        ExportHeader {
            bundle_id: "export-42".into(),
            generated_ms: T0 + 86_400_000,
            period_ms: (T0, T0 + 3_600_000),
            subject,
            bed: Some(BedId::new("CCU-EAST", "B12")),
        }
    }

    fn write(
        h: ExportHeader,
        readings: &[ExportReading],
        waves: &[ExportWave],
    ) -> (String, ExportCounts) {
        let mut w = FhirWriter::new(Vec::new(), h).expect("head");
        for r in readings {
            w.reading(r).expect("reading");
        }
        for x in waves {
            w.wave(x).expect("wave");
        }
        let (bytes, counts) = w.finish().expect("finish");
        (String::from_utf8(bytes).expect("utf-8"), counts)
    }

    /// What the decoder gives back for one reading: (t, vital, value bits, status, device).
    type Got = (i64, Vital, Option<u64>, ObsStatus, String);

    fn key(t: i64, v: Vital, value: Option<f64>, s: ObsStatus, d: &str) -> Got {
        (t, v, value.map(f64::to_bits), s, d.to_string())
    }

    /// Decode every Observation entry on its own; readings sorted, waves in output order.
    fn decode_entries(json: &str) -> (Vec<Got>, Vec<(Samples, String)>) {
        let bundle: Value = serde_json::from_str(json).expect("JSON");
        let mut readings = Vec::new();
        let mut waves = Vec::new();
        for e in bundle["entry"].as_array().expect("entries") {
            let res = &e["resource"];
            if res["resourceType"] != "Observation" {
                continue;
            }
            let bytes = serde_json::to_vec(res).expect("bytes");
            let b = decode(&bytes).unwrap_or_else(|e| panic!("{e}: {res}"));
            assert!(b.rejected.is_empty(), "{:?} in {res}", b.rejected);
            let dev = b.device.clone().unwrap_or_default();
            for r in &b.readings {
                readings.push(key(r.t_ms, r.vital, r.value, r.status, &dev));
            }
            for s in b.waves {
                waves.push((s, dev.clone()));
            }
        }
        readings.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        (readings, waves)
    }

    /// Join decoded pieces back into the stretches they were cut from.
    fn join(pieces: Vec<(Samples, String)>) -> Vec<(Samples, String)> {
        let mut out: Vec<(Samples, String)> = Vec::new();
        for (s, d) in pieces {
            if let Some((last, ld)) = out.last_mut() {
                let next = end_ms(last.t0_ms, last.rate, last.data.len());
                if *ld == d
                    && last.channel == s.channel
                    && last.rate == s.rate
                    && last.origin == s.origin
                    && last.factor == s.factor
                    && next == s.t0_ms
                {
                    last.data.extend(s.data);
                    continue;
                }
            }
            out.push((s, d));
        }
        out
    }

    /// The fed readings as the decoder must give them back.
    fn expected(readings: &[ExportReading], shift: i64, dev: &dyn Fn(&str) -> String) -> Vec<Got> {
        let mut want: Vec<Got> = readings
            .iter()
            .map(|r| {
                let status = match r.status {
                    ObsStatus::Unverified => ObsStatus::Preliminary,
                    s => s,
                };
                key(r.t_ms + shift, r.vital, r.value, status, &dev(&r.device))
            })
            .collect();
        want.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        want
    }

    fn check_waves(
        got: Vec<(Samples, String)>,
        fed: &[ExportWave],
        shift: i64,
        dev: &dyn Fn(&str) -> String,
    ) {
        let got = join(got);
        assert_eq!(got.len(), fed.len());
        for ((s, d), w) in got.iter().zip(fed) {
            assert_eq!(s.channel.name, w.channel.name);
            assert_eq!(s.t0_ms, w.t0_ms + shift, "{}", w.channel.name);
            assert_eq!(s.rate, w.rate, "{}", w.channel.name);
            assert_eq!(s.origin, w.origin);
            assert_eq!(s.factor, w.factor);
            assert_eq!(s.data, w.data, "{}", w.channel.name);
            assert_eq!(*d, dev(&w.device));
        }
    }

    /// Device pseudonyms in order of first appearance: readings first, then waves.
    fn pseudonyms(readings: &[ExportReading], waves: &[ExportWave]) -> HashMap<String, String> {
        let mut m = HashMap::new();
        for d in readings
            .iter()
            .map(|r| &r.device)
            .chain(waves.iter().map(|w| &w.device))
        {
            let n = m.len() + 1;
            m.entry(d.clone()).or_insert_with(|| format!("device-{n}"));
        }
        m
    }

    #[test]
    fn round_trip_through_the_decoder() {
        let readings = testdata::readings(60, 7);
        let waves = testdata::waves(true, 11);
        let (json, counts) = write(header(identified()), &readings, &waves);
        let (got, pieces) = decode_entries(&json);
        assert_eq!(got, expected(&readings, 0, &|d| d.to_string()));
        assert_eq!(pieces.len(), 3 + 6, "45 000 samples are three Observations");
        check_waves(pieces, &waves, 0, &|d| d.to_string());
        assert_eq!(counts.readings, readings.len() as u64);
        assert_eq!(counts.stretches, waves.len() as u64);
        assert_eq!(
            counts.samples,
            waves.iter().map(|w| w.data.len() as u64).sum::<u64>()
        );
        // Every status the test means to cover is there, and None values too.
        for s in [ObsStatus::Final, ObsStatus::Amended, ObsStatus::Preliminary] {
            assert!(readings.iter().any(|r| r.status == s));
        }
        assert!(readings.iter().any(|r| r.value.is_none()));
        for v in Vital::ALL {
            assert!(
                readings.iter().filter(|r| r.vital == v).count() >= 30,
                "{v:?}"
            );
        }
    }

    #[test]
    fn randomised_round_trips() {
        for seed in 0..20 {
            let readings = testdata::readings(5 + seed as i64, seed * 31 + 1);
            let waves = testdata::waves(false, seed);
            let (json, _) = write(header(Subject::None), &readings, &waves);
            let (got, pieces) = decode_entries(&json);
            assert_eq!(
                got,
                expected(&readings, 0, &|d| d.to_string()),
                "seed {seed}"
            );
            check_waves(pieces, &waves, 0, &|d| d.to_string());
            assert!(!json.contains("\"subject\""));
        }
    }

    #[test]
    fn bundle_structure_as_the_official_examples() {
        let readings = testdata::readings(15, 3);
        let waves = testdata::waves(false, 3);
        let (json, counts) = write(header(identified()), &readings, &waves);
        let b: Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "collection");
        assert_eq!(b["id"], "export-42");
        assert_eq!(b["timestamp"], "2026-11-24T10:00:00.000Z");
        let entries = b["entry"].as_array().expect("entry");
        assert_eq!(entries.len() as u64, counts.observations + 1);
        let mut urls = HashSet::new();
        let mut ids = HashSet::new();
        for e in entries {
            let keys: HashSet<&str> = e
                .as_object()
                .expect("entry")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, HashSet::from(["fullUrl", "resource"]));
            let url = e["fullUrl"].as_str().expect("fullUrl");
            assert!(url.starts_with("urn:uuid:") && url.len() == 45, "{url}");
            assert_eq!(&url[23..24], "8", "version 8: {url}");
            assert!(urls.insert(url.to_string()));
            assert!(ids.insert(e["resource"]["id"].as_str().expect("id").to_string()));
        }
        // The Patient first; every Observation references its fullUrl.
        let p = &entries[0]["resource"];
        assert_eq!(p["resourceType"], "Patient");
        assert_eq!(p["gender"], "female");
        assert_eq!(p["birthDate"], DOB);
        assert_eq!(p["name"][0]["text"], NAME);
        assert_eq!(p["identifier"][0]["value"], MRN);
        assert_eq!(p["identifier"][0]["system"], "urn:oid:1.2.3.4.5");
        assert_eq!(p["identifier"][0]["type"]["coding"][0]["code"], "MR");
        let patient_url = &entries[0]["fullUrl"];
        // resourceType first in every resource, as written (a parsed Value sorts its keys).
        assert_eq!(
            json.matches("\"resource\":{\"resourceType\":").count(),
            entries.len()
        );
        // Observation elements: R4 names only.
        let order = [
            "resourceType",
            "id",
            "extension",
            "status",
            "category",
            "code",
            "subject",
            "effectiveDateTime",
            "effectivePeriod",
            "valueQuantity",
            "valueSampledData",
            "dataAbsentReason",
            "device",
            "component",
        ];
        let mut panels = 0;
        for e in &entries[1..] {
            let o = e["resource"].as_object().expect("observation");
            let pos: Vec<usize> = o
                .keys()
                .map(|k| {
                    order
                        .iter()
                        .position(|x| x == k)
                        .unwrap_or_else(|| panic!("{k}"))
                })
                .collect();
            assert!(pos.contains(&0) && pos.contains(&3) && pos.contains(&5));
            assert_eq!(o["subject"]["reference"], *patient_url);
            assert_eq!(o["extension"][0]["url"], EVENT_LOCATION_URL);
            assert_eq!(
                o["extension"][0]["valueReference"]["identifier"]["value"],
                "CCU-EAST/B12"
            );
            let cat = &o["category"][0]["coding"][0];
            assert_eq!(cat["system"], CATEGORY_SYSTEM);
            let coding = o["code"]["coding"].as_array().expect("coding");
            if let Some(sd) = o.get("valueSampledData") {
                assert_eq!(cat["code"], "procedure");
                let keys: Vec<&str> = sd
                    .as_object()
                    .expect("sd")
                    .keys()
                    .map(String::as_str)
                    .collect();
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, ["data", "dimensions", "factor", "origin", "period"]);
                assert_eq!(sd["origin"]["system"], UCUM_SYSTEM);
                assert!(
                    o["effectivePeriod"]["start"].is_string()
                        && o["effectivePeriod"]["end"].is_string()
                );
                assert_eq!(coding[0]["system"], MDC_SYSTEM);
                continue;
            }
            assert_eq!(coding[0]["system"], LOINC_SYSTEM, "LOINC first");
            assert_eq!(coding[1]["system"], MDC_SYSTEM);
            let t = o["effectiveDateTime"].as_str().expect("time");
            assert!(t.len() == 24 && t.ends_with('Z'), "{t}");
            if coding[0]["code"] == BP_PANEL_LOINC {
                panels += 1;
                assert_eq!(cat["code"], "vital-signs");
                assert!(!o.contains_key("valueQuantity"));
                for c in o["component"].as_array().expect("components") {
                    let code = &c["code"]["coding"][0]["code"];
                    assert!(code == "8480-6" || code == "8462-4", "{code}");
                    if let Some(q) = c.get("valueQuantity") {
                        assert_eq!(q["code"], "mm[Hg]");
                        assert_eq!(q["system"], UCUM_SYSTEM);
                    } else {
                        assert_eq!(c["dataAbsentReason"]["coding"][0]["code"], "unknown");
                    }
                }
            } else if let Some(q) = o.get("valueQuantity") {
                assert_eq!(q["system"], UCUM_SYSTEM);
                assert!(q["value"].is_number());
            } else {
                let dar = &o["dataAbsentReason"]["coding"][0];
                assert_eq!(dar["system"], DATA_ABSENT_SYSTEM);
                assert_eq!(dar["code"], "unknown");
            }
            assert!(o["device"]["identifier"]["value"].is_string());
        }
        assert!(panels >= 15);
        // A 360 Hz period, and the panel of the first minute as the official example has it.
        assert!(json.contains("\"period\":2.7777777777777777,"));
        let panel = entries[1..]
            .iter()
            .map(|e| &e["resource"])
            .find(|o| o["code"]["coding"][0]["code"] == BP_PANEL_LOINC)
            .expect("a panel");
        assert_eq!(panel["component"].as_array().map(Vec::len), Some(2));
        assert_eq!(panel["component"][0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(panel["component"][1]["code"]["coding"][0]["code"], "8462-4");
        assert_eq!(panel["component"][0]["valueQuantity"]["unit"], "mmHg");
    }

    #[test]
    fn lone_systolic_and_mean_pressure() {
        let r = |t, v, value, status| ExportReading {
            t_ms: t,
            vital: v,
            value,
            status,
            device: "mon-1".into(),
        };
        let readings = [
            r(T0, Vital::NibpSys, Some(120.0), ObsStatus::Final),
            r(T0, Vital::NibpMean, Some(93.0), ObsStatus::Final),
            r(T0 + 1, Vital::NibpDia, Some(80.0), ObsStatus::Final),
            r(T0 + 2, Vital::NibpDia, None, ObsStatus::Cancelled),
            r(T0 + 2, Vital::NibpSys, Some(110.0), ObsStatus::Cancelled),
        ];
        let (json, counts) = write(header(Subject::None), &readings, &[]);
        let b: Value = serde_json::from_str(&json).expect("JSON");
        let codes: Vec<(String, usize)> = b["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                let o = &e["resource"];
                (
                    o["code"]["coding"][0]["code"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    o["component"].as_array().map_or(0, Vec::len),
                )
            })
            .collect();
        let want = [
            ("8478-0", 0),
            ("85354-9", 1),
            ("85354-9", 1),
            ("85354-9", 2),
        ];
        let want: Vec<(String, usize)> = want.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        assert_eq!(codes, want);
        assert_eq!(counts.observations, 4);
        assert_eq!(counts.readings, 5);
        // The whole Bundle decodes too (one device), with the same readings.
        let batch = decode(json.as_bytes()).expect("bundle");
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        assert_eq!(batch.readings.len(), 5);
        let last = &b["entry"][3]["resource"];
        assert_eq!(last["status"], "cancelled");
        assert_eq!(
            last["component"][1]["dataAbsentReason"]["coding"][0]["code"],
            "unknown"
        );
    }

    #[test]
    fn whole_bundle_decodes_when_small() {
        let one_device = |d: &str| d == DEVICES[0];
        let readings: Vec<_> = testdata::readings(10, 5)
            .into_iter()
            .filter(|r| one_device(&r.device))
            .collect();
        let waves: Vec<_> = testdata::waves(false, 5)
            .into_iter()
            .filter(|w| one_device(&w.device))
            .collect();
        let (json, counts) = write(header(identified()), &readings, &waves);
        assert!(json.len() < MAX_PAYLOAD_BYTES, "{} bytes", json.len());
        assert!(counts.observations < 1024);
        let b = decode(json.as_bytes()).expect("bundle");
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        assert_eq!(b.device.as_deref(), Some(DEVICES[0]));
        let mut got: Vec<Got> = b
            .readings
            .iter()
            .map(|r| key(r.t_ms, r.vital, r.value, r.status, DEVICES[0]))
            .collect();
        got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        assert_eq!(got, expected(&readings, 0, &|d| d.to_string()));
        let pieces = b
            .waves
            .into_iter()
            .map(|s| (s, DEVICES[0].to_string()))
            .collect();
        check_waves(pieces, &waves, 0, &|d| d.to_string());
    }

    #[test]
    fn deidentified_has_no_identity_and_shifted_times() {
        let readings = testdata::readings(30, 9);
        let waves = testdata::waves(true, 9);
        let h = header(Subject::Deidentified {
            pseudonym: "P-0042".into(),
            shift_ms: SHIFT,
        });
        let (json, _) = write(h, &readings, &waves);
        for secret in [
            NAME,
            "Vermeulen",
            MRN,
            "7734512",
            DOB,
            "CCU-EAST",
            "B12",
            "pat-1",
            "1.2.3.4.5",
        ]
        .into_iter()
        .chain(DEVICES)
        {
            assert!(
                !json.contains(secret),
                "{secret} in the de-identified export"
            );
        }
        // No real time either: the first reading's day is not there.
        assert!(!json.contains("2026-11-23"));
        let b: Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(b["meta"]["security"][0]["code"], "PSEUDED");
        assert_eq!(
            b["timestamp"],
            iso(chrono::DateTime::from_timestamp_millis(T0 + 86_400_000 + SHIFT).expect("t"))
        );
        let entries = b["entry"].as_array().expect("entries");
        assert!(entries
            .iter()
            .all(|e| e["resource"]["resourceType"] == "Observation"));
        assert!(entries
            .iter()
            .all(|e| e["resource"]["subject"]["reference"] == "Patient/P-0042"));
        assert!(entries
            .iter()
            .all(|e| e["resource"].get("extension").is_none()));
        let names = pseudonyms(&readings, &waves);
        assert_eq!(names[DEVICES[0]], "device-1");
        let dev = |d: &str| names[d].clone();
        let (got, pieces) = decode_entries(&json);
        assert_eq!(got, expected(&readings, SHIFT, &dev));
        check_waves(pieces, &waves, SHIFT, &dev);
    }

    #[test]
    fn errors() {
        let r = |t, value| ExportReading {
            t_ms: t,
            vital: Vital::Hr,
            value,
            status: ObsStatus::Final,
            device: "mon-1".into(),
        };
        let mut w = FhirWriter::new(Vec::new(), header(Subject::None)).expect("head");
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                w.reading(&r(T0, Some(v))),
                Err(ExportError::NotFinite { .. })
            ));
        }
        // 2201-01-01 and 1899-12-31.
        for t in [7_289_654_400_000, -2_208_988_800_001, i64::MAX, i64::MIN] {
            let e = w.reading(&r(t, Some(60.0))).expect_err("time");
            assert!(matches!(e, ExportError::TimeOutOfRange { .. }), "{e}");
        }
        w.reading(&r(T0, Some(60.0))).expect("in range");
        let e = w.reading(&r(T0 - 1, Some(60.0))).expect_err("order");
        assert!(matches!(e, ExportError::OutOfOrder { .. }), "{e}");
        let mut wave = testdata::waves(false, 1).remove(0);
        for (f, o, rate) in [
            (f64::NAN, 0.0, 360.0),
            (0.005, f64::INFINITY, 360.0),
            (1e308, 0.0, 360.0),
        ] {
            wave.factor = f;
            wave.origin = o;
            wave.rate = rate;
            assert!(
                matches!(w.wave(&wave), Err(ExportError::NotFinite { .. })),
                "{f} {o}"
            );
        }
        for (f, rate) in [
            (0.0, 360.0),
            (0.005, 0.0),
            (0.005, f64::NAN),
            (0.005, 20_000.0),
        ] {
            wave.factor = f;
            wave.origin = 0.0;
            wave.rate = rate;
            assert!(
                matches!(w.wave(&wave), Err(ExportError::Wave { .. })),
                "{f} {rate}"
            );
        }
        // A shift that carries a valid time out of range.
        let h = header(Subject::Deidentified {
            pseudonym: "P-1".into(),
            shift_ms: -200 * 365 * 86_400_000,
        });
        let e = FhirWriter::new(Vec::new(), h).expect_err("shifted generation time");
        assert!(matches!(e, ExportError::TimeOutOfRange { .. }), "{e}");
        // Bad headers.
        let mut bad = Vec::new();
        for (field, value) in [
            ("sex", "female"),
            ("dob", "17/03/1948"),
            ("dob", "1948-03-17T00:00:00Z"),
            ("id", "pat 1"),
        ] {
            let mut s = identified();
            if let Subject::Identified { sex, dob, id, .. } = &mut s {
                match field {
                    "sex" => *sex = Some(value.into()),
                    "dob" => *dob = Some(value.into()),
                    _ => *id = value.into(),
                }
            }
            bad.push(header(s));
        }
        let mut h = header(Subject::None);
        h.bundle_id = "a/b".into();
        bad.push(h);
        let mut h = header(Subject::None);
        h.period_ms = (T0, T0 - 1);
        bad.push(h);
        bad.push(header(Subject::Deidentified {
            pseudonym: String::new(),
            shift_ms: 0,
        }));
        for h in bad {
            let shown = format!("{h:?}");
            assert!(
                matches!(
                    FhirWriter::new(Vec::new(), h),
                    Err(ExportError::Header { .. })
                ),
                "{shown}"
            );
        }
    }

    #[test]
    fn an_empty_export_is_valid_json_without_entries() {
        let (json, counts) = write(header(Subject::None), &[], &[]);
        let b: Value = serde_json::from_str(&json).expect("JSON");
        assert!(b.get("entry").is_none(), "no empty arrays in FHIR JSON");
        assert_eq!(counts, ExportCounts::default());
        let empty = ExportWave {
            data: Vec::new(),
            ..testdata::waves(false, 1).remove(0)
        };
        let (json, counts) = write(header(Subject::None), &[], &[empty]);
        assert!(!json.contains("entry"));
        assert_eq!(counts.stretches, 0);
    }

    #[test]
    fn pieces_start_on_whole_milliseconds() {
        assert_eq!(piece_len(360.0), 19_998);
        assert_eq!(piece_len(125.0), 20_000);
        assert_eq!(piece_len(256.0), 20_000);
        assert_eq!(piece_len(500.0), 20_000);
        assert_eq!(piece_len(333.5), MAX_CHUNK_SAMPLES);
        for rate in [125.0, 250.0, 256.0, 360.0, 500.0] {
            let n = piece_len(rate);
            let ms = n as f64 * 1000.0 / rate;
            assert_eq!(ms.fract(), 0.0, "{rate}");
        }
    }
}
