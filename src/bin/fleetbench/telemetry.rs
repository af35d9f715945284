//! Suite `telemetry`: ingest, projection lag, analytics and rebuild of the telemetry read
//! models, each against a baseline measured in the same run on a fresh database:
//! 1. 64 HTTP clients posting single measurements vs a raw 16-connection INSERT+commit loop
//!    into a plain measurements-shaped table;
//! 2. batched ingest (500 samples across 100 devices per batch) until the `measurements`
//!    projection has applied it, vs a raw UNNEST insert of the same rows into an unpartitioned
//!    copy of `measurements`; projection lag at a steady 5,000 samples/s;
//! 3. `analytics/telemetry` over 30 days of 1 Hz data (2.6 M samples), interval 1h, from the
//!    roll-up vs the same answer from raw rows;
//! 4. `aggregated-data` under 16 clients vs a bare axum handler running the same SQL;
//! 5. rebuild of measurements + roll-ups.

use crate::therapy::{serve, Samples};
use anyhow::{bail, Context};
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use fleetstream::analytics::domain::{parse_interval, Source};
use fleetstream::measurements::domain::ValidSample;
use fleetstream::measurements::ingest::{IngestItem, IngestKind};
use fleetstream::state::AppState;
use fleetstream::testing::{self, TestClient};
use fleetstream_events::{EventMetadata, Role};
use fleetstream_projections::{Projection, Runner, RunnerConfig, Wakeup};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const BENCH_DB: &str = "fleetbench_telemetry";
const DEVICES: usize = 100;
const HTTP_CLIENTS: usize = 64;
const POSTS_PER_CLIENT: usize = 150;
const RAW_CONNECTIONS: usize = 16;
const BATCH: usize = 500;
const BATCHES: usize = 200;
const SUBMITTERS: usize = 4;
const LONG_DAYS: i64 = 30;

/// `FLEETBENCH_TELEMETRY_DAYS` shortens the 30-day series for a quick smoke run.
fn long_days() -> i64 {
    std::env::var("FLEETBENCH_TELEMETRY_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LONG_DAYS)
}

pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let pool = crate::bench_db::fresh(database_url, BENCH_DB, 40).await?;
    let state = testing::state(pool.clone());
    let manager = testing::account(&state, "bench-manager@example.com", Role::Manager).await;
    let client = TestClient::new(state.clone());
    let mut devices = Vec::with_capacity(DEVICES);
    for n in 0..DEVICES {
        let r = client
            .post(
                "/api/v1/devices",
                Some(&manager.token),
                json!({"device_uid": format!("bench-{n}"), "name": format!("Bench {n}")}),
            )
            .await;
        if r.status != 201 {
            bail!("registering device {n}: {} {}", r.status, r.text);
        }
        devices.push(r.body["id"].as_i64().context("device id")?);
    }
    for ddl in [
        "CREATE TABLE bench_plain (id BIGSERIAL PRIMARY KEY, device_id BIGINT NOT NULL, \
         metric TEXT NOT NULL, value NUMERIC(20,10) NOT NULL, unit TEXT, ts TIMESTAMPTZ NOT NULL)",
        "CREATE TABLE bench_copy (id BIGINT NOT NULL, device_id BIGINT NOT NULL, \
         metric TEXT NOT NULL, value NUMERIC(20,10) NOT NULL, unit TEXT, ts TIMESTAMPTZ NOT NULL, \
         PRIMARY KEY (id, ts))",
        "CREATE INDEX ON bench_copy (device_id, ts DESC, id DESC)",
    ] {
        sqlx::query(ddl).execute(&pool).await?;
    }

    // Projection workers run throughout, as in `serve`.
    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await?;
    let async_models: Vec<Arc<dyn Projection>> = state.store.projections().to_vec();
    let handles = Runner::new(pool.clone(), async_models, RunnerConfig::default())
        .spawn(wakeup, shutdown.clone());

    http_ingest(&state, &pool, &manager.token, &devices).await?;
    batched_ingest(&state, &pool, &devices).await?;
    projection_lag(&state, &pool, &devices).await?;
    let long_device = devices[0];
    long_series(&state, &pool, long_device, &manager.token).await?;
    aggregated_data(&state, &pool, &manager.token, &devices).await?;
    rebuild(&state, &pool).await?;

    shutdown.cancel();
    futures::future::join_all(handles).await;
    pool.close().await;
    crate::bench_db::drop(database_url, BENCH_DB).await
}

fn now_minus_days(days: i64) -> DateTime<Utc> {
    let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap();
    Utc.from_utc_datetime(&today) - ChronoDuration::days(days)
}

/// Waits until `projection`'s checkpoint has reached `position`.
async fn applied(pool: &PgPool, projection: &str, position: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT global_position FROM projection_checkpoints WHERE name = $1",
        )
        .bind(projection)
        .fetch_optional(pool)
        .await?;
        if at.unwrap_or(0) >= position {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{projection} did not reach {position}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn log_end(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
            .fetch_one(pool)
            .await?,
    )
}

// ---- 1. single measurements over HTTP ------------------------------------------------------

async fn http_ingest(
    state: &AppState,
    pool: &PgPool,
    token: &str,
    devices: &[i64],
) -> anyhow::Result<()> {
    let addr = serve(fleetstream::app::router(state.clone())).await?;
    let total = HTTP_CLIENTS * POSTS_PER_CLIENT;
    let warm = post_load(addr, token, devices, 5).await?;
    drop(warm);
    let fleet = post_load(addr, token, devices, POSTS_PER_CLIENT).await?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    let per_conn = total / RAW_CONNECTIONS;
    for c in 0..RAW_CONNECTIONS {
        let pool = pool.clone();
        let devices = devices.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            for i in 0..per_conn {
                sqlx::query(
                    "INSERT INTO bench_plain (device_id, metric, value, unit, ts) \
                     VALUES ($1, 'temperature', $2, '°C', now())",
                )
                .bind(devices[(c * 31 + i) % devices.len()])
                .bind(Decimal::new((i % 1000) as i64 * 7, 2))
                .execute(&mut *conn)
                .await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let raw_rate = (per_conn * RAW_CONNECTIONS) as f64 / started.elapsed().as_secs_f64();
    let fleet_rate = fleet.throughput();
    println!("1. single measurements: {HTTP_CLIENTS} HTTP clients x {POSTS_PER_CLIENT} posts");
    println!("  baseline raw INSERT+commit, {RAW_CONNECTIONS} connections: {raw_rate:>8.0} rows/s");
    fleet.report("fleetstream POST measurements/");
    println!(
        "  ratio fleetstream/baseline: {:.2}x (goal >= 1.0x)",
        fleet_rate / raw_rate
    );
    let per_tx: f64 = sqlx::query_scalar(
        "SELECT count(*)::float8 / greatest(count(DISTINCT transaction_id::text), 1) \
         FROM events WHERE category = 'telemetry'",
    )
    .fetch_one(pool)
    .await?;
    println!("  group commit: {per_tx:.1} measurements per transaction");
    Ok(())
}

async fn post_load(
    addr: SocketAddr,
    token: &str,
    devices: &[i64],
    per_client: usize,
) -> anyhow::Result<Samples> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..HTTP_CLIENTS {
        let token = token.to_owned();
        let devices = devices.to_vec();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let device = devices[(client * 13 + i) % devices.len()];
                let body = format!(
                    r#"{{"metric": "temperature", "value": {}.{:02}, "unit": "°C"}}"#,
                    20 + i % 10,
                    i % 100
                );
                let request = format!(
                    "POST /api/devices/{device}/measurements/ HTTP/1.1\r\nhost: {addr}\r\n\
                     authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let sent = Instant::now();
                conn.get_mut().write_all(request.as_bytes()).await?;
                read_reply(&mut conn, "HTTP/1.1 201").await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut samples = Samples::default();
    for t in tasks {
        samples.latencies.extend(t.await??);
    }
    samples.wall = started.elapsed();
    Ok(samples)
}

async fn read_reply(conn: &mut BufReader<TcpStream>, status: &str) -> anyhow::Result<Vec<u8>> {
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    if !line.starts_with(status) {
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
    let mut body = vec![0; length.context("reply without content-length")?];
    conn.read_exact(&mut body).await?;
    Ok(body)
}

/// (ids, devices, metrics, values, timestamps) of one raw baseline batch.
type RawColumns = (
    Vec<i64>,
    Vec<i64>,
    Vec<String>,
    Vec<Decimal>,
    Vec<DateTime<Utc>>,
);

/// A `measurements` row as the baseline handler reads it.
type MeasurementTuple = (i64, i64, String, Decimal, Option<String>, DateTime<Utc>);

// ---- 2. batched ingest until visible -------------------------------------------------------

/// One MQTT-shaped batch: `BATCH` samples across every device.
fn batch_items(devices: &[i64], seed: usize, at: DateTime<Utc>) -> Vec<IngestItem> {
    let per_device = BATCH / devices.len();
    devices
        .iter()
        .enumerate()
        .map(|(d, &device_id)| IngestItem {
            device_id,
            metadata: EventMetadata::default(),
            source: None,
            kind: IngestKind::Samples(
                (0..per_device)
                    .map(|k| ValidSample {
                        metric: if k % 2 == 0 {
                            "temperature"
                        } else {
                            "humidity"
                        }
                        .into(),
                        value: Decimal::new(((seed * 31 + d * 7 + k) % 5000) as i64, 2),
                        unit: None,
                        timestamp: at + ChronoDuration::milliseconds((seed * 10 + k) as i64),
                    })
                    .collect(),
            ),
        })
        .collect()
}

async fn batched_ingest(state: &AppState, pool: &PgPool, devices: &[i64]) -> anyhow::Result<()> {
    let at = now_minus_days(2);
    let batches: Vec<Vec<IngestItem>> = (0..BATCHES).map(|b| batch_items(devices, b, at)).collect();
    // Baseline: the same rows, UNNEST-inserted into the unpartitioned copy.
    let started = Instant::now();
    let mut next_id = 1_000_000_000i64;
    let mut raw_batches = Vec::new();
    for items in &batches {
        let mut cols = RawColumns::default();
        for item in items {
            if let IngestKind::Samples(samples) = &item.kind {
                for s in samples {
                    next_id += 1;
                    cols.0.push(next_id);
                    cols.1.push(item.device_id);
                    cols.2.push(s.metric.clone());
                    cols.3.push(s.value);
                    cols.4.push(s.timestamp);
                }
            }
        }
        raw_batches.push(cols);
    }
    let raw_batches = Arc::new(raw_batches);
    let mut tasks = Vec::new();
    for w in 0..SUBMITTERS {
        let (pool, raw_batches) = (pool.clone(), raw_batches.clone());
        tasks.push(tokio::spawn(async move {
            for cols in raw_batches.iter().skip(w).step_by(SUBMITTERS) {
                sqlx::query(
                    "INSERT INTO bench_copy (id, device_id, metric, value, unit, ts) \
                     SELECT i, d, m, v, NULL, t FROM unnest($1::bigint[], $2::bigint[], $3::text[], \
                     $4::numeric[], $5::timestamptz[]) AS u(i, d, m, v, t)",
                )
                .bind(&cols.0)
                .bind(&cols.1)
                .bind(&cols.2)
                .bind(&cols.3)
                .bind(&cols.4)
                .execute(&pool)
                .await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let raw_rate = (BATCH * BATCHES) as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let batches = Arc::new(batches);
    let mut tasks = Vec::new();
    for w in 0..SUBMITTERS {
        let (writer, batches) = (state.telemetry.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            for items in batches.iter().skip(w).step_by(SUBMITTERS) {
                writer
                    .append(items.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let appended = started.elapsed();
    let end = log_end(pool).await?;
    applied(pool, "measurements", end).await?;
    let visible = started.elapsed();
    let rate = (BATCH * BATCHES) as f64 / visible.as_secs_f64();
    println!("2. batched ingest: {BATCHES} batches of {BATCH} samples across {} devices, {SUBMITTERS} submitters", devices.len());
    println!("  baseline raw UNNEST insert (unpartitioned copy): {raw_rate:>9.0} samples/s");
    println!(
        "  fleetstream appended in {:.2} s, visible in aggregated-data/analytics after {:.2} s: {rate:>9.0} samples/s",
        appended.as_secs_f64(),
        visible.as_secs_f64()
    );
    println!(
        "  ratio fleetstream/baseline: {:.2}x (goal >= 0.5x)",
        rate / raw_rate
    );
    Ok(())
}

async fn projection_lag(state: &AppState, pool: &PgPool, devices: &[i64]) -> anyhow::Result<()> {
    // 5,000 samples/s: a batch of 500 every 100 ms, for 10 s.
    let at = now_minus_days(1);
    let mut lags = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut pending = Vec::new();
    for b in 0..100 {
        tick.tick().await;
        let writer = state.telemetry.clone();
        let items = batch_items(devices, 10_000 + b, at);
        let pool = pool.clone();
        pending.push(tokio::spawn(async move {
            let done = writer
                .append(items)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let committed = Instant::now();
            let position = done
                .iter()
                .flat_map(|d| d.events.iter().map(|e| e.global_position))
                .max()
                .unwrap_or(0);
            applied(&pool, "measurements", position).await?;
            Ok::<_, anyhow::Error>(committed.elapsed())
        }));
    }
    for p in pending {
        lags.push(p.await??);
    }
    let samples = Samples {
        latencies: lags,
        wall: Duration::from_secs(10),
    };
    println!("  projection lag at 5,000 samples/s (commit -> applied, 100 batches): p50 {:.1} ms, p99 {:.1} ms (goal p99 < 100 ms)",
        samples.pct(50.0).as_secs_f64() * 1e3,
        samples.pct(99.0).as_secs_f64() * 1e3);
    Ok(())
}

// ---- 3. analytics over 30 days of 1 Hz -----------------------------------------------------

async fn long_series(
    state: &AppState,
    pool: &PgPool,
    device: i64,
    token: &str,
) -> anyhow::Result<()> {
    let days = long_days();
    let start = now_minus_days(days + 3);
    let seconds = days * 86_400;
    println!("3. loading {seconds} samples ({days} days at 1 Hz) for one device…");
    let loading = Instant::now();
    let chunk = 5_000i64;
    let mut tasks = Vec::new();
    for w in 0..SUBMITTERS as i64 {
        let writer = state.telemetry.clone();
        tasks.push(tokio::spawn(async move {
            let mut from = w * chunk;
            while from < seconds {
                let samples = (from..(from + chunk).min(seconds))
                    .map(|s| ValidSample {
                        metric: "temperature".into(),
                        value: Decimal::new(2000 + (s % 977), 2),
                        unit: None,
                        timestamp: start + ChronoDuration::seconds(s),
                    })
                    .collect();
                writer
                    .append_one(IngestItem {
                        device_id: device,
                        metadata: EventMetadata::default(),
                        kind: IngestKind::Samples(samples),
                        source: None,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                from += chunk * SUBMITTERS as i64;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let end_pos = log_end(pool).await?;
    applied(pool, "measurements", end_pos).await?;
    println!(
        "  loaded and projected in {:.1} s ({:.0} samples/s)",
        loading.elapsed().as_secs_f64(),
        seconds as f64 / loading.elapsed().as_secs_f64()
    );
    sqlx::query("ANALYZE").execute(pool).await?;

    let end = start + ChronoDuration::seconds(seconds);
    let interval = parse_interval("1h").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let client = TestClient::new(state.clone());
    let path = format!(
        "/api/v1/analytics/telemetry/{device}?start={}&end={}&interval=1h",
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let rounds = 30;
    let raw_rounds = 5;
    let (mut api, mut raw) = (Samples::default(), Samples::default());
    let mut buckets = 0;
    for round in 0..rounds + 2 {
        let sent = Instant::now();
        let r = client.get(&path, Some(token)).await;
        let took = sent.elapsed();
        if r.status != 200 || r.body["count"] != json!(days * 24) {
            bail!("analytics reply: {} {}", r.status, r.text);
        }
        if round >= 2 {
            api.latencies.push(took);
        }
        if round < raw_rounds {
            let mut conn = pool.acquire().await?;
            let sent = Instant::now();
            let rows = fleetstream::analytics::series(
                &mut conn,
                device,
                start,
                end,
                interval,
                None,
                Source::Raw,
            )
            .await?;
            raw.latencies.push(sent.elapsed());
            let answer = Value::Array(
                fleetstream::analytics::http::records(
                    &rows,
                    fleetstream::analytics::domain::Agg::Avg,
                )
                .into_iter()
                .map(Value::Object)
                .collect(),
            );
            if answer != r.body["records"] {
                bail!("the roll-up answer differs from the raw answer");
            }
            buckets = rows.len();
        }
    }
    println!("  analytics/telemetry, {days} days, interval 1h ({buckets} buckets), {rounds} rounds ({raw_rounds} raw):");
    let p = |s: &Samples, q| s.pct(q).as_secs_f64() * 1e3;
    println!(
        "    baseline raw rows (same SQL shape, no roll-up): p50 {:>8.1} ms  p99 {:>8.1} ms",
        p(&raw, 50.0),
        p(&raw, 99.0)
    );
    println!("    fleetstream HTTP (roll-up, auth, middleware):   p50 {:>8.1} ms  p99 {:>8.1} ms (goal p99 < 50 ms)", p(&api, 50.0), p(&api, 99.0));
    println!(
        "    speed-up at p50: {:.1}x (goal >= 20x)",
        p(&raw, 50.0) / p(&api, 50.0)
    );
    Ok(())
}

// ---- 4. aggregated-data under 16 clients ---------------------------------------------------

async fn baseline_aggregated(
    State(pool): State<PgPool>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, axum::http::StatusCode> {
    let rows: Vec<MeasurementTuple> =
        sqlx::query_as(fleetstream::measurements::http::AGGREGATED_SQL)
            .bind(id)
            .fetch_all(&pool)
            .await
            .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(axum::Json(Value::Array(
        rows.into_iter()
            .map(|r| json!({"id": r.0, "device": r.1, "metric": r.2, "value": format!("{:.10}", r.3), "unit": r.4, "timestamp": r.5}))
            .collect(),
    )))
}

async fn get_load(
    addr: SocketAddr,
    path_of: impl Fn(usize) -> String + Clone + Send + 'static,
    token: &str,
    clients: usize,
    per_client: usize,
) -> anyhow::Result<Samples> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let token = token.to_owned();
        let path_of = path_of.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let path = path_of(client * 7 + i);
                let request = format!(
                    "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\r\n"
                );
                let sent = Instant::now();
                conn.get_mut().write_all(request.as_bytes()).await?;
                read_reply(&mut conn, "HTTP/1.1 200").await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut samples = Samples::default();
    for t in tasks {
        samples.latencies.extend(t.await??);
    }
    samples.wall = started.elapsed();
    Ok(samples)
}

async fn aggregated_data(
    state: &AppState,
    pool: &PgPool,
    token: &str,
    devices: &[i64],
) -> anyhow::Result<()> {
    let app = serve(fleetstream::app::router(state.clone())).await?;
    let base = serve(
        axum::Router::new()
            .route("/baseline/{id}", get(baseline_aggregated))
            .with_state(pool.clone()),
    )
    .await?;
    let ids = Arc::new(devices[1..].to_vec());
    let fleet_path = {
        let ids = ids.clone();
        move |i: usize| format!("/api/devices/{}/aggregated-data/", ids[i % ids.len()])
    };
    let base_path = move |i: usize| format!("/baseline/{}", ids[i % ids.len()]);
    get_load(base, base_path.clone(), token, 16, 20).await?;
    get_load(app, fleet_path.clone(), token, 16, 20).await?;
    let (mut b, mut f) = (Samples::default(), Samples::default());
    for _ in 0..2 {
        b.extend(get_load(base, base_path.clone(), token, 16, 150).await?);
        f.extend(get_load(app, fleet_path.clone(), token, 16, 150).await?);
    }
    println!(
        "4. aggregated-data (100 newest), 16 clients, {} requests each side:",
        b.latencies.len()
    );
    b.report("baseline (same SQL, bare axum)");
    f.report("fleetstream (auth, visibility, stats)");
    println!(
        "  ratio fleetstream/baseline: p50 {:.2}x, p99 {:.2}x",
        f.pct(50.0).as_secs_f64() / b.pct(50.0).as_secs_f64(),
        f.pct(99.0).as_secs_f64() / b.pct(99.0).as_secs_f64()
    );
    Ok(())
}

// ---- 5. rebuild ----------------------------------------------------------------------------

async fn rebuild(state: &AppState, pool: &PgPool) -> anyhow::Result<()> {
    let projection = state
        .store
        .projections()
        .iter()
        .find(|p| p.name() == "measurements")
        .context("measurements projection")?
        .clone();
    let samples: i64 = sqlx::query_scalar("SELECT count(*) FROM measurements")
        .fetch_one(pool)
        .await?;
    // Baseline: reading the same events once, raw, payloads shipped to the client.
    let started = Instant::now();
    let mut events = 0i64;
    {
        use futures::TryStreamExt;
        let mut rows = sqlx::query_scalar::<_, Value>(
            "SELECT data FROM events WHERE category = 'telemetry' \
             ORDER BY transaction_id, global_position",
        )
        .fetch(pool);
        while let Some(data) = rows.try_next().await? {
            events += i64::from(data.is_object());
        }
    }
    let read = started.elapsed();
    let started = Instant::now();
    let applied = fleetstream_projections::rebuild(
        pool,
        projection.as_ref(),
        state.store.keyring(),
        2_000,
        |_| {},
    )
    .await?;
    let took = started.elapsed();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM measurements")
        .fetch_one(pool)
        .await?;
    if after != samples {
        bail!("rebuild wrote {after} rows, live had {samples}");
    }
    println!("5. rebuild of measurements + 1m/1h roll-ups: {applied} events, {samples} samples");
    println!(
        "  baseline: one raw ordered read of those {events} events: {:.2} s",
        read.as_secs_f64()
    );
    println!(
        "  rebuild: {:.2} s = {:.0} samples/s (goal >= 100,000/s), {:.1}x the raw read's time",
        took.as_secs_f64(),
        samples as f64 / took.as_secs_f64(),
        took.as_secs_f64() / read.as_secs_f64()
    );
    Ok(())
}
