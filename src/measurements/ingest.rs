//! Group commit for telemetry. Telemetry appends carry no version expectation, so concurrent
//! commands can share one transaction (one WAL flush) without one failing its neighbours: a
//! gatherer task collects what arrives within `max_wait` (or up to `max_samples`), takes every
//! sample id with one sequence call, appends all streams in one `append_events` call and
//! replies to each caller with its own samples. [`TelemetryWriter::append`] is the batched API
//! the MQTT ingest calls with whole batches; HTTP calls it with one item.
//!
//! Validation and authorization happen before an item is queued, so the only failure a batch
//! shares is the database's own.

use super::domain::{self, TelemetryError, ValidSample};
use crate::es::{CommandError, EventStore};
use chrono::Utc;
use fleetstream_events::store::{ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{
    Connectivity, DomainEvent, EventMetadata, StoredEvent, TelemetryEvent, TelemetrySample,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::Instrument;

/// One command of a group commit (already validated and authorized).
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub device_id: i64,
    pub metadata: EventMetadata,
    pub kind: IngestKind,
    /// The message this item came from (e.g. a JetStream sequence). When set, its events get
    /// ids derived from it, so a redelivered message appends nothing the second time.
    pub source: Option<uuid::Uuid>,
}

/// The id of the `index`-th event made from `source`.
pub fn derived_event_id(source: uuid::Uuid, index: usize) -> uuid::Uuid {
    uuid::Uuid::new_v5(&source, index.to_string().as_bytes())
}

#[derive(Debug, Clone)]
pub enum IngestKind {
    Samples(Vec<ValidSample>),
    Status(Connectivity),
}

/// What one item became: its events as stored (samples with their ids inside).
#[derive(Debug, Clone)]
pub struct Ingested {
    pub events: Vec<StoredEvent>,
    pub samples: Vec<TelemetrySample>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("invalid: {0:?}")]
    Invalid(TelemetryError),
    #[error("the telemetry batch failed: {0}")]
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct GroupCommit {
    /// How long the gatherer waits for company after the first item of a batch.
    pub max_wait: Duration,
    /// A batch closes early once it holds this many samples.
    pub max_samples: usize,
    /// Batches committing at once (each holds one pooled connection).
    pub max_in_flight: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(2),
            max_samples: 2_000,
            max_in_flight: 4,
        }
    }
}

struct Job {
    items: Vec<IngestItem>,
    reply: oneshot::Sender<Result<Vec<Ingested>, IngestError>>,
}

/// Cheap to clone; the gatherer starts on first use and ends with the last clone.
#[derive(Clone)]
pub struct TelemetryWriter {
    store: EventStore,
    config: GroupCommit,
    jobs: Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl TelemetryWriter {
    pub fn new(store: EventStore, config: GroupCommit) -> Self {
        Self {
            store,
            config,
            jobs: Arc::new(OnceLock::new()),
        }
    }

    /// Appends the items in one group commit with whatever else is waiting; one reply per
    /// item, in order.
    pub async fn append(&self, items: Vec<IngestItem>) -> Result<Vec<Ingested>, IngestError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Refused here, before queueing, so one caller's bad item never fails a shared batch.
        for item in &items {
            if let IngestKind::Samples(samples) = &item.kind {
                domain::check_sample_count(samples.len()).map_err(IngestError::Invalid)?;
            }
        }
        let jobs = self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(gather(self.store.clone(), self.config.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        jobs.send(Job { items, reply })
            .await
            .map_err(|_| IngestError::Failed("the telemetry writer stopped".into()))?;
        answer
            .await
            .map_err(|_| IngestError::Failed("the telemetry writer dropped a batch".into()))?
    }

    pub async fn append_one(&self, item: IngestItem) -> Result<Ingested, IngestError> {
        let mut done = self.append(vec![item]).await?;
        done.pop()
            .ok_or_else(|| IngestError::Failed("no reply for the item".into()))
    }
}

fn samples_of(items: &[IngestItem]) -> usize {
    items
        .iter()
        .map(|i| match &i.kind {
            IngestKind::Samples(s) => s.len(),
            IngestKind::Status(_) => 1,
        })
        .sum()
}

async fn gather(store: EventStore, config: GroupCommit, mut jobs: mpsc::Receiver<Job>) {
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    while let Some(first) = jobs.recv().await {
        let mut size = samples_of(&first.items);
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while size < config.max_samples {
            match tokio::time::timeout_at(deadline, jobs.recv()).await {
                Ok(Some(job)) => {
                    size += samples_of(&job.items);
                    batch.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let store = store.clone();
        let span = tracing::info_span!(
            "telemetry_group_commit",
            commands = batch.len(),
            samples = size
        );
        tokio::spawn(
            async move {
                metrics::histogram!("fleet_telemetry_group_commit_commands")
                    .record(batch.len() as f64);
                let items: Vec<&[IngestItem]> = batch.iter().map(|j| j.items.as_slice()).collect();
                match commit(&store, &items).await {
                    Ok(mut per_job) => {
                        for job in batch.into_iter().rev() {
                            let answer = per_job.pop().unwrap_or_default();
                            let _ = job.reply.send(Ok(answer));
                        }
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "telemetry group commit failed");
                        for job in batch {
                            let _ = job.reply.send(Err(IngestError::Failed(err.to_string())));
                        }
                    }
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// One transaction for every job's items; returns, per job, per item, what it stored.
async fn commit(
    store: &EventStore,
    jobs: &[&[IngestItem]],
) -> Result<Vec<Vec<Ingested>>, CommandError<TelemetryError>> {
    let mut uow = store.begin(EventMetadata::default()).await?;
    let wanted: i64 = jobs
        .iter()
        .flat_map(|items| items.iter())
        .map(|i| match &i.kind {
            IngestKind::Samples(s) => s.len() as i64,
            IngestKind::Status(_) => 0,
        })
        .sum();
    let ids: Vec<i64> = if wanted > 0 {
        sqlx::query_scalar("SELECT nextval('measurement_id_seq') FROM generate_series(1, $1)")
            .bind(wanted)
            .fetch_all(uow.conn())
            .await?
    } else {
        Vec::new()
    };
    let now = Utc::now();
    let mut next = 0usize;
    // Per job, per item: the event ids of its append, to hand back its stored events.
    let mut owned: Vec<Vec<(Vec<uuid::Uuid>, Vec<TelemetrySample>)>> = Vec::new();
    let mut appends: Vec<StreamAppend> = Vec::new();
    for items in jobs {
        let mut per_item = Vec::new();
        for item in items.iter() {
            let events = match &item.kind {
                IngestKind::Samples(samples) => {
                    let mine = &ids[next..next + samples.len()];
                    next += samples.len();
                    domain::decide_record(item.device_id, mine, samples.clone(), now)
                }
                IngestKind::Status(status) => {
                    domain::decide_status(item.device_id, status.as_str(), now)
                }
            }
            .map_err(CommandError::Domain)?;
            let samples: Vec<TelemetrySample> = events
                .iter()
                .flat_map(|e| match e {
                    TelemetryEvent::TelemetryRecorded { samples, .. } => samples.clone(),
                    TelemetryEvent::DeviceStatusReported { .. } => Vec::new(),
                })
                .collect();
            let new_events: Vec<NewEvent> = events
                .iter()
                .enumerate()
                .map(|(index, e)| {
                    let mut new = NewEvent::from_domain(e, &item.metadata);
                    if let Some(source) = item.source {
                        new.event_id = derived_event_id(source, index);
                    }
                    new
                })
                .collect();
            per_item.push((new_events.iter().map(|e| e.event_id).collect(), samples));
            // One entry per item, even for the same stream: `append_events` numbers each entry
            // after the one before (migration 0450), and each entry is skipped on its own when
            // its ids are stored, so a redelivered message beside a new one of the same device
            // appends only the new one.
            appends.push(StreamAppend {
                stream_id: TelemetryEvent::stream_id(item.device_id),
                expected: ExpectedVersion::Any,
                events: new_events,
            });
        }
        owned.push(per_item);
    }
    uow.stage_appends(appends);
    let stored = uow.commit::<TelemetryError>().await?;
    let mut by_id: std::collections::HashMap<uuid::Uuid, StoredEvent> =
        stored.into_iter().map(|e| (e.event_id, e)).collect();
    Ok(owned
        .into_iter()
        .map(|per_item| {
            per_item
                .into_iter()
                .map(|(event_ids, samples)| Ingested {
                    events: event_ids.iter().filter_map(|id| by_id.remove(id)).collect(),
                    samples,
                })
                .collect()
        })
        .collect())
}
