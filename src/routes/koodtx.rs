//! Seed 003: the KooDTX sensor-recording app under `/api/auth`, `/api/sync` (Flask shapes).
use crate::accounts::koodtx as accounts;
use crate::state::AppState;
use crate::sync::http as sync;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sync::push))
        .routes(routes!(sync::pull))
        .routes(routes!(sync::status))
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::refresh_access))
        .routes(routes!(accounts::me))
}
