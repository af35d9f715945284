//! Inline read model of treatment records and movement samples; `chart/recent` aggregates it
//! per patient and day.

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{StoredEvent, TreatmentEvent};
use sqlx::PgConnection;

pub struct TreatmentLogs;

#[async_trait]
impl ReadModel for TreatmentLogs {
    type Event = TreatmentEvent;
    const NAME: &'static str = "treatment_logs";
    const TABLES: &'static [&'static str] = &["treatment_logs", "movement_samples"];
    const MODE: Mode = Mode::Inline;

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: TreatmentEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            TreatmentEvent::TempTreatmentStarted {
                device_id,
                record_no,
                record: r,
                at,
            }
            | TreatmentEvent::TreatmentCompleted {
                device_id,
                record_no,
                record: r,
                at,
                ..
            } => {
                // A completion overwrites every field of the temporary record it closes.
                sqlx::query(include_str!("../../sql/treatment_logs_upsert.sql"))
                    .bind(device_id)
                    .bind(record_no)
                    .bind(r.real_user_id)
                    .bind(r.treatment_date)
                    .bind(r.last_intensity)
                    .bind(r.treatment_time)
                    .bind(r.movement)
                    .bind(r.finish_flag)
                    .bind(r.log_file_id)
                    .bind(&r.log_data)
                    .bind(r.finish_flag.is_none())
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            TreatmentEvent::TempTreatmentUpdated {
                device_id,
                record_no,
                last_intensity,
                treatment_time,
                at,
            } => {
                sqlx::query(
                    "UPDATE treatment_logs SET last_intensity = $3, treatment_time = $4, updated_at = $5 \
                     WHERE device_id = $1 AND record_no = $2",
                )
                .bind(device_id)
                .bind(record_no)
                .bind(last_intensity)
                .bind(treatment_time)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            TreatmentEvent::MovementRecorded {
                device_id,
                real_user_id,
                samples,
                ..
            } => {
                let ts: Vec<i64> = samples.iter().map(|s| s.timestamp).collect();
                let vals: Vec<i64> = samples.iter().map(|s| s.val).collect();
                sqlx::query(include_str!("../../sql/movement_samples_upsert.sql"))
                    .bind(device_id)
                    .bind(real_user_id)
                    .bind(&ts)
                    .bind(&vals)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}
