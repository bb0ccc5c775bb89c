//! What the ward's stations share over the broker: each bed's alarm state (acknowledgements,
//! audio pauses; signed, believed only from enrolled stations, audited), notices such as
//! break-glass, and the topics of a station (its notices, its audit head).

use std::sync::atomic::Ordering;

use rumqttc::QoS;

use super::alarms::emit_alarm_events;
use super::{lock, RemoteAudit, Shared};
use crate::alarms::sync::{self as alarm_sync, Refusal};
use crate::alarms::AlarmEventKind;
use crate::security::{Kind, Occurrence, Source};
use crate::telemetry::{self, BedId};

/// A notice one station sends the others of the ward (retained: no; QoS 1), e.g. that a user
/// took break-glass access: charge nurses elsewhere are told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StationNotice {
    pub v: u32,
    /// The sending station (its MQTT client id).
    pub station: String,
    /// `break_glass`.
    pub kind: String,
    pub user: String,
    pub detail: String,
    pub until_ms: Option<i64>,
    pub t_ms: i64,
}

/// The topic level of a station id: `A-Z a-z 0-9 . _ -`, anything else as `_`.
fn station_level(station: &str) -> String {
    station
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// Where a station publishes its audit-trail head (retained): `vigil/v1/_station/{id}/audit/head`.
pub fn audit_head_topic(station: &str) -> String {
    format!(
        "{}/_station/{}/audit/head",
        telemetry::TOPIC_ROOT,
        station_level(station)
    )
}

/// Where a station sends notices to the others: `vigil/v1/_station/{id}/notice`.
pub fn notice_topic(station: &str) -> String {
    format!(
        "{}/_station/{}/notice",
        telemetry::TOPIC_ROOT,
        station_level(station)
    )
}

/// The station of a notice topic, if `topic` is one.
pub(super) fn notice_station(topic: &str) -> Option<&str> {
    let rest = topic
        .strip_prefix(telemetry::TOPIC_ROOT)?
        .strip_prefix("/_station/")?;
    let (station, tail) = rest.split_once('/')?;
    (tail == "notice").then_some(station)
}

/// Share this station's acknowledgements and audio pauses of `beds` with the ward: retained,
/// QoS 1, one message per bed. Never waits (the client queues; a full queue is logged).
pub(super) fn publish_bed_state(shared: &Shared, beds: &[BedId], now: i64) {
    let io = &shared.alarm_io;
    if !io.sync {
        return;
    }
    for bed in beds {
        let seq = io.sync_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let state = lock(&shared.state)
            .alarms
            .sync_state(bed, &io.station, seq, now);
        let topic = alarm_sync::topic(bed);
        let payload = match alarm_sync::seal(&topic, &state, &io.key) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode alarm state");
                continue;
            }
        };
        if let Err(e) = io
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, true, payload)
        {
            tracing::warn!(%topic, error = %e, "cannot share alarm state with the ward");
        }
    }
}

/// Another station's (or this station's earlier) alarm state of a bed: believed only once
/// [`alarm_sync::Trust::admit`] has checked it (a refusal is a security event on the bed), then applied
/// within this station's own rules and audited with the remote station and user.
pub(super) async fn station_state(shared: &Shared, topic: &str, payload: &[u8]) {
    let Some(bed) = alarm_sync::parse_topic(topic) else {
        return;
    };
    if payload.is_empty() {
        return;
    }
    let now = shared.clock.now_ms();
    let admitted = lock(&shared.trust).admit(topic, &bed, payload, now);
    let state = match admitted {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(refusal) => {
            refuse_station_state(shared, &bed, topic, &refusal, now);
            return;
        }
    };
    let own = &shared.alarm_io.station;
    let events = lock(&shared.state)
        .alarms
        .apply_remote(&bed, &state, own, now);
    let remote: Vec<&crate::alarms::AlarmEvent> =
        events.iter().filter(|e| e.station.is_some()).collect();
    if !remote.is_empty() {
        let mut audit = lock(&shared.remote_audit);
        for e in &remote {
            let station = e.station.as_deref().unwrap_or_default();
            let user = e.user.as_deref().unwrap_or_default();
            let action = match e.kind {
                AlarmEventKind::Acknowledge => crate::audit::actions::REMOTE_ALARM_ACKNOWLEDGE,
                _ => crate::audit::actions::REMOTE_AUDIO_PAUSE,
            };
            audit.push(RemoteAudit {
                actor: format!("station:{station}/{user}"),
                action,
                target: e.alarm_id.clone(),
                detail: format!(
                    "{} (state sent by station {} seq {})",
                    e.message, state.station, state.seq
                ),
                t_ms: now,
            });
        }
        let first = remote[0];
        shared.security.report(Occurrence::new(
            Kind::RemoteStationAction,
            Source {
                bed: bed.key(),
                peer: first.station.clone().unwrap_or_default(),
                user: first.user.clone().unwrap_or_default(),
                ..Source::default()
            },
            format!(
                "station {} changed alarm state of {bed}: {}",
                first.station.as_deref().unwrap_or_default(),
                remote
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            now,
        ));
    }
    emit_alarm_events(shared, events, now).await;
}

/// A refused station alarm state: counted, logged, and a security event on the bed.
fn refuse_station_state(shared: &Shared, bed: &BedId, topic: &str, r: &Refusal, now: i64) {
    shared.counters.reject(r.reason());
    tracing::warn!(target: "vigil::security", %topic, reason = r.reason(), "station alarm state refused: {r}");
    shared.security.report(Occurrence::new(
        Kind::StationStateRefused,
        Source {
            bed: bed.key(),
            peer: r.station().to_string(),
            ..Source::default()
        },
        format!("{topic}: {r}"),
        now,
    ));
}

/// A notice from another station (break-glass taken there).
pub(super) fn station_notice(shared: &Shared, station: &str, payload: &[u8]) {
    if station == station_level(&shared.alarm_io.station) || payload.is_empty() {
        return;
    }
    let n: StationNotice = match serde_json::from_slice(payload) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(%station, error = %e, "unreadable station notice ignored");
            return;
        }
    };
    if n.kind != "break_glass" {
        return;
    }
    let until = n
        .until_ms
        .map(crate::audit::format_time_utc)
        .unwrap_or_default();
    let user: String = n.user.chars().take(64).collect();
    let text = format!(
        "{user} took break-glass (charge-nurse) rights at station {station} until {until}; \
         reason: {}",
        n.detail.chars().take(300).collect::<String>()
    );
    tracing::warn!(%station, user, "break-glass at another station");
    shared.security.report(Occurrence::new(
        Kind::BreakGlass,
        Source {
            user,
            peer: station.to_string(),
            ..Source::default()
        },
        text.clone(),
        shared.clock.now_ms(),
    ));
    if let Some(notifier) = &shared.alarm_io.notifier {
        notifier.send(crate::notify::Note {
            summary: format!("Break-glass at station {station}"),
            body: text,
            priority: crate::alarms::Priority::Medium,
            // Its own notification (not an alarm's): one per station's break-glass.
            alarm_id: format!("break-glass@{station}"),
            withdraw: false,
        });
    }
}
