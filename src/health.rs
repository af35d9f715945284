//! What the health endpoints report: Postgres, NATS, and every log reader (the async
//! projections and the NATS relay) with its position, lag and current failure. A reader that
//! keeps failing, or is further behind than `FLEET_HEALTH_MAX_LAG_SECS`, makes the service
//! `degraded` with the reason, so being behind is visible before anyone reads the metrics.

use crate::state::AppState;
use fleetstream_projections::{Mode, ProjectionStatus};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReaderHealth {
    pub name: String,
    /// `inline`, `async` or `relay`.
    pub mode: &'static str,
    pub position: i64,
    pub lag_events: i64,
    pub lag_seconds: f64,
    pub last_error: Option<String>,
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Events it stepped past after failing on each again and again; cleared by a rebuild.
    pub skipped_events: i64,
}

impl ReaderHealth {
    fn from_status(status: ProjectionStatus, mode: &'static str) -> Self {
        Self {
            name: status.name,
            mode,
            position: status.position,
            lag_events: status.lag_events,
            lag_seconds: status.lag_seconds,
            last_error: status.last_error,
            failing_since: status.failing_since,
            skipped_events: status.skipped_events,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub postgres: bool,
    /// `connected`, `disconnected` or `disabled`.
    pub nats: &'static str,
    pub projections: Vec<ReaderHealth>,
    pub relay: Option<ReaderHealth>,
    /// Why the service is degraded; empty when it is not.
    pub reasons: Vec<String>,
}

impl HealthReport {
    pub fn status(&self) -> &'static str {
        if self.reasons.is_empty() {
            "ok"
        } else {
            "degraded"
        }
    }
}

pub fn nats_state(state: &AppState) -> &'static str {
    match &state.nats {
        None => "disabled",
        Some(client) => match client.connection_state() {
            async_nats::connection::State::Connected => "connected",
            _ => "disconnected",
        },
    }
}

/// The reasons one log reader makes the service degraded.
fn reader_reasons(reader: &ReaderHealth, max_lag_secs: f64) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(error) = &reader.last_error {
        reasons.push(format!("{} is failing: {error}", reader.name));
    }
    if reader.skipped_events > 0 {
        reasons.push(format!(
            "{} skipped {} events it could not apply; fix the cause and rebuild it",
            reader.name, reader.skipped_events
        ));
    }
    if reader.lag_seconds > max_lag_secs {
        reasons.push(format!(
            "{} is {:.0} s ({} events) behind",
            reader.name, reader.lag_seconds, reader.lag_events
        ));
    }
    reasons
}

pub async fn report(state: &AppState) -> HealthReport {
    let postgres = sqlx::query("SELECT 1").execute(state.pool()).await.is_ok();
    let nats = nats_state(state);
    let mut report = HealthReport {
        postgres,
        nats,
        projections: Vec::new(),
        relay: None,
        reasons: Vec::new(),
    };
    if !postgres {
        report.reasons.push("postgres is unreachable".into());
        return report;
    }
    if nats == "disconnected" {
        report.reasons.push("nats is disconnected".into());
    }
    let max_lag = state.config.health_max_lag.as_secs_f64();
    let Ok(mut conn) = state.pool().acquire().await else {
        report.reasons.push("postgres is unreachable".into());
        return report;
    };
    for projection in state.store.projections() {
        let Ok(status) =
            fleetstream_projections::projection_status(&mut conn, projection.as_ref()).await
        else {
            continue;
        };
        let mode = match projection.mode() {
            Mode::Inline => "inline",
            Mode::Async => "async",
        };
        let reader = ReaderHealth::from_status(status, mode);
        // Inline projections are current by construction: they commit with the append.
        if projection.mode() == Mode::Async {
            report.reasons.extend(reader_reasons(&reader, max_lag));
        }
        report.projections.push(reader);
    }
    // The alert process manager reads telemetry like an async projection.
    if let Ok(status) = fleetstream_projections::status(
        &mut conn,
        crate::alerts::manager::NAME,
        Some(&["telemetry".to_owned()]),
    )
    .await
    {
        let reader = ReaderHealth::from_status(status, "async");
        report.reasons.extend(reader_reasons(&reader, max_lag));
        report.projections.push(reader);
    }
    if nats != "disabled" {
        if let Ok(status) =
            fleetstream_projections::status(&mut conn, crate::relay::RELAY_NAME, None).await
        {
            let reader = ReaderHealth::from_status(status, "relay");
            report.reasons.extend(reader_reasons(&reader, max_lag));
            report.relay = Some(reader);
        }
    }
    report
}
