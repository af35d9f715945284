//! Nueyne doors (signin, refresh-token, SMS signup) and the seed 001 root-user API.

use fleetstream::testing::{self, TestClient};
use serde_json::json;

async fn last_code(pool: &sqlx::PgPool, phone: &str) -> String {
    sqlx::query_scalar(
        "SELECT code FROM outbound_messages WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn sms_signup_signin_root_user_and_withdrawal(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool.clone()));
    let base = "/api/v1/lux/auth";
    let phone = "+821012345678";
    let bad = client
        .post(
            &format!("{base}/send-sms-auth"),
            None,
            json!({"phone": "010-1234"}),
        )
        .await;
    assert_eq!(
        (bad.status.as_u16(), bad.body.clone()),
        (400, json!({"detail": "Phone number is invalid"}))
    );
    let sent = client
        .post(
            &format!("{base}/send-sms-auth"),
            None,
            json!({"phone": phone}),
        )
        .await;
    assert_eq!(
        (sent.status.as_u16(), sent.body.clone()),
        (200, json!(true))
    );
    let wrong = client
        .post(
            &format!("{base}/phone-number-validation"),
            None,
            json!({"phone": phone, "validnum": "xxxxxx"}),
        )
        .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.body.clone()),
        (400, json!({"detail": "Validation code is invalid"}))
    );
    let code = last_code(&pool, phone).await;
    let valid = client
        .post(
            &format!("{base}/phone-number-validation"),
            None,
            json!({"phone": phone, "validnum": code}),
        )
        .await;
    assert_eq!(valid.status, 200);
    let valid_token = valid.body["valid_token"].as_str().unwrap().to_owned();
    // A valid_token is not an access token.
    assert_eq!(
        client
            .get("/api/v1/lux/user/me", Some(&valid_token))
            .await
            .status,
        401
    );

    let signup = json!({"email": "lux@example.com", "password": "password123", "first_name": "test", "last_name": "kim",
        "birthdate": "20240722", "gender": "M", "phone": phone, "register_type": "E", "is_push_agree": false,
        "is_marketing_agree": true, "national_code": "KR"});
    let missing = client
        .post(
            &format!("{base}/email/signup"),
            Some(&valid_token),
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["detail"][0]["type"], "missing");
    let s = client
        .post(
            &format!("{base}/email/signup"),
            Some(&valid_token),
            signup.clone(),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["token_type"], "bearer");
    assert_eq!(s.body["expires_in"], 900);
    let dup = client
        .post(&format!("{base}/email/signup"), Some(&valid_token), signup)
        .await;
    assert_eq!(
        (dup.status.as_u16(), dup.body.clone()),
        (409, json!({"detail": "Same email is already registered"}))
    );
    let taken = client
        .post(
            &format!("{base}/send-sms-auth"),
            None,
            json!({"phone": phone}),
        )
        .await;
    assert_eq!(
        (taken.status.as_u16(), taken.body.clone()),
        (409, json!({"detail": "Phone number is already registered"}))
    );

    let signin = |u: &'static str, p: &'static str| {
        let client = &client;
        async move {
            client
                .post_form(
                    "/api/v1/addnox/auth/email/signin",
                    None,
                    &[("username", u), ("password", p)],
                )
                .await
        }
    };
    let nf = signin("nobody@example.com", "password123").await;
    assert_eq!(
        (nf.status.as_u16(), nf.body.clone()),
        (404, json!({"detail": "User not found"}))
    );
    let bad = signin("lux@example.com", "wrong-password").await;
    assert_eq!(
        (bad.status.as_u16(), bad.body.clone()),
        (400, json!({"detail": "Password is invalid"}))
    );
    let ok = signin("lux@example.com", "password123").await;
    assert_eq!(ok.status, 200);
    let access = ok.body["access_token"].as_str().unwrap().to_owned();
    let refresh = ok.body["refresh_token"].as_str().unwrap().to_owned();
    let rotated = client
        .post(
            "/api/v1/lux/auth/refresh-token",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(rotated.status, 200);
    assert_eq!(rotated.body["id"], ok.body["id"]);
    let reused = client
        .post(
            "/api/v1/lux/auth/refresh-token",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(
        (reused.status.as_u16(), reused.body.clone()),
        (401, json!({"detail": "Refresh token is not valid"}))
    );

    let me = client.get("/api/v1/lux/user/me", Some(&access)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["phone"], phone);
    assert_eq!(me.body["is_phone_number_checked"], true);
    assert_eq!(me.body["need_personal_info_update"], false);
    assert_eq!(me.body["need_to_pwd_change"], false);

    let p = client
        .request(
            "PATCH",
            "/api/v1/lux/user/root-user",
            Some(&access),
            json!({"first_name": "james", "gender": "F"}),
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.body["first_name"], "james");
    assert_eq!(p.body["gender"], "F");

    let token = "fcm-token_ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123";
    let denied = client
        .post(
            "/api/v1/lux/user/push/set-token",
            Some(&access),
            json!({"token": token}),
        )
        .await;
    assert_eq!(
        (denied.status.as_u16(), denied.body.clone()),
        (400, json!({"detail": "Push permisson denied"}))
    );
    let pol = client
        .request(
            "PATCH",
            "/api/v1/lux/user/policy",
            Some(&access),
            json!({"is_push_agree": true}),
        )
        .await;
    assert_eq!(pol.status, 200);
    assert_eq!(pol.body["is_push_agree"], true);
    assert!(pol.body["push_agree_date"].is_string());
    let malformed = client
        .post(
            "/api/v1/lux/user/push/set-token",
            Some(&access),
            json!({"token": ""}),
        )
        .await;
    assert_eq!(
        (malformed.status.as_u16(), malformed.body.clone()),
        (409, json!({"detail": "User push token update failed"}))
    );
    assert_eq!(
        client
            .post(
                "/api/v1/lux/user/push/set-token",
                Some(&access),
                json!({"token": token})
            )
            .await
            .status,
        200
    );

    let n = client.request("PATCH", "/api/v1/addnox/user/notification", Some(&access),
        json!({"is_device_muted": 1, "is_device_alim_talk_enabled": 0, "is_basestation_alert_enabled": true})).await;
    assert_eq!(n.status, 200);
    assert_eq!(
        n.body,
        json!({"is_device_muted": 1, "is_device_alim_talk_enabled": 0, "is_basestation_alert_enabled": 1})
    );
    let n_missing = client
        .request(
            "PATCH",
            "/api/v1/addnox/user/notification",
            Some(&access),
            json!({"is_device_muted": 1}),
        )
        .await;
    assert_eq!(n_missing.status, 422);

    // change-phone with a fresh code
    let new_phone = "+821099998888";
    client
        .post(
            &format!("{base}/send-sms-auth"),
            None,
            json!({"phone": new_phone}),
        )
        .await;
    let bad = client
        .post(
            "/api/v1/lux/user/change-phone",
            Some(&access),
            json!({"phone": new_phone, "validnum": "nope"}),
        )
        .await;
    assert_eq!(bad.body, json!({"detail": "Validation code is invalid"}));
    let code = last_code(&pool, new_phone).await;
    let ch = client
        .post(
            "/api/v1/lux/user/change-phone",
            Some(&access),
            json!({"phone": new_phone, "validnum": code}),
        )
        .await;
    assert_eq!(
        ch.body,
        json!({"statusCode": 200, "message": "Root user phone updated"})
    );

    // Withdrawal: tokens refused, signin says deleted.
    let w = client
        .request(
            "DELETE",
            "/api/v1/lux/user/root-user",
            Some(&access),
            json!(null),
        )
        .await;
    assert_eq!(
        w.body,
        json!({"statusCode": 200, "message": "Root user deleted"})
    );
    assert_eq!(
        client
            .get("/api/v1/lux/user/me", Some(&access))
            .await
            .status,
        401
    );
    let gone = signin("lux@example.com", "password123").await;
    assert_eq!(
        (gone.status.as_u16(), gone.body.clone()),
        (410, json!({"detail": "User is Deleted"}))
    );
    let r = client
        .post(
            "/api/v1/lux/auth/refresh-token",
            None,
            json!({"refresh_token": rotated.body["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn expired_sms_code_is_refused(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool.clone()));
    let phone = "+821055556666";
    client
        .post(
            "/api/v1/lux/auth/send-sms-auth",
            None,
            json!({"phone": phone}),
        )
        .await;
    sqlx::query("UPDATE outbound_messages SET created_at = created_at - interval '4 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    let code = last_code(&pool, phone).await;
    let r = client
        .post(
            "/api/v1/lux/auth/phone-number-validation",
            None,
            json!({"phone": phone, "validnum": code}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (400, json!({"detail": "Validation code is expired"}))
    );
}
