//! Seed 003 (KooDTX) and seed 004 (simplejwt) login doors.

use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::json;

fn koodtx_user(name: &str, device: &str) -> serde_json::Value {
    json!({"username": name, "email": format!("{name}@example.com"), "password": "password123", "device_id": device})
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn koodtx_register_login_refresh_me(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = client
        .post("/api/auth/register", None, koodtx_user("kim", "dev-1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let user = &r.body["user"];
    assert_eq!(user["username"], "kim");
    assert_eq!(user["device_id"], "dev-1");
    assert_eq!(user["is_active"], true);
    for key in ["id", "email", "created_at", "updated_at"] {
        assert!(!user[key].is_null(), "{key}");
    }
    assert!(r.text.find("password").is_none());

    let missing = client
        .post("/api/auth/register", None, json!({"username": "x"}))
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.body.clone()),
        (400, json!({"error": "Missing required fields"}))
    );
    let mut dup = koodtx_user("kim", "dev-2");
    dup["email"] = json!("other@example.com");
    let d = client.post("/api/auth/register", None, dup).await;
    assert_eq!(
        (d.status.as_u16(), d.body.clone()),
        (400, json!({"error": "Username already exists"}))
    );
    let mut dup = koodtx_user("lee", "dev-2");
    dup["email"] = json!("kim@example.com");
    let d = client.post("/api/auth/register", None, dup).await;
    assert_eq!(d.body, json!({"error": "Email already exists"}));
    let d = client
        .post("/api/auth/register", None, koodtx_user("park", "dev-1"))
        .await;
    assert_eq!(
        (d.status.as_u16(), d.body.clone()),
        (400, json!({"error": "Device ID already exists"}))
    );

    let m = client
        .post("/api/auth/login", None, json!({"username": "kim"}))
        .await;
    assert_eq!(
        (m.status.as_u16(), m.body.clone()),
        (400, json!({"error": "Missing username or password"}))
    );
    let w = client
        .post(
            "/api/auth/login",
            None,
            json!({"username": "kim", "password": "bad-password"}),
        )
        .await;
    assert_eq!(
        (w.status.as_u16(), w.body.clone()),
        (401, json!({"error": "Invalid username or password"}))
    );
    let ok = client
        .post(
            "/api/auth/login",
            None,
            json!({"username": "kim", "password": "password123"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["user"]["username"], "kim");
    let access = ok.body["access_token"].as_str().unwrap();
    let refresh = ok.body["refresh_token"].as_str().unwrap();

    // Refresh does not rotate: the same refresh token works twice.
    for _ in 0..2 {
        let n = client
            .post("/api/auth/refresh", Some(refresh), json!(null))
            .await;
        assert_eq!(n.status, 200);
        assert_eq!(n.body.as_object().unwrap().len(), 1);
        assert!(n.body["access_token"].is_string());
    }
    let wrong = client
        .post("/api/auth/refresh", Some(access), json!(null))
        .await;
    assert_eq!(wrong.status, 422);
    let none = client.post("/api/auth/refresh", None, json!(null)).await;
    assert_eq!(
        (none.status.as_u16(), none.body.clone()),
        (401, json!({"msg": "Missing Authorization Header"}))
    );

    let me = client.get("/api/auth/me", Some(access)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], "kim@example.com");
    assert!(me.text.find("password").is_none());
    let anon = client.get("/api/auth/me", None).await;
    assert_eq!(
        (anon.status.as_u16(), anon.body.clone()),
        (401, json!({"msg": "Missing Authorization Header"}))
    );
    assert_eq!(
        client.get("/api/auth/me", Some("garbage")).await.status,
        422
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn simplejwt_obtain_refresh_verify(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    testing::account(&state, "drf@example.com", Role::Manager).await;
    let client = TestClient::new(state);
    let bad = client
        .post(
            "/api/token/",
            None,
            json!({"username": "drf@example.com", "password": "wrong-pass"}),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.body,
        json!({"detail": "No active account found with the given credentials"})
    );
    let missing = client
        .post("/api/token/", None, json!({"username": "drf@example.com"}))
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.body.clone()),
        (400, json!({"password": ["This field is required."]}))
    );
    let ok = client
        .post(
            "/api/token/",
            None,
            json!({"username": "drf@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let refresh = ok.body["refresh"].as_str().unwrap().to_owned();
    let access = ok.body["access"].as_str().unwrap().to_owned();

    let v = client
        .post("/api/token/verify/", None, json!({"token": access}))
        .await;
    assert_eq!((v.status.as_u16(), v.body.clone()), (200, json!({})));
    let v = client
        .post("/api/token/verify/", None, json!({"token": "x.y.z"}))
        .await;
    assert_eq!(v.status, 401);
    assert_eq!(
        v.body,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
    );

    let r = client
        .post("/api/token/refresh/", None, json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["access"].is_string() && r.body["refresh"].is_string());
    let again = client
        .post("/api/token/refresh/", None, json!({"refresh": refresh}))
        .await;
    assert_eq!(again.status, 401, "rotated token cannot be reused");
    let next = client
        .post(
            "/api/token/refresh/",
            None,
            json!({"refresh": r.body["refresh"]}),
        )
        .await;
    assert_eq!(next.status, 401, "reuse revoked the family");

    // Any namespace accepts any door's access token.
    assert_eq!(
        client.get("/api/v1/users/me", Some(&access)).await.status,
        200
    );
}
