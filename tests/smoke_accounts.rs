use fleetstream::testing;
use fleetstream_events::Role;

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn registering_an_account_feeds_the_inline_read_model(pool: sqlx::PgPool) {
    let state = testing::state(pool.clone());
    let a = testing::account(&state, "a@example.com", Role::User).await;
    let email: String = sqlx::query_scalar("SELECT email FROM accounts WHERE id = $1")
        .bind(a.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(email, "a@example.com");
    let dup = fleetstream::accounts::register(
        &state.store,
        Default::default(),
        fleetstream_events::AccountProfile {
            email: "A@example.com".into(),
            ..Default::default()
        },
        "password123",
        Role::User,
    )
    .await
    .unwrap_err();
    assert!(dup.is_unique_violation("accounts_email_key"), "{dup:?}");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn unknown_routes_answer_404_in_each_namespace_shape(pool: sqlx::PgPool) {
    let client = testing::TestClient::new(testing::state(pool));
    let cases = [
        ("/api/v1/nope", serde_json::json!({"detail": "Not Found"})),
        (
            "/api/v1/addnox/nope",
            serde_json::json!({"detail": "Resource not found"}),
        ),
        ("/api/sync/nope", serde_json::json!({"error": "Not found"})),
        (
            "/api/devices/nope/x/y",
            serde_json::json!({"detail": "Not found."}),
        ),
    ];
    for (path, body) in cases {
        let r = client.get(path, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, body, "{path}");
    }
    let health = client.get("/api/v1/system/health", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["version"], env!("CARGO_PKG_VERSION"));
}
