//! Seed 002 analytics: telemetry series answered from roll-ups (raw rows only where a roll-up
//! bucket is cut by the window, or below a minute), status and trend analyses, and the stored
//! analyses (`report` aggregate) that `/analytics/results` lists.

pub mod domain;
pub mod http;

use crate::es::{next_id, CommandError, EventStore};
use chrono::{DateTime, Utc};
use domain::{Agg, Interval, Source};
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{DomainEvent, EventMetadata, ReportEvent};
use rust_decimal::Decimal;
use sqlx::PgConnection;

/// One bucket of one metric.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BucketRow {
    pub bucket: DateTime<Utc>,
    pub metric: String,
    pub count: i64,
    pub sum: Decimal,
    pub min: Decimal,
    pub max: Decimal,
}

fn floor_to(t: DateTime<Utc>, width: i64) -> DateTime<Utc> {
    let s = t.timestamp().div_euclid(width) * width;
    DateTime::from_timestamp(s, 0).unwrap_or(t)
}

fn ceil_to(t: DateTime<Utc>, width: i64) -> DateTime<Utc> {
    let floor = floor_to(t, width);
    if floor == t {
        t
    } else {
        floor + chrono::Duration::seconds(width)
    }
}

/// Partial aggregates per bucket and metric of one device's samples in `[start, end)`.
/// Whole roll-up buckets inside the window come from `source`'s roll-up, the cut ones at the
/// edges from raw rows. `tz` (day buckets only) bins by local midnight.
pub async fn series(
    conn: &mut PgConnection,
    device_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Interval,
    tz: Option<&str>,
    source: Source,
) -> Result<Vec<BucketRow>, sqlx::Error> {
    let bucket = match tz {
        Some(_) => {
            "date_bin(make_interval(secs => $4::float8), ts AT TIME ZONE $7, \
                    '1970-01-01 00:00:00'::timestamp) AT TIME ZONE $7"
        }
        None => "date_bin(make_interval(secs => $4::float8), ts, '1970-01-01 00:00:00+00')",
    };
    let (rollup_from, rollup_to) = match source {
        Source::Raw => (start, start),
        Source::Rollup(width) => {
            let (a, b) = (ceil_to(start, width), floor_to(end, width));
            if a < b {
                (a, b)
            } else {
                (start, start)
            }
        }
    };
    let rollup = match source.table() {
        Some(table) if rollup_from < rollup_to => format!(
            "SELECT bucket AS ts, metric, count, sum, min, max FROM {table} \
             WHERE device_id = $1 AND bucket >= $5 AND bucket < $6 UNION ALL "
        ),
        _ => String::new(),
    };
    // The raw parts are two plain index ranges (before and after the roll-up's span), so a
    // month-long window reads its edges, not every row in between.
    let sql = format!(
        "WITH parts AS ({rollup} \
            SELECT ts, metric, 1::bigint AS count, value AS sum, value AS min, value AS max \
            FROM measurements WHERE device_id = $1 AND ts >= $2 AND ts < least($5, $3) \
            UNION ALL \
            SELECT ts, metric, 1::bigint AS count, value AS sum, value AS min, value AS max \
            FROM measurements WHERE device_id = $1 AND ts >= greatest($6, $2) AND ts < $3) \
         SELECT {bucket} AS bucket, metric, sum(count)::bigint AS count, sum(sum) AS sum, \
                min(min) AS min, max(max) AS max \
         FROM parts GROUP BY 1, 2 ORDER BY 1, 2"
    );
    sqlx::query_as(&sql)
        .bind(device_id)
        .bind(start)
        .bind(end)
        .bind(interval.seconds as f64)
        .bind(rollup_from)
        .bind(rollup_to)
        .bind(tz.unwrap_or("UTC"))
        .fetch_all(conn)
        .await
}

/// Each bucket's value under `agg`, per metric, buckets ascending.
pub fn values(rows: &[BucketRow], agg: Agg) -> Vec<(DateTime<Utc>, String, Decimal)> {
    rows.iter()
        .map(|r| {
            (
                r.bucket,
                r.metric.clone(),
                agg.value(r.count, r.sum, r.min, r.max),
            )
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrendRow {
    pub count: i64,
    pub mean: Option<Decimal>,
    pub std: Option<Decimal>,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    pub slope: Option<Decimal>,
}

/// Least squares of value against time in hours, population std, in exact arithmetic.
pub async fn trend(
    conn: &mut PgConnection,
    device_id: i64,
    metric: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<TrendRow, sqlx::Error> {
    sqlx::query_as(include_str!("trend.sql"))
        .bind(device_id)
        .bind(start)
        .bind(end)
        .bind(metric)
        .fetch_one(conn)
        .await
}

/// The metric with the most samples in the window (ties: by name).
pub async fn most_frequent_metric(
    conn: &mut PgConnection,
    device_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT metric FROM measurements WHERE device_id = $1 AND ts >= $2 AND ts < $3 \
         GROUP BY metric ORDER BY count(*) DESC, metric LIMIT 1",
    )
    .bind(device_id)
    .bind(start)
    .bind(end)
    .fetch_optional(conn)
    .await
}

/// (status, count) of the status reports in the window.
pub async fn status_counts(
    conn: &mut PgConnection,
    device_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, count(*) FROM device_status_history \
         WHERE device_id = $1 AND reported_at >= $2 AND reported_at < $3 \
         GROUP BY status ORDER BY status",
    )
    .bind(device_id)
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

/// Stores an analysis as it was answered; returns its id.
pub async fn record_analysis(
    store: &EventStore,
    metadata: EventMetadata,
    analysis: domain::Analysis,
    now: DateTime<Utc>,
) -> Result<i64, CommandError<()>> {
    let mut uow = store.begin(metadata).await?;
    let result_id = next_id(uow.conn(), "analysis_result_id_seq").await?;
    let events = domain::decide_record_analysis(result_id, analysis, now);
    uow.stage(
        &ReportEvent::stream_id(result_id),
        ExpectedVersion::NoStream,
        &events,
    );
    uow.commit::<()>().await?;
    Ok(result_id)
}
