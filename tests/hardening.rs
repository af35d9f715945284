//! Issue 17: overload is shed, slow clients and slow handlers are cut, CORS answers only the
//! configured origins, verification SMS are limited — each in the namespace's error shape.

use axum::body::{Body, Bytes};
use axum::http::Request;
use fleetstream::config::Config;
use fleetstream::state::AppState;
use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

fn state_with(pool: PgPool, tune: impl FnOnce(&mut Config)) -> AppState {
    let mut config = Config::for_tests("postgres://unused");
    tune(&mut config);
    AppState::new(pool, config, None)
}

/// A request whose body sends one chunk and then never finishes (until the sender drops).
fn trickling(
    method: &str,
    path: &str,
) -> (
    Request<Body>,
    tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.try_send(Ok(Bytes::from_static(b"{\"name\":"))).unwrap();
    let stream = tokio_stream_from(rx);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    (request, tx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_trickling_body_is_cut_with_408_in_the_namespaces_shape(pool: PgPool) {
    let state = state_with(pool, |c| c.body_timeout = Duration::from_millis(200));
    let client = TestClient::new(state);
    let (request, _sender) = trickling("POST", "/api/v1/auth/register");
    let r = client.send(request).await;
    assert_eq!(r.status, 408);
    assert_eq!(
        r.body,
        json!({"detail": "Request body was not received in time"})
    );
    let (request, _sender) = trickling("POST", "/api/sync/push");
    let r = client.send(request).await;
    assert_eq!(r.status, 408);
    assert_eq!(
        r.body,
        json!({"error": "Request body was not received in time"})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn past_the_in_flight_bound_requests_are_shed_with_503_and_retry_after(pool: PgPool) {
    let state = state_with(pool, |c| {
        c.max_in_flight = 1;
        c.queue_wait = Duration::from_millis(50);
    });
    let client = TestClient::new(state.clone());
    // The one slot is held by a client still sending its body.
    let (slow, sender) = trickling("POST", "/api/v1/auth/register");
    let holder = {
        let client = TestClient::new(state);
        tokio::spawn(async move { client.send(slow).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (path, body) in [
        (
            "/api/v1/users/me",
            json!({"detail": "Server is busy; retry later"}),
        ),
        (
            "/api/auth/me",
            json!({"error": "Server is busy; retry later"}),
        ),
    ] {
        let r = client.get(path, None).await;
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.body, body, "{path}");
        assert_eq!(r.headers["retry-after"], "1", "{path}");
    }
    // Probes are never shed.
    assert_eq!(client.get("/api/v1/system/health", None).await.status, 200);
    assert_eq!(client.get("/metrics", None).await.status, 200);
    drop(sender);
    let _ = holder.await;
    // The slot is free again.
    assert_eq!(client.get("/api/v1/users/me", None).await.status, 401);
}

/// A handler stuck past its deadline (here: waiting for a stream lock another transaction
/// holds) answers 503 in the namespace's shape, and its command is rolled back.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_handler_past_its_deadline_answers_503_and_changes_nothing(pool: PgPool) {
    let state = state_with(pool.clone(), |c| {
        c.handler_timeout = Duration::from_millis(300)
    });
    let user = testing::account(&state, "slow@example.com", Role::User).await;
    let client = TestClient::new(state);
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("account-{}", user.id))
        .execute(&mut *blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = client
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&user.token),
            json!({"full_name": "Never"}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "The server did not answer in time"})
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    blocker.rollback().await.unwrap();
    let me = client.get("/api/v1/users/me", Some(&user.token)).await;
    assert_eq!(me.status, 200);
    assert_ne!(me.body["full_name"], "Never");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
        .bind(format!("account-{}", user.id))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
}

/// Headers that trickle in: the connection is cut after FLEET_HEADER_TIMEOUT_SECS (on a real
/// socket; hyper cannot name a namespace before it has the request line and headers).
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn trickling_headers_are_cut(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let state = testing::state(pool);
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = fleetstream::server::spawn_local(
        fleetstream::app::router(state),
        Duration::from_millis(300),
        stop.clone(),
    )
    .await
    .unwrap();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /api/v1/system/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "the connection stayed open");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );

    // A prompt client on the same server is served.
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /api/v1/system/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    socket.read_to_end(&mut reply).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
    stop.cancel();
}

fn preflight(origin: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method("OPTIONS")
        .uri(path)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn cors_preflight_answers_only_the_configured_origins(pool: PgPool) {
    let dashboard = "https://dashboard.example.com";
    let state = state_with(pool.clone(), |c| {
        c.cors_origins = vec![dashboard.to_owned()]
    });
    let client = TestClient::new(state);
    for path in ["/api/v1/devices", "/socket.io/"] {
        let r = client.send(preflight(dashboard, path)).await;
        assert_eq!(r.status, 200, "{path}");
        let h = &r.headers;
        assert_eq!(h["access-control-allow-origin"], dashboard, "{path}");
        assert_eq!(h["access-control-allow-credentials"], "true");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(
            methods.contains("POST") && methods.contains("PATCH"),
            "{methods}"
        );
        let headers = h["access-control-allow-headers"].to_str().unwrap();
        assert!(headers.contains("authorization") && headers.contains("content-type"));
        assert_eq!(h["access-control-max-age"], "600");
        assert!(h
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("origin")));
    }
    // Another origin gets no grant (the browser then refuses the call).
    let r = client
        .send(preflight("https://evil.example.com", "/api/v1/devices"))
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // A real request from the dashboard carries the grant and exposes the ids.
    let r = client
        .send(
            Request::get("/api/v1/system/health")
                .header("origin", dashboard)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], dashboard);
    let exposed = r.headers["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"));

    // None configured (the default): no grant for anyone.
    let client = TestClient::new(testing::state(pool));
    let r = client.send(preflight(dashboard, "/api/v1/devices")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

async fn sms(
    client: &TestClient,
    phone: &str,
    ip: &str,
    token: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut builder = Request::post("/api/v1/lux/auth/send-sms-auth")
        .header("content-type", "application/json")
        .header("x-forwarded-for", ip);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let r = client
        .send(
            builder
                .body(Body::from(json!({"phone": phone}).to_string()))
                .unwrap(),
        )
        .await;
    let retry = r
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status.as_u16(), r.body, retry)
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn verification_sms_are_limited_per_phone_account_and_ip(pool: PgPool) {
    let state = state_with(pool.clone(), |c| {
        c.sms_per_phone = 2;
        c.sms_per_account = 3;
        c.sms_per_ip = 4;
    });
    let user = testing::account(&state, "sms@example.com", Role::User).await;
    let client = TestClient::new(state);
    let refused = json!({"detail": "Too many verification requests; retry later"});

    // Per phone: two, then 429 with Retry-After (the window is an hour).
    for _ in 0..2 {
        assert_eq!(sms(&client, "+821000000001", "10.0.0.1", None).await.0, 200);
    }
    let (status, body, retry) = sms(&client, "+821000000001", "10.0.0.2", None).await;
    assert_eq!((status, body), (429, refused.clone()));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");

    // Per IP: 10.0.0.1 has sent two; two more, then 429 for any phone.
    assert_eq!(sms(&client, "+821000000002", "10.0.0.1", None).await.0, 200);
    assert_eq!(sms(&client, "+821000000003", "10.0.0.1", None).await.0, 200);
    let (status, body, _) = sms(&client, "+821000000004", "10.0.0.1", None).await;
    assert_eq!((status, body), (429, refused.clone()));

    // Per account, across IPs.
    for (i, ip) in ["10.1.0.1", "10.1.0.2", "10.1.0.3"].iter().enumerate() {
        let phone = format!("+82100000010{i}");
        assert_eq!(sms(&client, &phone, ip, Some(&user.token)).await.0, 200);
    }
    let (status, body, _) = sms(&client, "+821000000200", "10.1.0.4", Some(&user.token)).await;
    assert_eq!((status, body), (429, refused));

    // Refused attempts sent nothing.
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SmsQueued'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sent, 2 + 2 + 3);
    // ... and are counted.
    let metrics = client.get("/metrics", None).await.text;
    assert!(
        metrics.contains("fleet_sms_refused_total{limit=\"phone\"}"),
        "{metrics}"
    );
}

/// Every series `/metrics` exports has a `# HELP` line.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn every_metric_is_described(pool: PgPool) {
    let state = testing::state(pool);
    testing::account(&state, "m@example.com", Role::User).await;
    let client = TestClient::new(state);
    client.get("/api/v1/users/me", None).await;
    let text = client.get("/metrics", None).await.text;
    let typed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        typed.contains(&"fleet_http_request_duration_seconds"),
        "{text}"
    );
    assert!(typed.contains(&"fleet_events_appended_total"), "{text}");
    assert!(typed.contains(&"fleet_projection_position"), "{text}");
    for name in typed {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} "))),
            "no # HELP for {name}"
        );
    }
}

/// Issue 17: a 500 never carries internals, and comes in the namespace's shape.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_panicking_handler_answers_a_bare_500_in_the_namespaces_shape(pool: PgPool) {
    use tower::ServiceExt;
    let state = testing::state(pool);
    let boom = || async {
        if true {
            panic!("internal detail: connection string postgres://secret@db");
        }
        ""
    };
    let app = axum::Router::new()
        .route("/api/auth/boom", axum::routing::get(boom))
        .route("/api/v1/boom", axum::routing::get(boom))
        .layer(axum::middleware::from_fn_with_state(
            state,
            fleetstream::http::guard::protect,
        ));
    for (path, expected) in [
        ("/api/auth/boom", json!({"error": "Internal Server Error"})),
        ("/api/v1/boom", json!({"detail": "Internal Server Error"})),
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, expected, "{path}");
    }
}
