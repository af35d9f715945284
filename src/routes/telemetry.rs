//! Seed 002 monitoring and analytics (`/api/v1/monitoring`, `/api/v1/analytics`), the admin
//! event read, and seed 004 measurements (`/api/devices/{id}/measurements|aggregated-data/`):
//! served in their namespaces' shapes, not yet described in the OpenAPI document.
use crate::alerts::http as monitoring;
use crate::analytics::http as analytics;
use crate::measurements::http as measurements;
use crate::state::AppState;
use axum::routing::{get, patch, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
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
        .route(
            "/api/v1/system/events/{position}",
            get(super::system::event_by_position),
        )
        .route(
            "/api/devices/{id}/measurements/",
            post(measurements::create),
        )
        .route(
            "/api/devices/{id}/aggregated-data/",
            get(measurements::aggregated_data),
        )
}
