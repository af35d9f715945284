//! Device registry over HTTP: the seed 004 view under `/api/devices/`, the seed 002 list,
//! PATCH and soft DELETE under `/api/v1/devices`, concurrent registration, and the seed
//! 000/001 endpoints with another account's ids.

use fleetstream::state::AppState;
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

    // A page_size that is not a positive number falls back to 20; `last` is the last page.
    let fallback = ctx
        .c
        .get("/api/devices/?page_size=abc&page=last", Some(&ctx.manager))
        .await;
    assert_eq!(fallback.body["results"].as_array().unwrap().len(), 5);
    assert_eq!(fallback.body["next"], Value::Null);
    assert_eq!(
        fallback.body["previous"],
        "http://localhost/api/devices/?page=5&page_size=abc"
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

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn core_list_filters_paginates_and_hides_foreign_devices(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let kind = if i % 2 == 0 { "therapy" } else { "sensor" };
        ids.push(
            core_device(
                &ctx,
                json!({"device_uid": format!("uid-{i}"), "name": format!("Device {i}"),
                       "device_type": kind, "group_id": i % 2 + 1}),
            )
            .await,
        );
    }
    let r = ctx
        .c
        .request(
            "PATCH",
            &format!("/api/v1/devices/{}", ids[4]),
            Some(&ctx.manager),
            json!({"status": "maintenance", "owner_id": ctx.a_id}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let page = ctx
        .c
        .get("/api/v1/devices?page=2&size=2", Some(&ctx.manager))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        (
            &page.body["total"],
            &page.body["page"],
            &page.body["size"],
            &page.body["pages"]
        ),
        (&json!(5), &json!(2), &json!(2), &json!(3))
    );
    let got: Vec<i64> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids[2..4]);

    let therapy = ctx
        .c
        .get("/api/v1/devices?device_type=therapy", Some(&ctx.manager))
        .await;
    assert_eq!(therapy.body["total"], 3);
    let group = ctx
        .c
        .get(
            "/api/v1/devices?group_id=2&device_type=sensor",
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(group.body["total"], 2);
    // Seed 002 status: the lifecycle when not active, else the connectivity.
    let maintenance = ctx
        .c
        .get("/api/v1/devices?status=maintenance", Some(&ctx.manager))
        .await;
    assert_eq!(maintenance.body["total"], 1);
    assert_eq!(maintenance.body["items"][0]["id"], ids[4]);
    let inactive = ctx
        .c
        .get("/api/v1/devices?status=inactive", Some(&ctx.manager))
        .await;
    assert_eq!(inactive.body["total"], 4);

    let r = ctx
        .c
        .get("/api/v1/devices?size=101", Some(&ctx.manager))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["detail"][0]["loc"], json!(["query", "size"]));

    // Users see only their own devices in the list.
    let mine = ctx.c.get("/api/v1/devices", Some(&ctx.a)).await;
    assert_eq!(mine.body["total"], 1);
    assert_eq!(mine.body["items"][0]["status"], "maintenance");
    let none = ctx.c.get("/api/v1/devices", Some(&ctx.b)).await;
    assert_eq!(none.body["total"], 0);
    assert_eq!(none.body["items"], json!([]));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn core_patch_and_soft_delete(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let admin = testing::account(&ctx.state, "admin@example.com", Role::Admin).await;
    let id = core_device(
        &ctx,
        json!({"device_uid": "uid-1", "name": "Device", "owner_id": ctx.a_id}),
    )
    .await;
    let url = format!("/api/v1/devices/{id}");

    let r = ctx
        .c
        .request("PATCH", &url, Some(&ctx.a), json!({"name": "Mine"}))
        .await;
    assert_eq!(pair(&r), (403, json!({"detail": "Not enough permissions"})));
    let r = ctx
        .c
        .request("PATCH", &url, Some(&ctx.b), json!({"name": "Theirs"}))
        .await;
    // Seed 002 restricts PATCH by role: the role check comes before the lookup.
    assert_eq!(pair(&r), (403, json!({"detail": "Not enough permissions"})));
    let r = ctx
        .c
        .request(
            "PATCH",
            &url,
            Some(&ctx.manager),
            json!({"status": "bogus"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"][0]["msg"],
        "Status must be one of: active, inactive, maintenance, error"
    );
    let r = ctx
        .c
        .request(
            "PATCH",
            &url,
            Some(&ctx.manager),
            json!({"name": " Renamed ", "firmware_version": "1.2.0", "ip_address": "10.0.0.7", "group_id": 9}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "Renamed");
    assert_eq!(r.body["firmware_version"], "1.2.0");
    assert_eq!(r.body["ip_address"], "10.0.0.7");
    assert_eq!(r.body["group_id"], 9);
    assert_eq!(r.body["owner_id"], ctx.a_id);
    assert_eq!(r.body["device_uid"], "uid-1");

    let r = ctx
        .c
        .request("DELETE", &url, Some(&ctx.b), Value::Null)
        .await;
    assert_eq!(pair(&r), (403, json!({"detail": "Not enough permissions"})));
    let r = ctx
        .c
        .request("DELETE", &url, Some(&ctx.manager), Value::Null)
        .await;
    assert_eq!(pair(&r), (403, json!({"detail": "Not enough permissions"})));
    let r = ctx
        .c
        .request("DELETE", &url, Some(&admin.token), Value::Null)
        .await;
    assert_eq!(r.status, 204);
    let r = ctx.c.get(&url, Some(&ctx.manager)).await;
    assert_eq!(pair(&r), (404, json!({"detail": "Device not found"})));
    let r = ctx.c.get(&url, Some(&ctx.a)).await;
    assert_eq!(pair(&r), (404, json!({"detail": "Device not found"})));
    let r = ctx
        .c
        .request("PATCH", &url, Some(&ctx.manager), json!({"name": "Ghost"}))
        .await;
    assert_eq!(pair(&r), (404, json!({"detail": "Device not found"})));
    let list = ctx.c.get("/api/v1/devices", Some(&ctx.manager)).await;
    assert_eq!(list.body["total"], 0);
    // Soft delete: the row and its events stay.
    let deleted: bool =
        sqlx::query_scalar("SELECT deleted_at IS NOT NULL FROM devices WHERE id = $1")
            .bind(id)
            .fetch_one(ctx.state.pool())
            .await
            .unwrap();
    assert!(deleted);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn concurrent_duplicate_device_uid_registers_once(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for round in 0..5 {
        let body = |name: &str| {
            json!({"device_uid": format!("race-{round}"), "name": name,
                   "serial_code": format!("SER{round}000{}", name.len())})
        };
        let (x, y) = tokio::join!(
            ctx.c
                .post("/api/v1/devices", Some(&ctx.manager), body("First")),
            ctx.c
                .post("/api/v1/devices", Some(&ctx.manager), body("Second one")),
        );
        let mut codes = [x.status.as_u16(), y.status.as_u16()];
        codes.sort();
        assert_eq!(codes, [201, 409], "{} / {}", x.text, y.text);
        let loser = if x.status == 409 { &x } else { &y };
        assert_eq!(
            loser.body,
            json!({"detail": "Device with this device_uid already exists"})
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM devices WHERE unique_id = $1")
            .bind(format!("race-{round}"))
            .fetch_one(ctx.state.pool())
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
    // The losing registrations left no events behind.
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'DeviceRegistered'")
            .fetch_one(ctx.state.pool())
            .await
            .unwrap();
    assert_eq!(registered, 5);
}

fn real_user(serial: &str, mac: &str) -> Value {
    json!({"first_name": "kid", "last_name": "lee", "birthdate": "20100101", "gender": "F",
           "serial_code": serial, "mac_id": mac})
}

/// Account `a` with patient paired to device `uid-1`; device `uid-2` unpaired.
async fn therapy_fixture(ctx: &Ctx) -> (i64, i64, i64) {
    let dev = core_device(
        ctx,
        json!({"device_uid": "uid-1", "name": "Withnox", "serial_code": "SL20401000", "mac_id": "AA:BB:CC:DD:41:AD"}),
    )
    .await;
    let free = core_device(
        ctx,
        json!({"device_uid": "uid-2", "name": "Withnox 2", "serial_code": "SL20401001", "mac_id": "AA:BB:CC:DD:41:AE"}),
    )
    .await;
    let r = ctx
        .c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&ctx.a),
            real_user("SL20401000", "41AD"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (r.body["real_user_id"].as_i64().unwrap(), dev, free)
}

async fn event_count(ctx: &Ctx) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(ctx.state.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn real_user_patch_endpoints_and_child_device(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let (pid, dev, _) = therapy_fixture(&ctx).await;

    let r = ctx
        .c
        .request(
            "PATCH",
            &format!("/api/v1/lux/user/real-user/{pid}"),
            Some(&ctx.a),
            json!({"first_name": "Minji", "gender": "M"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"id": pid, "root_user_id": ctx.a_id, "first_name": "Minji", "last_name": "lee",
               "birthdate": "20100101", "gender": "M"})
    );
    let r = ctx
        .c
        .request(
            "PATCH",
            "/api/v1/addnox/user/update-real-user",
            Some(&ctx.a),
            json!({"id": pid, "last_name": "Kim", "birthdate": "20110202"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["first_name"], "Minji");
    assert_eq!(r.body["last_name"], "Kim");
    assert_eq!(r.body["birthdate"], "20110202");

    // Another account with the first account's patient id: 401 and nothing changes.
    let before = event_count(&ctx).await;
    let r = ctx
        .c
        .request(
            "PATCH",
            &format!("/api/v1/addnox/user/real-user/{pid}"),
            Some(&ctx.b),
            json!({"first_name": "Stolen"}),
        )
        .await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authorized user"})));
    let r = ctx
        .c
        .request(
            "PATCH",
            "/api/v1/lux/user/update-real-user",
            Some(&ctx.b),
            json!({"id": pid, "first_name": "Stolen"}),
        )
        .await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authorized user"})));
    assert_eq!(event_count(&ctx).await, before);
    let r = ctx
        .c
        .get(&format!("/api/v1/lux/user/real-user/{pid}"), Some(&ctx.a))
        .await;
    assert_eq!(r.body["first_name"], "Minji");

    let r = ctx
        .c
        .get(
            &format!("/api/v1/addnox/device/child-device?real_user_id={pid}"),
            Some(&ctx.a),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], dev);
    assert_eq!(r.body["real_user_id"], pid);
    assert_eq!(r.body["unique_id"], "uid-1");
    assert_eq!(r.body["serial_code"], "SL20401000");
    assert_eq!(r.body["mac_id"], "AA:BB:CC:DD:41:AD");
    assert_eq!(r.body["last_log_file_id"], 0);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn foreign_ids_fail_and_change_nothing(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let (pid, dev, free) = therapy_fixture(&ctx).await;
    let before = event_count(&ctx).await;

    // b tries to pair the free device to a's patient.
    let r = ctx
        .c
        .post(
            &format!("/api/v1/addnox/device/set-my-device?serial_code=SL20401001&mac_id=41AE&real_user_id={pid}"),
            Some(&ctx.b),
            Value::Null,
        )
        .await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authorized user"})));
    let r = ctx
        .c
        .post(
            "/api/v1/addnox/device/movement",
            Some(&ctx.b),
            json!({"real_user_id": pid, "device_id": dev, "movement_data": [{"val": 10, "timestamp": 1740132000}]}),
        )
        .await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authorized user"})));
    let r = ctx
        .c
        .get(
            &format!(
                "/api/v1/lux/chart/recent?real_user_id={pid}&select_mode=0&current_date=2025-02-21"
            ),
            Some(&ctx.b),
        )
        .await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authorized user"})));

    assert_eq!(event_count(&ctx).await, before);
    let paired: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, real_user_id FROM devices ORDER BY id")
            .fetch_all(ctx.state.pool())
            .await
            .unwrap();
    assert_eq!(paired, vec![(dev, Some(pid)), (free, None)]);
    let samples: i64 = sqlx::query_scalar("SELECT count(*) FROM movement_samples")
        .fetch_one(ctx.state.pool())
        .await
        .unwrap();
    assert_eq!(samples, 0);
}
