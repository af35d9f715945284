//! Seed 002 `/api/v1/monitoring/*` and `/api/v1/system/info` over HTTP: alert rules, alerts
//! raised by the process manager, acknowledge, health; exact codes and FastAPI shapes.

use fleetstream::alerts::manager::AlertManager;
use fleetstream::state::AppState;
use fleetstream::testing::{self, TestClient, TestResponse};
use fleetstream_events::{EventMetadata, Role};
use serde_json::{json, Value};

struct Ctx {
    c: TestClient,
    state: AppState,
    manager: String,
    user: String,
    user_id: i64,
    device: i64,
}

async fn setup(pool: sqlx::PgPool) -> Ctx {
    let state = testing::state(pool);
    let manager = testing::account(&state, "manager@example.com", Role::Manager).await;
    let user = testing::account(&state, "user@example.com", Role::User).await;
    let c = TestClient::new(state.clone());
    let r = c
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "sensor-temp-001", "name": "1층 온도센서", "group_id": 1, "owner_id": user.id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Ctx {
        device: r.body["id"].as_i64().unwrap(),
        c,
        state,
        manager: manager.token,
        user: user.token,
        user_id: user.id,
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

fn forbidden() -> (u16, Value) {
    (403, json!({"detail": "Not enough permissions"}))
}

async fn measure(ctx: &Ctx, value: &str) {
    let r = ctx
        .c
        .raw(
            "POST",
            &format!("/api/devices/{}/measurements/", ctx.device),
            Some(&ctx.manager),
            "application/json",
            format!(r#"{{"metric": "temperature", "value": {value}}}"#).into_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Read models, then the alert manager, then the alerts read model.
async fn settle(ctx: &Ctx) {
    testing::catch_up(&ctx.state).await;
    let manager = AlertManager::new(ctx.state.store.clone());
    loop {
        match manager.step(500).await.expect("alert manager step") {
            Some(0) => break,
            Some(_) => continue,
            None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    testing::catch_up(&ctx.state).await;
}

fn rule_body() -> Value {
    json!({
        "name": "고온 경고",
        "description": "온도가 40도를 초과하면 알림",
        "metric": "temperature",
        "condition": "gt",
        "threshold": 40.0,
        "severity": "warning",
        "device_group_id": 1
    })
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn alert_rules_are_created_listed_patched_and_deleted(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let r = ctx
        .c
        .post(
            "/api/v1/monitoring/alert-rules",
            Some(&ctx.manager),
            rule_body(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let created_at = r.body["created_at"].clone();
    assert_eq!(
        r.body,
        json!({"id": id, "name": "고온 경고", "description": "온도가 40도를 초과하면 알림",
               "metric": "temperature", "condition": "gt", "threshold": 40.0, "severity": "warning",
               "device_group_id": 1, "is_active": true, "created_at": created_at,
               "updated_at": created_at})
    );
    testing::catch_up(&ctx.state).await;
    let list = ctx
        .c
        .get("/api/v1/monitoring/alert-rules", Some(&ctx.manager))
        .await;
    assert_eq!(pair(&list), (200, json!([r.body.clone()])));

    let path = format!("/api/v1/monitoring/alert-rules/{id}");
    let r = ctx
        .c
        .request(
            "PATCH",
            &path,
            Some(&ctx.manager),
            json!({"threshold": "35.5", "device_group_id": null, "severity": "critical"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["threshold"], 35.5);
    assert_eq!(r.body["device_group_id"], Value::Null);
    assert_eq!(r.body["severity"], "critical");
    assert_eq!(r.body["description"], "온도가 40도를 초과하면 알림");
    testing::catch_up(&ctx.state).await;
    let list = ctx
        .c
        .get("/api/v1/monitoring/alert-rules", Some(&ctx.manager))
        .await;
    assert_eq!(list.body[0]["threshold"], 35.5);
    assert_eq!(list.body[0]["device_group_id"], Value::Null);

    let r = ctx
        .c
        .request("DELETE", &path, Some(&ctx.manager), Value::Null)
        .await;
    assert_eq!(r.status, 204);
    let gone = (404, json!({"detail": "Alert rule not found"}));
    let r = ctx
        .c
        .request("DELETE", &path, Some(&ctx.manager), Value::Null)
        .await;
    assert_eq!(pair(&r), gone);
    let r = ctx
        .c
        .request("PATCH", &path, Some(&ctx.manager), json!({"name": "x"}))
        .await;
    assert_eq!(pair(&r), gone);
    let r = ctx
        .c
        .request(
            "PATCH",
            "/api/v1/monitoring/alert-rules/999999",
            Some(&ctx.manager),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(pair(&r), gone);
    testing::catch_up(&ctx.state).await;
    let list = ctx
        .c
        .get("/api/v1/monitoring/alert-rules", Some(&ctx.manager))
        .await;
    assert_eq!(pair(&list), (200, json!([])));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn alert_rule_validation_and_rbac(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let ctx = &ctx;
    let post = |body: Value| async move {
        ctx.c
            .post("/api/v1/monitoring/alert-rules", Some(&ctx.manager), body)
            .await
    };
    let mut missing = rule_body();
    missing.as_object_mut().unwrap().remove("threshold");
    assert_eq!(
        pair(&post(missing).await),
        validation(&["body", "threshold"], "Field required", "missing")
    );
    let mut bad = rule_body();
    bad["condition"] = json!("above");
    assert_eq!(
        pair(&post(bad).await),
        validation(
            &["body", "condition"],
            "Input should be 'gt', 'gte', 'lt', 'lte', 'eq' or 'neq'",
            "enum"
        )
    );
    let mut bad = rule_body();
    bad["severity"] = json!("fatal");
    assert_eq!(
        pair(&post(bad).await),
        validation(
            &["body", "severity"],
            "Input should be 'info', 'warning' or 'critical'",
            "enum"
        )
    );
    let mut bad = rule_body();
    bad["threshold"] = json!("hot");
    assert_eq!(
        pair(&post(bad).await),
        validation(
            &["body", "threshold"],
            "Input should be a valid decimal",
            "decimal_parsing"
        )
    );
    let mut bad = rule_body();
    bad["name"] = json!("  ");
    assert_eq!(
        pair(&post(bad).await),
        validation(
            &["body", "name"],
            "String should have at least 1 character",
            "string_too_short"
        )
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE category = 'alertrule'")
            .fetch_one(ctx.state.pool())
            .await
            .unwrap();
    assert_eq!(stored, 0, "refused rules append nothing");

    // RBAC: managers and above only; no token is 401.
    for (method, path) in [
        ("GET", "/api/v1/monitoring/alert-rules"),
        ("POST", "/api/v1/monitoring/alert-rules"),
        ("PATCH", "/api/v1/monitoring/alert-rules/1"),
        ("DELETE", "/api/v1/monitoring/alert-rules/1"),
        ("GET", "/api/v1/monitoring/alerts"),
        ("POST", "/api/v1/monitoring/alerts/1/acknowledge"),
        ("GET", "/api/v1/monitoring/health"),
    ] {
        let r = ctx
            .c
            .request(method, path, Some(&ctx.user), rule_body())
            .await;
        assert_eq!(pair(&r), forbidden(), "{method} {path}");
        // The role is checked before the body or the query is validated.
        let r = ctx
            .c
            .request(
                method,
                &format!("{path}?limit=abc"),
                Some(&ctx.user),
                json!({"name": 5}),
            )
            .await;
        assert_eq!(pair(&r), forbidden(), "{method} {path} with a bad body");
        let r = ctx.c.request(method, path, None, rule_body()).await;
        assert_eq!(
            pair(&r),
            (401, json!({"detail": "Not authenticated"})),
            "{method} {path}"
        );
    }
    let r = ctx
        .c
        .request(
            "PATCH",
            "/api/v1/monitoring/alert-rules/abc",
            Some(&ctx.manager),
            json!({}),
        )
        .await;
    assert_eq!(
        pair(&r),
        validation(
            &["path", "rule_id"],
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing"
        )
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_breaching_measurement_raises_one_alert_until_acknowledged(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let r = ctx
        .c
        .post(
            "/api/v1/monitoring/alert-rules",
            Some(&ctx.manager),
            rule_body(),
        )
        .await;
    let rule_id = r.body["id"].as_i64().unwrap();
    testing::catch_up(&ctx.state).await;
    measure(&ctx, "39.9").await;
    measure(&ctx, "45.25").await;
    measure(&ctx, "50").await;
    settle(&ctx).await;

    let r = ctx
        .c
        .get("/api/v1/monitoring/alerts", Some(&ctx.manager))
        .await;
    assert_eq!(r.status, 200);
    let alerts = r.body.as_array().unwrap();
    assert_eq!(
        alerts.len(),
        1,
        "one open alert per rule and device: {}",
        r.text
    );
    let alert = &alerts[0];
    let alert_id = alert["id"].as_i64().unwrap();
    assert_eq!(
        alert,
        &json!({"id": alert_id, "rule_id": rule_id, "device_id": ctx.device, "severity": "warning",
                "message": "temperature 45.25 > 40 (고온 경고)", "is_acknowledged": false,
                "acknowledged_by": null, "acknowledged_at": null,
                "created_at": alert["created_at"].clone()})
    );
    // The raise carries the notification for the owner and managers.
    let notification: Value = sqlx::query_scalar(
        "SELECT jsonb_build_object('n', data->'notification', 'owner', data->'owner_id') \
         FROM events WHERE event_type = 'AlertRaised'",
    )
    .fetch_one(ctx.state.pool())
    .await
    .unwrap();
    assert_eq!(
        notification,
        json!({"n": {"title": "Alert: 고온 경고", "message": "temperature 45.25 > 40 (고온 경고)", "type": "warning"},
               "owner": ctx.user_id})
    );

    let r = ctx
        .c
        .post(
            &format!("/api/v1/monitoring/alerts/{alert_id}/acknowledge"),
            Some(&ctx.manager),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], alert_id);
    assert_eq!(r.body["is_acknowledged"], true);
    assert!(r.body["acknowledged_by"].as_i64().is_some());
    assert!(r.body["acknowledged_at"].is_string());
    settle(&ctx).await;
    let r = ctx
        .c
        .get("/api/v1/monitoring/alerts", Some(&ctx.manager))
        .await;
    assert_eq!(pair(&r), (200, json!([])));

    // After the acknowledgement a new breach raises a new alert.
    measure(&ctx, "41").await;
    settle(&ctx).await;
    let r = ctx
        .c
        .get("/api/v1/monitoring/alerts", Some(&ctx.manager))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_ne!(r.body[0]["id"], alert_id);

    let r = ctx
        .c
        .post(
            "/api/v1/monitoring/alerts/999999/acknowledge",
            Some(&ctx.manager),
            Value::Null,
        )
        .await;
    assert_eq!(pair(&r), (404, json!({"detail": "Alert not found"})));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn alert_paging_is_bounded(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let ctx = &ctx;
    let get = |q: &'static str| async move {
        ctx.c
            .get(&format!("/api/v1/monitoring/alerts{q}"), Some(&ctx.manager))
            .await
    };
    assert_eq!(
        pair(&get("?limit=201").await),
        validation(
            &["query", "limit"],
            "Input should be less than or equal to 200",
            "less_than_equal"
        )
    );
    assert_eq!(
        pair(&get("?limit=0").await),
        validation(
            &["query", "limit"],
            "Input should be greater than or equal to 1",
            "greater_than_equal"
        )
    );
    assert_eq!(
        pair(&get("?skip=-1").await),
        validation(
            &["query", "skip"],
            "Input should be greater than or equal to 0",
            "greater_than_equal"
        )
    );
    assert_eq!(pair(&get("?skip=0&limit=200").await), (200, json!([])));
    let r = get("?limit=abc").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["detail"][0]["loc"], json!(["query", "limit"]));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn health_counts_online_devices_and_open_alerts(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    fleetstream::measurements::report_status(
        &ctx.state.telemetry,
        EventMetadata::default(),
        ctx.device,
        "online",
    )
    .await
    .unwrap();
    ctx.c
        .post(
            "/api/v1/monitoring/alert-rules",
            Some(&ctx.manager),
            rule_body(),
        )
        .await;
    testing::catch_up(&ctx.state).await;
    measure(&ctx, "41").await;
    settle(&ctx).await;
    let r = ctx
        .c
        .get("/api/v1/monitoring/health", Some(&ctx.manager))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["postgres"], "connected");
    assert_eq!(r.body["nats"], "disabled");
    assert_eq!(r.body["mqtt"], "disabled");
    assert_eq!(r.body["active_devices"], 1);
    assert_eq!(r.body["active_alerts"], 1);
    let names: Vec<&str> = r.body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"measurements") && names.contains(&"alerts"));
    // The seed 002 device view shows the reported connectivity (lifecycle is `inactive`, so
    // the lifecycle wins) and last_seen_at.
    let r = ctx
        .c
        .get(
            &format!("/api/v1/devices/{}", ctx.device),
            Some(&ctx.manager),
        )
        .await;
    assert!(r.body["last_seen_at"].is_string(), "{}", r.text);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn system_info_is_for_the_superadmin(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let admin = testing::account(&ctx.state, "admin@example.com", Role::Admin).await;
    let root = testing::account(&ctx.state, "root@example.com", Role::Superadmin).await;
    let r = ctx.c.get("/api/v1/system/info", Some(&root.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["service"], "core-api");
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.body["access_token_ttl_secs"], 900);
    assert_eq!(r.body["trend_slope"], "0.01");
    assert!(!r.text.contains("test-secret"), "no secret leaks");
    assert!(!r.text.contains("postgres://"), "no database URL leaks");
    for token in [&admin.token, &ctx.manager, &ctx.user] {
        let r = ctx.c.get("/api/v1/system/info", Some(token)).await;
        assert_eq!(pair(&r), forbidden());
    }
    let r = ctx.c.get("/api/v1/system/info", None).await;
    assert_eq!(pair(&r), (401, json!({"detail": "Not authenticated"})));
}

/// An event the alert manager cannot decode is stepped past and recorded; the breach after it
/// still raises its alert (one event never stops the manager).
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_undecodable_telemetry_event_is_skipped_and_the_next_breach_still_raises(
    pool: sqlx::PgPool,
) {
    use fleetstream_events::store::{self, ExpectedVersion, NewEvent, StreamAppend};
    let ctx = setup(pool.clone()).await;
    let r = ctx
        .c
        .post(
            "/api/v1/monitoring/alert-rules",
            Some(&ctx.manager),
            rule_body(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The manager reads the rules' read model.
    testing::catch_up(&ctx.state).await;
    let mut conn = pool.acquire().await.unwrap();
    store::append(
        &mut conn,
        &[StreamAppend {
            stream_id: "telemetry-999999".into(),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "TelemetryRecorded".into(),
                schema_version: 1,
                data: json!({"device_id": "not a number"}),
                metadata: json!({}),
            }],
        }],
    )
    .await
    .unwrap();
    measure(&ctx, "45.5").await;

    // Steps until the breach is raised (an older transaction elsewhere in the cluster may
    // hold the never-skipping reader back for a moment).
    let manager = AlertManager::new(ctx.state.store.clone());
    let raised = async {
        loop {
            manager.step(500).await.expect("the manager goes on");
            let raised: i64 =
                sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'AlertRaised'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if raised > 0 {
                return raised;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let raised = tokio::time::timeout(std::time::Duration::from_secs(20), raised)
        .await
        .expect("the breach after the undecodable event never raised its alert");
    assert_eq!(raised, 1);
    let skipped: (i64, String) = sqlx::query_as(
        "SELECT count(*), max(error) FROM projection_skipped WHERE projection = 'alert_manager'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(skipped.0, 1);
    assert!(skipped.1.contains("TelemetryRecorded"), "{}", skipped.1);
}
