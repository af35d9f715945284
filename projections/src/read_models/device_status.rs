//! Async read model of device presence (connectivity, `last_seen_at`) and of every status
//! report (`/analytics/status`, `uptime_ratio`). Presence is rewritten at most once a minute per
//! device however many messages arrive (see `device_presence_seen.sql`).

use crate::{LogEvents, ProjectionError, ReadModel};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleetstream_events::{Connectivity, DecodeError, DomainEvent, StoredEvent, TelemetryEvent};
use serde::Deserialize;
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub struct DeviceStatus;

/// What presence needs of a telemetry event: samples are skipped, never parsed into decimals.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Presence {
    TelemetryRecorded {
        device_id: i64,
    },
    DeviceStatusReported {
        device_id: i64,
        status: Connectivity,
        reported_at: DateTime<Utc>,
    },
}

impl LogEvents for Presence {
    const CATEGORIES: &'static [&'static str] = &[TelemetryEvent::CATEGORY];

    fn decode_stored(stored: &StoredEvent) -> Option<Result<Self, DecodeError>> {
        #[derive(Deserialize)]
        struct Recorded {
            device_id: i64,
        }
        #[derive(Deserialize)]
        struct Reported {
            device_id: i64,
            status: Connectivity,
            reported_at: DateTime<Utc>,
        }
        if stored.category() != TelemetryEvent::CATEGORY {
            return None;
        }
        let error = |e: serde_json::Error| DecodeError {
            event_type: stored.event_type.clone(),
            message: e.to_string(),
        };
        Some(match stored.event_type.as_str() {
            "TelemetryRecorded" => Recorded::deserialize(&stored.data)
                .map(|r| Presence::TelemetryRecorded {
                    device_id: r.device_id,
                })
                .map_err(error),
            "DeviceStatusReported" => Reported::deserialize(&stored.data)
                .map(|r| Presence::DeviceStatusReported {
                    device_id: r.device_id,
                    status: r.status,
                    reported_at: r.reported_at,
                })
                .map_err(error),
            other => Err(DecodeError {
                event_type: other.to_owned(),
                message: "not a telemetry event".into(),
            }),
        })
    }
}

#[async_trait]
impl ReadModel for DeviceStatus {
    type Event = Presence;
    const NAME: &'static str = "device_status";
    const TABLES: &'static [&'static str] = &["device_presence", "device_status_history"];

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: Presence,
        stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_events(conn, vec![(event, stored)]).await
    }

    async fn apply_events(
        &self,
        conn: &mut PgConnection,
        events: Vec<(Presence, &StoredEvent)>,
    ) -> Result<(), ProjectionError> {
        let mut seen: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
        for (event, stored) in events {
            let device_id = match event {
                Presence::TelemetryRecorded { device_id } => device_id,
                Presence::DeviceStatusReported {
                    device_id,
                    status,
                    reported_at,
                } => {
                    sqlx::query(
                        "INSERT INTO device_status_history (position, device_id, status, reported_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(stored.global_position)
                    .bind(device_id)
                    .bind(status.as_str())
                    .bind(reported_at)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "INSERT INTO device_presence AS p (device_id, connectivity) VALUES ($1, $2) \
                         ON CONFLICT (device_id) DO UPDATE SET connectivity = EXCLUDED.connectivity \
                         WHERE p.connectivity <> EXCLUDED.connectivity",
                    )
                    .bind(device_id)
                    .bind(status.as_str())
                    .execute(&mut *conn)
                    .await?;
                    device_id
                }
            };
            let at = seen.entry(device_id).or_insert(stored.recorded_at);
            *at = (*at).max(stored.recorded_at);
        }
        if seen.is_empty() {
            return Ok(());
        }
        let (devices, stamps): (Vec<i64>, Vec<DateTime<Utc>>) = seen.into_iter().unzip();
        sqlx::query(include_str!("../../sql/device_presence_seen.sql"))
            .bind(&devices)
            .bind(&stamps)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
