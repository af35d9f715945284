//! `fleetstream privacy migrate`: rewrites the personal fields of events written before
//! sealing existed into their sealed form, once. Batches commit with their progress, so an
//! interrupted run resumes where it stopped; a finished one refuses to run again. Subjects
//! that had already ended (withdrawn or deleted accounts, removed patients) lose their keys at
//! the end, and the read models of personal data are rebuilt from the sealed log.

use crate::es::UnitOfWork;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use fleetstream_events::privacy::{self, KeyCache, Keyring, PERSONAL_CATEGORIES};
use fleetstream_events::store::{ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{AccountEvent, DomainEvent, EventMetadata};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the personal data of this log was sealed already (migration finished {0}); it runs once"
    )]
    AlreadyDone(DateTime<Utc>),
    #[error("FLEET_MASTER_KEY is required to seal personal data")]
    NoKeyring,
    #[error(transparent)]
    Privacy(#[from] privacy::PrivacyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Load(#[from] fleetstream_events::store::LoadError),
    #[error("destroying the keys of ended subjects: {0}")]
    Shred(String),
    #[error("rebuilding {0}: {1}")]
    Rebuild(&'static str, fleetstream_projections::ProjectionError),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Events of personal categories read in this run.
    pub scanned: u64,
    /// Of those, events rewritten with their personal fields sealed.
    pub sealed: u64,
    /// Data keys destroyed for subjects that had ended before the migration.
    pub shredded: u64,
}

/// Where a run stands: `privacy_migration`'s one row.
#[derive(sqlx::FromRow)]
struct Progress {
    last_position: i64,
    finished_at: Option<DateTime<Utc>>,
}

type Row = (i64, String, String, Value);

/// Seals every event of a personal category after the recorded position, `batch` events per
/// transaction; `progress(done, total)` after each batch.
pub async fn migrate(
    state: &AppState,
    batch: i64,
    mut progress: impl FnMut(u64, u64),
) -> Result<MigrateReport, MigrateError> {
    let pool = state.pool();
    let keyring = state.store.keyring().ok_or(MigrateError::NoKeyring)?;
    let categories: Vec<String> = PERSONAL_CATEGORIES.iter().map(|c| c.to_string()).collect();
    let start = begin(pool).await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE category = ANY($1) AND global_position > $2",
    )
    .bind(&categories)
    .bind(start)
    .fetch_one(pool)
    .await?;
    let mut report = MigrateReport::default();
    let mut at = start;
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT global_position, stream_id, event_type, data FROM events \
             WHERE category = ANY($1) AND global_position > $2 \
             ORDER BY global_position LIMIT $3 FOR UPDATE",
        )
        .bind(&categories)
        .bind(at)
        .bind(batch.max(1))
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        let read = rows.len() as u64;
        let sealed = seal_rows(&mut tx, keyring, rows).await?;
        sqlx::query(
            "UPDATE privacy_migration SET last_position = $1, sealed_events = sealed_events + $2",
        )
        .bind(last)
        .bind(sealed as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        report.scanned += read;
        report.sealed += sealed;
        at = last;
        progress(report.scanned.min(total as u64), total as u64);
    }
    report.shredded = shred_ended(state).await?;
    for name in ["accounts", "patients", "outbound_messages"] {
        let projection = state
            .store
            .projections()
            .iter()
            .find(|p| p.name() == name)
            .expect("the read models of personal data are registered");
        fleetstream_projections::rebuild(pool, projection.as_ref(), Some(keyring), 2_000, |_| {})
            .await
            .map_err(|err| MigrateError::Rebuild(name, err))?;
    }
    sqlx::query("UPDATE privacy_migration SET finished_at = now()")
        .execute(pool)
        .await?;
    Ok(report)
}

/// Records the start of a run (or finds the one to resume); refuses a finished migration.
async fn begin(pool: &PgPool) -> Result<i64, MigrateError> {
    sqlx::query("INSERT INTO privacy_migration DEFAULT VALUES ON CONFLICT (id) DO NOTHING")
        .execute(pool)
        .await?;
    let progress: Progress =
        sqlx::query_as("SELECT last_position, finished_at FROM privacy_migration")
            .fetch_one(pool)
            .await?;
    match progress.finished_at {
        Some(at) => Err(MigrateError::AlreadyDone(at)),
        None => Ok(progress.last_position),
    }
}

/// Seals the clear personal fields of one batch of rows in place; returns how many changed.
async fn seal_rows(
    conn: &mut sqlx::PgConnection,
    keyring: &Keyring,
    rows: Vec<Row>,
) -> Result<u64, MigrateError> {
    let mut positions = Vec::with_capacity(rows.len());
    let mut appends: Vec<StreamAppend> = Vec::with_capacity(rows.len());
    for (position, stream_id, event_type, data) in rows {
        positions.push(position);
        appends.push(StreamAppend {
            stream_id,
            expected: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_id: Uuid::now_v7(),
                event_type,
                schema_version: 1,
                data,
                metadata: Value::Null,
            }],
        });
    }
    let mut keys = KeyCache::default();
    let before = privacy::seal(conn, keyring, &mut keys, &mut appends).await?;
    let changed: Vec<(i64, Value)> = positions
        .into_iter()
        .zip(appends)
        .filter_map(|(position, mut append)| {
            let event = append.events.pop()?;
            before
                .contains(&event.event_id)
                .then_some((position, event.data))
        })
        .collect();
    if changed.is_empty() {
        return Ok(0);
    }
    let (positions, payloads): (Vec<i64>, Vec<Value>) = changed.into_iter().unzip();
    sqlx::query(
        "UPDATE events SET data = sealed.data \
         FROM unnest($1::bigint[], $2::jsonb[]) AS sealed (position, data) \
         WHERE events.global_position = sealed.position",
    )
    .bind(&positions)
    .bind(&payloads)
    .execute(&mut *conn)
    .await?;
    Ok(positions.len() as u64)
}

/// Destroys the keys of subjects that ended before sealing existed: withdrawn or deleted
/// accounts (with every phone number they held) and removed patients.
async fn shred_ended(state: &AppState) -> Result<u64, MigrateError> {
    let ended: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT stream_id FROM events WHERE category IN ('account', 'patient') \
         AND event_type IN ('AccountWithdrawn', 'AccountDeleted', 'PatientDeleted')",
    )
    .fetch_all(state.pool())
    .await?;
    let mut uow: UnitOfWork = state.store.begin(EventMetadata::default()).await?;
    let mut subjects = Vec::with_capacity(ended.len());
    for stream_id in ended {
        if stream_id.starts_with(AccountEvent::CATEGORY) {
            let (account, _) = uow
                .load::<crate::accounts::domain::Account>(&stream_id)
                .await?;
            let keyring = uow.keyring().ok_or(MigrateError::NoKeyring)?;
            subjects.extend(
                account
                    .phones
                    .iter()
                    .filter(|p| p.as_str() != privacy::ERASED)
                    .map(|p| privacy::phone_subject(keyring, p)),
            );
        }
        subjects.push(stream_id);
    }
    let shredded = privacy::shred(uow.conn(), &subjects).await?;
    uow.commit::<()>()
        .await
        .map_err(|err| MigrateError::Shred(err.to_string()))?;
    Ok(shredded.len() as u64)
}
