//! Seed 002 `/api/v1/analytics`. Paths take the integer id or the `device_uid`; replies carry
//! `device_id` = the device_uid. `telemetry` is for managers and above (the seed's RBAC); the
//! device analyses follow the device visibility rule; `results` lists what the caller may see.

use super::domain::{self, Agg, AnalyticsError, Interval};
use crate::alerts::http::{page, MAX_LIMIT};
use crate::auth::Caller;
use crate::devices::views::{self, iso, DeviceRow, VISIBLE};
use crate::http::{ApiError, Json, Namespace, Query};
use crate::measurements::domain::parse_timestamp;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use fleetstream_events::{AnalysisType, EventMetadata};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;

const NS: Namespace = Namespace::Core;

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn meta(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

fn not_found() -> ApiError {
    ApiError::detail(StatusCode::NOT_FOUND, "Device not found")
}

fn invalid(err: AnalyticsError) -> ApiError {
    let AnalyticsError::Invalid(field, msg, kind) = err;
    ApiError::validation(NS, &["query", field], msg, kind)
}

/// A device by integer id, else by device_uid, if the caller may see it.
async fn device(
    conn: &mut PgConnection,
    caller: &Caller,
    key: &str,
) -> Result<DeviceRow, ApiError> {
    if let Ok(id) = key.parse::<i64>() {
        if let Some(row) = views::visible_by_id(conn, id, caller.account_id, caller.is_manager())
            .await
            .map_err(internal)?
        {
            return Ok(row);
        }
    }
    let row = views::by_unique_id(conn, key).await.map_err(internal)?;
    match row {
        Some(row) => views::visible_by_id(conn, row.id, caller.account_id, caller.is_manager())
            .await
            .map_err(internal)?
            .ok_or_else(not_found),
        None => Err(not_found()),
    }
}

fn datetime(field: &'static str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    parse_timestamp(raw).ok_or_else(|| {
        ApiError::validation(
            NS,
            &["query", field],
            "Input should be a valid datetime",
            "datetime_parsing",
        )
    })
}

fn required(field: &'static str, raw: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    match raw {
        Some(raw) => datetime(field, raw),
        None => Err(ApiError::validation(
            NS,
            &["query", field],
            "Field required",
            "missing",
        )),
    }
}

/// Optional window, defaulting to the 24 hours before now.
fn window(
    start: Option<&str>,
    end: Option<&str>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let end = end
        .map(|e| datetime("end", e))
        .transpose()?
        .unwrap_or_else(Utc::now);
    let start = start
        .map(|s| datetime("start", s))
        .transpose()?
        .unwrap_or(end - Duration::hours(24));
    if end <= start {
        return Err(invalid(AnalyticsError::Invalid(
            "end",
            "end must be after start".into(),
            "value_error",
        )));
    }
    Ok((start, end))
}

/// A JSON number: integral values as integers, others as the nearest double.
fn number(v: Decimal) -> Value {
    let v = v.normalize();
    if v.scale() == 0 {
        if let Some(i) = v.to_i64() {
            return Value::from(i);
        }
    }
    v.to_f64().map_or(Value::Null, Value::from)
}

fn opt_number(v: Option<Decimal>) -> Value {
    v.map_or(Value::Null, number)
}

#[derive(Debug, Deserialize)]
pub struct TelemetryQuery {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub agg: Option<String>,
    #[serde(default)]
    pub tz: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TelemetryReply {
    pub device_id: String,
    pub interval: String,
    pub agg: String,
    pub records: Vec<Map<String, Value>>,
    pub count: usize,
}

async fn known_zone(conn: &mut PgConnection, tz: &str) -> Result<bool, ApiError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
        .bind(tz)
        .fetch_one(conn)
        .await
        .map_err(internal)
}

/// The records of a series: one per bucket, `timestamp` plus one key per metric.
pub fn records(rows: &[super::BucketRow], agg: Agg) -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    let mut last: Option<DateTime<Utc>> = None;
    for (bucket, metric, value) in super::values(rows, agg) {
        if last != Some(bucket) {
            let mut record = Map::new();
            record.insert("timestamp".into(), Value::String(iso(bucket)));
            out.push(record);
            last = Some(bucket);
        }
        if let Some(record) = out.last_mut() {
            record.insert(metric, number(value));
        }
    }
    out
}

/// `GET /api/v1/analytics/telemetry/{device_id}`.
pub async fn telemetry(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<TelemetryQuery>,
) -> Result<Json<TelemetryReply>, ApiError> {
    crate::alerts::http::require_manager(&caller)?;
    let start = required("start", q.start.as_deref())?;
    let end = required("end", q.end.as_deref())?;
    let interval_raw = q.interval.clone().unwrap_or_else(|| "1h".into());
    let interval: Interval = domain::parse_interval(&interval_raw).map_err(invalid)?;
    let agg = Agg::parse(q.agg.as_deref().unwrap_or("avg")).map_err(invalid)?;
    domain::check_window(start, end, interval).map_err(invalid)?;
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let tz = match q.tz.as_deref().map(str::trim) {
        None | Some("") | Some("UTC") => None,
        Some(tz) => {
            if !known_zone(&mut conn, tz).await? {
                return Err(ApiError::validation(
                    NS,
                    &["query", "tz"],
                    "Unknown time zone",
                    "value_error",
                ));
            }
            Some(tz.to_owned())
        }
    };
    let device = device(&mut conn, &caller, &key).await?;
    // Only day buckets are local; shorter ones stay on the UTC epoch grid.
    let tz = tz.filter(|_| interval.days);
    let source = domain::choose_source(interval, tz.is_some());
    let rows = super::series(
        &mut conn,
        device.id,
        start,
        end,
        interval,
        tz.as_deref(),
        source,
    )
    .await
    .map_err(internal)?;
    metrics::counter!("fleet_analytics_queries_total", "source" => format!("{source:?}"))
        .increment(1);
    let records = records(&rows, agg);
    Ok(Json(TelemetryReply {
        device_id: device.unique_id,
        interval: interval_raw,
        agg: q.agg.unwrap_or_else(|| "avg".into()),
        count: records.len(),
        records,
    }))
}

#[derive(Debug, Deserialize)]
pub struct WindowQuery {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
}

fn window_params(start: DateTime<Utc>, end: DateTime<Utc>, metric: Option<&str>) -> Value {
    let mut p = json!({"start": iso(start), "end": iso(end)});
    if let Some(m) = metric {
        p["metric"] = Value::String(m.to_owned());
    }
    p
}

async fn status_result(
    conn: &mut PgConnection,
    device: &DeviceRow,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let counts = super::status_counts(conn, device.id, start, end)
        .await
        .map_err(internal)?;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let online = counts
        .iter()
        .find(|(s, _)| s == "online")
        .map_or(0, |(_, n)| *n);
    let status_counts: Map<String, Value> = counts
        .into_iter()
        .map(|(s, n)| (s, Value::from(n)))
        .collect();
    Ok(json!({
        "total_events": total,
        "status_counts": status_counts,
        "uptime_ratio": opt_number(domain::uptime_ratio(online, total)),
    }))
}

async fn trend_result(
    state: &AppState,
    conn: &mut PgConnection,
    device: &DeviceRow,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    metric: Option<String>,
) -> Result<(Option<String>, Value), ApiError> {
    let metric = match metric {
        Some(m) => Some(m),
        None => super::most_frequent_metric(conn, device.id, start, end)
            .await
            .map_err(internal)?,
    };
    let row = match &metric {
        Some(m) => super::trend(conn, device.id, m, start, end)
            .await
            .map_err(internal)?,
        None => super::TrendRow {
            count: 0,
            mean: None,
            std: None,
            min: None,
            max: None,
            slope: None,
        },
    };
    let round = |v: Option<Decimal>, dp| v.map(|v| v.round_dp(dp));
    Ok((
        metric.clone(),
        json!({
            "metric": metric,
            "count": row.count,
            "mean": opt_number(round(row.mean, 4)),
            "std": opt_number(round(row.std, 4)),
            "min": opt_number(row.min),
            "max": opt_number(row.max),
            "slope": opt_number(round(row.slope, 6)),
            "trend": domain::classify_trend(row.slope, state.config.trend_slope),
        }),
    ))
}

async fn store(
    state: &AppState,
    caller: &Caller,
    kind: AnalysisType,
    device: &DeviceRow,
    params: Value,
    result: &Value,
    now: DateTime<Utc>,
) -> Result<i64, ApiError> {
    let analysis = domain::Analysis {
        analysis_type: kind,
        device_id: device.id,
        device_uid: device.unique_id.clone(),
        params,
        result: result.clone(),
    };
    super::record_analysis(&state.store, meta(caller), analysis, now)
        .await
        .map_err(internal)
}

/// `GET /api/v1/analytics/status/{device_id}`: status reports in the window (default: the
/// last 24 hours), stored as a `status` analysis.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    let (start, end) = window(q.start.as_deref(), q.end.as_deref())?;
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let device = device(&mut conn, &caller, &key).await?;
    let mut reply = status_result(&mut conn, &device, start, end).await?;
    reply["device_id"] = Value::String(device.unique_id.clone());
    let now = Utc::now();
    store(
        &state,
        &caller,
        AnalysisType::Status,
        &device,
        window_params(start, end, None),
        &reply,
        now,
    )
    .await?;
    Ok(Json(reply))
}

/// `GET /api/v1/analytics/trends/{device_id}`, stored as a `trend` analysis.
pub async fn trends(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    let (start, end) = window(q.start.as_deref(), q.end.as_deref())?;
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let device = device(&mut conn, &caller, &key).await?;
    let (metric, mut reply) =
        trend_result(&state, &mut conn, &device, start, end, q.metric.clone()).await?;
    reply["device_id"] = Value::String(device.unique_id.clone());
    let now = Utc::now();
    store(
        &state,
        &caller,
        AnalysisType::Trend,
        &device,
        window_params(start, end, metric.as_deref()),
        &reply,
        now,
    )
    .await?;
    Ok(Json(reply))
}

/// `POST /api/v1/analytics/reports/{device_id}?start&end` → 200: status + trends, stored.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    let start = required("start", q.start.as_deref())?;
    let end = required("end", q.end.as_deref())?;
    let (start, end) = window(Some(&iso(start)), Some(&iso(end)))?;
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let device = device(&mut conn, &caller, &key).await?;
    let status = status_result(&mut conn, &device, start, end).await?;
    let (metric, trends) =
        trend_result(&state, &mut conn, &device, start, end, q.metric.clone()).await?;
    drop(conn);
    let now = Utc::now();
    // The id is taken with the append, so the stored result holds everything but `report_id`.
    let mut reply = json!({
        "device_id": device.unique_id,
        "status": status,
        "trends": trends,
        "created_at": iso(now),
    });
    let id = store(
        &state,
        &caller,
        AnalysisType::Report,
        &device,
        window_params(start, end, metric.as_deref()),
        &reply,
        now,
    )
    .await?;
    reply["report_id"] = Value::String(id.to_string());
    Ok(Json(reply))
}

#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    #[serde(default)]
    pub analysis_type: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub skip: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ResultRow {
    pub id: i64,
    pub analysis_type: String,
    #[sqlx(rename = "device_uid")]
    pub device_id: String,
    pub params: Value,
    pub result: Value,
    #[serde(serialize_with = "iso_ser")]
    pub created_at: DateTime<Utc>,
}

fn iso_ser<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(*at))
}

/// `GET /api/v1/analytics/results?analysis_type&device_id&skip&limit`, newest first.
pub async fn results(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ResultsQuery>,
) -> Result<Json<Vec<ResultRow>>, ApiError> {
    let kind = match q.analysis_type.as_deref() {
        None => {
            return Err(ApiError::validation(
                NS,
                &["query", "analysis_type"],
                "Field required",
                "missing",
            ))
        }
        Some(raw) => domain::parse_analysis_type(raw.trim()).map_err(invalid)?,
    };
    let (skip, limit) = page(q.skip, q.limit, 20, MAX_LIMIT)?;
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let device_id = match q.device_id.as_deref() {
        None => None,
        Some(key) => match device(&mut conn, &caller, key).await {
            Ok(d) => Some(d.id),
            Err(_) => return Ok(Json(Vec::new())),
        },
    };
    let rows: Vec<ResultRow> = sqlx::query_as(&format!(
        "SELECT r.id, r.analysis_type, r.device_uid, r.params, r.result, r.created_at \
         FROM analysis_results r JOIN devices d ON d.id = r.device_id \
         WHERE r.analysis_type = $4 AND ($5::bigint IS NULL OR r.device_id = $5) AND ({VISIBLE}) \
         ORDER BY r.created_at DESC, r.id DESC OFFSET $1 LIMIT $6"
    ))
    .bind(skip)
    .bind(caller.account_id)
    .bind(caller.is_manager())
    .bind(kind.as_str())
    .bind(device_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(internal)?;
    Ok(Json(rows))
}
