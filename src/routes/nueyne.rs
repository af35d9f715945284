//! Seeds 000 and 001: the Addnox/Lux therapy app under `/api/v1|v2/{addnox,lux}` (FastAPI shapes).
use crate::app::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
