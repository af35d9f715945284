//! Suite `ingest`: 1,000 simulated devices publish telemetry (3 metrics a message) on
//! `devices.{uid}.telemetry` at steady rates into a private nats-server; the server (HTTP,
//! Socket.IO, projections, relay, ingest worker) runs in this process, sharing the machine's
//! cores with NATS, Postgres and the load generator. For each rate it reports whether the read
//! models kept up (the backlog drains within 2 s of the end), publish → visible-in-`measurements`
//! latency p50/p99, and publish → Socket.IO delivery p50/p99. Baselines in the same run: the raw
//! JetStream publish rate (acked, same payloads) and a raw UNNEST insert of the same rows into an
//! unpartitioned copy of `measurements`.

use anyhow::{bail, Context};
use fleetstream::config::Config;
use fleetstream::state::AppState;
use fleetstream::testing::{self, socketio::SocketIoClient, TestClient};
use fleetstream::workers::WorkerSet;
use fleetstream_events::Role;
use serde_json::json;
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BENCH_DB: &str = "fleetbench_ingest";
const DEVICES: usize = 1_000;
const WATCHED: usize = 20;
const STEP_SECS: u64 = 6;
const RATES: [u64; 4] = [2_000, 5_000, 10_000, 15_000];
const BASELINE_MESSAGES: u64 = 30_000;

/// A nats-server with JetStream in a temporary directory, killed on drop.
struct PrivateNats {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl PrivateNats {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("fleetbench-nats-{port}"));
        std::fs::create_dir_all(&dir)?;
        let binary = ["/usr/sbin/nats-server", "nats-server"]
            .into_iter()
            .find(|b| !b.starts_with('/') || std::path::Path::new(b).exists())
            .unwrap_or("nats-server");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server")?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Self { child, port, dir });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("nats-server did not start")
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn payload(n: u64, at_ms: i64) -> String {
    format!(
        "{{\"temperature\": {}.{}, \"humidity\": {}, \"pressure\": 1013.{}, \"ts\": {at_ms}}}",
        15 + n % 20,
        n % 10,
        30 + n % 50,
        n % 10
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn pct(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
    }
}

pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let nats = PrivateNats::start().await?;
    let pool = crate::bench_db::fresh(database_url, BENCH_DB, 32).await?;
    let mut config = Config::for_tests(&crate::bench_db::url_of(database_url, BENCH_DB));
    config.nats_url = nats.url();
    let client = fleetstream::nats::connect(&config.nats_url, "fleetbench").await?;
    let state = AppState::new(pool.clone(), config, Some(client.clone()));
    println!("seeding {DEVICES} devices…");
    let manager = seed(&state).await?;

    let js = async_nats::jetstream::new(client.clone());
    let raw_publish = raw_jetstream_rate(&js).await?;
    let raw_insert = raw_unnest_rate(&pool).await?;
    println!(
        "baselines: raw JetStream publish {raw_publish:.0} msg/s; raw UNNEST insert {raw_insert:.0} rows/s ({:.0} msg/s of 3 metrics)",
        raw_insert / 3.0
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let running = fleetstream::server::start(
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
    .await?;
    let mut sockets = Vec::new();
    for d in 0..WATCHED {
        let mut socket =
            SocketIoClient::connect(running.addr, "/monitoring", json!({ "token": manager }))
                .await
                .map_err(|e| anyhow::anyhow!("socket: {e}"))?;
        socket
            .emit_with_ack(
                "subscribe_device",
                json!({ "device_uid": format!("ing-{d}") }),
            )
            .await;
        sockets.push(socket);
    }

    // Warm-up (consumer, partitions, caches, prepared statements), then each step starts from
    // an empty backlog so one step's tail is not counted in the next.
    println!("warming up…");
    step(&pool, &client, &mut sockets, 1_000).await?;
    drained(&pool, Duration::from_secs(60)).await?;
    let mut best = None;
    for rate in RATES {
        let outcome = step(&pool, &client, &mut sockets, rate).await?;
        drained(&pool, Duration::from_secs(60)).await?;
        outcome.print(rate);
        if outcome.kept_up {
            best = Some(rate);
        }
    }
    match best {
        Some(rate) => println!(
            "highest rate kept up with: {rate} msg/s ({} data points/s) = {:.2}x raw JetStream publish, {:.2}x raw UNNEST insert",
            rate * 3,
            rate as f64 / raw_publish,
            (rate * 3) as f64 / raw_insert
        ),
        None => println!("no rate was kept up with"),
    }
    running.stop().await;
    pool.close().await;
    crate::bench_db::drop(database_url, BENCH_DB).await
}

/// Waits until every message in `DEVICE_INGRESS` is a `temperature` row (bounded).
async fn drained(pool: &PgPool, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = -1i64;
    while started.elapsed() < within {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM measurements WHERE metric = 'temperature'")
                .fetch_one(pool)
                .await?;
        if rows == last {
            return Ok(());
        }
        last = rows;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

/// The manager's access token.
async fn seed(state: &AppState) -> anyhow::Result<String> {
    let manager = testing::account(state, "ingest-bench@example.com", Role::Manager).await;
    let client = TestClient::new(state.clone());
    for d in 0..DEVICES {
        let r = client
            .post(
                "/api/v1/devices",
                Some(&manager.token),
                json!({"device_uid": format!("ing-{d}"), "name": format!("Meter {d}")}),
            )
            .await;
        if r.status != 201 {
            bail!("registering device {d}: {} {}", r.status, r.text);
        }
    }
    Ok(manager.token)
}

/// Acked JetStream publishes of the bench's payloads into a scratch stream, 1,000 in flight.
async fn raw_jetstream_rate(js: &async_nats::jetstream::Context) -> anyhow::Result<f64> {
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        ..Default::default()
    })
    .await?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(1000);
    for n in 0..BASELINE_MESSAGES {
        let subject = format!("bench.raw.ing-{}", n as usize % DEVICES);
        pending.push(js.publish(subject, payload(n, now_ms()).into()).await?);
        if pending.len() == 1000 {
            for ack in pending.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in pending {
        ack.await?;
    }
    let rate = BASELINE_MESSAGES as f64 / started.elapsed().as_secs_f64();
    js.delete_stream("BENCH_RAW").await?;
    Ok(rate)
}

/// The same rows (3 a message) inserted with UNNEST, 1,500 a statement, into an unpartitioned
/// copy of `measurements` with the same index.
async fn raw_unnest_rate(pool: &PgPool) -> anyhow::Result<f64> {
    sqlx::raw_sql(
        "CREATE TABLE bench_measurements (id BIGINT NOT NULL, device_id BIGINT NOT NULL, \
           metric TEXT NOT NULL, value NUMERIC(20,10) NOT NULL, unit TEXT, ts TIMESTAMPTZ NOT NULL, \
           PRIMARY KEY (id, ts)); \
         CREATE INDEX ON bench_measurements (device_id, ts DESC, id DESC);",
    )
    .execute(pool)
    .await?;
    let rows = BASELINE_MESSAGES as usize * 3;
    let started = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1500) {
        let ids: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
        let devices: Vec<i64> = chunk.iter().map(|&i| (i / 3 % DEVICES) as i64).collect();
        let metrics: Vec<&str> = chunk
            .iter()
            .map(|&i| ["temperature", "humidity", "pressure"][i % 3])
            .collect();
        let values: Vec<rust_decimal::Decimal> = chunk
            .iter()
            .map(|&i| rust_decimal::Decimal::new(150 + (i % 200) as i64, 1))
            .collect();
        let at = chrono::Utc::now();
        let ts: Vec<chrono::DateTime<chrono::Utc>> = chunk.iter().map(|_| at).collect();
        sqlx::query(
            "INSERT INTO bench_measurements (id, device_id, metric, value, ts) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::numeric[], $5::timestamptz[])",
        )
        .bind(&ids)
        .bind(&devices)
        .bind(&metrics)
        .bind(&values)
        .bind(&ts)
        .execute(pool)
        .await?;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_measurements")
        .execute(pool)
        .await?;
    Ok(rate)
}

struct Outcome {
    achieved: f64,
    published: u64,
    recorded: u64,
    visible: Latencies,
    delivered: Latencies,
    drain: Option<Duration>,
    kept_up: bool,
}

impl Outcome {
    fn print(&self, rate: u64) {
        println!(
            "{rate:>6} msg/s target: published {} ({:.0} msg/s), recorded {}, {} | visible p50 {:?} p99 {:?} | socket p50 {:?} p99 {:?} ({} deliveries)",
            self.published,
            self.achieved,
            self.recorded,
            match self.drain {
                Some(d) => format!("backlog drained {d:.2?} after the end"),
                None => "backlog NOT drained within 10 s".into(),
            },
            self.visible.pct(50.0),
            self.visible.pct(99.0),
            self.delivered.pct(50.0),
            self.delivered.pct(99.0),
            self.delivered.0.len(),
        );
    }
}

/// Publishes at `rate` for `STEP_SECS`, measuring what becomes visible and what sockets get.
async fn step(
    pool: &PgPool,
    client: &async_nats::Client,
    sockets: &mut [SocketIoClient],
    rate: u64,
) -> anyhow::Result<Outcome> {
    let start_id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM measurements")
        .fetch_one(pool)
        .await?;
    let published = Arc::new(AtomicU64::new(0));
    let publishing = Arc::new(AtomicBool::new(true));
    let publisher = {
        let client = client.clone();
        let published = published.clone();
        let publishing = publishing.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let per_tick = (rate / 100).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(STEP_SECS) {
                tick.tick().await;
                let at = now_ms();
                for _ in 0..per_tick {
                    let subject = format!("devices.ing-{}.telemetry", n as usize % DEVICES);
                    if client
                        .publish(subject, payload(n, at).into())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    n += 1;
                }
                let _ = client.flush().await;
                published.store(n, Ordering::Relaxed);
            }
            publishing.store(false, Ordering::Relaxed);
            started.elapsed()
        })
    };
    // Watch rows appear (one `temperature` row per message) and sockets deliver.
    let visible = Arc::new(Mutex::new(Latencies::default()));
    let watcher = {
        let pool = pool.clone();
        let visible = visible.clone();
        tokio::spawn(async move {
            let mut last = start_id;
            loop {
                let rows: Vec<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
                    "SELECT id, ts FROM measurements WHERE id > $1 AND metric = 'temperature' ORDER BY id",
                )
                .bind(last)
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                let now = chrono::Utc::now();
                {
                    let mut v = visible.lock().unwrap_or_else(|e| e.into_inner());
                    for (id, ts) in &rows {
                        last = last.max(*id);
                        v.0.push((now - *ts).to_std().unwrap_or_default());
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let mut delivered = Latencies::default();
    let deadline = Instant::now() + Duration::from_secs(STEP_SECS);
    while Instant::now() < deadline {
        for socket in sockets.iter_mut() {
            if let Some(event) = socket
                .next_event("telemetry", Duration::from_millis(5))
                .await
            {
                if let Some(at) = event["timestamp"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                {
                    delivered.0.push(
                        (chrono::Utc::now() - at.to_utc())
                            .to_std()
                            .unwrap_or_default(),
                    );
                }
            }
        }
    }
    let elapsed = publisher.await?;
    let total = published.load(Ordering::Relaxed);
    let ended = Instant::now();
    let mut drain = None;
    while ended.elapsed() < Duration::from_secs(10) {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM measurements WHERE id > $1 AND metric = 'temperature'",
        )
        .bind(start_id)
        .fetch_one(pool)
        .await?;
        if recorded as u64 >= total {
            drain = Some(ended.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM measurements WHERE id > $1 AND metric = 'temperature'",
    )
    .bind(start_id)
    .fetch_one(pool)
    .await?;
    let achieved = total as f64 / elapsed.as_secs_f64();
    let visible = std::mem::take(&mut *visible.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Outcome {
        achieved,
        published: total,
        recorded: recorded as u64,
        kept_up: drain.is_some_and(|d| d <= Duration::from_secs(2))
            && achieved >= 0.95 * rate as f64,
        visible,
        delivered,
        drain,
    })
}
