//! Seed 003: the KooDTX sensor-recording app under `/api/auth`, `/api/sync` (Flask shapes).
use crate::accounts::koodtx as accounts;
use crate::state::AppState;
use crate::sync;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sync/push", post(sync::http::push))
        .route("/api/sync/pull", post(sync::http::pull))
        .route("/api/sync/status", get(sync::http::status))
        .route("/api/auth/register", post(accounts::register))
        .route("/api/auth/login", post(accounts::login))
        .route("/api/auth/refresh", post(accounts::refresh_access))
        .route("/api/auth/me", get(accounts::me))
}
