//! Seed 002: the IoT core API under `/api/v1` (FastAPI shapes).
use crate::app::AppState;
use crate::devices::core_http as devices;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/devices", get(devices::list).post(devices::create))
        .route(
            "/api/v1/devices/{id}",
            get(devices::get)
                .patch(devices::patch)
                .delete(devices::delete),
        )
}
