//! Alerting: rules (aggregate `alertrule`), alerts (aggregate `alert`, one stream per rule and
//! device), the process manager that raises alerts from telemetry, and the seed 002
//! `/api/v1/monitoring` endpoints.

pub mod domain;
pub mod http;
pub mod manager;

use crate::es::{next_id, CommandError, EventStore};
use chrono::Utc;
use domain::{AlertError, AlertRule, AlertState, AlertStream};
use fleetstream_events::{alert_stream_key, AlertRuleChanges, AlertRuleSpec, EventMetadata};

pub async fn create_rule(
    store: &EventStore,
    metadata: EventMetadata,
    spec: AlertRuleSpec,
) -> Result<AlertRule, CommandError<AlertError>> {
    let mut conn = store.pool.acquire().await?;
    let rule_id = next_id(&mut conn, "alert_rule_id_seq").await?;
    drop(conn);
    let now = Utc::now();
    let (rule, _) = store
        .execute::<AlertRule, _>(rule_id, metadata, |state| {
            domain::decide_create_rule(state, rule_id, spec.clone(), now)
        })
        .await?;
    Ok(rule)
}

pub async fn update_rule(
    store: &EventStore,
    metadata: EventMetadata,
    rule_id: i64,
    changes: AlertRuleChanges,
) -> Result<AlertRule, CommandError<AlertError>> {
    let (rule, _) = store
        .execute::<AlertRule, _>(rule_id, metadata, |state| {
            domain::decide_update_rule(state, changes.clone(), Utc::now())
        })
        .await?;
    Ok(rule)
}

pub async fn delete_rule(
    store: &EventStore,
    metadata: EventMetadata,
    rule_id: i64,
) -> Result<(), CommandError<AlertError>> {
    store
        .execute::<AlertRule, _>(rule_id, metadata, |state| {
            domain::decide_delete_rule(state, Utc::now())
        })
        .await
        .map(|_| ())
}

/// AcknowledgeAlert: the alert's stream is found through the `alerts` read model; the
/// decision is the stream's own.
pub async fn acknowledge(
    store: &EventStore,
    metadata: EventMetadata,
    alert_id: i64,
    by: i64,
) -> Result<AlertState, CommandError<AlertError>> {
    let pair: Option<(i64, i64)> =
        sqlx::query_as("SELECT rule_id, device_id FROM alerts WHERE id = $1")
            .bind(alert_id)
            .fetch_optional(&store.pool)
            .await?;
    let (rule_id, device_id) = pair.ok_or(CommandError::Domain(AlertError::AlertNotFound))?;
    let (stream, _) = store
        .execute::<AlertStream, _>(alert_stream_key(rule_id, device_id), metadata, |state| {
            domain::decide_acknowledge(state, alert_id, by, Utc::now())
        })
        .await?;
    stream
        .get(alert_id)
        .cloned()
        .ok_or(CommandError::Domain(AlertError::AlertNotFound))
}
