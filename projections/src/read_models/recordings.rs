//! Inline read model of KooDTX recordings: `recording_sessions` and `sensor_samples`. Inline
//! because a push's reply (session data count) and the next push's owner check and sample
//! comparison must see it at once. See docs/adr/0003-sync-samples-inline.md.

use crate::{Mode, Projection, ProjectionError};
use async_trait::async_trait;
use fleetstream_events::{RecordingEvent, StoredEvent};
use serde_json::Value;
use sqlx::PgConnection;

pub struct Recordings;

#[async_trait]
impl Projection for Recordings {
    fn name(&self) -> &'static str {
        "recordings"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["recording"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["recording_sessions", "sensor_samples"]
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
            let Some(event) = stored.decode::<RecordingEvent>() else {
                continue;
            };
            match event? {
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
                RecordingEvent::SamplesPushed {
                    session_id,
                    samples,
                    pushed_at,
                } => {
                    let mut sensor_types = Vec::with_capacity(samples.len());
                    let mut timestamps = Vec::with_capacity(samples.len());
                    let mut data = Vec::with_capacity(samples.len());
                    for sample in samples {
                        sensor_types.push(sample.sensor_type);
                        timestamps.push(sample.timestamp);
                        data.push(sample.data);
                    }
                    let expected = timestamps.len() as i64;
                    let counts: Option<(i64, i64)> =
                        sqlx::query_as(include_str!("../../sql/sensor_samples_upsert.sql"))
                            .bind(&session_id)
                            .bind(sensor_types)
                            .bind(timestamps)
                            .bind(data)
                            .bind(pushed_at)
                            .bind(stored.stream_version)
                            .bind(stored.transaction_id)
                            .bind(stored.global_position)
                            .fetch_optional(&mut *conn)
                            .await?;
                    // The command only records samples that differ from the stored ones, so
                    // every one of them must have been written.
                    if let Some((_, affected)) = counts.filter(|(_, a)| *a != expected) {
                        tracing::warn!(
                            session_id,
                            expected,
                            affected,
                            "sample upsert wrote fewer rows than the event holds"
                        );
                    }
                }
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
        }
        Ok(())
    }
}
