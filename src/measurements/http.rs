//! Seed 004 telemetry under `/api/devices/{id}/`: `POST measurements/` and
//! `GET aggregated-data/` (DRF shapes; visibility as for device reads).

use super::domain::{self, Actor, DeviceFacts, SampleInput, TelemetryError};
use super::RecordError;
use crate::auth::Caller;
use crate::devices::views;
use crate::http::{ApiError, Json, Namespace};
use crate::openapi::{tags, DrfError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use fleetstream_events::{EventMetadata, TelemetrySample};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

const NS: Namespace = Namespace::Drf;

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn meta(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

/// DRF's datetime output: seconds, with the fraction only when there is one, `Z` for UTC.
pub fn drf_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `NUMERIC(20,10)` as DRF renders a `DecimalField`: a string with ten places.
pub fn drf_decimal(value: Decimal) -> String {
    format!("{value:.10}")
}

/// Keeps a field's raw JSON text even when it is `null`, so a number reaches the decimal
/// parser as written (never through `f64`).
fn raw_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// The body of `POST /api/devices/{id}/measurements/`.
#[derive(Debug, Default, Deserialize)]
pub struct MeasurementBody {
    #[serde(default, deserialize_with = "raw_field")]
    pub metric: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "raw_field")]
    pub value: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "raw_field")]
    pub unit: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "raw_field")]
    pub timestamp: Option<Box<RawValue>>,
}

// The body of `POST measurements/` as the document shows it: the handler reads it as
// [`MeasurementBody`], so each field gets DRF's own message.
/// A new measurement. Texts are trimmed: what is left is 1–50 characters (`metric`) or at most
/// 20 (`unit`; blank is none).
#[derive(ToSchema)]
#[schema(as = MeasurementWrite)]
#[allow(dead_code)]
pub struct MeasurementWrite {
    #[schema(value_type = MetricText)]
    metric: String,
    #[schema(value_type = DecimalValue)]
    value: String,
    #[schema(value_type = Option<UnitText>)]
    unit: Option<String>,
    /// Between 2000-01-01 and one day from now; default now. Without an offset it is UTC.
    #[schema(value_type = Timestamp, required = false)]
    timestamp: Option<String>,
}

/// A text of 1–50 characters once trimmed; a number is taken as its text.
pub struct MetricText;

impl utoipa::PartialSchema for MetricText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(json!({
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\S([\s\S]{0,48}\S)?\s*$"},
                {"type": "number"}
            ]
        }))
    }
}

impl ToSchema for MetricText {}

/// At most 20 characters once trimmed; a number is taken as its text.
pub struct UnitText;

impl utoipa::PartialSchema for UnitText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(json!({
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\S([\s\S]{0,18}\S)?)?\s*$"},
                {"type": "number"}
            ]
        }))
    }
}

impl ToSchema for UnitText {}

/// A decimal as `NUMERIC(20,10)` holds it (DRF's `DecimalField(max_digits=20,
/// decimal_places=10)` rules, `domain::check_decimal`): a JSON number, read as written and never
/// through a double, or a string holding one. The bounds say "at most 10 digits before the
/// point"; JSON Schema cannot count the digits after it.
pub struct DecimalValue;

impl utoipa::PartialSchema for DecimalValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(json!({
            "description": "A decimal of at most 20 digits, at most 10 of them before the point \
                and 10 after it: a JSON number (read as written) or a string holding one.",
            "anyOf": [
                {"type": "number", "exclusiveMinimum": -10_000_000_000_i64, "exclusiveMaximum": 10_000_000_000_i64},
                {"type": "string"}
            ]
        }))
    }
}

impl ToSchema for DecimalValue {}

/// An instant as `domain::parse_timestamp` reads it: ISO 8601 with an offset, or without one
/// (UTC). Seed 004 measurements and seed 002 analytics windows.
pub struct Timestamp;

/// The forms without an offset that `domain::parse_timestamp` reads (days up to 28, so every
/// month has them): `T` with or without seconds, or a space with seconds.
const LOCAL_DATE_TIME: &str = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?| ([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?)$";

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(json!({
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": LOCAL_DATE_TIME}
            ]
        }))
    }
}

impl ToSchema for Timestamp {}

/// The body, parsed only once the caller may write (DRF checks permissions first).
fn read_body(bytes: &[u8]) -> Result<MeasurementBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(MeasurementBody::default());
    }
    let parse_error = || ApiError::detail(StatusCode::BAD_REQUEST, "JSON parse error");
    let raw: &RawValue = serde_json::from_slice(bytes).map_err(|_| parse_error())?;
    // Serde would take an array as the struct's fields in order; DRF wants an object.
    match raw.get().as_bytes().first() {
        Some(b'{') => serde_json::from_str(raw.get()).map_err(|_| parse_error()),
        _ if raw.get() == "null" => Ok(MeasurementBody::default()),
        _ => Err(ApiError::with_body(
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary."]}),
        )),
    }
}

/// A stored measurement as seed 004 shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Measurement)]
pub struct MeasurementView {
    pub id: i64,
    /// The device's id.
    pub device: i64,
    pub metric: String,
    /// Ten decimal places (`"25.5000000000"`).
    #[schema(pattern = r"^-?\d+\.\d{10}$")]
    pub value: String,
    pub unit: Option<String>,
    /// UTC (`2025-11-02T10:30:00Z`).
    pub timestamp: String,
}

impl MeasurementView {
    pub fn of(device: i64, s: &TelemetrySample) -> Self {
        Self {
            id: s.id,
            device,
            metric: s.metric.clone(),
            value: drf_decimal(s.value),
            unit: s.unit.clone(),
            timestamp: drf_datetime(s.timestamp),
        }
    }
}

/// Field errors of a body, every field at once (as DRF reports them).
fn parse_body(body: MeasurementBody) -> Result<SampleInput, ApiError> {
    let mut errors = Map::new();
    let mut fail = |field: &str, msg: &str| {
        errors.insert(field.to_owned(), json!([msg]));
    };
    let text = |raw: &RawValue| -> Option<String> {
        match serde_json::from_str::<Value>(raw.get()).ok()? {
            Value::String(s) => Some(s),
            Value::Number(_) => Some(raw.get().to_owned()),
            _ => None,
        }
    };
    let metric = match body.metric.as_deref() {
        None => {
            fail("metric", "This field is required.");
            None
        }
        Some(raw) if raw.get() == "null" => {
            fail("metric", "This field may not be null.");
            None
        }
        Some(raw) => match text(raw) {
            Some(s) => Some(s),
            None => {
                fail("metric", "Not a valid string.");
                None
            }
        },
    };
    let value = match body.value.as_deref() {
        None => {
            fail("value", "This field is required.");
            None
        }
        Some(raw) if raw.get() == "null" => {
            fail("value", "This field may not be null.");
            None
        }
        Some(raw) => match text(raw).as_deref().and_then(domain::parse_decimal) {
            Some(v) => Some(v),
            None => {
                fail("value", "A valid number is required.");
                None
            }
        },
    };
    let timestamp = match body.timestamp.as_deref() {
        None => None,
        Some(raw) if raw.get() == "null" => {
            fail("timestamp", "This field may not be null.");
            None
        }
        Some(raw) => match text(raw).as_deref().and_then(domain::parse_timestamp) {
            Some(t) => Some(t),
            None => {
                fail("timestamp", domain::DATETIME_FORMAT_ERROR);
                None
            }
        },
    };
    let unit = match body.unit.as_deref() {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) => match text(raw) {
            Some(s) => Some(s),
            None => {
                fail("unit", "Not a valid string.");
                None
            }
        },
    };
    match (metric, value) {
        (Some(metric), Some(value)) if errors.is_empty() => Ok(SampleInput {
            metric,
            value,
            unit,
            timestamp,
        }),
        _ => Err(ApiError::with_body(
            StatusCode::BAD_REQUEST,
            Value::Object(errors),
        )),
    }
}

fn device_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(NS))
}

async fn visible(state: &AppState, caller: &Caller, id: i64) -> Result<DeviceFacts, ApiError> {
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    views::visible_owner(&mut conn, id, caller.account_id, caller.is_manager())
        .await
        .map_err(internal)?
        .map(|(device_id, owner_id)| DeviceFacts {
            device_id,
            owner_id,
        })
        .ok_or_else(|| ApiError::not_found(NS))
}

fn record_error(err: RecordError) -> ApiError {
    match err {
        RecordError::Domain(TelemetryError::DeviceNotFound) => ApiError::not_found(NS),
        RecordError::Domain(TelemetryError::Forbidden) => ApiError::detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        ),
        RecordError::Domain(TelemetryError::Invalid(field, msg)) => {
            ApiError::validation(NS, &[field], msg, "invalid")
        }
        RecordError::Failed(m) => internal(m),
    }
}

// The reply is built from the command's own event (the read model is async).
/// Records a measurement; managers and above, and the device's owner.
#[utoipa::path(post, path = "/api/devices/{id}/measurements/", tag = tags::DRF, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")), request_body = MeasurementWrite,
    responses((status = 201, body = MeasurementView),
        (status = 403, description = "You do not have permission to perform this action.", body = DrfError),
        (status = 404, description = "Not found.", body = DrfError)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let id = device_id(&id)?;
    let device = visible(&state, &caller, id).await?;
    let actor = Actor {
        account_id: caller.account_id,
        is_manager: caller.is_manager(),
    };
    domain::authorize_record(Some(device), actor)
        .map_err(|e| record_error(RecordError::Domain(e)))?;
    let input = parse_body(read_body(&body)?)?;
    let done = super::record(
        &state.telemetry,
        meta(&caller),
        Some(device),
        actor,
        vec![input],
    )
    .await
    .map_err(record_error)?;
    let sample = done
        .samples
        .first()
        .ok_or_else(|| internal("a recording stored no sample"))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(MeasurementView::of(id, sample)),
    )
        .into_response())
}

#[derive(Debug, sqlx::FromRow)]
struct MeasurementRow {
    id: i64,
    device_id: i64,
    metric: String,
    value: Decimal,
    unit: Option<String>,
    ts: DateTime<Utc>,
}

/// mean / max / min of seed 004: rounded half away from zero to 2 places, in decimals; null
/// without measurements.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MeasurementStatistics)]
pub struct Statistics {
    #[serde(with = "rust_decimal::serde::float_option")]
    #[schema(value_type = Option<f64>)]
    pub mean: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::float_option")]
    #[schema(value_type = Option<f64>)]
    pub max: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::float_option")]
    #[schema(value_type = Option<f64>)]
    pub min: Option<Decimal>,
}

/// The newest 100 measurements of a device, newest first, and their statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregatedData {
    pub measurements: Vec<MeasurementView>,
    pub statistics: Statistics,
    pub count: usize,
}

fn round2(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

pub fn statistics(values: &[Decimal]) -> Statistics {
    if values.is_empty() {
        return Statistics {
            mean: None,
            max: None,
            min: None,
        };
    }
    let sum: Decimal = values.iter().copied().sum();
    Statistics {
        mean: Some(round2(sum / Decimal::from(values.len()))),
        max: values.iter().copied().max().map(round2),
        min: values.iter().copied().min().map(round2),
    }
}

/// The newest 100 measurements of a device, newest first.
pub const AGGREGATED_SQL: &str = "SELECT id, device_id, metric, value, unit, ts FROM measurements \
    WHERE device_id = $1 ORDER BY ts DESC, id DESC LIMIT 100";

/// The device's newest 100 measurements, newest first, with their mean, max and min.
#[utoipa::path(get, path = "/api/devices/{id}/aggregated-data/", tag = tags::DRF, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 200, body = AggregatedData),
        (status = 404, description = "Not found.", body = DrfError)))]
pub async fn aggregated_data(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AggregatedData>, ApiError> {
    let id = device_id(&id)?;
    visible(&state, &caller, id).await?;
    let rows: Vec<MeasurementRow> = sqlx::query_as(AGGREGATED_SQL)
        .bind(id)
        .fetch_all(state.pool())
        .await
        .map_err(internal)?;
    let values: Vec<Decimal> = rows.iter().map(|r| r.value).collect();
    let measurements: Vec<MeasurementView> = rows
        .into_iter()
        .map(|r| MeasurementView {
            id: r.id,
            device: r.device_id,
            metric: r.metric,
            value: drf_decimal(r.value),
            unit: r.unit,
            timestamp: drf_datetime(r.ts),
        })
        .collect();
    Ok(Json(AggregatedData {
        count: measurements.len(),
        statistics: statistics(&values),
        measurements,
    }))
}
