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
        .route("/api/v1/system/info", get(system_info))
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
                let categories: Vec<String> = projection
                    .categories()
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                if let Ok(status) =
                    fleetstream_projections::status(&mut conn, projection.name(), Some(&categories))
                        .await
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
        "nats": nats_state(&state),
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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
