//! Seed 004 telemetry over HTTP: `POST /api/devices/{id}/measurements/` and
//! `GET /api/devices/{id}/aggregated-data/` with DRF codes and strings, RBAC and visibility.

use fleetstream::state::AppState;
use fleetstream::testing::{self, TestClient, TestResponse};
use fleetstream_events::Role;
use serde_json::{json, Value};

struct Ctx {
    c: TestClient,
    state: AppState,
    manager: String,
    owner: String,
    other: String,
    device: i64,
}

async fn setup(pool: sqlx::PgPool) -> Ctx {
    let state = testing::state(pool);
    let manager = testing::account(&state, "manager@example.com", Role::Manager).await;
    let owner = testing::account(&state, "owner@example.com", Role::User).await;
    let other = testing::account(&state, "other@example.com", Role::User).await;
    let c = TestClient::new(state.clone());
    let r = c
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "sensor-temp-001", "name": "Sensor 01", "owner_id": owner.id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Ctx {
        device: r.body["id"].as_i64().unwrap(),
        c,
        state,
        manager: manager.token,
        owner: owner.token,
        other: other.token,
    }
}

fn pair(r: &TestResponse) -> (u16, Value) {
    (r.status.as_u16(), r.body.clone())
}

async fn post_raw(ctx: &Ctx, token: &str, body: &str) -> TestResponse {
    ctx.c
        .raw(
            "POST",
            &format!("/api/devices/{}/measurements/", ctx.device),
            Some(token),
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_posted_measurement_is_201_with_an_exact_decimal_and_shows_in_aggregated_data(
    pool: sqlx::PgPool,
) {
    let ctx = setup(pool.clone()).await;
    let r = post_raw(
        &ctx,
        &ctx.owner,
        r#"{"metric": "temperature", "value": 25.5, "unit": "°C", "timestamp": "2025-11-02T10:30:00Z"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first_id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"id": first_id, "device": ctx.device, "metric": "temperature",
               "value": "25.5000000000", "unit": "°C", "timestamp": "2025-11-02T10:30:00Z"})
    );
    // A number with more digits than an f64 holds survives exactly; no timestamp means now.
    let r = post_raw(
        &ctx,
        &ctx.manager,
        r#"{"metric": "temperature", "value": 1234567890.0123456789}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["value"], "1234567890.0123456789");
    assert_eq!(r.body["unit"], Value::Null);
    assert!(r.body["id"].as_i64().unwrap() > first_id);

    testing::catch_up(&ctx.state).await;
    let r = ctx
        .c
        .get(
            &format!("/api/devices/{}/aggregated-data/", ctx.device),
            Some(&ctx.owner),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 2);
    assert_eq!(r.body["measurements"][0]["value"], "1234567890.0123456789");
    assert_eq!(r.body["measurements"][1]["value"], "25.5000000000");
    assert_eq!(
        r.body["statistics"],
        json!({"mean": 617283957.76, "max": 1234567890.01, "min": 25.5})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn aggregated_data_is_newest_100_with_half_away_from_zero_statistics(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    let empty = ctx
        .c
        .get(
            &format!("/api/devices/{}/aggregated-data/", ctx.device),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(
        pair(&empty),
        (
            200,
            json!({"measurements": [], "statistics": {"mean": null, "max": null, "min": null}, "count": 0})
        )
    );
    // 105 samples a minute apart: values 0.005, 0.015, ... the newest 100 are kept.
    for i in 0..105 {
        let body = format!(
            r#"{{"metric": "t", "value": "{}.005", "timestamp": "2025-11-02T{:02}:{:02}:00Z"}}"#,
            i,
            i / 60,
            i % 60
        );
        let r = post_raw(&ctx, &ctx.manager, &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    testing::catch_up(&ctx.state).await;
    let r = ctx
        .c
        .get(
            &format!("/api/devices/{}/aggregated-data/", ctx.device),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(r.body["count"], 100);
    assert_eq!(r.body["measurements"][0]["value"], "104.0050000000");
    assert_eq!(
        r.body["measurements"][0]["timestamp"],
        "2025-11-02T01:44:00Z"
    );
    assert_eq!(r.body["measurements"][99]["value"], "5.0050000000");
    // mean of 5.005..104.005 = 54.505 → 54.51; max 104.005 → 104.01; min 5.005 → 5.01
    assert_eq!(
        r.body["statistics"],
        json!({"mean": 54.51, "max": 104.01, "min": 5.01})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn measurement_validation_is_a_drf_field_map(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let cases: Vec<(&str, Value)> = vec![
        (
            r#"{}"#,
            json!({"metric": ["This field is required."], "value": ["This field is required."]}),
        ),
        (
            r#"{"metric": "t", "value": null}"#,
            json!({"value": ["This field may not be null."]}),
        ),
        (
            r#"{"metric": "t", "value": "abc"}"#,
            json!({"value": ["A valid number is required."]}),
        ),
        (
            r#"{"metric": "t", "value": 12345678901}"#,
            json!({"value": ["Ensure that there are no more than 10 digits before the decimal point."]}),
        ),
        (
            r#"{"metric": "t", "value": 1.12345678901}"#,
            json!({"value": ["Ensure that there are no more than 10 decimal places."]}),
        ),
        (
            r#"{"metric": "t", "value": 1234567890.12345678901}"#,
            json!({"value": ["Ensure that there are no more than 20 digits in total."]}),
        ),
        (
            r#"{"metric": " ", "value": 1}"#,
            json!({"metric": ["This field may not be blank."]}),
        ),
        (
            r#"{"metric": "t", "value": 1, "timestamp": "yesterday"}"#,
            json!({"timestamp": ["Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}),
        ),
        (
            r#"{"metric": "t", "value": 1, "timestamp": "1999-01-01T00:00:00Z"}"#,
            json!({"timestamp": ["Timestamp must be between 2000-01-01 and one day from now."]}),
        ),
        (r#"{"metric": "t", "#, json!({"detail": "JSON parse error"})),
        (
            r#"[1, 2]"#,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary."]}),
        ),
        (
            r#"{"metric": "t", "value": 1, "unit": ["C"]}"#,
            json!({"unit": ["Not a valid string."]}),
        ),
    ];
    for (body, want) in cases {
        let r = post_raw(&ctx, &ctx.manager, body).await;
        assert_eq!(pair(&r), (400, want), "body {body}");
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE category = 'telemetry'")
            .fetch_one(ctx.state.pool())
            .await
            .unwrap();
    assert_eq!(stored, 0, "a refused measurement appends nothing");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn measurements_follow_device_visibility_and_rbac(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let body = r#"{"metric": "t", "value": 1}"#;
    let not_found = (404, json!({"detail": "Not found."}));
    // Another account neither sees nor may write the device: 404, as for device reads.
    assert_eq!(pair(&post_raw(&ctx, &ctx.other, body).await), not_found);
    // Permission comes before the body: a broken body from a stranger is still 404.
    assert_eq!(pair(&post_raw(&ctx, &ctx.other, "{oops").await), not_found);
    let path = format!("/api/devices/{}/aggregated-data/", ctx.device);
    assert_eq!(pair(&ctx.c.get(&path, Some(&ctx.other)).await), not_found);
    // Unknown ids and non-integer ids.
    for path in [
        "/api/devices/999999/aggregated-data/",
        "/api/devices/abc/aggregated-data/",
    ] {
        assert_eq!(pair(&ctx.c.get(path, Some(&ctx.manager)).await), not_found);
    }
    let r = ctx
        .c
        .post(
            "/api/devices/999999/measurements/",
            Some(&ctx.manager),
            json!({"metric": "t", "value": 1}),
        )
        .await;
    assert_eq!(pair(&r), not_found);
    // No token.
    let r = ctx.c.get(&path, None).await;
    assert_eq!(
        pair(&r),
        (
            401,
            json!({"detail": "Authentication credentials were not provided."})
        )
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_paired_patients_account_sees_measurements_but_may_not_record(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let manager = testing::account(&state, "manager@example.com", Role::Manager).await;
    let family = testing::account(&state, "family@example.com", Role::User).await;
    let c = TestClient::new(state.clone());
    let r = c
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "paired-1", "name": "Withnox", "serial_code": "SL20401000",
                   "mac_id": "AA:BB:CC:DD:41:AD"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let device = r.body["id"].as_i64().unwrap();
    let r = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&family.token),
            json!({"first_name": "kid", "last_name": "", "birthdate": "20150101", "gender": "F",
                   "serial_code": "SL20401000", "mac_id": "41AD"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c
        .post(
            &format!("/api/devices/{device}/measurements/"),
            Some(&family.token),
            json!({"metric": "t", "value": 1}),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            403,
            json!({"detail": "You do not have permission to perform this action."})
        )
    );
    let r = c
        .post(
            &format!("/api/devices/{device}/measurements/"),
            Some(&manager.token),
            json!({"metric": "t", "value": 1}),
        )
        .await;
    assert_eq!(r.status, 201);
    testing::catch_up(&state).await;
    let r = c
        .get(
            &format!("/api/devices/{device}/aggregated-data/"),
            Some(&family.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 1);
}
