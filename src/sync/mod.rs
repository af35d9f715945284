//! KooDTX sensor sync (seed 003): push, pull, status. Commands here; pure decisions in
//! `domain`; reads in `read`; HTTP in `http`.

pub mod cursor;
pub mod domain;
pub mod http;
pub mod read;
pub mod wire;

use crate::es::{next_id, CommandError, EventStore, UnitOfWork};
use chrono::{DateTime, SubsecRound, Utc};
use domain::{PushCounts, PushRecording, Recording, StoredSamples, SyncError};
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{DomainEvent, EventMetadata, RecordingEvent, SyncLogEvent};
use serde_json::Value;
use sqlx::PgConnection;

/// Postgres keeps microseconds; so do our clocks, so a time read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// What a push did, for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushReceipt {
    pub counts: PushCounts,
    pub sync_log_id: i64,
    pub session_data_count: i64,
}

/// Runs a push as one transaction, under the recording stream's lock, so pushes to one session
/// are serialized: the owner check, the comparison with the stored samples and the upsert
/// (inline projection) all see the previous push's result. Pushes of one account to different
/// sessions run concurrently; the pull cursor stays behind any push still in flight through the
/// log's own never-skip rule (see `read::next_cursor`).
pub async fn push(
    store: &EventStore,
    metadata: EventMetadata,
    cmd: PushRecording,
) -> Result<PushReceipt, CommandError<SyncError>> {
    let (uow, receipt) = push_uncommitted(store, metadata, cmd).await?;
    uow.commit::<SyncError>().await?;
    Ok(receipt)
}

/// [`push`] up to its commit: events appended and read models written in the returned open
/// transaction, which holds the session's lock until it commits or rolls back. Lets a caller
/// hold a push in flight (the never-skip cursor test does).
pub async fn push_uncommitted(
    store: &EventStore,
    metadata: EventMetadata,
    mut cmd: PushRecording,
) -> Result<(UnitOfWork, PushReceipt), CommandError<SyncError>> {
    let stream_id = RecordingEvent::stream_id(&cmd.session.session_id);
    let mut uow = store.begin(metadata).await?;
    lock(uow.conn(), &stream_id).await?;
    let (state, version, data_count) = load_recording(uow.conn(), &cmd.session.session_id).await?;
    if state.owner_id.is_some_and(|owner| owner != cmd.account_id) {
        return Err(CommandError::Domain(SyncError::Forbidden));
    }
    let stored = if version == 0 {
        StoredSamples::new()
    } else {
        stored_samples(uow.conn(), &cmd.session.session_id, &cmd.samples).await?
    };
    cmd.sync_log_id = next_id(uow.conn(), "sync_log_id_seq").await?;
    let sync_log_id = cmd.sync_log_id;
    let decision = domain::decide_push(&state, &stored, cmd).map_err(CommandError::Domain)?;
    uow.stage(
        &stream_id,
        ExpectedVersion::from_loaded(version),
        &decision.events,
    );
    let uow = uow.flush::<SyncError>().await?;
    Ok((
        uow,
        PushReceipt {
            counts: decision.counts,
            sync_log_id,
            // Exact: pushes to the session are serialized, and the projection adds the inserts.
            session_data_count: data_count + decision.counts.inserted,
        },
    ))
}

/// A transaction-scoped advisory lock; for a stream id it is the lock the append takes
/// (re-entrant within the transaction).
async fn lock(conn: &mut PgConnection, stream_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(stream_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The session's decision state and stream version from the inline read model (kept in step
/// with the stream in every append), instead of folding a stream of large sample events.
/// Returns the state, the stream version and the session's sample count.
async fn load_recording(
    conn: &mut PgConnection,
    session_id: &str,
) -> Result<(Recording, i64, i64), sqlx::Error> {
    type Row = (i64, Option<DateTime<Utc>>, bool, Option<String>, i64, i64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT owner_id, end_time, is_active, notes, stream_version, data_count \
         FROM recording_sessions WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((owner_id, end_time, is_active, notes, version, data_count)) => (
            Recording {
                owner_id: Some(owner_id),
                end_time,
                is_active,
                notes,
            },
            version,
            data_count,
        ),
        None => (Recording::default(), 0, 0),
    })
}

/// The stored data of the pushed keys that exist, in one statement.
async fn stored_samples(
    conn: &mut PgConnection,
    session_id: &str,
    samples: &[fleetstream_events::SensorSample],
) -> Result<StoredSamples, sqlx::Error> {
    let types: Vec<&str> = samples.iter().map(|s| s.sensor_type.as_str()).collect();
    let timestamps: Vec<i64> = samples.iter().map(|s| s.timestamp).collect();
    let rows: Vec<(String, i64, Value)> = sqlx::query_as(
        "SELECT s.sensor_type, s.timestamp, s.data \
         FROM sensor_samples s \
         JOIN (SELECT DISTINCT * FROM unnest($2::text[], $3::bigint[])) AS k(sensor_type, ts) \
           ON s.sensor_type = k.sensor_type AND s.timestamp = k.ts \
         WHERE s.session_id = $1",
    )
    .bind(session_id)
    .bind(types)
    .bind(timestamps)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sensor_type, ts, data)| ((sensor_type, ts), data))
        .collect())
}

/// Records a pull in the caller's sync log; returns its id.
pub async fn log_pull(
    store: &EventStore,
    metadata: EventMetadata,
    mut cmd: domain::LogPull,
) -> Result<i64, CommandError<SyncError>> {
    let mut uow = store.begin(metadata).await?;
    cmd.sync_log_id = next_id(uow.conn(), "sync_log_id_seq").await?;
    let id = cmd.sync_log_id;
    let stream_id = SyncLogEvent::stream_id(cmd.account_id);
    uow.stage(
        &stream_id,
        ExpectedVersion::Any,
        &domain::decide_log_pull(cmd),
    );
    uow.commit::<SyncError>().await?;
    Ok(id)
}
