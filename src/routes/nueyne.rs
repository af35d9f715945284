//! Seeds 000 and 001: the Addnox/Lux therapy app under `/api/v1|v2/{addnox,lux}` (FastAPI shapes).
use crate::accounts::nueyne as accounts;
use crate::state::AppState;
use crate::therapy::http as therapy;
use axum::routing::{delete, get, patch, post};
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
    for app in ["addnox", "lux"] {
        let v1 = format!("/api/v1/{app}");
        router = router
            .route(
                &format!("{v1}/user/create-real-user"),
                post(therapy::create_real_user),
            )
            .route(
                &format!("/api/v2/{app}/user/create-real-user"),
                post(therapy::create_real_user),
            )
            .route(
                &format!("{v1}/user/real-user/{{id}}"),
                get(therapy::get_real_user).patch(therapy::patch_real_user),
            )
            .route(
                &format!("{v1}/user/update-real-user"),
                patch(therapy::update_real_user),
            )
            .route(
                &format!("{v1}/user/delete-real-user"),
                delete(therapy::delete_real_user),
            )
            .route(
                &format!("{v1}/device/child-device"),
                get(therapy::child_device),
            )
            .route(
                &format!("{v1}/device/get-all-device"),
                get(therapy::get_all_device),
            )
            .route(
                &format!("{v1}/device/set-my-device"),
                post(therapy::set_my_device),
            )
            .route(
                &format!("{v1}/device/un-connect"),
                patch(therapy::un_connect),
            )
            .route(
                &format!("{v1}/device/check-device"),
                get(therapy::check_device),
            )
            .route(
                &format!("{v1}/device/update-alias"),
                patch(therapy::update_alias),
            )
            .route(&format!("{v1}/device/movement"), post(therapy::movement))
            .route(&format!("{v1}/chart/recent"), get(therapy::chart_recent))
            .route(
                &format!("/api/v2/{app}/device/devlog"),
                post(therapy::devlog_v2),
            );
    }
    // Addnox v1 devlog takes the bare array; the Lux app sends the v2 `{log_arrays}` body.
    router
        .route("/api/v1/addnox/device/devlog", post(therapy::devlog_v1))
        .route("/api/v1/lux/device/devlog", post(therapy::devlog_v2))
}
