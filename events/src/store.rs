//! The Postgres event log: append with optimistic concurrency across several streams in one
//! transaction, read one stream, read everything after a checkpoint without ever skipping.

use crate::{DomainEvent, EventMetadata, StoredEvent};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgDatabaseError;
use sqlx::PgConnection;
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
    /// An event whose envelope would exceed [`crate::MAX_EVENT_BYTES`]; nothing was written.
    #[error("{event_type} on {stream_id} is {bytes} bytes, over the {max} byte bound of one event", max = crate::MAX_EVENT_BYTES)]
    TooLarge {
        stream_id: String,
        event_type: String,
        bytes: usize,
    },
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

/// Appends to one or more streams inside the caller's transaction, in one round trip (the
/// `append_events` function). Every stream's expectation is checked under a per-stream lock;
/// any conflict fails the whole append (the caller rolls back). A stream whose event ids are
/// all stored already is a successful no-op, so a retried command cannot write twice. Returns
/// the newly stored events in append order.
pub async fn append(
    conn: &mut PgConnection,
    streams: &[StreamAppend],
) -> Result<Vec<StoredEvent>, AppendError> {
    append_owned(conn, streams.to_vec()).await
}

/// [`append`] taking the events by value: the stored events are built from them, so payloads
/// are neither copied nor sent back by the database.
pub async fn append_owned(
    conn: &mut PgConnection,
    streams: Vec<StreamAppend>,
) -> Result<Vec<StoredEvent>, AppendError> {
    check_sizes(&streams)?;
    let count: usize = streams.iter().map(|s| s.events.len()).sum();
    let mut columns = Columns::with_capacity(streams.len(), count);
    for stream in &streams {
        columns.push_stream(stream);
    }
    let appended: Appended = sqlx::query_as(include_str!("../sql/append_events.sql"))
        .bind(&columns.stream_ids)
        .bind(&columns.expected)
        .bind(&columns.stream_counts)
        .bind(&columns.event_ids)
        .bind(&columns.event_types)
        .bind(&columns.schema_versions)
        .bind(&columns.data)
        .bind(&columns.metadata)
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| AppendError::from_database(err, &streams))?;
    drop(columns);
    metrics::counter!("fleet_events_appended_total").increment(appended.ids.len() as u64);

    let transaction_id = appended.transaction_id.unwrap_or_default();
    let mut assigned: HashMap<Uuid, (i64, i64)> = appended
        .ids
        .into_iter()
        .zip(appended.positions.into_iter().zip(appended.versions))
        .collect();
    let mut stored = Vec::with_capacity(assigned.len());
    for stream in streams {
        for event in stream.events {
            let Some((global_position, stream_version)) = assigned.remove(&event.event_id) else {
                continue; // the idempotent part of a retried append
            };
            stored.push(StoredEvent {
                global_position,
                transaction_id,
                stream_id: stream.stream_id.clone(),
                stream_version,
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data: event.data,
                metadata: event.metadata,
                recorded_at: appended.recorded_at,
            });
        }
    }
    stored.sort_by_key(|e| e.global_position);
    Ok(stored)
}

/// Position, version, id, transaction id and time of one event `append_stream.sql` wrote.
type AloneRow = (i64, i64, Uuid, i64, DateTime<Utc>);

/// Appends to one stream as a transaction of its own: `conn` must not be inside one, since the
/// statement commits. For writers whose events feed no inline projection; one round trip
/// (`append_stream.sql`) instead of BEGIN, `append_events` and COMMIT. A version or id already
/// taken falls back to [`append_owned`] (its own transaction too), so the answer — a typed
/// conflict, an idempotent no-op, a partial duplicate — is exactly `append_events`' one.
pub async fn append_alone(
    conn: &mut PgConnection,
    stream: StreamAppend,
) -> Result<Vec<StoredEvent>, AppendError> {
    let base = match stream.expected {
        ExpectedVersion::NoStream => 0,
        ExpectedVersion::Exact(version) => version,
        // The version to write after is unknown: the function reads it under its lock.
        ExpectedVersion::Any => return append_owned(conn, vec![stream]).await,
    };
    check_sizes(std::slice::from_ref(&stream))?;
    let mut columns = Columns::with_capacity(1, stream.events.len());
    columns.push_stream(&stream);
    let rows: Result<Vec<AloneRow>, sqlx::Error> =
        sqlx::query_as(include_str!("../sql/append_stream.sql"))
            .bind(&stream.stream_id)
            .bind(base)
            .bind(&columns.event_ids)
            .bind(&columns.event_types)
            .bind(&columns.schema_versions)
            .bind(&columns.data)
            .bind(&columns.metadata)
            .fetch_all(&mut *conn)
            .await;
    drop(columns);
    let rows = match rows {
        Ok(rows) => rows,
        Err(err)
            if is_unique_violation(&err, "events_stream_version_key")
                || is_unique_violation(&err, "events_event_id_key") =>
        {
            return append_owned(conn, vec![stream]).await;
        }
        Err(err) => return Err(AppendError::Database(err)),
    };
    metrics::counter!("fleet_events_appended_total").increment(rows.len() as u64);
    Ok(rows
        .into_iter()
        .zip(stream.events)
        .map(
            |((global_position, stream_version, event_id, transaction_id, recorded_at), event)| {
                debug_assert_eq!(event_id, event.event_id);
                StoredEvent {
                    global_position,
                    transaction_id,
                    stream_id: stream.stream_id.clone(),
                    stream_version,
                    event_id,
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    data: event.data,
                    metadata: event.metadata,
                    recorded_at,
                }
            },
        )
        .collect())
}

/// The last guard of the bound on one event: commands split what clients make large, and
/// anything that still comes out too big is refused here, before the log or the bus sees it.
pub(crate) fn check_sizes(streams: &[StreamAppend]) -> Result<(), AppendError> {
    for stream in streams {
        for event in &stream.events {
            let bytes = crate::encoded_len(&event.data)
                .saturating_add(crate::encoded_len(&event.metadata))
                .saturating_add(stream.stream_id.len() + crate::ENVELOPE_OVERHEAD_BYTES);
            if bytes > crate::MAX_EVENT_BYTES {
                return Err(AppendError::TooLarge {
                    stream_id: stream.stream_id.clone(),
                    event_type: event.event_type.clone(),
                    bytes,
                });
            }
        }
    }
    Ok(())
}

/// What the log assigned to the appended events, as parallel arrays in append order.
#[derive(sqlx::FromRow)]
struct Appended {
    #[sqlx(rename = "appended_ids")]
    ids: Vec<Uuid>,
    #[sqlx(rename = "appended_positions")]
    positions: Vec<i64>,
    #[sqlx(rename = "appended_versions")]
    versions: Vec<i64>,
    /// NULL when nothing was written (a retry).
    #[sqlx(rename = "appended_xid")]
    transaction_id: Option<i64>,
    #[sqlx(rename = "appended_at")]
    recorded_at: DateTime<Utc>,
}

impl AppendError {
    /// Reads the typed refusals `append_events` raises (see its migration).
    fn from_database(err: sqlx::Error, streams: &[StreamAppend]) -> Self {
        let refusal = match &err {
            sqlx::Error::Database(db) => db
                .try_downcast_ref::<PgDatabaseError>()
                .and_then(|pg| Self::refusal(pg, streams)),
            _ => None,
        };
        refusal.unwrap_or(Self::Database(err))
    }

    fn refusal(pg: &PgDatabaseError, streams: &[StreamAppend]) -> Option<Self> {
        let detail = pg.detail().unwrap_or_default();
        let expected_of = |stream_id: &str| {
            streams
                .iter()
                .find(|s| s.stream_id == stream_id)
                .map_or(ExpectedVersion::Any, |s| s.expected)
        };
        match pg.code() {
            "FS409" => Some(Self::Conflict {
                expected: expected_of(detail),
                stream_id: detail.to_owned(),
                actual: pg.hint()?.parse().ok()?,
            }),
            "FS422" => Some(Self::PartialDuplicate(detail.to_owned())),
            // An id stored already, past a stream's first (which is new): "Key (event_id)=(…)
            // already exists."
            "23505" if pg.constraint() == Some("events_event_id_key") => {
                let stream = streams.iter().find(|s| {
                    s.events
                        .iter()
                        .any(|e| detail.contains(&e.event_id.to_string()))
                })?;
                Some(Self::PartialDuplicate(stream.stream_id.clone()))
            }
            _ => None,
        }
    }
}

/// The append as parallel arrays, one bind parameter each.
struct Columns<'a> {
    stream_ids: Vec<&'a str>,
    expected: Vec<i64>,
    stream_counts: Vec<i32>,
    event_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a Value>,
    metadata: Vec<&'a Value>,
}

impl<'a> Columns<'a> {
    fn with_capacity(streams: usize, events: usize) -> Self {
        Self {
            stream_ids: Vec::with_capacity(streams),
            expected: Vec::with_capacity(streams),
            stream_counts: Vec::with_capacity(streams),
            event_ids: Vec::with_capacity(events),
            event_types: Vec::with_capacity(events),
            schema_versions: Vec::with_capacity(events),
            data: Vec::with_capacity(events),
            metadata: Vec::with_capacity(events),
        }
    }

    fn push_stream(&mut self, stream: &'a StreamAppend) {
        self.stream_ids.push(&stream.stream_id);
        self.expected.push(match stream.expected {
            ExpectedVersion::Any => -1,
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(version) => version,
        });
        self.stream_counts.push(stream.events.len() as i32);
        for event in &stream.events {
            self.event_ids.push(event.event_id);
            self.event_types.push(&event.event_type);
            self.schema_versions.push(event.schema_version);
            self.data.push(&event.data);
            self.metadata.push(&event.metadata);
        }
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

/// One event by its global position.
pub async fn read_position(
    conn: &mut PgConnection,
    position: i64,
) -> Result<Option<StoredEvent>, sqlx::Error> {
    sqlx::query_as(include_str!("../sql/read_position.sql"))
        .bind(position)
        .fetch_optional(conn)
        .await
}

/// Every event of one request or flow (metadata `correlation_id`), in commit order.
pub async fn read_correlation(
    conn: &mut PgConnection,
    correlation_id: &str,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(include_str!("../sql/read_correlation.sql"))
        .bind(correlation_id)
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
    let sql = match categories {
        None => include_str!("../sql/read_all.sql"),
        Some(_) => include_str!("../sql/read_categories.sql"),
    };
    let query = sqlx::query_as(sql)
        .bind(checkpoint.transaction_id.to_string())
        .bind(checkpoint.global_position)
        .bind(limit);
    match categories {
        None => query.fetch_all(conn).await,
        Some(categories) => query.bind(categories).fetch_all(conn).await,
    }
}

/// What a fold reads of one event: version, type, schema version, payload.
pub type LoadedRow = (i64, String, i32, Value);

/// One stream's events as [`fold_rows`] folds them, for callers that transform payloads first.
pub async fn load_rows(
    conn: &mut PgConnection,
    stream_id: &str,
) -> Result<Vec<LoadedRow>, sqlx::Error> {
    load_rows_after(conn, stream_id, 0).await
}

/// One stream's events after version `after`: what a fold adds to a state it remembers.
pub async fn load_rows_after<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    stream_id: &str,
    after: i64,
) -> Result<Vec<LoadedRow>, sqlx::Error> {
    // Only what a fold reads: the log's other columns (metadata above all) cost transfer and
    // parsing on every command.
    sqlx::query_as(include_str!("../sql/load_stream_after.sql"))
        .bind(stream_id)
        .bind(after)
        .fetch_all(conn)
        .await
}

/// Folds `rows` (a stream's events after `version`) into `state`, which was folded up to
/// `version`; returns the state and the version it now stands at.
pub fn fold_rows_onto<E: DomainEvent, S>(
    rows: &[LoadedRow],
    state: S,
    version: i64,
    evolve: impl Fn(&mut S, &E),
) -> Result<(S, i64), crate::DecodeError> {
    match rows.last() {
        Some(&(last, ..)) => Ok((fold_rows(rows, state, evolve)?.0, last)),
        None => Ok((state, version)),
    }
}

/// Decodes and folds loaded rows; returns the state and the last version.
pub fn fold_rows<E: DomainEvent, S>(
    rows: &[LoadedRow],
    mut state: S,
    evolve: impl Fn(&mut S, &E),
) -> Result<(S, i64), crate::DecodeError> {
    let mut version = 0;
    for (stream_version, event_type, schema_version, data) in rows {
        let event = E::decode(event_type, *schema_version, data)?;
        evolve(&mut state, &event);
        version = *stream_version;
    }
    Ok((state, version))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Decode(#[from] crate::DecodeError),
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
}

/// True when `err` violates the named unique constraint (e.g. a read model's unique email).
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some(constraint))
}
