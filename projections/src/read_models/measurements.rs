//! Async read model of measurements and their 1-minute and 1-hour roll-ups (seed 004
//! `aggregated-data`, seed 002 analytics). A batch of the log becomes one insert of every
//! sample in it plus one upsert per roll-up width, after the month partitions it needs exist.

use crate::{ProjectionError, ReadModel};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleetstream_events::{StoredEvent, TelemetryEvent};
use rust_decimal::Decimal;
use sqlx::PgConnection;

pub struct Measurements;

#[derive(Default)]
struct Columns {
    ids: Vec<i64>,
    devices: Vec<i64>,
    metrics: Vec<String>,
    values: Vec<Decimal>,
    units: Vec<Option<String>>,
    stamps: Vec<DateTime<Utc>>,
}

#[async_trait]
impl ReadModel for Measurements {
    type Event = TelemetryEvent;
    const NAME: &'static str = "measurements";
    const TABLES: &'static [&'static str] =
        &["measurements", "telemetry_rollup_1m", "telemetry_rollup_1h"];

    fn wants(stored: &StoredEvent) -> bool {
        stored.event_type == "TelemetryRecorded"
    }

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
        let mut c = Columns::default();
        for (event, _) in events {
            let TelemetryEvent::TelemetryRecorded {
                device_id, samples, ..
            } = event
            else {
                continue;
            };
            for s in samples {
                c.ids.push(s.id);
                c.devices.push(device_id);
                c.metrics.push(s.metric);
                c.values.push(s.value);
                c.units.push(s.unit);
                c.stamps.push(s.timestamp);
            }
        }
        if c.ids.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT ensure_measurement_partitions($1)")
            .bind(&c.stamps)
            .execute(&mut *conn)
            .await?;
        sqlx::query(include_str!("../../sql/measurements_apply.sql"))
            .bind(&c.ids)
            .bind(&c.devices)
            .bind(&c.metrics)
            .bind(&c.values)
            .bind(&c.units)
            .bind(&c.stamps)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
