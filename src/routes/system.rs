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
        .route("/api/v1/system/info", get(system_info))
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

/// `GET /api/v1/system/info` (superadmin): the settings an operator checks, never a secret.
async fn system_info(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<Json<serde_json::Value>, crate::http::ApiError> {
    if caller.role != fleetstream_events::Role::Superadmin {
        return Err(crate::http::ApiError::detail(
            StatusCode::FORBIDDEN,
            "Not enough permissions",
        ));
    }
    let c = &state.config;
    let projections: Vec<serde_json::Value> = state
        .store
        .projections()
        .iter()
        .map(|p| json!({"name": p.name(), "mode": format!("{:?}", p.mode()).to_lowercase()}))
        .collect();
    Ok(Json(json!({
        "service": "core-api",
        "version": env!("CARGO_PKG_VERSION"),
        "http_addr": c.http_addr.to_string(),
        "nats": health::nats_state(&state),
        "access_ttl_secs": c.access_ttl.as_secs(),
        "refresh_ttl_secs": c.refresh_ttl.as_secs(),
        "login_failures_per_account": c.login_failures_per_account,
        "login_failures_per_ip": c.login_failures_per_ip,
        "trend_slope": c.trend_slope.to_string(),
        "projections": projections,
    })))
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
    refresh_inline_positions(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Inline projections have no worker to report their position; read it at scrape time (one
/// index step per category), so `/metrics` shows where they really are.
async fn refresh_inline_positions(state: &AppState) {
    let Ok(mut conn) = state.pool().acquire().await else {
        return;
    };
    for projection in state.store.projections() {
        if projection.mode() != fleetstream_projections::Mode::Inline {
            continue;
        }
        if let Ok(status) =
            fleetstream_projections::projection_status(&mut conn, projection.as_ref()).await
        {
            let name = projection.name();
            metrics::gauge!("fleet_projection_position", "projection" => name)
                .set(status.position as f64);
            metrics::gauge!("fleet_projection_lag_events", "projection" => name).set(0.0);
            metrics::gauge!("fleet_projection_lag_seconds", "projection" => name).set(0.0);
        }
    }
}
