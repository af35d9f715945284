//! HTTP plumbing through the whole router: health, metrics, body limits and malformed bodies
//! answer in the namespace's shape and never with a 500.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use fleetstream::http::{middleware, Json};
use fleetstream::testing::{self, TestClient};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn send(router: Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A core-namespace JSON route behind the app's body-limit middleware, built from the same
/// public pieces every feature route uses (the core router has no JSON route of its own yet).
fn echo_router() -> Router {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Echo {
        name: String,
    }
    Router::new()
        .route(
            "/api/v1/echo",
            post(|Json(body): Json<Echo>| async move { Json(body) }),
        )
        .layer(axum::middleware::from_fn(middleware::limit_body))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn health_endpoints_answer_without_auth(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let system = client.get("/api/v1/system/health", None).await;
    assert_eq!(system.status, 200);
    assert_eq!(system.body["status"], "ok");
    assert_eq!(system.body["service"], "core-api");
    assert_eq!(system.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(system.body["postgres"], "ok");
    assert_eq!(system.body["nats"], "disabled");
    assert!(system.body["projections"].is_array());

    let koodtx = client.get("/health", None).await;
    assert_eq!(koodtx.status, 200);
    assert_eq!(
        koodtx.body,
        json!({"status": "healthy", "service": "KooDTX Backend", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn metrics_expose_request_durations_after_a_request(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    assert_eq!(client.get("/health", None).await.status, 200);
    let metrics = client.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        metrics.headers
    );
    assert!(
        metrics.text.contains("fleet_http_request_duration_seconds"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains(r#"route="/health""#),
        "{}",
        metrics.text
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_declared_body_over_2_mib_is_refused_with_413_in_the_namespace_shape(pool: sqlx::PgPool) {
    let router = fleetstream::app::router(testing::state(pool));
    let big = vec![b'a'; 2 * 1024 * 1024 + 1];
    let cases = [
        (
            "/api/v1/devices",
            json!({"detail": "Request body is larger than 2 MiB"}),
        ),
        (
            "/api/auth/login",
            json!({"error": "Request body is larger than 2 MiB"}),
        ),
        (
            "/api/devices/",
            json!({"detail": "Request body is larger than 2 MiB"}),
        ),
    ];
    for (path, body) in cases {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .header("content-length", big.len())
            .body(Body::from(big.clone()))
            .unwrap();
        let (status, reply) = send(router.clone(), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(reply, body, "{path}");
    }
}

#[tokio::test]
async fn a_streamed_body_over_2_mib_is_refused_with_413_too() {
    // No content-length: the limit trips while the extractor reads the body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..3).map(|_| Ok(vec![b' '; 1024 * 1024])).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let request = Request::post("/api/v1/echo")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let (status, reply) = send(echo_router(), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply,
        json!({"detail": "Request body is larger than 2 MiB"})
    );
}

#[tokio::test]
async fn malformed_json_is_a_4xx_never_a_500() {
    let cases: [&[u8]; 5] = [
        b"{\"name\": ",
        b"not json",
        b"[1, 2]",
        b"{\"name\": 5}",
        b"{}",
    ];
    for raw in cases {
        let request = Request::post("/api/v1/echo")
            .header("content-type", "application/json")
            .body(Body::from(raw.to_vec()))
            .unwrap();
        let (status, reply) = send(echo_router(), request).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert!(reply["detail"][0]["loc"][0] == "body", "{reply}");
    }
    let ok = Request::post("/api/v1/echo")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"name": "x"}"#))
        .unwrap();
    let (status, reply) = send(echo_router(), ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"name": "x"}));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn garbage_bodies_on_the_app_router_never_produce_a_500(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    for path in [
        "/api/v1/system/health",
        "/api/v1/nope",
        "/api/sync/push",
        "/api/token/",
    ] {
        let r = client
            .raw(
                "POST",
                path,
                None,
                "application/json",
                b"{\"broken".to_vec(),
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "{path}: {} {}",
            r.status,
            r.text
        );
    }
}

/// A state whose NATS client is connected to the test NATS server.
async fn state_with_nats(pool: sqlx::PgPool) -> fleetstream::state::AppState {
    let config = fleetstream::config::Config::for_tests("postgres://unused");
    let client = fleetstream::nats::connect(&config.nats_url, "health-test")
        .await
        .unwrap();
    for _ in 0..100 {
        if client.connection_state() == async_nats::connection::State::Connected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    fleetstream::state::AppState::new(pool, config, Some(client))
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn health_is_degraded_with_the_reason_while_the_relay_fails(pool: sqlx::PgPool) {
    let client = TestClient::new(state_with_nats(pool.clone()).await);
    let healthy = client.get("/api/v1/system/health", None).await;
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.body["nats"], "connected");
    assert_eq!(healthy.body["status"], "ok", "{}", healthy.text);
    assert_eq!(healthy.body["reasons"], json!([]));

    fleetstream_projections::record_error(&pool, "nats_relay", "nats: maximum payload violation")
        .await
        .unwrap();
    let degraded = client.get("/api/v1/system/health", None).await;
    assert_eq!(degraded.status, 200, "the API still answers");
    assert_eq!(degraded.body["status"], "degraded");
    assert_eq!(
        degraded.body["reasons"],
        json!(["nats_relay is failing: nats: maximum payload violation"])
    );
    assert_eq!(
        degraded.body["relay"]["last_error"],
        "nats: maximum payload violation"
    );
    assert!(degraded.body["relay"]["failing_since"].is_string());

    // A successful batch clears it.
    let mut conn = pool.acquire().await.unwrap();
    fleetstream_projections::save_checkpoint(
        &mut conn,
        "nats_relay",
        fleetstream_events::store::Checkpoint::default(),
    )
    .await
    .unwrap();
    let healed = client.get("/api/v1/system/health", None).await;
    assert_eq!(healed.body["status"], "ok", "{}", healed.text);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_superadmin_reads_any_event_whole_by_position(pool: sqlx::PgPool) {
    use fleetstream_events::Role;
    let state = testing::state(pool.clone());
    let admin = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let user = testing::account(&state, "user@example.com", Role::User).await;
    let client = TestClient::new(state);
    let position: i64 = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE event_type = 'AccountRegistered' ORDER BY 1 DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let read = client
        .get(
            &format!("/api/v1/system/events/{position}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["global_position"], position);
    assert_eq!(read.body["event_type"], "AccountRegistered");
    assert_eq!(read.body["data"]["profile"]["email"], "user@example.com");
    assert_eq!(read.body["data"]["password_hash"], "[redacted]");

    let forbidden = client
        .get(
            &format!("/api/v1/system/events/{position}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.body, json!({"detail": "Not enough permissions"}));
    let missing = client
        .get("/api/v1/system/events/999999", Some(&admin.token))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, json!({"detail": "Not Found"}));
    let anonymous = client
        .get(&format!("/api/v1/system/events/{position}"), None)
        .await;
    assert_eq!(anonymous.status, 401);
}
