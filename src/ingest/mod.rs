//! Device ingress: what devices publish on MQTT `devices/{uid}/telemetry|status|log|response`
//! (NATS subjects `devices.{uid}.…`) is captured by the JetStream stream `DEVICE_INGRESS`; a
//! durable pull consumer feeds this worker (inside `serve`, or alone as `fleetstream ingest`;
//! several instances share the consumer). Each batch is turned into commands and appended in
//! one transaction per aggregate kind (telemetry through the group-committing writer, logs and
//! responses together); event ids derive from the JetStream stream sequence, so a batch
//! redelivered after a crash appends nothing. Messages are acked only after the commit.
//!
//! Bad input never blocks the stream: an unknown or deleted device, malformed JSON, a
//! non-numeric value, a `ts` out of range… is acked, not recorded, counted in
//! `fleet_ingest_rejected_total{reason}`, logged with the subject, and republished to
//! `ingest.rejected.<reason>` (stream `INGEST_REJECTED`, kept a week) for inspection.

pub mod parse;

use crate::device_messages::{self, Received};
use crate::measurements::ingest::{IngestError, IngestItem, IngestKind, TelemetryWriter};
use crate::state::AppState;
use async_nats::jetstream::{self, consumer::pull, stream};
use fleetstream_events::{Connectivity, DeviceMessageEvent, EventMetadata};
use futures::StreamExt;
use parse::{DeviceMessage, Rejection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const STREAM_NAME: &str = "DEVICE_INGRESS";
pub const CONSUMER_NAME: &str = "fleet-ingest";
pub const REJECTED_STREAM: &str = "INGEST_REJECTED";
/// Namespace of the ids derived from `DEVICE_INGRESS` stream sequences.
const SOURCE_NAMESPACE: Uuid = Uuid::from_u128(0x0f1e_e75e_1a9e_5500_0000_0000_0000_0001);

/// How the ingress stream is bounded and batches are taken.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub max_age: Duration,
    pub max_bytes: i64,
    /// Messages per batch at most.
    pub batch: usize,
    /// How long a batch waits to fill.
    pub batch_wait: Duration,
    /// How long JetStream waits for an ack before redelivering (a crashed worker's batch).
    pub ack_wait: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 1 << 30,
            batch: 1000,
            batch_wait: Duration::from_millis(20),
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// The id of the message at `sequence` of `DEVICE_INGRESS`: the source of every event it
/// becomes (and its causation id).
pub fn source_id(sequence: u64) -> Uuid {
    Uuid::new_v5(&SOURCE_NAMESPACE, &sequence.to_be_bytes())
}

/// Creates the ingress stream, the dead-letter stream and the durable consumer when missing.
pub async fn ensure(
    js: &jetstream::Context,
    config: &IngestConfig,
) -> Result<jetstream::consumer::Consumer<pull::Config>, anyhow::Error> {
    let ingress = js
        .get_or_create_stream(stream::Config {
            name: STREAM_NAME.into(),
            subjects: vec![
                "devices.*.telemetry".into(),
                "devices.*.status".into(),
                "devices.*.log".into(),
                "devices.*.response".into(),
            ],
            max_age: config.max_age,
            max_bytes: config.max_bytes,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        })
        .await?;
    js.get_or_create_stream(stream::Config {
        name: REJECTED_STREAM.into(),
        subjects: vec!["ingest.rejected.>".into()],
        max_age: Duration::from_secs(7 * 24 * 3600),
        max_bytes: 64 << 20,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    })
    .await?;
    Ok(ingress
        .get_or_create_consumer(
            CONSUMER_NAME,
            pull::Config {
                durable_name: Some(CONSUMER_NAME.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: 50_000,
                ..Default::default()
            },
        )
        .await?)
}

/// uid → device id, for a few seconds: devices publish far more often than they are created
/// or deleted, and a deleted device is refused within the time-to-live.
#[derive(Clone, Default)]
pub struct DeviceDirectory {
    entries: Arc<Mutex<HashMap<String, Resolved>>>,
}

/// A uid's device id (`None`: no live device) and when it was looked up.
type Resolved = (Option<i64>, Instant);

const DIRECTORY_TTL: Duration = Duration::from_secs(5);

impl DeviceDirectory {
    pub async fn resolve(
        &self,
        pool: &sqlx::PgPool,
        uids: impl IntoIterator<Item = String>,
    ) -> Result<HashMap<String, Option<i64>>, sqlx::Error> {
        let mut known = HashMap::new();
        let mut missing = Vec::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            for uid in uids {
                match entries.get(&uid) {
                    Some((id, at)) if at.elapsed() < DIRECTORY_TTL => {
                        known.insert(uid, *id);
                    }
                    _ => missing.push(uid),
                }
            }
        }
        if missing.is_empty() {
            return Ok(known);
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT unique_id, id FROM devices WHERE unique_id = ANY($1) AND deleted_at IS NULL",
        )
        .bind(&missing)
        .fetch_all(pool)
        .await?;
        let found: HashMap<String, i64> = rows.into_iter().collect();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 100_000 {
            entries.clear();
        }
        for uid in missing {
            let id = found.get(&uid).copied();
            entries.insert(uid.clone(), (id, Instant::now()));
            known.insert(uid, id);
        }
        Ok(known)
    }
}

/// One message of a batch, read.
struct Incoming {
    source: Uuid,
    read: Result<(String, DeviceMessage), Rejection>,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub recorded: usize,
    pub rejected: usize,
}

/// Records one batch; acks every message after the commit (rejected ones included, once
/// dead-lettered). On a database failure nothing is acked: JetStream redelivers.
pub async fn process_batch(
    state: &AppState,
    writer: &TelemetryWriter,
    directory: &DeviceDirectory,
    js: &jetstream::Context,
    messages: Vec<jetstream::Message>,
) -> Result<BatchOutcome, anyhow::Error> {
    let refusals = record_batch(state, writer, directory, &messages).await?;
    let mut outcome = BatchOutcome::default();
    for (message, refusal) in messages.iter().zip(&refusals) {
        match refusal {
            Some(rejection) => {
                outcome.rejected += 1;
                dead_letter(js, message, rejection).await;
            }
            None => outcome.recorded += 1,
        }
        let _ = message.ack().await;
    }
    metrics::counter!("fleet_ingest_messages_total").increment(messages.len() as u64);
    Ok(outcome)
}

/// Commits what a batch records and says, per message, why it was not recorded (`None`:
/// recorded). Acks nothing: a crash after this and before the acks redelivers the batch, and
/// recording it again appends nothing (ids derive from the stream sequence).
pub async fn record_batch(
    state: &AppState,
    writer: &TelemetryWriter,
    directory: &DeviceDirectory,
    messages: &[jetstream::Message],
) -> Result<Vec<Option<Rejection>>, anyhow::Error> {
    let now = chrono::Utc::now();
    let mut incoming: Vec<Incoming> = messages
        .iter()
        .map(|message| {
            let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            let read = parse::parse_subject(message.subject.as_str()).and_then(|(uid, kind)| {
                parse::parse_payload(kind, &message.payload, now).map(|m| (uid.to_owned(), m))
            });
            Incoming {
                source: source_id(sequence),
                read,
            }
        })
        .collect();
    let uids = incoming
        .iter()
        .filter_map(|i| i.read.as_ref().ok().map(|(uid, _)| uid.clone()));
    let devices = directory.resolve(state.pool(), uids).await?;

    // Telemetry items with the index of the message each came from.
    let mut items: Vec<(usize, IngestItem)> = Vec::new();
    let mut received = Vec::new();
    let mut conn = state.pool().acquire().await?;
    for (index, entry) in incoming.iter_mut().enumerate() {
        let Ok((uid, message)) = &entry.read else {
            continue;
        };
        let Some(device_id) = devices.get(uid).copied().flatten() else {
            entry.read = Err(Rejection::UnknownDevice);
            continue;
        };
        let metadata = EventMetadata {
            causation_id: Some(entry.source.to_string()),
            ..Default::default()
        };
        match message.clone() {
            DeviceMessage::Telemetry(samples) => items.push((
                index,
                IngestItem {
                    device_id,
                    metadata,
                    kind: IngestKind::Samples(samples),
                    source: Some(entry.source),
                },
            )),
            DeviceMessage::Status(status) => items.push((
                index,
                IngestItem {
                    device_id,
                    metadata,
                    kind: IngestKind::Status(
                        Connectivity::parse(&status).unwrap_or(Connectivity::Offline),
                    ),
                    source: Some(entry.source),
                },
            )),
            DeviceMessage::Log {
                event_type,
                payload,
            } => received.push(Received {
                event: DeviceMessageEvent::DeviceLogRecorded {
                    device_id,
                    device_uid: uid.clone(),
                    event_type,
                    payload,
                    received_at: now,
                },
                device_id,
                source: entry.source,
                metadata,
            }),
            DeviceMessage::Response {
                command_id,
                payload,
            } => {
                let requested_by = device_messages::requested_by(&mut conn, &command_id).await?;
                received.push(Received {
                    event: DeviceMessageEvent::DeviceResponded {
                        device_id,
                        device_uid: uid.clone(),
                        command_id,
                        requested_by,
                        payload,
                        received_at: now,
                    },
                    device_id,
                    source: entry.source,
                    metadata,
                });
            }
        }
    }
    drop(conn);
    for (index, refusal) in append_telemetry(writer, items).await? {
        incoming[index].read = Err(refusal);
    }
    device_messages::record_received(&state.store, received)
        .await
        .map_err(|e| anyhow::anyhow!("device messages append: {e}"))?;
    Ok(incoming.into_iter().map(|i| i.read.err()).collect())
}

/// Appends the batch's telemetry in one group commit. Should the writer refuse it as invalid
/// (the parse validated every sample, so this is a defence), the items go one by one and each
/// refused one is rejected alone; a database failure fails the batch.
async fn append_telemetry(
    writer: &TelemetryWriter,
    items: Vec<(usize, IngestItem)>,
) -> Result<Vec<(usize, Rejection)>, anyhow::Error> {
    let (indexes, batch): (Vec<usize>, Vec<IngestItem>) = items.into_iter().unzip();
    match writer.append(batch.clone()).await {
        Ok(_) => Ok(Vec::new()),
        Err(IngestError::Failed(e)) => Err(anyhow::anyhow!("telemetry append: {e}")),
        Err(IngestError::Invalid(_)) => {
            let mut refused = Vec::new();
            for (index, item) in indexes.into_iter().zip(batch) {
                match writer.append_one(item).await {
                    Ok(_) => {}
                    Err(IngestError::Invalid(e)) => {
                        refused.push((index, Rejection::InvalidSample(format!("{e:?}"))))
                    }
                    Err(IngestError::Failed(e)) => {
                        return Err(anyhow::anyhow!("telemetry append: {e}"))
                    }
                }
            }
            Ok(refused)
        }
    }
}

async fn dead_letter(js: &jetstream::Context, message: &jetstream::Message, rejection: &Rejection) {
    let reason = rejection.reason();
    metrics::counter!("fleet_ingest_rejected_total", "reason" => reason).increment(1);
    tracing::warn!(
        subject = %message.subject,
        reason,
        detail = %rejection.detail(),
        "device message rejected"
    );
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Fleet-Rejected-Reason", reason);
    headers.insert("Fleet-Rejected-Subject", message.subject.as_str());
    headers.insert("Fleet-Rejected-Detail", rejection.detail().as_str());
    let published = js
        .publish_with_headers(
            format!("ingest.rejected.{reason}"),
            headers,
            message.payload.clone(),
        )
        .await;
    if let Ok(ack) = published {
        let _ = ack.await;
    }
}

/// Runs the ingest worker until `shutdown`, reconnecting and re-creating the consumer as
/// needed.
pub async fn run(state: AppState, config: IngestConfig, shutdown: CancellationToken) {
    let directory = DeviceDirectory::default();
    let writer = state.telemetry.clone();
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        match run_once(&state, &writer, &directory, &config, &shutdown).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "ingest paused; device messages wait in JetStream");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_once(
    state: &AppState,
    writer: &TelemetryWriter,
    directory: &DeviceDirectory,
    config: &IngestConfig,
    shutdown: &CancellationToken,
) -> Result<(), anyhow::Error> {
    let client = crate::nats::connect(&state.config.nats_url, "fleetstream-ingest").await?;
    let js = jetstream::new(client);
    let consumer = ensure(&js, config).await?;
    tracing::info!("ingesting device messages from {STREAM_NAME}");
    while !shutdown.is_cancelled() {
        let mut batch = consumer
            .batch()
            .max_messages(config.batch)
            .expires(config.batch_wait.max(Duration::from_millis(10)))
            .messages()
            .await?;
        let mut messages = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = batch.next() => match next {
                    Some(Ok(message)) => messages.push(message),
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "ingest batch ended early");
                        break;
                    }
                    None => break,
                },
            }
        }
        if messages.is_empty() {
            continue;
        }
        let started = Instant::now();
        let outcome = process_batch(state, writer, directory, &js, messages).await?;
        metrics::histogram!("fleet_ingest_batch_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(
            recorded = outcome.recorded,
            rejected = outcome.rejected,
            "ingest batch committed"
        );
    }
    Ok(())
}
