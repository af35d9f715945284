//! The Postgres event log: append with optimistic concurrency across several streams in one
//! transaction, read one stream, read everything after a checkpoint without ever skipping.

use crate::{DomainEvent, EventMetadata, StoredEvent};
use serde_json::Value;
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// What the writer believes about the stream's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    Any,
    NoStream,
    Exact(i64),
}

impl ExpectedVersion {
    /// The expectation for a stream loaded at `version` (0 = no events yet).
    pub fn from_loaded(version: i64) -> Self {
        if version == 0 {
            Self::NoStream
        } else {
            Self::Exact(version)
        }
    }
}

/// An event ready to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Value,
}

impl NewEvent {
    pub fn from_domain<E: DomainEvent>(event: &E, metadata: &EventMetadata) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.event_version(),
            data: event.to_data(),
            metadata: serde_json::to_value(metadata).unwrap_or(Value::Null),
        }
    }
}

/// The events for one stream within an append.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    Conflict {
        stream_id: String,
        expected: ExpectedVersion,
        actual: i64,
    },
    #[error("event ids {0:?} are partly stored already; an append is all or none")]
    PartialDuplicate(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A reader's place in the log: the last (transaction id, global position) it processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checkpoint {
    pub transaction_id: i64,
    pub global_position: i64,
}

impl Checkpoint {
    pub fn after(event: &StoredEvent) -> Self {
        Self {
            transaction_id: event.transaction_id,
            global_position: event.global_position,
        }
    }
}

/// Appends to one or more streams inside the caller's transaction. Every stream's expectation
/// is checked under a per-stream lock; any conflict fails the whole append (the caller rolls
/// back). A stream whose event ids are all stored already is a successful no-op, so a retried
/// command cannot write twice. Returns the newly stored events in append order.
pub async fn append(
    conn: &mut PgConnection,
    streams: &[StreamAppend],
) -> Result<Vec<StoredEvent>, AppendError> {
    let stream_ids: Vec<String> = streams.iter().map(|s| s.stream_id.clone()).collect();
    sqlx::query(include_str!("../sql/append_lock_streams.sql"))
        .bind(&stream_ids)
        .execute(&mut *conn)
        .await?;

    let all_ids: Vec<Uuid> = streams
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.event_id))
        .collect();
    let existing: std::collections::HashSet<Uuid> =
        sqlx::query_scalar(include_str!("../sql/existing_event_ids.sql"))
            .bind(&all_ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();

    let versions: HashMap<String, i64> = sqlx::query(include_str!("../sql/stream_versions.sql"))
        .bind(&stream_ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.get("stream_id"), row.get("version")))
        .collect();

    let mut columns = Columns::default();
    for stream in streams {
        let stored = stream
            .events
            .iter()
            .filter(|e| existing.contains(&e.event_id))
            .count();
        if stored == stream.events.len() && stored > 0 {
            continue; // an idempotent retry of an append that already committed
        }
        if stored > 0 {
            return Err(AppendError::PartialDuplicate(stream.stream_id.clone()));
        }
        let actual = versions.get(&stream.stream_id).copied().unwrap_or(0);
        let ok = match stream.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => actual == v,
        };
        if !ok {
            return Err(AppendError::Conflict {
                stream_id: stream.stream_id.clone(),
                expected: stream.expected,
                actual,
            });
        }
        for (offset, event) in stream.events.iter().enumerate() {
            columns.push(&stream.stream_id, actual + 1 + offset as i64, event);
        }
    }
    if columns.stream_ids.is_empty() {
        return Ok(Vec::new());
    }
    let count = columns.stream_ids.len();
    let stored: Vec<StoredEvent> = sqlx::query_as(include_str!("../sql/insert_events.sql"))
        .bind(columns.stream_ids)
        .bind(columns.versions)
        .bind(columns.event_ids)
        .bind(columns.event_types)
        .bind(columns.schema_versions)
        .bind(columns.data)
        .bind(columns.metadata)
        .fetch_all(&mut *conn)
        .await?;
    metrics::counter!("fleet_events_appended_total").increment(count as u64);
    Ok(stored)
}

#[derive(Default)]
struct Columns {
    stream_ids: Vec<String>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    schema_versions: Vec<i32>,
    data: Vec<Value>,
    metadata: Vec<Value>,
}

impl Columns {
    fn push(&mut self, stream_id: &str, version: i64, event: &NewEvent) {
        self.stream_ids.push(stream_id.to_owned());
        self.versions.push(version);
        self.event_ids.push(event.event_id);
        self.event_types.push(event.event_type.clone());
        self.schema_versions.push(event.schema_version);
        self.data.push(event.data.clone());
        self.metadata.push(event.metadata.clone());
    }
}

/// Every event of one stream from `from_version` (1 = the start), in order.
pub async fn read_stream(
    conn: &mut PgConnection,
    stream_id: &str,
    from_version: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(include_str!("../sql/read_stream.sql"))
        .bind(stream_id)
        .bind(from_version)
        .fetch_all(conn)
        .await
}

/// Up to `limit` events after `checkpoint`, in commit-safe order, optionally only from the
/// given categories. Never returns an event while an older transaction could still commit one
/// before it.
pub async fn read_all(
    conn: &mut PgConnection,
    checkpoint: Checkpoint,
    limit: i64,
    categories: Option<&[String]>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(include_str!("../sql/read_all.sql"))
        .bind(checkpoint.transaction_id.to_string())
        .bind(checkpoint.global_position)
        .bind(limit)
        .bind(categories)
        .fetch_all(conn)
        .await
}

/// Folds a stream into its aggregate state; returns the state and the stream's version.
pub async fn load<E: DomainEvent, S>(
    conn: &mut PgConnection,
    stream_id: &str,
    mut state: S,
    evolve: impl Fn(&mut S, &E),
) -> Result<(S, i64), LoadError> {
    let events = read_stream(conn, stream_id, 1).await?;
    let mut version = 0;
    for stored in &events {
        let event = E::decode(
            &stored.event_type,
            stored.schema_version,
            stored.data.clone(),
        )?;
        evolve(&mut state, &event);
        version = stored.stream_version;
    }
    Ok((state, version))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Decode(#[from] crate::DecodeError),
}

/// True when `err` violates the named unique constraint (e.g. a read model's unique email).
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some(constraint))
}
