//! Async read model of device presence (connectivity, `last_seen_at`) and of every status
//! report (`/analytics/status`, `uptime_ratio`). Presence is rewritten at most once a minute per
//! device however many messages arrive (see `device_presence_seen.sql`).

use crate::{ProjectionError, ReadModel};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleetstream_events::{StoredEvent, TelemetryEvent};
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub struct DeviceStatus;

#[async_trait]
impl ReadModel for DeviceStatus {
    type Event = TelemetryEvent;
    const NAME: &'static str = "device_status";
    const TABLES: &'static [&'static str] = &["device_presence", "device_status_history"];

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: TelemetryEvent,
        stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_events(conn, vec![(event, stored)]).await
    }

    async fn apply_events(
        &self,
        conn: &mut PgConnection,
        events: Vec<(TelemetryEvent, &StoredEvent)>,
    ) -> Result<(), ProjectionError> {
        let mut seen: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
        for (event, stored) in events {
            let device_id = match event {
                TelemetryEvent::TelemetryRecorded { device_id, .. } => device_id,
                TelemetryEvent::DeviceStatusReported {
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
