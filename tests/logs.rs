//! The server's logs, read from a real `fleetstream serve` process: one `info` line per request
//! with its fields (issue 14), and no secret ever written, even at `debug` (issue 17).

use serde_json::{json, Value};
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "log-test-secret-that-is-long-enough-for-hs256";

struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Server {
    async fn start(pool: &PgPool, rust_log: &str) -> Server {
        Self::start_with(pool, rust_log, &[]).await
    }

    async fn start_with(pool: &PgPool, rust_log: &str, env: &[(&str, &str)]) -> Server {
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .unwrap();
        let base_url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
        let (server, _) = base_url
            .split('?')
            .next()
            .unwrap()
            .rsplit_once('/')
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("fleetstream-logs-{database}.jsonl"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleetstream"));
        command
            .args(["serve", "--no-workers"])
            .env("DATABASE_URL", format!("{server}/{database}"))
            .env("FLEET_JWT_SECRET", SECRET)
            .env("FLEET_MASTER_KEY", SECRET)
            .env("FLEET_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("FLEET_LOG_FORMAT", "json")
            .env("RUST_LOG", rust_log)
            .env("NATS_URL", "nats://127.0.0.1:1")
            .env_remove("FLEET_ADMIN_EMAIL")
            .env_remove("FLEET_ADMIN_PASSWORD")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let health = client
                .get(format!("{}/api/v1/system/health", server.base))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start: {}", server.logs());
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let logs = self.logs();
        let _ = std::fs::remove_file(&self.log);
        logs
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client.request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn json_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l:?}")))
        .collect()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn one_request_leaves_one_info_line_with_its_fields(pool: PgPool) {
    let server = Server::start(&pool, "info").await;
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let (status, registered) = call(
        &client,
        post,
        format!("{}/api/v1/auth/register", server.base),
        None,
        json!({"email": "log@example.com", "password": "password123"}),
        &[],
    )
    .await;
    assert_eq!(status, 201);
    let token = registered["access_token"].as_str().unwrap().to_owned();
    let (status, me) = call(
        &client,
        reqwest::Method::GET,
        format!("{}/api/v1/users/me", server.base),
        Some(&token),
        Value::Null,
        &[("x-request-id", "log-req-1")],
    )
    .await;
    assert_eq!(status, 200);
    let logs = server.stop();
    let lines = json_lines(&logs);

    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["fields"]["request_id"] == "log-req-1" || l["span"]["request_id"] == "log-req-1"
        })
        .collect();
    assert_eq!(of_request.len(), 1, "{logs}");
    let line = of_request[0];
    assert_eq!(line["level"], "INFO");
    let f = &line["fields"];
    assert_eq!(f["message"], "request");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["route"], "/api/v1/users/me");
    assert_eq!(f["status"], 200);
    assert_eq!(f["actor"], me["id"]);
    assert!(
        f["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );

    // The register request: its line, and one line for the command it ran.
    let commands: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "command committed")
        .collect();
    assert_eq!(commands.len(), 1, "{logs}");
    let c = &commands[0]["fields"];
    assert_eq!(c["command"], "AccountRegistered");
    assert_eq!(c["events"], 1);
    assert_eq!(c["stream"], format!("account-{}", me["id"]));
    assert_eq!(commands[0]["span"]["route"], "/api/v1/auth/register");

    // Logs to a file carry no colour codes.
    assert!(!logs.contains('\u{1b}'), "ANSI escapes in a file");
}

/// Issue 17: register, login, refresh, sync push and an SMS code at `debug` in JSON; the
/// captured logs hold none of the secrets that passed through.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn no_secret_reaches_the_logs_even_at_debug(pool: PgPool) {
    let server = Server::start(&pool, "debug").await;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let password = "Sup3r-secret-passw0rd";
    let post = || reqwest::Method::POST;

    let (status, registered) = call(
        &client,
        post(),
        format!("{base}/api/v1/auth/register"),
        None,
        json!({"email": "secret@example.com", "password": password}),
        &[],
    )
    .await;
    assert_eq!(status, 201);
    let (status, login) = call(
        &client,
        post(),
        format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": "secret@example.com", "password": password}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = call(
        &client,
        post(),
        format!("{base}/api/v1/auth/refresh"),
        None,
        json!({"refresh_token": refresh}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &client,
        post(),
        format!("{base}/api/sync/push"),
        Some(&access),
        json!({
            "session": {"session_id": "log-s1", "start_time": "2025-11-13T00:00:00Z",
                        "end_time": "2025-11-13T01:00:00Z", "enabled_sensors": ["gps"],
                        "sample_rate": 100},
            "sensor_data": [{"sensor_type": "gps", "timestamp": 1, "data": {"x": 1.0}}],
        }),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    // A wrong password is a secret too.
    let (status, _) = call(
        &client,
        post(),
        format!("{base}/api/v1/auth/login"),
        None,
        json!({"email": "secret@example.com", "password": "Wr0ng-but-private"}),
        &[],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &client,
        post(),
        format!("{base}/api/v1/lux/auth/send-sms-auth"),
        None,
        json!({"phone": "+821055501234"}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let code: String =
        sqlx::query_scalar("SELECT code FROM outbound_messages WHERE recipient = '+821055501234'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let logs = server.stop();
    // The run did log at debug (a scan of an empty log proves nothing).
    assert!(logs.lines().count() > 10, "{logs}");
    assert!(logs.contains("\"level\":\"DEBUG\""), "{logs}");

    let mut secrets = vec![
        ("password", password.to_owned()),
        ("wrong password", "Wr0ng-but-private".to_owned()),
        ("access token", access.clone()),
        ("refresh token", refresh),
        (
            "registration access token",
            registered["access_token"].as_str().unwrap().to_owned(),
        ),
        (
            "registration refresh token",
            registered["refresh_token"].as_str().unwrap().to_owned(),
        ),
        (
            "refreshed access token",
            refreshed["access_token"].as_str().unwrap().to_owned(),
        ),
        ("token secret", SECRET.to_owned()),
        ("Authorization header", format!("Bearer {access}")),
    ];
    if let Some(r) = refreshed["refresh_token"].as_str() {
        secrets.push(("rotated refresh token", r.to_owned()));
    }
    // A JWT's signature alone identifies it.
    let signature = access.rsplit('.').next().unwrap().to_owned();
    secrets.push(("access token signature", signature));
    for (what, secret) in &secrets {
        assert!(!logs.contains(secret.as_str()), "the {what} is in the logs");
    }
    // The six-digit code may occur by chance inside ids or timings; look for it as a value.
    for pattern in [
        format!("\"{code}\""),
        format!("code: {code}"),
        format!("code={code}"),
    ] {
        assert!(
            !logs.contains(&pattern),
            "the SMS code is in the logs ({pattern})"
        );
    }
}

/// Issue 14: with no superadmin, start-up says so once and names both ways to make one; with
/// FLEET_ADMIN_* it makes one (its event names the start-up as its door); then it is quiet.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn the_first_run_says_how_to_make_a_superadmin(pool: PgPool) {
    let missing = |logs: &str| {
        json_lines(logs)
            .into_iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no superadmin exists yet"))
            })
            .collect::<Vec<_>>()
    };
    let logs = Server::start(&pool, "info").await.stop();
    let said = missing(&logs);
    assert_eq!(said.len(), 1, "{logs}");
    let message = said[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("FLEET_ADMIN_EMAIL and FLEET_ADMIN_PASSWORD"),
        "{message}"
    );
    assert!(message.contains("fleetstream admin create --email <email> --password-stdin"));
    assert_eq!(said[0]["level"], "WARN");

    let admin = [
        ("FLEET_ADMIN_EMAIL", "root@example.com"),
        ("FLEET_ADMIN_PASSWORD", "first-admin-pass"),
    ];
    let logs = Server::start_with(&pool, "info", &admin).await.stop();
    assert!(missing(&logs).is_empty(), "{logs}");
    assert!(
        logs.contains("first superadmin created from FLEET_ADMIN_EMAIL"),
        "{logs}"
    );
    let metadata: Value = sqlx::query_scalar(
        "SELECT e.metadata FROM events e JOIN accounts a ON e.stream_id = 'account-' || a.id
         WHERE a.email = 'root@example.com' AND a.role = 'superadmin'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(metadata["actor"], Value::Null);
    assert_eq!(metadata["door"], "start-up");
    assert!(metadata["correlation_id"].is_string());

    let logs = Server::start(&pool, "info").await.stop();
    assert!(missing(&logs).is_empty(), "{logs}");
}
