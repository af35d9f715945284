//! Seed 004: the Django REST clients under `/api/token`, `/api/devices` (DRF shapes).
use crate::accounts::drf as accounts;
use crate::devices::drf_http as devices;
use crate::measurements::http as measurements;
use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/token/", post(accounts::obtain))
        .route("/api/token/refresh/", post(accounts::refresh_pair))
        .route("/api/token/verify/", post(accounts::verify))
        .route("/api/devices/", get(devices::list).post(devices::create))
        .route(
            "/api/devices/{id}/",
            get(devices::retrieve)
                .put(devices::replace)
                .patch(devices::partial_update)
                .delete(devices::destroy),
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
