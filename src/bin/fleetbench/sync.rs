//! `sync`: samples/s of KooDTX pushes through the real command path (lock, keyed read, pure
//! decision, event append, inline upsert, sync log) versus a raw `COPY` of the same rows into
//! a plain table, on a fresh database of the same Postgres.

use chrono::Utc;
use fleetstream::sync::domain::{PushRecording, SessionInput};
use fleetstream_events::{EventMetadata, Role, SensorSample};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};
use std::str::FromStr;
use std::time::{Duration, Instant};

const SIZES: [(usize, usize); 2] = [(1_000, 20), (10_000, 5)];

pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    let name = format!("fleetbench_sync_{}", std::process::id());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let result = bench(database_url, &name).await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    result
}

fn samples(count: usize) -> Vec<SensorSample> {
    (0..count)
        .map(|i| SensorSample {
            sensor_type: ["accelerometer", "gyroscope", "gps"][i % 3].to_owned(),
            timestamp: 1_699_876_543_210 + i as i64,
            data: json!({"x": 0.1 + i as f64, "y": 0.2, "z": 9.8}),
        })
        .collect()
}

async fn bench(database_url: &str, name: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(database_url)?.database(name);
    let pool = PgPoolOptions::new()
        .max_connections(12)
        .connect_with(options)
        .await?;
    fleetstream::db::MIGRATOR.run(&pool).await?;
    pool.execute(
        "CREATE TABLE raw_samples (session_id TEXT, sensor_type TEXT, timestamp BIGINT, data JSONB);
         CREATE TABLE keyed_samples (LIKE sensor_samples INCLUDING ALL);",
    )
    .await?;
    let state = fleetstream::testing::state(pool.clone());
    let account = fleetstream::testing::account(&state, "bench@example.com", Role::User).await;

    println!("suite sync: samples/s, pushes to new sessions (all inserts), one push at a time");
    println!("  COPY: the rows into an unindexed table; keyed COPY: into a copy of sensor_samples");
    println!("  (its primary key), the floor for the read model alone, without the event log");
    println!(
        "{:>8} {:>6} {:>10} {:>10} {:>7} {:>12} {:>7}",
        "samples", "pushes", "push/s", "COPY/s", "ratio", "keyed COPY/s", "ratio"
    );
    let mut session = 0usize;
    for (size, pushes) in SIZES {
        let data = samples(size);
        // warm-up of both paths
        session += 1;
        push(
            &state.store,
            account.id,
            &format!("bench-{session}"),
            data.clone(),
        )
        .await?;
        copy(&pool, Baseline::Unindexed, session, &data).await?;
        copy(&pool, Baseline::Keyed, session, &data).await?;
        let mut command = Duration::ZERO;
        let mut raw = Duration::ZERO;
        let mut keyed = Duration::ZERO;
        for _ in 0..pushes {
            session += 1;
            let batch = data.clone();
            let started = Instant::now();
            push(&state.store, account.id, &format!("bench-{session}"), batch).await?;
            command += started.elapsed();
            let started = Instant::now();
            copy(&pool, Baseline::Unindexed, session, &data).await?;
            raw += started.elapsed();
            let started = Instant::now();
            copy(&pool, Baseline::Keyed, session, &data).await?;
            keyed += started.elapsed();
        }
        let total = (size * pushes) as f64;
        let push_rate = total / command.as_secs_f64();
        let copy_rate = total / raw.as_secs_f64();
        let keyed_rate = total / keyed.as_secs_f64();
        println!(
            "{size:>8} {pushes:>6} {push_rate:>10.0} {copy_rate:>10.0} {:>6.0}% {keyed_rate:>12.0} {:>6.0}%",
            100.0 * push_rate / copy_rate,
            100.0 * push_rate / keyed_rate
        );
    }
    concurrent(&state.store, account.id, &mut session).await?;
    pool.close().await;
    Ok(())
}

const CONCURRENT_PUSHES: usize = 8;
const CONCURRENT_SAMPLES: usize = 1_000;
const CONCURRENT_ROUNDS: usize = 5;

/// 8 concurrent pushes from one account, to 8 new sessions each round: as the command runs
/// them (concurrently, sessions locked one by one) and, as the baseline of the same run, one at
/// a time as the account lock the command no longer takes made them (emulated with an
/// in-process mutex around each push; the lock serialised them in Postgres the same way).
async fn concurrent(
    store: &fleetstream::es::EventStore,
    account_id: i64,
    session: &mut usize,
) -> anyhow::Result<()> {
    let data = samples(CONCURRENT_SAMPLES);
    let account_lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let mut rounds = Vec::new();
    for _ in 0..CONCURRENT_ROUNDS {
        let mut rates = [0.0f64; 2];
        for (serialised, rate) in [true, false].into_iter().zip(rates.iter_mut()) {
            let started = Instant::now();
            let tasks: Vec<_> = (0..CONCURRENT_PUSHES)
                .map(|_| {
                    *session += 1;
                    let (store, data, lock, id) =
                        (store.clone(), data.clone(), account_lock.clone(), *session);
                    tokio::spawn(async move {
                        let _held = if serialised {
                            Some(lock.lock_owned().await)
                        } else {
                            None
                        };
                        push(&store, account_id, &format!("bench-{id}"), data).await
                    })
                })
                .collect();
            for task in tasks {
                task.await??;
            }
            *rate =
                (CONCURRENT_PUSHES * CONCURRENT_SAMPLES) as f64 / started.elapsed().as_secs_f64();
        }
        rounds.push(rates);
    }
    rounds.sort_by(|a, b| (a[1] / a[0]).total_cmp(&(b[1] / b[0])));
    let ratios: Vec<String> = rounds
        .iter()
        .map(|r| format!("{:.2}", r[1] / r[0]))
        .collect();
    let [serial, parallel] = rounds[rounds.len() / 2];
    println!(
        "{CONCURRENT_PUSHES} concurrent pushes of {CONCURRENT_SAMPLES} samples from one account: {parallel:.0} samples/s; one at a time (the former account lock) {serial:.0} samples/s; {:.2}x (median of {CONCURRENT_ROUNDS} alternating rounds: {})",
        parallel / serial,
        ratios.join(" ")
    );
    Ok(())
}

/// One KooDTX push of `samples` into recording `session_id` of `account_id`.
pub(crate) async fn push(
    store: &fleetstream::es::EventStore,
    account_id: i64,
    session_id: &str,
    samples: Vec<SensorSample>,
) -> anyhow::Result<()> {
    let receipt = fleetstream::sync::push(
        store,
        EventMetadata::default(),
        PushRecording {
            account_id,
            session: SessionInput {
                session_id: session_id.to_owned(),
                start_time: Utc::now(),
                end_time: None,
                is_active: None,
                enabled_sensors: None,
                sample_rate: Some(100),
                notes: None,
            },
            rejected: 0,
            bytes: 0,
            sync_log_id: 0,
            now: fleetstream::sync::now(),
            samples,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("push failed: {e}"))?;
    anyhow::ensure!(receipt.counts.inserted > 0, "nothing inserted");
    Ok(())
}

/// The tables a push is measured against.
#[derive(Clone, Copy)]
enum Baseline {
    /// `raw_samples`: no key, no index.
    Unindexed,
    /// `keyed_samples`: a copy of `sensor_samples`, primary key and timestamps included.
    Keyed,
}

impl Baseline {
    /// The table, its columns and the text each row ends with.
    fn target(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Unindexed => (
                "raw_samples",
                "session_id, sensor_type, timestamp, data",
                "\n",
            ),
            Self::Keyed => (
                "keyed_samples",
                "session_id, sensor_type, timestamp, data, created_at, updated_at",
                "\t2026-11-29 00:00:00+00\t2026-11-29 00:00:00+00\n",
            ),
        }
    }
}

/// A baseline: the same rows, text-format `COPY`.
async fn copy(
    pool: &PgPool,
    baseline: Baseline,
    session: usize,
    samples: &[SensorSample],
) -> anyhow::Result<()> {
    let (table, columns, row_end) = baseline.target();
    let mut text = String::with_capacity(samples.len() * 128);
    for s in samples {
        let data = s.data.to_string().replace('\\', "\\\\");
        text.push_str(&format!(
            "bench-{session}\t{}\t{}\t{data}{row_end}",
            s.sensor_type, s.timestamp
        ));
    }
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
        .await?;
    copy.send(text.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}
