//! Seed 002: the IoT core API under `/api/v1` (FastAPI shapes).
use crate::accounts::core as accounts;
use crate::alerts::http as monitoring;
use crate::analytics::http as analytics;
use crate::audit::http as audit;
use crate::devices::core_http as devices;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::refresh_tokens))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me, accounts::patch_me))
        .routes(routes!(accounts::list, accounts::create_user))
        .routes(routes!(
            accounts::get_user,
            accounts::patch_user,
            accounts::delete_user
        ))
        .routes(routes!(devices::list, devices::create))
        .routes(routes!(devices::get, devices::patch, devices::delete))
        .routes(routes!(monitoring::health))
        .routes(routes!(monitoring::alerts))
        .routes(routes!(monitoring::acknowledge))
        .routes(routes!(monitoring::list_rules, monitoring::create_rule))
        .routes(routes!(monitoring::patch_rule, monitoring::delete_rule))
        .routes(routes!(analytics::telemetry))
        .routes(routes!(analytics::report))
        .routes(routes!(analytics::status))
        .routes(routes!(analytics::trends))
        .routes(routes!(analytics::results))
        .routes(routes!(audit::trail))
}
