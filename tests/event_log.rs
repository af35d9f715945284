//! The event log against a real Postgres: the never-skipping reader under out-of-order commits,
//! optimistic concurrency (raw appends and the command runner), all-or-nothing multi-stream
//! appends and idempotent re-appends.

use fleetstream::es::{Aggregate, CommandError, EventStore};
use fleetstream_events::store::{
    self, AppendError, Checkpoint, ExpectedVersion, NewEvent, StreamAppend,
};
use fleetstream_events::{DomainEvent, EventMetadata, StoredEvent};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum CounterEvent {
    Incremented { by: i64 },
}
fleetstream_events::domain_event!(CounterEvent, "counter", [Incremented]);

#[derive(Debug, Default, Clone)]
struct Counter {
    total: i64,
    increments: u32,
}

impl Aggregate for Counter {
    type Event = CounterEvent;
    fn evolve(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Incremented { by } => {
                self.total += by;
                self.increments += 1;
            }
        }
    }
}

fn increment(by: i64) -> NewEvent {
    NewEvent::from_domain(&CounterEvent::Incremented { by }, &EventMetadata::default())
}

fn one(stream_id: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> Vec<StreamAppend> {
    vec![StreamAppend {
        stream_id: stream_id.to_owned(),
        expected,
        events,
    }]
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits (bounded) until a session of this database waits for a lock: the second writer is
/// then provably queued behind the first — on the stream's advisory lock (`append_events`) or
/// on the first writer's transaction, whose row holds the version it wants (`append_alone`).
async fn wait_for_lock_waiter(pool: &PgPool) {
    let waiting = async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks l
                 JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype IN ('advisory', 'transactionid') AND NOT l.granted
                   AND a.datname = current_database()",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if n > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the second writer never queued on the stream lock");
}

/// The two readers: the whole log (the NATS relay) and some categories (projections), which
/// reads one index scan per category and merges them.
#[derive(Clone, Copy, Debug)]
enum Reader {
    Everything,
    Categories,
}

impl Reader {
    async fn read(self, conn: &mut PgConnection, at: Checkpoint, limit: i64) -> Vec<StoredEvent> {
        let categories = ["counter".to_owned(), "other".to_owned()];
        let categories = match self {
            Reader::Everything => None,
            Reader::Categories => Some(&categories[..]),
        };
        store::read_all(conn, at, limit, categories).await.unwrap()
    }
}

/// Reads from `at` until `want` events arrived (bounded: another session of the cluster may
/// briefly hold the snapshot horizon back). Returns the events and the new checkpoint.
async fn read_until(
    reader: Reader,
    conn: &mut PgConnection,
    mut at: Checkpoint,
    want: usize,
) -> (Vec<StoredEvent>, Checkpoint) {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < want {
        let batch = reader.read(conn, at, 100).await;
        if let Some(last) = batch.last() {
            at = Checkpoint::after(last);
        }
        got.extend(batch);
        assert!(
            tokio::time::Instant::now() < deadline,
            "reader saw {} of {want} events",
            got.len()
        );
        if got.len() < want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (got, at)
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn reader_holds_back_a_later_commit_until_the_earlier_position_commits(pool: PgPool) {
    holds_back_a_later_commit(pool, Reader::Everything).await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn category_reader_holds_back_a_later_commit_until_the_earlier_position_commits(
    pool: PgPool,
) {
    holds_back_a_later_commit(pool, Reader::Categories).await;
}

async fn holds_back_a_later_commit(pool: PgPool, reader_kind: Reader) {
    let a_appended = Arc::new(Notify::new());
    let b_committed = Arc::new(Notify::new());
    let a_may_commit = Arc::new(Notify::new());

    // Writer A: takes position p, then stays open until told to commit.
    let writer_a = tokio::spawn({
        let (pool, a_appended, a_may_commit) =
            (pool.clone(), a_appended.clone(), a_may_commit.clone());
        async move {
            let mut tx = pool.begin().await.unwrap();
            let stored = store::append(
                &mut tx,
                &one("counter-a", ExpectedVersion::NoStream, vec![increment(1)]),
            )
            .await
            .unwrap();
            a_appended.notify_one();
            a_may_commit.notified().await;
            tx.commit().await.unwrap();
            stored[0].global_position
        }
    });
    a_appended.notified().await;

    // Writer B: takes p+1 and commits while A is still open.
    let writer_b = tokio::spawn({
        let (pool, b_committed) = (pool.clone(), b_committed.clone());
        async move {
            let mut tx = pool.begin().await.unwrap();
            let stored = store::append(
                &mut tx,
                &one("counter-b", ExpectedVersion::NoStream, vec![increment(2)]),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            b_committed.notify_one();
            stored[0].global_position
        }
    });
    b_committed.notified().await;
    let p_b = writer_b.await.unwrap();

    let mut reader = pool.acquire().await.unwrap();
    let early = reader_kind
        .read(&mut reader, Checkpoint::default(), 100)
        .await;
    assert!(
        early.is_empty(),
        "B was delivered while A (an earlier position) could still commit: {early:?}"
    );

    a_may_commit.notify_one();
    let p_a = writer_a.await.unwrap();
    assert_eq!(p_b, p_a + 1, "A took position p, B took p+1");

    let (delivered, at) = read_until(reader_kind, &mut reader, Checkpoint::default(), 2).await;
    let positions: Vec<i64> = delivered.iter().map(|e| e.global_position).collect();
    assert_eq!(
        positions,
        vec![p_a, p_b],
        "both delivered, A first, once each"
    );
    let rest = reader_kind.read(&mut reader, at, 100).await;
    assert!(rest.is_empty(), "nothing delivered twice: {rest:?}");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn reader_never_skips_an_earlier_position_from_a_younger_transaction(pool: PgPool) {
    never_skips_an_earlier_position(pool, Reader::Everything).await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn category_reader_never_skips_an_earlier_position_from_a_younger_transaction(pool: PgPool) {
    never_skips_an_earlier_position(pool, Reader::Categories).await;
}

async fn never_skips_an_earlier_position(pool: PgPool, reader_kind: Reader) {
    // B takes its transaction id first, A then takes the lower position; B commits, the reader
    // checkpoints past B, then A commits: A must still be delivered (xid order, not position).
    let mut b = pool.begin().await.unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *b)
        .await
        .unwrap();
    let mut a = pool.begin().await.unwrap();
    let stored_a = store::append(
        &mut a,
        &one("counter-a", ExpectedVersion::NoStream, vec![increment(1)]),
    )
    .await
    .unwrap();
    let stored_b = store::append(
        &mut b,
        &one("counter-b", ExpectedVersion::NoStream, vec![increment(2)]),
    )
    .await
    .unwrap();
    assert!(stored_a[0].global_position < stored_b[0].global_position);
    b.commit().await.unwrap();

    let mut reader = pool.acquire().await.unwrap();
    let (first, at) = read_until(reader_kind, &mut reader, Checkpoint::default(), 1).await;
    assert_eq!(first[0].event_id, stored_b[0].event_id);

    a.commit().await.unwrap();
    let (second, at) = read_until(reader_kind, &mut reader, at, 1).await;
    assert_eq!(second[0].event_id, stored_a[0].event_id, "A was skipped");
    assert!(reader_kind.read(&mut reader, at, 100).await.is_empty());
}

/// Several transactions interleave three categories; reading two of them in batches of 3 gives
/// exactly the whole log's order with the third left out (the per-category scans merge by
/// (xid, position), and a batch boundary inside one transaction loses nothing).
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn category_reader_pages_through_merged_categories_in_log_order(pool: PgPool) {
    for round in 0..4i64 {
        let mut tx = pool.begin().await.unwrap();
        let appends = ["counter", "skipped", "other"]
            .iter()
            .enumerate()
            .map(|(n, category)| StreamAppend {
                stream_id: format!("{category}-{round}"),
                expected: ExpectedVersion::NoStream,
                events: (0..=(round + n as i64) % 3).map(increment).collect(),
            })
            .collect::<Vec<_>>();
        store::append(&mut tx, &appends).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let (everything, _) =
        read_until(Reader::Everything, &mut conn, Checkpoint::default(), 24).await;
    let expected: Vec<i64> = everything
        .iter()
        .filter(|e| e.category() != "skipped")
        .map(|e| e.global_position)
        .collect();
    assert_eq!(expected.len(), 16);

    let mut paged = Vec::new();
    let mut at = Checkpoint::default();
    loop {
        let batch = Reader::Categories.read(&mut conn, at, 3).await;
        let Some(last) = batch.last() else { break };
        assert!(batch.len() <= 3);
        at = Checkpoint::after(last);
        paged.extend(batch.iter().map(|e| e.global_position));
    }
    assert_eq!(paged, expected);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn two_writers_at_the_same_expected_version_exactly_one_wins(pool: PgPool) {
    let mut setup = pool.begin().await.unwrap();
    store::append(
        &mut setup,
        &one("counter-1", ExpectedVersion::NoStream, vec![increment(1)]),
    )
    .await
    .unwrap();
    setup.commit().await.unwrap();

    let mut first = pool.begin().await.unwrap();
    store::append(
        &mut first,
        &one("counter-1", ExpectedVersion::Exact(1), vec![increment(10)]),
    )
    .await
    .unwrap();
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            store::append(
                &mut tx,
                &one("counter-1", ExpectedVersion::Exact(1), vec![increment(20)]),
            )
            .await
        }
    });
    wait_for_lock_waiter(&pool).await;
    first.commit().await.unwrap();

    match second.await.unwrap() {
        Err(AppendError::Conflict {
            stream_id,
            expected,
            actual,
        }) => {
            assert_eq!(stream_id, "counter-1");
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(actual, 2);
        }
        other => panic!("the second writer must get a conflict, got {other:?}"),
    }
    let mut conn = pool.acquire().await.unwrap();
    let stream = store::read_stream(&mut conn, "counter-1", 1).await.unwrap();
    assert_eq!(stream.len(), 2);
    assert_eq!(stream[1].data, serde_json::json!({"by": 10}));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_command_that_loses_the_race_is_decided_again_against_fresh_state(pool: PgPool) {
    let store_ = EventStore::new(pool.clone(), Vec::new());
    store_
        .execute::<Counter, ()>(7, EventMetadata::default(), |_| {
            Ok(vec![CounterEvent::Incremented { by: 1 }])
        })
        .await
        .unwrap();

    // A competitor has appended at version 1 and holds the stream until it commits.
    let mut competitor = pool.begin().await.unwrap();
    store::append(
        &mut competitor,
        &one(
            &CounterEvent::stream_id(7),
            ExpectedVersion::Exact(1),
            vec![increment(100)],
        ),
    )
    .await
    .unwrap();

    let seen_totals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let attempts = Arc::new(AtomicUsize::new(0));
    let command = tokio::spawn({
        let (store_, seen_totals, attempts) =
            (store_.clone(), seen_totals.clone(), attempts.clone());
        async move {
            store_
                .execute::<Counter, ()>(7, EventMetadata::default(), move |state| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    seen_totals.lock().unwrap().push(state.total);
                    Ok(vec![CounterEvent::Incremented { by: 5 }])
                })
                .await
        }
    });
    wait_for_lock_waiter(&pool).await;
    competitor.commit().await.unwrap();

    let (state, stored) = command.await.unwrap().unwrap();
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one conflict, one retry"
    );
    assert_eq!(
        *seen_totals.lock().unwrap(),
        vec![1, 101],
        "the retry saw the competitor"
    );
    assert_eq!(state.total, 106);
    assert_eq!(state.increments, 3);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].stream_version, 3);
    assert_eq!(event_count(&pool).await, 3);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_command_gives_up_with_a_conflict_after_bounded_retries(pool: PgPool) {
    let store_ = EventStore::new(pool.clone(), Vec::new());
    let attempts = AtomicUsize::new(0);
    // Every attempt sees a competitor appear between its load and its append.
    let options = (*pool.connect_options()).clone();
    let err = store_
        .execute::<Counter, ()>(9, EventMetadata::default(), |state| {
            attempts.fetch_add(1, Ordering::SeqCst);
            let version = i64::from(state.increments);
            let options = options.clone();
            // The decision is synchronous: the competitor runs on its own thread and connection.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        use sqlx::Connection;
                        let mut conn = PgConnection::connect_with(&options).await.unwrap();
                        let mut tx = conn.begin().await.unwrap();
                        store::append(
                            &mut tx,
                            &one(
                                &CounterEvent::stream_id(9),
                                ExpectedVersion::from_loaded(version),
                                vec![increment(1)],
                            ),
                        )
                        .await
                        .unwrap();
                        tx.commit().await.unwrap();
                    })
            })
            .join()
            .unwrap();
            Ok(vec![CounterEvent::Incremented { by: 1 }])
        })
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Conflict(_)), "{err:?}");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        fleetstream::es::MAX_CONFLICT_RETRIES + 1
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_multi_stream_append_with_one_conflict_writes_nothing(pool: PgPool) {
    let mut setup = pool.begin().await.unwrap();
    store::append(
        &mut setup,
        &one("counter-b", ExpectedVersion::NoStream, vec![increment(1)]),
    )
    .await
    .unwrap();
    setup.commit().await.unwrap();

    // Raw append: stream a is fine, stream b is at 1 not 0.
    let mut tx = pool.begin().await.unwrap();
    let err = store::append(
        &mut tx,
        &[
            StreamAppend {
                stream_id: "counter-a".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![increment(1), increment(2)],
            },
            StreamAppend {
                stream_id: "counter-b".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![increment(3)],
            },
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AppendError::Conflict { stream_id, .. } if stream_id == "counter-b"),
        "{err:?}"
    );
    tx.rollback().await.unwrap();
    assert_eq!(event_count(&pool).await, 1);

    // Through a unit of work: all or nothing as well.
    let store_ = EventStore::new(pool.clone(), Vec::new());
    let mut uow = store_.begin(EventMetadata::default()).await.unwrap();
    uow.stage(
        "counter-a",
        ExpectedVersion::NoStream,
        &[CounterEvent::Incremented { by: 1 }],
    );
    uow.stage(
        "counter-b",
        ExpectedVersion::Exact(5),
        &[CounterEvent::Incremented { by: 1 }],
    );
    let err = uow.commit::<()>().await.unwrap_err();
    assert!(
        matches!(err, CommandError::Conflict(ref s) if s == "counter-b"),
        "{err:?}"
    );
    assert_eq!(event_count(&pool).await, 1);
    let mut conn = pool.acquire().await.unwrap();
    assert!(store::read_stream(&mut conn, "counter-a", 1)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn re_appending_stored_event_ids_succeeds_and_writes_nothing(pool: PgPool) {
    let ids = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let batch = |expected_a, expected_b| {
        let mut a0 = increment(1);
        a0.event_id = ids[0];
        let mut a1 = increment(2);
        a1.event_id = ids[1];
        let mut b0 = increment(3);
        b0.event_id = ids[2];
        vec![
            StreamAppend {
                stream_id: "counter-a".into(),
                expected: expected_a,
                events: vec![a0, a1],
            },
            StreamAppend {
                stream_id: "counter-b".into(),
                expected: expected_b,
                events: vec![b0],
            },
        ]
    };

    let mut tx = pool.begin().await.unwrap();
    let first = store::append(
        &mut tx,
        &batch(ExpectedVersion::NoStream, ExpectedVersion::NoStream),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(first.len(), 3);

    // The retry carries the same ids and either the (now stale) expectations of the first
    // attempt or none: both report success and write nothing.
    let stale = (ExpectedVersion::NoStream, ExpectedVersion::NoStream);
    let unchecked = (ExpectedVersion::Any, ExpectedVersion::Any);
    for (expected_a, expected_b) in [stale, stale, unchecked] {
        let mut tx = pool.begin().await.unwrap();
        let again = store::append(&mut tx, &batch(expected_a, expected_b))
            .await
            .expect("an idempotent retry reports success");
        tx.commit().await.unwrap();
        assert!(again.is_empty(), "nothing new stored: {again:?}");
    }
    assert_eq!(event_count(&pool).await, 3);

    // Part of an append already stored is not a retry; it is refused whole.
    let mut tx = pool.begin().await.unwrap();
    let mut mixed = batch(ExpectedVersion::Any, ExpectedVersion::Any);
    mixed[0].events.push(increment(9));
    let err = store::append(&mut tx, &mixed).await.unwrap_err();
    assert!(matches!(err, AppendError::PartialDuplicate(_)), "{err:?}");
    drop(tx);
    // The same when the stored ids follow a new one (the insert itself finds them).
    let mut tx = pool.begin().await.unwrap();
    let mut mixed = batch(ExpectedVersion::Any, ExpectedVersion::Any);
    mixed[0].events.insert(0, increment(9));
    let err = store::append(&mut tx, &mixed).await.unwrap_err();
    assert!(
        matches!(&err, AppendError::PartialDuplicate(stream) if stream == &mixed[0].stream_id),
        "{err:?}"
    );
    drop(tx);
    assert_eq!(event_count(&pool).await, 3);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn streams_read_back_in_version_order_from_any_version(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    store::append(
        &mut tx,
        &one(
            "counter-s",
            ExpectedVersion::Any,
            vec![increment(1), increment(2), increment(3)],
        ),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let from_two = store::read_stream(&mut conn, "counter-s", 2).await.unwrap();
    let versions: Vec<i64> = from_two.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![2, 3]);
    assert_eq!(from_two[0].data, serde_json::json!({"by": 2}));
    assert_eq!(from_two[0].category(), "counter");
    let decoded = from_two[0].decode::<CounterEvent>().unwrap().unwrap();
    assert_eq!(decoded, CounterEvent::Incremented { by: 2 });
}

/// A group commit gathers several commands of one stream into one append: each entry continues
/// from the previous one's version, and an entry already stored is skipped on its own.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn one_append_may_name_a_stream_in_several_entries(pool: PgPool) {
    let entry = |events: Vec<NewEvent>| StreamAppend {
        stream_id: "counter-9".into(),
        expected: ExpectedVersion::Any,
        events,
    };
    let first = vec![increment(1), increment(2)];
    let mut tx = pool.begin().await.unwrap();
    let stored = store::append(
        &mut tx,
        &[
            entry(first.clone()),
            entry(vec![increment(3)]),
            entry(vec![increment(4), increment(5)]),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let versions: Vec<i64> = stored.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);

    // A redelivered entry (all its ids stored) beside a new one of the same stream.
    let mut tx = pool.begin().await.unwrap();
    let stored = store::append(&mut tx, &[entry(first), entry(vec![increment(6)])])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let versions: Vec<i64> = stored.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![6]);
    assert_eq!(event_count(&pool).await, 6);
}
