//! CONTRACT §5 / issue 14: every event says who (actor, or null with the door), from which
//! request (request id), in which flow (correlation id) and because of what (causation id) —
//! stamped by the request context, not by each handler.

use axum::body::Body;
use axum::http::Request;
use fleetstream::es::context;
use fleetstream::testing::{self, TestClient};
use fleetstream_events::{AccountProfile, EventMetadata, Role, StoredEvent};
use serde_json::{json, Value};
use sqlx::PgPool;

fn post_json(path: &str, headers: &[(&str, &str)], body: Value) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

async fn events_of(pool: &PgPool, stream: &str) -> Vec<StoredEvent> {
    let mut conn = pool.acquire().await.unwrap();
    fleetstream_events::store::read_stream(&mut conn, stream, 1)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn self_registration_records_request_correlation_and_door_with_a_null_actor(pool: PgPool) {
    let client = TestClient::new(testing::state(pool.clone()));
    let r = client
        .send(post_json(
            "/api/v1/auth/register",
            &[("x-request-id", "newcomer-req-1")],
            json!({"email": "new@example.com", "password": "password123"}),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.headers["x-request-id"], "newcomer-req-1");
    assert_eq!(r.headers["x-correlation-id"], "newcomer-req-1");
    let id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE email = 'new@example.com'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let events = events_of(&pool, &format!("account-{id}")).await;
    assert_eq!(events[0].event_type, "AccountRegistered");
    assert_eq!(
        events[0].metadata,
        json!({
            "actor": null,
            "request_id": "newcomer-req-1",
            "correlation_id": "newcomer-req-1",
            "door": "POST /api/v1/auth/register",
        })
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_authenticated_command_records_its_actor_and_the_clients_correlation_id(pool: PgPool) {
    let state = testing::state(pool.clone());
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let client = TestClient::new(state);
    let bearer = format!("Bearer {}", admin.token);
    let r = client
        .send(post_json(
            "/api/v1/devices",
            &[("authorization", &bearer), ("x-correlation-id", "flow-7")],
            json!({"device_uid": "dev-meta-1", "name": "Meta"}),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // No x-request-id was sent: the generated one is echoed and stored.
    let request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&request_id)
            .unwrap()
            .get_version_num(),
        7
    );
    assert_eq!(r.headers["x-correlation-id"], "flow-7");
    let id = r.body["id"].as_i64().unwrap();
    let events = events_of(&pool, &format!("device-{id}")).await;
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(
            event.metadata,
            json!({"actor": admin.id, "request_id": request_id, "correlation_id": "flow-7"}),
            "{}",
            event.event_type
        );
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn client_ids_that_are_too_long_or_not_plain_text_are_replaced(pool: PgPool) {
    let client = TestClient::new(testing::state(pool.clone()));
    let long = "x".repeat(129);
    let r = client
        .send(post_json(
            "/api/v1/auth/register",
            &[("x-request-id", &long), ("x-correlation-id", "has space")],
            json!({"email": "long@example.com", "password": "password123"}),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    assert_eq!(r.headers["x-correlation-id"].to_str().unwrap(), request_id);
    let metadata: Value = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE event_type = 'AccountRegistered' ORDER BY global_position DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(metadata["request_id"], json!(request_id));
    assert_eq!(metadata["correlation_id"], json!(request_id));
}

/// Work caused by an event (a process manager, ingest, a projection that appends) runs in
/// `context::scope(EventMetadata::caused_by(&event), ..)`: the flow's correlation id carries
/// on and the event is the causation; `events trace` lists the whole flow in order.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn work_caused_by_an_event_carries_the_flow_and_trace_lists_it(pool: PgPool) {
    let state = testing::state(pool.clone());
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let client = TestClient::new(state.clone());
    let bearer = format!("Bearer {}", admin.token);
    let r = client
        .send(post_json(
            "/api/v1/devices",
            &[("authorization", &bearer), ("x-correlation-id", "flow-8")],
            json!({"device_uid": "dev-meta-2", "name": "Cause"}),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let trigger = events_of(&pool, &format!("device-{}", r.body["id"])).await[0].clone();

    let caused = context::scope(EventMetadata::caused_by(&trigger), async {
        let profile = AccountProfile {
            email: "caused@example.com".into(),
            ..Default::default()
        };
        fleetstream::accounts::register(
            &state.store,
            EventMetadata::default(),
            profile,
            "password123",
            Role::User,
        )
        .await
        .unwrap()
    })
    .await;
    let effect = &events_of(&pool, &format!("account-{caused}")).await[0];
    assert_eq!(
        effect.metadata,
        json!({
            "actor": null,
            "correlation_id": "flow-8",
            "causation_id": trigger.event_id.to_string(),
        })
    );

    let mut conn = pool.acquire().await.unwrap();
    let flow = fleetstream_events::store::read_correlation(&mut conn, "flow-8")
        .await
        .unwrap();
    let ids: Vec<_> = flow.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.first(), Some(&trigger.event_id));
    assert_eq!(ids.last(), Some(&effect.event_id));
    assert!(flow
        .windows(2)
        .all(|w| w[0].global_position < w[1].global_position));

    // The same through the CLI, as JSON lines.
    let url = testing_url(&pool).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetstream"))
        .args(["events", "trace", "flow-8"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed.len(), flow.len());
    assert_eq!(printed[0]["event_id"], json!(trigger.event_id));
    assert_eq!(
        printed.last().unwrap()["metadata"]["causation_id"],
        json!(trigger.event_id)
    );

    let none = std::process::Command::new(env!("CARGO_BIN_EXE_fleetstream"))
        .args(["events", "trace", "no-such-flow"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&none.stderr),
        "fleetstream: no events carry correlation id \"no-such-flow\" (a request's x-correlation-id, else its x-request-id)\n"
    );
}

/// The URL of this test's own database.
async fn testing_url(pool: &PgPool) -> String {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let (server, _) = base.split('?').next().unwrap().rsplit_once('/').unwrap();
    format!("{server}/{database}")
}
