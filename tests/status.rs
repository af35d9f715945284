//! Issue 14, "status that means what it says": health and /metrics show inline projections at
//! their real position (the newest event of their categories) with no lag.

use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn health_and_metrics_show_inline_projections_where_they_are(pool: sqlx::PgPool) {
    let state = testing::state(pool.clone());
    testing::account(&state, "a@example.com", Role::User).await;
    testing::account(&state, "b@example.com", Role::User).await;
    let newest: i64 =
        sqlx::query_scalar("SELECT max(global_position) FROM events WHERE category = 'account'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let client = TestClient::new(state);

    let health = client.get("/api/v1/system/health", None).await;
    let accounts = health.body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "accounts")
        .expect("the accounts projection")
        .clone();
    assert_eq!(accounts["mode"], "inline");
    assert_eq!(accounts["position"], newest);
    assert_eq!(accounts["lag_events"], 0);

    let metrics = client.get("/metrics", None).await.text;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("fleet_projection_position{projection=\"accounts\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(value, newest as f64);
}
