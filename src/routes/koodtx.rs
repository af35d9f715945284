//! Seed 003: the KooDTX sensor-recording app under `/api/auth`, `/api/sync` (Flask shapes).
use crate::accounts::koodtx as accounts;
use crate::app::AppState;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(accounts::register))
        .route("/api/auth/login", post(accounts::login))
        .route("/api/auth/refresh", post(accounts::refresh_access))
        .route("/api/auth/me", get(accounts::me))
}
