//! The remote patients' watch in the engine (issue 15, [`crate::remote::watch`],
//! [`crate::remote::review`]): every `AlarmOptions::remote_tick`, each current stay's care plan
//! evaluated on the engine's clock and its alerts raised, escalated and resolved in the
//! database; then the readings stored since the last pass checked against the beds' limits (the
//! alarms' own) and the plans' change rules, what breaches kept as findings to review. Each
//! change is logged, sent to watchers ([`LiveEvent::Remote`]) and, when the station has them,
//! to its desktop notifications. A bed with an urgent alert standing has its `CARE_PLAN`
//! technical alarm raised in the alarm machine (a tone, acknowledgement, escalation, sync, as
//! any alarm), resolved when none stands.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Level;

use super::alarms::emit_alarm_events;
use super::security::blocking;
use super::{lock, LiveEvent, RemoteUpdate, Shared};
use crate::alarms::state::CARE_PLAN;
use crate::remote::review::{scan, FindingRow};
use crate::remote::watch::{open, tick, urgent_beds, AlertChange, Change, WatchSettings};
use crate::remote::{current_beds, engage};
use crate::telemetry::BedId;

pub(super) async fn remote_loop(
    shared: Arc<Shared>,
    settings: WatchSettings,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let db = shared.db_path.clone();
    let failed = (
        "remote patients cannot be watched (database)",
        "remote watch start failed",
    );
    let Some(conn) = blocking(move || open(&db), Level::ERROR, failed).await else {
        return;
    };
    let conn = Arc::new(Mutex::new(conn));
    // The beds whose CARE_PLAN alarm this loop holds raised (read from the machine at the
    // first pass: it may have been restored at start).
    let mut alarmed: Option<BTreeSet<BedId>> = None;
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = timer.tick() => {}
            _ = shared.remote_wake.notified() => {}
        }
        let now = shared.clock.now_ms();
        let c = Arc::clone(&conn);
        let failed = (
            "remote patients' care plans not evaluated; retrying",
            "remote watch task failed",
        );
        let ticked = blocking(
            move || {
                let conn = lock(&c);
                let alerts = tick(&conn, now, &settings)?;
                Ok::<_, crate::remote::RemoteError>((alerts, urgent_beds(&conn)?))
            },
            Level::ERROR,
            failed,
        )
        .await;
        let alerts = match ticked {
            Some((alerts, urgent)) => {
                care_plan_alarms(&shared, &mut alarmed, &urgent, now).await;
                alerts
            }
            None => Vec::new(),
        };
        let (c, s) = (Arc::clone(&conn), Arc::clone(&shared));
        let failed = (
            "remote patients' readings not checked for findings; retrying",
            "remote findings task failed",
        );
        let found = blocking(
            move || {
                let limits_of = |bed: &_| lock(&s.state).alarms.limits(bed);
                let conn = lock(&c);
                let findings = scan(&conn, now, s.policy.live_window_ms, &limits_of)?;
                Ok::<_, crate::remote::RemoteError>((findings, current_beds(&conn)?))
            },
            Level::ERROR,
            failed,
        )
        .await;
        let (findings, beds_changed) = match found {
            Some((findings, beds)) => {
                let changed = **lock(&shared.remote_beds) != beds;
                if changed {
                    subscribe_wards(&shared, &beds).await;
                    let old =
                        std::mem::replace(&mut *lock(&shared.remote_beds), Arc::new(beds.clone()));
                    // The alarm machine never expects a remote patient's devices continuously
                    // (their data before the enrolment may have armed communication-lost
                    // alarms); a discharged patient's bed is a bed like any other again.
                    let events: Vec<_> = {
                        let mut st = lock(&shared.state);
                        let mut events = Vec::new();
                        for b in beds.difference(&old) {
                            events.extend(st.alarms.set_remote(b, true, now));
                        }
                        for b in old.difference(&beds) {
                            events.extend(st.alarms.set_remote(b, false, now));
                        }
                        events
                    };
                    emit_alarm_events(&shared, events, now).await;
                }
                (findings, changed)
            }
            None => (Vec::new(), false),
        };
        engage(&shared, &conn, now).await;
        if alerts.is_empty() && findings.is_empty() && !beds_changed {
            continue;
        }
        for ch in &alerts {
            log(ch);
            // Desktop notifications, best effort as for ward alarms: seen even with the
            // window minimised.
            if let Some(n) = &shared.alarm_io.notifier {
                n.send(crate::notify::Note::for_remote(ch));
            }
        }
        for f in &findings {
            log_finding(f);
        }
        let _ = shared.live.send(LiveEvent::Remote(Arc::new(RemoteUpdate {
            alerts,
            findings,
            beds_changed,
        })));
    }
}

/// Keep each remote bed's `CARE_PLAN` alarm in step with its urgent care-plan alerts
/// (`urgent`: the beds with one standing, and what stands).
async fn care_plan_alarms(
    shared: &Shared,
    alarmed: &mut Option<BTreeSet<BedId>>,
    urgent: &BTreeMap<BedId, String>,
    now: i64,
) {
    let events = {
        let mut st = lock(&shared.state);
        let before = alarmed.get_or_insert_with(|| {
            st.alarms
                .active(now)
                .into_iter()
                .filter(|a| a.code == CARE_PLAN)
                .map(|a| a.bed)
                .collect()
        });
        let mut events = Vec::new();
        for (bed, what) in urgent {
            let message = format!("remote patient {bed}: {what}");
            events.extend(st.alarms.care_plan(bed, true, &message, now));
        }
        for bed in before.iter().filter(|b| !urgent.contains_key(*b)) {
            events.extend(st.alarms.care_plan(bed, false, "", now));
        }
        *before = urgent.keys().cloned().collect();
        events
    };
    emit_alarm_events(shared, events, now).await;
}

/// Patients' receipts recorded (a bad one counted as a reject), then the reminders and messages
/// not yet sent published to each patient's notice topic (QoS 1) and recorded as sent.
///
/// Notices never wait and never crowd the station's own publishes: they go out only while the
/// broker link is up, through `try_publish` (a full client queue leaves the rest for the next
/// pass), at most [`engage::SEND_BATCH`] a pass; a full batch asks for the next pass at once.
async fn engage(shared: &Arc<Shared>, conn: &Arc<Mutex<rusqlite::Connection>>, now: i64) {
    let receipts = std::mem::take(&mut *lock(&shared.receipts));
    let (c, s) = (Arc::clone(conn), Arc::clone(shared));
    let failed = (
        "remote patients' notices not read; retrying",
        "remote notices task failed",
    );
    let Some(out) = blocking(
        move || {
            let conn = lock(&c);
            for (i, (bed, payload)) in receipts.iter().enumerate() {
                match engage::receipt(&conn, bed, payload, now) {
                    Ok(id) => tracing::info!(target: "vigil::remote", %bed, id, "notice delivered"),
                    Err(crate::remote::RemoteError::Invalid(e)) => {
                        let n = s.counters.reject("bad_receipt");
                        tracing::warn!(%bed, count = n, error = %e, "patient receipt refused");
                    }
                    Err(e) => {
                        // The database failed: the receipts not recorded wait for the next pass.
                        lock(&s.receipts).extend(receipts[i..].iter().cloned());
                        return Err(e);
                    }
                }
            }
            engage::unsent(&conn)
        },
        Level::ERROR,
        failed,
    )
    .await
    else {
        return;
    };
    if out.is_empty() || !shared.link.borrow().connected {
        return;
    }
    let mut sent = Vec::with_capacity(out.len());
    for o in out {
        match shared.alarm_io.client.try_publish(
            o.topic,
            rumqttc::QoS::AtLeastOnce,
            false,
            o.payload,
        ) {
            Ok(()) => sent.push(o.id),
            Err(e) => {
                tracing::warn!(error = %e, "notices to remote patients paused; retrying");
                break;
            }
        }
    }
    if sent.is_empty() {
        return;
    }
    let n = sent.len();
    if n == engage::SEND_BATCH {
        // More may wait (everyone's 08:00 reminder): the next pass comes at once.
        shared.remote_wake.notify_one();
    }
    let c = Arc::clone(conn);
    let failed = (
        "notices sent but not recorded as sent (they will be sent again)",
        "remote notices task failed",
    );
    if blocking(
        move || engage::mark_sent(&lock(&c), &sent, now),
        Level::ERROR,
        failed,
    )
    .await
    .is_some()
    {
        tracing::info!(target: "vigil::remote", count = n, "notices to remote patients sent");
    }
}

/// A patient enrolled in a ward this station does not subscribe to (it watches one ward):
/// subscribe to that ward too, now and on every reconnection, or their readings would never
/// arrive and every slot would be missed.
async fn subscribe_wards(shared: &Shared, beds: &std::collections::BTreeSet<BedId>) {
    let wanted = super::remote_ward_filters(shared.ward.as_deref(), beds);
    let new: Vec<String> = {
        let mut filters = lock(&shared.filters);
        let new: Vec<String> = wanted
            .into_iter()
            .filter(|f| !filters.contains(f))
            .collect();
        filters.extend(new.iter().cloned());
        new
    };
    for f in new {
        match shared
            .alarm_io
            .client
            .subscribe(f.clone(), rumqttc::QoS::AtLeastOnce)
            .await
        {
            Ok(()) => tracing::info!(filter = %f, "subscribed to a remote patients' ward"),
            Err(e) => tracing::error!(filter = %f, error = %e,
                "cannot subscribe to a remote patients' ward now; retried on reconnection"),
        }
    }
}

fn log(ch: &AlertChange) {
    let (kind, bed, item) = (ch.kind.as_str(), &ch.bed, &ch.item);
    match ch.change {
        Change::Raised(level) => tracing::warn!(
            target: "vigil::remote", %bed, kind, item, level = ?level, from_ms = ch.from_ms,
            to_ms = ch.to_ms, "REMOTE ALERT {kind} {item} ({})", ch.slot_date
        ),
        Change::Escalated => tracing::warn!(
            target: "vigil::remote", %bed, kind, item,
            "REMOTE ALERT URGENT {kind} {item} ({})", ch.slot_date
        ),
        Change::Resolved(r) => tracing::info!(
            target: "vigil::remote", %bed, kind, item, resolution = r.as_str(),
            "REMOTE ALERT RESOLVED {kind} {item} ({})", ch.slot_date
        ),
    }
}

fn log_finding(f: &FindingRow) {
    tracing::warn!(
        target: "vigil::remote", bed = %f.bed, kind = %f.kind, rule = %f.rule, t_ms = f.t_ms,
        received_ms = f.received_ms, stale = f.stale, priority = %f.priority,
        "REMOTE FINDING {}{}", f.detail, if f.stale { " (received late: not sounded)" } else { "" }
    );
}
