//! Loads of concurrent commands gathered into one statement. At 16 writers a command's own
//! load was one of its two round trips, and round trips (system calls and context switches on
//! both sides), not the queries, were most of the CPU a command costs (`fleetbench peers`,
//! issue 16). A lone writer's load is the plain query from its own task; otherwise a worker
//! takes whatever loads are queued when it is free and never waits for more.

use crate::group::{ask, gather, start_workers, Callers};
use crate::store::{self, LoadedRow};
use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Loads one statement carries at most.
const MAX_BATCH: usize = 64;
/// Statements in flight at once: while one runs, the next gathers.
const WORKERS: usize = 2;

type Reply = Result<Vec<LoadedRow>, sqlx::Error>;

/// A row of `load_streams_after.sql`: which request (1-based) it answers, then a [`LoadedRow`].
type BatchRow = (i32, i64, String, i32, serde_json::Value);

struct Request {
    stream_id: String,
    after: i64,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub struct GroupLoader {
    pool: PgPool,
    queue: Arc<OnceLock<mpsc::Sender<Request>>>,
    callers: Callers,
}

impl GroupLoader {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: Arc::new(OnceLock::new()),
            callers: Callers::default(),
        }
    }

    /// The events of `stream_id` after version `after` (0: the whole stream), in version
    /// order, as `store::load_rows` returns them. Read outside any transaction: the caller's
    /// append names the version it saw, which catches a writer in between.
    pub async fn load_after(&self, stream_id: &str, after: i64) -> Reply {
        let entered = self.callers.enter();
        if entered.alone {
            return store::load_rows_after(&self.pool, stream_id, after).await;
        }
        let queue = self
            .queue
            .get_or_init(|| start_workers(&self.pool, MAX_BATCH, WORKERS, work));
        let stream_id = stream_id.to_owned();
        ask(queue, |reply| Request {
            stream_id,
            after,
            reply,
        })
        .await
        .unwrap_or(Err(sqlx::Error::WorkerCrashed))
    }
}

impl GroupLoader {
    /// Loads `streams` (id, after) as exactly one statement, bypassing the gathering; for tests
    /// that need to know what shared a batch.
    pub async fn load_batch(&self, streams: Vec<(String, i64)>) -> Vec<Reply> {
        let mut answers = Vec::with_capacity(streams.len());
        let mut batch = Vec::with_capacity(streams.len());
        for (stream_id, after) in streams {
            let (reply, answer) = oneshot::channel();
            batch.push(Request {
                stream_id,
                after,
                reply,
            });
            answers.push(answer);
        }
        load_batch(&self.pool, batch).await;
        let mut replies = Vec::with_capacity(answers.len());
        for answer in answers {
            replies.push(answer.await.unwrap_or(Err(sqlx::Error::WorkerCrashed)));
        }
        replies
    }
}

async fn work(pool: PgPool, requests: Arc<Mutex<mpsc::Receiver<Request>>>) {
    while let Some(mut batch) = gather(&requests, MAX_BATCH).await {
        metrics::histogram!("fleet_group_load_batch").record(batch.len() as f64);
        if batch.len() == 1 {
            let request = batch.pop().expect("one request");
            let rows = load_one(&pool, &request).await;
            let _ = request.reply.send(rows);
            continue;
        }
        load_batch(&pool, batch).await;
    }
}

async fn load_one(pool: &PgPool, request: &Request) -> Reply {
    store::load_rows_after(pool, &request.stream_id, request.after).await
}

async fn load_batch(pool: &PgPool, batch: Vec<Request>) {
    let streams: Vec<&str> = batch.iter().map(|r| r.stream_id.as_str()).collect();
    let afters: Vec<i64> = batch.iter().map(|r| r.after).collect();
    let rows: Result<Vec<BatchRow>, sqlx::Error> =
        sqlx::query_as(include_str!("../sql/load_streams_after.sql"))
            .bind(&streams)
            .bind(&afters)
            .fetch_all(pool)
            .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(err) => {
            // Each load alone, so each caller gets its own answer (a pool gone, a stream
            // that cannot be read), never a neighbour's.
            tracing::warn!(error = %err, loads = batch.len(), "group load failed; loading each alone");
            for request in batch {
                let rows = load_one(pool, &request).await;
                let _ = request.reply.send(rows);
            }
            return;
        }
    };
    let mut loaded: Vec<Vec<LoadedRow>> = vec![Vec::new(); batch.len()];
    for (request, version, event_type, schema_version, data) in rows {
        // `request` is the 1-based ordinality of the stream in this batch.
        if let Some(rows) = usize::try_from(request - 1)
            .ok()
            .and_then(|i| loaded.get_mut(i))
        {
            rows.push((version, event_type, schema_version, data));
        }
    }
    for (request, rows) in batch.into_iter().zip(loaded) {
        let _ = request.reply.send(Ok(rows));
    }
}
