//! Gaps found by a black-box sweep of the seeds (issue 13), each tried as that seed's client
//! would: exact status codes, bodies and headers.

use fleetstream::testing::{self, TestClient, TestResponse};
use fleetstream_events::Role;
use serde_json::{json, Value};

fn pair(r: &TestResponse) -> (u16, Value) {
    (r.status.as_u16(), r.body.clone())
}

fn content_type(r: &TestResponse) -> &str {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Seed 001 shows `register_type: "E"` for an account that signed up with an email.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn email_signups_have_register_type_e(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let core = client
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "core@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(core.status, 201, "{}", core.text);
    let token = core.body["access_token"].as_str().unwrap().to_owned();
    for app in ["lux", "addnox"] {
        let me = client
            .get(&format!("/api/v1/{app}/user/me"), Some(&token))
            .await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["register_type"], "E", "{app}");
        let patched = client
            .request(
                "PATCH",
                &format!("/api/v1/{app}/user/root-user"),
                Some(&token),
                json!({"first_name": "James"}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.body["register_type"], "E", "{app}");
    }
    // The KooDTX door signs up with an email too.
    let koodtx = client
        .post(
            "/api/auth/register",
            None,
            json!({"username": "kd", "email": "kd@example.com", "password": "password123",
                   "device_id": "dev-1"}),
        )
        .await;
    assert_eq!(koodtx.status, 201, "{}", koodtx.text);
    let me = client
        .get("/api/v1/lux/user/me", koodtx.body["access_token"].as_str())
        .await;
    assert_eq!(me.body["register_type"], "E");
}

/// A withdrawn account's unexpired token: seed 001 answers 401 `User is Deleted` on the
/// Lux/Addnox endpoints; the other namespaces keep their own "unusable token" answers.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_withdrawn_accounts_token_answers_user_is_deleted(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let user = testing::account(&state, "gone@example.com", Role::User).await;
    let other = testing::account(&state, "inactive@example.com", Role::User).await;
    let w = client
        .request(
            "DELETE",
            "/api/v1/addnox/user/root-user",
            Some(&user.token),
            Value::Null,
        )
        .await;
    assert_eq!(
        pair(&w),
        (
            200,
            json!({"statusCode": 200, "message": "Root user deleted"})
        )
    );
    let deleted = (401, json!({"detail": "User is Deleted"}));
    for path in [
        "/api/v1/lux/user/me",
        "/api/v1/addnox/user/me",
        "/api/v1/lux/device/get-all-device",
    ] {
        let r = client.get(path, Some(&user.token)).await;
        assert_eq!(pair(&r), deleted, "{path}");
    }
    let r = client
        .request(
            "PATCH",
            "/api/v1/lux/user/root-user",
            Some(&user.token),
            json!({"first_name": "x"}),
        )
        .await;
    assert_eq!(pair(&r), deleted);
    let r = client.get("/api/v1/users/me", Some(&user.token)).await;
    assert_eq!(
        pair(&r),
        (401, json!({"detail": "Could not validate credentials"}))
    );
    let r = client.get("/api/auth/me", Some(&user.token)).await;
    assert_eq!(pair(&r), (401, json!({"msg": "User not found"})));

    // A deactivated (not deleted) account is still "Could not validate credentials".
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let r = client
        .request(
            "PATCH",
            &format!("/api/v1/users/{}", other.id),
            Some(&admin.token),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = client.get("/api/v1/lux/user/me", Some(&other.token)).await;
    assert_eq!(
        pair(&r),
        (401, json!({"detail": "Could not validate credentials"}))
    );
}

/// Seeds 000/001: unknown routes of their namespaces answer `Resource not found`.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn unknown_nueyne_routes_answer_resource_not_found(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let not_found = (404, json!({"detail": "Resource not found"}));
    for path in [
        "/api/v1/addnox/nope",
        "/api/v1/lux/user/nope",
        "/api/v2/lux/device/nope",
        "/api/v2/addnox",
        "/api/v1/lux/device/child-device/extra",
    ] {
        let r = client.get(path, Some(&user.token)).await;
        assert_eq!(pair(&r), not_found, "{path}");
        let r = client.get(path, None).await;
        assert_eq!(pair(&r), not_found, "{path} without a token");
    }
    // `{app}` is only addnox or lux: another value is a core path, and unknown there.
    let r = client.get("/api/v1/other/user/me", Some(&user.token)).await;
    assert_eq!(pair(&r), (404, json!({"detail": "Not Found"})));
    let r = client.get("/api/v1/lux/user/me", Some(&user.token)).await;
    assert_eq!(r.status, 200);
}

/// A path value that does not parse is answered in the namespace's JSON error shape.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn unparsable_path_parameters_answer_in_each_namespace_shape(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let int_parsing = |field: &str| {
        (
            422,
            json!({"detail": [{
                "loc": ["path", field],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing"
            }]}),
        )
    };
    for (method, path) in [
        ("GET", "/api/v1/devices/not-a-number"),
        ("PATCH", "/api/v1/devices/not-a-number"),
        ("DELETE", "/api/v1/devices/99999999999999999999"),
        ("GET", "/api/v1/devices/99999999999999999999"),
        ("GET", "/api/v1/users/abc"),
        ("GET", "/api/v1/lux/user/real-user/1%20OR%201=1"),
        ("PATCH", "/api/v1/addnox/user/real-user/-"),
    ] {
        let body = if method == "PATCH" {
            json!({"name": "x"})
        } else {
            Value::Null
        };
        let r = client.request(method, path, Some(&admin.token), body).await;
        assert_eq!(pair(&r), int_parsing("id"), "{method} {path}");
        assert_eq!(content_type(&r), "application/json", "{method} {path}");
    }
    // Django's `<int:pk>` does not match: DRF's 404.
    for (method, path) in [
        ("GET", "/api/devices/abc/"),
        ("PUT", "/api/devices/99999999999999999999/"),
        ("DELETE", "/api/devices/1%20OR%201=1/"),
    ] {
        let r = client
            .request(method, path, Some(&admin.token), Value::Null)
            .await;
        assert_eq!(
            pair(&r),
            (404, json!({"detail": "Not found."})),
            "{method} {path}"
        );
        assert_eq!(content_type(&r), "application/json");
    }
}

/// Seed 002 restricts device PATCH (manager+) and DELETE (admin+) by role: a plain user is
/// refused before any lookup, for devices it cannot see and ids that do not exist alike.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_plain_users_device_writes_answer_403_first(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let created = client
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "uid-1", "name": "Sensor"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    let forbidden = (403, json!({"detail": "Not enough permissions"}));
    for url in [
        format!("/api/v1/devices/{id}"),
        "/api/v1/devices/424242".into(),
    ] {
        let r = client
            .request("PATCH", &url, Some(&user.token), json!({"name": "Mine"}))
            .await;
        assert_eq!(pair(&r), forbidden, "PATCH {url}");
        let r = client
            .request("DELETE", &url, Some(&user.token), Value::Null)
            .await;
        assert_eq!(pair(&r), forbidden, "DELETE {url}");
    }
    // Nothing changed.
    let r = client
        .get(&format!("/api/v1/devices/{id}"), Some(&manager.token))
        .await;
    assert_eq!(r.body["name"], "Sensor");
    // A manager still gets 404 for an id that does not exist.
    let r = client
        .request(
            "PATCH",
            "/api/v1/devices/424242",
            Some(&manager.token),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(pair(&r), (404, json!({"detail": "Device not found"})));
}

/// Seed 004: PUT and PATCH can clear `description` back to null; leaving it out keeps it.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn drf_put_and_patch_can_clear_the_description(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let created = client
        .post(
            "/api/devices/",
            Some(&manager.token),
            json!({"name": "Sensor 01", "description": "ambient"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let url = format!("/api/devices/{}/", created.body["id"]);

    let r = client
        .request(
            "PATCH",
            &url,
            Some(&manager.token),
            json!({"name": "Sensor 02"}),
        )
        .await;
    assert_eq!(r.body["description"], "ambient", "absent leaves it");
    let r = client
        .request(
            "PATCH",
            &url,
            Some(&manager.token),
            json!({"description": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["name"], "Sensor 02");

    let r = client
        .request(
            "PUT",
            &url,
            Some(&manager.token),
            json!({"name": "Sensor 03", "description": "again"}),
        )
        .await;
    assert_eq!(r.body["description"], "again");
    let r = client
        .request(
            "PUT",
            &url,
            Some(&manager.token),
            json!({"name": "Sensor 03", "description": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["description"], Value::Null);
    let r = client.get(&url, Some(&manager.token)).await;
    assert_eq!(r.body["description"], Value::Null, "the read model agrees");

    // The seed 002 PATCH clears it the same way (the core reply does not show it).
    let id = created.body["id"].as_i64().unwrap();
    client
        .request(
            "PATCH",
            &url,
            Some(&manager.token),
            json!({"description": "x"}),
        )
        .await;
    let r = client
        .request(
            "PATCH",
            &format!("/api/v1/devices/{id}"),
            Some(&manager.token),
            json!({"description": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = client.get(&url, Some(&manager.token)).await;
    assert_eq!(r.body["description"], Value::Null);
}

/// Seed 004 paths without their trailing slash redirect as Django's APPEND_SLASH does.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn drf_paths_without_the_trailing_slash_redirect(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let location = |r: &TestResponse| {
        r.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let r = client.get("/api/devices", Some(&manager.token)).await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (301, "/api/devices/".into())
    );
    let r = client
        .get("/api/devices?page=2&page_size=5", Some(&manager.token))
        .await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (301, "/api/devices/?page=2&page_size=5".into())
    );
    let r = client.get("/api/devices/7", Some(&manager.token)).await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (301, "/api/devices/7/".into())
    );
    // Other methods keep their method and body: 308.
    let r = client
        .post(
            "/api/devices",
            Some(&manager.token),
            json!({"name": "Sensor"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (308, "/api/devices/".into())
    );
    let r = client
        .post("/api/token", None, json!({"username": "m@example.com"}))
        .await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (308, "/api/token/".into())
    );
    // Nothing was created by the redirected POST.
    let list = client.get("/api/devices/", Some(&manager.token)).await;
    assert_eq!(list.body["count"], 0);
    // A path that is not a route with the slash either stays a 404.
    let r = client.get("/api/devices/7/x/y", Some(&manager.token)).await;
    assert_eq!(pair(&r), (404, json!({"detail": "Not found."})));
}

/// A 405 keeps the router's `Allow` header and is in the namespace's shape.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn method_not_allowed_keeps_allow(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = client
        .request("PUT", "/api/v1/auth/login", None, json!({}))
        .await;
    assert_eq!(pair(&r), (405, json!({"detail": "Method Not Allowed"})));
    assert_eq!(r.headers.get("allow").unwrap(), "POST");
    let r = client
        .request("DELETE", "/api/sync/status", None, Value::Null)
        .await;
    assert_eq!(pair(&r), (405, json!({"error": "Method Not Allowed"})));
    assert!(r.headers.get("allow").is_some());
}

/// Found by schemathesis: input every namespace must refuse (or take) with a 4xx, never a 500.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn nul_characters_are_refused_in_each_namespace_shape(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let nul = |loc: &str| {
        (
            422,
            json!({"detail": [{"loc": [loc], "msg": "String should not contain the NUL character",
                   "type": "string_nul"}]}),
        )
    };
    let r = client
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "a\u{0}@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(pair(&r), nul("body"));
    let r = client
        .post_form(
            "/api/v1/lux/auth/email/signin",
            None,
            &[("username", "u\u{0}@example.com"), ("password", "x")],
        )
        .await;
    assert_eq!(pair(&r), nul("body"));
    let r = client
        .get(
            "/api/v1/lux/device/check-device?unique_id=a%00b",
            Some(&user.token),
        )
        .await;
    assert_eq!(pair(&r), nul("query"));
    let r = client
        .post(
            "/api/devices/",
            Some(&manager.token),
            json!({"name": "Sensor", "description": "a\u{0}"}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            400,
            json!({"body": ["String should not contain the NUL character"]})
        )
    );
    let r = client
        .post(
            "/api/auth/login",
            None,
            json!({"username": "a\u{0}", "password": "password123"}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (400, json!({"error": "Missing username or password"}))
    );
    // An escaped backslash before `u0000` is not a NUL.
    let r = client
        .post(
            "/api/devices/",
            Some(&manager.token),
            json!({"name": "Sensor", "description": "C:\\u0000"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["description"], "C:\\u0000");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_array_is_not_an_object_body(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let r = client
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&user.token),
            json!([null, null]),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            422,
            json!({"detail": [{"loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "type": "model_attributes_type"}]})
        )
    );
    let r = client
        .post("/api/devices/", Some(&manager.token), json!(["Sensor"]))
        .await;
    assert_eq!(
        pair(&r),
        (
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );
    // The v1 devlog takes a bare array, as its seed says.
    let r = client
        .post("/api/v1/addnox/device/devlog", Some(&user.token), json!([]))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// pydantic's lax mode takes `3.0` for an integer; so do the FastAPI namespaces.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn fastapi_namespaces_take_integral_floats_for_integers(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let r = client
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "uid-f", "name": "Sensor", "group_id": 7.0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["group_id"], 7);
    let r = client
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "uid-g", "name": "Sensor", "group_id": 7.5}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "group_id"]));
    let r = client
        .get("/api/v1/devices?group_id=7.0", Some(&manager.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 1);
    let r = client
        .get("/api/v1/devices?group_id=7.5", Some(&manager.token))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
}

/// The sign-up's phone token is checked before its body: no token is 401, whatever the body.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn signup_without_its_token_is_401_before_the_body(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = client
        .post("/api/v1/lux/auth/email/signup", None, json!({"email": 5}))
        .await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authenticated"})));
}

/// Optional consent flags may be sent as null (left as they are).
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn policy_flags_may_be_null(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let r = client
        .request(
            "PATCH",
            "/api/v1/lux/user/policy",
            Some(&user.token),
            json!({"is_push_agree": true, "is_marketing_agree": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_push_agree"], true);
    assert_eq!(r.body["is_marketing_agree"], false);
}

/// Withdrawing an account whose real user's device was deleted meanwhile (found by
/// schemathesis as a 500): the real user goes, there is no pairing left to release.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn withdrawal_after_the_paired_device_was_deleted(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let admin = testing::account(&state, "a@example.com", Role::Admin).await;
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let device = client
        .post(
            "/api/v1/devices",
            Some(&admin.token),
            json!({"device_uid": "uid-1", "name": "Sensor", "serial_code": "SL20401000",
                   "mac_id": "AA:BB:CC:DD:41:AD"}),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let created = client
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&user.token),
            json!({"first_name": "Kid", "last_name": "Kim", "birthdate": "20200101",
                   "gender": "F", "serial_code": "SL20401000", "mac_id": "41AD"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let r = client
        .request(
            "DELETE",
            &format!("/api/v1/devices/{}", device.body["id"]),
            Some(&admin.token),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = client
        .request(
            "DELETE",
            "/api/v1/lux/user/root-user",
            Some(&user.token),
            Value::Null,
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            200,
            json!({"statusCode": 200, "message": "Root user deleted"})
        )
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM patients WHERE root_user_id = $1")
        .bind(user.id)
        .fetch_one(state.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// Found by schemathesis: a page number past any offset was a 500 (overflow); it is an empty
/// page.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn huge_page_numbers_are_empty_pages(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let admin = testing::account(&state, "a@example.com", Role::Admin).await;
    for path in ["/api/v1/users", "/api/v1/devices"] {
        let r = client
            .get(
                &format!("{path}?page=9223372036854775807&size=100"),
                Some(&admin.token),
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["items"], json!([]), "{path}");
        assert_eq!(r.body["page"], i64::MAX, "{path}");
    }
}

/// Seed 002 `GET /system/info`: superadmins only; the configuration without secrets.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn system_info_is_for_superadmins(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let root = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let r = client.get("/api/v1/system/info", Some(&admin.token)).await;
    assert_eq!(pair(&r), (403, json!({"detail": "Not enough permissions"})));
    let r = client.get("/api/v1/system/info", None).await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authenticated"})));
    let r = client.get("/api/v1/system/info", Some(&root.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.body["access_token_ttl_secs"], 900);
    assert_eq!(r.body["postgres"], "ok");
    assert!(!r.text.contains("secret"), "{}", r.text);
}

/// Seed 002 shows device timestamps as UTC without an offset, like its users'.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn core_device_timestamps_have_the_seed_002_form(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let r = client
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "uid-t", "name": "Sensor"}),
        )
        .await;
    let created = r.body["created_at"].as_str().unwrap().to_owned();
    assert_eq!(created.len(), "2025-01-01T00:00:00".len(), "{created}");
    assert!(chrono::NaiveDateTime::parse_from_str(&created, "%Y-%m-%dT%H:%M:%S").is_ok());
    let me = client.get("/api/v1/users/me", Some(&manager.token)).await;
    assert_eq!(me.body["created_at"].as_str().unwrap().len(), created.len());
}

/// DRF names the refused method; FastAPI does not.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn drf_405_names_the_method(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let manager = testing::account(&state, "m@example.com", Role::Manager).await;
    let r = client
        .request("DELETE", "/api/devices/", Some(&manager.token), Value::Null)
        .await;
    assert_eq!(
        pair(&r),
        (405, json!({"detail": "Method \"DELETE\" not allowed."}))
    );
}

/// A panic is a 500 in the namespace's shape; seeds 000/001 spell their message out.
#[tokio::test]
async fn a_panic_is_a_500_in_the_namespace_shape() {
    use fleetstream::http::middleware::{panic_response, shape_panic};
    use tower::ServiceExt;
    async fn boom() -> &'static str {
        panic!("boom")
    }
    let app = axum::Router::new()
        .route("/api/v1/lux/user/boom", axum::routing::get(boom))
        .route("/api/sync/boom", axum::routing::get(boom))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn(shape_panic));
    for (path, body) in [
        (
            "/api/v1/lux/user/boom",
            json!({"detail": "Internal server error. Please try again later."}),
        ),
        ("/api/sync/boom", json!({"error": "Internal Server Error"})),
    ] {
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            body,
            "{path}"
        );
    }
}

/// FastAPI (Starlette) redirects a path one trailing slash away from a route with 307; Flask
/// routes without a slash do not match one.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn fastapi_paths_one_slash_away_redirect(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let user = testing::account(&state, "u@example.com", Role::User).await;
    let location = |r: &TestResponse| {
        r.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let r = client.get("/api/v1/users/me/", Some(&user.token)).await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (307, "/api/v1/users/me".into())
    );
    let r = client
        .get("/api/v1/devices/?page=2", Some(&user.token))
        .await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (307, "/api/v1/devices?page=2".into())
    );
    let r = client
        .post("/api/v1/lux/auth/refresh-token/", None, json!({}))
        .await;
    assert_eq!(
        (r.status.as_u16(), location(&r)),
        (307, "/api/v1/lux/auth/refresh-token".into())
    );
    let r = client.get("/api/v1/nope/", Some(&user.token)).await;
    assert_eq!(pair(&r), (404, json!({"detail": "Not Found"})));
    let r = client.get("/api/sync/status/", Some(&user.token)).await;
    assert_eq!(pair(&r), (404, json!({"error": "Not found"})));
}

/// A streamed body over the limit (no Content-Length) is the namespace's 413, also on the
/// doors that read their body themselves.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn streamed_oversized_bodies_are_413_in_the_namespace_shape(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let big = vec![b' '; 3 * 1024 * 1024];
    let r = client
        .raw(
            "POST",
            "/api/auth/register",
            None,
            "application/json",
            big.clone(),
        )
        .await;
    assert_eq!(
        pair(&r),
        (413, json!({"error": "Request body is larger than 2 MiB"}))
    );
    let r = client
        .raw("POST", "/api/v1/auth/login", None, "application/json", big)
        .await;
    assert_eq!(
        pair(&r),
        (413, json!({"detail": "Request body is larger than 2 MiB"}))
    );
}

/// (decision) An admin cannot delete, deactivate or demote itself through `/users/{id}`, as it
/// cannot through `/users/me`; nothing changes.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn admins_cannot_lock_themselves_out(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let client = TestClient::new(state.clone());
    let root = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let url = format!("/api/v1/users/{}", root.id);
    let r = client
        .request("DELETE", &url, Some(&root.token), Value::Null)
        .await;
    assert_eq!(
        pair(&r),
        (403, json!({"detail": "You cannot delete yourself"}))
    );
    for body in [json!({"is_active": false}), json!({"role": "user"})] {
        let r = client
            .request("PATCH", &url, Some(&root.token), body.clone())
            .await;
        assert_eq!(
            pair(&r),
            (
                403,
                json!({"detail": "You cannot change your own role or active status"})
            ),
            "{body}"
        );
    }
    // Restating its own role, or other fields, is fine.
    let r = client
        .request(
            "PATCH",
            &url,
            Some(&root.token),
            json!({"role": "superadmin", "full_name": "Root"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = client.get("/api/v1/users/me", Some(&root.token)).await;
    assert_eq!(me.body["role"], "superadmin");
    assert_eq!(me.body["is_active"], true);
}
