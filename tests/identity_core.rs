//! Seed 002 doors and users API: tokens, rotation, throttling, RBAC.

use fleetstream::config::Config;
use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::json;

async fn register(client: &TestClient, email: &str) -> testing::TestResponse {
    client
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": email, "password": "password123", "full_name": "Hong"}),
        )
        .await
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn register_login_refresh_logout(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = register(&client, "a@example.com").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["token_type"], "bearer");
    let dup = register(&client, "A@Example.com").await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body, json!({"detail": "Email already registered"}));
    let short = client
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "b@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(short.status, 422);
    assert_eq!(short.body["detail"][0]["loc"], json!(["body", "password"]));
    let missing = client
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "b@example.com"}),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["detail"][0]["type"], "missing");

    let wrong = client
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let login = client
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(login.status, 200);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();

    let me = client.get("/api/v1/users/me", Some(&access)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], "a@example.com");
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["full_name"], "Hong");

    // Rotation: the new pair works, the old refresh token is spent.
    let rotated = client
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(rotated.status, 200);
    let refresh2 = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);

    // Reuse of the rotated token revokes the whole family: refresh2 dies too.
    let reuse = client
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(reuse.status, 401);
    assert_eq!(reuse.body, json!({"detail": "Invalid refresh token"}));
    let after = client
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh2}),
        )
        .await;
    assert_eq!(after.status, 401, "family revoked on reuse");

    // Logout revokes every refresh token of the account.
    let l2 = client
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a@example.com", "password": "password123"}),
        )
        .await;
    let r3 = l2.body["refresh_token"].as_str().unwrap().to_owned();
    let out = client
        .post("/api/v1/auth/logout", Some(&access), json!(null))
        .await;
    assert_eq!(out.status, 204);
    let dead = client
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r3}))
        .await;
    assert_eq!(dead.status, 401);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn refresh_as_access_and_alg_none_are_refused(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = register(&client, "a@example.com").await;
    let refresh = r.body["refresh_token"].as_str().unwrap();
    let as_access = client.get("/api/v1/users/me", Some(refresh)).await;
    assert_eq!(as_access.status, 401);
    assert_eq!(
        as_access.body,
        json!({"detail": "Could not validate credentials"})
    );

    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let access = r.body["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        payload
    );
    let refused = client.get("/api/v1/users/me", Some(&none)).await;
    assert_eq!(refused.status, 401);
    let hs512 = format!(
        "{}.{}.{}",
        b64.encode(br#"{"alg":"HS512","typ":"JWT"}"#),
        payload,
        access.split('.').nth(2).unwrap()
    );
    assert_eq!(
        client.get("/api/v1/users/me", Some(&hs512)).await.status,
        401
    );
    assert_eq!(
        client.get("/api/v1/users/me", None).await.body,
        json!({"detail": "Not authenticated"})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn deactivated_account_live_access_token_is_refused(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let client = TestClient::new(state);
    assert_eq!(
        client
            .get("/api/v1/users/me", Some(&user.token))
            .await
            .status,
        200
    );
    let off = client
        .request(
            "PATCH",
            &format!("/api/v1/users/{}", user.id),
            Some(&admin.token),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.body["is_active"], false);
    let me = client.get("/api/v1/users/me", Some(&user.token)).await;
    assert_eq!(me.status, 401);
    let login = client
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "u@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(login.status, 401);
    // Soft delete: 204, then gone.
    let del = client
        .request(
            "DELETE",
            &format!("/api/v1/users/{}", user.id),
            Some(&admin.token),
            json!(null),
        )
        .await;
    assert_eq!(del.status, 204);
    let gone = client
        .get(&format!("/api/v1/users/{}", user.id), Some(&admin.token))
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body, json!({"detail": "User not found"}));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn repeated_failed_logins_get_429_even_with_the_right_password(pool: sqlx::PgPool) {
    let mut config = Config::for_tests("postgres://unused");
    config.login_failures_per_account = 3;
    let state = fleetstream::state::AppState::new(pool, config, None);
    testing::account(&state, "t@example.com", Role::User).await;
    let client = TestClient::new(state);
    let attempt = |password: &'static str| {
        let client = &client;
        async move {
            client
                .post(
                    "/api/v1/auth/login",
                    None,
                    json!({"email": "t@example.com", "password": password}),
                )
                .await
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong-password").await.status, 401);
    }
    let throttled = attempt("password123").await;
    assert_eq!(throttled.status, 429);
    assert_eq!(
        throttled.body,
        json!({"detail": "Too many failed login attempts"})
    );
    let retry: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn successful_logins_do_not_count(pool: sqlx::PgPool) {
    let mut config = Config::for_tests("postgres://unused");
    config.login_failures_per_account = 2;
    let state = fleetstream::state::AppState::new(pool, config, None);
    testing::account(&state, "t@example.com", Role::User).await;
    let client = TestClient::new(state);
    for _ in 0..4 {
        let ok = client
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": "t@example.com", "password": "password123"}),
            )
            .await;
        assert_eq!(ok.status, 200);
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn concurrent_registrations_of_one_email_yield_exactly_one_201(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool.clone()));
    let (a, b) = tokio::join!(
        register(&client, "race@example.com"),
        register(&client, "RACE@example.com")
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn patch_me_cannot_change_role_or_activity(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let u = testing::account(&state, "u@example.com", Role::User).await;
    let client = TestClient::new(state);
    for body in [
        json!({"role": "admin", "full_name": "X"}),
        json!({"is_active": false}),
    ] {
        let r = client
            .request("PATCH", "/api/v1/users/me", Some(&u.token), body)
            .await;
        assert_eq!(r.status, 403);
    }
    let me = client.get("/api/v1/users/me", Some(&u.token)).await;
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["full_name"], serde_json::Value::Null);
    let ok = client
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&u.token),
            json!({"full_name": "Kim", "phone": "010-9999-8888"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["full_name"], "Kim");
    assert_eq!(ok.body["phone"], "010-9999-8888");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn rbac_matrix_over_the_users_endpoints(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let sup = testing::account(&state, "sup@example.com", Role::Superadmin).await;
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let manager = testing::account(&state, "mgr@example.com", Role::Manager).await;
    let user = testing::account(&state, "user@example.com", Role::User).await;
    let client = TestClient::new(state);

    for (who, allowed) in [
        (&user, false),
        (&manager, false),
        (&admin, true),
        (&sup, true),
    ] {
        let t = Some(who.token.as_str());
        let expect = if allowed { 200 } else { 403 };
        let list = client.get("/api/v1/users?page=1&size=2", t).await;
        assert_eq!(list.status, expect, "{} list", who.email);
        if allowed {
            // 4 seeded accounts plus one created by each earlier allowed caller.
            let total = list.body["total"].as_i64().unwrap();
            assert!(total == 4 || total == 5, "{total}");
            assert_eq!(list.body["pages"], (total + 1) / 2);
            assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
        } else {
            assert_eq!(list.body, json!({"detail": "Not enough permissions"}));
        }
        assert_eq!(
            client
                .get(&format!("/api/v1/users/{}", user.id), t)
                .await
                .status,
            expect
        );
        let patch = client
            .request(
                "PATCH",
                &format!("/api/v1/users/{}", user.id),
                t,
                json!({"organization": who.email}),
            )
            .await;
        assert_eq!(patch.status, expect, "{} patch", who.email);
        let create = client
            .post("/api/v1/users", t, json!({"email": format!("new-{}", who.email), "password": "password123", "role": "manager"}))
            .await;
        assert_eq!(
            create.status,
            if allowed { 201 } else { 403 },
            "{} create",
            who.email
        );
        if allowed {
            assert_eq!(create.body["role"], "manager");
        }
    }
    // Only a superadmin grants admin or touches a superadmin.
    let grant = |t: &str| json!({"email": format!("adm-{t}@example.com"), "password": "password123", "role": "admin"});
    assert_eq!(
        client
            .post("/api/v1/users", Some(&admin.token), grant("a"))
            .await
            .status,
        403
    );
    assert_eq!(
        client
            .post("/api/v1/users", Some(&sup.token), grant("s"))
            .await
            .status,
        201
    );
    let promote = client
        .request(
            "PATCH",
            &format!("/api/v1/users/{}", manager.id),
            Some(&admin.token),
            json!({"role": "superadmin"}),
        )
        .await;
    assert_eq!(promote.status, 403);
    assert_eq!(
        client
            .get(&format!("/api/v1/users/{}", manager.id), Some(&sup.token))
            .await
            .body["role"],
        "manager"
    );
    let touch = client
        .request(
            "PATCH",
            &format!("/api/v1/users/{}", sup.id),
            Some(&admin.token),
            json!({"full_name": "x"}),
        )
        .await;
    assert_eq!(touch.status, 403);
    let del = client
        .request(
            "DELETE",
            &format!("/api/v1/users/{}", sup.id),
            Some(&admin.token),
            json!(null),
        )
        .await;
    assert_eq!(del.status, 403);
    let by_sup = client
        .request(
            "PATCH",
            &format!("/api/v1/users/{}", manager.id),
            Some(&sup.token),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(by_sup.status, 200);
    assert_eq!(by_sup.body["role"], "admin");
    // Delete: a user 403 (the manager is an admin by now), admin 204.
    assert_eq!(
        client
            .request(
                "DELETE",
                &format!("/api/v1/users/{}", user.id),
                Some(&user.token),
                json!(null)
            )
            .await
            .status,
        403
    );
    assert_eq!(
        client
            .request(
                "DELETE",
                &format!("/api/v1/users/{}", user.id),
                Some(&admin.token),
                json!(null)
            )
            .await
            .status,
        204
    );
    assert_eq!(
        client
            .get("/api/v1/users?size=101", Some(&admin.token))
            .await
            .status,
        422
    );
}
