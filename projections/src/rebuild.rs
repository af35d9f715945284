use crate::{checkpoint, Mode, Projection, ProjectionError};
use fleetstream_events::privacy::{self, KeyCache, Keyring, PrivacyError};
use fleetstream_events::store::{read_all, Checkpoint};
use fleetstream_events::StoredEvent;
use sqlx::{PgConnection, PgPool};

/// Replays a projection from the start of the log into freshly truncated tables, in one
/// transaction: readers see the old rows until the new ones commit, and a failed rebuild
/// leaves the live read model untouched. Personal fields are opened with `keyring` (those of
/// erased subjects read as erased); a projection of personal data cannot be rebuilt without
/// it. Returns the number of events applied.
pub async fn rebuild(
    pool: &PgPool,
    projection: &dyn Projection,
    keyring: Option<&Keyring>,
    batch_size: i64,
    mut progress: impl FnMut(u64),
) -> Result<u64, ProjectionError> {
    let mut tx = pool.begin().await?;
    // The runner takes the checkpoint row before the tables, so the rebuild does too; from the
    // table lock on, inline writers of this read model wait until the rebuild commits.
    hold_checkpoint(&mut tx, projection.name()).await?;
    lock_tables(&mut tx, projection).await?;
    truncate(&mut tx, projection).await?;
    let categories: Vec<String> = projection
        .categories()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let personal = categories.iter().any(|c| privacy::is_personal_category(c));
    let mut keys = KeyCache::default();
    let mut at = Checkpoint::default();
    let mut total = 0u64;
    loop {
        let mut events = match projection.mode() {
            Mode::Async => read_all(&mut tx, at, batch_size, Some(&categories)).await?,
            Mode::Inline => read_visible(&mut tx, at, batch_size, &categories).await?,
        };
        let Some(last) = events.last() else { break };
        at = Checkpoint::after(last);
        if personal {
            privacy::open_events(&mut tx, keyring, &mut keys, &mut events)
                .await
                .map_err(|err| match err {
                    PrivacyError::Database(e) => ProjectionError::Database(e),
                    other => ProjectionError::Other(other.to_string()),
                })?;
        }
        projection.apply(&mut tx, &events).await?;
        total += events.len() as u64;
        progress(events.len() as u64);
    }
    checkpoint::save_checkpoint(&mut tx, projection.name(), at).await?;
    forget_skipped(&mut tx, projection.name()).await?;
    tx.commit().await?;
    Ok(total)
}

/// Empties an async projection's tables and rewinds it; the runner replays it from there.
/// Inline projections are rebuilt instead, since nothing else would refill them.
pub async fn reset(
    pool: &PgPool,
    projection: &dyn Projection,
    keyring: Option<&Keyring>,
) -> Result<(), ProjectionError> {
    if projection.mode() == Mode::Inline {
        rebuild(pool, projection, keyring, 1000, |_| {}).await?;
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    hold_checkpoint(&mut tx, projection.name()).await?;
    lock_tables(&mut tx, projection).await?;
    truncate(&mut tx, projection).await?;
    checkpoint::save_checkpoint(&mut tx, projection.name(), Checkpoint::default()).await?;
    forget_skipped(&mut tx, projection.name()).await?;
    tx.commit().await?;
    Ok(())
}

/// A replay from the start applies the skipped events again (or fails on them).
async fn forget_skipped(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM projection_skipped WHERE projection = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

async fn lock_tables(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    if projection.tables().is_empty() {
        return Ok(());
    }
    let sql = format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        projection.tables().join(", ")
    );
    sqlx::query(&sql).execute(conn).await?;
    Ok(())
}

/// Waits for the runner's current batch, then keeps it out until the rebuild commits.
async fn hold_checkpoint(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

async fn truncate(conn: &mut PgConnection, projection: &dyn Projection) -> Result<(), sqlx::Error> {
    if projection.tables().is_empty() {
        return Ok(());
    }
    let sql = format!(
        "TRUNCATE {} RESTART IDENTITY",
        projection.tables().join(", ")
    );
    sqlx::query(&sql).execute(conn).await?;
    Ok(())
}

async fn read_visible(
    conn: &mut PgConnection,
    at: Checkpoint,
    limit: i64,
    categories: &[String],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(include_str!("../sql/read_all_visible.sql"))
        .bind(at.transaction_id.to_string())
        .bind(at.global_position)
        .bind(limit)
        .bind(categories)
        .fetch_all(conn)
        .await
}
