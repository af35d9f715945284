//! Seed 003: the KooDTX sensor-recording app under `/api/auth`, `/api/sync` (Flask shapes).
use crate::app::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
