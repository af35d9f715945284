//! Seed 004: the Django REST clients under `/api/token`, `/api/devices` (DRF shapes).
use crate::app::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
