//! Reads for pull and status, straight from the inline read models.

use super::cursor::Cursor;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

/// Which of the caller's sessions a pull wants.
#[derive(Debug, Clone, Default)]
pub struct PullFilter {
    pub owner_id: i64,
    pub session_ids: Option<Vec<String>>,
    pub changed_since: Option<DateTime<Utc>>,
    /// Wins over `changed_since`.
    pub after: Option<Cursor>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: String,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub enabled_sensors: Value,
    pub sample_rate: Option<i64>,
    pub data_count: i64,
    pub notes: Option<String>,
    pub is_uploaded: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub total: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SampleRow {
    pub session_id: String,
    pub sensor_type: String,
    pub timestamp: i64,
    pub data: Value,
}

const FILTER: &str = "owner_id = $1 \
    AND ($2::text[] IS NULL OR session_id = ANY($2)) \
    AND ($3::timestamptz IS NULL OR updated_at > $3) \
    AND ($4::bigint IS NULL OR (last_transaction_id, last_position) > ($4, $5))";

fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    f: &'q PullFilter,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    // A cursor replaces the time filter.
    let since = if f.after.is_some() {
        None
    } else {
        f.changed_since
    };
    query
        .bind(f.owner_id)
        .bind(&f.session_ids)
        .bind(since)
        .bind(f.after.map(|c| c.transaction_id))
        .bind(f.after.map(|c| c.global_position).unwrap_or(0))
}

/// True when one of `session_ids` belongs to another account.
pub async fn any_foreign(
    conn: &mut PgConnection,
    owner_id: i64,
    session_ids: &[String],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM recording_sessions WHERE session_id = ANY($1) AND owner_id <> $2)",
    )
    .bind(session_ids)
    .bind(owner_id)
    .fetch_one(conn)
    .await
}

/// One page, newest change first, each row carrying the filtered total.
pub async fn sessions_page(
    conn: &mut PgConnection,
    filter: &PullFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT session_id, start_time, end_time, is_active, enabled_sensors, sample_rate, \
                data_count, notes, is_uploaded, created_at, updated_at, count(*) OVER () AS total \
         FROM recording_sessions WHERE {FILTER} \
         ORDER BY updated_at DESC, session_id LIMIT $6 OFFSET $7"
    );
    bind_filter(sqlx::query_as(&sql), filter)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
}

/// Filtered total when the page is empty (past the end).
pub async fn sessions_total(
    conn: &mut PgConnection,
    filter: &PullFilter,
) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT count(*) FROM recording_sessions WHERE {FILTER}");
    let (total,): (i64,) = bind_filter(sqlx::query_as(&sql), filter)
        .fetch_one(conn)
        .await?;
    Ok(total)
}

/// The newest change in the whole filtered result (all pages) that no push still in flight can
/// precede: pushes of one account run concurrently, so a change may commit after a newer
/// position is visible. The log's never-skip rule applies (as in `events/sql/read_all.sql`):
/// every transaction that is still open, or not yet begun, has an id at or above the snapshot's
/// xmin, so a cursor below it never passes a change that commits later. Changes at or above it
/// are returned by this pull and again by the next, until they fall below. Run in the same
/// REPEATABLE READ transaction as the page, so both see one snapshot.
pub async fn next_cursor(
    conn: &mut PgConnection,
    filter: &PullFilter,
) -> Result<Option<Cursor>, sqlx::Error> {
    let sql = format!(
        "SELECT last_transaction_id, last_position FROM recording_sessions WHERE {FILTER} \
           AND last_transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
         ORDER BY last_transaction_id DESC, last_position DESC LIMIT 1"
    );
    let row: Option<(i64, i64)> = bind_filter(sqlx::query_as(&sql), filter)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(transaction_id, global_position)| Cursor {
        transaction_id,
        global_position,
    }))
}

/// Samples of the given sessions, ascending by timestamp.
pub async fn samples_of(
    conn: &mut PgConnection,
    session_ids: &[String],
) -> Result<Vec<SampleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT session_id, sensor_type, timestamp, data FROM sensor_samples \
         WHERE session_id = ANY($1) ORDER BY session_id, timestamp, sensor_type",
    )
    .bind(session_ids)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionCounts {
    pub total_sessions: i64,
    pub active_sessions: i64,
    pub uploaded_sessions: i64,
}

pub async fn session_counts(
    conn: &mut PgConnection,
    owner_id: i64,
) -> Result<SessionCounts, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS total_sessions, \
                count(*) FILTER (WHERE is_active) AS active_sessions, \
                count(*) FILTER (WHERE is_uploaded) AS uploaded_sessions \
         FROM recording_sessions WHERE owner_id = $1",
    )
    .bind(owner_id)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SyncLogRow {
    pub id: i64,
    pub sync_type: String,
    pub status: String,
    pub total_records: i64,
    pub inserted: i64,
    pub updated: i64,
    pub duplicates: i64,
    pub created_at: DateTime<Utc>,
}

/// The caller's last ten sync logs, newest first.
pub async fn recent_syncs(
    conn: &mut PgConnection,
    account_id: i64,
) -> Result<Vec<SyncLogRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, sync_type, status, total_records, inserted, updated, duplicates, created_at \
         FROM sync_logs WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await
}
