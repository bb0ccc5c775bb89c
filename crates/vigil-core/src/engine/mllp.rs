//! HL7 v2 over MLLP: the listener started with the engine, the intake of its messages (the
//! peer must be allowed to speak for the device, the registry names the bed) and the security
//! events of the connections it refuses.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::admission::{expand, reject};
use super::link::Lane;
use super::pipeline::ingest;
use super::storage::StoreSink;
use super::{lock, EngineError, Shared};
use crate::interop::mllp::MllpConfig;
use crate::security::{Kind, Occurrence, Source};
use crate::telemetry;

/// Listen for HL7 v2 over MLLP on `m.listen` and take its messages until `stop`.
pub(super) fn start(
    m: &MllpConfig,
    shared: &Arc<Shared>,
    sink: &StoreSink,
    stop: &watch::Sender<bool>,
) -> Result<(), EngineError> {
    let addr = m.listen;
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(tokio::net::TcpListener::from_std)
        .map_err(|source| EngineError::Mllp { addr, source })?;
    let peers = m.peers.as_ref().map_or(0, |p| p.len());
    tracing::info!(%addr, peers, "MLLP listener for HL7 v2");
    let (tx, rx) = mpsc::channel(256);
    let (events_tx, events_rx) = mpsc::channel(256);
    let opts = crate::interop::mllp::ServeOptions {
        events: Some(events_tx),
        ..m.serve_options()
    };
    tokio::spawn(crate::interop::mllp::serve_with(
        listener,
        tx,
        stop.subscribe(),
        opts,
    ));
    tokio::spawn(mllp_intake(
        Arc::clone(shared),
        sink.clone(),
        m.peers.clone(),
        rx,
    ));
    tokio::spawn(mllp_conn_events(Arc::clone(shared), events_rx));
    Ok(())
}

/// Take HL7 v2 messages from the MLLP listener: the device (OBX-18 / MSH-3) must be one the
/// peer may speak for (with an allow-list) and be in the device registry, which names its bed.
/// Each message is answered once it is ingested; every refusal gets the same answer
/// ([`crate::interop::mllp::Refused`]) while its reason is logged, counted and reported.
async fn mllp_intake(
    shared: Arc<Shared>,
    sink: StoreSink,
    peers: Option<Arc<crate::interop::mllp::PeerList>>,
    mut rx: mpsc::Receiver<crate::interop::mllp::MllpMessage>,
) {
    use crate::interop::mllp::{peer_ip, Refused};
    while let Some(m) = rx.recv().await {
        shared.counters.messages.fetch_add(1, Ordering::Relaxed);
        let ip = peer_ip(&m.peer);
        let cert_devices = m.cert_devices;
        // Per address (not per port): one security event per peer however often it reconnects.
        let source = format!("mllp:{ip}");
        let admitted = m.batch.and_then(|batch| {
            let device = batch
                .device
                .clone()
                .ok_or_else(|| telemetry::DecodeError::UnknownDevice("(none in message)".into()))?;
            let registry = lock(&shared.registry);
            // The peer's address (allow-list) and its client certificate (TLS), when there are.
            let by_peer = peers.as_ref().is_none_or(|p| p.may_speak_for(ip, &device));
            let by_cert = cert_devices.as_ref().is_none_or(|d| d.contains(&device));
            if !(by_peer && by_cert) {
                let bed = registry.resolve(&device, None, true).ok();
                return Err(telemetry::DecodeError::ForeignDevice {
                    device,
                    peer: ip.to_string(),
                    bed: bed.map(|b| b.key()),
                });
            }
            let bed = registry.resolve(&device, None, true)?;
            drop(registry);
            Ok(expand(
                bed,
                device,
                batch,
                &shared.policy,
                shared.clock.now_ms(),
            ))
        });
        match admitted {
            Ok(msgs) => {
                for msg in msgs {
                    ingest(&shared, &sink, Lane::Priority, &source, msg).await;
                }
                let _ = m.reply.send(Ok(()));
            }
            Err(e) => {
                reject(&shared, &source, &e);
                let _ = m.reply.send(Err(Refused));
            }
        }
    }
}

/// Connections the MLLP listener refused or closed (not allowed, over a cap, a frame not
/// completed in time): security events of their peer.
async fn mllp_conn_events(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<crate::interop::mllp::ConnEvent>,
) {
    while let Some(ev) = rx.recv().await {
        let ip = crate::interop::mllp::peer_ip(&ev.peer);
        shared.counters.reject(ev.what.reason());
        shared.security.report(Occurrence::new(
            Kind::MllpRefused,
            Source::peer(&ip.to_string()),
            format!("{} ({})", ev.what.describe(), ev.what.reason()),
            shared.clock.now_ms(),
        ));
    }
}
