//! Device registry over HTTP: the seed 004 view under `/api/devices/`, the seed 002 list,
//! PATCH and soft DELETE under `/api/v1/devices`, concurrent registration, and the seed
//! 000/001 endpoints with another account's ids.

use fleetstream::app::AppState;
use fleetstream::testing::{self, TestClient, TestResponse};
use fleetstream_events::Role;
use serde_json::{json, Value};

struct Ctx {
    c: TestClient,
    state: AppState,
    manager: String,
    a: String,
    a_id: i64,
    b: String,
}

async fn setup(pool: sqlx::PgPool) -> Ctx {
    let state = testing::state(pool);
    let manager = testing::account(&state, "manager@example.com", Role::Manager).await;
    let a = testing::account(&state, "a@example.com", Role::User).await;
    let b = testing::account(&state, "b@example.com", Role::User).await;
    Ctx {
        c: TestClient::new(state.clone()),
        state,
        manager: manager.token,
        a: a.token,
        a_id: a.id,
        b: b.token,
    }
}

fn pair(r: &TestResponse) -> (u16, Value) {
    (r.status.as_u16(), r.body.clone())
}

fn not_found() -> (u16, Value) {
    (404, json!({"detail": "Not found."}))
}

fn forbidden() -> (u16, Value) {
    (
        403,
        json!({"detail": "You do not have permission to perform this action."}),
    )
}

async fn drf_device(ctx: &Ctx, name: &str) -> i64 {
    let r = ctx
        .c
        .post("/api/devices/", Some(&ctx.manager), json!({"name": name}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn core_device(ctx: &Ctx, body: Value) -> i64 {
    let r = ctx
        .c
        .post("/api/v1/devices", Some(&ctx.manager), body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// A GET with a Host header (the TestClient sends none).
async fn get_with_host(state: &AppState, path: &str, host: &str, token: &str) -> Value {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .uri(path)
        .header("host", host)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = fleetstream::app::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn drf_list_paginates_with_absolute_links_and_caps_page_size(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let mut ids = Vec::new();
    for i in 0..105 {
        ids.push(drf_device(&ctx, &format!("Sensor {i:03}")).await);
    }

    let first = get_with_host(
        &ctx.state,
        "/api/devices/",
        "fleet.example:8000",
        &ctx.manager,
    )
    .await;
    assert_eq!(first["count"], 105);
    assert_eq!(
        first["next"],
        "http://fleet.example:8000/api/devices/?page=2"
    );
    assert_eq!(first["previous"], Value::Null);
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert_eq!(results[0]["id"], ids[0]);
    let keys: Vec<&String> = results[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "description",
            "id",
            "name",
            "public_id",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(results[0]["name"], "Sensor 000");
    assert_eq!(results[0]["status"], "inactive");
    assert_eq!(results[0]["description"], Value::Null);

    let second = ctx.c.get("/api/devices/?page=2", Some(&ctx.manager)).await;
    assert_eq!(second.body["next"], "http://localhost/api/devices/?page=3");
    assert_eq!(second.body["previous"], "http://localhost/api/devices/");
    assert_eq!(second.body["results"][0]["id"], ids[20]);

    let third = ctx
        .c
        .get("/api/devices/?page_size=10&page=3", Some(&ctx.manager))
        .await;
    assert_eq!(third.body["results"].as_array().unwrap().len(), 10);
    assert_eq!(third.body["results"][0]["id"], ids[20]);
    assert_eq!(
        third.body["next"],
        "http://localhost/api/devices/?page=4&page_size=10"
    );
    assert_eq!(
        third.body["previous"],
        "http://localhost/api/devices/?page=2&page_size=10"
    );

    // page_size over 100 is capped at 100.
    let capped = ctx
        .c
        .get("/api/devices/?page_size=500", Some(&ctx.manager))
        .await;
    assert_eq!(capped.body["results"].as_array().unwrap().len(), 100);
    assert_eq!(
        capped.body["next"],
        "http://localhost/api/devices/?page=2&page_size=500"
    );
    let last = ctx
        .c
        .get("/api/devices/?page_size=500&page=2", Some(&ctx.manager))
        .await;
    assert_eq!(last.body["results"].as_array().unwrap().len(), 5);
    assert_eq!(last.body["next"], Value::Null);
    assert_eq!(
        last.body["previous"],
        "http://localhost/api/devices/?page_size=500"
    );

    let beyond = ctx.c.get("/api/devices/?page=99", Some(&ctx.manager)).await;
    assert_eq!(pair(&beyond), (404, json!({"detail": "Invalid page."})));

    let anonymous = ctx.c.get("/api/devices/", None).await;
    assert_eq!(
        pair(&anonymous),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn drf_visibility_owner_and_paired_patient_only(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let owned = core_device(
        &ctx,
        json!({"device_uid": "owned-1", "name": "Owned", "owner_id": ctx.a_id}),
    )
    .await;
    let paired = core_device(
        &ctx,
        json!({"device_uid": "paired-1", "name": "Paired", "serial_code": "SL20401000", "mac_id": "AA:BB:CC:DD:41:AD"}),
    )
    .await;
    let r = ctx
        .c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&ctx.b),
            json!({"first_name": "kid", "last_name": "", "birthdate": "20100101", "gender": "F",
                   "serial_code": "SL20401000", "mac_id": "41AD"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let r = ctx
        .c
        .get(&format!("/api/devices/{owned}/"), Some(&ctx.a))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "Owned");
    let r = ctx
        .c
        .get(&format!("/api/devices/{owned}/"), Some(&ctx.b))
        .await;
    assert_eq!(pair(&r), not_found());
    let r = ctx
        .c
        .get(&format!("/api/devices/{paired}/"), Some(&ctx.b))
        .await;
    assert_eq!(r.status, 200);
    let r = ctx
        .c
        .get(&format!("/api/devices/{paired}/"), Some(&ctx.a))
        .await;
    assert_eq!(pair(&r), not_found());
    let r = ctx.c.get("/api/devices/999999/", Some(&ctx.manager)).await;
    assert_eq!(pair(&r), not_found());
    let r = ctx.c.get("/api/devices/abc/", Some(&ctx.manager)).await;
    assert_eq!(pair(&r), not_found());

    let a_list = ctx.c.get("/api/devices/", Some(&ctx.a)).await;
    assert_eq!(a_list.body["count"], 1);
    assert_eq!(a_list.body["results"][0]["id"], owned);
    let b_list = ctx.c.get("/api/devices/", Some(&ctx.b)).await;
    assert_eq!(b_list.body["count"], 1);
    assert_eq!(b_list.body["results"][0]["id"], paired);
    let all = ctx.c.get("/api/devices/", Some(&ctx.manager)).await;
    assert_eq!(all.body["count"], 2);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn drf_writes_validate_and_are_for_managers(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let url = "/api/devices/";

    let r = ctx
        .c
        .post(url, Some(&ctx.a), json!({"name": "Sensor"}))
        .await;
    assert_eq!(pair(&r), forbidden());
    let r = ctx.c.post(url, None, json!({"name": "Sensor"})).await;
    assert_eq!(
        pair(&r),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );

    let r = ctx
        .c
        .post(url, Some(&ctx.manager), json!({"name": "  ab  "}))
        .await;
    assert_eq!(
        pair(&r),
        (
            400,
            json!({"name": ["Device name must be at least 3 characters long."]})
        )
    );
    let r = ctx
        .c
        .post(
            url,
            Some(&ctx.manager),
            json!({"name": "ab", "status": "broken"}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            400,
            json!({"name": ["Device name must be at least 3 characters long."],
                   "status": ["Status must be one of: active, inactive, maintenance, error"]})
        )
    );
    let r = ctx
        .c
        .post(url, Some(&ctx.manager), json!({"description": "no name"}))
        .await;
    assert_eq!(
        pair(&r),
        (400, json!({"name": ["This field is required."]}))
    );
    let r = ctx.c.post(url, Some(&ctx.manager), Value::Null).await;
    assert_eq!(
        pair(&r),
        (400, json!({"name": ["This field is required."]}))
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(ctx.state.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);

    // Read-only fields are ignored; the name is trimmed; status defaults to inactive.
    let r = ctx
        .c
        .post(
            url,
            Some(&ctx.manager),
            json!({"name": "  Sensor Temperatura 01 ", "description": "Sensor de temperatura",
                   "device_uid": "temp-01", "id": 999, "public_id": "550e8400-e29b-41d4-a716-446655440000",
                   "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_ne!(id, 999);
    assert_ne!(r.body["public_id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_ne!(r.body["created_at"], "2000-01-01T00:00:00Z");
    assert_eq!(r.body["name"], "Sensor Temperatura 01");
    assert_eq!(r.body["status"], "inactive");
    assert_eq!(r.body["description"], "Sensor de temperatura");
    let r = ctx
        .c
        .post(
            url,
            Some(&ctx.manager),
            json!({"name": "Duplicate", "device_uid": "temp-01"}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            400,
            json!({"device_uid": ["device with this device uid already exists."]})
        )
    );
    let r = ctx
        .c
        .post(
            url,
            Some(&ctx.manager),
            json!({"name": "Active one", "status": "active"}),
        )
        .await;
    assert_eq!(r.body["status"], "active");

    let detail = format!("/api/devices/{id}/");
    for method in ["PUT", "PATCH"] {
        let r = ctx
            .c
            .request(method, &detail, Some(&ctx.a), json!({"name": "Mine now"}))
            .await;
        assert_eq!(pair(&r), forbidden(), "{method}");
    }
    let r = ctx
        .c
        .request("DELETE", &detail, Some(&ctx.a), Value::Null)
        .await;
    assert_eq!(pair(&r), forbidden());

    let r = ctx
        .c
        .request(
            "PUT",
            &detail,
            Some(&ctx.manager),
            json!({"status": "error"}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (400, json!({"name": ["This field is required."]}))
    );
    let r = ctx
        .c
        .request(
            "PATCH",
            &detail,
            Some(&ctx.manager),
            json!({"status": "off"}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            400,
            json!({"status": ["Status must be one of: active, inactive, maintenance, error"]})
        )
    );
    let r = ctx
        .c
        .request(
            "PATCH",
            &detail,
            Some(&ctx.manager),
            json!({"status": "maintenance", "id": 5}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["status"], "maintenance");
    assert_eq!(r.body["name"], "Sensor Temperatura 01");
    let r = ctx
        .c
        .request(
            "PUT",
            &detail,
            Some(&ctx.manager),
            json!({"name": " Renamed ", "status": "error", "description": "d"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["name"], &r.body["status"], &r.body["description"]),
        (&json!("Renamed"), &json!("error"), &json!("d"))
    );
    let r = ctx
        .c
        .request(
            "PATCH",
            "/api/devices/999999/",
            Some(&ctx.manager),
            json!({"name": "Nowhere"}),
        )
        .await;
    assert_eq!(pair(&r), not_found());

    let r = ctx
        .c
        .request("DELETE", &detail, Some(&ctx.manager), Value::Null)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.text, "");
    let r = ctx.c.get(&detail, Some(&ctx.manager)).await;
    assert_eq!(pair(&r), not_found());
    let r = ctx
        .c
        .request("DELETE", &detail, Some(&ctx.manager), Value::Null)
        .await;
    assert_eq!(pair(&r), not_found());
    let r = ctx.c.get(url, Some(&ctx.manager)).await;
    assert_eq!(r.body["count"], 1);
}
