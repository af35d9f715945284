//! Group commit (fleetstream_events::group, migration 0700): commands that share one statement
//! and one commit fail alone — a version conflict, a unique violation, a domain error, a panic
//! in decide — and their neighbours commit.

use fleetstream::es::{Aggregate, CommandError, EventStore};
use fleetstream_events::group::GroupAppender;
use fleetstream_events::group_load::GroupLoader;
use fleetstream_events::store::{self, AppendError, ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{DomainEvent, EventMetadata};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TallyEvent {
    Added { by: i64 },
}
fleetstream_events::domain_event!(TallyEvent, "tally", [Added]);

#[derive(Debug, Default, Clone)]
struct Tally {
    total: i64,
}

impl Aggregate for Tally {
    type Event = TallyEvent;
    fn evolve(&mut self, event: &TallyEvent) {
        let TallyEvent::Added { by } = event;
        self.total += by;
    }
}

fn added(by: i64) -> NewEvent {
    NewEvent::from_domain(&TallyEvent::Added { by }, &EventMetadata::default())
}

fn append(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamAppend {
    StreamAppend {
        stream_id: stream.to_owned(),
        expected,
        events,
    }
}

async fn versions(pool: &PgPool, stream: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY stream_version",
    )
    .bind(stream)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_refused_command_in_a_group_fails_alone_and_its_neighbours_commit(pool: PgPool) {
    // tally-taken is at version 2; tally-dup holds one event whose id a command reuses.
    let mut conn = pool.acquire().await.unwrap();
    store::append(
        &mut conn,
        &[append(
            "tally-taken",
            ExpectedVersion::NoStream,
            vec![added(1), added(1)],
        )],
    )
    .await
    .unwrap();
    let stored_id = added(5);
    store::append(
        &mut conn,
        &[append(
            "tally-dup",
            ExpectedVersion::NoStream,
            vec![stored_id.clone()],
        )],
    )
    .await
    .unwrap();
    drop(conn);

    let group = GroupAppender::new(pool.clone());
    let replies = group
        .append_batch(vec![
            append("tally-a", ExpectedVersion::NoStream, vec![added(1)]),
            // a version conflict: loaded at 1, the stream is at 2
            append("tally-taken", ExpectedVersion::Exact(1), vec![added(7)]),
            append(
                "tally-b",
                ExpectedVersion::NoStream,
                vec![added(2), added(3)],
            ),
            // a unique violation: a new stream whose second event's id is stored already
            append(
                "tally-other",
                ExpectedVersion::NoStream,
                vec![added(9), stored_id],
            ),
            append("tally-c", ExpectedVersion::NoStream, vec![added(4)]),
        ])
        .await;
    assert_eq!(replies.len(), 5);
    assert!(
        matches!(&replies[1], Err(AppendError::Conflict { stream_id, actual: 2, .. }) if stream_id == "tally-taken"),
        "{:?}",
        replies[1]
    );
    assert!(
        matches!(&replies[3], Err(AppendError::PartialDuplicate(s)) if s == "tally-other"),
        "{:?}",
        replies[3]
    );
    let written: Vec<_> = [0, 2, 4]
        .iter()
        .map(|&i| replies[i].as_ref().expect("a neighbour is written"))
        .collect();
    // The neighbours shared one transaction (one commit), with gapless versions from 1.
    let xids: Vec<i64> = written
        .iter()
        .flat_map(|s| s.iter().map(|e| e.transaction_id))
        .collect();
    assert!(xids.iter().all(|x| *x == xids[0] && *x > 0), "{xids:?}");
    assert_eq!(versions(&pool, "tally-a").await, [1]);
    assert_eq!(versions(&pool, "tally-b").await, [1, 2]);
    assert_eq!(versions(&pool, "tally-c").await, [1]);
    assert_eq!(versions(&pool, "tally-taken").await, [1, 2]);
    assert_eq!(versions(&pool, "tally-other").await, Vec::<i64>::new());
    // What the replies say was stored is what the log holds.
    let b: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT global_position, transaction_id::text::bigint FROM events \
         WHERE stream_id = 'tally-b' ORDER BY stream_version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let replied: Vec<(i64, i64)> = written[1]
        .iter()
        .map(|e| (e.global_position, e.transaction_id))
        .collect();
    assert_eq!(b, replied);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_retried_group_entry_whose_ids_are_stored_is_a_no_op(pool: PgPool) {
    let group = GroupAppender::new(pool.clone());
    let events = vec![added(1), added(2)];
    let first = group
        .append_batch(vec![
            append("tally-r", ExpectedVersion::NoStream, events.clone()),
            append("tally-s", ExpectedVersion::NoStream, vec![added(1)]),
        ])
        .await;
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    let again = group
        .append_batch(vec![
            append("tally-r", ExpectedVersion::NoStream, events),
            append("tally-t", ExpectedVersion::NoStream, vec![added(1)]),
        ])
        .await;
    assert_eq!(again[0].as_ref().unwrap().len(), 0, "nothing written twice");
    assert_eq!(again[1].as_ref().unwrap().len(), 1);
    assert_eq!(versions(&pool, "tally-r").await, [1, 2]);
}

/// Commands through `EventStore::execute` at once (gathered into groups by the appender): a
/// domain error and a panic in decide stay in their own task, a lost race is decided again,
/// and every other command commits.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn concurrent_commands_fail_alone(pool: PgPool) {
    let store_ = EventStore::new(pool.clone(), Vec::new());
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let store_ = store_.clone();
        tasks.push(tokio::spawn(async move {
            // Every tenth command races three others for one shared stream.
            let id = if i % 10 == 0 {
                "shared".to_owned()
            } else {
                i.to_string()
            };
            store_
                .execute::<Tally, &'static str>(id, EventMetadata::default(), move |_| match i {
                    13 => Err("refused"),
                    21 => panic!("decide panicked"),
                    _ => Ok(vec![TallyEvent::Added { by: i }]),
                })
                .await
        }));
    }
    let mut ok = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match (i, task.await) {
            (13, Ok(Err(CommandError::Domain("refused")))) => {}
            (21, Err(join)) => assert!(join.is_panic()),
            (_, Ok(Ok(_))) => ok += 1,
            (i, other) => panic!("command {i}: {other:?}"),
        }
    }
    assert_eq!(ok, 38);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE category = 'tally'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 38);
    // The four commands on the shared stream all landed, versions gapless.
    assert_eq!(
        versions(&pool, &TallyEvent::stream_id("shared")).await,
        [1, 2, 3, 4]
    );
}

/// One statement loads several commands' streams (fleetstream_events::group_load): each gets
/// its own stream's events after its own version, in order; an unknown stream gets none.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_group_load_gives_each_command_its_own_stream(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    store::append(
        &mut conn,
        &[
            append(
                "tally-l1",
                ExpectedVersion::NoStream,
                vec![added(1), added(2), added(3)],
            ),
            append("tally-l2", ExpectedVersion::NoStream, vec![added(4)]),
        ],
    )
    .await
    .unwrap();
    drop(conn);
    let loader = GroupLoader::new(pool.clone());
    let replies = loader
        .load_batch(vec![
            ("tally-l2".into(), 0),
            ("tally-none".into(), 0),
            ("tally-l1".into(), 1),
            ("tally-l1".into(), 0),
            ("tally-l1".into(), 3),
        ])
        .await;
    let versions: Vec<Vec<i64>> = replies
        .into_iter()
        .map(|rows| rows.unwrap().into_iter().map(|(v, ..)| v).collect())
        .collect();
    assert_eq!(
        versions,
        vec![vec![1], vec![], vec![2, 3], vec![1, 2, 3], vec![]]
    );
    let rows = loader.load_after("tally-l1", 2).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3, serde_json::json!({ "by": 3 }));
}

/// A store remembers the states it folded (`StateCache`), yet decides on what the log holds:
/// events another writer (here another store: another process) appended since are folded in
/// first, and never lost to a stale state.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_remembered_state_folds_what_another_writer_appended_since(pool: PgPool) {
    let ours = EventStore::new(pool.clone(), Vec::new());
    let theirs = EventStore::new(pool.clone(), Vec::new());
    let add = |by: i64| move |_: &Tally| Ok::<_, &str>(vec![TallyEvent::Added { by }]);
    let (state, _) = ours
        .execute::<Tally, _>("x", EventMetadata::default(), add(1))
        .await
        .unwrap();
    assert_eq!(state.total, 1);
    theirs
        .execute::<Tally, _>("x", EventMetadata::default(), add(10))
        .await
        .unwrap();
    // Double whatever the total is: only right if the other writer's 10 is seen.
    let (state, stored) = ours
        .execute::<Tally, _>("x", EventMetadata::default(), |s: &Tally| {
            Ok::<_, &str>(vec![TallyEvent::Added { by: s.total }])
        })
        .await
        .unwrap();
    assert_eq!((state.total, stored[0].stream_version), (22, 3));
    // A refusal is decided on the current state too.
    let refused = ours
        .execute::<Tally, _>("x", EventMetadata::default(), |s: &Tally| {
            if s.total == 22 {
                Err("at 22")
            } else {
                Ok(vec![])
            }
        })
        .await;
    assert!(
        matches!(refused, Err(CommandError::Domain("at 22"))),
        "{refused:?}"
    );
    assert_eq!(
        versions(&pool, &TallyEvent::stream_id("x")).await,
        [1, 2, 3]
    );
}

/// A unit of work remembers the states it loaded only when it commits: one that read its own
/// uncommitted events and rolled back leaves nothing behind for the next command to build on.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_state_read_in_a_rolled_back_unit_of_work_is_not_remembered(pool: PgPool) {
    let store_ = EventStore::new(pool.clone(), Vec::new());
    let stream = TallyEvent::stream_id("y");
    let mut uow = store_.begin(EventMetadata::default()).await.unwrap();
    uow.stage(
        &stream,
        ExpectedVersion::NoStream,
        &[TallyEvent::Added { by: 5 }, TallyEvent::Added { by: 6 }],
    );
    let mut uow = uow.flush::<()>().await.unwrap();
    let (seen, version) = uow.load::<Tally>(&stream).await.unwrap();
    assert_eq!((seen.total, version), (11, 2));
    drop(uow);

    let (state, stored) = store_
        .execute::<Tally, &str>("y", EventMetadata::default(), |_| {
            Ok(vec![TallyEvent::Added { by: 1 }])
        })
        .await
        .unwrap();
    assert_eq!((state.total, stored[0].stream_version), (1, 1));
    assert_eq!(versions(&pool, &stream).await, [1]);
}
