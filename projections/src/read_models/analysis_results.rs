//! Async read model of stored analyses (`/analytics/results`).

use crate::{ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{ReportEvent, StoredEvent};
use sqlx::PgConnection;

pub struct AnalysisResults;

#[async_trait]
impl ReadModel for AnalysisResults {
    type Event = ReportEvent;
    const NAME: &'static str = "analysis_results";
    const TABLES: &'static [&'static str] = &["analysis_results"];

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: ReportEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let ReportEvent::AnalysisRecorded {
            result_id,
            analysis_type,
            device_id,
            device_uid,
            params,
            result,
            created_at,
        } = event;
        sqlx::query(
            "INSERT INTO analysis_results (id, analysis_type, device_id, device_uid, params, result, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(result_id)
        .bind(analysis_type.as_str())
        .bind(device_id)
        .bind(device_uid)
        .bind(params)
        .bind(result)
        .bind(created_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
