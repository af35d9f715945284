//! `GET /api/v1/audit/{stream}` (core namespace, FastAPI shapes).

use super::{AuditError, Entry, Window};
use crate::auth::Caller;
use crate::http::{ApiError, Json, Namespace, Path, Query};
use crate::openapi::{tags, Detail};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const NS: Namespace = Namespace::Core;
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries recorded at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only entries recorded at or before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Only entries after this stream version: the previous page's `next_after`.
    #[param(minimum = 0)]
    after: Option<i64>,
}

impl AuditQuery {
    fn parse(&self) -> Result<(Window, usize), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit < 1 {
            return Err(out_of_range(
                "limit",
                "Input should be greater than or equal to 1",
                "greater_than_equal",
            ));
        }
        if limit > MAX_LIMIT {
            return Err(out_of_range(
                "limit",
                &format!("Input should be less than or equal to {MAX_LIMIT}"),
                "less_than_equal",
            ));
        }
        let after = self.after.unwrap_or(0);
        if after < 0 {
            return Err(out_of_range(
                "after",
                "Input should be greater than or equal to 0",
                "greater_than_equal",
            ));
        }
        let window = Window {
            after,
            from: self
                .from
                .as_deref()
                .map(|v| datetime("from", v))
                .transpose()?,
            to: self.to.as_deref().map(|v| datetime("to", v)).transpose()?,
        };
        Ok((window, limit as usize))
    }
}

fn out_of_range(field: &str, message: &str, kind: &str) -> ApiError {
    ApiError::validation(NS, &["query", field], message, kind)
}

fn datetime(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            out_of_range(
                field,
                "Input should be a valid datetime",
                "datetime_parsing",
            )
        })
}

/// One page of a stream's audit trail.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    stream: String,
    /// Oldest first.
    entries: Vec<Entry>,
    /// The `after` of the next page; null on the last page.
    next_after: Option<i64>,
}

fn audit_error(err: AuditError) -> ApiError {
    match err {
        AuditError::Forbidden => ApiError::detail(StatusCode::FORBIDDEN, "Not enough permissions"),
        AuditError::NotFound => ApiError::detail(StatusCode::NOT_FOUND, "Stream not found"),
        other => ApiError::internal(NS, other),
    }
}

/// The audit trail of one stream, oldest first; a superadmin reads any stream.
///
/// Per event of the stream (`account-7`, `patient-3`, `device-12`, …): its position, version,
/// time, actor, request/correlation/causation ids, door, type and the fields it changed
/// (`old` → `new`; secrets read `[redacted]`, erased personal data `[erased]`). Anyone but a
/// superadmin reads only `account-<own id>` and the streams of the patients they created (403
/// otherwise, whether or not the stream exists).
#[utoipa::path(get, path = "/api/v1/audit/{stream}", tag = tags::CORE, security(("bearer" = [])),
    params(("stream" = String, Path, description = "Stream id: `<category>-<id>`"), AuditQuery),
    responses((status = 200, body = AuditPage),
        (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Stream not found", body = Detail)))]
pub async fn trail(
    State(state): State<AppState>,
    caller: Caller,
    Path(stream): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let (window, limit) = q.parse()?;
    let mut conn = state
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(NS, e))?;
    let page = super::read_page(
        &mut conn,
        state.store.keyring(),
        &caller,
        &stream,
        &window,
        limit,
    )
    .await
    .map_err(audit_error)?;
    Ok(Json(AuditPage {
        stream,
        entries: page.entries,
        next_after: page.next_after,
    }))
}
