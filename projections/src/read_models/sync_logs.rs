//! Inline read model of sync logs (push logs from recording streams, pull logs from
//! `synclog-<account>` streams): backs `recent_syncs` of `GET /api/sync/status`.

use crate::{Either, Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{RecordingEvent, StoredEvent, SyncLogEntry, SyncLogEvent};
use serde_json::Value;
use sqlx::PgConnection;

pub struct SyncLogs;

#[async_trait]
impl ReadModel for SyncLogs {
    type Event = Either<RecordingEvent, SyncLogEvent>;
    const NAME: &'static str = "sync_logs";
    const TABLES: &'static [&'static str] = &["sync_logs"];
    const MODE: Mode = Mode::Inline;

    /// Sample events are large; they are skipped without decoding.
    fn wants(stored: &StoredEvent) -> bool {
        stored.event_type == "SyncLogged"
    }

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: Self::Event,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            Either::Left(RecordingEvent::SyncLogged { log })
            | Either::Right(SyncLogEvent::SyncLogged { log }) => insert(conn, &log).await?,
            Either::Left(_) => {}
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
