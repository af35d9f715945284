//! Seed 002: the IoT core API under `/api/v1` (FastAPI shapes).
use crate::app::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
