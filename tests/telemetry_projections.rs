//! The telemetry read models and workers against real Postgres: roll-up answers equal raw
//! answers for random samples, windows, intervals and aggregates; every new read model rebuilds
//! to the rows live application wrote; the alert process manager raises exactly once across a
//! crash between append and checkpoint; the group commit shares transactions and replies per
//! command.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleetstream::alerts::manager::AlertManager;
use fleetstream::analytics::domain::{choose_source, parse_interval, Agg, Source};
use fleetstream::measurements::domain::ValidSample;
use fleetstream::measurements::ingest::{IngestItem, IngestKind};
use fleetstream::state::AppState;
use fleetstream::testing;
use fleetstream_events::{AlertRuleSpec, Condition, EventMetadata, Role, Severity};
use fleetstream_projections::{Projection, ReadModel};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

async fn device(state: &AppState, uid: &str, group: Option<i64>) -> i64 {
    let manager = testing::account(state, &format!("m-{uid}@example.com"), Role::Manager).await;
    let r = testing::TestClient::new(state.clone())
        .post(
            "/api/v1/devices",
            Some(&manager.token),
            json!({"device_uid": uid, "name": format!("device {uid}"), "group_id": group}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

fn sample(metric: &str, value: Decimal, at: DateTime<Utc>) -> ValidSample {
    ValidSample {
        metric: metric.into(),
        value,
        unit: None,
        timestamp: at,
    }
}

async fn record(state: &AppState, device_id: i64, samples: Vec<ValidSample>) {
    state
        .telemetry
        .append_one(IngestItem {
            device_id,
            metadata: EventMetadata::default(),
            kind: IngestKind::Samples(samples),
            source: None,
        })
        .await
        .expect("recording telemetry");
}

/// The same answer computed in Rust from the samples themselves.
fn reference(
    samples: &[ValidSample],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval_secs: i64,
    agg: Agg,
) -> Vec<(DateTime<Utc>, String, Decimal)> {
    let mut parts: BTreeMap<(i64, String), (i64, Decimal, Decimal, Decimal)> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.timestamp >= start && s.timestamp < end)
    {
        let bucket = s.timestamp.timestamp().div_euclid(interval_secs) * interval_secs;
        let e =
            parts
                .entry((bucket, s.metric.clone()))
                .or_insert((0, Decimal::ZERO, s.value, s.value));
        e.0 += 1;
        e.1 += s.value;
        e.2 = e.2.min(s.value);
        e.3 = e.3.max(s.value);
    }
    parts
        .into_iter()
        .map(|((bucket, metric), (n, sum, min, max))| {
            (
                Utc.timestamp_opt(bucket, 0).unwrap(),
                metric,
                agg.value(n, sum, min, max),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn rollup_answers_equal_raw_answers_for_random_windows_intervals_and_aggs(
    pool: sqlx::PgPool,
) {
    let state = testing::state(pool.clone());
    let device_id = device(&state, "rollup-1", None).await;
    let mut rng = StdRng::seed_from_u64(0x5eed_0011);
    let origin = Utc.with_ymd_and_hms(2025, 1, 30, 21, 0, 0).unwrap(); // spans a month end
    let span_secs = 3 * 86_400;
    let metrics = ["temperature", "humidity", "pressure"];
    let samples: Vec<ValidSample> = (0..3_000)
        .map(|_| {
            let at = origin + Duration::seconds(rng.gen_range(0..span_secs));
            let value = Decimal::new(rng.gen_range(-500_000..500_000), rng.gen_range(0..5));
            sample(metrics[rng.gen_range(0..3)], value, at)
        })
        .collect();
    for chunk in samples.chunks(700) {
        record(&state, device_id, chunk.to_vec()).await;
    }
    testing::catch_up(&state).await;

    let units = [("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400)];
    let aggs = [Agg::Avg, Agg::Min, Agg::Max, Agg::Sum, Agg::Count];
    let mut sources = BTreeMap::new();
    for round in 0..60 {
        let (unit, unit_secs) = units[rng.gen_range(0..units.len())];
        let n = match unit {
            "s" => [15, 30, 45, 60, 90, 120, 7][rng.gen_range(0..7)],
            "m" => [1, 5, 7, 15, 30, 90][rng.gen_range(0..6)],
            "h" => [1, 2, 3, 6, 24][rng.gen_range(0..5)],
            _ => 1,
        };
        let raw = format!("{n}{unit}");
        let interval = parse_interval(&raw).unwrap();
        assert_eq!(interval.seconds, n * unit_secs);
        let a = rng.gen_range(-3_600..span_secs);
        let b = rng.gen_range(a + 1..span_secs + 3_600);
        let (start, end) = (origin + Duration::seconds(a), origin + Duration::seconds(b));
        let agg = aggs[rng.gen_range(0..aggs.len())];
        let source = choose_source(interval, false);
        *sources.entry(format!("{source:?}")).or_insert(0) += 1;
        let mut conn = pool.acquire().await.unwrap();
        let from_rollup = fleetstream::analytics::values(
            &fleetstream::analytics::series(
                &mut conn, device_id, start, end, interval, None, source,
            )
            .await
            .unwrap(),
            agg,
        );
        let from_raw = fleetstream::analytics::values(
            &fleetstream::analytics::series(
                &mut conn,
                device_id,
                start,
                end,
                interval,
                None,
                Source::Raw,
            )
            .await
            .unwrap(),
            agg,
        );
        let expected = reference(&samples, start, end, interval.seconds, agg);
        assert_eq!(
            from_rollup, from_raw,
            "round {round}: {raw} {agg:?} {start}..{end}"
        );
        assert_eq!(
            from_rollup, expected,
            "round {round}: {raw} {agg:?} {start}..{end}"
        );
    }
    // Every source was exercised.
    assert_eq!(sources.len(), 3, "{sources:?}");
}

/// Every row of the given tables, in a stable order, as JSON.
async fn dump(pool: &sqlx::PgPool, tables: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for table in tables {
        let rows: Value = sqlx::query_scalar(&format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(table.to_string(), rows);
    }
    Value::Object(out)
}

/// Applies a projection live in small batches, dumps it, rebuilds it from the log in large
/// ones, dumps again: the two must be equal.
async fn assert_rebuild_equals_live(pool: &sqlx::PgPool, projection: &dyn Projection) {
    loop {
        let n = fleetstream_projections::run_until_caught_up(pool, projection, 3)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
    }
    testing::catch_up(&testing::state(pool.clone())).await;
    let live = dump(pool, projection.tables()).await;
    assert!(
        live.as_object()
            .unwrap()
            .values()
            .any(|rows| !rows.as_array().unwrap().is_empty()),
        "{} has rows to compare",
        projection.name()
    );
    let mut progressed = 0;
    fleetstream_projections::rebuild(pool, projection, None, 1_000, |n| progressed += n)
        .await
        .unwrap();
    assert!(progressed > 0);
    let rebuilt = dump(pool, projection.tables()).await;
    assert_eq!(live, rebuilt, "{} rebuilt == live", projection.name());
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn every_telemetry_read_model_rebuilds_to_its_live_rows(pool: sqlx::PgPool) {
    let state = testing::state(pool.clone());
    let d1 = device(&state, "rebuild-1", Some(1)).await;
    let d2 = device(&state, "rebuild-2", None).await;
    let manager = testing::account(&state, "rules@example.com", Role::Manager).await;
    let meta = EventMetadata {
        actor: Some(manager.id),
        ..Default::default()
    };
    let rule = fleetstream::alerts::create_rule(
        &state.store,
        meta.clone(),
        AlertRuleSpec {
            name: "hot".into(),
            description: None,
            metric: "t".into(),
            condition: Condition::Gte,
            threshold: Decimal::from(30),
            severity: Severity::Critical,
            device_group_id: None,
            is_active: true,
        },
    )
    .await
    .unwrap();
    let rule_id = rule.id.unwrap();
    let other = fleetstream::alerts::create_rule(
        &state.store,
        meta.clone(),
        AlertRuleSpec {
            name: "cold".into(),
            description: Some("x".into()),
            metric: "t".into(),
            condition: Condition::Lt,
            threshold: Decimal::from(0),
            severity: Severity::Info,
            device_group_id: Some(1),
            is_active: true,
        },
    )
    .await
    .unwrap();
    fleetstream::alerts::update_rule(
        &state.store,
        meta.clone(),
        rule_id,
        fleetstream_events::AlertRuleChanges {
            description: Some(Some("hotter".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    fleetstream::alerts::delete_rule(&state.store, meta.clone(), other.id.unwrap())
        .await
        .unwrap();
    testing::catch_up(&state).await;
    let t0 = Utc.with_ymd_and_hms(2025, 3, 31, 23, 58, 0).unwrap();
    for i in 0..40i64 {
        let at = t0 + Duration::seconds(i * 13);
        record(
            &state,
            if i % 3 == 0 { d2 } else { d1 },
            vec![
                sample("t", Decimal::new(i * 100 + 7, 2), at),
                sample("h", Decimal::new(-i, 1), at),
            ],
        )
        .await;
        if i % 7 == 0 {
            fleetstream::measurements::report_status(
                &state.telemetry,
                EventMetadata::default(),
                d1,
                if i % 2 == 0 { "online" } else { "offline" },
            )
            .await
            .unwrap();
        }
    }
    testing::catch_up(&state).await;
    let manager_worker = AlertManager::new(state.store.clone());
    while manager_worker.step(500).await.unwrap() != Some(0) {}
    testing::catch_up(&state).await;
    let open: Vec<(i64,)> = sqlx::query_as("SELECT id FROM alerts ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    fleetstream::alerts::acknowledge(&state.store, meta.clone(), open[0].0, manager.id)
        .await
        .unwrap();
    let r = testing::TestClient::new(state.clone())
        .get(
            &format!("/api/v1/analytics/status/{d1}"),
            Some(&manager.token),
        )
        .await;
    assert_eq!(r.status, 200);

    use fleetstream_projections::read_models::*;
    let models: [&dyn Projection; 5] = [
        &measurements::Measurements,
        &device_status::DeviceStatus,
        &alert_rules::AlertRules,
        &alerts::Alerts,
        &analysis_results::AnalysisResults,
    ];
    for projection in models {
        assert_rebuild_equals_live(&pool, projection).await;
    }
    // The samples crossed a month: two partitions exist, and the parent holds every row.
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(partitions, 2);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM measurements")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 80);
    assert_eq!(
        <measurements::Measurements as ReadModel>::TABLES,
        ["measurements", "telemetry_rollup_1m", "telemetry_rollup_1h"]
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_alert_manager_crash_between_append_and_checkpoint_raises_exactly_once(
    pool: sqlx::PgPool,
) {
    let state = testing::state(pool.clone());
    let device_id = device(&state, "crash-1", None).await;
    let rule = fleetstream::alerts::create_rule(
        &state.store,
        EventMetadata::default(),
        AlertRuleSpec {
            name: "hot".into(),
            description: None,
            metric: "t".into(),
            condition: Condition::Gt,
            threshold: Decimal::from(40),
            severity: Severity::Warning,
            device_group_id: None,
            is_active: true,
        },
    )
    .await
    .unwrap();
    testing::catch_up(&state).await;
    record(
        &state,
        device_id,
        vec![sample("t", Decimal::from(45), Utc::now())],
    )
    .await;
    let raised = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE event_type = 'AlertRaised'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let checkpoint = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce((SELECT global_position FROM projection_checkpoints WHERE name = 'alert_manager'), 0)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };

    let worker = AlertManager::new(state.store.clone());
    worker.fail_after_append.store(true, Ordering::SeqCst);
    // The reader may wait for older transactions elsewhere in the cluster; step until it has
    // read the sample (and failed after appending).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Err(err) = worker.step(500).await {
            assert!(err.to_string().contains("injected failure"), "{err}");
            if raised().await == 1 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never read the sample"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(raised().await, 1, "appended before the crash");
    assert_eq!(checkpoint().await, 0, "the checkpoint did not move");

    // Acknowledge the alert before the restart: a replay deciding afresh would raise again;
    // the deterministic event id keeps it out of the log.
    testing::catch_up(&state).await;
    let alert_id: i64 = sqlx::query_scalar("SELECT id FROM alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    fleetstream::alerts::acknowledge(&state.store, EventMetadata::default(), alert_id, 1)
        .await
        .unwrap();

    let restarted = AlertManager::new(state.store.clone());
    while restarted.step(500).await.unwrap() != Some(0) {}
    assert_eq!(raised().await, 1, "exactly one alert after the restart");
    assert!(
        checkpoint().await > 0,
        "the checkpoint moved past the sample"
    );
    let stream_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
        .bind(format!("alert-{}_{}", rule.id.unwrap(), device_id))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stream_events, 2, "raised once, acknowledged once");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn concurrent_recordings_share_transactions_and_each_gets_its_own_reply(pool: sqlx::PgPool) {
    let state = testing::state(pool.clone());
    let device_id = device(&state, "group-1", None).await;
    let at = Utc.with_ymd_and_hms(2025, 5, 1, 0, 0, 0).unwrap();
    let tasks: Vec<_> = (0..64i64)
        .map(|i| {
            let writer = state.telemetry.clone();
            tokio::spawn(async move {
                let done = writer
                    .append_one(IngestItem {
                        device_id,
                        metadata: EventMetadata {
                            actor: Some(i),
                            ..Default::default()
                        },
                        kind: IngestKind::Samples(vec![sample("t", Decimal::from(i), at)]),
                        source: None,
                    })
                    .await
                    .unwrap();
                (i, done)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        let (i, done) = task.await.unwrap();
        assert_eq!(done.samples.len(), 1);
        assert_eq!(
            done.samples[0].value,
            Decimal::from(i),
            "each caller gets its own sample"
        );
        assert_eq!(done.events.len(), 1);
        assert_eq!(
            done.events[0].metadata["actor"], i,
            "each command keeps its metadata"
        );
        ids.push(done.samples[0].id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 64, "distinct measurement ids");
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT transaction_id::text) FROM events WHERE category = 'telemetry'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        transactions < 64,
        "64 commands in {transactions} transactions"
    );

    // The batched API: one call, many devices, one transaction, replies in order.
    let other = device(&state, "group-2", None).await;
    let items: Vec<IngestItem> = (0..10i64)
        .map(|i| IngestItem {
            device_id: if i % 2 == 0 { device_id } else { other },
            metadata: EventMetadata::default(),
            kind: if i == 9 {
                IngestKind::Status(fleetstream_events::Connectivity::Online)
            } else {
                IngestKind::Samples(vec![
                    sample("t", Decimal::from(100 + i), at),
                    sample("h", Decimal::from(200 + i), at),
                ])
            },
            source: None,
        })
        .collect();
    let done = state.telemetry.append(items).await.unwrap();
    assert_eq!(done.len(), 10);
    for (i, d) in done.iter().enumerate().take(9) {
        assert_eq!(d.samples[0].value, Decimal::from(100 + i as i64));
        assert_eq!(d.samples[1].value, Decimal::from(200 + i as i64));
    }
    assert!(done[9].samples.is_empty());
    assert_eq!(done[9].events[0].event_type, "DeviceStatusReported");
    let xids: std::collections::BTreeSet<i64> = done
        .iter()
        .flat_map(|d| d.events.iter().map(|e| e.transaction_id))
        .collect();
    assert_eq!(xids.len(), 1, "one batch, one transaction");

    // A batch with an empty recording is refused whole, before it can share a transaction.
    let refused = state
        .telemetry
        .append(vec![
            IngestItem {
                device_id,
                metadata: EventMetadata::default(),
                kind: IngestKind::Samples(vec![sample("t", Decimal::ONE, at)]),
                source: None,
            },
            IngestItem {
                device_id,
                metadata: EventMetadata::default(),
                kind: IngestKind::Samples(vec![]),
                source: None,
            },
        ])
        .await;
    assert!(matches!(
        refused,
        Err(fleetstream::measurements::ingest::IngestError::Invalid(_))
    ));
}
