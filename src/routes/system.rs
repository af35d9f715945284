//! Health and metrics: `/api/v1/system/health` (seed 002), `/health` (seed 003), `/metrics`.
use crate::auth::Caller;
use crate::health;
use crate::http::{ApiError, Namespace};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use fleetstream_events::store::read_position;
use fleetstream_events::{EventEnvelope, Role};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/system/health", get(system_health))
        .route("/api/v1/system/events/{position}", get(event_by_position))
        .route("/health", get(koodtx_health))
        .route("/metrics", get(prometheus_metrics))
}

async fn postgres_ok(state: &AppState) -> bool {
    sqlx::query("SELECT 1").execute(state.pool()).await.is_ok()
}

/// 503 only when Postgres is unreachable (nothing can be served); a lagging or failing reader
/// or a lost NATS connection is `degraded` with 200: the API still answers.
async fn system_health(State(state): State<AppState>) -> impl IntoResponse {
    let report = health::report(&state).await;
    let code = if report.postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": report.status(),
            "service": "core-api",
            "version": env!("CARGO_PKG_VERSION"),
            "postgres": if report.postgres { "ok" } else { "down" },
            "nats": report.nats,
            "projections": report.projections,
            "relay": report.relay,
            "reasons": report.reasons,
        })),
    )
}

/// One event of the log, whole (secret fields redacted), by its global position: what a NATS
/// subscriber reads when the relay had to publish an event without its payload. Superadmin.
async fn event_by_position(
    State(state): State<AppState>,
    caller: Caller,
    Path(position): Path<i64>,
) -> Result<Json<EventEnvelope>, ApiError> {
    if caller.role != Role::Superadmin {
        return Err(ApiError::detail(
            StatusCode::FORBIDDEN,
            "Not enough permissions",
        ));
    }
    let mut conn = state
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(Namespace::Core, e))?;
    let event = read_position(&mut conn, position)
        .await
        .map_err(|e| ApiError::internal(Namespace::Core, e))?;
    event
        .map(|e| Json(EventEnvelope::from(&e)))
        .ok_or_else(|| ApiError::not_found(Namespace::Core))
}

async fn koodtx_health(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = postgres_ok(&state).await;
    let code = if postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": if postgres { "healthy" } else { "unhealthy" },
            "service": "KooDTX Backend",
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
}

async fn prometheus_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
