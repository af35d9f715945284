//! Seed 002 `/api/v1/analytics/*` over HTTP: bucketed telemetry (by id and by device_uid),
//! status and trend analyses, reports, stored results; exact codes and FastAPI shapes.

use fleetstream::state::AppState;
use fleetstream::testing::{self, TestClient, TestResponse};
use fleetstream_events::{EventMetadata, Role};
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
            json!({"device_uid": "sensor-temp-001", "name": "1층 온도센서", "owner_id": owner.id}),
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

fn validation(loc: &[&str], msg: &str, kind: &str) -> (u16, Value) {
    (
        422,
        json!({"detail": [{"loc": loc, "msg": msg, "type": kind}]}),
    )
}

async fn measure(ctx: &Ctx, metric: &str, value: &str, at: &str) {
    let r = ctx
        .c
        .raw(
            "POST",
            &format!("/api/devices/{}/measurements/", ctx.device),
            Some(&ctx.manager),
            "application/json",
            format!(r#"{{"metric": "{metric}", "value": {value}, "timestamp": "{at}"}}"#)
                .into_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn telemetry_buckets_by_interval_and_agg_and_omits_empty_ones(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    measure(&ctx, "temperature", "23", "2025-01-15T10:05:00Z").await;
    measure(&ctx, "temperature", "24", "2025-01-15T10:35:00Z").await;
    measure(&ctx, "humidity", "45.2", "2025-01-15T10:40:00Z").await;
    measure(&ctx, "temperature", "24.1", "2025-01-15T12:10:30Z").await;
    measure(&ctx, "temperature", "99", "2025-01-15T13:00:00Z").await; // at `end`: left out
    testing::catch_up(&ctx.state).await;
    let window = "start=2025-01-15T10:00:00Z&end=2025-01-15T13:00:00Z";
    for key in [ctx.device.to_string(), "sensor-temp-001".to_owned()] {
        let r = ctx
            .c
            .get(
                &format!("/api/v1/analytics/telemetry/{key}?{window}"),
                Some(&ctx.manager),
            )
            .await;
        assert_eq!(
            pair(&r),
            (
                200,
                json!({"device_id": "sensor-temp-001", "interval": "1h", "agg": "avg", "count": 2,
                "records": [
                    {"timestamp": "2025-01-15T10:00:00.000Z", "temperature": 23.5, "humidity": 45.2},
                    {"timestamp": "2025-01-15T12:00:00.000Z", "temperature": 24.1}
                ]})
            ),
            "by {key}"
        );
    }
    let r = ctx
        .c
        .get(
            &format!(
                "/api/v1/analytics/telemetry/{}?{window}&interval=30m&agg=count",
                ctx.device
            ),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(
        r.body["records"],
        json!([
            {"timestamp": "2025-01-15T10:00:00.000Z", "temperature": 1},
            {"timestamp": "2025-01-15T10:30:00.000Z", "temperature": 1, "humidity": 1},
            {"timestamp": "2025-01-15T12:00:00.000Z", "temperature": 1}
        ])
    );
    // Sub-minute buckets come from raw rows; a window cutting a roll-up bucket still counts
    // only the samples inside it.
    let r = ctx
        .c
        .get(
            &format!(
                "/api/v1/analytics/telemetry/{}?start=2025-01-15T10:30:00Z&end=2025-01-15T12:10:31Z&interval=45s&agg=max",
                ctx.device
            ),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(
        r.body["records"],
        json!([
            {"timestamp": "2025-01-15T10:34:30.000Z", "temperature": 24},
            {"timestamp": "2025-01-15T10:39:45.000Z", "humidity": 45.2},
            {"timestamp": "2025-01-15T12:10:30.000Z", "temperature": 24.1}
        ])
    );
    // Day buckets in a time zone: Seoul's day starts at 15:00 UTC.
    let r = ctx
        .c
        .get(
            &format!(
                "/api/v1/analytics/telemetry/{}?start=2025-01-14T00:00:00Z&end=2025-01-16T00:00:00Z&interval=1d&agg=sum&tz=Asia/Seoul",
                ctx.device
            ),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(
        r.body["records"],
        json!([{"timestamp": "2025-01-14T15:00:00.000Z", "temperature": 170.1, "humidity": 45.2}])
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn telemetry_validation_rbac_and_not_found(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let get = |q: String, token: Option<String>| {
        let c = &ctx.c;
        async move { c.get(&q, token.as_deref()).await }
    };
    let base = format!("/api/v1/analytics/telemetry/{}", ctx.device);
    let m = Some(ctx.manager.clone());
    assert_eq!(
        pair(&get(format!("{base}?end=2025-01-15T13:00:00Z"), m.clone()).await),
        validation(&["query", "start"], "Field required", "missing")
    );
    assert_eq!(
        pair(&get(format!("{base}?start=2025-01-15T10:00:00Z"), m.clone()).await),
        validation(&["query", "end"], "Field required", "missing")
    );
    let window = "start=2025-01-15T10:00:00Z&end=2025-01-15T13:00:00Z";
    assert_eq!(
        pair(
            &get(
                format!("{base}?start=noon&end=2025-01-15T13:00:00Z"),
                m.clone()
            )
            .await
        ),
        validation(
            &["query", "start"],
            "Input should be a valid datetime",
            "datetime_parsing"
        )
    );
    assert_eq!(
        pair(&get(format!("{base}?{window}&interval=1w"), m.clone()).await),
        validation(
            &["query", "interval"],
            "Interval must be a positive number followed by s, m, h or d (e.g. 1h)",
            "value_error"
        )
    );
    assert_eq!(
        pair(&get(format!("{base}?{window}&agg=median"), m.clone()).await),
        validation(
            &["query", "agg"],
            "Input should be 'avg', 'min', 'max', 'sum' or 'count'",
            "enum"
        )
    );
    assert_eq!(
        pair(&get(format!("{base}?{window}&tz=Mars/Olympus"), m.clone()).await),
        validation(&["query", "tz"], "Unknown time zone", "value_error")
    );
    assert_eq!(
        pair(
            &get(
                format!("{base}?start=2025-01-15T13:00:00Z&end=2025-01-15T10:00:00Z"),
                m.clone()
            )
            .await
        ),
        validation(&["query", "end"], "end must be after start", "value_error")
    );
    assert_eq!(
        pair(
            &get(
                format!("{base}?start=2025-01-01T00:00:00Z&end=2025-02-01T00:00:00Z&interval=1s"),
                m.clone()
            )
            .await
        ),
        validation(
            &["query", "interval"],
            "The window holds more than 10000 intervals; use a larger interval",
            "value_error"
        )
    );
    let not_found = (404, json!({"detail": "Device not found"}));
    for key in ["999999", "no-such-device"] {
        let r = get(
            format!("/api/v1/analytics/telemetry/{key}?{window}"),
            m.clone(),
        )
        .await;
        assert_eq!(pair(&r), not_found, "{key}");
    }
    // Managers and above only (the seed's RBAC), the owner included.
    let r = get(format!("{base}?{window}"), Some(ctx.owner.clone())).await;
    assert_eq!(pair(&r), (403, json!({"detail": "Not enough permissions"})));
    let r = get(format!("{base}?{window}"), None).await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authenticated"})));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn status_trends_and_reports_are_answered_and_stored(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for status in ["online", "online", "offline"] {
        fleetstream::measurements::report_status(
            &ctx.state.telemetry,
            EventMetadata::default(),
            ctx.device,
            status,
        )
        .await
        .unwrap();
    }
    // 1 degree per hour: increasing; humidity is less frequent than temperature.
    for (i, v) in ["20", "21", "22", "23"].iter().enumerate() {
        measure(&ctx, "temperature", v, &format!("2025-01-15T1{i}:00:00Z")).await;
    }
    measure(&ctx, "humidity", "40", "2025-01-15T10:00:00Z").await;
    testing::catch_up(&ctx.state).await;

    // Status: the default window is the last 24 hours; the owner may ask.
    let r = ctx
        .c
        .get("/api/v1/analytics/status/sensor-temp-001", Some(&ctx.owner))
        .await;
    assert_eq!(
        pair(&r),
        (
            200,
            json!({"device_id": "sensor-temp-001", "total_events": 3,
                   "status_counts": {"offline": 1, "online": 2}, "uptime_ratio": 0.6667})
        )
    );
    let window = "start=2025-01-15T00:00:00Z&end=2025-01-16T00:00:00Z";
    let r = ctx
        .c
        .get(
            &format!("/api/v1/analytics/status/{}?{window}", ctx.device),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(r.body["uptime_ratio"], Value::Null, "no status events then");
    assert_eq!(r.body["total_events"], 0);

    let r = ctx
        .c
        .get(
            &format!("/api/v1/analytics/trends/{}?{window}", ctx.device),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(
        pair(&r),
        (
            200,
            json!({"device_id": "sensor-temp-001", "metric": "temperature", "count": 4,
                   "mean": 21.5, "std": 1.118, "min": 20, "max": 23, "slope": 1,
                   "trend": "increasing"})
        )
    );
    let r = ctx
        .c
        .get(
            &format!(
                "/api/v1/analytics/trends/{}?{window}&metric=humidity",
                ctx.device
            ),
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["slope"], Value::Null);
    assert_eq!(r.body["trend"], "stable");

    let r = ctx
        .c
        .post(
            &format!("/api/v1/analytics/reports/sensor-temp-001?{window}"),
            Some(&ctx.manager),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let report_id = r.body["report_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["device_id"], "sensor-temp-001");
    assert_eq!(r.body["status"]["total_events"], 0);
    assert_eq!(r.body["trends"]["trend"], "increasing");
    assert!(r.body["created_at"].is_string());
    let r = ctx
        .c
        .post(
            &format!("/api/v1/analytics/reports/{}", ctx.device),
            Some(&ctx.manager),
            Value::Null,
        )
        .await;
    assert_eq!(
        pair(&r),
        validation(&["query", "start"], "Field required", "missing")
    );

    testing::catch_up(&ctx.state).await;
    let r = ctx
        .c
        .get(
            "/api/v1/analytics/results?analysis_type=report",
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body.as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"].to_string(), report_id);
    assert_eq!(results[0]["analysis_type"], "report");
    assert_eq!(results[0]["device_id"], "sensor-temp-001");
    assert_eq!(
        results[0]["params"],
        json!({"start": "2025-01-15T00:00:00.000Z", "end": "2025-01-16T00:00:00.000Z", "metric": "temperature"})
    );
    assert_eq!(results[0]["result"]["trends"]["slope"], 1);
    // Status analyses, newest first, filtered by either id form; the owner sees them too.
    for (query, token, n) in [
        ("analysis_type=status", &ctx.manager, 2),
        (
            "analysis_type=status&device_id=sensor-temp-001",
            &ctx.owner,
            2,
        ),
        (
            &format!("analysis_type=status&device_id={}", ctx.device) as &str,
            &ctx.manager,
            2,
        ),
        ("analysis_type=status&limit=1", &ctx.manager, 1),
        ("analysis_type=status&skip=1", &ctx.manager, 1),
        ("analysis_type=trend", &ctx.manager, 2),
        ("analysis_type=status", &ctx.other, 0),
        (
            "analysis_type=status&device_id=sensor-temp-001",
            &ctx.other,
            0,
        ),
    ] {
        let r = ctx
            .c
            .get(&format!("/api/v1/analytics/results?{query}"), Some(token))
            .await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        assert_eq!(r.body.as_array().unwrap().len(), n, "{query}");
    }
    let newest = ctx
        .c
        .get(
            "/api/v1/analytics/results?analysis_type=status",
            Some(&ctx.manager),
        )
        .await;
    assert_eq!(newest.body[0]["result"]["total_events"], 0);
    assert_eq!(newest.body[1]["result"]["total_events"], 3);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn results_and_device_analyses_validate_and_hide_foreign_devices(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let get = |q: &'static str| {
        let c = &ctx.c;
        let token = ctx.manager.clone();
        async move { c.get(q, Some(&token)).await }
    };
    assert_eq!(
        pair(&get("/api/v1/analytics/results").await),
        validation(&["query", "analysis_type"], "Field required", "missing")
    );
    assert_eq!(
        pair(&get("/api/v1/analytics/results?analysis_type=summary").await),
        validation(
            &["query", "analysis_type"],
            "Input should be 'report', 'status' or 'trend'",
            "enum"
        )
    );
    assert_eq!(
        pair(&get("/api/v1/analytics/results?analysis_type=report&limit=201").await),
        validation(
            &["query", "limit"],
            "Input should be less than or equal to 200",
            "less_than_equal"
        )
    );
    let not_found = (404, json!({"detail": "Device not found"}));
    for path in [
        "/api/v1/analytics/status/sensor-temp-001",
        "/api/v1/analytics/trends/sensor-temp-001",
    ] {
        let r = ctx.c.get(path, Some(&ctx.other)).await;
        assert_eq!(pair(&r), not_found, "{path}");
    }
    let r = ctx
        .c
        .post(
            "/api/v1/analytics/reports/sensor-temp-001?start=2025-01-15T00:00:00Z&end=2025-01-16T00:00:00Z",
            Some(&ctx.other),
            Value::Null,
        )
        .await;
    assert_eq!(pair(&r), not_found);
    let r = ctx
        .c
        .get("/api/v1/analytics/status/404404", Some(&ctx.manager))
        .await;
    assert_eq!(pair(&r), not_found);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE category = 'report'")
        .fetch_one(ctx.state.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "refused analyses store nothing");
}
