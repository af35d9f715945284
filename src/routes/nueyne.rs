//! Seeds 000 and 001: the Addnox/Lux therapy app under `/api/v1|v2/{app}` (FastAPI shapes).
//! Both apps share every handler, so `{app}` is a path parameter (`addnox` or `lux`); any other
//! value is an unknown route.
use crate::accounts::nueyne as accounts;
use crate::http::{ApiError, Namespace};
use crate::state::AppState;
use crate::therapy::http as therapy;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Which app's namespace; both serve the same operations.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Addnox,
    Lux,
}

/// The `{app}` path parameter of every nueyne operation.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppParam {
    #[param(inline)]
    pub app: App,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accounts::signin))
        .routes(routes!(accounts::refresh_token))
        .routes(routes!(accounts::send_sms_auth))
        .routes(routes!(accounts::phone_number_validation))
        .routes(routes!(accounts::email_signup))
        .routes(routes!(accounts::me))
        .routes(routes!(
            accounts::patch_root_user,
            accounts::delete_root_user
        ))
        .routes(routes!(accounts::patch_policy))
        .routes(routes!(accounts::set_push_token))
        .routes(routes!(accounts::change_phone))
        .routes(routes!(accounts::patch_notification))
        .routes(routes!(therapy::create_real_user))
        .routes(routes!(therapy::create_real_user_v2))
        .routes(routes!(therapy::get_real_user, therapy::patch_real_user))
        .routes(routes!(therapy::update_real_user))
        .routes(routes!(therapy::delete_real_user))
        .routes(routes!(therapy::child_device))
        .routes(routes!(therapy::get_all_device))
        .routes(routes!(therapy::set_my_device))
        .routes(routes!(therapy::un_connect))
        .routes(routes!(therapy::check_device))
        .routes(routes!(therapy::update_alias))
        .routes(routes!(therapy::movement))
        .routes(routes!(therapy::chart_recent))
        .routes(routes!(therapy::devlog_v2))
        // Addnox v1 devlog takes the bare array; the Lux app sends the v2 `{log_arrays}` body.
        .routes(routes!(therapy::devlog_v1_addnox))
        .routes(routes!(therapy::devlog_v1_lux))
        .route_layer(axum::middleware::from_fn(known_app))
}

/// `/api/v1/{app}/…` with an app other than addnox or lux is not one of these routes.
async fn known_app(req: Request, next: Next) -> Response {
    let app = req.uri().path().split('/').nth(3).unwrap_or_default();
    if matches!(app, "addnox" | "lux") {
        next.run(req).await
    } else {
        ApiError::not_found(Namespace::of_uri(req.uri())).into_response()
    }
}
