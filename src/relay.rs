//! Publishes the log, in order, to the JetStream stream `FLEET_EVENTS`, checkpointing only after
//! JetStream acknowledged. While NATS is unreachable events wait in the log; republished
//! duplicates are dropped by JetStream's `Nats-Msg-Id` de-duplication.

use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::HeaderMap;
use fleetstream_events::store::{read_all, Checkpoint};
use fleetstream_events::{EventEnvelope, StoredEvent};
use fleetstream_projections::Wakeup;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const RELAY_NAME: &str = "nats_relay";
pub const STREAM_NAME: &str = "FLEET_EVENTS";
/// Un-acked publishes in flight at once; async-nats stalls past 5,000.
pub const PUBLISH_WINDOW: i64 = 1000;
const RELAY_LOCK_KEY: i64 = 0x0f1e_e75e_0000_0001;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
}

fn nats_err(err: impl std::fmt::Display) -> RelayError {
    RelayError::Nats(err.to_string())
}

/// Creates `FLEET_EVENTS` (subjects `fleet.>`) when it does not exist.
pub async fn ensure_stream(js: &jetstream::Context) -> Result<(), RelayError> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: STREAM_NAME.into(),
        subjects: vec!["fleet.>".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(nats_err)?;
    Ok(())
}

/// A subject token may not contain `.`, `*`, `>` or whitespace.
fn subject_token(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// `fleet.<category>.<stream id>.<EventType>`
pub fn subject_for(event: &StoredEvent) -> String {
    format!(
        "fleet.{}.{}.{}",
        subject_token(event.category()),
        subject_token(&event.stream_id),
        subject_token(&event.event_type)
    )
}

pub fn headers_for(event: &StoredEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
    headers.insert("Fleet-Position", event.global_position.to_string().as_str());
    headers.insert(
        "Fleet-Stream-Version",
        event.stream_version.to_string().as_str(),
    );
    headers.insert("Fleet-Event-Type", event.event_type.as_str());
    headers.insert(
        "Fleet-Schema-Version",
        event.schema_version.to_string().as_str(),
    );
    headers
}

/// Publishes a batch with all acks in flight together, then waits for every ack.
pub async fn publish_batch(
    js: &jetstream::Context,
    events: &[StoredEvent],
) -> Result<(), RelayError> {
    let mut pending: Vec<PublishAckFuture> = Vec::with_capacity(events.len());
    for event in events {
        let body = serde_json::to_vec(&EventEnvelope::from(event)).map_err(nats_err)?;
        pending.push(
            js.publish_with_headers(subject_for(event), headers_for(event), body.into())
                .await
                .map_err(nats_err)?,
        );
    }
    for ack in pending {
        ack.await.map_err(nats_err)?;
    }
    Ok(())
}

async fn load_checkpoint(conn: &mut PgConnection) -> Result<Checkpoint, sqlx::Error> {
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(RELAY_NAME)
        .execute(&mut *conn)
        .await?;
    let (transaction_id, global_position): (i64, i64) = sqlx::query_as(
        "SELECT transaction_id, global_position FROM projection_checkpoints WHERE name = $1",
    )
    .bind(RELAY_NAME)
    .fetch_one(conn)
    .await?;
    Ok(Checkpoint {
        transaction_id,
        global_position,
    })
}

/// Runs the relay until `shutdown`. Only one process relays at a time: the holder keeps a
/// session advisory lock on its own connection (no transaction stays open while NATS acks, so
/// the relay never holds back other log readers).
pub async fn run(
    pool: PgPool,
    client: async_nats::Client,
    mut wakeup: Wakeup,
    shutdown: CancellationToken,
) {
    let js = jetstream::new(client);
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        match relay_while_holding(&pool, &js, &mut wakeup, &shutdown).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "relay paused; events wait in the log");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn relay_while_holding(
    pool: &PgPool,
    js: &jetstream::Context,
    wakeup: &mut Wakeup,
    shutdown: &CancellationToken,
) -> Result<(), RelayError> {
    let mut conn = pool.acquire().await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RELAY_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !held {
        return Err(RelayError::Nats("another process holds the relay".into()));
    }
    let result = relay_loop(&mut conn, js, wakeup, shutdown).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RELAY_LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result
}

async fn relay_loop(
    conn: &mut PgConnection,
    js: &jetstream::Context,
    wakeup: &mut Wakeup,
    shutdown: &CancellationToken,
) -> Result<(), RelayError> {
    ensure_stream(js).await?;
    let mut at = load_checkpoint(conn).await?;
    while !shutdown.is_cancelled() {
        let events = read_all(conn, at, PUBLISH_WINDOW, None).await?;
        let Some(last) = events.last() else {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wakeup.wait_for(Duration::from_millis(250)) => {}
            }
            continue;
        };
        publish_batch(js, &events).await?;
        at = Checkpoint::after(last);
        fleetstream_projections::save_checkpoint(conn, RELAY_NAME, at).await?;
        metrics::gauge!("fleet_projection_position", "projection" => RELAY_NAME)
            .set(at.global_position as f64);
    }
    Ok(())
}

/// Publishes every event from `from_position` on again (e.g. into a re-created stream).
pub async fn republish(
    pool: &PgPool,
    client: async_nats::Client,
    from_position: i64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, RelayError> {
    let js = jetstream::new(client);
    ensure_stream(&js).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position >= $1")
        .bind(from_position)
        .fetch_one(pool)
        .await?;
    let mut next = from_position;
    let mut done = 0u64;
    loop {
        let events: Vec<StoredEvent> = sqlx::query_as(
            "SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
                    event_id, event_type, schema_version, data, metadata, recorded_at
             FROM events WHERE global_position >= $1 ORDER BY global_position LIMIT $2",
        )
        .bind(next)
        .bind(PUBLISH_WINDOW)
        .fetch_all(pool)
        .await?;
        let Some(last) = events.last() else { break };
        next = last.global_position + 1;
        publish_batch(&js, &events).await?;
        done += events.len() as u64;
        progress(done, total as u64);
    }
    Ok(done)
}
