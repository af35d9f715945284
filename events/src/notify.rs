//! Wake-ups for log readers, sent after an append commits instead of by a trigger inside it.
//!
//! Postgres serialises the commits of notifying transactions on one lock held through the WAL
//! flush, so a `NOTIFY` inside every append defeated group commit (measured: 16 connections
//! of single-row commits fell from ~9,000/s to ~5,000/s). Here the appender signals after its
//! commit, and one task per process sends `NOTIFY` from its own connection, with
//! `synchronous_commit` off: a burst of appends costs one or two notifications. A reader that
//! misses one still polls.
//!
//! Under steady load the notifications are spaced by [`MIN_SPACING`]: each is a transaction of
//! its own, and sent back to back they took 10–15% of a 2-core machine's command throughput
//! (`fleetbench peers`, issue 16). A lone commit is still announced at once; readers of a busy
//! log are woken at most that much later.

use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// The least time between two notifications; commits in between share the next one.
pub const MIN_SPACING: Duration = Duration::from_millis(5);

/// The channel log readers `LISTEN` on.
pub const CHANNEL: &str = "fleet_events";

/// Cheap to clone; the sending task starts on first use and ends with the last clone.
#[derive(Clone)]
pub struct AppendNotifier {
    pool: PgPool,
    wake: Arc<OnceLock<mpsc::Sender<()>>>,
}

impl AppendNotifier {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            wake: Arc::new(OnceLock::new()),
        }
    }

    /// Call after an append committed: readers are woken after this call. Never waits.
    pub fn appended(&self) {
        let wake = self.wake.get_or_init(|| {
            // One pending wake-up is enough: it is sent after the one in flight, so after
            // every commit that asked for it.
            let (wake, asked) = mpsc::channel(1);
            tokio::spawn(send_notifications(self.pool.clone(), asked));
            wake
        });
        let _ = wake.try_send(());
    }
}

async fn send_notifications(pool: PgPool, mut asked: mpsc::Receiver<()>) {
    while asked.recv().await.is_some() {
        let sent =
            sqlx::query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&pool)
                .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not notify log readers; they will poll");
        }
        // The one pending wake-up (channel of 1) gathers the commits made meanwhile.
        tokio::time::sleep(MIN_SPACING).await;
    }
}
