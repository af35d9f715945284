//! Async read model of alerts (`/monitoring/alerts`, `active_alerts` of the health reply).

use crate::{ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{AlertEvent, StoredEvent};
use sqlx::PgConnection;

pub struct Alerts;

#[async_trait]
impl ReadModel for Alerts {
    type Event = AlertEvent;
    const NAME: &'static str = "alerts";
    const TABLES: &'static [&'static str] = &["alerts"];

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: AlertEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            AlertEvent::AlertRaised {
                alert_id,
                rule_id,
                device_id,
                severity,
                metric,
                value,
                message,
                raised_at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO alerts (id, rule_id, device_id, severity, metric, value, message, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(alert_id)
                .bind(rule_id)
                .bind(device_id)
                .bind(severity.as_str())
                .bind(metric)
                .bind(value)
                .bind(message)
                .bind(raised_at)
                .execute(&mut *conn)
                .await?;
            }
            AlertEvent::AlertAcknowledged {
                alert_id,
                acknowledged_by,
                acknowledged_at,
            } => {
                sqlx::query(
                    "UPDATE alerts SET is_acknowledged = TRUE, acknowledged_by = $2, acknowledged_at = $3 \
                     WHERE id = $1",
                )
                .bind(alert_id)
                .bind(acknowledged_by)
                .bind(acknowledged_at)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
}
