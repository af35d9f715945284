//! Health and metrics: `/api/v1/system/health` (seed 002), `/health` (seed 003), `/metrics`.
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/system/health", get(system_health))
        .route("/health", get(koodtx_health))
        .route("/metrics", get(prometheus_metrics))
}

async fn postgres_ok(state: &AppState) -> bool {
    sqlx::query("SELECT 1").execute(state.pool()).await.is_ok()
}

fn nats_state(state: &AppState) -> &'static str {
    match &state.nats {
        None => "disabled",
        Some(client) => match client.connection_state() {
            async_nats::connection::State::Connected => "connected",
            _ => "disconnected",
        },
    }
}

async fn system_health(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = postgres_ok(&state).await;
    let mut projections = Vec::new();
    if postgres {
        if let Ok(mut conn) = state.pool().acquire().await {
            for projection in state.store.projections() {
                if let Ok(status) =
                    fleetstream_projections::projection_status(&mut conn, projection.as_ref()).await
                {
                    projections.push(json!({
                        "name": status.name,
                        "mode": format!("{:?}", projection.mode()).to_lowercase(),
                        "position": status.position,
                        "lag_events": status.lag_events,
                    }));
                }
            }
        }
    }
    let status = if postgres { "ok" } else { "degraded" };
    let code = if postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": status,
            "service": "core-api",
            "version": env!("CARGO_PKG_VERSION"),
            "postgres": if postgres { "ok" } else { "down" },
            "nats": nats_state(&state),
            "projections": projections,
        })),
    )
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
