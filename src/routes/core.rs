//! Seed 002: the IoT core API under `/api/v1` (FastAPI shapes).
use crate::accounts::core as accounts;
use crate::devices::core_http as devices;
use crate::state::AppState;
use axum::routing::{get, post};
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
}
