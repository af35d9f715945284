//! Async read model of alert rules (`/monitoring/alert-rules`, the alert process manager).

use crate::{ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{AlertRuleEvent, StoredEvent};
use sqlx::PgConnection;

pub struct AlertRules;

#[async_trait]
impl ReadModel for AlertRules {
    type Event = AlertRuleEvent;
    const NAME: &'static str = "alert_rules";
    const TABLES: &'static [&'static str] = &["alert_rules"];

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: AlertRuleEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            AlertRuleEvent::AlertRuleCreated {
                rule_id,
                spec: s,
                created_at,
            } => {
                sqlx::query(include_str!("../../sql/alert_rules_insert.sql"))
                    .bind(rule_id)
                    .bind(&s.name)
                    .bind(&s.description)
                    .bind(&s.metric)
                    .bind(s.condition.as_str())
                    .bind(s.threshold)
                    .bind(s.severity.as_str())
                    .bind(s.device_group_id)
                    .bind(s.is_active)
                    .bind(created_at)
                    .execute(&mut *conn)
                    .await?;
            }
            AlertRuleEvent::AlertRuleUpdated {
                rule_id,
                changes: c,
                updated_at,
            } => {
                sqlx::query(include_str!("../../sql/alert_rules_update.sql"))
                    .bind(rule_id)
                    .bind(&c.name)
                    .bind(c.description.is_some())
                    .bind(c.description.clone().flatten())
                    .bind(&c.metric)
                    .bind(c.condition.map(|v| v.as_str()))
                    .bind(c.threshold)
                    .bind(c.severity.map(|v| v.as_str()))
                    .bind(c.device_group_id.is_some())
                    .bind(c.device_group_id.flatten())
                    .bind(c.is_active)
                    .bind(updated_at)
                    .execute(&mut *conn)
                    .await?;
            }
            AlertRuleEvent::AlertRuleDeleted { rule_id, .. } => {
                sqlx::query("DELETE FROM alert_rules WHERE id = $1")
                    .bind(rule_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}
