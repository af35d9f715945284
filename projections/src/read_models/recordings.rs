//! Inline read model of KooDTX recordings: `recording_sessions` and `sensor_samples`. Inline
//! because a push's reply (session data count) and the next push's owner check and sample
//! comparison must see it at once. See docs/adr/0003-sync-samples-inline.md.

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{DomainEvent, RecordingEvent, StoredEvent};
use serde_json::Value;
use sqlx::PgConnection;

pub struct Recordings;

#[async_trait]
impl ReadModel for Recordings {
    type Event = RecordingEvent;
    const NAME: &'static str = "recordings";
    const TABLES: &'static [&'static str] = &["recording_sessions", "sensor_samples"];
    const MODE: Mode = Mode::Inline;

    fn applies_row(stored: &StoredEvent) -> bool {
        stored.event_type == "SamplesPushed" && stored.category() == RecordingEvent::CATEGORY
    }

    async fn apply_row(
        &self,
        conn: &mut PgConnection,
        stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        Ok(apply_samples(conn, stored).await?)
    }

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: RecordingEvent,
        stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            RecordingEvent::SessionStarted {
                session_id,
                owner_id,
                start_time,
                end_time,
                is_active,
                enabled_sensors,
                sample_rate,
                notes,
                started_at,
            } => {
                sqlx::query(include_str!("../../sql/recording_sessions_insert.sql"))
                    .bind(&session_id)
                    .bind(owner_id)
                    .bind(start_time)
                    .bind(end_time)
                    .bind(is_active)
                    .bind(serde_json::to_value(&enabled_sensors).unwrap_or(Value::Null))
                    .bind(sample_rate)
                    .bind(&notes)
                    .bind(started_at)
                    .bind(stored.stream_version)
                    .bind(stored.transaction_id)
                    .bind(stored.global_position)
                    .execute(&mut *conn)
                    .await?;
            }
            RecordingEvent::SessionUpdated {
                session_id,
                end_time,
                is_active,
                notes,
                updated_at,
                ..
            } => {
                sqlx::query(include_str!("../../sql/recording_sessions_update.sql"))
                    .bind(&session_id)
                    .bind(end_time)
                    .bind(is_active)
                    .bind(&notes)
                    .bind(updated_at)
                    .bind(stored.stream_version)
                    .bind(stored.transaction_id)
                    .bind(stored.global_position)
                    .execute(&mut *conn)
                    .await?;
            }
            // Applied from the log row by `apply_samples`, never decoded here.
            RecordingEvent::SamplesPushed { .. } => {}
            RecordingEvent::SyncLogged { log } => {
                if let Some(session_id) = &log.session_id {
                    sqlx::query(include_str!("../../sql/recording_sessions_version.sql"))
                        .bind(session_id)
                        .bind(stored.stream_version)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// One set-based statement over the event's own log row (see the SQL for why).
async fn apply_samples(conn: &mut PgConnection, stored: &StoredEvent) -> Result<(), sqlx::Error> {
    let counts: Option<(i64, i64, i64)> =
        sqlx::query_as(include_str!("../../sql/sensor_samples_apply.sql"))
            .bind(stored.global_position)
            .bind(stored.stream_version)
            .bind(stored.transaction_id)
            .fetch_optional(conn)
            .await?;
    // The command only records samples that differ from the stored ones, so every one of them
    // must have been written.
    if let Some((_, written, expected)) = counts.filter(|(_, w, e)| w != e) {
        tracing::warn!(
            stream_id = stored.stream_id,
            expected,
            written,
            "sample upsert wrote fewer rows than the event holds"
        );
    }
    Ok(())
}
