//! Seed 004: the Django REST clients under `/api/token`, `/api/devices` (DRF shapes), with the
//! device's measurements and aggregated data.
use crate::accounts::drf as accounts;
use crate::devices::drf_http as devices;
use crate::measurements::http as measurements;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accounts::obtain))
        .routes(routes!(accounts::refresh_pair))
        .routes(routes!(accounts::verify))
        .routes(routes!(devices::list, devices::create))
        .routes(routes!(
            devices::retrieve,
            devices::replace,
            devices::partial_update,
            devices::destroy
        ))
        .routes(routes!(measurements::create))
        .routes(routes!(measurements::aggregated_data))
}
