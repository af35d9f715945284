//! Inline read model of sync logs (push logs from recording streams, pull logs from
//! `synclog-<account>` streams): backs `recent_syncs` of `GET /api/sync/status`.

use crate::{Mode, Projection, ProjectionError};
use async_trait::async_trait;
use fleetstream_events::{RecordingEvent, StoredEvent, SyncLogEntry, SyncLogEvent};
use serde_json::Value;
use sqlx::PgConnection;

pub struct SyncLogs;

#[async_trait]
impl Projection for SyncLogs {
    fn name(&self) -> &'static str {
        "sync_logs"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["recording", "synclog"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["sync_logs"]
    }
    fn mode(&self) -> Mode {
        Mode::Inline
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        for stored in events {
            // Sample events are large; skip them without decoding.
            if stored.event_type != "SyncLogged" {
                continue;
            }
            let log = if let Some(event) = stored.decode::<RecordingEvent>() {
                match event? {
                    RecordingEvent::SyncLogged { log } => log,
                    _ => continue,
                }
            } else if let Some(event) = stored.decode::<SyncLogEvent>() {
                match event? {
                    SyncLogEvent::SyncLogged { log } => log,
                }
            } else {
                continue;
            };
            insert(conn, &log).await?;
        }
        Ok(())
    }
}

async fn insert(conn: &mut PgConnection, log: &SyncLogEntry) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../../sql/sync_logs_insert.sql"))
        .bind(log.sync_log_id)
        .bind(log.account_id)
        .bind(&log.session_id)
        .bind(&log.sync_type)
        .bind(&log.status)
        .bind(log.total_records)
        .bind(log.inserted)
        .bind(log.updated)
        .bind(log.duplicates)
        .bind(log.errors)
        .bind(serde_json::to_value(&log.sensor_types).unwrap_or(Value::Null))
        .bind(log.bytes)
        .bind(log.logged_at)
        .execute(conn)
        .await?;
    Ok(())
}
