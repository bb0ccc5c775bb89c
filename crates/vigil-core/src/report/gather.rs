//! What each document shows, read from the history: the read side of the reports.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{patient_line, ReportError, ReportSettings, ShiftRequest, StripEnd, StripRequest};
use super::{TrendRequest, MAX_STRIP_MS, MIN_STRIP_AFTER_MS};
use crate::alarms::news2::{self, Consciousness, News2Input};
use crate::alarms::Priority;
use crate::codes::{self, Vital};
use crate::patients::Patient;
use crate::query::{self, AlarmEpisode};
use crate::telemetry::BedId;
use vigil_report::{
    Cuff, Numeric, Onset, Printed, Series, ShiftAlarm, ShiftBed, ShiftDoc, Stretch, StripDoc,
    Trace, TraceKind, TrendDoc, TrendTable,
};

/// Statuses a report shows (what the trends show: final, amended, corrected, unverified).
const SHOWN: &str = "status IN ('final', 'amended', 'corrected', 'unverified')";

/// The patient in `bed` at `t_ms`: a ward patient admitted by then and not discharged before
/// it, or a remote patient enrolled to that bed. (A transfer moves the patient's row to the new
/// bed, so a bed's earlier patient who moved on is not found: the document then says no patient
/// was admitted.)
pub fn patient_at(
    conn: &Connection,
    bed: &BedId,
    t_ms: i64,
) -> Result<Option<Patient>, ReportError> {
    let mut q = conn.prepare_cached(
        "SELECT mrn, name, dob, sex, pacemaker, admitted_ms FROM patients
         WHERE ward = ?1 AND bed = ?2 AND admitted_ms <= ?3
           AND (discharged_ms IS NULL OR discharged_ms > ?3)
         UNION ALL
         SELECT mrn, name, dob, NULL, 0, enrolled_ms FROM remote_patients
         WHERE ward = ?1 AND bed = ?2 AND enrolled_ms <= ?3
           AND (discharged_ms IS NULL OR discharged_ms > ?3)
         ORDER BY 6 DESC LIMIT 1",
    )?;
    Ok(q.query_row(params![bed.ward, bed.bed, t_ms], |r| {
        Ok(Patient {
            bed: bed.clone(),
            mrn: r.get(0)?,
            name: r.get(1)?,
            dob: r.get(2)?,
            sex: r.get(3)?,
            pacemaker: r.get(4)?,
            admitted_ms: r.get(5)?,
        })
    })
    .optional()?)
}

/// The alarm episode raised on `bed` as `alarm_id` at exactly `onset_ms`.
pub fn episode(
    conn: &Connection,
    bed: &BedId,
    alarm_id: &str,
    onset_ms: i64,
    now_ms: i64,
) -> Result<Option<AlarmEpisode>, ReportError> {
    Ok(
        query::alarm_episodes(conn, bed, onset_ms, onset_ms + 1, now_ms, usize::MAX)?
            .into_iter()
            .find(|e| e.alarm_id == alarm_id && e.t_ms == onset_ms),
    )
}

/// The waveform channels stored for `bed` with chunks in `[from_ms, to_ms)`: ECG leads first
/// (I, II, III, V5), then pleth and resp.
pub fn channels(
    conn: &Connection,
    bed: &BedId,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<&'static codes::ChannelInfo>, ReportError> {
    let mut q = conn.prepare_cached(
        "SELECT DISTINCT channel FROM wave_chunks
         WHERE ward = ?1 AND bed = ?2 AND t0_ms >= ?3 AND t0_ms < ?4",
    )?;
    let names = q
        .query_map(
            params![bed.ward, bed.bed, from_ms - query::CHUNK_LOOKBACK_MS, to_ms],
            |r| r.get::<_, String>(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out: Vec<_> = names.iter().filter_map(|n| codes::channel(n)).collect();
    let order = ["ECG_I", "ECG_II", "ECG_III", "ECG_V5", "PLETH", "RESP"];
    out.sort_by_key(|c| {
        order
            .iter()
            .position(|o| *o == c.name)
            .unwrap_or(order.len())
    });
    Ok(out)
}

/// How a channel is labelled on a strip: `II`, `V5`, `Pleth`, `Resp`.
fn channel_label(name: &str) -> String {
    match name {
        "PLETH" => "Pleth".into(),
        "RESP" => "Resp".into(),
        n => n.strip_prefix("ECG_").unwrap_or(n).to_string(),
    }
}

/// The last shown reading of `vital` on `bed` at or before `t_ms`, no older than `max_age_ms`.
pub fn last_value(
    conn: &Connection,
    bed: &BedId,
    vital: Vital,
    t_ms: i64,
    max_age_ms: i64,
) -> Result<Option<(i64, f64)>, ReportError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT t_ms, value FROM numerics
         WHERE ward = ?1 AND bed = ?2 AND code = ?3 AND t_ms <= ?4 AND t_ms >= ?5
           AND value IS NOT NULL AND {SHOWN}
         ORDER BY t_ms DESC LIMIT 1"
    ))?;
    Ok(q.query_row(
        params![bed.ward, bed.bed, vital.name(), t_ms, t_ms - max_age_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

/// A value as a report prints it: no more decimals than the vital has.
pub fn fmt_value(vital: Vital, v: f64) -> String {
    match vital {
        Vital::Temp | Vital::Weight => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}

/// How stale a numeric at onset may be: a cuff pressure or a temperature is measured now and
/// then; the rest are continuous.
fn max_age(vital: Vital) -> i64 {
    match vital {
        Vital::NibpSys | Vital::NibpDia | Vital::NibpMean | Vital::Temp => 4 * 3_600_000,
        Vital::Weight | Vital::Glucose => 24 * 3_600_000,
        _ => 5 * 60_000,
    }
}

/// The numerics at `t_ms`: the last reading of each vital at or before it.
fn numerics_at(
    conn: &Connection,
    bed: &BedId,
    t_ms: i64,
    settings: &ReportSettings,
) -> Result<Vec<Numeric>, ReportError> {
    let mut out = Vec::new();
    let get = |v: Vital| last_value(conn, bed, v, t_ms, max_age(v));
    for v in [
        Vital::Hr,
        Vital::Pr,
        Vital::SpO2,
        Vital::Rr,
        Vital::EtCo2,
        Vital::Temp,
    ] {
        if let Some((_, x)) = get(v)? {
            out.push(Numeric {
                label: label(v).to_string(),
                value: format!("{} {}", fmt_value(v, x), unit_text(v)),
            });
        }
    }
    if let (Some((ts, s)), Some((_, d))) = (get(Vital::NibpSys)?, get(Vital::NibpDia)?) {
        let mean = get(Vital::NibpMean)?
            .map(|(_, m)| format!(" ({m:.0})"))
            .unwrap_or_default();
        out.push(Numeric {
            label: "NIBP".into(),
            value: format!(
                "{s:.0}/{d:.0}{mean} mmHg at {}",
                local(ts, settings, "%H:%M")
            ),
        });
    }
    Ok(out)
}

/// A vital's name as a clinician reads it.
fn label(v: Vital) -> &'static str {
    match v {
        Vital::Hr => "HR",
        Vital::Pr => "PR",
        Vital::SpO2 => "SpO2",
        Vital::Rr => "RR",
        Vital::EtCo2 => "EtCO2",
        Vital::Temp => "Temp",
        Vital::NibpSys => "NIBP sys",
        Vital::NibpDia => "NIBP dia",
        Vital::NibpMean => "NIBP mean",
        Vital::Weight => "Weight",
        Vital::Glucose => "Glucose",
    }
}

/// A vital's unit as printed (UCUM `Cel` is °C, `mm[Hg]` mmHg).
fn unit_text(v: Vital) -> &'static str {
    match v.unit() {
        "Cel" => "°C",
        "mm[Hg]" => "mmHg",
        u => u,
    }
}

/// `t_ms` in the report's zone, as `fmt` says.
fn local(t_ms: i64, settings: &ReportSettings, fmt: &str) -> String {
    use chrono::TimeZone;
    settings
        .tz
        .timestamp_millis_opt(t_ms)
        .single()
        .map_or_else(|| t_ms.to_string(), |t| t.format(fmt).to_string())
}

/// The strip's document and its file name (without extension).
pub(super) fn strip(
    conn: &Connection,
    user: &str,
    req: &StripRequest,
    settings: &ReportSettings,
    now_ms: i64,
) -> Result<(StripDoc, String), ReportError> {
    let ep = episode(conn, &req.bed, &req.alarm_id, req.onset_ms, now_ms)?.ok_or_else(|| {
        ReportError::UnknownAlarm {
            bed: req.bed.key(),
            alarm: req.alarm_id.clone(),
            onset_ms: req.onset_ms,
        }
    })?;
    let (from_ms, to_ms) = strip_window(&ep, settings, now_ms);
    let mut traces = Vec::new();
    for ch in channels(conn, &req.bed, from_ms, to_ms)? {
        let d = query::disclosure(conn, &req.bed, ch.name, from_ms, to_ms, now_ms)?;
        traces.push(Trace {
            label: channel_label(ch.name),
            kind: if ch.unit == "mV" {
                TraceKind::Ecg
            } else {
                TraceKind::Scaled
            },
            unit: ch.unit.to_string(),
            stretches: d
                .segments
                .into_iter()
                .map(|s| Stretch {
                    t0_ms: s.t0 as f64,
                    rate: s.rate,
                    values: s.values,
                })
                .collect(),
            gaps: d.gaps,
        });
    }
    let patient = patient_at(conn, &req.bed, ep.t_ms)?;
    let doc = StripDoc {
        printed: Printed {
            by: user.to_string(),
            at_ms: now_ms,
            tz: settings.tz,
        },
        patient: patient.as_ref().map(patient_line),
        bed: req.bed.key(),
        alarm: ep.message.clone(),
        priority: ep.priority.as_str().to_string(),
        onset_ms: ep.t_ms,
        outcome: outcome(&ep, settings),
        numerics: numerics_at(conn, &req.bed, ep.t_ms, settings)?,
        from_ms,
        to_ms,
        traces,
        reason: req.reason.as_str().to_string(),
    };
    let name = format!(
        "strip_{}_{}_{}",
        super::file_part(&req.bed.key()),
        super::stamp(ep.t_ms),
        super::file_part(&ep.code)
    );
    Ok((doc, name))
}

/// The strip's window for an episode: from the configured time before the onset to its end
/// ([`StripEnd`]), never past `now_ms`.
pub fn strip_window(ep: &AlarmEpisode, settings: &ReportSettings, now_ms: i64) -> (i64, i64) {
    let from = ep.t_ms - settings.strip_before_ms;
    let to = match settings.strip_end {
        StripEnd::After(after) => ep.t_ms + after,
        StripEnd::Event => ep
            .resolved_ms
            .unwrap_or(now_ms)
            .max(ep.t_ms + MIN_STRIP_AFTER_MS)
            .min(from + MAX_STRIP_MS),
    };
    (from, to.min(now_ms).max(from + 1))
}

/// When a strip of `ep` is complete: its window's end has passed.
pub fn strip_complete(ep: &AlarmEpisode, settings: &ReportSettings, now_ms: i64) -> bool {
    let (_, to) = strip_window(ep, settings, i64::MAX);
    to <= now_ms
}

/// How an alarm ended, in words, times in the report's zone.
fn outcome(ep: &AlarmEpisode, settings: &ReportSettings) -> String {
    let t = |ms: i64| local(ms, settings, "%H:%M:%S %Z");
    let ack = match (&ep.acknowledged_by, ep.acknowledged_ms) {
        (Some(by), Some(at)) => format!("Acknowledged by {by} at {}", t(at)),
        (None, Some(at)) => format!("Acknowledged at {}", t(at)),
        _ => "Not acknowledged".to_string(),
    };
    match ep.resolved_ms {
        Some(r) => format!("{ack}; ended at {}", t(r)),
        None => format!("{ack}; still active when printed"),
    }
}

/// A series of bucket means, buckets of `bucket_ms` from `from_ms` (not from the epoch: a
/// report's rows start at its own start), each point at the mean time of its readings (so the
/// newest bucket's point is never later than its newest reading).
fn series(
    conn: &Connection,
    bed: &BedId,
    vital: Vital,
    label: &str,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Result<Series, ReportError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT (t_ms - ?1) / ?2 AS k, AVG(t_ms), AVG(value) FROM numerics
         WHERE ward = ?3 AND bed = ?4 AND code = ?5 AND t_ms >= ?1 AND t_ms < ?6
           AND value IS NOT NULL AND {SHOWN}
         GROUP BY k ORDER BY k"
    ))?;
    let rows = q.query_map(
        params![
            from_ms,
            bucket_ms.max(1),
            bed.ward,
            bed.bed,
            vital.name(),
            to_ms
        ],
        |r| Ok((r.get::<_, f64>(1)?.round() as i64, r.get::<_, f64>(2)?)),
    )?;
    Ok(Series {
        label: label.to_string(),
        unit: unit_text(vital).to_string(),
        points: rows.collect::<Result<_, _>>()?,
    })
}

/// Every cuff measurement (systolic, diastolic and mean of the same instant).
fn cuffs(
    conn: &Connection,
    bed: &BedId,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Cuff>, ReportError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT t_ms, code, value FROM numerics
         WHERE ward = ?1 AND bed = ?2 AND code IN ('NIBP_SYS', 'NIBP_DIA', 'NIBP_MEAN')
           AND t_ms >= ?3 AND t_ms < ?4 AND value IS NOT NULL AND {SHOWN}
         ORDER BY t_ms"
    ))?;
    let mut by_t: BTreeMap<i64, Cuff> = BTreeMap::new();
    let rows = q.query_map(params![bed.ward, bed.bed, from_ms, to_ms], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    for row in rows {
        let (t, code, v) = row?;
        let c = by_t.entry(t).or_insert(Cuff {
            t_ms: t,
            sys: None,
            dia: None,
            mean: None,
        });
        match Vital::from_name(&code) {
            Some(Vital::NibpSys) => c.sys = Some(v),
            Some(Vital::NibpDia) => c.dia = Some(v),
            Some(Vital::NibpMean) => c.mean = Some(v),
            _ => {}
        }
    }
    Ok(by_t.into_values().collect())
}

/// The latest point of `s` at or before `t`, no older than `max_age`.
fn at(s: &Series, t: i64, max_age: i64) -> Option<f64> {
    let i = s.points.partition_point(|p| p.0 <= t);
    let (pt, v) = *s.points.get(i.checked_sub(1)?)?;
    (t - pt <= max_age).then_some(v)
}

/// NEWS2 at `t` from the stored vitals (consciousness and supplemental oxygen are not in the
/// history: alert and air are assumed, which the documents say).
fn news2_at(v: &Vitals, t: i64) -> Option<f64> {
    let cuff = v
        .cuffs
        .iter()
        .rev()
        .find(|c| c.t_ms <= t && c.sys.is_some())
        .filter(|c| t - c.t_ms <= max_age(Vital::NibpSys))?;
    let input = News2Input {
        rr: at(&v.rr, t, 3_600_000)?,
        spo2: at(&v.spo2, t, 3_600_000)?,
        scale2: false,
        oxygen: false,
        sbp: cuff.sys?,
        pulse: at(&v.hr, t, 3_600_000).or_else(|| at(&v.pr, t, 3_600_000))?,
        consciousness: Consciousness::Alert,
        temp: at(&v.temp, t, max_age(Vital::Temp))?,
    };
    Some(f64::from(news2::score(&input).total))
}

/// A bed's vitals over a period at one bucket size.
struct Vitals {
    hr: Series,
    pr: Series,
    spo2: Series,
    rr: Series,
    temp: Series,
    cuffs: Vec<Cuff>,
}

impl Vitals {
    fn read(
        conn: &Connection,
        bed: &BedId,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vitals, ReportError> {
        // NEWS2 at the period's start needs the values from before it.
        // Whole buckets back from the start, so the buckets line up with the rows.
        let back = from_ms - (max_age(Vital::Temp) + bucket_ms - 1) / bucket_ms * bucket_ms;
        Ok(Vitals {
            hr: series(conn, bed, Vital::Hr, "HR", back, to_ms, bucket_ms)?,
            pr: series(conn, bed, Vital::Pr, "PR", back, to_ms, bucket_ms)?,
            spo2: series(conn, bed, Vital::SpO2, "SpO2", back, to_ms, bucket_ms)?,
            rr: series(conn, bed, Vital::Rr, "RR", back, to_ms, bucket_ms)?,
            temp: series(conn, bed, Vital::Temp, "Temp", back, to_ms, bucket_ms)?,
            cuffs: cuffs(conn, bed, back, to_ms)?,
        })
    }

    fn news2(&self, from_ms: i64, to_ms: i64, step_ms: i64) -> Series {
        let mut points = Vec::new();
        let mut t = from_ms + step_ms;
        while t <= to_ms {
            if let Some(s) = news2_at(self, t) {
                points.push((t, s));
            }
            t += step_ms;
        }
        Series {
            label: "NEWS2".into(),
            unit: "score (A, air)".into(),
            points,
        }
    }

    /// The series restricted to `[from, to)`.
    fn clip(&self, from_ms: i64, to_ms: i64) -> [Series; 5] {
        [&self.hr, &self.pr, &self.spo2, &self.rr, &self.temp].map(|s| Series {
            points: s
                .points
                .iter()
                .copied()
                .filter(|p| p.0 >= from_ms && p.0 < to_ms)
                .collect(),
            ..s.clone()
        })
    }
}

/// The trend report's document.
pub(super) fn trend(
    conn: &Connection,
    user: &str,
    req: &TrendRequest,
    settings: &ReportSettings,
    now_ms: i64,
) -> Result<TrendDoc, ReportError> {
    let (from, to) = (req.from_ms, req.to_ms);
    // About 600 points across a chart, never below a minute.
    let bucket = ((to - from) / 600).max(60_000);
    let v = Vitals::read(conn, &req.bed, from, to, bucket)?;
    let [hr, pr, spo2, rr, temp] = v.clip(from, to);
    let news2 = v.news2(from, to, bucket.max(15 * 60_000));
    let onsets = query::alarm_episodes(conn, &req.bed, from, to, now_ms, usize::MAX)?
        .into_iter()
        .rev()
        .map(|e| Onset {
            t_ms: e.t_ms,
            priority: e.priority.as_str().to_string(),
            label: e.message,
        })
        .collect();
    let table = table(conn, &req.bed, from, to, req.interval_ms)?;
    let patient = patient_at(conn, &req.bed, to.min(now_ms))?;
    Ok(TrendDoc {
        printed: Printed {
            by: user.to_string(),
            at_ms: now_ms,
            tz: settings.tz,
        },
        patient: patient.as_ref().map(patient_line),
        bed: req.bed.key(),
        from_ms: from,
        to_ms: to,
        hr,
        pr,
        spo2,
        rr,
        temp,
        news2,
        cuffs: v
            .cuffs
            .into_iter()
            .filter(|c| c.t_ms >= from && c.t_ms < to)
            .collect(),
        onsets,
        table,
    })
}

/// The table under the charts: the mean of each vital per interval, the last cuff in it and
/// the NEWS2 at its end.
fn table(
    conn: &Connection,
    bed: &BedId,
    from: i64,
    to: i64,
    interval: i64,
) -> Result<TrendTable, ReportError> {
    let v = Vitals::read(conn, bed, from, to, interval)?;
    let dash = || "—".to_string();
    let mut rows = Vec::new();
    let mut t = from;
    while t < to {
        let end = (t + interval).min(to);
        let mean = |s: &Series| s.points.iter().find(|p| p.0 >= t && p.0 < end).map(|p| p.1);
        let cell = |vital: Vital, s: &Series| mean(s).map_or_else(dash, |x| fmt_value(vital, x));
        let cuff = v
            .cuffs
            .iter()
            .rev()
            .find(|c| c.t_ms >= t && c.t_ms < end)
            .map_or_else(dash, |c| {
                let n = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.0}"));
                format!("{}/{} ({})", n(c.sys), n(c.dia), n(c.mean))
            });
        rows.push((
            t,
            vec![
                cell(Vital::Hr, &v.hr),
                cell(Vital::Pr, &v.pr),
                cell(Vital::SpO2, &v.spo2),
                cell(Vital::Rr, &v.rr),
                cuff,
                cell(Vital::Temp, &v.temp),
                news2_at(&v, end).map_or_else(dash, |s| format!("{s:.0}")),
            ],
        ));
        t = end;
    }
    Ok(TrendTable {
        interval_ms: interval,
        columns: [
            "HR /min",
            "PR /min",
            "SpO2 %",
            "RR /min",
            "NIBP mmHg",
            "Temp °C",
            "NEWS2 (A, air)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    })
}

/// The beds of `ward` that had data, alarms or a patient during `[from, to)`, sorted.
fn ward_beds(conn: &Connection, ward: &str, from: i64, to: i64) -> Result<Vec<BedId>, ReportError> {
    let mut q = conn.prepare_cached(
        "SELECT bed FROM numerics WHERE ward = ?1 AND t_ms >= ?2 AND t_ms < ?3
         UNION SELECT bed FROM alarm_events WHERE ward = ?1 AND t_ms >= ?2 AND t_ms < ?3
         UNION SELECT bed FROM patients WHERE ward = ?1 AND admitted_ms < ?3
               AND (discharged_ms IS NULL OR discharged_ms >= ?2)",
    )?;
    let mut beds = q
        .query_map(params![ward, from, to], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    beds.sort_by_key(|b| natural(b));
    Ok(beds.into_iter().map(|b| BedId::new(ward, b)).collect())
}

/// `bed-2` before `bed-10`.
fn natural(s: &str) -> (String, u64) {
    let digits: String = s.chars().rev().take_while(char::is_ascii_digit).collect();
    let n = digits
        .chars()
        .rev()
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    (s[..s.len() - digits.len()].to_string(), n)
}

/// The shift report's document.
pub(super) fn shift(
    conn: &Connection,
    user: &str,
    req: &ShiftRequest,
    settings: &ReportSettings,
    now_ms: i64,
) -> Result<ShiftDoc, ReportError> {
    let (from, to) = (req.from_ms, req.to_ms);
    let t = |ms: i64| local(ms, settings, "%H:%M");
    let remote = crate::remote::load(conn).map_err(|e| ReportError::Invalid(e.to_string()))?;
    let adherence = if remote.iter().any(|e| e.patient.bed.ward == req.ward) {
        crate::remote::watch::adherence_at(conn, to.min(now_ms))
            .map_err(|e| ReportError::Invalid(e.to_string()))?
    } else {
        Vec::new()
    };
    let mut beds = Vec::new();
    for bed in ward_beds(conn, &req.ward, from, to)? {
        let episodes = query::alarm_episodes(conn, &bed, from, to, now_ms, usize::MAX)?;
        let mut counts = [0u32; 3];
        let mut alarms = Vec::new();
        for e in episodes.iter().rev() {
            if !e.technical {
                counts[match e.priority {
                    Priority::High => 0,
                    Priority::Medium => 1,
                    Priority::Low => 2,
                }] += 1;
            }
            let ack = match (&e.acknowledged_by, e.acknowledged_ms) {
                (Some(by), Some(at)) => format!("ack {by} {}", t(at)),
                (None, Some(at)) => format!("ack {}", t(at)),
                _ => "not acknowledged".into(),
            };
            let end = e
                .resolved_ms
                .map_or_else(|| "still active".to_string(), |r| format!("ended {}", t(r)));
            alarms.push(ShiftAlarm {
                t_ms: e.t_ms,
                priority: e.priority.as_str().to_string(),
                technical: e.technical,
                message: e.message.clone(),
                outcome: format!("{ack}; {end}"),
            });
        }
        let limit_changes = crate::audit::Audit::list(
            conn,
            &crate::audit::AuditFilter {
                action: Some(crate::audit::actions::LIMITS_CHANGE.to_string()),
                from_ms: Some(from),
                to_ms: Some(to),
                ..Default::default()
            },
        )?
        .into_iter()
        .rev()
        .filter(|e| e.target == bed.key())
        .map(|e| format!("{} {} (by {})", t(e.t_ms), e.detail, e.actor))
        .collect();
        let v = Vitals::read(conn, &bed, from, to, 5 * 60_000)?;
        let news2 = v.news2(from, to, 30 * 60_000).points;
        let mut remote_lines = Vec::new();
        if let Some(p) = remote.iter().map(|e| &e.patient).find(|p| p.bed == bed) {
            if let Some(a) = adherence.iter().find(|a| a.stay == p.stay) {
                let l = &a.last_7;
                remote_lines.push(format!(
                    "adherence 7 days: {} of {} due on time, {} received late, {} taken late, {} missed",
                    l.on_time, l.due, l.received_late, l.taken_late, l.missed
                ));
            }
            for (kind, item, n) in remote_alerts(conn, p.stay, from, to)? {
                remote_lines.push(format!(
                    "{n} × {} ({item}) in the shift",
                    kind.replace('_', " ")
                ));
            }
        }
        let patient = patient_at(conn, &bed, to.min(now_ms))?;
        beds.push(ShiftBed {
            bed: bed.key(),
            patient: patient.as_ref().map(patient_line),
            counts,
            alarms,
            limit_changes,
            news2,
            remote: remote_lines,
        });
    }
    Ok(ShiftDoc {
        printed: Printed {
            by: user.to_string(),
            at_ms: now_ms,
            tz: settings.tz,
        },
        ward: req.ward.clone(),
        from_ms: from,
        to_ms: to,
        beds,
    })
}

/// A remote stay's care-plan alerts raised in `[from, to)`: kind, item, how many.
fn remote_alerts(
    conn: &Connection,
    stay: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String, i64)>, ReportError> {
    let mut q = conn.prepare_cached(
        "SELECT kind, item, COUNT(*) FROM remote_alerts
         WHERE patient = ?1 AND raised_ms >= ?2 AND raised_ms < ?3
         GROUP BY kind, item ORDER BY kind, item",
    )?;
    let rows = q.query_map(params![stay, from, to], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
