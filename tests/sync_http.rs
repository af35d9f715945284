//! KooDTX sync over HTTP (seed 003): the original server's test_sync.py cases and the
//! fleetstream additions (ownership, cursor, large pushes, concurrency).

use fleetstream::testing::{self, TestClient};
use fleetstream_events::{RecordingEvent, Role};
use serde_json::{json, Value};

struct Ctx {
    client: TestClient,
    token: String,
    state: fleetstream::state::AppState,
}

async fn setup(pool: sqlx::PgPool) -> Ctx {
    let state = testing::state(pool);
    let user = testing::account(&state, "sync@example.com", Role::User).await;
    Ctx {
        client: TestClient::new(state.clone()),
        token: user.token,
        state,
    }
}

fn session(id: &str) -> Value {
    json!({
        "session_id": id,
        "start_time": "2025-11-13T00:00:00Z",
        "end_time": "2025-11-13T01:00:00Z",
        "enabled_sensors": ["accelerometer", "gyroscope", "gps"],
        "sample_rate": 100,
        "notes": "Morning workout session"
    })
}

fn samples(sensor: &str, from: i64, count: i64, x: f64) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"sensor_type": sensor, "timestamp": from + i * 10, "data": {"x": x, "y": 0.2, "z": 9.8}}))
        .collect()
}

async fn push(ctx: &Ctx, id: &str, data: Vec<Value>) -> testing::TestResponse {
    ctx.client
        .post(
            "/api/sync/push",
            Some(&ctx.token),
            json!({"session": session(id), "sensor_data": data}),
        )
        .await
}

async fn pull(ctx: &Ctx, body: Value) -> testing::TestResponse {
    ctx.client
        .post("/api/sync/pull", Some(&ctx.token), body)
        .await
}

fn counts(r: &testing::TestResponse) -> (i64, i64, i64, i64) {
    let n = |k: &str| r.body[k].as_i64().unwrap_or(-1);
    (
        n("total_records"),
        n("inserted"),
        n("updated"),
        n("duplicates"),
    )
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn push_new_session(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let r = push(
        &ctx,
        "s-new",
        samples("accelerometer", 1_699_876_543_210, 2, 0.1),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["message"], "Sync completed successfully");
    assert_eq!(r.body["session_id"], "s-new");
    assert_eq!(counts(&r), (2, 2, 0, 0));
    assert_eq!(r.body["errors"], 0);
    assert_eq!(r.body["session_data_count"], 2);
    assert!(r.body["sync_log_id"].as_i64().is_some());
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn push_updates_an_existing_session(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    push(&ctx, "s-upd", samples("gps", 1000, 3, 1.0)).await;
    let mut updated = session("s-upd");
    updated["notes"] = json!("Updated notes");
    updated["is_active"] = json!(true);
    updated["end_time"] = json!("2025-11-13T02:00:00Z");
    let r = ctx
        .client
        .post(
            "/api/sync/push",
            Some(&ctx.token),
            json!({"session": updated, "sensor_data": samples("gps", 2000, 2, 1.0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&r), (2, 2, 0, 0));
    assert_eq!(r.body["session_data_count"], 5);
    let p = pull(&ctx, json!({"session_ids": ["s-upd"]})).await;
    let s = &p.body["sessions"][0];
    assert_eq!(s["notes"], "Updated notes");
    assert_eq!(s["is_active"], true);
    assert_eq!(s["end_time"], "2025-11-13T02:00:00Z");
    assert_eq!(s["data_count"], 5);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn duplicate_timestamp_updates_with_the_new_data(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    push(&ctx, "s-dup", samples("accelerometer", 5000, 1, 0.1)).await;
    let same = push(&ctx, "s-dup", samples("accelerometer", 5000, 1, 0.1)).await;
    assert_eq!(counts(&same), (1, 0, 0, 1));
    let changed = push(&ctx, "s-dup", samples("accelerometer", 5000, 1, 0.5)).await;
    assert_eq!(counts(&changed), (1, 0, 1, 0));
    assert_eq!(changed.body["session_data_count"], 1);
    let p = pull(&ctx, json!({"session_ids": ["s-dup"]})).await;
    assert_eq!(p.body["sessions"][0]["sensor_data"][0]["data"]["x"], 0.5);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn push_without_auth_is_401(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for (method, path) in [
        ("POST", "/api/sync/push"),
        ("POST", "/api/sync/pull"),
        ("GET", "/api/sync/status"),
    ] {
        let r = ctx.client.request(method, path, None, json!({})).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.body,
            json!({"msg": "Missing Authorization Header"}),
            "{path}"
        );
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn push_validation_errors(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let missing = json!({"error": "Missing session_id or start_time"});
    let format = json!({"error": "Invalid request format"});
    let cases = [
        (
            json!({"session": {"start_time": "2025-11-13T00:00:00Z"}, "sensor_data": []}),
            &missing,
        ),
        (
            json!({"session": {"session_id": "x"}, "sensor_data": []}),
            &missing,
        ),
        (json!({"sensor_data": []}), &format),
        (json!({"session": session("x")}), &format),
        (json!([1, 2]), &format),
        (Value::Null, &format),
    ];
    for (body, expected) in cases {
        let r = ctx
            .client
            .post("/api/sync/push", Some(&ctx.token), body.clone())
            .await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(&r.body, expected, "{body}");
    }
    let broken = ctx
        .client
        .raw(
            "POST",
            "/api/sync/push",
            Some(&ctx.token),
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!((broken.status.as_u16(), broken.body), (400, format.clone()));
    // nothing was stored
    let s = ctx.client.get("/api/sync/status", Some(&ctx.token)).await;
    assert_eq!(s.body["total_sessions"], 0);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn malformed_samples_count_as_errors(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let mut data = samples("gps", 1, 2, 1.0);
    data.push(json!({"timestamp": 5}));
    data.push(json!({"sensor_type": "gps", "timestamp": "soon"}));
    let r = push(&ctx, "s-err", data).await;
    assert_eq!(r.status, 200);
    assert_eq!(counts(&r), (4, 2, 0, 0));
    assert_eq!(r.body["errors"], 2);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn push_batch_of_100_records(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let mut data = samples("accelerometer", 0, 50, 0.1);
    data.extend(samples("gyroscope", 0, 50, 0.2));
    let r = push(&ctx, "s-100", data).await;
    assert_eq!(counts(&r), (100, 100, 0, 0));
    assert_eq!(r.body["session_data_count"], 100);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pull_all_sessions_with_and_without_data(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    push(&ctx, "s-a", samples("gps", 30, 3, 1.0)).await;
    push(&ctx, "s-b", samples("gps", 10, 2, 1.0)).await;
    let all = pull(&ctx, json!({})).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body["total"], 2);
    assert_eq!(all.body["page"], 1);
    assert_eq!(all.body["page_size"], 50);
    assert_eq!(all.body["has_more"], false);
    assert!(all.body["sync_log_id"].as_i64().is_some());
    assert!(all.body["server_timestamp"].as_str().is_some());
    assert!(all.body["next_cursor"].as_str().is_some());
    // newest change first
    assert_eq!(all.body["sessions"][0]["session_id"], "s-b");
    let a = &all.body["sessions"][1];
    assert_eq!(a["is_uploaded"], true);
    assert_eq!(a["sample_rate"], 100);
    assert_eq!(
        a["enabled_sensors"],
        json!(["accelerometer", "gyroscope", "gps"])
    );
    assert_eq!(a["start_time"], "2025-11-13T00:00:00Z");
    let ts: Vec<i64> = a["sensor_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(ts, vec![30, 40, 50]);
    let meta = pull(&ctx, json!({"include_data": false})).await;
    assert_eq!(meta.body["sessions"][0]["sensor_data"], json!([]));
    assert_eq!(meta.body["sessions"][1]["data_count"], 3);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pull_delta_by_last_sync_time(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    push(&ctx, "s-old", samples("gps", 1, 1, 1.0)).await;
    let first = pull(&ctx, json!({})).await;
    let since = first.body["server_timestamp"].as_str().unwrap().to_owned();
    push(&ctx, "s-new", samples("gps", 1, 1, 1.0)).await;
    let delta = pull(&ctx, json!({"last_sync_time": since})).await;
    assert_eq!(delta.body["total"], 1);
    assert_eq!(delta.body["sessions"][0]["session_id"], "s-new");
    let bad = pull(&ctx, json!({"last_sync_time": "yesterday"})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        json!({"error": "Invalid last_sync_time format. Use ISO 8601."})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pull_by_session_ids(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for id in ["s-1", "s-2", "s-3"] {
        push(&ctx, id, samples("gps", 1, 1, 1.0)).await;
    }
    let r = pull(&ctx, json!({"session_ids": ["s-1", "s-3"]})).await;
    assert_eq!(r.body["total"], 2);
    let mut ids: Vec<&str> = r.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["s-1", "s-3"]);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pull_pagination_over_five_sessions(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for i in 0..5 {
        push(&ctx, &format!("s-{i}"), samples("gps", 1, 1, 1.0)).await;
    }
    let mut seen = Vec::new();
    for (page, more, len) in [(1, true, 2), (2, true, 2), (3, false, 1)] {
        let r = pull(&ctx, json!({"page": page, "page_size": 2})).await;
        assert_eq!(r.body["total"], 5);
        assert_eq!(r.body["has_more"], more, "page {page}");
        let sessions = r.body["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), len);
        seen.extend(
            sessions
                .iter()
                .map(|s| s["session_id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, vec!["s-4", "s-3", "s-2", "s-1", "s-0"]);
    let far = pull(&ctx, json!({"page": i64::MAX, "page_size": 100})).await;
    assert_eq!(far.status, 200, "{}", far.text);
    assert_eq!(
        (far.body["total"].as_i64(), far.body["has_more"].as_bool()),
        (Some(5), Some(false))
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pull_rejects_invalid_page_and_page_size(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for page in [json!(0), json!(-1)] {
        let r = pull(&ctx, json!({"page": page})).await;
        assert_eq!(
            (r.status.as_u16(), r.body),
            (400, json!({"error": "Page must be >= 1"}))
        );
    }
    for size in [json!(0), json!(101), json!(1000)] {
        let r = pull(&ctx, json!({"page_size": size})).await;
        assert_eq!(
            (r.status.as_u16(), r.body),
            (400, json!({"error": "Page size must be between 1 and 100"}))
        );
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn status_shape_and_recent_syncs(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let empty = ctx.client.get("/api/sync/status", Some(&ctx.token)).await;
    assert_eq!(
        empty.body,
        json!({"total_sessions": 0, "active_sessions": 0, "uploaded_sessions": 0, "recent_syncs": []})
    );
    let mut live = session("s-live");
    live.as_object_mut().unwrap().remove("end_time");
    ctx.client
        .post(
            "/api/sync/push",
            Some(&ctx.token),
            json!({"session": live, "sensor_data": samples("gps", 1, 2, 1.0)}),
        )
        .await;
    for i in 0..11 {
        push(&ctx, "s-done", samples("gps", i, 1, 1.0)).await;
    }
    let s = ctx.client.get("/api/sync/status", Some(&ctx.token)).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["total_sessions"], 2);
    assert_eq!(s.body["active_sessions"], 1);
    assert_eq!(s.body["uploaded_sessions"], 2);
    let recent = s.body["recent_syncs"].as_array().unwrap();
    assert_eq!(recent.len(), 10);
    let ids: Vec<i64> = recent.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let keys: Vec<&String> = recent[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec![
            "created_at",
            "duplicates",
            "id",
            "inserted",
            "status",
            "sync_type",
            "total_records",
            "updated"
        ]
    );
    assert_eq!(recent[0]["sync_type"], "push");
    assert_eq!(recent[0]["status"], "success");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn full_push_pull_status_flow(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let p = push(&ctx, "s-flow", samples("accelerometer", 1, 10, 0.1)).await;
    assert_eq!(counts(&p), (10, 10, 0, 0));
    let l = pull(
        &ctx,
        json!({"session_ids": ["s-flow"], "include_data": true}),
    )
    .await;
    assert_eq!(
        l.body["sessions"][0]["sensor_data"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let s = ctx.client.get("/api/sync/status", Some(&ctx.token)).await;
    assert_eq!(s.body["total_sessions"], 1);
    let kinds: Vec<&str> = s.body["recent_syncs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sync_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["pull", "push"]);
    assert_eq!(s.body["recent_syncs"][0]["id"], l.body["sync_log_id"]);
    assert_eq!(s.body["recent_syncs"][1]["id"], p.body["sync_log_id"]);
    assert_eq!(s.body["recent_syncs"][1]["inserted"], 10);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn another_accounts_session_is_forbidden_and_unchanged(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    push(&ctx, "s-mine", samples("gps", 1, 2, 1.0)).await;
    let other = testing::account(&ctx.state, "other@example.com", Role::User).await;
    let r = ctx
        .client
        .post(
            "/api/sync/push",
            Some(&other.token),
            json!({"session": session("s-mine"), "sensor_data": samples("gps", 1, 3, 7.0)}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body),
        (403, json!({"error": "Forbidden"}))
    );
    let theirs = ctx
        .client
        .post(
            "/api/sync/pull",
            Some(&other.token),
            json!({"session_ids": ["s-mine"]}),
        )
        .await;
    assert_eq!(
        (theirs.status.as_u16(), theirs.body),
        (403, json!({"error": "Forbidden"}))
    );
    let mine = pull(&ctx, json!({})).await;
    assert_eq!(mine.body["sessions"][0]["data_count"], 2);
    assert_eq!(mine.body["sessions"][0]["sensor_data"][0]["data"]["x"], 1.0);
    let their_status = ctx.client.get("/api/sync/status", Some(&other.token)).await;
    assert_eq!(their_status.body["total_sessions"], 0);
    assert_eq!(their_status.body["recent_syncs"], json!([]));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn cursor_flow_resumes_after_the_newest_change(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    for i in 0..3 {
        push(&ctx, &format!("s-{i}"), samples("gps", 1, 1, 1.0)).await;
    }
    // a page smaller than the result: the cursor still marks the newest change of all
    let first = pull(&ctx, json!({"page_size": 1})).await;
    let mut cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    // The cursor may stay behind the newest change while an older transaction anywhere in the
    // cluster is in flight (never-skip rule, see `sync::read::next_cursor`); once none is, a
    // pull from it is empty and keeps it.
    let mut tries = 0;
    let nothing = loop {
        let r = pull(&ctx, json!({"cursor": cursor})).await;
        tries += 1;
        if r.body["total"] == 0 || tries == 200 {
            break r;
        }
        cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(nothing.body["total"], 0);
    assert_eq!(nothing.body["next_cursor"], cursor.as_str());
    push(&ctx, "s-1", samples("gps", 100, 1, 1.0)).await;
    // the cursor wins over a last_sync_time far in the future
    // (and, once no older transaction is in flight, its next_cursor passes the change)
    for tries in 1.. {
        let delta = pull(
            &ctx,
            json!({"cursor": cursor, "last_sync_time": "2999-01-01T00:00:00Z"}),
        )
        .await;
        assert_eq!(delta.body["total"], 1);
        assert_eq!(delta.body["sessions"][0]["session_id"], "s-1");
        if delta.body["next_cursor"] != cursor.as_str() {
            break;
        }
        assert!(tries < 200, "the cursor never passed the change");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for bad in [json!("garbage"), json!(12)] {
        let r = pull(&ctx, json!({"cursor": bad})).await;
        assert_eq!(
            (r.status.as_u16(), r.body),
            (400, json!({"error": "Invalid cursor"}))
        );
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn ten_thousand_samples_in_one_push(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    let r = push(&ctx, "s-big", samples("accelerometer", 0, 10_000, 0.1)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&r), (10_000, 10_000, 0, 0));
    let sample_events = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'SamplesPushed'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let after_first = sample_events().await;
    let again = push(&ctx, "s-big", samples("accelerometer", 0, 10_000, 0.1)).await;
    assert_eq!(counts(&again), (10_000, 0, 0, 10_000));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sensor_samples")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 10_000);
    assert_eq!(
        sample_events().await,
        after_first,
        "the identical re-push adds no sample event"
    );
    assert_every_event_is_bounded(&pool).await;
}

/// Every stored event's envelope, as the relay publishes it, is under the bound.
async fn assert_every_event_is_bounded(pool: &sqlx::PgPool) {
    let events: Vec<fleetstream_events::StoredEvent> = sqlx::query_as(
        "SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, \
                stream_version, event_id, event_type, schema_version, data, metadata, recorded_at \
         FROM events",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let largest = events
        .iter()
        .map(|e| fleetstream_events::encoded_len(&fleetstream_events::EventEnvelope::from(e)))
        .max()
        .unwrap_or(0);
    assert!(
        largest <= fleetstream_events::MAX_EVENT_BYTES,
        "an event of {largest} bytes"
    );
}

/// Issue 10's incident: 2,000 samples with ~1 KB payloads (a ~2 MB request, well inside the
/// 32 MiB push limit) once made one 2.2 MB event that stopped the NATS relay.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_two_megabyte_push_is_split_into_bounded_events_and_rebuilds_the_same(
    pool: sqlx::PgPool,
) {
    let ctx = setup(pool.clone()).await;
    let payload = "a".repeat(1_000);
    let large: Vec<Value> = (0..2_000)
        .map(|i| json!({"sensor_type": "ppg", "timestamp": i, "data": {"raw": payload, "i": i}}))
        .collect();
    let r = push(&ctx, "s-large", large.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&r), (2_000, 2_000, 0, 0));
    // Half of them again, changed: exact updates, and the rest duplicates.
    let mut changed = large.clone();
    for sample in changed.iter_mut().take(1_000) {
        sample["data"]["i"] = json!(-1);
    }
    let r = push(&ctx, "s-large", changed).await;
    assert_eq!(counts(&r), (2_000, 0, 1_000, 1_000));
    assert_every_event_is_bounded(&pool).await;
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SamplesPushed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // 2 MB, then 1 MB of changed samples, in events of at most 256 KiB.
    assert!(events >= 8 + 4, "{events} sample events");

    let snapshot = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT count(*), count(*) FILTER (WHERE (data->>'i')::int = -1),                     md5(string_agg(sensor_type || timestamp || data::text, ',' ORDER BY timestamp))              FROM sensor_samples WHERE session_id = 's-large'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let live = snapshot(pool.clone()).await;
    assert_eq!((live.0, live.1), (2_000, 1_000));
    for projection in ctx.state.store.projections() {
        fleetstream_projections::rebuild(
            &pool,
            projection.as_ref(),
            ctx.state.store.keyring(),
            500,
            |_| {},
        )
        .await
        .unwrap();
    }
    assert_eq!(snapshot(pool.clone()).await, live);
}

/// A sample over the per-sample bound is refused like a malformed one (counted in `errors`);
/// the rest of the push is recorded.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_oversized_sample_counts_as_an_error(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    let mut data = samples("gps", 0, 3, 1.0);
    data.push(json!({"sensor_type": "gps", "timestamp": 99, "data": {"blob": "b".repeat(70_000)}}));
    let r = push(&ctx, "s-oversized", data).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counts(&r), (4, 3, 0, 0));
    assert_eq!(r.body["errors"], 1);
    assert_every_event_is_bounded(&pool).await;
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pushes_over_the_limit_are_413(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let body = vec![b' '; 33 * 1024 * 1024];
    let r = ctx
        .client
        .raw(
            "POST",
            "/api/sync/push",
            Some(&ctx.token),
            "application/json",
            body,
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body,
        json!({"error": "Request body is larger than 32 MiB"})
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn concurrent_overlapping_pushes_are_consistent(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    push(&ctx, "s-race", vec![]).await;
    // A: timestamps 0..1990, B: 1000..2990 with other data on the overlap
    let a = samples("gps", 0, 200, 1.0);
    let b = samples("gps", 1000, 200, 2.0);
    let (ra, rb) = tokio::join!(push(&ctx, "s-race", a), push(&ctx, "s-race", b));
    assert_eq!(
        (ra.status.as_u16(), rb.status.as_u16()),
        (200, 200),
        "{} {}",
        ra.text,
        rb.text
    );
    let (_, ia, ua, da) = counts(&ra);
    let (_, ib, ub, db) = counts(&rb);
    assert_eq!(ia + ib, 300, "each key inserted once");
    assert_eq!(
        ua + ub,
        100,
        "the overlap is updated by whichever came second"
    );
    assert_eq!(da + db, 0);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sensor_samples WHERE session_id = 's-race'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let data_count: i64 =
        sqlx::query_scalar("SELECT data_count FROM recording_sessions WHERE session_id = 's-race'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((rows, data_count), (300, 300));
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn read_models_rebuild_from_the_log_to_the_same_rows(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    push(&ctx, "s-r1", samples("gps", 0, 2_500, 1.0)).await;
    push(&ctx, "s-r1", samples("gps", 1_000, 10, 3.0)).await;
    push(&ctx, "s-r2", samples("accelerometer", 0, 5, 1.0)).await;
    pull(&ctx, json!({})).await;
    let snapshot = |pool: sqlx::PgPool| async move {
        let q = "SELECT (SELECT jsonb_agg(r ORDER BY session_id) FROM recording_sessions r)::text, \
                        (SELECT md5(string_agg(session_id || sensor_type || timestamp || data::text || updated_at::text, ',' ORDER BY session_id, sensor_type, timestamp)) FROM sensor_samples), \
                        (SELECT jsonb_agg(l ORDER BY id) FROM sync_logs l)::text";
        sqlx::query_as::<_, (String, String, String)>(q)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = snapshot(pool.clone()).await;
    for projection in ctx.state.store.projections() {
        fleetstream_projections::rebuild(
            &pool,
            projection.as_ref(),
            ctx.state.store.keyring(),
            500,
            |_| {},
        )
        .await
        .unwrap();
    }
    assert_eq!(snapshot(pool.clone()).await, before);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn health_and_token_errors(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    let h = ctx.client.get("/health", None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body["status"], "healthy");
    let bad = ctx
        .client
        .post("/api/sync/push", Some("not-a-token"), json!({}))
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["msg"].is_string(), "{}", bad.text);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pull_of_unknown_session_ids_is_empty_not_forbidden(pool: sqlx::PgPool) {
    let ctx = setup(pool).await;
    push(&ctx, "s-known", samples("gps", 1, 1, 1.0)).await;
    let r = pull(
        &ctx,
        json!({"session_ids": ["nobody-has-this"], "page": "1"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["sessions"], json!([]));
}

/// A log written before `SamplesPushed` schema 2 (one `samples` list, no new/changed split)
/// still decodes (upcast) and rebuilds the same rows.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn schema_1_sample_events_decode_and_rebuild_to_the_same_rows(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    push(&ctx, "s-v1", samples("gps", 0, 30, 1.0)).await;
    push(&ctx, "s-v1", samples("gps", 200, 20, 2.0)).await;
    let rows = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT (SELECT jsonb_agg(jsonb_build_array(sensor_type, timestamp, data, updated_at) \
                     ORDER BY sensor_type, timestamp) FROM sensor_samples)::text, \
                    (SELECT data_count FROM recording_sessions WHERE session_id = 's-v1')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = rows(pool.clone()).await;
    assert_eq!(before.1, 40);

    let rewritten = sqlx::query(
        "UPDATE events SET schema_version = 1, \
             data = (data - 'inserted' - 'updated') \
                    || jsonb_build_object('samples', (data->'inserted') || (data->'updated')) \
         WHERE event_type = 'SamplesPushed'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(rewritten.rows_affected(), 2);

    let mut conn = pool.acquire().await.unwrap();
    let stream = fleetstream_events::store::read_stream(&mut conn, "recording-s-v1", 1)
        .await
        .unwrap();
    let upcast: Vec<(usize, usize)> = stream
        .iter()
        .filter_map(|e| match e.decode::<RecordingEvent>()?.unwrap() {
            RecordingEvent::SamplesPushed {
                inserted, updated, ..
            } => Some((inserted.len(), updated.len())),
            _ => None,
        })
        .collect();
    assert_eq!(upcast, vec![(0, 30), (0, 20)]);
    drop(conn);

    let recordings = ctx
        .state
        .store
        .projections()
        .iter()
        .find(|p| p.name() == "recordings")
        .unwrap()
        .clone();
    fleetstream_projections::rebuild(&pool, recordings.as_ref(), None, 500, |_| {})
        .await
        .unwrap();
    assert_eq!(rows(pool.clone()).await, before);
}

/// Pushes of one account run concurrently, so a push can commit after a newer position is
/// already visible. Push A is held open (appended and projected, not committed) while push B
/// to another session of the same account commits; a pull meanwhile sees B, and its cursor
/// must stay behind A so that the pull after A commits returns A.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_pull_cursor_never_skips_a_push_still_in_flight(pool: sqlx::PgPool) {
    let ctx = setup(pool.clone()).await;
    let account_id: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE email = $1")
        .bind("sync@example.com")
        .fetch_one(&pool)
        .await
        .unwrap();
    let start = pull(&ctx, json!({})).await;
    let cursor0 = start.body["next_cursor"].as_str().unwrap().to_owned();

    let held = fleetstream::sync::domain::PushRecording {
        account_id,
        session: fleetstream::sync::domain::SessionInput {
            session_id: "s-held".into(),
            start_time: fleetstream::sync::now(),
            end_time: None,
            is_active: None,
            enabled_sensors: None,
            sample_rate: Some(100),
            notes: None,
        },
        samples: Vec::new(),
        rejected: 0,
        bytes: 0,
        sync_log_id: 0,
        now: fleetstream::sync::now(),
    };
    let (open, _) = fleetstream::sync::push_uncommitted(
        &ctx.state.store,
        fleetstream_events::EventMetadata::default(),
        held,
    )
    .await
    .unwrap();

    // B commits while A is open; without the account lock it does not wait for A.
    let b = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        push(&ctx, "s-later", samples("gps", 1, 3, 0.5)),
    )
    .await
    .expect("a push of the same account waited for another session's push");
    assert_eq!(b.status, 200, "{}", b.text);
    let (a_xid, b_xid): (Option<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT max(transaction_id::text::bigint) FROM events WHERE stream_id = 'recording-s-held'), \
                (SELECT max(transaction_id::text::bigint) FROM events WHERE stream_id = 'recording-s-later')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // A's events are not visible yet; its id is read back after the commit below.
    assert_eq!(a_xid, None);

    let during = pull(&ctx, json!({"cursor": cursor0})).await;
    assert_eq!(during.status, 200, "{}", during.text);
    let seen: Vec<&str> = during.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["s-later"], "B is visible while A is in flight");
    let cursor1 = during.body["next_cursor"].as_str().unwrap().to_owned();

    open.commit::<fleetstream::sync::domain::SyncError>()
        .await
        .unwrap();
    let a_xid: i64 = sqlx::query_scalar(
        "SELECT max(transaction_id::text::bigint) FROM events WHERE stream_id = 'recording-s-held'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        a_xid < b_xid,
        "A took its transaction id first and committed last"
    );

    let after = pull(&ctx, json!({"cursor": cursor1})).await;
    assert_eq!(after.status, 200, "{}", after.text);
    let seen: Vec<&str> = after.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert!(
        seen.contains(&"s-held"),
        "the pull after A commits returns A, got {seen:?}"
    );
    // Once no older transaction is in flight the cursor passes both, and a pull is empty.
    let cursor2 = after.body["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(pull_until_empty(&ctx, cursor2).await, 0);
}

/// Pulls from `cursor` until a pull returns nothing (bounded); returns how many sessions the
/// last pull returned. The cursor stays behind every transaction older than a change that is
/// still in flight — any in the cluster, e.g. another test's — and the changes at or after it
/// come again until it passes them.
async fn pull_until_empty(ctx: &Ctx, mut cursor: String) -> usize {
    for _ in 0..200 {
        let r = pull(ctx, json!({"cursor": cursor})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let n = r.body["sessions"].as_array().unwrap().len();
        if n == 0 {
            return 0;
        }
        cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = pull(ctx, json!({"cursor": cursor})).await;
    r.body["sessions"].as_array().unwrap().len()
}
