//! `POST /api/sync/push`, `POST /api/sync/pull`, `GET /api/sync/status` (seed 003 shapes).
//! Bodies are read as JSON values and validated here, so each missing part gets the seed's
//! own message rather than a generic deserializer error.

use super::cursor::Cursor;
use super::domain::{LogPull, PushRecording, SessionInput, SyncError};
use super::read::{self, PullFilter};
use crate::auth::Caller;
use crate::es::CommandError;
use crate::http::{ApiError, Json, Namespace};
use crate::openapi::{tags, KoodtxError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDateTime, Utc};
use fleetstream_events::{
    encoded_len, EventMetadata, SensorSample, MAX_SAMPLE_BYTES, MAX_SENSOR_TYPE_CHARS,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

const NS: Namespace = Namespace::KooDtx;

/// Bounds on the session part of a push: it travels in the log with every push.
const MAX_SESSION_ID_CHARS: usize = 128;
const MAX_NOTES_CHARS: usize = 4096;
const MAX_ENABLED_SENSORS: usize = 64;

fn bad_request(message: &str) -> ApiError {
    ApiError::error(StatusCode::BAD_REQUEST, message)
}

fn invalid_format() -> ApiError {
    bad_request("Invalid request format")
}

fn forbidden() -> ApiError {
    ApiError::error(StatusCode::FORBIDDEN, "Forbidden")
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn content_length(headers: &HeaderMap) -> i64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn metadata(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

/// ISO 8601 as clients send it: with an offset or `Z`, or without one (taken as UTC).
pub fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
    .map(|t| t.and_utc())
}

fn format_time(t: DateTime<Utc>) -> String {
    crate::http::time::format(Namespace::KooDtx, t)
}

fn optional<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

fn parse_session(session: &Map<String, Value>) -> Result<SessionInput, ApiError> {
    let session_id = match optional(session, "session_id") {
        Some(Value::String(s)) if s.chars().count() > MAX_SESSION_ID_CHARS => {
            return Err(invalid_format())
        }
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(_)) | None => {
            return Err(bad_request("Missing session_id or start_time"))
        }
        Some(_) => return Err(invalid_format()),
    };
    let start_time = match optional(session, "start_time") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            parse_time(s).ok_or_else(invalid_format)?
        }
        Some(Value::String(_)) | None => {
            return Err(bad_request("Missing session_id or start_time"))
        }
        Some(_) => return Err(invalid_format()),
    };
    let end_time = match optional(session, "end_time") {
        None => None,
        Some(Value::String(s)) => Some(parse_time(s).ok_or_else(invalid_format)?),
        Some(_) => return Err(invalid_format()),
    };
    let is_active = match optional(session, "is_active") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid_format()),
    };
    let enabled_sensors = match optional(session, "enabled_sensors") {
        None => None,
        Some(Value::Array(items)) if items.len() > MAX_ENABLED_SENSORS => {
            return Err(invalid_format())
        }
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| s.chars().count() <= MAX_SENSOR_TYPE_CHARS)
                        .map(str::to_owned)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(invalid_format)?,
        ),
        Some(_) => return Err(invalid_format()),
    };
    let sample_rate = match optional(session, "sample_rate") {
        None => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(invalid_format)?,
        ),
        Some(_) => return Err(invalid_format()),
    };
    let notes = match optional(session, "notes") {
        None => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_NOTES_CHARS => Some(s.clone()),
        Some(_) => return Err(invalid_format()),
    };
    Ok(SessionInput {
        session_id,
        start_time,
        end_time,
        is_active,
        enabled_sensors,
        sample_rate,
        notes,
    })
}

/// A well-formed sample, or `None` (counted in `errors`, like the original server). A sample
/// over the size bound is not well-formed: the log never holds one.
fn parse_sample(item: Value) -> Option<SensorSample> {
    let Value::Object(mut item) = item else {
        return None;
    };
    let sensor_type = match item.remove("sensor_type") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_SENSOR_TYPE_CHARS => s,
        _ => return None,
    };
    let timestamp = match item.get("timestamp") {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))?,
        _ => return None,
    };
    let data = match item.remove("data") {
        None | Some(Value::Null) => json!({}),
        Some(data) => data,
    };
    let sample = SensorSample {
        sensor_type,
        timestamp,
        data,
    };
    (encoded_len(&sample) <= MAX_SAMPLE_BYTES).then_some(sample)
}

/// One transaction: the session and its samples; identical samples count as duplicates,
/// changed ones as updates (last write wins).
#[utoipa::path(post, path = "/api/sync/push", tag = tags::KOODTX, security(("bearer" = [])),
    request_body = super::wire::PushBody,
    responses((status = 200, body = super::wire::PushReply),
        (status = 403, description = "The session belongs to another account", body = KoodtxError)))]
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let bytes = content_length(&headers);
    let Value::Object(mut body) = body else {
        return Err(invalid_format());
    };
    let (Some(Value::Object(session)), Some(Value::Array(items))) =
        (body.remove("session"), body.remove("sensor_data"))
    else {
        return Err(invalid_format());
    };
    let session = parse_session(&session)?;
    let total = items.len();
    let samples: Vec<SensorSample> = items.into_iter().filter_map(parse_sample).collect();
    let rejected = (total - samples.len()) as i64;
    let session_id = session.session_id.clone();
    let receipt = super::push(
        &state.store,
        metadata(&caller),
        PushRecording {
            account_id: caller.account_id,
            session,
            samples,
            rejected,
            bytes,
            sync_log_id: 0,
            now: super::now(),
        },
    )
    .await
    .map_err(|err| match err {
        CommandError::Domain(SyncError::Forbidden) => forbidden(),
        other => ApiError::command_failed(NS, other),
    })?;
    let c = receipt.counts;
    Ok(Json(json!({
        "message": "Sync completed successfully",
        "session_id": session_id,
        "total_records": c.total_records,
        "inserted": c.inserted,
        "updated": c.updated,
        "duplicates": c.duplicates,
        "errors": c.errors,
        "sync_log_id": receipt.sync_log_id,
        "session_data_count": receipt.session_data_count,
    })))
}

/// A page number as sent: an integer, or a string holding one.
fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

struct PullRequest {
    filter: PullFilter,
    page: i64,
    page_size: i64,
    include_data: bool,
}

fn parse_pull(caller: &Caller, body: Value) -> Result<PullRequest, ApiError> {
    let body = match body {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(invalid_format()),
    };
    let page = match optional(&body, "page") {
        None => 1,
        Some(v) => as_integer(v).ok_or_else(|| bad_request("Page must be >= 1"))?,
    };
    if page < 1 {
        return Err(bad_request("Page must be >= 1"));
    }
    let page_size = match optional(&body, "page_size") {
        None => 50,
        Some(v) => as_integer(v).unwrap_or(0),
    };
    if !(1..=100).contains(&page_size) {
        return Err(bad_request("Page size must be between 1 and 100"));
    }
    let include_data = match optional(&body, "include_data") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid_format()),
    };
    let session_ids = match optional(&body, "session_ids") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(invalid_format)?,
        ),
        Some(_) => return Err(invalid_format()),
    };
    let after = match optional(&body, "cursor") {
        None => None,
        Some(Value::String(token)) => {
            Some(Cursor::decode(token).ok_or_else(|| bad_request("Invalid cursor"))?)
        }
        Some(_) => return Err(bad_request("Invalid cursor")),
    };
    let invalid_time = || bad_request("Invalid last_sync_time format. Use ISO 8601.");
    let changed_since = match optional(&body, "last_sync_time") {
        None => None,
        Some(Value::String(s)) => Some(parse_time(s).ok_or_else(invalid_time)?),
        Some(_) => return Err(invalid_time()),
    };
    Ok(PullRequest {
        filter: PullFilter {
            owner_id: caller.account_id,
            session_ids,
            changed_since,
            after,
        },
        page,
        page_size,
        include_data,
    })
}

/// Sessions changed since `last_sync_time` (or after `cursor`), newest change first.
#[utoipa::path(post, path = "/api/sync/pull", tag = tags::KOODTX, security(("bearer" = [])),
    request_body(content = Option<super::wire::PullBody>, description = "All fields optional; no body is an empty one"),
    responses((status = 200, body = super::wire::PullReply),
        (status = 403, description = "A session of another account was asked for", body = KoodtxError)))]
pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let request_bytes = content_length(&headers);
    let request = parse_pull(&caller, body)?;
    // Taken before reading: a change committed during the read is newer than it.
    let server_timestamp = super::now();
    let filter = &request.filter;
    // One snapshot for the page and the cursor (see `read::next_cursor`).
    let mut tx = state
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(internal)?;
    if let Some(ids) = &filter.session_ids {
        if read::any_foreign(&mut tx, caller.account_id, ids)
            .await
            .map_err(internal)?
        {
            return Err(forbidden());
        }
    }
    let offset = (request.page - 1).saturating_mul(request.page_size);
    let rows = read::sessions_page(&mut tx, filter, request.page_size, offset)
        .await
        .map_err(internal)?;
    let total = match rows.first() {
        Some(row) => row.total,
        None => read::sessions_total(&mut tx, filter)
            .await
            .map_err(internal)?,
    };
    let next_cursor = read::next_cursor(&mut tx, filter)
        .await
        .map_err(internal)?
        .or(filter.after)
        .unwrap_or_default();
    let page_ids: Vec<String> = rows.iter().map(|r| r.session_id.clone()).collect();
    let samples = if request.include_data && !page_ids.is_empty() {
        read::samples_of(&mut tx, &page_ids)
            .await
            .map_err(internal)?
    } else {
        Vec::new()
    };
    tx.commit().await.map_err(internal)?;

    let sample_count = samples.len() as i64;
    let mut sensor_types = BTreeSet::new();
    let mut by_session: HashMap<String, Vec<Value>> = HashMap::new();
    for s in samples {
        if !sensor_types.contains(&s.sensor_type) {
            sensor_types.insert(s.sensor_type.clone());
        }
        by_session.entry(s.session_id).or_default().push(json!({
            "sensor_type": s.sensor_type,
            "timestamp": s.timestamp,
            "data": s.data,
        }));
    }
    let sessions: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let data = by_session.remove(&r.session_id).unwrap_or_default();
            json!({
                "session_id": r.session_id,
                "start_time": format_time(r.start_time),
                "end_time": r.end_time.map(format_time),
                "is_active": r.is_active,
                "enabled_sensors": r.enabled_sensors,
                "sample_rate": r.sample_rate,
                "data_count": r.data_count,
                "notes": r.notes,
                "is_uploaded": r.is_uploaded,
                "created_at": format_time(r.created_at),
                "updated_at": format_time(r.updated_at),
                "sensor_data": data,
            })
        })
        .collect();
    let sync_log_id = super::log_pull(
        &state.store,
        metadata(&caller),
        LogPull {
            account_id: caller.account_id,
            sync_log_id: 0,
            sessions: sessions.len() as i64,
            samples: sample_count,
            sensor_types: sensor_types.into_iter().collect(),
            bytes: request_bytes,
            now: server_timestamp,
        },
    )
    .await
    .map_err(internal)?;
    Ok(Json(json!({
        "sessions": sessions,
        "server_timestamp": format_time(server_timestamp),
        "page": request.page,
        "page_size": request.page_size,
        "total": total,
        "has_more": offset.saturating_add(request.page_size) < total,
        "sync_log_id": sync_log_id,
        "next_cursor": next_cursor.encode(),
    })))
}

#[utoipa::path(get, path = "/api/sync/status", tag = tags::KOODTX, security(("bearer" = [])),
    responses((status = 200, body = super::wire::StatusReply)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let counts = read::session_counts(&mut conn, caller.account_id)
        .await
        .map_err(internal)?;
    let recent = read::recent_syncs(&mut conn, caller.account_id)
        .await
        .map_err(internal)?;
    let recent: Vec<Value> = recent
        .into_iter()
        .map(|log| {
            json!({
                "id": log.id,
                "sync_type": log.sync_type,
                "status": log.status,
                "total_records": log.total_records,
                "inserted": log.inserted,
                "updated": log.updated,
                "duplicates": log.duplicates,
                "created_at": format_time(log.created_at),
            })
        })
        .collect();
    Ok(Json(json!({
        "total_sessions": counts.total_sessions,
        "active_sessions": counts.active_sessions,
        "uploaded_sessions": counts.uploaded_sessions,
        "recent_syncs": recent,
    })))
}
