//! Seed 002 `/api/v1/analytics`. Paths take the integer id or the `device_uid`; replies carry
//! `device_id` = the device_uid. `telemetry` is for managers and above (the seed's RBAC); the
//! device analyses follow the device visibility rule; `results` lists what the caller may see.

use super::domain::{self, Agg, AnalyticsError, Interval};
use crate::alerts::http::{page, MAX_LIMIT};
use crate::auth::Caller;
use crate::devices::views::{self, iso, DeviceRow, VISIBLE};
use crate::http::{ApiError, Json, Namespace, Query};
use crate::measurements::domain::parse_timestamp;
use crate::measurements::http::Timestamp;
use crate::openapi::{tags, Detail};
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
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

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

/// `<n><s|m|h|d>`, n ≥ 1, at most 366 days.
pub struct IntervalText;

impl utoipa::PartialSchema for IntervalText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(
            json!({"type": "string", "pattern": r"^\s*0*[1-9]\d*[smhd]\s*$"}),
        )
    }
}

impl ToSchema for IntervalText {}

/// The window must hold at most 10 000 intervals and `end` be after `start`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TelemetryQuery {
    #[serde(default)]
    #[param(required = true, value_type = Timestamp, inline)]
    pub start: Option<String>,
    /// After `start`.
    #[serde(default)]
    #[param(required = true, value_type = Timestamp, inline)]
    pub end: Option<String>,
    /// Bucket width `<n><s|m|h|d>` (default `1h`; at most 366 days).
    #[serde(default)]
    #[param(value_type = Option<IntervalText>, inline)]
    pub interval: Option<String>,
    /// `avg` (default), `min`, `max`, `sum` or `count`.
    #[serde(default)]
    #[param(value_type = Option<AggName>, inline)]
    pub agg: Option<String>,
    /// An IANA time zone for day buckets (default UTC).
    #[serde(default)]
    pub tz: Option<String>,
}

/// `avg`, `min`, `max`, `sum` or `count`.
pub struct AggName;

impl utoipa::PartialSchema for AggName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(
            json!({"type": "string", "enum": ["avg", "min", "max", "sum", "count"]}),
        )
    }
}

impl ToSchema for AggName {}

/// One bucket: `timestamp` (UTC without an offset) and the value of each metric.
pub struct TelemetryRecord;

impl utoipa::PartialSchema for TelemetryRecord {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(json!({
            "type": "object",
            "required": ["timestamp"],
            "properties": {"timestamp": {"type": "string"}},
            "additionalProperties": {"type": "number"}
        }))
    }
}

impl ToSchema for TelemetryRecord {}

/// Seed 002 telemetry series of a device.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TelemetrySeries)]
pub struct TelemetryReply {
    /// The device_uid.
    pub device_id: String,
    pub interval: String,
    pub agg: String,
    /// One per non-empty bucket, oldest first.
    #[schema(value_type = Vec<TelemetryRecord>)]
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

/// The device's measurements aggregated per interval; managers and above.
///
/// Buckets are aligned to the UTC epoch (day buckets to midnight in `tz`); empty ones are
/// left out. The window must hold at most 10 000 intervals.
#[utoipa::path(get, path = "/api/v1/analytics/telemetry/{device_id}", tag = tags::CORE,
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The integer id or the device_uid"), TelemetryQuery),
    responses((status = 200, body = TelemetryReply),
        (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Device not found", body = Detail)))]
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

/// The window (default: the 24 hours before `end`, which defaults to now); `end` must be after
/// `start`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    #[serde(default)]
    #[param(value_type = Option<Timestamp>, inline)]
    pub start: Option<String>,
    /// After `start`; default now.
    #[serde(default)]
    #[param(value_type = Option<Timestamp>, inline)]
    pub end: Option<String>,
    /// The metric of the trend (default: the most frequent in the window).
    #[serde(default)]
    pub metric: Option<String>,
}

/// `POST /reports`: as [`WindowQuery`], but `start` and `end` are required.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportQuery {
    #[param(value_type = Timestamp, inline)]
    start: String,
    /// After `start`.
    #[param(value_type = Timestamp, inline)]
    end: String,
    /// The metric of the trend (default: the most frequent in the window).
    metric: Option<String>,
}

/// The status reports of a device in a window.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatusSummary {
    total_events: i64,
    /// Reports per status (`online`, `offline`).
    status_counts: BTreeMap<String, i64>,
    /// Online reports / all reports, 4 places; null without any.
    uptime_ratio: Option<f64>,
}

/// `GET /analytics/status/{device_id}` (stored as a `status` analysis).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatusAnalysis {
    /// The device_uid.
    device_id: String,
    total_events: i64,
    /// Reports per status (`online`, `offline`).
    status_counts: BTreeMap<String, i64>,
    /// Online reports / all reports, 4 places; null without any.
    uptime_ratio: Option<f64>,
}

/// The least-squares trend of one metric in a window (slope per hour).
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
pub struct TrendSummary {
    /// Null when the window has no measurement.
    metric: Option<String>,
    count: i64,
    mean: Option<f64>,
    /// Population standard deviation.
    std: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    slope: Option<f64>,
    #[schema(pattern = "^(increasing|decreasing|stable)$")]
    trend: String,
}

/// `GET /analytics/trends/{device_id}` (stored as a `trend` analysis).
#[derive(ToSchema, serde::Serialize)]
#[allow(dead_code)]
pub struct TrendAnalysis {
    /// The device_uid.
    device_id: String,
    #[serde(flatten)]
    summary: TrendSummary,
}

/// `POST /analytics/reports/{device_id}`: status and trend, stored as a `report` analysis.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReportAnalysis {
    /// The id of the stored result.
    report_id: String,
    /// The device_uid.
    device_id: String,
    status: StatusSummary,
    trends: TrendSummary,
    /// UTC without an offset.
    created_at: String,
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

/// The device's status reports in the window, stored as a `status` analysis.
///
/// The window defaults to the 24 hours before `end` (default now). Devices the caller may not
/// see are not found.
#[utoipa::path(get, path = "/api/v1/analytics/status/{device_id}", tag = tags::CORE,
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The integer id or the device_uid"), WindowQuery),
    responses((status = 200, body = StatusAnalysis),
        (status = 404, description = "Device not found", body = Detail)))]
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

/// The least-squares trend of a metric in the window, stored as a `trend` analysis.
///
/// The window defaults to the 24 hours before `end` (default now); the metric to the most
/// frequent in it. Devices the caller may not see are not found.
#[utoipa::path(get, path = "/api/v1/analytics/trends/{device_id}", tag = tags::CORE,
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The integer id or the device_uid"), WindowQuery),
    responses((status = 200, body = TrendAnalysis),
        (status = 404, description = "Device not found", body = Detail)))]
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

/// Status and trend of the device in the window, stored as a `report` analysis (200).
///
/// Devices the caller may not see are not found.
#[utoipa::path(post, path = "/api/v1/analytics/reports/{device_id}", tag = tags::CORE,
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The integer id or the device_uid"), ReportQuery),
    responses((status = 200, body = ReportAnalysis),
        (status = 404, description = "Device not found", body = Detail)))]
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

/// `report`, `status` or `trend`.
pub struct AnalysisTypeName;

impl utoipa::PartialSchema for AnalysisTypeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(
            json!({"type": "string", "enum": ["report", "status", "trend"]}),
        )
    }
}

impl ToSchema for AnalysisTypeName {}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    #[serde(default)]
    #[param(required = true, value_type = AnalysisTypeName, inline)]
    pub analysis_type: Option<String>,
    /// The integer id or the device_uid; a device the caller may not see has no results.
    #[serde(default)]
    pub device_id: Option<String>,
    /// Results to skip (default 0).
    #[serde(default)]
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// At most this many (default 20, at most 200).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A stored analysis.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = AnalysisResult)]
pub struct ResultRow {
    pub id: i64,
    #[schema(pattern = "^(report|status|trend)$")]
    pub analysis_type: String,
    /// The device_uid.
    #[sqlx(rename = "device_uid")]
    pub device_id: String,
    /// The window (`start`, `end`) and, for trends and reports, the `metric`.
    #[schema(value_type = Object)]
    pub params: Value,
    /// The analysis as it was answered (a report's without its `report_id`).
    #[schema(value_type = Object)]
    pub result: Value,
    /// UTC without an offset.
    #[serde(serialize_with = "iso_ser")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
}

fn iso_ser<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(*at))
}

/// Stored analyses of the devices the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/analytics/results", tag = tags::CORE, security(("bearer" = [])),
    params(ResultsQuery), responses((status = 200, body = Vec<ResultRow>)))]
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
