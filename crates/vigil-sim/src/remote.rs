//! The simulated remote cohort on the wire (issue 15): the script ([`crate::cohort`]) played
//! against a clock the caller gives (the station's clock in production, a test's manual clock),
//! each message published through contract v1 on its device's topic
//! (`vigil/v1/home/h-01/cuff-h-01/vitals`) at its publish instant, stamped with the time it was
//! taken, so that a clinic's batch keeps its readings' own times.
//!
//! At start, a **backfill**: the script's last [`CohortConfig::backfill_ms`] (never before the
//! cohort's start) published at once with their original timestamps, as a history upload, so
//! that a new station has history, missed readings and findings within a minute. Then, every
//! [`CohortConfig::poll`] of real time, whatever the clock has reached. A device's `seq` is its
//! message's publish instant (ms, times 64, plus its place in a batch): it rises in the order a
//! device sends, and a restarted publisher sends the same numbers for the same messages, so a
//! station drops what it already has.
//!
//! Home devices do not keep a connection open: no retained status, no last will.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use tokio::sync::watch;

use vigil_contract::dose::DosePayload;
use vigil_contract::telemetry::{
    utc_from_ms, BedId, DeviceId, ObservationPayload, Topic, VitalsPayload, CONTRACT_VERSION,
};
use vigil_core::config::BrokerSettings;
use vigil_core::remote::cohort::Member;

use crate::cohort::{self, Cohort, Message};
use crate::SimError;

/// The time, ms since the epoch: the station's clock, or a test's.
pub type TimeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

const HOUR: i64 = 3_600_000;
/// The script is computed this far ahead at a time.
const CHUNK_MS: i64 = 6 * HOUR;

/// How the cohort is played.
#[derive(Debug, Clone)]
pub struct CohortConfig {
    pub broker: BrokerSettings,
    /// The MQTT client id (one client publishes for every home device).
    pub client_id: String,
    /// The script's seed.
    pub seed: u64,
    /// The cohort's start (its stays' enrolment): nothing is taken before.
    pub origin_ms: i64,
    /// History published at start ([`cohort::DEFAULT_BACKFILL_HOURS`] by default).
    pub backfill_ms: i64,
    /// How often the clock is read (real time).
    pub poll: Duration,
}

impl CohortConfig {
    /// The cohort started `backfill_hours` before `now_ms`, published with that much history.
    pub fn new(broker: impl Into<BrokerSettings>, now_ms: i64, backfill_hours: u32) -> Self {
        let backfill_ms = i64::from(backfill_hours) * HOUR;
        CohortConfig {
            broker: broker.into(),
            client_id: "sim-home-cohort".into(),
            seed: 1,
            origin_ms: now_ms - backfill_ms,
            backfill_ms,
            poll: Duration::from_millis(250),
        }
    }

    pub fn cohort(&self) -> Cohort {
        Cohort::new(self.seed, self.origin_ms)
    }
}

/// How far the publisher has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every message published before this instant (clock time) has been sent.
    pub through_ms: i64,
    /// Messages sent, and acknowledged by the broker.
    pub published: u64,
    pub acknowledged: u64,
    /// Messages of the backfill (sent first).
    pub backfilled: u64,
}

impl Progress {
    /// The backfill has been sent and every message so far acknowledged.
    pub fn settled(&self) -> bool {
        self.through_ms > 0 && self.acknowledged >= self.published
    }
}

/// The history a station accepts: [`cohort::DEFAULT_BACKFILL_HOURS`], or less when the
/// station refuses readings older than `max_age_ms` (`[ingest] max_age_h`), an hour short of
/// it so that none ages past it on its way.
pub fn backfill_hours(max_age_ms: i64) -> u32 {
    let fits = (max_age_ms / HOUR).saturating_sub(1).max(0);
    u32::try_from(fits).map_or(cohort::DEFAULT_BACKFILL_HOURS, |h| {
        h.min(cohort::DEFAULT_BACKFILL_HOURS)
    })
}

/// The cohort's enrolment as the engine takes it (`vigil_core::remote::cohort::seed`).
pub fn members(c: &Cohort) -> Vec<Member> {
    c.patients()
        .iter()
        .map(|p| Member {
            bed: p.bed.clone(),
            mrn: p.mrn.clone(),
            name: p.name.to_string(),
            dob: p.dob.to_string(),
            tz: p.tz_name.to_string(),
            items: p.items.clone(),
            rules: p.rules.clone(),
            devices: p
                .devices
                .iter()
                .filter_map(|d| Some((DeviceId::parse(&d.id).ok()?, d.kind.label().to_string())))
                .collect(),
        })
        .collect()
}

/// The payload of one message: stamped with its taken time, `seq` from its publish instant.
pub fn payload(m: &Message, seq: u64) -> VitalsPayload {
    VitalsPayload {
        v: CONTRACT_VERSION,
        device: m.device.clone(),
        t: utc_from_ms(m.taken_ms),
        seq,
        obs: m
            .obs
            .iter()
            .map(|&(vital, value)| ObservationPayload {
                mdc: vital.mdc(),
                value: Some(value),
                unit: vital.unit().into(),
                t: None,
                status: Default::default(),
            })
            .collect(),
    }
}

/// A dispenser's message as its dose event (stamped with when it happened), if it is one.
pub fn dose_payload(m: &Message, seq: u64) -> Option<DosePayload> {
    let (medication, event) = m.dose?;
    Some(DosePayload::new(
        &m.device,
        seq,
        utc_from_ms(m.taken_ms),
        medication,
        event,
    ))
}

/// Sequence numbers: a device's publish instant times 64 plus its place among the device's
/// messages of that instant.
#[derive(Default)]
struct Seqs {
    last: BTreeMap<String, (i64, u64)>,
}

impl Seqs {
    fn next(&mut self, m: &Message) -> u64 {
        let base = u64::try_from(m.published_ms)
            .unwrap_or(0)
            .saturating_mul(64);
        let k = match self.last.get_mut(&m.device) {
            Some(e) if e.0 == m.published_ms => {
                e.1 += 1;
                e.1
            }
            _ => {
                self.last.insert(m.device.clone(), (m.published_ms, 0));
                0
            }
        };
        base + k.min(63)
    }
}

/// Play the cohort until `stop` becomes true (or its sender is dropped); `progress` follows it. On stop, waits (up to 5 s)
/// for the broker to acknowledge what was sent. Returns the final progress.
pub async fn run(
    cfg: CohortConfig,
    now: TimeSource,
    mut stop: watch::Receiver<bool>,
    progress: watch::Sender<Progress>,
) -> Result<Progress, SimError> {
    let opts = cfg.broker.mqtt_options(&cfg.client_id)?;
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let acked = Arc::new(AtomicU64::new(0));
    let ack_c = Arc::clone(&acked);
    let mut net = tokio::spawn(async move {
        let mut down = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    ack_c.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(Event::Incoming(Packet::ConnAck(_))) => down = false,
                Ok(_) => {}
                Err(e) => {
                    if !down {
                        tracing::warn!(error = %e, "simulated cohort: broker link down; retrying");
                    }
                    down = true;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    let c = cfg.cohort();
    let mut seqs = Seqs::default();
    let mut state = Progress::default();
    let send = |client: AsyncClient, bed: BedId, m: Message, seq: u64| async move {
        let (topic, body) = match dose_payload(&m, seq) {
            Some(d) => (Topic::dose(&bed, &m.device), serde_json::to_vec(&d)),
            None => (
                Topic::vitals(&bed, &m.device),
                serde_json::to_vec(&payload(&m, seq)),
            ),
        };
        client
            .publish(topic, QoS::AtLeastOnce, false, body.unwrap_or_default())
            .await
    };

    // The history upload.
    let start = now();
    let from = start.saturating_sub(cfg.backfill_ms).max(c.origin_ms());
    for (bed, m) in cohort::publications(&c, from, start) {
        let seq = seqs.next(&m);
        if let Err(e) = send(client.clone(), bed, m, seq).await {
            tracing::error!(error = %e, "simulated cohort cannot queue a publish");
            continue;
        }
        state.published += 1;
        state.backfilled += 1;
    }
    state.through_ms = start;
    state.acknowledged = acked.load(Ordering::Relaxed);
    progress.send_replace(state);
    tracing::info!(
        messages = state.backfilled,
        hours = cfg.backfill_ms / HOUR,
        "simulated remote cohort: history uploaded"
    );

    // Then live: what the clock has reached, a chunk of the script at a time.
    let mut pending: VecDeque<(BedId, Message)> = VecDeque::new();
    let mut horizon = start;
    let mut tick = tokio::time::interval(cfg.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // A dropped sender (the station gone) stops it too.
            changed = stop.changed() => if changed.is_err() { break },
            _ = tick.tick() => {},
        }
        if *stop.borrow() {
            break;
        }
        let t = now();
        while horizon <= t {
            let until = horizon.saturating_add(CHUNK_MS).max(t.saturating_add(1));
            pending.extend(cohort::publications(&c, horizon, until));
            horizon = until;
        }
        while pending.front().is_some_and(|(_, m)| m.published_ms <= t) {
            let Some((bed, m)) = pending.pop_front() else {
                break;
            };
            let seq = seqs.next(&m);
            match send(client.clone(), bed, m, seq).await {
                Ok(()) => state.published += 1,
                Err(e) => tracing::error!(error = %e, "simulated cohort cannot queue a publish"),
            }
        }
        state.through_ms = state.through_ms.max(t.saturating_add(1));
        state.acknowledged = acked.load(Ordering::Relaxed);
        progress.send_if_modified(|p| {
            let changed = *p != state;
            *p = state;
            changed
        });
    }

    let deadline = Instant::now() + Duration::from_secs(5);
    while acked.load(Ordering::Relaxed) < state.published && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    state.acknowledged = acked.load(Ordering::Relaxed);
    progress.send_replace(state);
    if client.try_disconnect().is_err()
        || tokio::time::timeout(Duration::from_secs(2), &mut net)
            .await
            .is_err()
    {
        net.abort();
    }
    Ok(state)
}

/// The zero-config station's cohort: played on `now` with `backfill_hours` of history, and —
/// once that history is acknowledged by the broker and has settled into the station's database
/// `db` (a minute at most for the acknowledgements, then the remote watch's settling time and
/// 5 s) — enrolled there as `sim:cohort` ([`vigil_core::remote::cohort::seed`], once per bed,
/// backdated to the history's start). Enrolling after the history keeps the remote watch from
/// raising, for a few seconds, a missed reading for every slot of the history still on its way.
/// A station restarted later plays the same script from the cohort's first enrolment. Runs
/// until `stop`.
pub async fn run_station(
    mut cfg: CohortConfig,
    db: std::path::PathBuf,
    now: TimeSource,
    stop: watch::Receiver<bool>,
) -> Result<Progress, SimError> {
    use vigil_core::auth::{AuthConfig, AuthService};
    use vigil_core::remote::cohort as enrolment;
    let members = members(&cfg.cohort());
    let beds: Vec<BedId> = members.iter().map(|m| m.bed.clone()).collect();
    let svc = AuthService::open(&db, AuthConfig::default())?;
    if let Some(origin) = enrolment::origin(svc.connection(), &beds)? {
        cfg.origin_ms = origin;
    }
    let origin = cfg.origin_ms;
    let (tx, mut progress) = watch::channel(Progress::default());
    let publisher = tokio::spawn(run(cfg, Arc::clone(&now), stop.clone(), tx));
    let acked = tokio::time::timeout(Duration::from_secs(60), async {
        while !progress.borrow_and_update().settled() {
            if progress.changed().await.is_err() {
                break;
            }
        }
    })
    .await;
    if acked.is_err() {
        tracing::warn!("the simulated cohort's history is not all acknowledged; enrolling anyway");
    }
    let settle = vigil_core::remote::watch::WatchSettings::default().settle_ms;
    let wait =
        Duration::from_millis(u64::try_from(settle).unwrap_or(5_000)) + Duration::from_secs(5);
    let mut stopping = stop.clone();
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stopping.wait_for(|s| *s) => true,
    };
    if !stopped {
        let seeded =
            tokio::task::spawn_blocking(move || enrolment::seed(&svc, &members, origin, now()))
                .await
                .map_err(|e| SimError::Task(e.to_string()))??;
        tracing::info!(
            enrolled = seeded.enrolled.len(),
            present = seeded.present.len(),
            "simulated remote cohort (ward home)"
        );
    }
    publisher.await.map_err(|e| SimError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_devices_seq_rises_in_the_order_it_sends_and_is_the_same_again() {
        let c = Cohort::new(1, 1_772_409_600_000);
        let sent = cohort::publications(&c, c.origin_ms(), c.origin_ms() + 72 * HOUR);
        let seqs_of = || {
            let mut s = Seqs::default();
            sent.iter().map(|(_, m)| s.next(m)).collect::<Vec<u64>>()
        };
        let seqs = seqs_of();
        assert_eq!(seqs, seqs_of(), "deterministic");
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for ((_, m), seq) in sent.iter().zip(&seqs) {
            if let Some(prev) = last.insert(&m.device, *seq) {
                assert!(*seq > prev, "{}: {seq} after {prev}", m.device);
            }
        }
    }

    #[test]
    fn a_message_is_stamped_with_its_taken_time() {
        let c = Cohort::new(1, 1_772_409_600_000);
        let p = c.with(cohort::Behaviour::ClinicBatches).expect("clinic");
        let m = &c.publications(p, c.origin_ms(), c.origin_ms() + 24 * HOUR)[0];
        let v = payload(m, 5);
        assert_eq!(v.t.timestamp_millis(), m.taken_ms);
        assert!(m.published_ms > m.taken_ms);
        assert_eq!(v.obs.len(), m.obs.len());
        assert!(dose_payload(m, 5).is_none());
    }

    #[test]
    fn a_dispenser_sends_dose_events_taken_and_missed() {
        let c = Cohort::new(1, 1_772_409_600_000);
        let p = c
            .with(cohort::Behaviour::SkipsEveningDose)
            .expect("skips doses");
        let sent = c.publications(p, c.origin_ms(), c.origin_ms() + 72 * HOUR);
        let doses: Vec<DosePayload> = sent.iter().filter_map(|m| dose_payload(m, 1)).collect();
        assert!(doses.iter().all(|d| d.medication == cohort::MEDICATION));
        let missed = doses
            .iter()
            .filter(|d| d.event == vigil_contract::dose::DoseKind::Missed)
            .count();
        let missed_slots = c
            .missed(p, c.origin_ms(), c.origin_ms() + 72 * HOUR)
            .into_iter()
            .filter(|s| s.item == cohort::MEDICATION)
            .count();
        assert!(missed >= 1, "{doses:?}");
        assert_eq!(missed, missed_slots);
        assert!(doses.len() > missed);
        // A dose message carries no readings; its payload is stamped when it happened.
        let m = sent.iter().find(|m| m.dose.is_some()).expect("a dose");
        assert!(m.obs.is_empty());
        assert_eq!(
            dose_payload(m, 1).expect("dose").t.timestamp_millis(),
            m.taken_ms
        );
    }

    #[test]
    fn the_history_fits_the_station_s_oldest_accepted_reading() {
        assert_eq!(backfill_hours(7 * 24 * HOUR), 72);
        assert_eq!(backfill_hours(24 * HOUR), 23);
        assert_eq!(backfill_hours(HOUR / 2), 0);
        assert_eq!(backfill_hours(i64::MAX), 72);
    }

    #[test]
    fn members_carry_the_script_s_patients() {
        let c = Cohort::new(1, 0);
        let m = members(&c);
        assert_eq!(m.len(), cohort::PATIENTS);
        for (m, p) in m.iter().zip(c.patients()) {
            assert_eq!(m.devices.len(), p.devices.len());
            assert_eq!(m.bed, p.bed);
        }
    }
}
