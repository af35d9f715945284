//! Suite `therapy`: `GET /api/v1/addnox/device/get-all-device` under load (1,000 patients in
//! 100 accounts, each paired with its own device; 16 concurrent keep-alive clients) against a
//! baseline axum handler that runs the same SQL directly (no auth, no middleware), in one run
//! on a fresh database. Rounds alternate baseline/fleetstream so drift hits both alike.

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ACCOUNTS: usize = 100;
const PATIENTS_PER_ACCOUNT: usize = 10;
const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 250;
const ROUNDS: usize = 2;
const BENCH_DB: &str = "fleetbench_therapy";

pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let pool = crate::bench_db::fresh(database_url, BENCH_DB, 24).await?;
    let state = testing::state(pool.clone());
    println!(
        "seeding {} accounts x {PATIENTS_PER_ACCOUNT} patients, each with a device…",
        ACCOUNTS
    );
    let accounts = seed(&state).await?;

    let app = serve(fleetstream::app::router(state.clone())).await?;
    let baseline = serve(
        axum::Router::new()
            .route("/baseline/get-all-device", get(baseline_handler))
            .with_state(pool.clone()),
    )
    .await?;

    let fleet_target = Target {
        addr: app,
        path: "/api/v1/addnox/device/get-all-device",
    };
    let base_target = Target {
        addr: baseline,
        path: "/baseline/get-all-device",
    };
    // Warm both (connections, prepared statements, caches).
    measure(&base_target, &accounts, 20).await?;
    measure(&fleet_target, &accounts, 20).await?;

    let (mut base, mut fleet) = (Samples::default(), Samples::default());
    for _ in 0..ROUNDS {
        base.extend(measure(&base_target, &accounts, REQUESTS_PER_CLIENT).await?);
        fleet.extend(measure(&fleet_target, &accounts, REQUESTS_PER_CLIENT).await?);
    }
    println!(
        "get-all-device, {} patients, {CLIENTS} clients, {} requests each side:",
        ACCOUNTS * PATIENTS_PER_ACCOUNT,
        base.latencies.len()
    );
    base.report("baseline (same SQL, bare axum)");
    fleet.report("fleetstream (auth + middleware)");
    println!(
        "ratio fleetstream/baseline: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x",
        fleet.pct(50.0).as_secs_f64() / base.pct(50.0).as_secs_f64(),
        fleet.pct(99.0).as_secs_f64() / base.pct(99.0).as_secs_f64(),
        fleet.throughput() / base.throughput(),
    );
    pool.close().await;
    crate::bench_db::drop(database_url, BENCH_DB).await
}

/// One account per slot: (account id, access token).
type Accounts = Vec<(i64, String)>;

async fn seed(state: &fleetstream::state::AppState) -> anyhow::Result<Accounts> {
    let manager = testing::account(state, "bench-manager@example.com", Role::Manager).await;
    let client = TestClient::new(state.clone());
    let mut accounts = Vec::with_capacity(ACCOUNTS);
    for a in 0..ACCOUNTS {
        let account = testing::account(state, &format!("bench-{a}@example.com"), Role::User).await;
        for p in 0..PATIENTS_PER_ACCOUNT {
            let n = a * PATIENTS_PER_ACCOUNT + p;
            let serial = format!("BN{n:06}");
            let mac = format!(
                "AA:BB:CC:{:02X}:{:02X}:{:02X}",
                n >> 16,
                (n >> 8) & 0xff,
                n & 0xff
            );
            let r = client
                .post(
                    "/api/v1/devices",
                    Some(&manager.token),
                    json!({"device_uid": format!("bench-{n}"), "name": format!("Bench {n}"),
                           "serial_code": serial, "mac_id": mac}),
                )
                .await;
            if r.status != 201 {
                bail!("registering device {n}: {} {}", r.status, r.text);
            }
            let r = client
                .post(
                    "/api/v1/lux/user/create-real-user",
                    Some(&account.token),
                    json!({"first_name": format!("p{n}"), "last_name": "bench",
                           "birthdate": "20000101", "gender": "F",
                           "serial_code": serial, "mac_id": mac}),
                )
                .await;
            if r.status != 200 {
                bail!("creating patient {n}: {} {}", r.status, r.text);
            }
        }
        accounts.push((account.id, account.token));
    }
    Ok(accounts)
}

async fn baseline_handler(
    State(pool): State<PgPool>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, axum::http::StatusCode> {
    let account_id: i64 = headers
        .get("x-account-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or(axum::http::StatusCode::BAD_REQUEST)?;
    let rows: Vec<(Value,)> = sqlx::query_as(fleetstream::therapy::http::GET_ALL_DEVICE_SQL)
        .bind(account_id)
        .fetch_all(&pool)
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(axum::Json(Value::Array(
        rows.into_iter().map(|r| r.0).collect(),
    )))
}

pub(crate) async fn serve(router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

struct Target {
    addr: SocketAddr,
    path: &'static str,
}

#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) wall: Duration,
}

impl Samples {
    pub(crate) fn extend(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.wall += other.wall;
    }

    pub(crate) fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub(crate) fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    pub(crate) fn report(&self, label: &str) {
        println!(
            "  {label:34} p50 {:>8.3} ms  p99 {:>8.3} ms  {:>8.0} req/s",
            self.pct(50.0).as_secs_f64() * 1e3,
            self.pct(99.0).as_secs_f64() * 1e3,
            self.throughput()
        );
    }
}

/// `CLIENTS` keep-alive connections, each sending `per_client` requests for rotating accounts;
/// every reply must be 200 with the account's 10 rows.
async fn measure(
    target: &Target,
    accounts: &Accounts,
    per_client: usize,
) -> anyhow::Result<Samples> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let accounts = accounts.clone();
        let (addr, path) = (target.addr, target.path);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let (id, token) = &accounts[(client * 7 + i) % accounts.len()];
                let request = format!(
                    "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
                     x-account-id: {id}\r\n\r\n"
                );
                let sent = Instant::now();
                conn.get_mut().write_all(request.as_bytes()).await?;
                let body = read_response(&mut conn).await?;
                latencies.push(sent.elapsed());
                let rows: Value = serde_json::from_slice(&body)?;
                if rows.as_array().map(Vec::len) != Some(PATIENTS_PER_ACCOUNT) {
                    bail!("unexpected reply: {rows}");
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut samples = Samples::default();
    for task in tasks {
        samples.latencies.extend(task.await??);
    }
    samples.wall = started.elapsed();
    Ok(samples)
}

/// Reads one HTTP/1.1 response with a `content-length` body; fails on a non-200 status.
pub(crate) async fn read_response(conn: &mut BufReader<TcpStream>) -> anyhow::Result<Vec<u8>> {
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("unexpected status line {line:?}");
    }
    let mut length = None;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
    }
    let length = length.context("reply without content-length")?;
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(body)
}
