//! `fleetbench append`: the event log's write path and the projection runtime, each against a
//! physical baseline measured in the same run on the same Postgres.
//!
//! It creates its own database (`fleetbench_<pid>`), migrates it, measures, and drops it:
//! (a) raw single-row INSERT+commit rate into a copy of the `events` table (1 and 16
//! connections), (b) raw UNNEST batch inserts (100 rows), then fleetstream single-event commands
//! (`EventStore::execute`) with 1 and 16 writers and 100-event appends as ratios of those;
//! projection lag p50/p99 at a steady 1,000 events/s through the real `Runner` + `Wakeup`; and
//! rebuild events/s over 200k events against one streamed query reading the same events.

use async_trait::async_trait;
use fleetstream::es::{Aggregate, EventStore};
use fleetstream_events::notify::AppendNotifier;
use fleetstream_events::store::{self, ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{DomainEvent, EventMetadata, StoredEvent};
use fleetstream_projections::{Projection, ProjectionError, Runner, RunnerConfig, Wakeup};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PHASE: Duration = Duration::from_secs(3);
const BATCH_ROWS: usize = 100;
const BATCH_ROUNDS: usize = 5;
const LAG_RATE_PER_SEC: u64 = 1_000;
const LAG_DURATION: Duration = Duration::from_secs(10);
const REBUILD_EVENTS: usize = 200_000;
const REBUILD_ROUNDS: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum BenchEvent {
    Ticked { by: i64 },
}
fleetstream_events::domain_event!(BenchEvent, "bench", [Ticked]);

#[derive(Default, Clone)]
struct Ticks {
    total: i64,
}

impl Aggregate for Ticks {
    type Event = BenchEvent;
    fn evolve(&mut self, event: &BenchEvent) {
        let BenchEvent::Ticked { by } = event;
        self.total += by;
    }
}

pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let admin_options = PgConnectOptions::from_str(database_url)
        .map_err(|err| anyhow::anyhow!("DATABASE_URL: {err}"))?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin_options.clone())
        .await?;
    let name = format!("fleetbench_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let result = run_in(admin_options.database(&name)).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

async fn run_in(options: PgConnectOptions) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect_with(options)
        .await?;
    fleetstream::db::MIGRATOR.run(&pool).await?;
    sqlx::raw_sql(
        "CREATE TABLE raw_events (LIKE events INCLUDING ALL);
         CREATE TABLE raw_events_notify (LIKE events INCLUDING ALL);
         CREATE TRIGGER raw_events_notify AFTER INSERT ON raw_events_notify
             FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
         CREATE TABLE bench_lag (global_position BIGINT NOT NULL);
         CREATE TABLE bench_rebuild (stream_id TEXT PRIMARY KEY, events BIGINT NOT NULL, total BIGINT NOT NULL);",
    )
    .execute(&pool)
    .await?;
    let settings: (String, String) =
        sqlx::query_as("SELECT current_setting('synchronous_commit'), current_setting('fsync')")
            .fetch_one(&pool)
            .await?;
    println!(
        "fleetbench append — Postgres synchronous_commit={} fsync={}, {PHASE:?} per phase",
        settings.0, settings.1
    );

    let raw_single_1 = measure(&pool, 1, raw_single).await?;
    let raw_single_16 = measure(&pool, 16, raw_single).await?;
    let raw_notify_16 = measure(&pool, 16, |pool, _, i| raw_single_notify(pool, i)).await?;
    let mut batches = Rounds::default();
    for _ in 0..BATCH_ROUNDS {
        let raw = measure(&pool, 1, raw_batched).await?;
        let fleet = measure(&pool, 1, fleet_batched).await?;
        batches.push(raw, fleet);
    }
    let batched = batches.median();
    let raw_batch = batched.baseline;
    println!("raw single-row INSERT+commit, 1 connection    {raw_single_1:>10.0} rows/s");
    println!("raw single-row INSERT+commit, 16 connections  {raw_single_16:>10.0} rows/s");
    println!("  same + a NOTIFY in each transaction, 16    {raw_notify_16:>10.0} rows/s  (why the log notifies after commit)");
    println!("raw UNNEST insert, {BATCH_ROWS}-row batches        {raw_batch:>10.0} rows/s");

    let store_ = EventStore::new(pool.clone(), Vec::new());
    let cmd_1 = measure(&pool, 1, {
        let store_ = store_.clone();
        move |_, w, i| command(store_.clone(), w, i)
    })
    .await?;
    let cmd_16 = measure(&pool, 16, {
        let store_ = store_.clone();
        move |_, w, i| command(store_.clone(), w, i)
    })
    .await?;
    println!(
        "fleetstream single-event command, 1 writer    {cmd_1:>10.0} events/s  = {:.2} × raw single (1 conn)",
        cmd_1 / raw_single_1
    );
    println!(
        "fleetstream single-event command, 16 writers  {cmd_16:>10.0} events/s  = {:.2} × raw single (16 conns), {:.2} × raw single (1 conn)",
        cmd_16 / raw_single_16,
        cmd_16 / raw_single_1
    );
    println!(
        "fleetstream {BATCH_ROWS}-event append                {:>10.0} events/s  = {:.2} × raw batched (median of {BATCH_ROUNDS} alternating rounds: {})",
        batched.measured,
        batched.ratio(),
        batches.ratios()
    );

    let (p50, p99, achieved) = projection_lag(&pool).await?;
    println!(
        "projection lag at {LAG_RATE_PER_SEC} events/s ({achieved:.0} achieved) p50 {:.1} ms, p99 {:.1} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );

    let rebuilds = rebuild_rounds(&pool).await?;
    let rebuild = rebuilds.median();
    println!(
        "raw read of the same {REBUILD_EVENTS} events, one query {:>10.0} events/s",
        rebuild.baseline
    );
    println!(
        "rebuild over {REBUILD_EVENTS} events            {:>10.0} events/s  = {:.2} × raw read (median of {REBUILD_ROUNDS} alternating rounds: {})",
        rebuild.measured,
        rebuild.ratio(),
        rebuilds.ratios()
    );
    pool.close().await;
    Ok(())
}

/// A measurement alternated with its baseline, round by round, so drift on a shared machine hits
/// both; the median round (by ratio) is the one reported.
#[derive(Default)]
struct Rounds(Vec<Round>);

#[derive(Clone, Copy)]
struct Round {
    baseline: f64,
    measured: f64,
}

impl Round {
    fn ratio(self) -> f64 {
        self.measured / self.baseline
    }
}

impl Rounds {
    fn push(&mut self, baseline: f64, measured: f64) {
        self.0.push(Round { baseline, measured });
        self.0.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    }

    fn median(&self) -> Round {
        self.0[self.0.len() / 2]
    }

    /// Every round's ratio, lowest first.
    fn ratios(&self) -> String {
        let ratios: Vec<String> = self.0.iter().map(|r| format!("{:.2}", r.ratio())).collect();
        ratios.join(" ")
    }
}

/// Runs `writers` concurrent loops of `op` for one phase; returns rows per second.
async fn measure<F, Fut>(pool: &PgPool, writers: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(PgPool, usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<u64>> + Send,
{
    let started = Instant::now();
    let deadline = started + PHASE;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (pool, op) = (pool.clone(), op.clone());
            tokio::spawn(async move {
                let mut rows = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    rows += op(pool.clone(), w, i).await?;
                    i += 1;
                }
                anyhow::Ok(rows)
            })
        })
        .collect();
    let mut rows = 0u64;
    for task in tasks {
        rows += task.await??;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

fn payload(i: u64) -> serde_json::Value {
    serde_json::json!({ "by": i })
}

async fn raw_single(pool: PgPool, _w: usize, i: u64) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
         VALUES ($1, 1, $2, 'Ticked', 1, $3, '{}')",
    )
    .bind(format!("raw-{}", Uuid::now_v7()))
    .bind(Uuid::now_v7())
    .bind(payload(i))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(1)
}

/// The same single-row insert into a table carrying the log's `pg_notify` trigger.
async fn raw_single_notify(pool: PgPool, i: u64) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO raw_events_notify (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
         VALUES ($1, 1, $2, 'Ticked', 1, $3, '{}')",
    )
    .bind(format!("raw-{}", Uuid::now_v7()))
    .bind(Uuid::now_v7())
    .bind(payload(i))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(1)
}

async fn raw_batched(pool: PgPool, _w: usize, _i: u64) -> anyhow::Result<u64> {
    let stream = format!("rawbatch-{}", Uuid::now_v7().simple());
    let streams = vec![stream; BATCH_ROWS];
    let versions: Vec<i64> = (1..=BATCH_ROWS as i64).collect();
    let ids: Vec<Uuid> = (0..BATCH_ROWS).map(|_| Uuid::now_v7()).collect();
    let types = vec!["Ticked".to_owned(); BATCH_ROWS];
    let schema_versions = vec![1i32; BATCH_ROWS];
    let data: Vec<serde_json::Value> = (0..BATCH_ROWS as u64).map(payload).collect();
    let metadata = vec![serde_json::json!({}); BATCH_ROWS];
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[])",
    )
    .bind(streams)
    .bind(versions)
    .bind(ids)
    .bind(types)
    .bind(schema_versions)
    .bind(data)
    .bind(metadata)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(BATCH_ROWS as u64)
}

/// One command on a fresh stream: load, decide, append at the loaded version, commit.
async fn command(store_: EventStore, _w: usize, _i: u64) -> anyhow::Result<u64> {
    let (_, stored) = store_
        .execute::<Ticks, std::convert::Infallible>(
            Uuid::now_v7().simple(),
            EventMetadata::default(),
            |_| Ok(vec![BenchEvent::Ticked { by: 1 }]),
        )
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok(stored.len() as u64)
}

fn tick_events(n: usize, stream_id: String) -> StreamAppend {
    let metadata = EventMetadata::default();
    StreamAppend {
        stream_id,
        expected: ExpectedVersion::Any,
        events: (0..n as i64)
            .map(|by| NewEvent::from_domain(&BenchEvent::Ticked { by }, &metadata))
            .collect(),
    }
}

/// A 100-event append, events passed by value as `UnitOfWork::commit` passes them.
async fn fleet_batched(pool: PgPool, _w: usize, _i: u64) -> anyhow::Result<u64> {
    let events = tick_events(BATCH_ROWS, format!("batch-{}", Uuid::now_v7().simple()));
    let mut tx = pool.begin().await?;
    let stored = store::append_owned(&mut tx, vec![events]).await?;
    tx.commit().await?;
    Ok(stored.len() as u64)
}

/// Records when each event was applied (the runner commits right after `apply`).
struct LagProjection {
    applied: Arc<Mutex<HashMap<Uuid, Instant>>>,
}

#[async_trait]
impl Projection for LagProjection {
    fn name(&self) -> &'static str {
        "bench_lag"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["lag"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["bench_lag"]
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let positions: Vec<i64> = events.iter().map(|e| e.global_position).collect();
        sqlx::query("INSERT INTO bench_lag SELECT unnest($1::bigint[])")
            .bind(positions)
            .execute(&mut *conn)
            .await?;
        let now = Instant::now();
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        for event in events {
            applied.insert(event.event_id, now);
        }
        Ok(())
    }
}

/// Appends single events at a steady rate with the real runner running; returns p50, p99 of
/// commit → applied, and the append rate achieved.
async fn projection_lag(pool: &PgPool) -> anyhow::Result<(Duration, Duration, f64)> {
    let applied = Arc::new(Mutex::new(HashMap::new()));
    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(pool, shutdown.clone()).await?;
    let projection: Arc<dyn Projection> = Arc::new(LagProjection {
        applied: applied.clone(),
    });
    let runner = Runner::new(pool.clone(), vec![projection], RunnerConfig::default())
        .spawn(wakeup, shutdown.clone());

    let committed = Arc::new(Mutex::new(HashMap::new()));
    // Commits carry EVENTS_PER_COMMIT events: single-event commits cannot reach 1,000/s on a
    // slow-fsync host once NOTIFY serialises them (see the raw NOTIFY baseline above).
    const WRITERS: u64 = 4;
    const EVENTS_PER_COMMIT: u64 = 5;
    let started = Instant::now();
    let notifier = AppendNotifier::new(pool.clone());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (pool, committed) = (pool.clone(), committed.clone());
            let notifier = notifier.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(
                    1_000_000 * WRITERS * EVENTS_PER_COMMIT / LAG_RATE_PER_SEC,
                ));
                let mut n = 0u64;
                while started.elapsed() < LAG_DURATION {
                    tick.tick().await;
                    let mut tx = pool.begin().await?;
                    let stored = store::append(
                        &mut tx,
                        &[tick_events(EVENTS_PER_COMMIT as usize, format!("lag-{w}"))],
                    )
                    .await?;
                    tx.commit().await?;
                    let at = Instant::now();
                    notifier.appended();
                    let mut committed = committed.lock().unwrap_or_else(|e| e.into_inner());
                    for event in &stored {
                        committed.insert(event.event_id, at);
                    }
                    n += stored.len() as u64;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut appended = 0u64;
    for writer in writers {
        appended += writer.await??;
    }
    let achieved = appended as f64 / started.elapsed().as_secs_f64();

    let drained = Instant::now();
    while applied.lock().unwrap_or_else(|e| e.into_inner()).len() < appended as usize
        && drained.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    for handle in runner {
        let _ = handle.await;
    }

    let committed = committed.lock().unwrap_or_else(|e| e.into_inner());
    let applied = applied.lock().unwrap_or_else(|e| e.into_inner());
    let mut lags: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, at)| {
            applied
                .get(id)
                .map(|done| done.saturating_duration_since(*at))
        })
        .collect();
    anyhow::ensure!(
        lags.len() == committed.len(),
        "the projection applied only {} of {} events",
        lags.len(),
        committed.len()
    );
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
    Ok((pct(0.50), pct(0.99), achieved))
}

/// Sums ticks per stream; one upsert statement per batch.
struct RebuildProjection;

#[async_trait]
impl Projection for RebuildProjection {
    fn name(&self) -> &'static str {
        "bench_rebuild"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["rebuild"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["bench_rebuild"]
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut sums: HashMap<&str, (i64, i64)> = HashMap::new();
        for event in events {
            let Some(decoded) = event.decode::<RebuildEvent>() else {
                continue;
            };
            let RebuildEvent::Ticked { by } = decoded?;
            let entry = sums.entry(event.stream_id.as_str()).or_default();
            entry.0 += 1;
            entry.1 += by;
        }
        let (streams, (counts, totals)): (Vec<&str>, (Vec<i64>, Vec<i64>)) =
            sums.into_iter().unzip();
        sqlx::query(
            "INSERT INTO bench_rebuild (stream_id, events, total)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
             ON CONFLICT (stream_id) DO UPDATE
             SET events = bench_rebuild.events + EXCLUDED.events,
                 total = bench_rebuild.total + EXCLUDED.total",
        )
        .bind(streams)
        .bind(counts)
        .bind(totals)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum RebuildEvent {
    Ticked { by: i64 },
}
fleetstream_events::domain_event!(RebuildEvent, "rebuild", [Ticked]);

/// Appends the rebuild's events, then alternates a raw read of them with a rebuild (events/s).
async fn rebuild_rounds(pool: &PgPool) -> anyhow::Result<Rounds> {
    const PER_APPEND: usize = 1_000;
    let metadata = EventMetadata::default();
    for chunk in 0..REBUILD_EVENTS / PER_APPEND {
        let mut tx = pool.begin().await?;
        let append = StreamAppend {
            stream_id: RebuildEvent::stream_id(chunk % 100),
            expected: ExpectedVersion::Any,
            events: (0..PER_APPEND as i64)
                .map(|by| NewEvent::from_domain(&RebuildEvent::Ticked { by }, &metadata))
                .collect(),
        };
        store::append(&mut tx, &[append]).await?;
        tx.commit().await?;
    }
    let mut rounds = Rounds::default();
    for _ in 0..REBUILD_ROUNDS {
        let raw = raw_read_rate(pool).await?;
        let rebuild = rebuild_rate(pool).await?;
        rounds.push(raw, rebuild);
    }
    Ok(rounds)
}

/// The physical limit of a rebuild's reads: the category's events decoded by one streamed
/// query, with no batches, checkpoint or read model.
async fn raw_read_rate(pool: &PgPool) -> anyhow::Result<f64> {
    let started = Instant::now();
    let read = sqlx::query_as::<_, StoredEvent>(
        "SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id,
                stream_version, event_id, event_type, schema_version, data, metadata, recorded_at
         FROM events WHERE category = 'rebuild'",
    )
    .fetch(pool)
    .try_fold(0usize, |n, _| async move { Ok(n + 1) })
    .await?;
    anyhow::ensure!(
        read == REBUILD_EVENTS,
        "raw read {read} of {REBUILD_EVENTS} events"
    );
    Ok(read as f64 / started.elapsed().as_secs_f64())
}

async fn rebuild_rate(pool: &PgPool) -> anyhow::Result<f64> {
    let started = Instant::now();
    let applied =
        fleetstream_projections::rebuild(pool, &RebuildProjection, None, 5_000, |_| {}).await?;
    let rate = applied as f64 / started.elapsed().as_secs_f64();
    let events: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(events), 0)::bigint FROM bench_rebuild")
            .fetch_one(pool)
            .await?;
    anyhow::ensure!(
        applied as i64 == events,
        "rebuild applied {applied} events but the read model counts {events}"
    );
    if applied as usize != REBUILD_EVENTS {
        // The xid8 reader stops where an older transaction anywhere in the cluster holds it.
        println!("  (rebuild stopped at {applied} of {REBUILD_EVENTS}: held back by an open transaction)");
    }
    Ok(rate)
}
