//! Group commit (fleetstream_events::group, migration 0700): commands that share one statement
//! and one commit fail alone — a version conflict, a unique violation, a domain error, a panic
//! in decide — and their neighbours commit.

use fleetstream::es::{Aggregate, CommandError, EventStore};
use fleetstream_events::group::GroupAppender;
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

#[derive(Debug, Default)]
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
