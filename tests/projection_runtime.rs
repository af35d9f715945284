//! The projection runtime against a real Postgres: a batch that fails half way leaves neither
//! rows nor checkpoint behind, a restart resumes without loss or double application, a rebuild
//! reproduces the live read model, and two workers never apply the same batch.

use async_trait::async_trait;
use fleetstream_events::store::{self, ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{EventMetadata, StoredEvent};
use fleetstream_projections::{
    rebuild, run_until_caught_up, step, Projection, ProjectionError, Runner, RunnerConfig, Step,
    Wakeup,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TallyEvent {
    Counted { by: i64 },
}
fleetstream_events::domain_event!(TallyEvent, "tally", [Counted]);

/// Sums `by` per stream into `tally` and logs every application into `tally_log` (no unique
/// key there, so a double application shows up as a duplicate row instead of an error).
#[derive(Default)]
struct TallyProjection {
    /// Fail when reaching this global position (once), after writing the batch's earlier events.
    fail_at_position: Mutex<Option<i64>>,
    /// Blocks the first batch: `(entered, release)`.
    hold_first_batch: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
}

#[async_trait]
impl Projection for TallyProjection {
    fn name(&self) -> &'static str {
        "test_tally"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["tally"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["tally", "tally_log"]
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let hold = self.hold_first_batch.lock().unwrap().take();
        if let Some((entered, release)) = hold {
            entered.notify_one();
            release.notified().await;
        }
        for event in events {
            let fail_here = {
                let mut armed = self.fail_at_position.lock().unwrap();
                if *armed == Some(event.global_position) {
                    armed.take();
                    true
                } else {
                    false
                }
            };
            if fail_here {
                return Err(ProjectionError::Other(format!(
                    "injected failure at position {}",
                    event.global_position
                )));
            }
            let Some(TallyEvent::Counted { by }) = event.decode::<TallyEvent>().transpose()? else {
                continue;
            };
            sqlx::query(
                "INSERT INTO tally (stream_id, total, applied) VALUES ($1, $2, 1)
                 ON CONFLICT (stream_id) DO UPDATE
                 SET total = tally.total + EXCLUDED.total, applied = tally.applied + 1",
            )
            .bind(&event.stream_id)
            .bind(by)
            .execute(&mut *conn)
            .await?;
            sqlx::query("INSERT INTO tally_log (event_id, global_position) VALUES ($1, $2)")
                .bind(event.event_id)
                .bind(event.global_position)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

async fn create_tables(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE tally (stream_id TEXT PRIMARY KEY, total BIGINT NOT NULL, applied INT NOT NULL);
         CREATE TABLE tally_log (event_id UUID NOT NULL, global_position BIGINT NOT NULL);",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Appends `n` events over 5 streams (`by` = 1..=n), one transaction per event.
async fn append_events(pool: &PgPool, n: i64) {
    for i in 1..=n {
        let mut tx = pool.begin().await.unwrap();
        store::append(
            &mut tx,
            &[StreamAppend {
                stream_id: format!("tally-{}", i % 5),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent::from_domain(
                    &TallyEvent::Counted { by: i },
                    &EventMetadata::default(),
                )],
            }],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

async fn read_model(pool: &PgPool) -> Vec<(String, i64, i32)> {
    sqlx::query_as("SELECT stream_id, total, applied FROM tally ORDER BY stream_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// (rows in the log table, distinct events among them)
async fn applications(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM tally_log")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn checkpoint_position(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT global_position FROM projection_checkpoints WHERE name = 'test_tally'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn position_of_nth_event(pool: &PgPool, n: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT global_position FROM events ORDER BY global_position OFFSET $1 LIMIT 1",
    )
    .bind(n - 1)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits (bounded) until `tally_log` holds `n` rows.
async fn wait_for_applications(pool: &PgPool, n: i64) {
    let caught_up = async {
        while applications(pool).await.0 < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), caught_up)
        .await
        .unwrap_or_else(|_| panic!("the runner never applied {n} events"));
}

/// One batch that applies something. The xid8 reader is held back by any older transaction in
/// the whole cluster (other test databases included), so an empty batch is retried (bounded).
async fn step_some(
    pool: &PgPool,
    projection: &TallyProjection,
    batch: i64,
) -> Result<Step, ProjectionError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match step(pool, projection, batch).await? {
            Step::Applied(0) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => return Ok(other),
        }
    }
}

/// Waits (bounded) until the xid8 reader can see all `n` events: until then an older transaction
/// anywhere in the cluster holds some back, and a batch would come out short. Once seen they stay
/// visible, since `pg_snapshot_xmin` only moves forward.
async fn wait_until_readable(pool: &PgPool, n: i64) {
    let readable = async {
        loop {
            let seen: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events
                 WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if seen >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), readable)
        .await
        .unwrap_or_else(|_| panic!("the reader never saw {n} events"));
}

/// Runs the projection until it applied `want` more events (bounded); returns how many it did.
async fn catch_up(pool: &PgPool, projection: &TallyProjection, want: i64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut done = 0u64;
    while (done as i64) < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "caught up {done} of {want}"
        );
        done += run_until_caught_up(pool, projection, 100).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_batch_failing_mid_way_moves_nothing_and_a_restart_resumes_exactly_once(pool: PgPool) {
    create_tables(&pool).await;
    append_events(&pool, 50).await;
    let projection = Arc::new(TallyProjection::default());

    // The 30th event fails; with batches of 20 the failing batch has already written 21..29.
    // (Batches can come out shorter while another transaction in the cluster holds the reader
    // back, so step until the failure rather than counting on exact batch boundaries.)
    let failing = position_of_nth_event(&pool, 30).await;
    *projection.fail_at_position.lock().unwrap() = Some(failing);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let err = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failure never fired"
        );
        match step(&pool, projection.as_ref(), 20).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(err) => break err,
        }
    };
    assert!(err.to_string().contains("injected failure"), "{err}");
    let checkpoint = checkpoint_position(&pool).await;
    assert!(
        checkpoint < failing,
        "checkpoint moved past the failed event"
    );
    let applied_up_to_checkpoint: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position <= $1")
            .bind(checkpoint)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(applied_up_to_checkpoint >= 10, "{applied_up_to_checkpoint}");
    assert_eq!(
        applications(&pool).await,
        (applied_up_to_checkpoint, applied_up_to_checkpoint),
        "the failed batch leaked rows past the checkpoint"
    );

    // Restart: the real runner (LISTEN/NOTIFY wake-up) picks up from the checkpoint.
    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await.unwrap();
    let config = RunnerConfig {
        batch_size: 7,
        poll_interval: Duration::from_millis(50),
        error_backoff: Duration::from_millis(50),
        max_error_backoff: Duration::from_millis(200),
        skip_after_failures: 5,
    };
    let handles =
        Runner::new(pool.clone(), vec![projection.clone()], config).spawn(wakeup, shutdown.clone());
    wait_for_applications(&pool, 50).await;
    // More events while it runs are applied too, once each.
    append_events(&pool, 10).await;
    wait_for_applications(&pool, 60).await;
    shutdown.cancel();
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("runner stops on shutdown")
            .unwrap();
    }
    assert_eq!(
        applications(&pool).await,
        (60, 60),
        "lost or doubled events"
    );
    let live = read_model(&pool).await;
    let total: i64 = live.iter().map(|r| r.1).sum();
    assert_eq!(total, (1..=50).sum::<i64>() + (1..=10).sum::<i64>());
    assert_eq!(live.iter().map(|r| r.2).sum::<i32>(), 60);

    // A rebuild from the log alone gives the same read model. (A rebuild stops where an older
    // transaction anywhere in the cluster holds the reader back; the runner goes on from there.)
    let replayed = rebuild(&pool, projection.as_ref(), None, 13, |_| {})
        .await
        .unwrap();
    let caught_up = catch_up(&pool, &projection, 60 - replayed as i64).await;
    assert_eq!(replayed + caught_up, 60);
    assert_eq!(read_model(&pool).await, live);
    assert_eq!(applications(&pool).await, (60, 60));
    // The rebuild left the checkpoint at the end: nothing is applied twice afterwards.
    assert_eq!(
        run_until_caught_up(&pool, projection.as_ref(), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(read_model(&pool).await, live);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_second_worker_skips_a_projection_held_by_the_first(pool: PgPool) {
    create_tables(&pool).await;
    append_events(&pool, 30).await;
    // Both batches below must be full for the test to say which worker took which events.
    wait_until_readable(&pool, 30).await;
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let projection = Arc::new(TallyProjection {
        hold_first_batch: Mutex::new(Some((entered.clone(), release.clone()))),
        ..Default::default()
    });

    let first = tokio::spawn({
        let (pool, projection) = (pool.clone(), projection.clone());
        async move { step_some(&pool, &projection, 10).await.unwrap() }
    });
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("first worker never started its batch");

    // While the first worker holds the batch, the second one skips at once.
    let second = tokio::time::timeout(Duration::from_secs(5), step(&pool, projection.as_ref(), 10))
        .await
        .expect("the second worker waited instead of skipping")
        .unwrap();
    assert_eq!(second, Step::HeldElsewhere);

    release.notify_one();
    assert_eq!(first.await.unwrap(), Step::Applied(10));
    // Now the second worker takes the next batch, not the same one.
    assert_eq!(
        step_some(&pool, &projection, 10).await.unwrap(),
        Step::Applied(10)
    );
    let logged: Vec<i64> = sqlx::query_scalar("SELECT global_position FROM tally_log ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    let expected: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM events ORDER BY 1 LIMIT 20")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(logged, expected);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn concurrent_workers_apply_every_event_exactly_once(pool: PgPool) {
    create_tables(&pool).await;
    append_events(&pool, 200).await;
    let projection = Arc::new(TallyProjection::default());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (pool, projection) = (pool.clone(), projection.clone());
            tokio::spawn(async move {
                let mut mine = 0u64;
                while applications(&pool).await.0 < 200 {
                    mine += run_until_caught_up(&pool, projection.as_ref(), 9).await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok::<u64, ProjectionError>(mine)
            })
        })
        .collect();
    let mut applied_by_workers = 0;
    for worker in workers {
        applied_by_workers += tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("worker finished")
            .unwrap()
            .unwrap();
    }
    assert_eq!(applied_by_workers, 200, "batches applied twice or lost");
    assert_eq!(applications(&pool).await, (200, 200));
}

/// Readers are woken after an append commits (no trigger inside the append): a listener hears
/// `fleet_events`, and by then the event is readable.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_committed_command_wakes_listeners_after_its_commit(pool: PgPool) {
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener
        .listen(fleetstream_events::notify::CHANNEL)
        .await
        .unwrap();
    let store = fleetstream::es::EventStore::new(pool.clone(), Vec::new());
    let mut uow = store.begin(EventMetadata::default()).await.unwrap();
    uow.stage(
        "tally-woken",
        ExpectedVersion::NoStream,
        &[TallyEvent::Counted { by: 5 }],
    );
    let stored = uow.commit::<()>().await.unwrap();

    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("no wake-up after the commit")
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let read = store::read_stream(&mut conn, "tally-woken", 1)
        .await
        .unwrap();
    assert_eq!(read, stored);
}

/// Fails on one event every time it is applied, while `poisoned` is set; logs the rest.
struct PoisonedProjection {
    poison_position: i64,
    poisoned: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Projection for PoisonedProjection {
    fn name(&self) -> &'static str {
        "test_poisoned"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["tally"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["poisoned_log"]
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            if event.global_position == self.poison_position
                && self.poisoned.load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(ProjectionError::Other("poisoned event".into()));
            }
            sqlx::query("INSERT INTO poisoned_log (global_position) VALUES ($1)")
                .bind(event.global_position)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_projection_failing_on_one_event_keeps_its_checkpoint_and_blocks_no_other(pool: PgPool) {
    create_tables(&pool).await;
    sqlx::query("CREATE TABLE poisoned_log (global_position BIGINT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    append_events(&pool, 30).await;
    let poison_position = position_of_nth_event(&pool, 12).await;
    let before_poison = position_of_nth_event(&pool, 11).await;
    let healthy = Arc::new(TallyProjection::default());
    let poisoned = Arc::new(PoisonedProjection {
        poison_position,
        poisoned: std::sync::atomic::AtomicBool::new(true),
    });
    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await.unwrap();
    let config = RunnerConfig {
        batch_size: 10,
        poll_interval: Duration::from_millis(50),
        error_backoff: Duration::from_millis(20),
        max_error_backoff: Duration::from_millis(100),
        // This test watches the retries; the next one watches the skip.
        skip_after_failures: u32::MAX,
    };
    let projections: Vec<Arc<dyn Projection>> = vec![poisoned.clone(), healthy.clone()];
    let handles = Runner::new(pool.clone(), projections, config).spawn(wakeup, shutdown.clone());

    // The healthy projection keeps up, events appended later included.
    wait_for_applications(&pool, 30).await;
    append_events(&pool, 5).await;
    wait_for_applications(&pool, 35).await;

    // The poisoned one applied every event before the poison (one by one after the failed
    // batch), stopped right before it, and says where and why.
    let status = async {
        loop {
            let s = fleetstream_projections::status(
                &mut pool.acquire().await.unwrap(),
                "test_poisoned",
                Some(&["tally".to_owned()]),
            )
            .await
            .unwrap();
            if s.failures >= 2 && s.position == before_poison {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let s = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("the poisoned projection never settled before its poison");
    let error = s.last_error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("at position {poison_position}"))
            && error.contains("poisoned event"),
        "{error}"
    );
    assert!(s.failing_since.is_some());
    assert_eq!(s.lag_events, 35 - 11);
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM poisoned_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 11);

    // Once the event can be applied, it catches up and the error is gone.
    poisoned
        .poisoned
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let recovered = async {
        loop {
            let s = fleetstream_projections::status(
                &mut pool.acquire().await.unwrap(),
                "test_poisoned",
                Some(&["tally".to_owned()]),
            )
            .await
            .unwrap();
            if s.lag_events == 0 && s.last_error.is_none() && s.failures == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), recovered)
        .await
        .expect("the projection never recovered");
    shutdown.cancel();
    for handle in handles {
        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
    }
    assert_eq!(applications(&pool).await, (35, 35));
}

/// An event that fails every time stops nothing: after `skip_after_failures` tries the runner
/// records it in `projection_skipped`, moves past it and applies the rest; health lists it
/// until a rebuild, which applies it again.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_event_that_always_fails_is_skipped_recorded_and_replayed_by_a_rebuild(pool: PgPool) {
    create_tables(&pool).await;
    sqlx::query("CREATE TABLE poisoned_log (global_position BIGINT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    append_events(&pool, 20).await;
    let poison_position = position_of_nth_event(&pool, 7).await;
    let poisoned = Arc::new(PoisonedProjection {
        poison_position,
        poisoned: std::sync::atomic::AtomicBool::new(true),
    });
    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await.unwrap();
    let config = RunnerConfig {
        batch_size: 10,
        poll_interval: Duration::from_millis(50),
        error_backoff: Duration::from_millis(10),
        max_error_backoff: Duration::from_millis(40),
        skip_after_failures: 3,
    };
    let projections: Vec<Arc<dyn Projection>> = vec![poisoned.clone()];
    let handles = Runner::new(pool.clone(), projections, config).spawn(wakeup, shutdown.clone());
    append_events(&pool, 5).await;

    let status = || async {
        fleetstream_projections::status(
            &mut pool.acquire().await.unwrap(),
            "test_poisoned",
            Some(&["tally".to_owned()]),
        )
        .await
        .unwrap()
    };
    let settled = async {
        loop {
            let s = status().await;
            if s.lag_events == 0 && s.skipped_events == 1 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let s = tokio::time::timeout(Duration::from_secs(20), settled)
        .await
        .expect("the runner never stepped past the poisoned event");
    assert_eq!(s.first_skipped, Some(poison_position));
    assert_eq!(
        s.last_error, None,
        "the reader is healthy again past the event"
    );
    let logged: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM poisoned_log ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(logged.len(), 24, "every event but the poisoned one");
    assert!(!logged.contains(&poison_position));
    let (error, event_type): (String, String) = sqlx::query_as(
        "SELECT error, event_type FROM projection_skipped WHERE projection = 'test_poisoned'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(error.contains("poisoned event"), "{error}");
    assert!(!event_type.is_empty());
    shutdown.cancel();
    for handle in handles {
        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
    }

    // Fixed, the rebuild replays it and the record is gone.
    poisoned
        .poisoned
        .store(false, std::sync::atomic::Ordering::SeqCst);
    fleetstream_projections::rebuild(&pool, poisoned.as_ref(), None, 100, |_| {})
        .await
        .unwrap();
    let s = status().await;
    assert_eq!((s.skipped_events, s.first_skipped), (0, None));
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM poisoned_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 25);
}
