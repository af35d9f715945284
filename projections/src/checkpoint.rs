use chrono::{DateTime, Utc};
use fleetstream_events::store::Checkpoint;
use sqlx::{PgConnection, Row};

/// Creates the projection's checkpoint row in its own autocommitted statement. Created inside a
/// batch transaction, the row would stay uncommitted until that batch ends and a second worker's
/// insert would wait on it instead of skipping. The `NOT EXISTS` guard keeps the common case
/// (row already there) from touching the unique index, so it never waits on a batch either.
pub async fn ensure_checkpoint(pool: &sqlx::PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) SELECT $1
         WHERE NOT EXISTS (SELECT 1 FROM projection_checkpoints WHERE name = $1)
         ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// Locks the projection's checkpoint row for this transaction, creating it on first use.
/// `None` means another worker holds the projection right now.
pub async fn load_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(include_str!("../sql/checkpoint_lock.sql"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| Checkpoint {
        transaction_id: r.get("transaction_id"),
        global_position: r.get("global_position"),
    }))
}

pub async fn save_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    checkpoint: Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../sql/checkpoint_save.sql"))
        .bind(name)
        .bind(checkpoint.transaction_id)
        .bind(checkpoint.global_position)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a failed batch of a log reader; its checkpoint does not move. Cleared by the next
/// successful [`save_checkpoint`].
pub async fn record_error(pool: &sqlx::PgPool, name: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../sql/checkpoint_record_error.sql"))
        .bind(name)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records that the reader `name` steps past `event`, which it could not apply (`error`), in
/// the transaction that moves its checkpoint past it.
pub async fn skip_event(
    conn: &mut PgConnection,
    name: &str,
    event: &fleetstream_events::StoredEvent,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../sql/projection_skipped_insert.sql"))
        .bind(name)
        .bind(event.global_position)
        .bind(event.event_id)
        .bind(&event.event_type)
        .bind(error)
        .execute(conn)
        .await?;
    metrics::counter!("fleet_projection_events_skipped_total", "projection" => name.to_owned())
        .increment(1);
    tracing::error!(
        reader = name,
        position = event.global_position,
        event_type = %event.event_type,
        %error,
        "event skipped: it failed every try; the reader goes on and health says so until a rebuild"
    );
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub position: i64,
    pub lag_events: i64,
    pub lag_seconds: f64,
    pub updated_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When the current run of failed batches began; `None` while healthy.
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed batches in a row.
    pub failures: i64,
    /// Events it stepped past after failing on them again and again (until a rebuild).
    pub skipped_events: i64,
    /// The oldest of those.
    pub first_skipped: Option<i64>,
}

/// Position and lag of one log reader (`categories` = what it reads; `None` = everything).
pub async fn status(
    conn: &mut PgConnection,
    name: &str,
    categories: Option<&[String]>,
) -> Result<ProjectionStatus, sqlx::Error> {
    let row = sqlx::query(include_str!("../sql/checkpoint_status.sql"))
        .bind(name)
        .bind(categories)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => {
            let oldest: Option<DateTime<Utc>> = r.get("oldest_pending_at");
            ProjectionStatus {
                name: name.to_owned(),
                position: r.get("global_position"),
                lag_events: r.get("lag_events"),
                lag_seconds: oldest
                    .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
                    .unwrap_or(0.0),
                updated_at: Some(r.get("updated_at")),
                last_error: r.get("last_error"),
                failing_since: r.get("failing_since"),
                failures: r.get("failures"),
                skipped_events: r.get("skipped_events"),
                first_skipped: r.get("first_skipped"),
            }
        }
        None => ProjectionStatus {
            name: name.to_owned(),
            position: 0,
            lag_events: 0,
            lag_seconds: 0.0,
            updated_at: None,
            last_error: None,
            failing_since: None,
            failures: 0,
            skipped_events: 0,
            first_skipped: None,
        },
    })
}

/// Position and lag of a projection as it really is: an inline projection is updated in every
/// append's transaction, so its position is the newest event of its categories and its lag 0
/// (its checkpoint row only moves on a rebuild); an async one reads its checkpoint.
pub async fn projection_status(
    conn: &mut PgConnection,
    projection: &dyn crate::Projection,
) -> Result<ProjectionStatus, sqlx::Error> {
    let categories: Vec<String> = projection
        .categories()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let checkpoint = status(&mut *conn, projection.name(), Some(&categories)).await?;
    if projection.mode() != crate::Mode::Inline {
        return Ok(checkpoint);
    }
    let row = sqlx::query(include_str!("../sql/inline_status.sql"))
        .bind(&categories)
        .fetch_one(conn)
        .await?;
    Ok(ProjectionStatus {
        position: row.get("global_position"),
        lag_events: 0,
        lag_seconds: 0.0,
        updated_at: row.get("updated_at"),
        ..checkpoint
    })
}
