//! HL7 FHIR R4 Observations (vital-signs profile) into a [`Batch`].
//!
//! Accepted: one `Observation`, or a `Bundle` (`collection`, `transaction`, `batch`, `searchset`,
//! `message`) whose entries are Observations (other resources in a Bundle are skipped). At most
//! [`MAX_PAYLOAD_BYTES`] of JSON; nesting is bounded by serde_json's recursion limit (128).
//!
//! Mapping:
//! - **Codes**: LOINC (`http://loinc.org`, see [`super::vital_from_loinc`]) and MDC
//!   (`urn:iso:std:iso:11073:10101` or its OID `urn:oid:2.16.840.1.113883.6.24`, numeric codes).
//!   Codings that name different things reject the observation. Panels (`85354-9` blood pressure,
//!   `85353-1` vital signs, MDC `131328` ECG) only group: their `component`s are decoded one by
//!   one (systolic and diastolic become separate readings), and a panel with nothing Vigil knows
//!   inside (the vital-signs panel, which only has `hasMember`) is skipped without a reject. An
//!   observation whose code Vigil does not know (Glasgow score, ...) is rejected: `UnknownCode`
//!   when it has an MDC code, otherwise `Invalid { field: "code" }`.
//! - **Values**: `valueQuantity` with a UCUM `code` (or an MDC unit code), converted to Vigil's
//!   unit (`[degF]` → `Cel`, `kPa` → `mm[Hg]`, `[lb_av]` → `kg`, glucose `mmol/L` → `mg/dL`,
//!   ...) and checked against the plausible range. A quantity without `code`, with a `comparator` (`<`, `>`), another `value[x]` type or an
//!   incompatible unit rejects the observation (or the component). `dataAbsentReason` → a
//!   reading with value `None`; both a value and a `dataAbsentReason` is a reject. A value of 0
//!   is kept as 0 (FHIR senders have `dataAbsentReason` for "no reading").
//! - **Status**: `status` → [`ObsStatus`], applied to every reading of the observation
//!   (components have no status of their own). Everything is stored; the engine alarms only on
//!   final/amended/corrected ([`Reading::alarmable`]). A missing status is `Unknown`.
//! - **Time**: `effectiveDateTime`, `effectiveInstant`, `effectivePeriod.start` (else `.end`),
//!   else `issued`. Partial dates (`2012`, `2012-09`, `2012-09-17`) are midnight UTC of their
//!   first day; times must carry `Z` or an offset (FHIR requires it) and are converted to UTC.
//!   Years outside [`super::YEAR_RANGE`] are rejected.
//! - **Device**: `device.identifier.value` when present (a stable serial, like HL7 OBX-18), else
//!   the logical id of a relative `Device/{id}` reference (`"Device/example"` → `"example"`),
//!   else the whole reference string as given (`"DeviceMetric/example"` stays as is so that it
//!   cannot be mistaken for a Device id). `display` alone names no device. All observations of a
//!   Bundle must name the same device (or none): one naming another device is rejected
//!   (`DeviceMismatch`).
//! - **Waveforms**: `valueSampledData` of a waveform channel (MDC code of `ECG_I`, `ECG_II`,
//!   `ECG_III`, `ECG_V5`, `PLETH`, `RESP`, on the observation or on a component). Rate =
//!   1000 / `period` (ms), snapped to the integer within 1e-12 ([`super::rate_of_period`]: the
//!   shortest decimal of 1000/60 reads back as 59.99999999999999 Hz otherwise). The data tokens
//!   are quantised exactly ([`super::quantise`]): integral data keep `factor`; decimals are scaled by the smallest 10^k (k ≤ 6) and `factor` divided
//!   by 10^k. `E` (error), `L` and `U` (below/above the detection limit) are gaps: the samples are
//!   split into separate [`Samples`] around them, each with its own `t0`. `origin` units `mV`,
//!   `uV`, `V` (ECG) or `1` (pleth, resp) are converted; an origin without unit is taken to be in
//!   the channel's unit. `dimensions` > 1 (interleaved channels) is decoded only when the
//!   observation's value-less components name exactly that many channels, in order; otherwise it
//!   is rejected. Waveforms of cancelled, entered-in-error, registered or unknown observations
//!   are rejected (waveforms have no status to carry it).

use chrono::{DateTime, Datelike, NaiveDate};
use serde_json::{Map, Value};

use super::{
    channel_from_mdc, chunk_samples, clean_device_id, conversion, convert_reading, is_loinc_group,
    is_mdc_group, parse_decimal, quantise, truncate, vital_from_loinc, vital_from_mdc, Target,
    UnitRef, YEAR_RANGE,
};
use crate::codes::{ChannelInfo, Vital};
use crate::telemetry::{Batch, DecodeError, ObsStatus, Reading, Samples, MAX_PAYLOAD_BYTES};

/// UCUM code system.
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";
/// LOINC code system.
pub const LOINC_SYSTEM: &str = "http://loinc.org";
/// IEEE 11073-10101 (MDC) code system URIs: the FHIR one and the HL7 OID.
pub const MDC_SYSTEMS: [&str; 2] = [
    "urn:iso:std:iso:11073:10101",
    "urn:oid:2.16.840.1.113883.6.24",
];
/// Most entries accepted in one Bundle.
pub const MAX_ENTRIES: usize = 1024;
/// Most interleaved channels (`dimensions`) in one SampledData.
pub const MAX_DIMENSIONS: u64 = 16;

type Obj = Map<String, Value>;

/// Decode a FHIR R4 Observation or Bundle of Observations. Never panics.
///
/// `Err` when the payload as a whole is unusable (too large, not JSON, not an Observation or
/// Bundle); otherwise `Ok` with the refused observations (or components) in `rejected`.
pub fn decode(json: &[u8]) -> Result<Batch, DecodeError> {
    if json.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge(json.len()));
    }
    let root: Value = serde_json::from_slice(json)
        .map_err(|e| DecodeError::Json(truncate(&e.to_string(), 200)))?;
    let obj = root
        .as_object()
        .ok_or_else(|| malformed("payload is not a JSON object (a FHIR resource)"))?;
    let mut batch = Batch::default();
    match obj.get("resourceType") {
        Some(Value::String(t)) if t == "Observation" => observation(obj, &mut batch),
        Some(Value::String(t)) if t == "Bundle" => bundle(obj, &mut batch)?,
        Some(Value::String(t)) => {
            return Err(DecodeError::Invalid {
                field: "resourceType",
                why: format!("{} is not an Observation or a Bundle", truncate(t, 40)),
            })
        }
        Some(_) => return Err(malformed("resourceType is not a string")),
        None => {
            return Err(DecodeError::Invalid {
                field: "resourceType",
                why: "missing".into(),
            })
        }
    }
    Ok(batch)
}

fn malformed(why: &str) -> DecodeError {
    DecodeError::Json(why.to_string())
}

fn bundle(b: &Obj, batch: &mut Batch) -> Result<(), DecodeError> {
    match b.get("type") {
        Some(Value::String(t))
            if matches!(
                t.as_str(),
                "collection" | "transaction" | "batch" | "searchset" | "message"
            ) => {}
        Some(Value::String(t)) => {
            return Err(DecodeError::Invalid {
                field: "type",
                why: format!("Bundle type {} is not accepted", truncate(t, 40)),
            })
        }
        _ => return Err(malformed("Bundle.type is missing or not a string")),
    }
    let entries: &[Value] = match b.get("entry") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(malformed("Bundle.entry is not an array")),
    };
    if entries.len() > MAX_ENTRIES {
        return Err(DecodeError::Invalid {
            field: "entry",
            why: format!("{} entries, at most {MAX_ENTRIES}", entries.len()),
        });
    }
    for e in entries {
        // Entries without a resource (a transaction DELETE) and other resource types are skipped.
        let Some(res) = e.get("resource").and_then(Value::as_object) else {
            continue;
        };
        if res.get("resourceType").and_then(Value::as_str) == Some("Observation") {
            observation(res, batch);
        }
    }
    Ok(())
}

/// What one observation yields.
#[derive(Default)]
struct Decoded {
    device: Option<String>,
    readings: Vec<Reading>,
    waves: Vec<Samples>,
    rejected: Vec<DecodeError>,
}

fn observation(obs: &Obj, batch: &mut Batch) {
    let d = match decode_observation(obs) {
        Ok(d) => d,
        Err(e) => {
            batch.rejected.push(e);
            return;
        }
    };
    if let Some(dev) = d.device {
        match &batch.device {
            Some(b) if *b != dev => {
                batch.rejected.push(DecodeError::DeviceMismatch {
                    topic: b.clone(),
                    payload: truncate(&dev, 64),
                });
                return;
            }
            Some(_) => {}
            None => batch.device = Some(dev),
        }
    }
    batch.readings.extend(d.readings);
    batch.waves.extend(d.waves);
    batch.rejected.extend(d.rejected);
}

fn decode_observation(obs: &Obj) -> Result<Decoded, DecodeError> {
    let status = status(obs)?;
    let mut d = Decoded {
        device: device(obs)?,
        ..Decoded::default()
    };
    let top = lookup(obs.get("code"))?;
    let components: &[Value] = match obs.get("component") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(malformed("component is not an array")),
    };
    // Only computed when something is decoded, so that an unknown code is reported as such.
    let time = || obs_time(obs);

    // Channels named by value-less components, for interleaved SampledData.
    let mut named_channels: Vec<&'static ChannelInfo> = Vec::new();
    for c in components {
        let Some(c) = c.as_object() else {
            d.rejected.push(malformed("component is not an object"));
            continue;
        };
        let target = match lookup(c.get("code")) {
            Ok(Ok(t)) => t,
            Ok(Err(unknown)) => {
                if has_value(c) {
                    d.rejected.push(unknown);
                }
                continue;
            }
            Err(e) => {
                d.rejected.push(e);
                continue;
            }
        };
        let result = match target {
            Target::Vital(v) => value(c, v).and_then(|value| {
                d.readings.push(Reading {
                    vital: v,
                    value,
                    t_ms: time()?,
                    status,
                });
                Ok(())
            }),
            Target::Channel(ch) => match c.get("valueSampledData") {
                Some(sd) => wave_status(status)
                    .and_then(|()| sampled(sd, &[ch], time()?))
                    .map(|w| d.waves.extend(w)),
                None => {
                    named_channels.push(ch);
                    Ok(())
                }
            },
            Target::Group => Ok(()),
        };
        if let Err(e) = result {
            d.rejected.push(e);
        }
    }

    match top {
        Ok(Target::Vital(v)) => {
            let value = value(obs, v)?;
            d.readings.push(Reading {
                vital: v,
                value,
                t_ms: time()?,
                status,
            });
        }
        Ok(Target::Channel(ch)) => {
            let sd = obs
                .get("valueSampledData")
                .ok_or_else(|| DecodeError::Invalid {
                    field: "valueSampledData",
                    why: format!("waveform {} without valueSampledData", ch.name),
                })?;
            wave_status(status)?;
            d.waves.extend(sampled(sd, &[ch], time()?)?);
        }
        Ok(Target::Group) => {
            if let Some(sd) = obs.get("valueSampledData") {
                wave_status(status)?;
                d.waves.extend(sampled(sd, &named_channels, time()?)?);
            } else if has_value(obs) {
                return Err(DecodeError::Invalid {
                    field: "value",
                    why: "a panel code with a value of its own".into(),
                });
            }
        }
        Err(unknown) => {
            if d.readings.is_empty() && d.waves.is_empty() {
                // Nothing Vigil knows here (a Glasgow score, a lab panel, ...): one reject for the
                // observation rather than one per component.
                return Err(unknown);
            }
            if has_value(obs) {
                d.rejected.push(unknown);
            }
        }
    }
    Ok(d)
}

fn has_value(o: &Obj) -> bool {
    o.keys().any(|k| k.starts_with("value"))
}

fn status(obs: &Obj) -> Result<ObsStatus, DecodeError> {
    Ok(match obs.get("status") {
        None => ObsStatus::Unknown,
        Some(Value::String(s)) => match s.as_str() {
            "final" => ObsStatus::Final,
            "amended" => ObsStatus::Amended,
            "corrected" => ObsStatus::Corrected,
            "preliminary" => ObsStatus::Preliminary,
            "registered" => ObsStatus::Registered,
            "cancelled" => ObsStatus::Cancelled,
            "entered-in-error" => ObsStatus::EnteredInError,
            _ => ObsStatus::Unknown,
        },
        Some(_) => return Err(malformed("status is not a string")),
    })
}

fn wave_status(s: ObsStatus) -> Result<(), DecodeError> {
    if s.alarmable() || s == ObsStatus::Preliminary {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            field: "status",
            why: format!("waveform with status {} is not displayed", s.as_str()),
        })
    }
}

fn device(obs: &Obj) -> Result<Option<String>, DecodeError> {
    let Some(d) = obs.get("device") else {
        return Ok(None);
    };
    let d = d
        .as_object()
        .ok_or_else(|| malformed("device is not a Reference"))?;
    if let Some(ident) = d.get("identifier") {
        let ident = ident
            .as_object()
            .ok_or_else(|| malformed("device.identifier is not an Identifier"))?;
        match ident.get("value") {
            Some(Value::String(v)) => {
                if let Some(id) = clean_device_id(v)? {
                    return Ok(Some(id));
                }
            }
            None => {}
            Some(_) => return Err(malformed("device.identifier.value is not a string")),
        }
    }
    match d.get("reference") {
        Some(Value::String(r)) => {
            let id = match r.strip_prefix("Device/") {
                // "Device/{id}" or "Device/{id}/_history/{version}"
                Some(rest) => rest.split('/').next().unwrap_or_default(),
                None => r.as_str(),
            };
            clean_device_id(id)
        }
        None => Ok(None),
        Some(_) => Err(malformed("device.reference is not a string")),
    }
}

fn obs_time(obs: &Obj) -> Result<i64, DecodeError> {
    if let Some(v) = obs.get("effectiveDateTime") {
        return datetime(v, "effectiveDateTime");
    }
    if let Some(v) = obs.get("effectiveInstant") {
        return datetime(v, "effectiveInstant");
    }
    if let Some(p) = obs.get("effectivePeriod") {
        let p = p
            .as_object()
            .ok_or_else(|| malformed("effectivePeriod is not a Period"))?;
        if let Some(v) = p.get("start").or_else(|| p.get("end")) {
            return datetime(v, "effectivePeriod");
        }
    }
    if let Some(v) = obs.get("issued") {
        return datetime(v, "issued");
    }
    Err(DecodeError::Invalid {
        field: "effective",
        why: "no effectiveDateTime, effectivePeriod or issued time".into(),
    })
}

fn datetime(v: &Value, field: &'static str) -> Result<i64, DecodeError> {
    let s = v
        .as_str()
        .ok_or_else(|| malformed(&format!("{field} is not a string")))?;
    parse_datetime(s).map_err(|why| DecodeError::Invalid {
        field,
        why: format!("{:?}: {why}", truncate(s, 40)),
    })
}

/// Parse a FHIR `dateTime` / `instant` into ms since the Unix epoch (UTC). Partial dates are
/// midnight UTC of their first day; a time needs `Z` or an offset.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    if s.len() > 40 {
        return Err("too long for a dateTime".into());
    }
    let (ms, year) = if s.contains('T') {
        let dt = DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("not a dateTime with seconds and a time zone ({e})"))?;
        (dt.timestamp_millis(), dt.year())
    } else {
        let parts: Vec<&str> = s.split('-').collect();
        let num = |p: &str, len: usize| -> Result<u32, String> {
            if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u32>().map_err(|e| e.to_string())
            } else {
                Err("not a date (YYYY, YYYY-MM or YYYY-MM-DD)".into())
            }
        };
        let (y, m, d) = match parts.as_slice() {
            [y] => (num(y, 4)?, 1, 1),
            [y, m] => (num(y, 4)?, num(m, 2)?, 1),
            [y, m, d] => (num(y, 4)?, num(m, 2)?, num(d, 2)?),
            _ => return Err("not a date (YYYY, YYYY-MM or YYYY-MM-DD)".into()),
        };
        let year = i32::try_from(y).map_err(|e| e.to_string())?;
        let date = NaiveDate::from_ymd_opt(year, m, d).ok_or("no such calendar date")?;
        let ms = date
            .and_hms_opt(0, 0, 0)
            .ok_or("no such time")?
            .and_utc()
            .timestamp_millis();
        (ms, year)
    };
    if !(YEAR_RANGE.0..=YEAR_RANGE.1).contains(&year) {
        return Err(format!(
            "year {year} is outside {}..={}",
            YEAR_RANGE.0, YEAR_RANGE.1
        ));
    }
    Ok(ms)
}

/// What a CodeableConcept names: `Ok(Ok(target))`, `Ok(Err(why unknown))`, or `Err` when the
/// concept is malformed.
fn lookup(code: Option<&Value>) -> Result<Result<Target, DecodeError>, DecodeError> {
    let Some(cc) = code else {
        return Ok(Err(DecodeError::Invalid {
            field: "code",
            why: "no code".into(),
        }));
    };
    let cc = cc
        .as_object()
        .ok_or_else(|| malformed("code is not a CodeableConcept"))?;
    let codings: &[Value] = match cc.get("coding") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(malformed("code.coding is not an array")),
    };
    let mut found: Vec<Target> = Vec::new();
    let mut first_mdc: Option<u32> = None;
    let mut seen: Vec<String> = Vec::new();
    for c in codings.iter().take(32) {
        let c = c
            .as_object()
            .ok_or_else(|| malformed("a coding is not an object"))?;
        let system = c.get("system").and_then(Value::as_str).unwrap_or("");
        let code = c.get("code").and_then(Value::as_str).unwrap_or("").trim();
        let target = if system == LOINC_SYSTEM {
            vital_from_loinc(code)
                .map(Target::Vital)
                .or_else(|| is_loinc_group(code).then_some(Target::Group))
        } else if MDC_SYSTEMS.contains(&system) {
            code.parse::<u32>().ok().and_then(|n| {
                first_mdc.get_or_insert(n);
                vital_from_mdc(n)
                    .map(Target::Vital)
                    .or_else(|| channel_from_mdc(n).map(Target::Channel))
                    .or_else(|| is_mdc_group(n).then_some(Target::Group))
            })
        } else {
            None
        };
        match target {
            Some(t) if !found.contains(&t) => found.push(t),
            Some(_) => {}
            None if seen.len() < 3 => {
                seen.push(format!("{}|{}", short_system(system), truncate(code, 24)))
            }
            None => {}
        }
    }
    Ok(match found.as_slice() {
        [t] => Ok(*t),
        [] => Err(match first_mdc {
            Some(n) => DecodeError::UnknownCode(n),
            None => DecodeError::Invalid {
                field: "code",
                why: format!("no LOINC or MDC code Vigil knows ({})", seen.join(", ")),
            },
        }),
        many => Err(DecodeError::Invalid {
            field: "code",
            why: format!(
                "codings name different things: {}",
                many.iter().map(Target::name).collect::<Vec<_>>().join(", ")
            ),
        }),
    })
}

fn short_system(system: &str) -> String {
    match system {
        LOINC_SYSTEM => "loinc".into(),
        "http://snomed.info/sct" => "sct".into(),
        s if MDC_SYSTEMS.contains(&s) => "mdc".into(),
        "" => "(no system)".into(),
        s => truncate(s, 30),
    }
}

/// The value of an observation or component for `vital`: `None` when absent or with a
/// `dataAbsentReason`.
fn value(o: &Obj, vital: Vital) -> Result<Option<f64>, DecodeError> {
    let name = vital.name();
    let values: Vec<&String> = o.keys().filter(|k| k.starts_with("value")).collect();
    if o.contains_key("dataAbsentReason") {
        if values.is_empty() {
            return Ok(None);
        }
        return Err(DecodeError::Invalid {
            field: "dataAbsentReason",
            why: format!("{name} has both a value and a dataAbsentReason"),
        });
    }
    match values.as_slice() {
        [] => Ok(None),
        [k] if k.as_str() == "valueQuantity" => o
            .get("valueQuantity")
            .map_or(Ok(None), |q| quantity(q, vital).map(Some)),
        [k] => Err(DecodeError::Invalid {
            field: "value",
            why: format!(
                "{} is not accepted for {name}; a valueQuantity is required",
                truncate(k, 40)
            ),
        }),
        _ => Err(DecodeError::Invalid {
            field: "value",
            why: format!("{name} has several value[x]"),
        }),
    }
}

fn quantity(q: &Value, vital: Vital) -> Result<f64, DecodeError> {
    let q = q
        .as_object()
        .ok_or_else(|| malformed("valueQuantity is not a Quantity"))?;
    if let Some(c) = q.get("comparator") {
        return Err(DecodeError::Invalid {
            field: "comparator",
            why: format!(
                "{} {} is not an exact value",
                vital.name(),
                truncate(&c.to_string(), 8)
            ),
        });
    }
    let v = match q.get("value") {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| malformed("valueQuantity.value is not a finite number"))?,
        Some(_) => return Err(malformed("valueQuantity.value is not a number")),
        None => {
            return Err(DecodeError::Invalid {
                field: "valueQuantity",
                why: format!("{} quantity without a value", vital.name()),
            })
        }
    };
    let unit = unit_of(q, vital.name(), vital.unit())?;
    convert_reading(vital, v, unit)
}

/// The unit of a Quantity from its `system` and `code`.
fn unit_of<'a>(q: &'a Obj, what: &str, expected: &'static str) -> Result<UnitRef<'a>, DecodeError> {
    let system = q.get("system").and_then(Value::as_str);
    let code = q.get("code").and_then(Value::as_str);
    let bad = |got: String| DecodeError::Unit {
        what: what.to_string(),
        got: truncate(&got, 48),
        expected,
    };
    match (system, code) {
        (None | Some(UCUM_SYSTEM), Some(c)) => Ok(UnitRef::Ucum(c)),
        (Some(s), Some(c)) if MDC_SYSTEMS.contains(&s) => c
            .trim()
            .parse::<u32>()
            .map(UnitRef::Mdc)
            .map_err(|_| bad(format!("mdc|{c}"))),
        (Some(s), Some(c)) => Err(bad(format!("{s}|{c}"))),
        (_, None) => Err(bad(format!(
            "{} (no UCUM code)",
            q.get("unit").and_then(Value::as_str).unwrap_or("none")
        ))),
    }
}

fn number(o: &Obj, key: &str) -> Result<Option<f64>, DecodeError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| malformed(&format!("valueSampledData.{key} is not a finite number"))),
        Some(_) => Err(malformed(&format!(
            "valueSampledData.{key} is not a number"
        ))),
    }
}

/// Decode a SampledData for `channels` (one per interleaved dimension).
fn sampled(
    sd: &Value,
    channels: &[&'static ChannelInfo],
    t0_ms: i64,
) -> Result<Vec<Samples>, DecodeError> {
    let invalid = |why: String| DecodeError::Invalid {
        field: "valueSampledData",
        why,
    };
    let sd = sd
        .as_object()
        .ok_or_else(|| malformed("valueSampledData is not a SampledData"))?;
    let origin = sd
        .get("origin")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("no origin".into()))?;
    let origin_value =
        number(origin, "value")?.ok_or_else(|| invalid("origin without value".into()))?;
    let period = number(sd, "period")?.ok_or_else(|| invalid("no period".into()))?;
    let factor = number(sd, "factor")?.unwrap_or(1.0);
    let dims = match sd.get("dimensions") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .ok_or_else(|| invalid(format!("dimensions must be 1 to {MAX_DIMENSIONS}")))?,
    } as usize;
    if channels.len() != dims {
        let names: Vec<&str> = channels.iter().map(|c| c.name).collect();
        return Err(invalid(format!(
            "{dims} interleaved dimension(s) but the observation names {} waveform channel(s) [{}]; \
             interleaved data need one value-less component per channel, in order",
            channels.len(),
            names.join(", ")
        )));
    }
    let data = match sd.get("data") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(malformed("valueSampledData.data is not a string")),
        None => return Err(invalid("no data".into())),
    };
    let mut tokens = Vec::new();
    for tok in data.split_ascii_whitespace() {
        tokens.push(match tok {
            "E" | "L" | "U" => None,
            t => Some(parse_decimal(t, true).ok_or_else(|| {
                invalid(format!(
                    "data token {:?} is not a decimal, E, L or U",
                    truncate(t, 24)
                ))
            })?),
        });
    }
    if tokens.is_empty() {
        return Err(invalid("no samples in data".into()));
    }
    if tokens.len() % dims != 0 {
        return Err(invalid(format!(
            "{} samples is not a multiple of {dims} dimensions",
            tokens.len()
        )));
    }
    // Unit of origin (and so of the scaled data); none = the channel's unit.
    let has_unit = origin.contains_key("code") || origin.contains_key("system");
    let mut out = Vec::new();
    for (j, ch) in channels.iter().enumerate() {
        let conv = if has_unit {
            conversion(unit_of(origin, ch.name, ch.unit)?, ch.unit, ch.name)?
        } else {
            super::Conversion {
                scale: 1.0,
                offset: 0.0,
            }
        };
        let mine: Vec<_> = tokens.iter().skip(j).step_by(dims).copied().collect();
        let q = quantise(&mine).map_err(invalid)?;
        let origin = origin_value * conv.scale + conv.offset;
        let factor = factor * conv.scale;
        out.extend(chunk_samples(ch, t0_ms, period, origin, factor, &q).map_err(invalid)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    fn obs(body: &str) -> String {
        format!(
            r#"{{"resourceType":"Observation","status":"final","effectiveDateTime":"2026-11-23T10:00:00Z",{body}}}"#
        )
    }

    fn loinc(code: &str) -> String {
        format!(r#""code":{{"coding":[{{"system":"http://loinc.org","code":"{code}"}}]}}"#)
    }

    fn dec(s: &str) -> Batch {
        decode(s.as_bytes()).unwrap_or_else(|e| panic!("{s:.80}: {e}"))
    }

    const T: i64 = 1_795_428_000_000;

    #[test]
    fn body_weight_and_capillary_glucose() {
        // The vital-signs body weight profile: LOINC 29463-7, kg, g or [lb_av].
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":185,"system":"http://unitsofmeasure.org","code":"[lb_av]"}}"#,
            loinc("29463-7")
        )));
        let got: Vec<_> = b
            .readings
            .iter()
            .map(|r| (r.vital, r.value, r.t_ms))
            .collect();
        assert_eq!(got, [(Vital::Weight, Some(83.914588), T)], "{b:?}");
        // A glucose meter in mmol/L (LOINC 14743-9), converted to mg/dL.
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":3.5,"system":"http://unitsofmeasure.org","code":"mmol/L"}}"#,
            loinc("14743-9")
        )));
        let got: Vec<_> = b.readings.iter().map(|r| (r.vital, r.value)).collect();
        assert_eq!(got, [(Vital::Glucose, Some(63.056))], "{b:?}");
        // By its MDC code, in mg/dL.
        let b = dec(&obs(
            r#""code":{"coding":[{"system":"urn:iso:std:iso:11073:10101","code":"160184"}]},"valueQuantity":{"value":112,"code":"mg/dL"}"#,
        ));
        let got: Vec<_> = b.readings.iter().map(|r| (r.vital, r.value)).collect();
        assert_eq!(got, [(Vital::Glucose, Some(112.0))], "{b:?}");
        // A weight in a glucose unit is refused, and said why.
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":80,"code":"mg/dL"}}"#,
            loinc("29463-7")
        )));
        assert!(b.readings.is_empty());
        let reasons: Vec<_> = b.rejected.iter().map(DecodeError::reason).collect();
        assert_eq!(reasons, ["bad_unit"]);
    }

    #[test]
    fn fahrenheit_converted_and_device_mapped() {
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":98.6,"system":"http://unitsofmeasure.org","code":"[degF]"}},
               "device":{{"reference":"Device/mon-7/_history/2"}}"#,
            loinc("8310-5")
        )));
        assert_eq!(b.readings.len(), 1, "{b:?}");
        assert_eq!(b.readings[0].vital, Vital::Temp);
        assert_eq!(b.readings[0].value, Some(37.0));
        assert_eq!(b.readings[0].t_ms, T);
        assert_eq!(b.device.as_deref(), Some("mon-7"));
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":72,"code":"/min"}},
               "device":{{"reference":"Device/x","identifier":{{"value":"EUI-0011"}}}}"#,
            loinc("8867-4")
        )));
        assert_eq!(b.device.as_deref(), Some("EUI-0011"), "identifier wins");
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":72,"code":"/min"}},"device":{{"display":"some monitor"}}"#,
            loinc("8867-4")
        )));
        assert_eq!(b.device, None);
    }

    #[test]
    fn rejects_per_observation() {
        let cases = [
            (format!(r#"{},"valueQuantity":{{"value":72,"code":"%"}}"#, loinc("8867-4")), "bad_unit"),
            (format!(r#"{},"valueQuantity":{{"value":72,"unit":"bpm"}}"#, loinc("8867-4")), "bad_unit"),
            (format!(r#"{},"valueQuantity":{{"value":72,"system":"http://x","code":"/min"}}"#, loinc("8867-4")), "bad_unit"),
            (format!(r#"{},"valueQuantity":{{"value":720,"code":"/min"}}"#, loinc("8867-4")), "out_of_range"),
            (format!(r#"{},"valueQuantity":{{"value":"72","code":"/min"}}"#, loinc("8867-4")), "malformed"),
            (format!(r#"{},"valueQuantity":{{"code":"/min"}}"#, loinc("8867-4")), "invalid_field"),
            (format!(r#"{},"valueQuantity":{{"value":50,"comparator":"<","code":"/min"}}"#, loinc("8867-4")), "invalid_field"),
            (format!(r#"{},"valueString":"72""#, loinc("8867-4")), "invalid_field"),
            (format!(r#"{},"valueQuantity":{{"value":72,"code":"/min"}},"dataAbsentReason":{{"text":"x"}}"#, loinc("8867-4")), "invalid_field"),
            (format!(r#"{},"valueQuantity":{{"value":13,"code":"{{score}}"}}"#, loinc("9269-2")), "invalid_field"),
            (r#""code":{"coding":[{"system":"urn:iso:std:iso:11073:10101","code":"160220"}]},"valueQuantity":{"value":1,"code":"%"}"#.to_string(), "unknown_code"),
            (r#""code":{"coding":[{"system":"http://loinc.org","code":"8867-4"},{"system":"http://loinc.org","code":"59408-5"}]},"valueQuantity":{"value":1,"code":"%"}"#.to_string(), "invalid_field"),
        ];
        for (body, reason) in cases {
            let b = dec(&obs(&body));
            assert!(b.readings.is_empty(), "{body}: {b:?}");
            let reasons: Vec<_> = b.rejected.iter().map(DecodeError::reason).collect();
            assert_eq!(reasons, [reason], "{body}");
        }
    }

    #[test]
    fn times_partial_offsets_and_absurd() {
        assert_eq!(parse_datetime("1999-07-02"), Ok(930_873_600_000));
        assert_eq!(parse_datetime("1999-07"), Ok(930_787_200_000));
        assert_eq!(parse_datetime("1999"), Ok(915_148_800_000));
        assert_eq!(
            parse_datetime("2015-02-19T09:30:35+01:00"),
            Ok(1_424_334_635_000)
        );
        assert_eq!(
            parse_datetime("2015-02-19T08:30:35.250Z"),
            Ok(1_424_334_635_250)
        );
        for bad in [
            "",
            "1999-7-2",
            "1999-02-30",
            "1999-13",
            "0000-01-01",
            "9999-12-31",
            "2015-02-19T09:30:35",
            "2015-02-19T09:30+01:00",
            "2015-02-19T25:00:00Z",
            "yesterday",
            "+1999-01-01",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad:?}");
        }
        let b = dec(&obs(&loinc("8867-4")).replace("2026-11-23T10:00:00Z", "3000-01-01"));
        assert_eq!(b.rejected[0].reason(), "invalid_field");
        // No time at all.
        let b = dec(
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":60,"code":"/min"}}"#,
        );
        assert!(b.readings.is_empty());
        assert_eq!(b.rejected[0].reason(), "invalid_field");
        // issued is the fallback.
        let b = dec(
            r#"{"resourceType":"Observation","status":"final","issued":"2026-11-23T10:00:00Z","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":60,"code":"/min"}}"#,
        );
        assert_eq!(b.readings[0].t_ms, T);
    }

    #[test]
    fn statuses_mapped_and_missing_is_unknown() {
        for (s, want) in [
            ("amended", ObsStatus::Amended),
            ("corrected", ObsStatus::Corrected),
            ("preliminary", ObsStatus::Preliminary),
            ("registered", ObsStatus::Registered),
            ("cancelled", ObsStatus::Cancelled),
            ("entered-in-error", ObsStatus::EnteredInError),
            ("unknown", ObsStatus::Unknown),
            ("bogus", ObsStatus::Unknown),
        ] {
            let b = dec(&obs(&format!(
                r#"{},"valueQuantity":{{"value":60,"code":"/min"}}"#,
                loinc("8867-4")
            ))
            .replace("\"final\"", &format!("{s:?}")));
            assert_eq!(b.readings[0].status, want, "{s}");
            assert_eq!(b.readings[0].alarmable(), want.alarmable());
        }
        let b = dec(&obs(&format!(
            r#"{},"valueQuantity":{{"value":60,"code":"/min"}}"#,
            loinc("8867-4")
        ))
        .replace("\"status\":\"final\",", ""));
        assert_eq!(b.readings[0].status, ObsStatus::Unknown);
        assert!(!b.readings[0].alarmable());
    }

    #[test]
    fn bundle_of_observations_with_device_check() {
        let hr = obs(&format!(
            r#"{},"valueQuantity":{{"value":60,"code":"/min"}},"device":{{"reference":"Device/a"}}"#,
            loinc("8867-4")
        ));
        let spo2 = obs(&format!(
            r#"{},"valueQuantity":{{"value":97,"code":"%"}}"#,
            loinc("59408-5")
        ));
        let other = obs(&format!(
            r#"{},"valueQuantity":{{"value":18,"code":"/min"}},"device":{{"reference":"Device/b"}}"#,
            loinc("9279-1")
        ));
        let bundle = format!(
            r#"{{"resourceType":"Bundle","type":"transaction","entry":[
                {{"resource":{hr}}},{{"resource":{spo2}}},{{"resource":{{"resourceType":"Patient"}}}},
                {{"request":{{"method":"DELETE"}}}},{{"resource":{other}}}]}}"#
        );
        let b = dec(&bundle);
        assert_eq!(b.device.as_deref(), Some("a"));
        let vitals: Vec<_> = b.readings.iter().map(|r| r.vital).collect();
        assert_eq!(vitals, [Vital::Hr, Vital::SpO2]);
        let reasons: Vec<_> = b.rejected.iter().map(DecodeError::reason).collect();
        assert_eq!(reasons, ["device_mismatch"]);
        let e = decode(br#"{"resourceType":"Bundle","type":"history","entry":[]}"#)
            .expect_err("history");
        assert_eq!(e.reason(), "invalid_field");
        let e = decode(br#"{"resourceType":"Bundle","entry":[]}"#).expect_err("no type");
        assert_eq!(e.reason(), "malformed");
    }

    fn ecg(data: &str, extra: &str) -> String {
        obs(&format!(
            r#""code":{{"coding":[{{"system":"urn:iso:std:iso:11073:10101","code":"131330"}}]}},
               "valueSampledData":{{"origin":{{"value":0.5{extra}}},"period":2,"factor":0.01,"dimensions":1,"data":"{data}"}}"#
        ))
    }

    #[test]
    fn sampled_data_quantised_with_gaps() {
        let b = dec(&ecg("1 2 E 3 L U 4.5 -1.25", ""));
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        let w = &b.waves;
        assert_eq!(w.len(), 3);
        assert!(w
            .iter()
            .all(|s| s.channel.name == "ECG_II" && s.rate == 500.0));
        assert_eq!((w[0].t0_ms, w[0].data.clone()), (T, vec![100, 200]));
        assert_eq!((w[1].t0_ms, w[1].data.clone()), (T + 6, vec![300]));
        assert_eq!((w[2].t0_ms, w[2].data.clone()), (T + 12, vec![450, -125]));
        for s in w {
            assert!((s.factor - 0.0001).abs() < 1e-15);
            assert_eq!(s.origin, 0.5);
        }
        // Physical values survive exactly (within float precision).
        assert!(
            (w[2].origin + w[2].factor * f64::from(w[2].data[1]) - (0.5 - 0.0125)).abs() < 1e-12
        );
        // Microvolts converted to the channel's mV.
        let b = dec(&ecg(
            "10 20",
            r#","code":"uV","system":"http://unitsofmeasure.org""#,
        ));
        assert!((b.waves[0].factor - 1e-5).abs() < 1e-18);
        assert!((b.waves[0].origin - 0.0005).abs() < 1e-15);
        for (data, extra) in [
            ("1 x 3", ""),
            ("", ""),
            ("1 NaN", ""),
            ("0.0000001", ""),
            ("99999999999", ""),
            ("1 2", r#","code":"mm[Hg]""#),
        ] {
            let b = dec(&ecg(data, extra));
            assert!(b.waves.is_empty(), "{data:?}");
            assert_eq!(b.rejected.len(), 1, "{data:?}");
        }
        let b = dec(&ecg("1 2", "").replace("\"period\":2", "\"period\":0"));
        assert!(b.waves.is_empty());
        let b = dec(&ecg("1 2", "").replace("final", "entered-in-error"));
        assert!(b.waves.is_empty(), "no waveform for entered-in-error");
    }

    #[test]
    fn integral_rates_survive_their_shortest_period() {
        // A sender (Vigil's own export among them) writes period = 1000 / rate as the shortest
        // decimal; for some rates (60 Hz: 16.666666666666668) 1000 / period is one ulp off.
        for rate in 1..=10_000u32 {
            let period = serde_json::to_string(&(1000.0 / f64::from(rate))).expect("period");
            let b = dec(&ecg("1 2", "").replace("\"period\":2", &format!("\"period\":{period}")));
            assert_eq!(b.waves.len(), 1, "{rate} Hz: {:?}", b.rejected);
            assert_eq!(
                b.waves[0].rate,
                f64::from(rate),
                "{rate} Hz from period {period}"
            );
        }
        // A rate that is not integral is left as it is.
        let b = dec(&ecg("1 2", "").replace("\"period\":2", "\"period\":3"));
        assert_eq!(b.waves[0].rate, 1000.0 / 3.0);
    }

    #[test]
    fn interleaved_channels_need_named_components() {
        let mdc = |c: &str| {
            format!(r#"{{"coding":[{{"system":"urn:iso:std:iso:11073:10101","code":"{c}"}}]}}"#)
        };
        let body = |components: &str| {
            obs(&format!(
                r#""code":{},"component":[{components}],
                   "valueSampledData":{{"origin":{{"value":0}},"period":4,"dimensions":2,"data":"1 10 2 20 3 E"}}"#,
                mdc("131328")
            ))
        };
        let b = dec(&body(&format!(
            r#"{{"code":{}}},{{"code":{}}}"#,
            mdc("131329"),
            mdc("131330")
        )));
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        assert_eq!(b.waves.len(), 2);
        assert_eq!(b.waves[0].channel.name, "ECG_I");
        assert_eq!(b.waves[0].data, vec![1, 2, 3]);
        assert_eq!(b.waves[1].channel.name, "ECG_II");
        assert_eq!(b.waves[1].data, vec![10, 20]);
        assert_eq!(b.waves[0].rate, 250.0);
        let b = dec(&body(&format!(r#"{{"code":{}}}"#, mdc("131329"))));
        assert!(b.waves.is_empty());
        assert_eq!(b.rejected[0].reason(), "invalid_field");
        assert!(b.rejected[0].to_string().contains("interleaved"));
    }

    #[test]
    fn hostile_payloads() {
        let hr = obs(&format!(
            r#"{},"valueQuantity":{{"value":60,"code":"/min"}}"#,
            loinc("8867-4")
        ));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "malformed"),
            (b"{".to_vec(), "malformed"),
            (hr.as_bytes()[..hr.len() / 2].to_vec(), "malformed"),
            (b"\x00\xff\xfe binary".to_vec(), "malformed"),
            (b"[1,2]".to_vec(), "malformed"),
            (b"null".to_vec(), "malformed"),
            (br#"{"resourceType":7}"#.to_vec(), "malformed"),
            (br#"{"resourceType":"Patient"}"#.to_vec(), "invalid_field"),
            (br#"{"id":"x"}"#.to_vec(), "invalid_field"),
            (hr.replace("60", "NaN").into_bytes(), "malformed"),
            (hr.replace("60", "1e999").into_bytes(), "malformed"),
            (
                format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
                "malformed",
            ),
            (
                format!(
                    r#"{{"resourceType":"Observation","x":{}1{}}}"#,
                    "{\"a\":".repeat(200),
                    "}".repeat(200)
                )
                .into_bytes(),
                "malformed",
            ),
            (vec![b' '; MAX_PAYLOAD_BYTES + 1], "too_large"),
        ];
        for (payload, reason) in cases {
            let got = decode(&payload);
            let shown = String::from_utf8_lossy(&payload[..payload.len().min(60)]).to_string();
            match got {
                Err(e) => assert_eq!(e.reason(), reason, "{shown}: {e}"),
                Ok(b) => panic!("accepted {shown}: {b:?}"),
            }
        }
        // Wrong types inside an observation: rejected, not accepted.
        for body in [
            r#""status":7,"code":{"coding":[]}"#,
            r#""code":"8867-4""#,
            r#""code":{"coding":{}}"#,
            r#""code":{"coding":[7]}"#,
            r#""component":{},"code":{"coding":[]}"#,
            r#""device":"Device/x","code":{"coding":[]}"#,
        ] {
            let b = dec(&format!(r#"{{"resourceType":"Observation",{body}}}"#));
            assert!(b.readings.is_empty() && b.waves.is_empty());
            assert_eq!(b.rejected.len(), 1, "{body}: {:?}", b.rejected);
        }
    }

    #[test]
    fn channel_lookup_uses_contract_table() {
        assert_eq!(channel_from_mdc(131389).map(|c| c.name), Some("ECG_III"));
        assert!(codes::channel("PLETH").is_some());
    }
}
