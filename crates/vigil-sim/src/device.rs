//! The device side of contract v1: one MQTT client per device, with its retained `online`
//! status, an `offline` last will, QoS 1 publishing, and an orderly goodbye that waits for the
//! broker to acknowledge everything sent. Used by `vigilctl replay`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde::Serialize;
use tokio::task::JoinHandle;

use vigil_contract::telemetry::{
    BedId, DeviceState, StatusPayload, Topic, VitalsPayload, WavePayload, CONTRACT_VERSION,
};

/// A connected device.
pub struct DeviceLink {
    pub bed: BedId,
    pub device: String,
    client: AsyncClient,
    net: JoinHandle<()>,
    queued: u64,
    acked: Arc<AtomicU64>,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs without maps or floats that could be NaN: serialisation cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

impl DeviceLink {
    /// Connect as `device` feeding `bed`; publishes the retained `online` status.
    pub async fn connect(mut opts: MqttOptions, bed: BedId, device: String) -> DeviceLink {
        let offline = StatusPayload {
            v: CONTRACT_VERSION,
            device: device.clone(),
            state: DeviceState::Offline,
            t: None,
            conditions: vec![],
        };
        let status_topic = Topic::status(&bed, &device);
        opts.set_last_will(LastWill::new(
            status_topic,
            json(&offline),
            QoS::AtLeastOnce,
            true,
        ));
        let (client, mut eventloop) = AsyncClient::new(opts, 256);
        let acked = Arc::new(AtomicU64::new(0));
        let ack_c = Arc::clone(&acked);
        let name = device.clone();
        let net = tokio::spawn(async move {
            let mut down = false;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        ack_c.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(Event::Incoming(Packet::ConnAck(_))) => down = false,
                    Ok(_) => {}
                    Err(e) => {
                        if !down {
                            tracing::warn!(device = %name, error = %e, "device link down; retrying");
                        }
                        down = true;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let mut link = DeviceLink {
            bed,
            device,
            client,
            net,
            queued: 0,
            acked,
        };
        link.status(DeviceState::Online).await;
        link
    }

    async fn publish(&mut self, topic: String, payload: Vec<u8>, retain: bool) {
        match self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
        {
            Ok(()) => self.queued += 1,
            Err(e) => tracing::error!(device = %self.device, error = %e, "cannot queue a publish"),
        }
    }

    pub async fn status(&mut self, state: DeviceState) {
        let p = StatusPayload {
            v: CONTRACT_VERSION,
            device: self.device.clone(),
            state,
            t: Some(chrono::Utc::now()),
            conditions: vec![],
        };
        let topic = Topic::status(&self.bed, &self.device);
        self.publish(topic, json(&p), true).await;
    }

    pub async fn wave(&mut self, p: &WavePayload) {
        let topic = Topic::wave(&self.bed, &self.device, &p.channel);
        self.publish(topic, json(p), false).await;
    }

    pub async fn vitals(&mut self, p: &VitalsPayload) {
        let topic = Topic::vitals(&self.bed, &self.device);
        self.publish(topic, json(p), false).await;
    }

    /// Publishes queued and acknowledged so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.queued, self.acked.load(Ordering::Relaxed))
    }

    /// Publish `offline`, wait (up to `within`) for every acknowledgement, disconnect.
    /// Returns (queued, acknowledged).
    pub async fn close(mut self, within: Duration) -> (u64, u64) {
        self.status(DeviceState::Offline).await;
        let deadline = Instant::now() + within;
        while self.acked.load(Ordering::Relaxed) < self.queued && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.client.disconnect().await;
        if tokio::time::timeout(Duration::from_secs(2), &mut self.net)
            .await
            .is_err()
        {
            self.net.abort();
        }
        self.counts()
    }
}
