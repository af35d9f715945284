//! Seeds 000 and 001: the Addnox/Lux therapy app under `/api/v1|v2/{addnox,lux}` (FastAPI shapes).
use crate::accounts::nueyne as accounts;
use crate::app::AppState;
use axum::routing::{get, patch, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for app in ["addnox", "lux"] {
        let auth = format!("/api/v1/{app}/auth");
        let user = format!("/api/v1/{app}/user");
        router = router
            .route(&format!("{auth}/email/signin"), post(accounts::signin))
            .route(
                &format!("{auth}/refresh-token"),
                post(accounts::refresh_token),
            )
            .route(
                &format!("{auth}/send-sms-auth"),
                post(accounts::send_sms_auth),
            )
            .route(
                &format!("{auth}/phone-number-validation"),
                post(accounts::phone_number_validation),
            )
            .route(
                &format!("{auth}/email/signup"),
                post(accounts::email_signup),
            )
            .route(&format!("{user}/me"), get(accounts::me))
            .route(
                &format!("{user}/root-user"),
                patch(accounts::patch_root_user).delete(accounts::delete_root_user),
            )
            .route(&format!("{user}/policy"), patch(accounts::patch_policy))
            .route(
                &format!("{user}/push/set-token"),
                post(accounts::set_push_token),
            )
            .route(
                &format!("{user}/change-phone"),
                post(accounts::change_phone),
            )
            .route(
                &format!("{user}/notification"),
                patch(accounts::patch_notification),
            );
    }
    router
}
