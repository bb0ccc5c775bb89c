//! Read-side queries over the history: trends (downsampled for plotting), full-disclosure
//! samples with gaps, alarm history, and what a database holds.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use crate::alarms::{AlarmState, Priority, Unfinished};
use crate::codec;
use crate::codes::Vital;
use crate::store::StoreError;
use crate::telemetry::BedId;

/// One bucket of a trend.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendBucket {
    /// Start of the bucket, ms since the epoch.
    pub t_ms: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Readings with a value in the bucket ("no reading" rows and non-final results excluded).
    pub n: u64,
}

/// Min/max/mean of `vital` for `bed` per `bucket_ms` in `[from_ms, to_ms)`. Only final,
/// amended and corrected readings with a value count.
pub fn trend(
    conn: &Connection,
    bed: &BedId,
    vital: Vital,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<TrendBucket>, StoreError> {
    let bucket_ms = bucket_ms.max(1);
    let mut q = conn.prepare_cached(
        "SELECT (t_ms / ?1) * ?1 AS b, MIN(value), MAX(value), AVG(value), COUNT(value)
         FROM numerics
         WHERE ward = ?2 AND bed = ?3 AND code = ?4 AND t_ms >= ?5 AND t_ms < ?6
           AND value IS NOT NULL AND status IN ('final', 'amended', 'corrected', 'unverified')
         GROUP BY b ORDER BY b",
    )?;
    let rows = q.query_map(
        params![bucket_ms, bed.ward, bed.bed, vital.name(), from_ms, to_ms],
        |r| {
            Ok(TrendBucket {
                t_ms: r.get(0)?,
                min: r.get(1)?,
                max: r.get(2)?,
                mean: r.get(3)?,
                n: r.get::<_, i64>(4)? as u64,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stretch of stored samples of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub t0_ms: i64,
    pub rate: f64,
    pub unit: String,
    /// Quantisation step (the chunk's factor): values are exact multiples of it plus origin.
    pub factor: f64,
    pub values: Vec<f64>,
}

/// What a full-disclosure window holds: segments of samples and the recorded gaps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Samples {
    pub segments: Vec<Segment>,
    /// `(from_ms, to_ms)` of recorded gaps overlapping the window.
    pub gaps: Vec<(i64, i64)>,
}

/// The stored samples of `channel` for `bed` with chunks starting in `[from_ms, to_ms)`.
pub fn samples(
    conn: &Connection,
    bed: &BedId,
    channel: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Samples, StoreError> {
    let mut out = Samples::default();
    let mut q = conn.prepare_cached(
        "SELECT t0_ms, rate, unit, origin, factor, n, enc, data FROM wave_chunks
         WHERE ward = ?1 AND bed = ?2 AND channel = ?3 AND t0_ms >= ?4 AND t0_ms < ?5
         ORDER BY t0_ms",
    )?;
    let mut rows = q.query(params![bed.ward, bed.bed, channel, from_ms, to_ms])?;
    while let Some(r) = rows.next()? {
        let (t0_ms, rate, unit): (i64, f64, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let (origin, factor, n): (f64, f64, i64) = (r.get(3)?, r.get(4)?, r.get(5)?);
        let (enc, blob): (String, Vec<u8>) = (r.get(6)?, r.get(7)?);
        let data = match codec::decode(&enc, &blob, n.max(0) as usize) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, t0_ms, %channel, "unreadable waveform chunk skipped");
                continue;
            }
        };
        out.segments.push(Segment {
            t0_ms,
            rate,
            unit,
            factor,
            values: data
                .into_iter()
                .map(|d| origin + factor * f64::from(d))
                .collect(),
        });
    }
    let mut q = conn.prepare_cached(
        "SELECT from_ms, to_ms FROM gaps
         WHERE ward = ?1 AND bed = ?2 AND channel = ?3 AND to_ms > ?4 AND from_ms < ?5
         ORDER BY from_ms",
    )?;
    let gaps = q.query_map(params![bed.ward, bed.bed, channel, from_ms, to_ms], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    out.gaps = gaps.collect::<Result<_, _>>()?;
    Ok(out)
}

/// Chunks starting this long before a review window are read too (they may reach into it).
pub const CHUNK_LOOKBACK_MS: i64 = 5_000;

/// One contiguous stretch of samples inside a review window (no pen lift).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Stretch {
    /// Time of the first value, ms since the epoch.
    pub t0: i64,
    pub rate: f64,
    pub values: Vec<f64>,
}

/// Full disclosure of one channel over a window: what the window and the command line show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Disclosure {
    pub unit: String,
    /// Contiguous stretches inside the window, in time order.
    pub segments: Vec<Stretch>,
    /// Where there is no signal inside the window (recorded gaps and stretches with nothing
    /// stored), merged, in time order: `[from_ms, to_ms]`.
    pub gaps: Vec<[i64; 2]>,
}

/// The stored samples of `channel` for `bed` inside `[from_ms, to_ms)`, chunks joined into
/// stretches and the holes said explicitly. A window reaching past `now_ms` counts as a gap
/// only up to now.
pub fn disclosure(
    conn: &Connection,
    bed: &BedId,
    channel: &str,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Disclosure, StoreError> {
    let got = samples(conn, bed, channel, from_ms - CHUNK_LOOKBACK_MS, to_ms)?;
    let mut out = Disclosure::default();
    let mut covered = Vec::new();
    let mut tolerance = 20.0_f64;
    for s in got.segments {
        if !(s.rate > 0.0 && s.rate.is_finite()) {
            continue;
        }
        let period = 1000.0 / s.rate;
        tolerance = tolerance.max(2.0 * period);
        // Keep the samples inside the window.
        let first = ((from_ms - s.t0_ms) as f64 / period).ceil().max(0.0) as usize;
        let last =
            (((to_ms - s.t0_ms) as f64 / period).ceil().max(0.0) as usize).min(s.values.len());
        if first >= last {
            continue;
        }
        let t0 = s.t0_ms as f64 + first as f64 * period;
        let end = s.t0_ms as f64 + s.values.len() as f64 * period;
        covered.push((t0.floor() as i64, end.ceil() as i64));
        out.unit = s.unit;
        let values = s.values[first..last].to_vec();
        // Contiguous with the previous chunk: one stretch (no pen lift).
        if let Some(prev) = out.segments.last_mut() {
            let prev_end = prev.t0 as f64 + prev.values.len() as f64 * 1000.0 / prev.rate;
            if prev.rate == s.rate && (t0 - prev_end).abs() <= period * 1.5 {
                prev.values.extend(values);
                continue;
            }
        }
        out.segments.push(Stretch {
            t0: t0.round() as i64,
            rate: s.rate,
            values,
        });
    }
    out.gaps = find_gaps(
        &covered,
        &got.gaps,
        from_ms,
        to_ms.min(now_ms).max(from_ms),
        tolerance.ceil() as i64,
    );
    Ok(out)
}

/// The holes of `[from, to)`: the recorded gaps and the stretches no segment covers (beyond
/// `tolerance_ms`), merged and clipped to the window.
pub fn find_gaps(
    covered: &[(i64, i64)],
    recorded: &[(i64, i64)],
    from: i64,
    to: i64,
    tolerance_ms: i64,
) -> Vec<[i64; 2]> {
    let mut holes: Vec<(i64, i64)> = Vec::new();
    let mut spans: Vec<(i64, i64)> = covered.to_vec();
    spans.sort_unstable();
    let mut cursor = from;
    for &(a, b) in &spans {
        if a > cursor + tolerance_ms {
            holes.push((cursor, a));
        }
        cursor = cursor.max(b);
    }
    if to > cursor + tolerance_ms {
        holes.push((cursor, to));
    }
    holes.extend_from_slice(recorded);
    holes.sort_unstable();
    let mut out: Vec<[i64; 2]> = Vec::new();
    for (a, b) in holes {
        let (a, b) = (a.max(from), b.min(to));
        if b <= a {
            continue;
        }
        match out.last_mut() {
            Some(last) if a <= last[1] => last[1] = last[1].max(b),
            _ => out.push([a, b]),
        }
    }
    out
}

/// One alarm raised on a bed and what became of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AlarmEpisode {
    pub t_ms: i64,
    pub alarm_id: String,
    pub code: String,
    /// As [`Priority::as_str`] (`high`, `medium`, `low`).
    pub priority: Priority,
    pub technical: bool,
    pub message: String,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
}

/// The alarms raised on `bed` in `[from_ms, to_ms)`, newest first, at most `max`, with who
/// acknowledged them and when they ended (read on to `now_ms`: what happened to an alarm raised
/// in the window may come later).
pub fn alarm_episodes(
    conn: &Connection,
    bed: &BedId,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
    max: usize,
) -> Result<Vec<AlarmEpisode>, StoreError> {
    let rows = alarms(conn, Some(bed), from_ms, to_ms.max(now_ms) + 1)?;
    let mut out: Vec<AlarmEpisode> = Vec::new();
    // alarm id → index in `out` of its latest raise.
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        match r.kind.as_str() {
            "raise" if r.t_ms < to_ms => {
                open.insert(r.alarm_id.clone(), out.len());
                out.push(AlarmEpisode {
                    t_ms: r.t_ms,
                    alarm_id: r.alarm_id,
                    technical: !crate::alarms::is_physiological(&r.code),
                    code: r.code,
                    priority: Priority::parse(&r.priority).unwrap_or(Priority::Low),
                    message: r.message,
                    value: r.value,
                    limit: r.limit,
                    acknowledged_by: None,
                    acknowledged_ms: None,
                    resolved_ms: None,
                });
            }
            "acknowledge" => {
                if let Some(&i) = open.get(&r.alarm_id) {
                    if out[i].acknowledged_ms.is_none() {
                        out[i].acknowledged_by = r.user;
                        out[i].acknowledged_ms = Some(r.t_ms);
                    }
                }
            }
            "resolve" => {
                if let Some(i) = open.remove(&r.alarm_id) {
                    out[i].resolved_ms = Some(r.t_ms);
                }
            }
            _ => {}
        }
    }
    out.reverse();
    out.truncate(max);
    Ok(out)
}

/// One row of alarm history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub t_ms: i64,
    pub bed: BedId,
    pub alarm_id: String,
    pub code: String,
    pub kind: String,
    pub priority: String,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub message: String,
    /// Who acknowledged, paused or changed settings.
    pub user: Option<String>,
    /// The alarm's state after the event (`active`, `acknowledged`, `audio-paused`, `latched`,
    /// `resolved`; empty for rows written before schema 4).
    pub state: String,
    /// Escalation level after the event.
    pub level: u32,
    pub audible: bool,
}

/// The columns of `alarm_events` that [`alarm_row`] reads, in its order.
const ALARM_COLUMNS: &str = "t_ms, ward, bed, alarm_id, code, kind, priority, value, \
                             limit_value, message, user_name, state, level, audible";

/// One row of [`ALARM_COLUMNS`].
fn alarm_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlarmRow> {
    Ok(AlarmRow {
        t_ms: r.get(0)?,
        bed: BedId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
        alarm_id: r.get(3)?,
        code: r.get(4)?,
        kind: r.get(5)?,
        priority: r.get(6)?,
        value: r.get(7)?,
        limit: r.get(8)?,
        message: r.get(9)?,
        user: r.get(10)?,
        state: r.get(11)?,
        level: r.get::<_, i64>(12)?.max(0) as u32,
        audible: r.get(13)?,
    })
}

/// Alarm events, oldest first, for one bed or all.
pub fn alarms(
    conn: &Connection,
    bed: Option<&BedId>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<AlarmRow>, StoreError> {
    let mut q = conn.prepare_cached(&format!(
        "SELECT {ALARM_COLUMNS} FROM alarm_events
         WHERE (?1 IS NULL OR (ward = ?1 AND bed = ?2)) AND t_ms >= ?3 AND t_ms < ?4
         ORDER BY t_ms, id"
    ))?;
    let (w, b) = bed.map_or((None, None), |b| (Some(&b.ward), Some(&b.bed)));
    let rows = q.query_map(params![w, b, from_ms, to_ms], alarm_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every alarm event, of every bed, in the order written.
pub fn alarms_as_written(conn: &Connection) -> Result<Vec<AlarmRow>, StoreError> {
    let mut q = conn.prepare(&format!(
        "SELECT {ALARM_COLUMNS} FROM alarm_events ORDER BY id"
    ))?;
    let rows = q.query_map([], alarm_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The alarms shown, unacknowledged, when the station stopped: each alarm whose last event
/// since `since_ms` left it active, audio-paused, latched or not yet reviewed, with when it was
/// raised. What [`crate::alarms::AlarmMachine::restore_unfinished`] puts back.
pub fn unfinished_alarms(conn: &Connection, since_ms: i64) -> Result<Vec<Unfinished>, StoreError> {
    let mut q = conn.prepare_cached(
        "SELECT e.alarm_id, e.ward, e.bed, e.code, e.priority, e.value, e.limit_value, e.state,
                e.t_ms,
                (SELECT MAX(r.t_ms) FROM alarm_events r
                  WHERE r.alarm_id = e.alarm_id AND r.kind = 'raise' AND r.id <= e.id)
         FROM alarm_events e
         JOIN (SELECT MAX(id) AS id FROM alarm_events WHERE t_ms >= ?1 GROUP BY alarm_id) last
           ON e.id = last.id
         WHERE e.state IN ('active', 'audio-paused', 'latched', 'unreviewed')
         ORDER BY e.id",
    )?;
    let rows = q.query_map(params![since_ms], |r| {
        Ok((
            r.get::<_, String>(0)?,
            BedId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<f64>>(5)?,
            r.get::<_, Option<f64>>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, i64>(8)?,
            r.get::<_, Option<i64>>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (alarm_id, bed, code, priority, value, limit, state, t_ms, raised) = row?;
        // Rows this build cannot read (a priority or state it does not know) are not guessed at.
        let (Some(priority), Some(state)) = (Priority::parse(&priority), AlarmState::parse(&state))
        else {
            tracing::warn!(alarm = %alarm_id, "unfinished alarm with an unknown priority or state");
            continue;
        };
        out.push(Unfinished {
            alarm_id,
            bed,
            code,
            priority,
            value,
            limit,
            since_ms: raised.unwrap_or(t_ms),
            cleared_ms: t_ms,
            state,
        });
    }
    Ok(out)
}

/// Stored counts of one bed's stream.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct StreamStatus {
    pub chunks: u64,
    pub samples: u64,
    pub bytes: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub gaps: u64,
    pub missing_chunks: u64,
}

/// How [`Status`] names the numerics of a vital among a bed's streams (`numerics:HR`).
pub const NUMERICS_PREFIX: &str = "numerics:";

/// What a database holds: per bed and stream, plus rejects per reason.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Status {
    /// bed key → stream (waveform channel, or [`NUMERICS_PREFIX`] and the vital's code) → counts.
    pub beds: BTreeMap<String, BTreeMap<String, StreamStatus>>,
    pub rejects: BTreeMap<String, u64>,
    pub alarm_events: u64,
    pub registered_devices: u64,
}

pub fn status(conn: &Connection) -> Result<Status, StoreError> {
    let mut st = Status::default();
    add_stream_counts(
        conn,
        &mut st.beds,
        "SELECT ward || '/' || bed, channel, COUNT(*), SUM(n), SUM(LENGTH(data)), MIN(t0_ms), MAX(t0_ms)
         FROM wave_chunks GROUP BY 1, 2",
        |channel| channel,
        |r, s| {
            s.chunks = r.get::<_, i64>(2)? as u64;
            s.samples = r.get::<_, i64>(3)? as u64;
            s.bytes = r.get::<_, i64>(4)? as u64;
            s.first_ms = r.get(5)?;
            s.last_ms = r.get(6)?;
            Ok(())
        },
    )?;
    add_stream_counts(
        conn,
        &mut st.beds,
        "SELECT ward || '/' || bed, channel, COUNT(*), SUM(last_seq - first_seq + 1)
         FROM gaps GROUP BY 1, 2",
        |channel| channel,
        |r, s| {
            s.gaps = r.get::<_, i64>(2)? as u64;
            s.missing_chunks = r.get::<_, i64>(3)? as u64;
            Ok(())
        },
    )?;
    add_stream_counts(
        conn,
        &mut st.beds,
        "SELECT ward || '/' || bed, code, COUNT(*), MIN(t_ms), MAX(t_ms) FROM numerics GROUP BY 1, 2",
        |code| format!("{NUMERICS_PREFIX}{code}"),
        |r, s| {
            s.samples = r.get::<_, i64>(2)? as u64;
            s.first_ms = r.get(3)?;
            s.last_ms = r.get(4)?;
            Ok(())
        },
    )?;
    let mut q = conn.prepare("SELECT reason, count FROM rejects ORDER BY reason")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        st.rejects.insert(r.get(0)?, r.get::<_, i64>(1)? as u64);
    }
    st.alarm_events = conn.query_row("SELECT COUNT(*) FROM alarm_events", [], |r| {
        r.get::<_, i64>(0)
    })? as u64;
    st.registered_devices = conn.query_row("SELECT COUNT(*) FROM device_registry", [], |r| {
        r.get::<_, i64>(0)
    })? as u64;
    Ok(st)
}

/// Run `sql` (columns: bed key, stream name, then counts) and set, for each row, the counts of
/// the bed's stream named `stream(name)` with `fill`.
fn add_stream_counts(
    conn: &Connection,
    beds: &mut BTreeMap<String, BTreeMap<String, StreamStatus>>,
    sql: &str,
    stream: impl Fn(String) -> String,
    fill: impl Fn(&rusqlite::Row<'_>, &mut StreamStatus) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    let mut q = conn.prepare(sql)?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let s = beds
            .entry(r.get(0)?)
            .or_default()
            .entry(stream(r.get(1)?))
            .or_default();
        fill(r, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open;

    #[test]
    fn gaps_are_holes_and_recorded_gaps_merged() {
        // Covered 0–1000 and 1500–3000; recorded gap 2800–3200; window 0–4000.
        let g = find_gaps(&[(1500, 3000), (0, 1000)], &[(2800, 3200)], 0, 4000, 20);
        assert_eq!(g, vec![[1000, 1500], [2800, 4000]]);
        // Small jitter between chunks is no gap.
        assert!(find_gaps(&[(0, 1000), (1010, 2000)], &[], 0, 2000, 20).is_empty());
        // Nothing stored: one gap, the whole window.
        assert_eq!(find_gaps(&[], &[], 100, 200, 20), vec![[100, 200]]);
        // A recorded gap outside the window is clipped away.
        assert!(find_gaps(&[(0, 1000)], &[(-500, -100)], 0, 1000, 20).is_empty());
    }

    #[test]
    fn physiological_codes() {
        assert!(crate::alarms::is_physiological("SPO2_LOW"));
        assert!(crate::alarms::is_physiological("NEWS2_HIGH"));
        assert!(!crate::alarms::is_physiological("COMM_LOST"));
        assert!(!crate::alarms::is_physiological("LEADS_OFF"));
    }

    #[test]
    fn trend_buckets_ignore_no_reading_and_non_final() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("q.db")).expect("open");
        let ins = |t: i64, v: Option<f64>, status: &str| {
            conn.execute(
                "INSERT INTO numerics (ward, bed, device, t_ms, mdc, code, value, unit, status)
                 VALUES ('4W', '01', 'm', ?1, 147842, 'HR', ?2, '/min', ?3)",
                params![t, v, status],
            )
            .expect("insert");
        };
        ins(0, Some(60.0), "final");
        ins(1000, Some(80.0), "final");
        ins(2000, None, "final");
        ins(3000, Some(300.0), "entered-in-error");
        ins(61_000, Some(70.0), "amended");
        let t = trend(
            &conn,
            &BedId::new("4W", "01"),
            Vital::Hr,
            0,
            120_000,
            60_000,
        )
        .expect("trend");
        assert_eq!(
            t,
            vec![
                TrendBucket {
                    t_ms: 0,
                    min: 60.0,
                    max: 80.0,
                    mean: 70.0,
                    n: 2
                },
                TrendBucket {
                    t_ms: 60_000,
                    min: 70.0,
                    max: 70.0,
                    mean: 70.0,
                    n: 1
                }
            ]
        );
    }
}
