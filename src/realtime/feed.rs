//! Feeds Socket.IO from NATS: the relay publishes every event on `fleet.<category>.…`; this
//! task (one per server instance) turns telemetry, status, alert and device-response events
//! into `telemetry`, `device_status`, `notification` and `device_response` for the rooms that
//! may see them. A plain subscription, not a durable consumer: realtime is live, and what
//! happened while no instance listened is in the read models.

use super::{device_room, user_room, DEVICE, MANAGERS_ROOM, MONITORING, NOTIFICATION};
use crate::state::AppState;
use chrono::{DateTime, SecondsFormat, Utc};
use fleetstream_events::{
    AlertEvent, DeviceMessageEvent, DomainEvent, EventEnvelope, TelemetryEvent, TelemetrySample,
};
use futures::StreamExt;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Map, Value};
use socketioxide::SocketIo;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const SUBJECTS: [&str; 3] = ["fleet.telemetry.>", "fleet.alert.>", "fleet.devicemsg.>"];

/// What one event becomes for the sockets: (namespace, rooms, event name, payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    pub namespace: &'static str,
    pub rooms: Vec<String>,
    pub event: &'static str,
    pub payload: Value,
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn number(value: rust_decimal::Decimal) -> Value {
    value
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// One `telemetry` per timestamp of the batch: `{device_uid, data: {metric: number}, timestamp}`.
fn telemetry_emits(uid: &str, samples: &[TelemetrySample]) -> Vec<Emit> {
    let mut by_time: BTreeMap<DateTime<Utc>, Map<String, Value>> = BTreeMap::new();
    for sample in samples {
        by_time
            .entry(sample.timestamp)
            .or_default()
            .insert(sample.metric.clone(), number(sample.value));
    }
    by_time
        .into_iter()
        .map(|(at, data)| Emit {
            namespace: MONITORING,
            rooms: vec![device_room(uid)],
            event: "telemetry",
            payload: json!({ "device_uid": uid, "data": data, "timestamp": iso(at) }),
        })
        .collect()
}

/// The emits of one envelope; `uid_of` names a device id's uid.
pub fn emits_for(envelope: &EventEnvelope, uid_of: impl Fn(i64) -> Option<String>) -> Vec<Emit> {
    if envelope.payload_omitted.is_some() {
        return Vec::new();
    }
    let decode = |category: &str| envelope.category == category;
    if decode(TelemetryEvent::CATEGORY) {
        let Ok(event) = TelemetryEvent::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.data,
        ) else {
            return Vec::new();
        };
        return match event {
            TelemetryEvent::TelemetryRecorded {
                device_id, samples, ..
            } => uid_of(device_id)
                .map(|uid| telemetry_emits(&uid, &samples))
                .unwrap_or_default(),
            TelemetryEvent::DeviceStatusReported {
                device_id, status, ..
            } => uid_of(device_id)
                .map(|uid| {
                    vec![Emit {
                        namespace: MONITORING,
                        rooms: vec![device_room(&uid)],
                        event: "device_status",
                        payload: json!({ "device_uid": uid, "status": status.as_str() }),
                    }]
                })
                .unwrap_or_default(),
        };
    }
    if decode(AlertEvent::CATEGORY) {
        let Ok(AlertEvent::AlertRaised {
            owner_id,
            notification,
            ..
        }) = AlertEvent::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.data,
        )
        else {
            return Vec::new();
        };
        let mut rooms = vec![MANAGERS_ROOM.to_owned()];
        rooms.extend(owner_id.map(user_room));
        return vec![Emit {
            namespace: NOTIFICATION,
            rooms,
            event: "notification",
            payload: serde_json::to_value(notification).unwrap_or(Value::Null),
        }];
    }
    if decode(DeviceMessageEvent::CATEGORY) {
        if let Ok(DeviceMessageEvent::DeviceResponded {
            device_uid,
            requested_by: Some(account),
            payload,
            ..
        }) = DeviceMessageEvent::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.data,
        ) {
            return vec![Emit {
                namespace: DEVICE,
                rooms: vec![user_room(account)],
                event: "device_response",
                payload: json!({ "device_uid": device_uid, "data": payload }),
            }];
        }
    }
    Vec::new()
}

/// device id → uid, cached (a uid changes only by an explicit device update).
#[derive(Clone, Default)]
struct Uids(Arc<Mutex<HashMap<i64, String>>>);

impl Uids {
    async fn load(&self, pool: &sqlx::PgPool, ids: &[i64]) {
        let missing: Vec<i64> = {
            let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .copied()
                .filter(|id| !known.contains_key(id))
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, unique_id FROM devices WHERE id = ANY($1)")
                .bind(&missing)
                .fetch_all(pool)
                .await
                .unwrap_or_default();
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() > 100_000 {
            known.clear();
        }
        known.extend(rows);
    }

    fn get(&self, id: i64) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}

fn device_ids(envelope: &EventEnvelope) -> Option<i64> {
    envelope.data.get("device_id").and_then(Value::as_i64)
}

/// Subscribes to the relay's events and emits until `shutdown`, reconnecting as needed.
pub async fn run(io: SocketIo, state: AppState, shutdown: CancellationToken) {
    let uids = Uids::default();
    while !shutdown.is_cancelled() {
        if let Err(err) = run_once(&io, &state, &uids, &shutdown).await {
            tracing::warn!(error = %err, "realtime feed paused; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn run_once(
    io: &SocketIo,
    state: &AppState,
    uids: &Uids,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let client = crate::nats::connect(&state.config.nats_url, "fleetstream-realtime").await?;
    let mut subscriptions = Vec::new();
    for subject in SUBJECTS {
        subscriptions.push(client.subscribe(subject).await?);
    }
    let mut messages = futures::stream::select_all(subscriptions);
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(message) => message,
                None => anyhow::bail!("NATS subscription ended"),
            },
        };
        let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(&message.payload) else {
            continue;
        };
        if let Some(id) = device_ids(&envelope) {
            uids.load(state.pool(), &[id]).await;
        }
        for emit in emits_for(&envelope, |id| uids.get(id)) {
            let Some(namespace) = io.of(emit.namespace) else {
                continue;
            };
            if let Err(err) = namespace
                .to(emit.rooms)
                .emit(emit.event, &emit.payload)
                .await
            {
                tracing::debug!(error = %err, event = emit.event, "realtime emit failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use fleetstream_events::{Connectivity, StoredEvent};

    fn envelope<E: DomainEvent>(stream: &str, event: &E) -> EventEnvelope {
        EventEnvelope::from(&StoredEvent {
            global_position: 1,
            transaction_id: 1,
            stream_id: stream.into(),
            stream_version: 1,
            event_id: uuid::Uuid::nil(),
            event_type: event.event_type().into(),
            schema_version: event.event_version(),
            data: event.to_data(),
            metadata: json!({}),
            recorded_at: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
        })
    }

    #[test]
    fn a_telemetry_batch_becomes_one_emit_per_timestamp_with_numbers() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let sample = |id, metric: &str, value: &str, at| TelemetrySample {
            id,
            metric: metric.into(),
            value: value.parse().unwrap(),
            unit: None,
            timestamp: at,
        };
        let event = TelemetryEvent::TelemetryRecorded {
            device_id: 5,
            samples: vec![
                sample(1, "temperature", "23.5", at),
                sample(2, "humidity", "40", at),
                sample(3, "temperature", "23.6", at + chrono::Duration::seconds(1)),
            ],
            recorded_at: at,
        };
        let emits = emits_for(&envelope("telemetry-5", &event), |_| Some("uid-5".into()));
        insta::assert_json_snapshot!(emits
            .iter()
            .map(|e| json!({"ns": e.namespace, "rooms": e.rooms, "event": e.event, "payload": e.payload}))
            .collect::<Vec<_>>());
    }

    #[test]
    fn status_reports_become_device_status_and_unknown_devices_nothing() {
        let event = TelemetryEvent::DeviceStatusReported {
            device_id: 5,
            status: Connectivity::Online,
            reported_at: Utc::now(),
        };
        let emits = emits_for(&envelope("telemetry-5", &event), |_| Some("uid-5".into()));
        assert_eq!(emits.len(), 1);
        assert_eq!(
            emits[0].payload,
            json!({"device_uid": "uid-5", "status": "online"})
        );
        assert!(emits_for(&envelope("telemetry-5", &event), |_| None).is_empty());
    }
}
