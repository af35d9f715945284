//! Devices talk (seed 002 MQTT and Socket.IO): MQTT publishes become telemetry, status, logs and
//! responses; sockets receive what their account may see, fed from NATS; commands reach the
//! device and its response the sender. Real nats-server (JetStream + MQTT) per test, real
//! Postgres, real servers on loopback ports.

mod support;

use fleetstream::config::Config;
use fleetstream::server::{self, Running};
use fleetstream::state::AppState;
use fleetstream::testing::socketio::SocketIoClient;
use fleetstream::testing::{self, TestAccount};
use fleetstream::workers::WorkerSet;
use fleetstream_events::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;
use support::nats::NatsServer;

const WAIT: Duration = Duration::from_secs(15);

async fn state_on(pool: PgPool, nats: &NatsServer) -> AppState {
    let mut config = Config::for_tests("postgres://unused");
    config.nats_url = nats.url();
    let client = fleetstream::nats::connect(&config.nats_url, "realtime-test")
        .await
        .unwrap();
    AppState::new(pool, config, Some(client))
}

async fn start(state: AppState) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(
        state,
        listener,
        WorkerSet {
            projections: true,
            only: None,
            relay: true,
            ingest: true,
        },
        std::future::pending(),
    )
    .await
    .unwrap()
}

struct World {
    nats: NatsServer,
    running: Running,
    http: reqwest::Client,
    owner: TestAccount,
    other: TestAccount,
    manager: TestAccount,
    device_id: i64,
}

impl World {
    async fn new(pool: PgPool, mqtt: bool) -> Self {
        let nats = if mqtt {
            NatsServer::start_with_mqtt().await
        } else {
            NatsServer::start().await
        };
        let state = state_on(pool, &nats).await;
        let owner = testing::account(&state, "owner@example.com", Role::User).await;
        let other = testing::account(&state, "other@example.com", Role::User).await;
        let manager = testing::account(&state, "manager@example.com", Role::Manager).await;
        let running = start(state).await;
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("http://{}/api/v1/devices", running.addr))
            .bearer_auth(&manager.token)
            .json(&json!({"device_uid": "dev-1", "name": "Greenhouse", "owner_id": owner.id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device_id = created["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("device created: {created}"));
        Self {
            nats,
            running,
            http,
            owner,
            other,
            manager,
            device_id,
        }
    }

    async fn socket(&self, namespace: &str, token: &str) -> SocketIoClient {
        SocketIoClient::connect(self.running.addr, namespace, json!({ "token": token }))
            .await
            .expect("connected")
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        self.http
            .get(format!("http://{}{path}", self.running.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(async_nats::connect(self.nats.url()).await.unwrap())
    }

    /// Publishes on a device subject through JetStream (as the MQTT bridge does), acked.
    async fn publish(&self, subject: &str, payload: &str) {
        let js = self.jetstream().await;
        js.publish(subject.to_owned(), payload.to_owned().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Polls `probe` until it answers `Some` (bounded).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn mosquitto_pub(port: u16, topic: &str, payload: &str) {
    let status = tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-i", &format!("dev-{}", uuid::Uuid::now_v7().simple())])
        .args(["-t", topic, "-m", payload])
        .status()
        .await
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    assert!(status.success(), "mosquitto_pub {topic}");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn mqtt_telemetry_and_status_reach_the_read_models_and_the_subscribed_socket_only(
    pool: PgPool,
) {
    let world = World::new(pool.clone(), true).await;
    let mut watcher = world.socket("/monitoring", &world.owner.token).await;
    let ack = watcher
        .emit_with_ack("subscribe_device", json!({"device_uid": "dev-1"}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    // Not allowed: another account's device answers as a missing one.
    let mut stranger = world.socket("/monitoring", &world.other.token).await;
    let refused = stranger
        .emit_with_ack("subscribe_device", json!({"device_uid": "dev-1"}))
        .await;
    assert_eq!(refused, json!({"ok": false, "error": "Device not found"}));
    let missing = watcher
        .emit_with_ack("subscribe_device", json!({"device_uid": "nope"}))
        .await;
    assert_eq!(missing["ok"], false);
    // A manager may watch it without subscribing: nothing arrives unsubscribed.
    let mut unsubscribed = world.socket("/monitoring", &world.manager.token).await;

    let mqtt = world.nats.mqtt_port.unwrap();
    mosquitto_pub(mqtt, "devices/dev-1/status", r#"{"status": "online"}"#).await;
    mosquitto_pub(
        mqtt,
        "devices/dev-1/telemetry",
        r#"{"temperature": 23.5, "humidity": 40, "ts": 1764504000000}"#,
    )
    .await;

    let status = watcher.next_event("device_status", WAIT).await;
    assert_eq!(
        status,
        Some(json!({"device_uid": "dev-1", "status": "online"}))
    );
    let telemetry = watcher
        .next_event("telemetry", WAIT)
        .await
        .expect("telemetry");
    assert_eq!(
        telemetry,
        json!({
            "device_uid": "dev-1",
            "data": {"temperature": 23.5, "humidity": 40.0},
            "timestamp": "2025-11-30T12:00:00.000Z"
        })
    );
    assert_eq!(
        stranger
            .next_event("telemetry", Duration::from_millis(500))
            .await,
        None
    );
    assert_eq!(
        unsubscribed
            .next_event("telemetry", Duration::from_millis(100))
            .await,
        None
    );

    // The read models: seed 004 aggregated data, seed 002 analytics, device connectivity.
    let path = format!("/api/devices/{}/aggregated-data/", world.device_id);
    let aggregated = eventually("aggregated-data shows both measurements", || async {
        let body = world.get(&path, &world.owner.token).await;
        (body["count"] == 2).then_some(body)
    })
    .await;
    assert_eq!(aggregated["statistics"]["max"], 40.0);
    let analytics = world
        .get(
            "/api/v1/analytics/telemetry/dev-1?start=2025-11-30T00:00:00Z&end=2025-12-01T00:00:00Z&interval=1d",
            &world.manager.token,
        )
        .await;
    assert!(
        analytics.to_string().contains("23.5"),
        "analytics carries the measurement: {analytics}"
    );
    let device = eventually("the device is online", || async {
        let body = world
            .get(
                &format!("/api/v1/devices/{}", world.device_id),
                &world.owner.token,
            )
            .await;
        (body["last_seen_at"].is_string()).then_some(body)
    })
    .await;
    assert_eq!(device["device_uid"], "dev-1");
    world.running.stop().await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn bad_device_messages_are_counted_dead_lettered_and_never_block_the_next(pool: PgPool) {
    let metrics = fleetstream::telemetry::metrics_handle();
    let world = World::new(pool.clone(), false).await;
    // A deleted device.
    let deleted: Value = world
        .http
        .post(format!("http://{}/api/v1/devices", world.running.addr))
        .bearer_auth(&world.manager.token)
        .json(&json!({"device_uid": "gone-1", "name": "Gone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = testing::account(
        &testing::state(pool.clone()),
        "admin@example.com",
        Role::Admin,
    )
    .await;
    let status = world
        .http
        .delete(format!(
            "http://{}/api/v1/devices/{}",
            world.running.addr, deleted["id"]
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");

    let bad = [
        (
            "devices.unknown-uid.telemetry",
            r#"{"t": 1}"#,
            "unknown_device",
        ),
        ("devices.gone-1.telemetry", r#"{"t": 1}"#, "unknown_device"),
        ("devices.dev-1.telemetry", r#"{"t": "#, "malformed_json"),
        (
            "devices.dev-1.telemetry",
            r#"{"t": "hot"}"#,
            "non_numeric_value",
        ),
        (
            "devices.dev-1.telemetry",
            r#"{"t": 1, "ts": 12}"#,
            "ts_out_of_range",
        ),
        (
            "devices.dev-1.status",
            r#"{"status": "sleepy"}"#,
            "invalid_status",
        ),
    ];
    for (subject, payload, _) in bad {
        world.publish(subject, payload).await;
    }
    world
        .publish("devices.dev-1.telemetry", r#"{"t": 7.25}"#)
        .await;

    let recorded = eventually(
        "the good message after the bad ones is recorded",
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM measurements")
                .fetch_one(&pool)
                .await
                .unwrap();
            (n >= 1).then_some(n)
        },
    )
    .await;
    assert_eq!(recorded, 1);
    // Each rejected message is in the dead-letter stream with its reason.
    let js = world.jetstream().await;
    let rejected = eventually("every bad message is dead-lettered", || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream("INGEST_REJECTED").await.ok()?;
            let info = stream.info().await.ok()?;
            (info.state.messages as usize >= bad.len()).then_some(info.state.last_sequence)
        }
    })
    .await;
    let stream = js.get_stream("INGEST_REJECTED").await.unwrap();
    let mut reasons = Vec::new();
    for seq in 1..=rejected {
        let message = stream.get_raw_message(seq).await.unwrap();
        reasons.push(
            message
                .headers
                .get("Fleet-Rejected-Reason")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
        );
    }
    let want: Vec<&str> = bad.iter().map(|(_, _, reason)| *reason).collect();
    assert_eq!(reasons, want);
    let rendered = metrics.render();
    for reason in ["unknown_device", "malformed_json", "ts_out_of_range"] {
        assert!(
            rendered.contains(&format!(
                "fleet_ingest_rejected_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted"
        );
    }
    world.running.stop().await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn sockets_need_a_valid_access_token(pool: PgPool) {
    let world = World::new(pool.clone(), false).await;
    let addr = world.running.addr;
    let refused = |auth: Value| async move {
        SocketIoClient::connect(addr, "/monitoring", auth)
            .await
            .err()
            .unwrap_or_else(|| "connected".into())
    };
    assert_eq!(refused(json!({})).await, "Not authenticated");
    assert_eq!(
        refused(json!({"token": "not.a.jwt"})).await,
        "Could not validate credentials"
    );
    let state = testing::state(pool.clone());
    let refresh = state
        .jwt
        .issue(
            world.owner.id,
            "user",
            fleetstream::auth::TokenType::Refresh,
            None,
        )
        .token;
    assert_eq!(
        refused(json!({ "token": refresh })).await,
        "Could not validate credentials"
    );
    for namespace in ["/monitoring", "/device", "/notification"] {
        assert!(
            SocketIoClient::connect(addr, namespace, json!({"token": world.owner.token}))
                .await
                .is_ok(),
            "{namespace}"
        );
    }
    world.running.stop().await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_command_reaches_the_device_and_its_response_the_sender(pool: PgPool) {
    let world = World::new(pool.clone(), false).await;
    let device_side = async_nats::connect(world.nats.url()).await.unwrap();
    let mut inbox = device_side
        .subscribe("devices.dev-1.command")
        .await
        .unwrap();
    device_side.flush().await.unwrap();

    let mut sender = world.socket("/device", &world.owner.token).await;
    let mut bystander = world.socket("/device", &world.other.token).await;
    let denied = bystander
        .emit_with_ack(
            "send_command",
            json!({"device_uid": "dev-1", "command": {"action": "restart"}}),
        )
        .await;
    assert_eq!(
        denied,
        json!({"ok": false, "error": "Not enough permissions"})
    );
    let ack = sender
        .emit_with_ack(
            "send_command",
            json!({"device_uid": "dev-1", "command": {"action": "restart"}}),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let command_id = ack["command_id"].as_str().unwrap().to_owned();

    let delivered = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut inbox))
        .await
        .expect("the device got its command")
        .unwrap();
    let body: Value = serde_json::from_slice(&delivered.payload).unwrap();
    assert_eq!(body, json!({"action": "restart", "command_id": command_id}));

    world
        .publish(
            "devices.dev-1.response",
            &json!({"command_id": command_id, "result": "restarting"}).to_string(),
        )
        .await;
    let response = sender.next_event("device_response", WAIT).await;
    assert_eq!(
        response,
        Some(json!({
            "device_uid": "dev-1",
            "data": {"command_id": command_id, "result": "restarting"}
        }))
    );
    assert_eq!(
        bystander
            .next_event("device_response", Duration::from_millis(300))
            .await,
        None
    );
    let answered: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT responded_at FROM device_commands WHERE command_id::text = $1")
            .bind(&command_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(answered.is_some());
    world.running.stop().await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_alert_notifies_the_owners_room_and_the_managers(pool: PgPool) {
    let world = World::new(pool.clone(), false).await;
    let mut owner = world.socket("/notification", &world.owner.token).await;
    let joined = owner
        .emit_with_ack("join_user_room", json!({"user_id": world.owner.id}))
        .await;
    assert_eq!(joined["ok"], true, "{joined}");
    let foreign = owner
        .emit_with_ack("join_user_room", json!({"user_id": world.other.id}))
        .await;
    assert_eq!(foreign, json!({"ok": false, "error": "Forbidden"}));
    let mut manager = world.socket("/notification", &world.manager.token).await;
    let joined = manager
        .emit_with_ack("join_user_room", json!({"user_id": world.manager.id}))
        .await;
    assert_eq!(joined["ok"], true);
    let mut other = world.socket("/notification", &world.other.token).await;
    other
        .emit_with_ack("join_user_room", json!({"user_id": world.other.id}))
        .await;

    let rule = world
        .http
        .post(format!(
            "http://{}/api/v1/monitoring/alert-rules",
            world.running.addr
        ))
        .bearer_auth(&world.manager.token)
        .json(&json!({
            "name": "Too hot", "metric": "temperature", "condition": "gt",
            "threshold": 30, "severity": "critical"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(rule.status(), 201, "{:?}", rule.text().await);
    // Rules are an async read model: let the manager see it before the breach.
    eventually("the rule is active", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_rules")
            .fetch_one(&pool)
            .await
            .unwrap();
        (n == 1).then_some(())
    })
    .await;
    world
        .publish("devices.dev-1.telemetry", r#"{"temperature": 31.5}"#)
        .await;

    let to_owner = owner
        .next_event("notification", WAIT)
        .await
        .expect("owner notified");
    assert!(to_owner["title"].is_string() && to_owner["message"].is_string());
    assert!(to_owner["type"].is_string());
    assert_eq!(
        manager.next_event("notification", WAIT).await,
        Some(to_owner)
    );
    assert_eq!(
        other
            .next_event("notification", Duration::from_millis(300))
            .await,
        None
    );
    world.running.stop().await;
}

/// Socket.IO is fed from NATS: a socket on one server instance receives what another instance
/// recorded.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_socket_on_one_instance_sees_what_another_recorded(pool: PgPool) {
    let world = World::new(pool.clone(), false).await;
    // A second instance on the same database and NATS, without workers of its own.
    let second = {
        let state = state_on(pool.clone(), &world.nats).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        server::start(
            state,
            listener,
            WorkerSet {
                projections: false,
                only: None,
                relay: false,
                ingest: false,
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    };
    let mut watcher = SocketIoClient::connect(
        second.addr,
        "/monitoring",
        json!({"token": world.owner.token}),
    )
    .await
    .unwrap();
    let ack = watcher
        .emit_with_ack("subscribe_device", json!({"device_uid": "dev-1"}))
        .await;
    assert_eq!(ack["ok"], true);
    // Recorded through the first instance's HTTP API (seed 004 measurement).
    let created = world
        .http
        .post(format!(
            "http://{}/api/devices/{}/measurements/",
            world.running.addr, world.device_id
        ))
        .bearer_auth(&world.owner.token)
        .json(&json!({"metric": "co2", "value": 412.5, "unit": "ppm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let telemetry = watcher
        .next_event("telemetry", WAIT)
        .await
        .expect("telemetry");
    assert_eq!(telemetry["data"], json!({"co2": 412.5}));
    second.stop().await;
    world.running.stop().await;
}

/// A state on a private NATS with device `dev-1`, for driving the ingest directly.
async fn ingest_world(pool: PgPool) -> (NatsServer, AppState) {
    let nats = NatsServer::start().await;
    let state = state_on(pool, &nats).await;
    let manager = testing::account(&state, "ops@example.com", Role::Manager).await;
    let created = testing::TestClient::new(state.clone())
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": "dev-1", "name": "Meter"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    (nats, state)
}

/// Every telemetry event's causation (the JetStream message it came from), sorted.
async fn recorded_sources(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT metadata->>'causation_id' FROM events WHERE event_type = 'TelemetryRecorded' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn sources_of(sequences: impl IntoIterator<Item = u64>) -> Vec<String> {
    let mut ids: Vec<String> = sequences
        .into_iter()
        .map(|seq| fleetstream::ingest::source_id(seq).to_string())
        .collect();
    ids.sort();
    ids
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_batch_committed_but_not_acked_is_recorded_once_when_redelivered(pool: PgPool) {
    use fleetstream::ingest::{self, DeviceDirectory, IngestConfig};
    let (nats, state) = ingest_world(pool.clone()).await;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let config = IngestConfig {
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    };
    let consumer = ingest::ensure(&js, &config).await.unwrap();
    for i in 0..20 {
        js.publish("devices.dev-1.telemetry", format!("{{\"n\": {i}}}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let fetch = || async {
        let mut batch = consumer
            .batch()
            .max_messages(20)
            .expires(Duration::from_secs(3))
            .messages()
            .await
            .unwrap();
        let mut messages = Vec::new();
        while let Some(Ok(message)) = futures::StreamExt::next(&mut batch).await {
            messages.push(message);
        }
        messages
    };
    let directory = DeviceDirectory::default();
    let first = fetch().await;
    assert_eq!(first.len(), 20);
    let refusals = ingest::record_batch(&state, &state.telemetry, &directory, &first)
        .await
        .unwrap();
    assert!(refusals.iter().all(Option::is_none));
    // The worker "dies" here: committed, never acked. JetStream redelivers after ack_wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = fetch().await;
    assert_eq!(again.len(), 20, "the whole batch comes again");
    let outcome = ingest::process_batch(&state, &state.telemetry, &directory, &js, again)
        .await
        .unwrap();
    assert_eq!(outcome.recorded, 20);
    assert_eq!(recorded_sources(&pool).await, sources_of(1..=20));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn killing_the_ingest_worker_mid_stream_loses_and_doubles_nothing(pool: PgPool) {
    use fleetstream::ingest::{self, IngestConfig};
    let (nats, state) = ingest_world(pool.clone()).await;
    let config = IngestConfig {
        ack_wait: Duration::from_secs(2),
        batch: 50,
        ..Default::default()
    };
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    ingest::ensure(&js, &config).await.unwrap();
    let total = 600u64;
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for i in 0..total {
                js.publish("devices.dev-1.telemetry", format!("{{\"n\": {i}}}").into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(ingest::run(state.clone(), config.clone(), shutdown.clone()));
    eventually("the worker has recorded some", || async {
        (recorded_sources(&pool).await.len() >= 100).then_some(())
    })
    .await;
    worker.abort(); // killed mid-stream: no graceful end of its batch
    let _ = worker.await;
    let killed_at = recorded_sources(&pool).await.len();
    publisher.await.unwrap();
    let restarted = tokio::spawn(ingest::run(state.clone(), config, shutdown.clone()));
    eventually("every message is recorded", || async {
        (recorded_sources(&pool).await.len() as u64 >= total).then_some(())
    })
    .await;
    // Anything redelivered after the kill is acked without a second append.
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("ingest crash: killed after {killed_at} of {total} messages recorded");
    assert_eq!(recorded_sources(&pool).await, sources_of(1..=total));
    shutdown.cancel();
    let _ = restarted.await;
}
