use crate::{checkpoint, Mode, Projection};
use fleetstream_events::store::{read_all, Checkpoint};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub batch_size: i64,
    /// Fallback when a notification is missed (or held back by an older open transaction).
    pub poll_interval: Duration,
    /// The first wait after a failed batch; it doubles up to `max_error_backoff`.
    pub error_backoff: Duration,
    pub max_error_backoff: Duration,
    /// Tries of one event failing the same non-transient way before it is skipped (recorded
    /// in `projection_skipped`, health degraded until a rebuild) so the rest flow on.
    pub skip_after_failures: u32,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(250),
            error_backoff: Duration::from_secs(1),
            max_error_backoff: Duration::from_secs(30),
            skip_after_failures: 5,
        }
    }
}

/// Ticks whenever an append commits (Postgres NOTIFY on `fleet_events`, sent after commit by
/// `fleetstream_events::notify::AppendNotifier`).
#[derive(Clone)]
pub struct Wakeup(watch::Receiver<u64>);

impl Wakeup {
    /// Listens on `fleet_events` until `shutdown`; reconnects on its own.
    pub async fn listen(pool: &PgPool, shutdown: CancellationToken) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(fleetstream_events::notify::CHANNEL).await?;
        let (tx, rx) = watch::channel(0u64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    received = listener.recv() => match received {
                        Ok(_) => { tx.send_modify(|n| *n += 1); }
                        Err(err) => {
                            tracing::warn!(error = %err, "event notification listener failed; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    },
                }
            }
        });
        Ok(Self(rx))
    }

    /// A wakeup that never fires: pure polling.
    pub fn polling_only() -> Self {
        let (tx, rx) = watch::channel(0u64);
        std::mem::forget(tx);
        Self(rx)
    }

    /// Waits for the next append or `timeout`, whichever comes first.
    pub async fn wait_for(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.0.changed()).await;
    }
}

/// Runs async projections: one task each, each holding its projection batch by batch.
pub struct Runner {
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    config: RunnerConfig,
}

impl Runner {
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection>>, config: RunnerConfig) -> Self {
        let projections = projections
            .into_iter()
            .filter(|p| p.mode() == Mode::Async)
            .collect();
        Self {
            pool,
            projections,
            config,
        }
    }

    pub fn spawn(
        self,
        wakeup: Wakeup,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.projections
            .into_iter()
            .map(|projection| {
                let pool = self.pool.clone();
                let config = self.config.clone();
                let wakeup = wakeup.clone();
                let shutdown = shutdown.clone();
                let span = tracing::info_span!("projection", name = projection.name());
                tokio::spawn(run_one(pool, projection, config, wakeup, shutdown).instrument(span))
            })
            .collect()
    }
}

async fn run_one(
    pool: PgPool,
    projection: Arc<dyn Projection>,
    config: RunnerConfig,
    mut wakeup: Wakeup,
    shutdown: CancellationToken,
) {
    let name = projection.name();
    let mut backoff = config.error_backoff;
    // After a failed batch the next events go one at a time, so the failure is pinned to one
    // event (logged with its position) and the events before it are applied.
    let mut one_by_one: i64 = 0;
    // Consecutive non-transient failures on one event: (its position, how many).
    let mut stuck: (i64, u32) = (0, 0);
    while !shutdown.is_cancelled() {
        let batch_size = if one_by_one > 0 { 1 } else { config.batch_size };
        match step(&pool, projection.as_ref(), batch_size).await {
            Ok(Step::Applied(n)) => {
                backoff = config.error_backoff;
                stuck = (0, 0);
                one_by_one = (one_by_one - n as i64).max(0);
                if n as i64 >= batch_size {
                    continue;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wakeup.wait_for(config.poll_interval) => {}
                }
            }
            Ok(Step::HeldElsewhere) => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wakeup.wait_for(config.poll_interval) => {}
                }
            }
            Err(err) => {
                metrics::counter!("fleet_projection_errors_total", "projection" => name)
                    .increment(1);
                if batch_size > 1 {
                    tracing::warn!(error = %err, "projection batch failed; retrying its events one by one");
                    one_by_one = config.batch_size;
                    continue;
                }
                if let Some(position) = err.position().filter(|_| !err.is_transient()) {
                    stuck = match stuck {
                        (at, tries) if at == position => (at, tries + 1),
                        _ => (position, 1),
                    };
                    if stuck.1 >= config.skip_after_failures {
                        match skip(&pool, projection.as_ref(), position, &err).await {
                            Ok(()) => {
                                stuck = (0, 0);
                                backoff = config.error_backoff;
                                continue;
                            }
                            Err(skip_err) => {
                                tracing::warn!(error = %skip_err, "could not skip the failing event")
                            }
                        }
                    }
                }
                tracing::error!(error = %err, retry_in = ?backoff, "projection failed on an event; its checkpoint stays before it");
                let _ = checkpoint::record_error(&pool, name, &err.to_string()).await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(config.max_error_backoff);
            }
        }
    }
}

/// Moves the checkpoint past the event at `position` (still the next one to read) and records
/// why, in one transaction.
async fn skip(
    pool: &PgPool,
    projection: &dyn Projection,
    position: i64,
    err: &crate::ProjectionError,
) -> Result<(), crate::ProjectionError> {
    let mut tx = pool.begin().await?;
    let Some(from) = checkpoint::load_checkpoint(&mut tx, projection.name()).await? else {
        return Ok(());
    };
    let categories: Vec<String> = projection
        .categories()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let next = read_all(&mut tx, from, 1, Some(&categories)).await?;
    // Only the event that failed, and only if nobody moved past it meanwhile.
    let Some(event) = next.first().filter(|e| e.global_position == position) else {
        return Ok(());
    };
    checkpoint::skip_event(&mut tx, projection.name(), event, &err.to_string()).await?;
    checkpoint::save_checkpoint(&mut tx, projection.name(), Checkpoint::after(event)).await?;
    tx.commit().await?;
    Ok(())
}

/// The outcome of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Applied(usize),
    /// Another worker holds this projection right now.
    HeldElsewhere,
}

/// Reads one batch after the checkpoint, applies it and moves the checkpoint, in one
/// transaction: either both the read model and the checkpoint move, or neither.
pub async fn step(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<Step, crate::ProjectionError> {
    checkpoint::ensure_checkpoint(pool, projection.name()).await?;
    let mut tx = pool.begin().await?;
    let Some(from) = checkpoint::load_checkpoint(&mut tx, projection.name()).await? else {
        return Ok(Step::HeldElsewhere);
    };
    let categories: Vec<String> = projection
        .categories()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let events = read_all(&mut tx, from, batch_size, Some(&categories)).await?;
    let Some(last) = events.last() else {
        return Ok(Step::Applied(0));
    };
    let to = Checkpoint::after(last);
    if let Err(source) = projection.apply(&mut tx, &events).await {
        return Err(crate::ProjectionError::InBatch {
            first: events[0].global_position,
            last: last.global_position,
            source: Box::new(source),
        });
    }
    checkpoint::save_checkpoint(&mut tx, projection.name(), to).await?;
    tx.commit().await?;
    metrics::gauge!("fleet_projection_position", "projection" => projection.name())
        .set(to.global_position as f64);
    tracing::debug!(
        projection = projection.name(),
        events = events.len(),
        position = to.global_position,
        "projection batch applied"
    );
    Ok(Step::Applied(events.len()))
}

/// Applies batches until the projection has nothing left to read (tests, CLI `project --once`).
pub async fn run_until_caught_up(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<u64, crate::ProjectionError> {
    let mut total = 0u64;
    loop {
        match step(pool, projection, batch_size).await? {
            Step::Applied(0) => return Ok(total),
            Step::Applied(n) => total += n as u64,
            Step::HeldElsewhere => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
