//! Seed 004: the Django REST clients under `/api/token`, `/api/devices` (DRF shapes).
use crate::accounts::drf as accounts;
use crate::app::AppState;
use axum::routing::post;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/token/", post(accounts::obtain))
        .route("/api/token/refresh/", post(accounts::refresh_pair))
        .route("/api/token/verify/", post(accounts::verify))
}
