//! Ingest policy applied to decoded telemetry before it is stored or alarmed on: the device
//! registry (which device feeds which bed), clock-skew limits, waveform gap tracking and
//! retention. Pure logic plus the registry's SQL; the engine calls it per message.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};

use crate::store::{Gap, StoreError};
use crate::telemetry::{BedId, DecodeError, WaveChunk};

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Full-disclosure waveforms, hours (default 240 h = 10 days).
    pub waveform_hours: u64,
    /// Numerics (trends), days (default 30).
    pub trend_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            waveform_hours: 240,
            trend_days: 30,
        }
    }
}

/// What the engine accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestPolicy {
    /// Reject data from devices missing from the registry. Off for the simulated ward; on by
    /// default for a hospital broker.
    pub require_registered: bool,
    /// Readings stamped further than this in the future are rejected (device clock ahead).
    pub max_future_ms: i64,
    /// Readings older than this are rejected (late delivery beyond any use, or a clock reset).
    pub max_age_ms: i64,
    pub retention: Retention,
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            require_registered: false,
            max_future_ms: 60_000,
            max_age_ms: 7 * 24 * 3600 * 1000,
            retention: Retention::default(),
        }
    }
}

impl IngestPolicy {
    /// Refuse a measurement time too far from the station clock.
    pub fn check_time(&self, t_ms: i64, now_ms: i64) -> Result<(), DecodeError> {
        let skew = t_ms - now_ms;
        let limit = if skew > 0 {
            self.max_future_ms
        } else {
            self.max_age_ms
        };
        if skew.abs() > limit {
            return Err(DecodeError::ClockSkew {
                t_ms,
                skew_s: skew as f64 / 1000.0,
                limit_s: limit / 1000,
            });
        }
        Ok(())
    }
}

/// A registered device.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredDevice {
    pub device: String,
    pub bed: BedId,
    pub label: String,
    pub enabled: bool,
}

/// The device registry: which device feeds which bed.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    devices: BTreeMap<String, RegisteredDevice>,
}

impl Registry {
    pub fn load(conn: &Connection) -> Result<Registry, StoreError> {
        Ok(Registry {
            devices: list_devices(conn)?
                .into_iter()
                .map(|d| (d.device.clone(), d))
                .collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The bed `device` feeds. `topic_bed` is the bed named by the topic (native contract), if
    /// any; it must agree with the registry. With `require` off, an unregistered device feeds
    /// its topic's bed; with it on, it is refused. A disabled device is refused either way.
    pub fn resolve(
        &self,
        device: &str,
        topic_bed: Option<&BedId>,
        require: bool,
    ) -> Result<BedId, DecodeError> {
        match (self.devices.get(device), topic_bed) {
            (Some(d), _) if !d.enabled => Err(DecodeError::UnknownDevice(device.to_string())),
            (Some(d), Some(t)) if d.bed != *t => Err(DecodeError::BedMismatch {
                device: device.to_string(),
                registered: d.bed.key(),
                topic: t.key(),
            }),
            (Some(d), _) => Ok(d.bed.clone()),
            (None, Some(t)) if !require => Ok(t.clone()),
            (None, _) => Err(DecodeError::UnknownDevice(device.to_string())),
        }
    }
}

pub fn list_devices(conn: &Connection) -> Result<Vec<RegisteredDevice>, StoreError> {
    let mut q = conn
        .prepare("SELECT device, ward, bed, label, enabled FROM device_registry ORDER BY device")?;
    let rows = q.query_map([], |r| {
        Ok(RegisteredDevice {
            device: r.get(0)?,
            bed: BedId::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?),
            label: r.get(3)?,
            enabled: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Add or update a registry entry.
pub fn register_device(
    conn: &Connection,
    device: &str,
    bed: &BedId,
    label: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO device_registry (device, ward, bed, label, enabled, created_ms)
         VALUES (?1, ?2, ?3, ?4, 1, ?5)
         ON CONFLICT(device) DO UPDATE SET ward = excluded.ward, bed = excluded.bed,
           label = excluded.label, enabled = 1",
        params![device, bed.ward, bed.bed, label, now_ms],
    )?;
    Ok(())
}

/// Remove a registry entry; returns whether it existed.
pub fn unregister_device(conn: &Connection, device: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM device_registry WHERE device = ?1", [device])? > 0)
}

/// Tracks each device channel's chunk sequence numbers and reports jumps as gaps.
#[derive(Debug, Default)]
pub struct GapTracker {
    last: HashMap<(String, &'static str), (u64, i64)>,
}

impl GapTracker {
    /// Note a chunk; returns the gap before it, if chunks are missing.
    pub fn observe(&mut self, w: &WaveChunk, now_ms: i64) -> Option<Gap> {
        // Saturating: a decodable chunk may have a tiny rate (a huge span) or seq u64::MAX.
        let span_ms = (w.data.len() as f64 * 1000.0 / w.rate).round() as i64;
        let end_ms = w.t0_ms.saturating_add(span_ms);
        let key = (w.device.clone(), w.channel.name);
        let Some(&(seq, prev_end)) = self.last.get(&key) else {
            self.last.insert(key, (w.seq, end_ms));
            return None;
        };
        let next = seq.saturating_add(1);
        if w.seq == next {
            self.last.insert(key, (w.seq, end_ms));
            None
        } else if w.seq > next {
            self.last.insert(key, (w.seq, end_ms));
            Some(Gap {
                bed: w.bed.clone(),
                device: w.device.clone(),
                channel: w.channel.name,
                first_seq: next,
                last_seq: w.seq - 1,
                from_ms: prev_end,
                to_ms: w.t0_ms,
                detected_ms: now_ms,
            })
        } else if w.t0_ms >= prev_end {
            // Sequence went back but time went on: the device restarted its counter.
            self.last.insert(key, (w.seq, end_ms));
            None
        } else {
            // A redelivery or a late duplicate: nothing new.
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    fn chunk(seq: u64, t0_ms: i64) -> WaveChunk {
        WaveChunk {
            bed: BedId::new("4W", "01"),
            device: "mon-1".into(),
            channel: codes::channel("PLETH").expect("channel"),
            unit: "1",
            t0_ms,
            rate: 125.0,
            seq,
            origin: 0.0,
            factor: 0.001,
            data: vec![0; 125],
        }
    }

    #[test]
    fn gaps_are_reported_once_with_their_time_span() {
        let mut g = GapTracker::default();
        assert_eq!(g.observe(&chunk(0, 0), 9), None);
        assert_eq!(g.observe(&chunk(1, 1000), 9), None);
        assert_eq!(g.observe(&chunk(1, 1000), 9), None, "redelivery");
        let gap = g.observe(&chunk(4, 4000), 9).expect("gap");
        assert_eq!((gap.first_seq, gap.last_seq), (2, 3));
        assert_eq!((gap.from_ms, gap.to_ms), (2000, 4000));
        assert_eq!(
            g.observe(&chunk(2, 2000), 9),
            None,
            "late chunk, no new gap"
        );
        assert_eq!(g.observe(&chunk(5, 5000), 9), None);
        assert_eq!(g.observe(&chunk(0, 90_000), 9), None, "device restart");
        assert_eq!(g.observe(&chunk(1, 91_000), 9), None);
    }

    /// Found by tests/fuzz.rs: `t0 + span` and `seq + 1` overflowed (a panic in debug builds)
    /// for chunks the decoder accepts: a rate of 1e-300 Hz, a sequence number of u64::MAX.
    #[test]
    fn extreme_chunks_do_not_overflow() {
        let mut g = GapTracker::default();
        let mut c = chunk(u64::MAX, 0);
        c.rate = f64::MIN_POSITIVE;
        assert_eq!(g.observe(&c, 9), None);
        assert_eq!(
            g.observe(&c, 9),
            None,
            "the same last possible seq again: no gap"
        );
        let gap = g.observe(&chunk(u64::MAX, i64::MAX), 9);
        assert_eq!(gap, None, "same seq, not a gap");
        let mut g = GapTracker::default();
        assert_eq!(g.observe(&chunk(u64::MAX - 2, 0), 9), None);
        let gap = g.observe(&chunk(u64::MAX, 2000), 9).expect("gap");
        assert_eq!((gap.first_seq, gap.last_seq), (u64::MAX - 1, u64::MAX - 1));
    }

    #[test]
    fn registry_resolution() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::store::open(&dir.path().join("r.db")).expect("open");
        let b1 = BedId::new("4W", "01");
        let b2 = BedId::new("4W", "02");
        register_device(&conn, "mon-1", &b1, "bedside 1", 0).expect("register");
        register_device(&conn, "mon-off", &b2, "", 0).expect("register");
        conn.execute(
            "UPDATE device_registry SET enabled = 0 WHERE device = 'mon-off'",
            [],
        )
        .expect("disable");
        let r = Registry::load(&conn).expect("load");
        assert_eq!(r.len(), 2);
        assert_eq!(r.resolve("mon-1", Some(&b1), true), Ok(b1.clone()));
        assert_eq!(r.resolve("mon-1", None, true), Ok(b1.clone()));
        let e = r.resolve("mon-1", Some(&b2), false).unwrap_err();
        assert_eq!(e.reason(), "bed_mismatch");
        assert_eq!(r.resolve("mon-x", Some(&b2), false), Ok(b2.clone()));
        let e = r.resolve("mon-x", Some(&b2), true).unwrap_err();
        assert_eq!(e.reason(), "unknown_device");
        assert_eq!(
            r.resolve("mon-x", None, false).unwrap_err().reason(),
            "unknown_device"
        );
        assert_eq!(
            r.resolve("mon-off", Some(&b2), false).unwrap_err().reason(),
            "unknown_device"
        );
        assert!(unregister_device(&conn, "mon-1").expect("remove"));
        assert!(!unregister_device(&conn, "mon-1").expect("remove"));
    }

    #[test]
    fn clock_skew_limits() {
        let p = IngestPolicy::default();
        let now = 1_000_000_000_000;
        assert!(p.check_time(now, now).is_ok());
        assert!(p.check_time(now + 59_000, now).is_ok());
        assert_eq!(
            p.check_time(now + 61_000, now).unwrap_err().reason(),
            "clock_skew"
        );
        assert!(p.check_time(now - 6 * 24 * 3600 * 1000, now).is_ok());
        assert!(p.check_time(now - 8 * 24 * 3600 * 1000, now).is_err());
    }
}
