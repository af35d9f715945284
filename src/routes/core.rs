//! Seed 002: the IoT core API under `/api/v1` (FastAPI shapes).
use crate::accounts::core as accounts;
use crate::alerts::http as monitoring;
use crate::analytics::http as analytics;
use crate::devices::core_http as devices;
use crate::state::AppState;
use axum::routing::{get, patch, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(accounts::register))
        .route("/api/v1/auth/login", post(accounts::login))
        .route("/api/v1/auth/refresh", post(accounts::refresh_tokens))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route(
            "/api/v1/users/me",
            get(accounts::me).patch(accounts::patch_me),
        )
        .route(
            "/api/v1/users",
            get(accounts::list).post(accounts::create_user),
        )
        .route(
            "/api/v1/users/{id}",
            get(accounts::get_user)
                .patch(accounts::patch_user)
                .delete(accounts::delete_user),
        )
        .route("/api/v1/devices", get(devices::list).post(devices::create))
        .route(
            "/api/v1/devices/{id}",
            get(devices::get)
                .patch(devices::patch)
                .delete(devices::delete),
        )
        .route("/api/v1/monitoring/health", get(monitoring::health))
        .route("/api/v1/monitoring/alerts", get(monitoring::alerts))
        .route(
            "/api/v1/monitoring/alerts/{alert_id}/acknowledge",
            post(monitoring::acknowledge),
        )
        .route(
            "/api/v1/monitoring/alert-rules",
            get(monitoring::list_rules).post(monitoring::create_rule),
        )
        .route(
            "/api/v1/monitoring/alert-rules/{rule_id}",
            patch(monitoring::patch_rule).delete(monitoring::delete_rule),
        )
        .route(
            "/api/v1/analytics/telemetry/{device_id}",
            get(analytics::telemetry),
        )
        .route(
            "/api/v1/analytics/reports/{device_id}",
            post(analytics::report),
        )
        .route(
            "/api/v1/analytics/status/{device_id}",
            get(analytics::status),
        )
        .route(
            "/api/v1/analytics/trends/{device_id}",
            get(analytics::trends),
        )
        .route("/api/v1/analytics/results", get(analytics::results))
}
