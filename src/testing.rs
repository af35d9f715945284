//! Helpers for integration tests and benchmarks: build the app on a given pool, create accounts
//! through the real register command, mint tokens.

pub mod socketio;

use crate::auth::TokenType;
use crate::config::Config;
use crate::state::AppState;
use fleetstream_events::{AccountProfile, EventMetadata, Role};
use sqlx::PgPool;

/// The keyring of [`state`]'s configuration, for tools under test (rebuilds, migrations).
pub fn keyring() -> fleetstream_events::privacy::Keyring {
    let config = Config::for_tests("postgres://unused");
    let master_key = config.master_key.expect("tests configure a master key");
    fleetstream_events::privacy::Keyring::from_secret(master_key.as_bytes())
}

pub fn state(pool: PgPool) -> AppState {
    let config = Config::for_tests("postgres://unused");
    AppState::new(pool, config, None)
}

/// Runs every async projection until it has applied every event committed before the call
/// (tests: the read models then reflect every committed command). Waits while an older
/// transaction elsewhere in the cluster holds the never-skipping reader back.
pub async fn catch_up(state: &AppState) {
    let pool = state.pool();
    for projection in state.store.projections() {
        if projection.mode() != fleetstream_projections::Mode::Async {
            continue;
        }
        let categories: Vec<String> = projection
            .categories()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let target: Option<i64> =
            sqlx::query_scalar("SELECT max(global_position) FROM events WHERE category = ANY($1)")
                .bind(&categories)
                .fetch_one(pool)
                .await
                .expect("reading the log's end");
        let Some(target) = target else { continue };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            fleetstream_projections::run_until_caught_up(pool, projection.as_ref(), 500)
                .await
                .expect("projection catches up");
            let at: i64 = sqlx::query_scalar(
                "SELECT global_position FROM projection_checkpoints WHERE name = $1",
            )
            .bind(projection.name())
            .fetch_optional(pool)
            .await
            .expect("reading a checkpoint")
            .unwrap_or(0);
            if at >= target {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not catch up",
                projection.name()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A registered account and an access token for it.
pub struct TestAccount {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub token: String,
}

/// Registers `email` with `role` and password `password123`.
pub async fn account(state: &AppState, email: &str, role: Role) -> TestAccount {
    let password = "password123".to_owned();
    let profile = AccountProfile {
        email: email.to_owned(),
        ..Default::default()
    };
    let id = crate::accounts::register(
        &state.store,
        EventMetadata::default(),
        profile,
        &password,
        role,
    )
    .await
    .expect("registering a fresh test account");
    let token = state
        .jwt
        .issue(id, role.as_str(), TokenType::Access, None)
        .token;
    TestAccount {
        id,
        email: email.to_owned(),
        password,
        token,
    }
}

/// A request through the whole router (middleware included), without a socket.
pub struct TestClient {
    router: axum::Router,
}

/// A reply: status, headers and the body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct TestResponse {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: serde_json::Value,
    pub text: String,
}

impl TestClient {
    pub fn new(state: AppState) -> Self {
        Self {
            router: crate::app::router(state),
        }
    }

    /// Sends `body` as JSON when it is not `Null`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> TestResponse {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).expect("JSON body")
        };
        self.raw(method, path, token, "application/json", bytes)
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request("GET", path, token, serde_json::Value::Null)
            .await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> TestResponse {
        self.request("POST", path, token, body).await
    }

    /// Sends `pairs` form-encoded.
    pub async fn post_form(
        &self,
        path: &str,
        token: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> TestResponse {
        let body = serde_urlencoded::to_string(pairs)
            .expect("form body")
            .into_bytes();
        self.raw(
            "POST",
            path,
            token,
            "application/x-www-form-urlencoded",
            body,
        )
        .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        let mut builder = axum::http::Request::builder().method(method).uri(path);
        if !body.is_empty() {
            builder = builder.header("content-type", content_type);
        }
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = builder.body(axum::body::Body::from(body)).expect("request");
        self.send(request).await
    }

    /// Sends a request built by the caller (own headers, e.g. `x-request-id`).
    pub async fn send(&self, request: axum::http::Request<axum::body::Body>) -> TestResponse {
        use tower::ServiceExt;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }
}
