//! Publishes the log, in order, to the JetStream stream `FLEET_EVENTS`, checkpointing only after
//! JetStream acknowledged. While NATS is unreachable events wait in the log; republished
//! duplicates are dropped by JetStream's `Nats-Msg-Id` de-duplication.
//!
//! No single event can stop the relay (ADR 0004): an event whose message NATS would refuse
//! (over the server's `max_payload` or the stream's message limit, not encodable, or refused by
//! JetStream) is published without its payload, with header `Fleet-Payload-Omitted: <bytes>`,
//! and counted in `fleet_relay_events_reduced_total{reason}`. A client that stops working is
//! replaced; the relay resumes from its checkpoint.

use async_nats::jetstream::{self, context::PublishAckFuture, context::PublishErrorKind};
use async_nats::HeaderMap;
use fleetstream_events::store::{read_all, Checkpoint};
use fleetstream_events::{EventEnvelope, StoredEvent};
use fleetstream_projections::Wakeup;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const RELAY_NAME: &str = "nats_relay";
pub const STREAM_NAME: &str = "FLEET_EVENTS";
/// Events read and published per batch; async-nats stalls past 5,000 un-acked publishes.
pub const PUBLISH_WINDOW: i64 = 1000;
/// Bytes published but not yet acknowledged before the relay waits for the acks.
const MAX_IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;
/// Room under the message limit for the headers NATS counts with the payload.
const HEADER_ALLOWANCE: usize = 2048;
/// Used until the client has heard the server's INFO (nats-server's default).
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// Consecutive failed batches after which the NATS client is replaced by a new one.
const REPLACE_CLIENT_AFTER: u32 = 3;
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

/// Creates `FLEET_EVENTS` (subjects `fleet.>`) when it does not exist; returns its message
/// size limit (`None` when unlimited).
pub async fn ensure_stream(js: &jetstream::Context) -> Result<Option<usize>, RelayError> {
    let mut stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: STREAM_NAME.into(),
            subjects: vec!["fleet.>".into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(nats_err)?;
    let limit = stream
        .info()
        .await
        .map_err(nats_err)?
        .config
        .max_message_size;
    Ok((limit > 0).then_some(limit as usize))
}

/// A subject token may not be empty nor contain `.`, `*`, `>` or whitespace.
fn subject_token(raw: &str) -> String {
    if raw.is_empty() {
        return "_".into();
    }
    raw.chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control() {
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

/// Purges the messages of these categories from `FLEET_EVENTS` (`privacy migrate`: what the
/// relay published before personal fields were redacted); returns how many went.
pub async fn purge_categories(
    client: async_nats::Client,
    categories: &[&str],
) -> Result<u64, RelayError> {
    let js = jetstream::new(client);
    let Ok(stream) = js.get_stream(STREAM_NAME).await else {
        return Ok(0);
    };
    let mut purged = 0;
    for category in categories {
        let subject = format!("fleet.{}.>", subject_token(category));
        purged += stream
            .purge()
            .filter(subject)
            .await
            .map_err(nats_err)?
            .purged;
    }
    Ok(purged)
}

/// Where a reduced event goes when JetStream refuses even that on the event's own subject.
fn fallback_subject(event: &StoredEvent) -> String {
    format!("fleet.relay.unroutable.{}", event.global_position)
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

/// One message ready to publish.
struct Outgoing {
    subject: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Publishes events to `FLEET_EVENTS` within what the server and the stream accept.
pub struct Publisher {
    js: jetstream::Context,
    /// Largest body published whole: the server's `max_payload` or the stream's message limit,
    /// whichever is smaller, less room for headers.
    body_limit: usize,
}

impl Publisher {
    /// Ensures the stream and reads the limits from the connection and the stream.
    pub async fn new(client: async_nats::Client) -> Result<Self, RelayError> {
        let js = jetstream::new(client.clone());
        // A round trip first: a client that connects in the background knows the server's
        // limits only once it has heard its INFO.
        let stream_limit = ensure_stream(&js).await?.unwrap_or(usize::MAX);
        let max_payload = match client.server_info().max_payload {
            0 => DEFAULT_MAX_PAYLOAD,
            n => n,
        };
        Ok(Self {
            js,
            body_limit: max_payload
                .min(stream_limit)
                .saturating_sub(HEADER_ALLOWANCE),
        })
    }

    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    fn message_for(&self, event: &StoredEvent) -> Outgoing {
        let envelope = EventEnvelope::from(event);
        match serde_json::to_vec(&envelope) {
            Ok(body) if body.len() <= self.body_limit => Outgoing {
                subject: subject_for(event),
                headers: headers_for(event),
                body,
            },
            Ok(body) => reduced(event, envelope, body.len(), "size", subject_for(event)),
            Err(_) => reduced(event, envelope, 0, "serialization", subject_for(event)),
        }
    }

    /// Publishes a batch in order with the acks in flight together (bounded by count and
    /// bytes), then waits for every ack. A message JetStream refuses is published again without
    /// its payload right away; a failure of NATS itself fails the batch (retried whole later:
    /// `Nats-Msg-Id` drops what was already stored).
    pub async fn publish_batch(&self, events: &[StoredEvent]) -> Result<(), RelayError> {
        let mut pending: Vec<(usize, PublishAckFuture)> = Vec::new();
        let mut in_flight = 0usize;
        for (i, event) in events.iter().enumerate() {
            let message = self.message_for(event);
            in_flight += message.body.len();
            let ack = self
                .js
                .publish_with_headers(message.subject, message.headers, message.body.into())
                .await
                .map_err(nats_err)?;
            pending.push((i, ack));
            if in_flight >= MAX_IN_FLIGHT_BYTES {
                self.await_acks(events, std::mem::take(&mut pending))
                    .await?;
                in_flight = 0;
            }
        }
        self.await_acks(events, pending).await
    }

    async fn await_acks(
        &self,
        events: &[StoredEvent],
        pending: Vec<(usize, PublishAckFuture)>,
    ) -> Result<(), RelayError> {
        for (i, ack) in pending {
            match ack.await {
                Ok(_) => {}
                Err(err) if is_refusal(&err) => {
                    tracing::warn!(
                        position = events[i].global_position,
                        error = %err,
                        "JetStream refused an event; publishing it without its payload"
                    );
                    self.publish_refused(&events[i]).await?;
                }
                Err(err) => return Err(nats_err(err)),
            }
        }
        metrics::counter!("fleet_relay_events_published_total").increment(events.len() as u64);
        Ok(())
    }

    /// Publishes a refused event reduced, on its own subject or else on the fallback subject.
    /// It lands after the events published with it in the same window (their acks were in
    /// flight); its `Fleet-Position` header still says where it belongs.
    async fn publish_refused(&self, event: &StoredEvent) -> Result<(), RelayError> {
        let bytes = serde_json::to_vec(&EventEnvelope::from(event)).map_or(0, |b| b.len());
        for subject in [subject_for(event), fallback_subject(event)] {
            let message = reduced(event, EventEnvelope::from(event), bytes, "refused", subject);
            let ack = self
                .js
                .publish_with_headers(message.subject, message.headers, message.body.into())
                .await
                .map_err(nats_err)?;
            match ack.await {
                Ok(_) => return Ok(()),
                Err(err) if is_refusal(&err) => continue,
                Err(err) => return Err(nats_err(err)),
            }
        }
        // Even the reduced message was refused twice: the event stays in the log only.
        tracing::error!(
            position = event.global_position,
            "event could not be published in any form; it stays readable in the log"
        );
        metrics::counter!("fleet_relay_events_reduced_total", "reason" => "dropped").increment(1);
        Ok(())
    }
}

/// The event without its payload: headers kept, plus `Fleet-Payload-Omitted: <bytes>` and
/// `Fleet-Payload-Omitted-Reason`.
fn reduced(
    event: &StoredEvent,
    envelope: EventEnvelope,
    bytes: usize,
    reason: &'static str,
    subject: String,
) -> Outgoing {
    metrics::counter!("fleet_relay_events_reduced_total", "reason" => reason).increment(1);
    let mut headers = headers_for(event);
    headers.insert("Fleet-Payload-Omitted", bytes.to_string().as_str());
    headers.insert("Fleet-Payload-Omitted-Reason", reason);
    let mut reduced = envelope.omitting_payload(bytes as u64, reason);
    let body = serde_json::to_vec(&reduced).unwrap_or_else(|_| {
        // Metadata that cannot be encoded goes too; ids and positions always encode.
        reduced.metadata = serde_json::Value::Null;
        serde_json::to_vec(&reduced).unwrap_or_default()
    });
    Outgoing {
        subject,
        headers,
        body,
    }
}

/// JetStream answered this one message with an API error (message too large for the stream,
/// …): a refusal of the message, not a failure of NATS.
fn is_refusal(err: &jetstream::context::PublishError) -> bool {
    err.kind() == PublishErrorKind::Other
        && std::error::Error::source(err)
            .is_some_and(|source| source.downcast_ref::<jetstream::Error>().is_some())
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

/// Runs the relay until `shutdown`, connecting to `nats_url` itself (its own connection, so a
/// server that drops it affects nothing else). Only one process relays at a time: the holder
/// keeps a session advisory lock on its own connection (no transaction stays open while NATS
/// acks, so the relay never holds back other log readers); the others wait to take over.
pub async fn run(pool: PgPool, nats_url: String, mut wakeup: Wakeup, shutdown: CancellationToken) {
    let mut relay = Relay {
        pool,
        nats_url,
        client: None,
        failures: 0,
    };
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let pause = match relay.while_holding(&mut wakeup, &shutdown).await {
            Ok(Holding::Stopped) => break,
            Ok(Holding::HeldElsewhere) => Duration::from_secs(1),
            Err(err) => {
                if relay.failures == 0 {
                    tracing::warn!(error = %err, "relay paused; events wait in the log");
                } else {
                    tracing::debug!(error = %err, retry_in = ?backoff, "relay still paused");
                }
                relay.record_failure(&err).await;
                let pause = backoff;
                // Short: a backlog should start draining within a second of NATS returning.
                backoff = (backoff * 2).min(Duration::from_secs(1));
                pause
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

enum Holding {
    Stopped,
    HeldElsewhere,
}

struct Relay {
    pool: PgPool,
    nats_url: String,
    client: Option<async_nats::Client>,
    /// Consecutive failed batches.
    failures: u32,
}

impl Relay {
    async fn client(&mut self) -> Result<async_nats::Client, RelayError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = crate::nats::connect(&self.nats_url, "fleetstream-relay")
            .await
            .map_err(nats_err)?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn record_failure(&mut self, err: &RelayError) {
        self.failures += 1;
        metrics::counter!("fleet_relay_errors_total").increment(1);
        if matches!(err, RelayError::Nats(_)) && self.failures >= REPLACE_CLIENT_AFTER {
            tracing::info!(
                failures = self.failures,
                "replacing the relay's NATS client"
            );
            self.client = None;
            self.failures = 0;
        }
        let _ =
            fleetstream_projections::record_error(&self.pool, RELAY_NAME, &err.to_string()).await;
    }

    async fn while_holding(
        &mut self,
        wakeup: &mut Wakeup,
        shutdown: &CancellationToken,
    ) -> Result<Holding, RelayError> {
        let mut conn = self.pool.acquire().await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        if !held {
            return Ok(Holding::HeldElsewhere);
        }
        let result = self.relay_loop(&mut conn, wakeup, shutdown).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(RELAY_LOCK_KEY)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // The session may still hold the lock: never hand this connection back.
            conn.detach();
        }
        result.map(|()| Holding::Stopped)
    }

    async fn relay_loop(
        &mut self,
        conn: &mut PgConnection,
        wakeup: &mut Wakeup,
        shutdown: &CancellationToken,
    ) -> Result<(), RelayError> {
        let publisher = Publisher::new(self.client().await?).await?;
        tracing::info!(
            body_limit = publisher.body_limit(),
            "relaying the log to JetStream"
        );
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
            publisher.publish_batch(&events).await?;
            self.failures = 0;
            at = Checkpoint::after(last);
            fleetstream_projections::save_checkpoint(conn, RELAY_NAME, at).await?;
            metrics::gauge!("fleet_projection_position", "projection" => RELAY_NAME)
                .set(at.global_position as f64);
        }
        Ok(())
    }
}

/// Publishes every event from `from_position` on again (e.g. into a re-created stream).
pub async fn republish(
    pool: &PgPool,
    client: async_nats::Client,
    from_position: i64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, RelayError> {
    let publisher = Publisher::new(client).await?;
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
        publisher.publish_batch(&events).await?;
        done += events.len() as u64;
        progress(done, total as u64);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tokens_are_always_valid() {
        assert_eq!(subject_token(""), "_");
        assert_eq!(subject_token("a.b*c>d e\u{7}"), "a_b_c_d_e_");
        assert_eq!(subject_token("recording-s1"), "recording-s1");
    }
}
