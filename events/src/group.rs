//! Group commit for single-stream appends that run in no caller's transaction: concurrent
//! commands' appends share one statement (`append_group`, migration 0700), one transaction and
//! one commit. Each command is isolated in its own subtransaction, so a version or id another
//! writer took refuses that command alone; its neighbours are written. A lone writer is not
//! slowed: with no other caller inside it appends from its own task (the plain self-committing
//! insert, `store::append_alone`), and a worker takes what is queued when it is free and never
//! waits for more.

use crate::store::{self, AppendError, ExpectedVersion, StreamAppend};
use crate::StoredEvent;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

/// Commands one statement carries at most; more wait for the next free worker.
const MAX_BATCH: usize = 64;
/// Batches in flight at once: while one commits (the WAL flush) the next gathers. Two, since
/// loads are gathered too (`group_load`): at 16 writers on 2 cores, 2 workers gave
/// 1.61× postgres-es against 1.43× with 4 and 1.31× with 8 (`fleetbench peers`, ADR 0001).
const WORKERS: usize = 2;

type Reply = Result<Vec<StoredEvent>, AppendError>;

struct Request {
    append: StreamAppend,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub struct GroupAppender {
    pool: PgPool,
    queue: Arc<OnceLock<mpsc::Sender<Request>>>,
    callers: Callers,
}

/// How many callers are inside a gathering front (`GroupAppender::append`,
/// `GroupLoader::load_after`). The first of a quiet spell goes to the database from its own
/// task: handing a lone writer's request to a worker and back cost it two wake-ups per
/// statement for nothing to gather.
#[derive(Clone, Default)]
pub(crate) struct Callers(Arc<AtomicUsize>);

pub(crate) struct Entered<'a> {
    callers: &'a AtomicUsize,
    /// No other caller was inside: nothing to gather with.
    pub alone: bool,
}

impl Callers {
    pub(crate) fn enter(&self) -> Entered<'_> {
        let before = self.0.fetch_add(1, Ordering::AcqRel);
        Entered {
            callers: &self.0,
            alone: before == 0,
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.callers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GroupAppender {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: Arc::new(OnceLock::new()),
            callers: Callers::default(),
        }
    }

    /// Appends one stream at the version it was loaded at, committed (alone or with others)
    /// when this returns. The answer is exactly `store::append_alone`'s.
    pub async fn append(&self, append: StreamAppend) -> Reply {
        let entered = self.callers.enter();
        if entered.alone || append.expected == ExpectedVersion::Any {
            return alone(&self.pool, append).await;
        }
        store::check_sizes(std::slice::from_ref(&append))?;
        let queue = self
            .queue
            .get_or_init(|| start_workers(&self.pool, MAX_BATCH, WORKERS, work));
        ask(queue, |reply| Request { append, reply })
            .await
            .unwrap_or(Err(AppendError::Database(sqlx::Error::WorkerCrashed)))
    }
}

impl GroupAppender {
    /// Writes `appends` as exactly one group (one statement, one commit), bypassing the
    /// gathering; for tests and tools that need to know what shared a batch.
    pub async fn append_batch(&self, appends: Vec<StreamAppend>) -> Vec<Reply> {
        let mut answers = Vec::with_capacity(appends.len());
        let mut batch = Vec::with_capacity(appends.len());
        for append in appends {
            let (reply, answer) = oneshot::channel();
            batch.push(Request { append, reply });
            answers.push(answer);
        }
        write(&self.pool, batch).await;
        let mut replies = Vec::with_capacity(answers.len());
        for answer in answers {
            replies.push(
                answer
                    .await
                    .unwrap_or(Err(AppendError::Database(sqlx::Error::WorkerCrashed))),
            );
        }
        replies
    }
}

/// The queue of a gathering front, with `workers` tasks running `work` on it.
pub(crate) fn start_workers<R, F>(
    pool: &PgPool,
    max_batch: usize,
    workers: usize,
    work: fn(PgPool, Arc<Mutex<mpsc::Receiver<R>>>) -> F,
) -> mpsc::Sender<R>
where
    R: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (queue, requests) = mpsc::channel(max_batch * workers);
    let requests = Arc::new(Mutex::new(requests));
    for _ in 0..workers {
        tokio::spawn(work(pool.clone(), requests.clone()));
    }
    queue
}

/// Queues the request `make` builds around its reply channel and waits for the answer; `None`
/// when the workers are gone.
pub(crate) async fn ask<R, T>(
    queue: &mpsc::Sender<R>,
    make: impl FnOnce(oneshot::Sender<T>) -> R,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    queue.send(make(reply)).await.ok()?;
    answer.await.ok()
}

/// Waits for one request, then takes whatever else is queued, up to `max`; `None` when every
/// sender is gone. Workers share the receiver: one gathers while the others' batches run.
pub(crate) async fn gather<R>(requests: &Mutex<mpsc::Receiver<R>>, max: usize) -> Option<Vec<R>> {
    let mut requests = requests.lock().await;
    let mut batch = vec![requests.recv().await?];
    while batch.len() < max {
        match requests.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn work(pool: PgPool, requests: Arc<Mutex<mpsc::Receiver<Request>>>) {
    while let Some(mut batch) = gather(&requests, MAX_BATCH).await {
        metrics::histogram!("fleet_group_commit_batch").record(batch.len() as f64);
        if batch.len() == 1 {
            let Request { append, reply } = batch.pop().expect("one request");
            let _ = reply.send(alone(&pool, append).await);
            continue;
        }
        write(&pool, batch).await;
    }
}

async fn alone(pool: &PgPool, append: StreamAppend) -> Reply {
    let mut conn = pool.acquire().await?;
    store::append_alone(&mut conn, append).await
}

/// What `append_group` returned: per command written or refused, and the positions of every
/// event (NULL for a refused command's).
#[derive(sqlx::FromRow)]
struct Grouped {
    appended: Vec<bool>,
    appended_positions: Vec<Option<i64>>,
    appended_xid: Option<i64>,
    appended_at: DateTime<Utc>,
}

async fn write(pool: &PgPool, batch: Vec<Request>) {
    let count: usize = batch.iter().map(|r| r.append.events.len()).sum();
    let mut streams = Vec::with_capacity(batch.len());
    let mut bases = Vec::with_capacity(batch.len());
    let mut counts = Vec::with_capacity(batch.len());
    let mut ids: Vec<Uuid> = Vec::with_capacity(count);
    let mut types = Vec::with_capacity(count);
    let mut schema_versions = Vec::with_capacity(count);
    let mut data = Vec::with_capacity(count);
    let mut metadata = Vec::with_capacity(count);
    for request in &batch {
        let append = &request.append;
        streams.push(append.stream_id.as_str());
        bases.push(match append.expected {
            ExpectedVersion::Exact(version) => version,
            _ => 0,
        });
        counts.push(append.events.len() as i32);
        for event in &append.events {
            ids.push(event.event_id);
            types.push(event.event_type.as_str());
            schema_versions.push(event.schema_version);
            data.push(&event.data);
            metadata.push(&event.metadata);
        }
    }
    let grouped: Result<Grouped, sqlx::Error> =
        sqlx::query_as(include_str!("../sql/append_group.sql"))
            .bind(&streams)
            .bind(&bases)
            .bind(&counts)
            .bind(&ids)
            .bind(&types)
            .bind(&schema_versions)
            .bind(&data)
            .bind(&metadata)
            .fetch_one(pool)
            .await;
    drop((streams, counts, ids, types, schema_versions, data, metadata));
    let grouped = match grouped {
        Ok(grouped) => grouped,
        Err(err) => {
            // Not a refusal (those stay inside their subtransaction): nothing was written. Each
            // command alone, so whatever failed fails only its own command.
            tracing::warn!(error = %err, commands = batch.len(), "group append failed; appending each alone");
            for Request { append, reply } in batch {
                let _ = reply.send(alone(pool, append).await);
            }
            return;
        }
    };
    let written = grouped.appended.iter().filter(|ok| **ok).count();
    metrics::counter!("fleet_events_appended_total").increment(
        grouped
            .appended_positions
            .iter()
            .filter(|p| p.is_some())
            .count() as u64,
    );
    let mut positions = grouped.appended_positions.into_iter();
    let mut refused = Vec::with_capacity(batch.len() - written);
    for (Request { append, reply }, ok) in batch.into_iter().zip(grouped.appended) {
        let mine: Vec<Option<i64>> = positions.by_ref().take(append.events.len()).collect();
        if !ok {
            refused.push(Request { append, reply });
            continue;
        }
        let version_base = match append.expected {
            ExpectedVersion::Exact(version) => version,
            _ => 0,
        };
        let stream_id = append.stream_id;
        let stored = append
            .events
            .into_iter()
            .zip(mine)
            .enumerate()
            .map(|(k, (event, position))| StoredEvent {
                global_position: position.unwrap_or_default(),
                transaction_id: grouped.appended_xid.unwrap_or_default(),
                stream_id: stream_id.clone(),
                stream_version: version_base + k as i64 + 1,
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data: event.data,
                metadata: event.metadata,
                recorded_at: grouped.appended_at,
            })
            .collect();
        let _ = reply.send(Ok(stored));
    }
    // A refused command gets append_alone's exact answer: a typed conflict (it then loads and
    // decides again), or the no-op of a retry whose ids are stored already.
    for Request { append, reply } in refused {
        let _ = reply.send(alone(pool, append).await);
    }
}
