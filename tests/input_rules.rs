//! Issue 14, "input the API still takes that it should not": ids that name nothing, one
//! timestamp format per namespace, a usable location for malformed JSON.

use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::json;

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_device_owner_id_must_name_an_account(pool: sqlx::PgPool) {
    let state = testing::state(pool.clone());
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let owner = testing::account(&state, "owner@example.com", Role::User).await;
    let client = TestClient::new(state);
    let unknown = json!({"detail": [{"loc": ["body", "owner_id"], "msg": "No account has this id", "type": "value_error"}]});

    let r = client
        .post(
            "/api/v1/devices",
            Some(&admin.token),
            json!({"device_uid": "own-1", "name": "Orphan", "owner_id": 999_999}),
        )
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (422, &unknown));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE category = 'device'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a refused device left events");

    let r = client
        .post(
            "/api/v1/devices",
            Some(&admin.token),
            json!({"device_uid": "own-1", "name": "Owned", "owner_id": owner.id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["owner_id"], owner.id);
    let id = r.body["id"].as_i64().unwrap();

    let r = client
        .request(
            "PATCH",
            &format!("/api/v1/devices/{id}"),
            Some(&admin.token),
            json!({"owner_id": 424_242}),
        )
        .await;
    assert_eq!((r.status.as_u16(), &r.body), (422, &unknown));
    let r = client
        .get(&format!("/api/v1/devices/{id}"), Some(&admin.token))
        .await;
    assert_eq!(r.body["owner_id"], owner.id);
}

fn is_naive_seconds(value: &serde_json::Value) -> bool {
    let s = value.as_str().unwrap_or_default();
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok() && s.len() == 19
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn one_timestamp_format_per_namespace(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let client = TestClient::new(state);
    // Core (seed 002): `2025-01-01T00:00:00` for users and devices alike.
    let me = client.get("/api/v1/users/me", Some(&admin.token)).await;
    assert!(is_naive_seconds(&me.body["created_at"]), "{}", me.text);
    let device = client
        .post(
            "/api/v1/devices",
            Some(&admin.token),
            json!({"device_uid": "ts-1", "name": "Clock"}),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    assert!(
        is_naive_seconds(&device.body["created_at"]),
        "{}",
        device.text
    );
    let id = device.body["id"].as_i64().unwrap();
    // Devices API (seed 004): `2025-11-02T00:00:00Z`.
    let drf = client
        .get(&format!("/api/devices/{id}/"), Some(&admin.token))
        .await;
    assert_eq!(drf.status, 200, "{}", drf.text);
    for key in ["created_at", "updated_at"] {
        let s = drf.body[key].as_str().unwrap();
        assert!(
            s.len() == 20 && s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            "{key}: {s}"
        );
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn malformed_json_reports_where_it_breaks(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = client
        .raw(
            "POST",
            "/api/v1/auth/register",
            None,
            "application/json",
            b"{\"email\": \"a@example.com\",\n \"password\": oops}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let detail = &r.body["detail"][0];
    // Character 40 (0-based) is the `o` of `oops`, on line 2.
    assert_eq!(detail["loc"], json!(["body", 40]));
    assert_eq!(detail["type"], "json_invalid");
    assert_eq!(detail["msg"], "JSON decode error");
    assert_eq!(detail["ctx"]["error"], "expected value at line 2 column 14");

    // A body of the wrong kind is located at the body itself, not at `?`.
    let r = client
        .raw(
            "POST",
            "/api/v1/auth/register",
            None,
            "application/json",
            b"\"just text\"".to_vec(),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body"]));

    // The devices API says where too.
    let r = client
        .raw(
            "POST",
            "/api/token/",
            None,
            "application/json",
            b"{\"username\": ".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "JSON parse error - EOF while parsing a value at line 1 column 13"})
    );
}
